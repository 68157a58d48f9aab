"""How `sladeck report` reads a large log (issue 14, benchmarks/bench_reports.py): each
incident's events once, in key order, with no sort over every event or clock cycle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import report_scenario as sc
from sladeck.domain.reports import build_report
from sladeck.policy import Policy
from sladeck.store import Store
from sladeck.store import reports as sql


class Planner:
    """Stands in for a connection: records each statement's query plan."""

    def __init__(self, store: Store) -> None:
        self.conn = store.conn
        self.plans: list[list[str]] = []

    def execute(self, statement: str, params: Any = ()) -> list[Any]:
        self.plans.append([row[3] for row in
                           self.conn.execute(f"EXPLAIN QUERY PLAN {statement}", params)])
        return []


def test_the_events_pass_reads_incidents_in_order_and_their_events_by_key(
        db_path: Path, policy: Policy) -> None:
    sc.build(db_path, policy)
    store = Store(db_path)
    planner = Planner(store)
    sql.incident_events(planner, sc.REPORT_SINCE, sc.REPORT_UNTIL)  # type: ignore[arg-type]
    sql.compliance(planner, "severity", sc.REPORT_SINCE, sc.REPORT_UNTIL)  # type: ignore[arg-type]
    events, cycles = planner.plans
    assert events[0].startswith("SCAN c"), events
    assert "events_incident" in events[1], events
    assert not any("TEMP B-TREE" in step for step in events), events
    assert cycles[0].startswith("SCAN c") and "PRIMARY KEY" in cycles[1], cycles
    assert not any("TEMP B-TREE" in step for step in cycles), cycles
    store.close()


class Racing:
    """A report source whose events include an incident opened after its cohort was
    read (a commit between the two reads)."""

    def report_cohort(self, by: str, since: str, until: str) -> list[tuple[Any, ...]]:
        return [(1, "P1", 1, "P1", 2461000.0)]

    def report_events(self, since: str, until: str) -> list[tuple[Any, ...]]:
        return [(1, 0, 2461000.0, "L1"), (1, 1, 2461000.01, None),
                (2, 0, 2461000.5, "L1"), (2, 1, 2461000.6, None)]

    def __getattr__(self, name: str) -> Any:
        return lambda *args: []


class NoReviews:
    def policy(self, policy_id: int) -> Any:
        return self

    def needs_review(self, severity: str) -> bool:
        return False


def test_an_incident_opened_between_the_reports_reads_is_left_out() -> None:
    from datetime import UTC, datetime

    r = build_report(Racing(), NoReviews(), datetime(2026, 1, 1, tzinfo=UTC),
                     datetime(2026, 2, 1, tzinfo=UTC), "severity")
    assert r.total.counts["opened"] == 1
    assert r.total.counts["acknowledged"] == 1
    assert r.total.tta == [(2461000.01 - 2461000.0) * 86400.0]
