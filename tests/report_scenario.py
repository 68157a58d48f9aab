"""A fixed-clock scenario for reports and digests (tests/test_reports.py, the reports
screen's snapshots): 15 incidents covering met, late, breached, reopened, escalated
away from a breach, every severity, follow-ups and reviews.

Each incident's story is written relative to its own opening time `t`; the steps of all
of them run in time order on one FixedClock. `REPORT_SINCE`/`REPORT_UNTIL` is the range
the hand-computed tables in test_reports.py cover; `NOW` is when they are run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sladeck.clock import FixedClock
from sladeck.domain import actions as act
from sladeck.domain.actions import Desk
from sladeck.domain.model import Actor
from sladeck.policy import Policy
from sladeck.store import Store

B = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)  # Friday: the first incident opens
REPORT_SINCE, REPORT_UNTIL = "2026-11-20", "2026-11-26"  # midnight UTC (tests run in UTC)
NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)  # 10:00 in New York: shift began 08:00

M, H = timedelta(minutes=1), timedelta(hours=1)
L2 = {"issue_summary": "Checkout down\nsecond line", "actions_taken": "restarted",
      "current_status": "degraded", "logs_and_evidence": "grafana",
      "business_impact": "orders lost"}
L3 = {"technical_details": "Replica lag on db-2\nmore", "system_architecture": "primary/replica",
      "security_assessment": "none", "business_impact": "orders",
      "recovery_procedures": "failover"}
L4 = {"executive_summary": "Payments are failing\nfor all", "business_impact": "all orders",
      "financial_impact": "high", "timeline": "since 08:00", "recommendations": "fail over"}
REVIEW = {"incident_analysis": "a", "root_cause_analysis": "b", "lessons_learned": "c",
          "process_improvement": "d"}


def build(db_path: Path, policy: Policy) -> dict[str, int]:
    """Fill `db_path` with the scenario; returns each story's incident id."""
    clock = FixedClock(B)
    store = Store(db_path)
    desk = Desk(store, policy, clock, Actor("tester", "Tess"))
    ids: dict[str, int] = {}
    steps: list[tuple[datetime, int, Callable[[], object]]] = []

    def story(name: str, severity: str, t: datetime, *later: tuple[timedelta, Callable[[int], object]],
              service: str = "") -> None:
        def opened() -> None:
            ids[name] = act.open_incident(desk, title=f"{name} story", severity=severity,
                                          service=service).incident.id
        steps.append((t, len(steps), opened))
        for delta, step in later:
            steps.append((t + delta, len(steps), lambda step=step: step(ids[name])))

    def ack(i: int) -> object:
        return act.acknowledge(desk, i)

    def esc(to: str, trigger: str, fields: dict[str, str]) -> Callable[[int], object]:
        return lambda i: act.escalate(desk, i, to=to, trigger=trigger, fields=fields)

    def res(i: int) -> object:
        return act.resolve(desk, i, summary="fixed", checks="all")

    def review(i: int) -> object:
        return act.file_review(desk, i, REVIEW)

    # 1 P0 met everywhere: ack at L1 3m, to L4 at 4m, ack at L4 10m, resolved 1h, reviewed.
    story("met-p0", "P0", B, (3 * M, ack), (4 * M, esc("L4", "business_critical", L4)),
          (10 * M, ack), (H, res), (2 * H, review))
    # 2 P1 acknowledged late (20m > 15m: response breached), resolved 5h (> 4h target: late).
    story("late-p1", "P1", B + 2 * H, (20 * M, ack), (5 * H, res), service="=cmd|' /C calc'!A0")
    # 3 P2 resolved after 25h (> 24h maximum: breached), closed on resolve.
    story("breached-p2", "P2", B + 4 * H, (30 * M, ack), (25 * H, res))
    # 4 P3 met: ack 1h, resolved 2h, closed.
    story("met-p3", "P3", B + 6 * H, (H, ack), (2 * H, res))
    # 5 P1 escalated away from a breached response: no ack at L1, to L2 at 20m, ack 30m.
    story("away-p1", "P1", B + 8 * H, (20 * M, esc("L2", "advanced_knowledge", L2)),
          (30 * M, ack), (H, res))
    # 6 P2 reopened: ack 10m, resolved 1h (closed), reopened 2h, ack 2h10m, resolved 3h.
    story("reopened-p2", "P2", B + 10 * H, (10 * M, ack), (H, res),
          (2 * H, lambda i: act.reopen(desk, i, reason="back")), (2 * H + 10 * M, ack),
          (3 * H, res))
    # 7 P0 through L2 and L3 without an ack until L3 (16m); still open.
    story("climb-p0", "P0", B + 12 * H, (2 * M, esc("L2", "advanced_knowledge", L2)),
          (6 * M, esc("L3", "security_concerns", L3)), (16 * M, ack))
    # 8 P3 never acknowledged; still open.
    story("silent-p3", "P3", B + 14 * H)
    # 9 P2 assigned, ack 5m, resolved 30m.
    story("quick-p2", "P2", B + 16 * H, (M, lambda i: act.assign(desk, i, "alice")),
          (5 * M, ack), (30 * M, res), service="search")
    # 10 P1 ack 5m, resolved 2h, three follow-ups (one done), reviewed.
    story("followed-p1", "P1", B + 18 * H, (5 * M, ack), (2 * H, res),
          (2 * H + M, lambda i: act.add_follow_up(desk, i, kind="monitoring",
                                                  description="alert on lag", owner="bob",
                                                  due="2026-11-22")),
          (2 * H + 2 * M, lambda i: act.add_follow_up(desk, i, kind="training",
                                                      description="=HYPERLINK(1)", owner="bob",
                                                      due="2026-12-31")),
          (2 * H + 3 * M, lambda i: act.add_follow_up(desk, i, kind="process_updates",
                                                      description="runbook", owner="carol")),
          (2 * H + 4 * M, lambda i: act.complete_follow_up(desk, 3)),
          (3 * H, review))
    # 11 P0 ack 4m, resolved only on 2026-11-26 14:30 (after the report, in the digest).
    story("slow-p0", "P0", B + 20 * H, (4 * M, ack),
          (NOW - timedelta(minutes=30) - (B + 20 * H), res))
    # 12 P3 opened before the report's range.
    story("before-p3", "P3", B - 9 * H, (H, ack))
    # 13 P2 opened after the report's range, acknowledged in the digest's window.
    story("after-p2", "P2", datetime(2026, 11, 26, 1, 0, tzinfo=UTC),
          (13 * H, ack))
    # 14 P1 opened in the digest's window, escalated to L2 at once, unacknowledged there
    # (L2 response 30m: breached at 14:10).
    story("shift-p1", "P1", datetime(2026, 11, 26, 13, 30, tzinfo=UTC),
          (10 * M, esc("L2", "advanced_knowledge", L2)))
    # 15 P1 opened in the digest's window, escalated away from its breached L1 response
    # (due 13:20) at 13:25, acknowledged at L2 at 13:30.
    story("shift-away-p1", "P1", datetime(2026, 11, 26, 13, 5, tzinfo=UTC),
          (20 * M, esc("L2", "advanced_knowledge", L2)), (25 * M, ack))
    for at, _, step in sorted(steps, key=lambda s: (s[0], s[1])):
        clock.set(at)
        step()
    store.close()
    return ids
