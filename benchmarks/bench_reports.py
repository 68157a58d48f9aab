"""Reports: `sladeck report --since 30d` and `sladeck digest` over 100,000 incidents
(about 1,000,000 events), and the reports screen's time to first chart.

- Each command's wall time against the `sqlite3` shell running one aggregate query over
  the same events (`SELECT kind, count(*), min(at), max(at) FROM events GROUP BY kind`),
  alternated in the same run, medians reported (target ≤ 5×). The in-process time of
  the report's own work (`build_report`, no interpreter start) is shown beside it.
- The reports screen: from pressing `R` on a headless 120×36 dashboard to the tables
  and charts drawn (absolute).

The fixture is written straight into the schema (the domain's actions would take an
hour): incident rows through the store's own bulk insert (`Transaction.insert_incidents`,
so their SLA schedules are real), events with genuine kinds, times and payloads but
placeholder hashes (`sladeck verify` would refuse the chain; reports never read it).
Incidents open uniformly over the last 29 days; each has an `opened` event, most an
acknowledgement, a third an escalation with its handoff, three quarters a resolution
(closed unless a review is due), one in twenty a reopen, and notes up to about ten events.
Their clock_cycles are those the store derives from each row's state on insert.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _harness as h

AGGREGATE = "SELECT kind, count(*), min(at), max(at) FROM events GROUP BY kind"


def build(path: Path, count: int, events_per: int, seed: int = 3) -> int:
    """The fixture database; returns how many events it holds."""
    from sladeck.domain.model import Incident, to_iso
    from sladeck.policy import load_policy
    from sladeck.store import Store

    h._remove_db(path)
    policy = load_policy()
    rng = random.Random(seed)
    now = datetime.now(UTC)
    store = Store(path)
    incidents: list[Incident] = []
    events: list[tuple] = []
    handoffs: list[tuple] = []
    levels = policy.levels
    event_id = 0
    with store.write(bulk=True) as tx:
        pid = tx.policy_id(policy, now)
        for n in range(1, count + 1):
            severity = rng.choice(tuple(policy.severities))
            opened = now - timedelta(days=29 * rng.random())
            level, state, t = levels[0], "open", opened
            acked_at = resolved_at = closed_at = first_ack = None
            reached = {level: opened}
            entered = opened
            own: list[tuple[str, datetime, dict]] = [
                ("opened", opened, {"id": n, "title": f"bench incident {n}", "severity": severity,
                                    "level": level, "policy_id": pid,
                                    "service": rng.choice(h.SERVICES)})]

            def later(minutes: float) -> datetime:
                nonlocal t
                t = min(t + timedelta(minutes=minutes), now)
                return t

            if rng.random() < 0.85:
                acked_at = first_ack = later(rng.expovariate(1 / 20))
                own.append(("acknowledged", acked_at, {}))
                state = "acknowledged"
            if rng.random() < 0.35:
                to = levels[rng.randrange(1, len(levels))]
                at = later(rng.expovariate(1 / 40))
                own.append(("escalated", at, {"from": level, "to": to,
                                              "trigger": "advanced_knowledge", "reason": "",
                                              "fields": {"issue_summary": "bench"}}))
                level, state, entered, acked_at = to, "open", at, None
                reached = {**reached, **{lv: at for lv in levels[:levels.index(to) + 1]
                                         if lv not in reached}}
                if rng.random() < 0.8:
                    acked_at = later(rng.expovariate(1 / 15))
                    first_ack = first_ack or acked_at
                    own.append(("acknowledged", acked_at, {}))
                    state = "acknowledged"
            if rng.random() < 0.75 and t < now:
                resolved_at = later(rng.expovariate(1 / 240))
                own.append(("resolved", resolved_at, {"summary": "fixed", "checks": []}))
                state = "resolved"
                if not policy.needs_review(severity):
                    closed_at = resolved_at
                    own.append(("closed", closed_at, {"reason": "no review required"}))
                    state = "closed"
                if rng.random() < 0.05:
                    at = later(30)
                    own.append(("reopened", at, {"reason": "back"}))
                    state, entered, acked_at, resolved_at, closed_at = ("open", at, None, None,
                                                                        None)
            while len(own) < events_per:
                own.append(("note", later(rng.expovariate(1 / 30)), {"text": "bench note"}))
            own.sort(key=lambda e: e[1])
            version = 0
            for kind, at, payload in own:
                event_id += 1
                version += 1
                events.append((event_id, n, version, to_iso(at), "bench", None, kind,
                               json.dumps(payload, sort_keys=True), f"p{event_id}",
                               f"h{event_id}"))
                if kind == "escalated":
                    handoffs.append((n, event_id, payload["from"], payload["to"],
                                     payload["trigger"], "", '{"issue_summary":"bench"}'))
            incidents.append(Incident(
                id=n, title=f"bench incident {n}", severity=severity, level=level, state=state,
                opened_at=opened, opened_by="bench", level_entered_at=entered, policy_id=pid,
                version=version, service=own[0][2]["service"], acknowledged_at=acked_at,
                resolved_at=resolved_at, closed_at=closed_at, reached=reached,
                first_acknowledged_at=first_ack,
                changed_seq=event_id, updated_at=own[-1][1], updated_by="bench",
                last_change=own[-1][0]))
            if len(incidents) >= 5000:
                _flush(tx, incidents, events, handoffs)
        _flush(tx, incidents, events, handoffs)
    store.close()
    return event_id


def _flush(tx: object, incidents: list, events: list, handoffs: list) -> None:
    tx.insert_incidents(incidents)  # type: ignore[attr-defined]
    conn = tx.conn  # type: ignore[attr-defined]
    conn.executemany("INSERT INTO events (id, incident_id, version, at, account, name, kind, "
                     "payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", events)
    conn.executemany("INSERT INTO handoffs (incident_id, event_id, from_level, to_level, "
                     "trigger, reason, fields) VALUES (?, ?, ?, ?, ?, ?, ?)", handoffs)
    incidents.clear()
    events.clear()
    handoffs.clear()


def in_process_report(db: Path) -> float:
    from sladeck.clock import SystemClock
    from sladeck.domain.reports import build_report, report_range
    from sladeck.policy import load_policy
    from sladeck.store import Store

    store = Store(db)
    policy = load_policy()
    store.adopt(policy)
    started = time.perf_counter()
    since, until = report_range("30d", None, SystemClock().now(), None)
    build_report(store, store, since, until, "severity", policy.levels)
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed


def first_chart(db: Path) -> float:
    """Seconds from pressing R on a headless dashboard to the report drawn."""
    from sladeck.domain.model import Actor
    from sladeck.policy import load_policy
    from sladeck.tui.app import SladeckApp

    app = SladeckApp(db, load_policy(), Actor("bench"), poll_interval=None,
                     tick_interval=None, bell=False, run_hooks=False, cursor_blink=False)
    result: list[float] = []

    async def run() -> None:
        async with app.run_test(size=(h.COLS, h.ROWS)) as pilot:
            await app.workers.wait_for_complete()
            await pilot.pause()
            started = time.perf_counter()
            await pilot.press("R")
            while getattr(app.screen, "report", None) is None:
                await asyncio.sleep(0.005)
            await pilot.pause()  # the frame with the tables and charts
            result.append(time.perf_counter() - started)

    asyncio.run(run())
    return result[0]


def main() -> None:
    parser = h.common_args(__doc__.splitlines()[0], runs=3)
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--events-per", type=int, default=10)
    args = parser.parse_args()
    if args.quick:
        args.runs, args.incidents = 1, 500
    work = h.workdir(args)
    db = work / "reports.db"
    started = time.perf_counter()
    event_count = build(db, args.incidents, args.events_per)
    built = time.perf_counter() - started
    env = h.clean_env()
    shell = shutil.which("sqlite3")
    base_argv = [shell, str(db), AGGREGATE] if shell else [
        sys.executable, "-c", f"import sqlite3; sqlite3.connect({str(db)!r}).execute("
        f"{AGGREGATE!r}).fetchall()"]
    times: dict[str, list[float]] = {"report": [], "digest": [], "base": []}
    h.timed_run(base_argv, env)  # warm the page cache
    for _ in range(args.runs):
        times["report"].append(h.timed_run([*h.sladeck_argv(db), "report", "--since", "30d",
                                            "--format", "json"], env))
        times["base"].append(h.timed_run(base_argv, env))
        times["digest"].append(h.timed_run([*h.sladeck_argv(db), "digest"], env))
        times["base"].append(h.timed_run(base_argv, env))
    inner = h.median([in_process_report(db) for _ in range(args.runs)])
    chart = first_chart(db)
    base = h.median(times["base"])
    report, digest = h.median(times["report"]), h.median(times["digest"])
    what = f"{args.incidents:,} incidents, {event_count:,} events"
    figures = [
        h.Figure(f"`sladeck report --since 30d`, {what}", report, "s", base, "≤ 5×",
                 report / base <= 5,
                 f"its own work in process (no interpreter start): {h.fmt(inner, 's')}; "
                 f"baseline: the sqlite3 shell, one GROUP BY over every event; "
                 f"fixture built in {built:.1f} s"),
        h.Figure(f"`sladeck digest`, {what}", digest, "s", base, "≤ 5×", digest / base <= 5),
        h.Figure("reports screen: R to the first chart drawn", chart, "s", None, "≤ 2 s",
                 chart <= 2),
    ]
    h.report(figures, args)


if __name__ == "__main__":
    main()
