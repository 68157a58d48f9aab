"""`sladeck watch` as people run it: real processes, signals, the lock, and notices
recorded exactly once while dashboards, commands and the watch race (SPEC §6)."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftest import REPO
from sladeck.clock import FixedClock
from sladeck.domain.actions import Desk
from sladeck.domain.ingest import import_ndjson
from sladeck.domain.model import Actor, to_iso
from sladeck.domain.notices import NOTICE_KINDS, owed
from sladeck.policy import Policy
from sladeck.store import Store
from sladeck.verify import verify

WORKER = Path(__file__).with_name("stress_worker.py")
SLADECK = Path(sys.executable).with_name("sladeck")
ENV = {**os.environ, "TZ": "UTC", "PYTHONPATH": str(REPO / "tests")}
ENV.pop("SLADECK_POLICY", None)
_AT_THE_BARRIER = ("import sys, os, time\n"
                   "while not os.path.exists(sys.argv[1]): time.sleep(0.0005)\n"
                   "from sladeck.cli import main\n"
                   "main(sys.argv[2:])\n")


def start_watch(db: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([str(SLADECK), "--db", str(db), "watch", *args], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)


def ready(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("watching "), (line, proc.stderr.read() if proc.stderr else "")
    return line


def old_alerts(db: Path, policy: Policy, count: int, now: datetime) -> list[int]:
    """`count` P1/P2/P3 alerts that arrived 2h50m ago, none told yet: each owes notices
    that stay the same for the length of a test (the next deadlines are hours away)."""
    store = Store(db)
    try:
        desk = Desk(store, policy, FixedClock(now), Actor("alerts"))
        opened = to_iso(now - timedelta(hours=2, minutes=50))
        lines = "".join(json.dumps({"title": f"Alert {n}", "severity": ("P1", "P2", "P3")[n % 3],
                                    "opened_at": opened}) + "\n" for n in range(count))
        import_ndjson(desk, io.BytesIO(lines.encode()), "alerts.ndjson")
        return [i.id for i in store.incidents()]
    finally:
        store.close()


def told_once(db: Path, now: datetime) -> int:
    """Every notice owed at `now` is claimed, each claim told by exactly one event and
    each notice event by exactly one claim; the chain verifies. Returns the count."""
    store = Store(db)
    try:
        events = [e for e in store.events() if e.kind in NOTICE_KINDS]
        claims = store.conn.execute("SELECT incident_id, kind, key, event_id FROM notices"
                                    ).fetchall()
        linked = sorted(c[3] for c in claims if c[3] is not None)
        assert linked == sorted(e.id for e in events)  # no notice event twice, none unlinked
        by_event = {e.id: e for e in events}
        assert all(by_event[c[3]].kind == c[1] and by_event[c[3]].incident_id == c[0]
                   for c in claims if c[3] is not None)
        names = {(c[0], c[1], c[2]) for c in claims}
        owed_now = {(i.id, n.kind, n.key) for i in store.incidents()
                    for n in owed(i, store.policy(i.policy_id), now)}
        assert owed_now <= names, sorted(owed_now - names)[:5]
        assert verify(store) == []
        return len(events)
    finally:
        store.close()


# -- the service's life ---------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_watch_stops_cleanly_on_a_signal(db_path: Path, sig: signal.Signals) -> None:
    proc = start_watch(db_path)
    try:
        ready(proc)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert err == ""
    assert out.splitlines() == [f"watch stopped ({sig.name}): 0 notices recorded"]


def test_a_second_watch_on_the_same_file_is_refused(db_path: Path, tmp_path: Path) -> None:
    first = start_watch(db_path)
    try:
        ready(first)
        second = subprocess.run([str(SLADECK), "--db", str(db_path), "watch", "--once"],
                                capture_output=True, text=True, env=ENV, timeout=30)
        assert second.returncode == 1
        [line] = second.stderr.splitlines()
        assert line.startswith(f"sladeck: error: sladeck watch is already running on {db_path} "
                               f"(pid {first.pid}, user ")
        assert f"lock {db_path}.watch.lock" in line and second.stdout == ""
        # another database is another watch
        other = subprocess.run([str(SLADECK), "--db", str(tmp_path / "other.db"), "watch",
                                "--once"], capture_output=True, text=True, env=ENV, timeout=30)
        assert other.returncode == 0, other.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=10)
    assert first.returncode == 0


@pytest.mark.slow
def test_watch_killed_with_9_and_restarted_loses_and_repeats_nothing(
        db_path: Path, policy: Policy) -> None:
    now = datetime.now(UTC)
    old_alerts(db_path, policy, 900, now)
    proc = start_watch(db_path)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # kill it in the middle of its first pass
            raw = sqlite3.connect(db_path, timeout=30)
            told = raw.execute("SELECT count(*) FROM notices WHERE event_id IS NOT NULL"
                               ).fetchone()[0]
            raw.close()
            if told:
                break
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    again = subprocess.run([str(SLADECK), "--db", str(db_path), "watch", "--once"],
                           capture_output=True, text=True, env=ENV, timeout=120)
    assert again.returncode == 0, again.stderr  # the dead copy's lock died with it
    total = told_once(db_path, datetime.now(UTC))
    assert total >= 900 // 3 * 2  # every P1 and P2 owes several
    rerun = subprocess.run([str(SLADECK), "--db", str(db_path), "watch", "--once"],
                           capture_output=True, text=True, env=ENV, timeout=120)
    assert rerun.stdout.strip().endswith(": 0 notices recorded")


@pytest.mark.slow
def test_three_dashboards_a_watch_and_commands_tell_each_notice_once(
        tmp_path: Path, db_path: Path, policy: Policy) -> None:
    now = datetime.now(UTC)
    ids = old_alerts(db_path, policy, 60, now)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    # three dashboards' notice path (tests/stress_worker.py `notices`), at this instant
    dashboards = [subprocess.Popen(
        [sys.executable, str(WORKER), "notices", json.dumps({
            "db": str(db_path), "worker": w, "policy_path": str(REPO / "policy.yaml"),
            "at": now.isoformat(), "barrier": str(barrier)})],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV) for w in range(3)]
    argvs = [["watch", "--once"], ["open", "--severity", "P0", "--title", "Total outage"],
             ["open", "--severity", "P1", "--title", "Checkout down"],
             ["note", str(ids[0]), "looking"], ["note", str(ids[1]), "looking too"]]
    commands = [subprocess.Popen([sys.executable, "-c", _AT_THE_BARRIER, str(barrier / "go"),
                                  "--db", str(db_path), *argv], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=ENV)
                for argv in argvs]
    time.sleep(1.0)  # every process waits at the barrier
    (barrier / "go").touch()
    for proc in dashboards:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
    for proc, argv in zip(commands, argvs, strict=True):
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and "Traceback" not in err, (argv, err)
    told_once(db_path, datetime.now(UTC))
    store = Store(db_path)
    try:
        for incident in store.incidents(severity="P0") + store.incidents(severity="P1"):
            kinds = [e.kind for e in store.events(incident.id)]
            assert kinds.count("announced") == 1, (incident.ref, kinds)
    finally:
        store.close()
