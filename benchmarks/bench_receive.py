"""`sladeck receive`: alerts taken per second over loopback, each post answered after its
commit, against `sladeck import --format alertmanager` of the same alerts from a file.

- Throughput: N alerts as Alertmanager webhook payloads of 50, posted by C concurrent
  senders (each post with the bearer token, answered only once written), into a new
  database; the time from the first post to the last answer. The baseline is
  `sladeck import --format alertmanager` of the same payloads, one a line, into a new
  database: the same records through the same write path, in one transaction, timed
  in this process from reading the file to the commit (the command's wall time, which
  adds Python's start, is in the note). Target: receiving takes at most 2x as long.
- Latency: the p99 response time of a 50-alert post, within the burst (queued behind
  the others) and one post at a time (what a lone Alertmanager sees).
Runs alternate between the service and the import; medians are reported.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _harness as h

BATCH = 50


def payloads(alerts: int, prefix: str) -> list[dict[str, Any]]:
    """Alertmanager webhook payloads of BATCH alerts, every alert its own fingerprint."""
    starts = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    out = []
    for first in range(0, alerts, BATCH):
        out.append({
            "version": "4", "status": "firing", "receiver": "sladeck", "truncatedAlerts": 0,
            "groupKey": f'{{}}:{{alertname="Bench{first}"}}', "groupLabels": {},
            "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am:9093",
            "alerts": [{
                "status": "firing",
                "labels": {"alertname": f"Bench{n % 40}", "severity": ("critical", "warning")[n % 2],
                           "service": h.SERVICES[n % len(h.SERVICES)], "instance": f"host-{n}"},
                "annotations": {"summary": f"{h.WORDS[n % len(h.WORDS)]} on host-{n}",
                                "description": "Raised by the benchmark."},
                "startsAt": starts, "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": f"http://prometheus:9090/graph?g0.expr=bench_{n}",
                "fingerprint": f"{prefix}{n:08x}"} for n in range(first, min(first + BATCH, alerts))]})
    return out


class Service:
    """`sladeck receive` on a free loopback port."""

    def __init__(self, db: Path, token_file: Path, token: str, env: dict[str, str]) -> None:
        argv = [*h.sladeck_argv(db), "receive", "--listen", "127.0.0.1:0",
                "--token-file", str(token_file)]
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        if not match:
            raise RuntimeError(f"sladeck receive did not start: {line!r}")
        self.url = f"http://127.0.0.1:{match.group(1)}/alertmanager"
        self.token = token

    def post(self, body: bytes) -> float:
        """Seconds until the answer (raises unless 200)."""
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {self.token}"})
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=600) as answer:
            answer.read()
            if answer.status != 200:
                raise RuntimeError(f"POST answered {answer.status}")
        return time.perf_counter() - started

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)


def import_in_process(db: Path, file: Path) -> float:
    """Seconds `import_payloads` takes for `file` into a new database (opened first)."""
    from sladeck.clock import SystemClock
    from sladeck.domain.actions import Desk
    from sladeck.domain.intake import import_payloads
    from sladeck.domain.model import Actor
    from sladeck.policy import load_policy
    from sladeck.store import Store

    store = Store(db)
    policy = load_policy()
    store.adopt(policy)
    desk = Desk(store, policy, SystemClock(), Actor("bench"))
    started = time.perf_counter()
    with file.open("rb") as data:
        import_payloads(desk, data, str(file), "alertmanager")
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed


def main() -> None:
    parser = h.common_args(__doc__.splitlines()[0], runs=3)
    parser.add_argument("--alerts", type=int, default=2000, help="alerts per burst")
    parser.add_argument("--senders", type=int, default=40, help="concurrent posts")
    parser.add_argument("--lone", type=int, default=100, help="posts made one at a time")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.alerts, args.senders, args.lone = 1, 100, 2, 3
    work = h.workdir(args)
    env = h.clean_env()
    token = secrets.token_hex(24)
    token_file = work / "receive.token"
    token_file.write_text(token + "\n")
    os.chmod(token_file, 0o600)

    burst_s, import_s, command_s, burst_lat, lone_lat = [], [], [], [], []
    for run in range(args.runs):
        bodies = [json.dumps(p).encode() for p in payloads(args.alerts, f"r{run}-")]
        file = work / f"payloads-{run}.ndjson"
        file.write_bytes(b"\n".join(bodies) + b"\n")
        db = work / f"import-{run}.db"
        h._remove_db(db)
        import_s.append(import_in_process(db, file))
        h._remove_db(db)
        command_s.append(h.timed_run([*h.sladeck_argv(db), "import", "--format",
                                      "alertmanager", str(file)], env))
        h._remove_db(db)

        db = work / f"receive-{run}.db"
        h._remove_db(db)
        service = Service(db, token_file, token, env)
        try:
            started = time.perf_counter()
            with ThreadPoolExecutor(args.senders) as pool:
                burst_lat += pool.map(service.post, bodies)
            burst_s.append(time.perf_counter() - started)
            lone = [json.dumps(p).encode() for p in payloads(BATCH * args.lone, f"l{run}-")]
            lone_lat += [service.post(b) for b in lone]
        finally:
            service.stop()
        h._remove_db(db)

    burst, imported = h.median(burst_s), h.median(import_s)
    figures = [
        h.Figure(f"receive {args.alerts:,} alerts, {args.senders} concurrent posts of {BATCH}",
                 burst, "s", imported, "≤ 2×", burst / imported <= 2,
                 f"{args.alerts / burst:,.0f} alerts/s received; the import of the same file "
                 f"{args.alerts / imported:,.0f} alerts/s (the whole `sladeck import "
                 f"--format alertmanager` command: {h.median(command_s):.2f} s)"),
        h.Figure(f"p99 response of a {BATCH}-alert post within the burst",
                 h.percentile(burst_lat, 0.99), "s"),
        h.Figure(f"p99 response of a {BATCH}-alert post, one at a time",
                 h.percentile(lone_lat, 0.99), "s"),
    ]
    h.report(figures, args)


if __name__ == "__main__":
    main()
