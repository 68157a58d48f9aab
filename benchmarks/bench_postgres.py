"""PostgreSQL against SQLite on the same machine, in one run.

Starts a throwaway PostgreSQL 15 cluster (tests/pg.py: the tests' own, on a private
socket), builds the SQLite fixture (`_harness.build_db`) and copies it to the server
with `sladeck migrate --to`'s copy, so both hold the same incidents. Then:

- commit by another process → the change on the dashboard's screen, p95, on each
  (as bench_latency.py: a pty, 120x36; PostgreSQL's dashboard hears LISTEN/NOTIFY);
- `sladeck ack ID` wall time on each, and `psql -c 'select 1'` over the same socket
  (a connection's own price);
- 8 writers × N mixed actions (tests/stress_worker.py `mixed`: read, then act on the
  version read) on each: actions per second, lost actions (done but not in the log),
  errors that reached a person as "locked" or "deadlock".
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import _harness as h

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))


def latency(db: str, runs: int, policy_path: Path) -> list[float]:
    from sladeck.clock import SystemClock
    from sladeck.domain import actions
    from sladeck.domain.model import ACTIVE_STATES, RESOLVED, Actor
    from sladeck.domain.queue import Queue
    from sladeck.policy import load_policy
    from sladeck.store import open_store

    policy = load_policy(policy_path)  # the fixture's, as the dashboard's (`--policy`)
    store = open_store(db)
    store.adopt(policy)
    clock = SystemClock()
    desk = actions.Desk(store, policy, clock, Actor("bench", "bench"))
    queue = Queue(store.policy)
    queue.load(store.incidents((*ACTIVE_STATES, RESOLVED)), clock.now())
    rng = random.Random(3)
    found = []
    with h.PtyApp(h.sladeck_argv(db, policy_path)) as app:
        app.wait_for(b"INC-", 60)
        app.pump(1.0)
        for n in range(runs):
            queue.tick(clock.now())
            target = queue.visible[min(3, len(queue.visible) - 1)].incident
            mark = chr(ord("A") + n % 26)
            name = f"{mark}lat{n:04d}{mark}"
            since = app.mark()
            out = actions.assign(desk, target.id, name)
            committed = time.perf_counter()
            found.append(app.wait_for(name.encode(), 10, since) - committed)
            queue.merge([out.incident], clock.now())
            app.pump(rng.uniform(0.1, 0.5))
    store.close()
    return found


def open_ids(db: str, count: int) -> list[int]:
    from sladeck.store import open_store

    store = open_store(db)
    try:
        ids = sorted((i.id for i in store.incidents(("open",))), reverse=True)
    finally:
        store.close()
    return ids[:count]


def writers(db: str, count: int, per: int, work: Path) -> tuple[float, int, int, list[str]]:
    """(actions per second, lost, errors reaching a person, their texts)."""
    from sladeck.store import open_store

    barrier = work / f"barrier-{abs(hash(db))}"
    barrier.mkdir(exist_ok=True)
    worker = TESTS / "stress_worker.py"
    procs = [subprocess.Popen([sys.executable, str(worker), "mixed", json.dumps(
        {"db": db, "worker": w, "actions_count": per, "barrier": str(barrier)})],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE) for w in range(count)]
    time.sleep(2.0)  # every worker imported and connected, waiting at the barrier
    store = open_store(db)
    before = store.last_seq()
    started = time.perf_counter()
    (barrier / "go").touch()
    outs = [p.communicate(timeout=900) for p in procs]
    elapsed = time.perf_counter() - started
    reports = [json.loads(out.splitlines()[-1]) for out, _ in outs]
    done = sum(r["done"] for r in reports)
    changed = sum(r["changed"] for r in reports)
    seq = store.last_seq()
    store.close()
    errors = [u for r in reports for u in r["unexpected"]]
    errors += [e.decode()[-300:] for _, e in outs if b"deadlock" in e.lower()]
    # every action that changed something appended at least one event
    lost = max(0, changed - (seq - before))
    return done / elapsed, lost, len(errors), errors


def main() -> None:
    parser = h.common_args(__doc__.splitlines()[0], runs=30)
    parser.add_argument("--actions", type=int, default=300, help="mixed actions per writer")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.open_count, args.closed_count, args.actions = 3, 200, 500, 10
    from pg import PgCluster
    from sladeck.store import Store
    from sladeck.store.copy import copy_database
    from sladeck.store.postgres import PgStore

    work = h.workdir(args)
    env = h.clean_env()
    cluster = PgCluster()
    cluster.start()
    try:
        fx = h.build_db(work / "pg-bench.db", args.open_count, args.closed_count)
        sqlite_db, policy = str(fx.path), h.policy_file(fx.path)
        pg_db = cluster.url(cluster.fresh_database())
        source, target = Store(sqlite_db), PgStore(pg_db)
        copy_database(source, target)
        source.close()
        target.close()

        lat = {name: latency(db, args.runs, policy) for name, db in (("SQLite", sqlite_db),
                                                             ("PostgreSQL", pg_db))}
        ack_runs = max(args.runs // 3, 3)
        ids = {name: open_ids(db, ack_runs) for name, db in (("SQLite", sqlite_db),
                                                              ("PostgreSQL", pg_db))}
        acks: dict[str, list[float]] = {"SQLite": [], "PostgreSQL": [], "psql": []}
        for n in range(ack_runs):
            acks["SQLite"].append(h.timed_run([*h.sladeck_argv(sqlite_db, policy), "ack",
                                               str(ids["SQLite"][n])], env))
            acks["PostgreSQL"].append(h.timed_run([*h.sladeck_argv(pg_db, policy), "ack",
                                                   str(ids["PostgreSQL"][n])], env))
            acks["psql"].append(h.timed_run(["psql", pg_db, "-Atqc", "select 1"], env))

        fresh_sqlite = str(work / "writers.db")
        fresh_pg = cluster.url(cluster.fresh_database())
        mixed = {name: writers(db, 8, args.actions, work)
                 for name, db in (("SQLite", fresh_sqlite), ("PostgreSQL", fresh_pg))}
    finally:
        cluster.stop()

    p95 = {k: h.percentile(v, 0.95) for k, v in lat.items()}
    ack = {k: h.median(v) for k, v in acks.items()}
    figures = [
        h.Figure(f"commit → screen p95, PostgreSQL ({args.open_count:,} open)",
                 p95["PostgreSQL"], "s", p95["SQLite"], "≤ 250 ms", p95["PostgreSQL"] <= 0.25,
                 f"baseline: SQLite; max {max(lat['PostgreSQL']) * 1000:.0f} ms"),
        h.Figure("`sladeck ack ID` on PostgreSQL vs SQLite", ack["PostgreSQL"], "s",
                 ack["SQLite"], "≤ 2×", ack["PostgreSQL"] <= 2 * ack["SQLite"]),
        h.Figure("`sladeck ack ID` on PostgreSQL vs `psql -c 'select 1'`", ack["PostgreSQL"],
                 "s", ack["psql"]),
    ]
    for name, (rate, lost, errors, texts) in mixed.items():
        figures.append(h.Figure(f"8 writers × {args.actions} mixed actions, {name}", rate,
                                "actions/s", None, "0 lost, 0 errors",
                                lost == 0 and errors == 0,
                                f"lost {lost}, locked/deadlock errors {errors}"
                                + (f": {texts[0][:200]}" if texts else "")))
    h.report(figures, args)


if __name__ == "__main__":
    main()
