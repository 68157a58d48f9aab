"""Many people, one database file: SPEC §5 and §9 under real processes, kills and load.

Children are real processes (tests/stress_worker.py) released together by a barrier
file; nothing here sleeps for correctness (a random pause only picks when to kill).
Every figure these tests reach is written in README.md, "Reliability".
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import HOOK_PYTHON, REPO, T0, in_transaction, transaction_class
from sladeck.clock import FixedClock
from sladeck.domain import actions
from sladeck.domain.actions import Desk
from sladeck.domain.ingest import import_ndjson
from sladeck.domain.model import Actor
from sladeck.domain.notices import NOTICE_KINDS
from sladeck.policy import Policy, load_policy
from sladeck.store import SCHEMA_VERSION, Store, open_store
from sladeck.verify import verify

WORKER = Path(__file__).with_name("stress_worker.py")
SLADECK = Path(sys.executable).with_name("sladeck")
ENV = {**os.environ, "TZ": "UTC", "PYTHONPATH": str(REPO / "tests")}
LOCKED = re.compile(r"locked|busy", re.IGNORECASE)


def spawn(mode: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(WORKER), mode, json.dumps(kwargs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)


_AT_THE_BARRIER = ("import sys, os, time\n"
                   "while not os.path.exists(sys.argv[1]): time.sleep(0.0005)\n"
                   "from sladeck.cli import main\n"
                   "main(sys.argv[2:])\n")


def cli_together(barrier: Path, argvs: list[list[str]]) -> list[tuple[int, str, str]]:
    """Run `sladeck ARGV` once per argv, all released at once; (status, out, err) each."""
    procs = [subprocess.Popen([sys.executable, "-c", _AT_THE_BARRIER, str(barrier / "go"),
                               *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=ENV) for argv in argvs]
    release(barrier)
    return [(p.wait(60), *p.communicate()) for p in procs]


def finish(proc: subprocess.Popen[bytes], timeout: float = 120) -> list[dict[str, Any]]:
    """Wait for a child; it must exit cleanly; return its reports."""
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err and not LOCKED.search(err.decode()), err.decode()
    return [json.loads(line) for line in out.splitlines()]


def wait_until(condition, timeout: float = 60, what: str = "condition") -> None:
    """Poll a condition with a deadline (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)


def release(barrier: Path) -> None:
    (barrier / "go").touch()


def handoff(policy: Policy, level: str) -> dict[str, str]:
    return {item.key: f"{item.label} for {level}" for item in policy.escalation[level].handoff}


def ndjson(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def sladeck(*args: str, db: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SLADECK), "--db", str(db), *args], capture_output=True,
                          text=True, env=ENV, timeout=timeout, check=False)


def whole(store: Store, policy: Policy) -> None:
    """No half-written action: SQLite intact, chain intact, every row equal to its
    replay, every escalation with its handoff (and back), every resolution with its
    checklist."""
    assert store.integrity_check() == "ok"
    assert verify(store) == []
    q = store.conn.execute
    assert q("SELECT count(*) FROM events e WHERE kind = 'escalated' AND NOT EXISTS "
             "(SELECT 1 FROM handoffs h WHERE h.event_id = e.id)").fetchone()[0] == 0
    assert q("SELECT count(*) FROM handoffs h LEFT JOIN events e ON e.id = h.event_id "
             "WHERE e.kind IS DISTINCT FROM 'escalated' OR e.incident_id != h.incident_id"
             ).fetchone()[0] == 0
    items = len(policy.checklists["resolution"])
    assert q("SELECT count(*) FROM events e WHERE kind = 'resolved' AND (SELECT count(*) "
             "FROM checklist_ticks t WHERE t.event_id = e.id AND t.checklist = 'resolution') "
             f"!= {int(items)}").fetchone()[0] == 0
    ids = [r[0] for r in q("SELECT id FROM events ORDER BY id").fetchall()]
    assert ids == list(range(1, len(ids) + 1))


# -- 1. kill -9 in the middle of writing ---------------------------------------------------

KILLS = 120


pytestmark = pytest.mark.both_backends

@pytest.mark.slow
def test_kill_9_during_writes_loses_nothing_and_leaves_nothing_half_written(
        tmp_path: Path, policy: Policy, db_url: str) -> None:
    db = db_url
    open_store(db).close()
    rng = random.Random(20261126)
    done: list[dict[str, Any]] = []
    in_action = unreported = 0  # kills during an action; commits the child never reported
    for run in range(KILLS):
        proc = spawn("chaos", db=str(db), seed=run)
        assert proc.stdout is not None
        watchdog = threading.Timer(60, proc.kill)  # a hung child fails the test, not CI
        watchdog.start()
        lines: list[bytes] = []
        want = rng.randint(0, 8)  # how many actions to let finish before the kill
        while len([x for x in lines if b'"action"' in x]) < want:
            line = proc.stdout.readline()
            assert line, f"child died by itself: {proc.stderr.read().decode()}"  # type: ignore[union-attr]
            lines.append(line)
        time.sleep(rng.uniform(0, 0.012))  # picks the moment, proves nothing
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        watchdog.cancel()
        rest = proc.stdout.read()
        err = proc.stderr.read()  # type: ignore[union-attr]
        proc.stdout.close()
        proc.stderr.close()  # type: ignore[union-attr]
        assert proc.returncode == -signal.SIGKILL, err.decode()
        assert b"Traceback" not in err, err.decode()
        reports = [json.loads(x) for x in [*lines, *rest.splitlines()]]
        in_action += bool(reports) and "start" in reports[-1]
        done += [r for r in reports if "action" in r]
        store = open_store(db)
        try:
            whole(store, policy)
            events = {e.id: e for e in store.events()}
            unreported += max(events, default=0) > max(
                (i for r in done for i in r["events"]), default=0)
            for r in done:  # every action the child said was done is there, whole
                for event_id in r["events"]:
                    assert event_id in events, r
                if r["action"] == "escalate":
                    event = events[r["events"][0]]
                    assert (event.kind, event.incident_id, event.payload["to"]) == (
                        "escalated", r["incident"], r["to"])
                elif r["action"] == "resolve":
                    assert events[r["events"][0]].kind == "resolved"
                elif r["action"] == "import":
                    assert [events[i].kind for i in r["events"]] == r["kinds"]
        finally:
            store.close()
        if run % 40 == 39:
            result = sladeck("verify", db=db)
            assert result.returncode == 0 and "chain intact" in result.stdout, result.stderr
    assert len(done) >= KILLS  # the children did real work between kills
    assert in_action >= KILLS // 4  # the kills really land in the middle of actions
    kinds = Counter(r["action"] for r in done)
    assert all(kinds[k] > 20 for k in ("open", "import", "ack", "escalate", "resolve")), kinds
    print(f"\n{KILLS} kills ({in_action} during an action, {unreported} after a commit "
          f"its child never reported), {len(done)} reported actions, "
          f"{sum(len(r['events']) for r in done)} reported events, all present and whole; {dict(kinds)}")


# -- 2. eight people act on one incident at the same moment ---------------------------------

ROUNDS = 16
PEOPLE = 8


@pytest.mark.slow
def test_eight_people_acting_at_once_make_exactly_one_change(tmp_path: Path, desk: Desk,
                                                             store: Store, db_url: str,
                                                             policy: Policy) -> None:
    rounds = []
    for number in range(ROUNDS):
        inc = actions.open_incident(desk, title=f"race {number}", severity="P2").incident
        rounds.append({"incident": inc.id, "action": "ack" if number % 2 == 0 else "escalate"})
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [spawn("race", db=db_url, worker=w, rounds=rounds, barrier=str(barrier))
             for w in range(PEOPLE)]
    for number in range(ROUNDS):
        wait_until(lambda n=number: all((barrier / f"ready-{n}-{w}").exists()
                                        for w in range(PEOPLE)), what=f"round {number}")
        (barrier / f"go-{number}").touch()
    reports = [r for p in procs for r in finish(p)]
    for number, round_ in enumerate(rounds):
        got = [r for r in reports if r["round"] == number]
        assert len(got) == PEOPLE
        winners = [r for r in got if r["changed"]]
        assert len(winners) == 1, got
        inc = store.incident(round_["incident"])
        assert inc.version == 2  # opened, then exactly one change
        kinds = [e.kind for e in store.events(inc.id)]
        assert kinds == ["opened", "acknowledged" if round_["action"] == "ack" else "escalated"]
        for loser in (r for r in got if not r["changed"]):
            if round_["action"] == "ack":  # the same wish, already granted: not an error
                assert "error" not in loser, loser
                assert re.fullmatch(rf"INC-{inc.id} is already acknowledged by w\d at "
                                    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \w+", loser["message"]), loser
                assert inc.acknowledged_by in loser["message"]
            else:  # §5: told what changed and by whom, nothing written
                assert loser["error"] == "Conflict", loser
                assert re.fullmatch(rf"INC-{inc.id} was escalated to L2 by w\d (just now|\ds "
                                    r"ago) — reload before acting", loser["message"]), loser
    assert store.conn.execute("SELECT count(*) FROM handoffs").fetchone()[0] == ROUNDS // 2
    whole(store, policy)


@pytest.mark.slow
def test_eight_sladeck_ack_commands_at_once(tmp_path: Path, desk: Desk, store: Store,
                                            db_url: str) -> None:
    inc = actions.open_incident(desk, title="Pager storm", severity="P1").incident
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    results = cli_together(barrier, [["--db", db_url, "--as", f"person{w}", "ack",
                                      f"INC-{inc.id}"] for w in range(PEOPLE)])
    assert all(code == 0 and err == "" for code, _, err in results), results
    outs = sorted(out.strip() for _, out, _ in results)
    assert outs[0] == f"INC-{inc.id} acknowledged at L1", outs
    assert all(re.fullmatch(rf"INC-{inc.id} is already acknowledged by person\d \(\S+\) at .+",
                            o) for o in outs[1:]), outs
    # (the notices commands record for what they did may follow)
    assert [e.kind for e in store.events(inc.id) if e.kind not in NOTICE_KINDS] == [
        "opened", "acknowledged"]
    assert store.incident(inc.id).version == 2


# -- 4 and 7. never "database is locked"; the chain stays linear ---------------------------

WORKERS = 8
MIXED = 300


@pytest.mark.slow
def test_many_people_mixed_read_then_write_never_see_locked(tmp_path: Path, db_url: str,
                                                            policy: Policy) -> None:
    open_store(db_url).close()
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [spawn("mixed", db=db_url, worker=w, actions_count=MIXED,
                   barrier=str(barrier)) for w in range(WORKERS)]
    release(barrier)
    reports = [finish(p, timeout=300)[0] for p in procs]
    assert sum(r["locked"] for r in reports) == 0
    assert [u for r in reports for u in r["unexpected"]] == []
    assert sum(r["done"] + r["conflicts"] + r["refused"] for r in reports) == WORKERS * MIXED
    store = open_store(db_url)
    try:
        whole(store, policy)  # ids contiguous, chain linear, rows equal their replay
        changes = sum(r["changed"] for r in reports)
        assert store.last_seq() >= changes
        print(f"\n{WORKERS} workers x {MIXED} actions: {changes} changes, "
              f"{sum(r['conflicts'] for r in reports)} conflicts, "
              f"{sum(r['refused'] for r in reports)} refusals, 0 locked, "
              f"{store.last_seq()} events")
    finally:
        store.close()


@pytest.mark.slow
def test_concurrent_appenders_keep_the_chain_linear(tmp_path: Path, desk: Desk, store: Store,
                                                    db_url: str, policy: Policy) -> None:
    inc = actions.open_incident(desk, title="Busy incident", severity="P2").incident
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [spawn("appender", db=db_url, worker=w, count=60, incident=inc.id,
                   barrier=str(barrier)) for w in range(WORKERS)]
    release(barrier)
    got = [i for p in procs for i in finish(p)[0]["ids"]]
    assert sorted(got) == list(range(2, 2 + WORKERS * 60))  # no id handed out twice
    events = store.events()
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    whole(store, policy)


def test_detail_is_one_snapshot_even_if_someone_escalates_meanwhile(
        desk: Desk, store: Store, db_url: str, policy: Policy,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A commit between reading the events and reading the handoffs once made
    `detail()` (the detail screen, `show`) fail with a KeyError."""
    inc = actions.open_incident(desk, title="Checkout down", severity="P1").incident
    other = open_store(db_url)
    bob = Desk(other, policy, desk.clock, Actor("bob"))
    real_events = type(store).events

    def events_then_someone_escalates(self: Store, *args: Any, **kwargs: Any):
        found = real_events(self, *args, **kwargs)
        if self is store and not other.detail(inc.id).handoffs:
            actions.escalate(bob, inc.id, to="L2", trigger="performance",
                             fields=handoff(policy, "L2"))
        return found

    monkeypatch.setattr(type(store), "events", events_then_someone_escalates)
    try:
        detail = store.detail(inc.id)
        assert detail is not None
        assert [e.kind for e in detail.events] == ["opened"] and detail.handoffs == ()
        assert not in_transaction(store)
        monkeypatch.undo()
        assert len(store.detail(inc.id).handoffs) == 1
    finally:
        other.close()


def test_verify_reads_one_snapshot_even_if_someone_acts_meanwhile(
        desk: Desk, store: Store, db_url: str, policy: Policy,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A commit after verify read the events and before it read the rows once made a
    healthy live database look edited ('stored state differs from its timeline')."""
    inc = actions.open_incident(desk, title="Checkout down", severity="P1").incident
    other = open_store(db_url)
    bob = Desk(other, policy, desk.clock, Actor("bob"))
    real = type(store).iter_events

    def events_then_someone_acknowledges(self: Store, *args: Any, **kwargs: Any):
        yield from real(self, *args, **kwargs)
        actions.acknowledge(bob, inc.id)

    monkeypatch.setattr(type(store), "iter_events", events_then_someone_acknowledges)
    try:
        assert verify(store) == []
        assert not in_transaction(store)
        assert store.incident(inc.id).state == "acknowledged"
        monkeypatch.undo()
        assert verify(store) == []
    finally:
        other.close()


@pytest.mark.slow
def test_verify_passes_while_others_write(tmp_path: Path, db_url: str) -> None:
    """`sladeck verify` on a live database: rows newer than the events it read are not
    'edited' (it reads one snapshot)."""
    store = open_store(db_url)
    stop = tmp_path / "stop"
    procs = [spawn("writer", db=db_url, worker=w, stop=str(stop)) for w in range(2)]
    try:
        for p in procs:
            assert p.stdout is not None and b"ready" in p.stdout.readline()
        wait_until(lambda: store.last_seq() > 20, what="writers to write")
        start, checks = store.last_seq(), 0
        while checks < 30 or store.last_seq() < start + 300:
            assert verify(store) == []
            checks += 1
    finally:
        stop.touch()
        reports = [finish(p)[0] for p in procs]
        store.close()
    # the writers made load (one may lose every race to the other: conflicts, not errors;
    # a "locked" error would have ended its process with a traceback, failing finish())
    assert sum(r["done"] for r in reports) > 0


@pytest.mark.slow
def test_dashboard_holds_no_read_transaction_so_the_wal_stays_small(
        tmp_path: Path, db_path: Path, policy: Policy) -> None:
    from sladeck.tui.app import SladeckApp

    seed = Store(db_path)
    incidents = [actions.open_incident(Desk(seed, policy, FixedClock(T0), Actor("seed")),
                                       title=f"Incident {i}", severity="P2").incident
                 for i in range(5)]
    seed.close()
    os.environ["TEXTUAL_ANIMATIONS"] = "none"
    app = SladeckApp(db_path, policy, Actor("viewer"), clock=FixedClock(T0),
                     poll_interval=0.01, tick_interval=None, bell=False, run_hooks=False,
                     cursor_blink=False)
    wal = Path(f"{db_path}-wal")
    commits, largest, polled = 600, 0, 0

    async def run() -> None:
        nonlocal largest, polled
        writer = Store(db_path)
        writer.conn.execute("PRAGMA wal_autocheckpoint=100")  # WAL bounded near 400 KiB
        author = Desk(writer, policy, FixedClock(T0), Actor("author"))
        try:
            async with app.run_test(size=(100, 30)) as pilot:
                for n in range(commits):
                    actions.add_note(author, incidents[n % 5].id, f"note {n}")
                    if n % 10 == 9:
                        seq = writer.last_seq()
                        deadline = time.monotonic() + 10
                        while app.seq < seq:  # the dashboard saw it (its poll ran)
                            assert time.monotonic() < deadline, "the dashboard never polled"
                            await pilot.pause(0.005)
                        polled += 1
                        assert not app.reader.conn.in_transaction
                        assert not app.writer.conn.in_transaction
                        largest = max(largest, wal.stat().st_size)
                checker = sqlite3.connect(str(db_path), timeout=1)
                try:
                    busy, _, _ = checker.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                finally:
                    checker.close()
                assert busy == 0  # nobody holds a read transaction: the WAL empties
                assert wal.stat().st_size == 0
                await pilot.pause(0.03)
                assert not app.reader.conn.in_transaction
                # Let the last armed poll run before the app closes its connections
                # (one that fires after on_unmount closed them raises ProgrammingError).
                app.poll_interval = None
                await pilot.pause(0.05)
        finally:
            writer.close()

    asyncio.run(run())
    assert polled == commits // 10
    # 600 commits write ~3,600 WAL frames (14 MiB) if no checkpoint can finish
    assert largest < 1024 * 1024, largest


# -- 5. idempotent ingestion ------------------------------------------------------------------

KEYS = 10
ALERTS = [{"title": f"alert {k}", "severity": "P2", "dedup_key": f"svc-{k}"}
          for _ in range(3) for k in range(KEYS)]


def open_by_key(store: Store) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for inc in store.incidents():
        found.setdefault(inc.dedup_key, []).append(inc.id)
    return found


def test_importing_the_same_file_twice_only_counts_repeats(desk: Desk, store: Store,
                                                           policy: Policy) -> None:
    data = ndjson(ALERTS)
    first = import_ndjson(desk, data, "alerts.ndjson")
    second = import_ndjson(desk, data, "alerts.ndjson")
    assert (first.opened, first.repeated) == (KEYS, 2 * KEYS)
    assert (second.opened, second.repeated) == (0, 3 * KEYS)
    assert {k: len(v) for k, v in open_by_key(store).items()} == {
        f"svc-{k}": 1 for k in range(KEYS)}
    assert {i.repeats for i in store.incidents()} == {5}
    whole(store, policy)


@pytest.mark.slow
def test_four_importers_at_once_open_one_incident_per_key(tmp_path: Path, db_url: str,
                                                          policy: Policy) -> None:
    open_store(db_url).close()
    file = tmp_path / "alerts.ndjson"
    file.write_bytes(ndjson(ALERTS))
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [spawn("importer", db=db_url, file=str(file), barrier=str(barrier))
             for _ in range(4)]
    release(barrier)
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0 and err == b"", err.decode()
        outs.append(out.decode())
    news = [int(re.match(r"imported (\d+) new, (\d+) repeated$", o.strip()).group(1))
            for o in outs]
    assert sum(news) == KEYS
    store = open_store(db_url)
    try:
        assert {k: len(v) for k, v in open_by_key(store).items()} == {
            f"svc-{k}": 1 for k in range(KEYS)}
        assert {i.repeats for i in store.incidents()} == {4 * 3 - 1}
        assert store.last_seq() == 4 * len(ALERTS)
        whole(store, policy)
    finally:
        store.close()


@pytest.mark.slow
def test_eight_open_commands_with_one_dedup_key_open_one_incident(
        tmp_path: Path, db_url: str, policy: Policy) -> None:
    open_store(db_url).close()
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    results = cli_together(barrier, [["--db", db_url, "open", "--severity", "P1",
                                      "--title", "Checkout 500s", "--dedup-key", "checkout-5xx"]
                                     for _ in range(PEOPLE)])
    assert all(code == 0 for code, _, _ in results), results
    assert {out.strip() for _, out, _ in results} == {"INC-1"}
    assert sorted(err.strip() for _, _, err in results)[1:] == [
        f"INC-1 repeated ({n} repeats)" for n in range(1, PEOPLE)]
    store = open_store(db_url)
    try:
        assert store.incident(1).repeats == PEOPLE - 1 and store.incident(2) is None
        whole(store, policy)
    finally:
        store.close()


def test_dedup_is_enforced_by_the_index_even_if_app_code_forgets(
        desk: Desk, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from sladeck.errors import Refused
    Transaction = transaction_class(store)

    actions.open_incident(desk, title="Disk full", severity="P2", dedup_key="disk")
    seq = store.last_seq()
    monkeypatch.setattr(Transaction, "open_by_dedup", lambda self, key: None)
    with pytest.raises(Refused, match="another open incident has dedup key 'disk'"):
        actions.open_incident(desk, title="Disk full", severity="P2", dedup_key="disk")
    assert store.last_seq() == seq and len(store.incidents()) == 1


def test_after_resolve_a_key_opens_anew_and_late_alerts_never_move_state_back(
        desk: Desk, store: Store, clock: FixedClock, policy: Policy) -> None:
    first = import_ndjson(desk, ndjson([{"title": "Disk", "severity": "P1",
                                         "dedup_key": "disk"}]), "a").outcomes[0].incident
    clock.advance(minutes=20)
    actions.resolve(desk, first.id, summary="cleaned", checks="all")
    resolved = store.incident(first.id)
    clock.advance(minutes=10)
    late = to_text(T0 + timedelta(minutes=5))  # started before the resolution
    report = import_ndjson(desk, ndjson([
        {"title": "Disk", "severity": "P1", "dedup_key": "disk", "opened_at": late},
        {"title": "Other", "severity": "P3", "dedup_key": "never-seen", "opened_at": late},
    ]), "late.ndjson")
    assert (report.late, report.opened, report.repeated) == (1, 1, 0)
    after = store.incident(first.id)
    assert (after.state, after.version, after.resolved_at) == (
        "resolved", resolved.version, resolved.resolved_at)  # status never moves back
    event = store.events(first.id)[-1]
    assert event.kind == "repeated" and "before INC-1 was resolved" in event.payload["reason"]
    assert event.payload["source"] == "late.ndjson:1"
    # a new alert (after the resolution) opens a new incident for the same key
    again = import_ndjson(desk, ndjson([{"title": "Disk", "severity": "P1",
                                         "dedup_key": "disk"}]), "b").outcomes[0]
    assert again.event.kind == "opened" and again.incident.id not in (first.id,)
    assert sorted(i.dedup_key for i in store.incidents()) == ["disk", "never-seen"]
    whole(store, policy)


def to_text(at) -> str:
    return at.isoformat().replace("+00:00", "Z")


# -- 6. automatic notices happen once --------------------------------------------------------

@pytest.mark.slow
def test_three_dashboards_record_a_due_notice_and_run_the_hook_once(
        tmp_path: Path, db_url: str) -> None:
    hook_log = tmp_path / "hook.log"
    hook = tmp_path / "hook.py"
    hook.write_text("import json, sys\n"
                    "event = json.load(sys.stdin)\n"
                    f"with open({str(hook_log)!r}, 'a') as f:\n"
                    "    f.write(event['event'] + ' ' + str(event['incident']['id']) + '\\n')\n")
    text = (REPO / "policy.yaml").read_text()
    assert "  command: []" in text
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(text.replace("  command: []", "  command: "
                                        + json.dumps([HOOK_PYTHON, str(hook)]), 1))
    policy = load_policy(policy_file)
    assert policy.notifications.command
    store = open_store(db_url)
    desk = Desk(store, policy, FixedClock(T0), Actor("opener"))
    ids = [actions.open_incident(desk, title=f"Slow {n}", severity="P3").incident.id
           for n in range(3)]
    store.close()
    at = (T0 + timedelta(minutes=31)).isoformat()  # only the L1 level clock (30m) is due
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [spawn("notices", db=db_url, worker=w, policy_path=str(policy_file), at=at,
                   barrier=str(barrier)) for w in range(3)]
    release(barrier)
    recorded = [n for p in procs for n in finish(p)[0]["recorded"]]
    assert sorted((kind, clock) for _, kind, clock in recorded) == [("sla_due", "level")] * 3
    assert sorted(hook_log.read_text().splitlines()) == [f"sla_due {i}" for i in ids]
    store = open_store(db_url)
    try:
        for inc in ids:
            assert [e.kind for e in store.events(inc)] == ["opened", "sla_due"]
        assert verify(store) == []
    finally:
        store.close()


# -- 8. backup under load ----------------------------------------------------------------------

@pytest.mark.slow
def test_backup_while_four_writers_work(tmp_path: Path, db_path: Path, policy: Policy) -> None:
    store = Store(db_path)
    stop = tmp_path / "stop"
    procs = [spawn("writer", db=str(db_path), worker=w, stop=str(stop)) for w in range(4)]
    copies = []
    try:
        for p in procs:
            assert p.stdout is not None and b"ready" in p.stdout.readline()
        for n in range(3):
            floor = store.last_seq() + 40
            wait_until(lambda f=floor: store.last_seq() >= f, what="writers to write")
            dest = tmp_path / f"backup-{n}.db"
            result = sladeck("backup", str(dest), db=db_path)
            assert result.returncode == 0 and result.stderr == "", result.stderr
            copies.append(dest)
    finally:
        stop.touch()
        reports = [finish(p)[0] for p in procs]
        live = store.last_seq()
        store.close()
    # the writers made load (one may lose every race to the other: conflicts, not errors;
    # a "locked" error would have ended its process with a traceback, failing finish())
    assert sum(r["done"] for r in reports) > 0
    seqs = []
    for dest in copies:
        assert oct(dest.stat().st_mode & 0o777) == "0o600"
        copy = Store(dest)
        try:
            whole(copy, policy)
            assert copy.incidents(None)
            seqs.append(copy.last_seq())
        finally:
            copy.close()
        result = sladeck("verify", db=dest)
        assert result.returncode == 0, result.stderr
    assert seqs == sorted(seqs) and seqs[-1] <= live


# -- 9. migrations -------------------------------------------------------------------------------

def make_v1(path: Path, policy: Policy) -> int:
    """A database as the first release left it (schema 1), with some incidents."""
    from sladeck.store import SLA_COLUMNS
    from sladeck.store.schema import ADDED_BY

    old = Store(path)
    try:
        desk = Desk(old, policy, FixedClock(T0), Actor("old"))
        for n in range(3):
            inc = actions.open_incident(desk, title=f"Old {n}", severity="P2",
                                        dedup_key=f"old-{n}").incident
        actions.escalate(desk, inc.id, to="L2", trigger="performance",
                         fields=handoff(policy, "L2"))
        with old._immediate():  # what the later schemas added, taken away again
            old.conn.execute("DROP INDEX incidents_dedup_key")
            old.conn.execute("DROP INDEX incidents_queue")
            old.conn.execute("DROP INDEX events_time")
            old.conn.execute("CREATE INDEX incidents_state ON incidents(state)")
            for column in (*SLA_COLUMNS, "first_acknowledged_at", *ADDED_BY):
                old.conn.execute(f"ALTER TABLE incidents DROP COLUMN {column}")
            old.conn.execute("DROP TABLE clock_cycles")
            old.conn.execute("DROP TABLE notices")  # schema 1's, as it was
            old.conn.execute("CREATE TABLE notices (incident_id INTEGER, clock TEXT, due_at TEXT, "
                             "status TEXT, event_id INTEGER, "
                             "PRIMARY KEY (incident_id, clock, due_at, status))")
            old.conn.execute("PRAGMA user_version=1")
        return old.last_seq()
    finally:
        old.close()


def indexes(path: Path) -> set[str]:
    conn = sqlite3.connect(str(path))
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        conn.close()


def user_version(path: Path) -> int:
    conn = sqlite3.connect(str(path))
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


@pytest.mark.slow
def test_two_processes_starting_on_a_v1_database_one_migrates(tmp_path: Path, db_path: Path,
                                                              policy: Policy) -> None:
    seq = make_v1(db_path, policy)
    assert user_version(db_path) == 1 and "incidents_dedup_key" not in indexes(db_path)
    log = tmp_path / "migrated-by"
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [spawn("migrate", db=str(db_path), log=str(log), barrier=str(barrier), hang=None)
             for _ in range(2)]
    release(barrier)
    reports = [finish(p)[0] for p in procs]
    assert [r["version"] for r in reports] == [SCHEMA_VERSION] * 2
    assert len(log.read_text().splitlines()) == 1  # one migrated, the other waited
    assert user_version(db_path) == SCHEMA_VERSION and "incidents_dedup_key" in indexes(db_path)
    store = Store(db_path)
    try:
        assert store.last_seq() == seq + 2
        assert [i.title for i in store.incidents()][:3] == ["Old 0", "Old 1", "Old 2"]
        whole(store, policy)
    finally:
        store.close()


@pytest.mark.slow
def test_kill_9_in_the_middle_of_a_migration_leaves_the_old_schema(
        tmp_path: Path, db_path: Path, policy: Policy) -> None:
    seq = make_v1(db_path, policy)
    hang = tmp_path / "in-step-2"
    proc = spawn("migrate", db=str(db_path), log=str(tmp_path / "log"), barrier="",
                 hang=str(hang))
    wait_until(hang.exists, what="the migration to start")
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert user_version(db_path) == 1
    assert "incidents_dedup_key" not in indexes(db_path)
    old = Store(db_path, migrate=False)
    try:
        assert old.integrity_check() == "ok" and old.last_seq() == seq
    finally:
        old.close()
    store = Store(db_path)  # the next start migrates (today's code reads today's schema)
    try:
        assert store.schema_version() == SCHEMA_VERSION
        assert "incidents_dedup_key" in indexes(db_path)
        assert len(store.incidents()) == 3
        whole(store, policy)
    finally:
        store.close()


@pytest.mark.slow
def test_eight_processes_creating_the_same_new_database(tmp_path: Path, policy: Policy) -> None:
    db = tmp_path / "team" / "new.db"
    log = tmp_path / "migrated-by"
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    (tmp_path / "team").mkdir()
    procs = [spawn("migrate", db=str(db), log=str(log), barrier=str(barrier), hang=None)
             for _ in range(PEOPLE)]
    release(barrier)
    reports = [finish(p)[0] for p in procs]
    assert [r["version"] for r in reports] == [SCHEMA_VERSION] * PEOPLE
    assert sorted(r["incident"] for r in reports) == list(range(1, PEOPLE + 1))
    assert len(log.read_text().splitlines()) == 1
    store = Store(db)
    try:
        whole(store, policy)
    finally:
        store.close()
