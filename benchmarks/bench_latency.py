"""Commit by another process → the change on the dashboard's screen (p50, p95).

The dashboard runs on a pseudo-terminal (120x36, so the ASSIGNEE column shows). This
process is the "other process": it assigns an incident on screen to a new name
through the domain API (its own connection, one committed transaction) and times
from the commit returning until the name reaches the terminal. Commits are spaced
by a random 0.1-0.5 s so they land at every phase of the dashboard's poll.
"""

from __future__ import annotations

import random
import time

import _harness as h


def main() -> None:
    parser = h.common_args(__doc__.splitlines()[0], runs=50)
    args = parser.parse_args()
    if args.quick:
        args.runs, args.open_count, args.closed_count = 3, 200, 500
    from sladeck.clock import SystemClock
    from sladeck.domain import actions
    from sladeck.domain.model import ACTIVE_STATES, RESOLVED, Actor
    from sladeck.domain.queue import Queue
    from sladeck.policy import load_policy
    from sladeck.store import Store

    fx = h.build_db(h.workdir(args) / "latency.db", args.open_count, args.closed_count)
    policy = load_policy(h.policy_file(fx.path))  # the fixture's, as the dashboard's
    store = Store(fx.path)
    store.adopt(policy)
    clock = SystemClock()
    desk = actions.Desk(store, policy, clock, Actor("bench", "bench"))
    queue = Queue(store.policy)
    queue.load(store.incidents((*ACTIVE_STATES, RESOLVED)), clock.now())
    rng = random.Random(3)
    latencies = []
    with h.PtyApp(h.sladeck_argv(fx.path)) as app:
        app.wait_for(b"INC-", 60)
        app.pump(1.0)
        for n in range(args.runs):
            queue.tick(clock.now())
            target = queue.visible[min(3, len(queue.visible) - 1)].incident
            # The dashboard writes only the cells that changed, so consecutive names must
            # differ in their first and last characters for the whole name to be written.
            mark = chr(ord("A") + n % 26)
            name = f"{mark}lat{n:04d}{mark}"
            since = app.mark()
            out = actions.assign(desk, target.id, name)
            committed = time.perf_counter()
            latencies.append(app.wait_for(name.encode(), 10, since) - committed)
            queue.merge([out.incident], clock.now())
            app.pump(rng.uniform(0.1, 0.5))
    store.close()
    p95 = h.percentile(latencies, 0.95)
    figures = [
        h.Figure(f"commit → screen p50, {args.open_count:,} open", h.percentile(latencies, 0.5),
                 "s"),
        h.Figure(f"commit → screen p95 over {len(latencies)} commits", p95, "s", None,
                 "≤ 250 ms", p95 <= 0.25, f"max {max(latencies) * 1000:.0f} ms"),
    ]
    h.report(figures, args)


if __name__ == "__main__":
    main()
