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


def test_compliance_counts_every_stored_cycle_by_its_outcome_at_the_end(
        tmp_path: Path) -> None:
    """Over the benchmark's fixture (cycles of one group and kind stopped before and
    after the range's end, running ones past and before their deadline), the report's
    compliance is each stored cycle counted by `cycle_outcome` at `until`. (SQL grouped
    by the stored outcome column, which the CASE's alias named too, and reported one
    arbitrary row's status for every cycle of that outcome.)"""
    import sys
    from collections import Counter
    from datetime import UTC, datetime, timedelta

    from sladeck.domain.reports import cycle_outcome
    from sladeck.store.rows import SELECT_CYCLES, cycle_from_row

    bench = Path(__file__).resolve().parent.parent / "benchmarks"
    sys.path.insert(0, str(bench))
    try:
        import bench_reports
    finally:
        sys.path.remove(str(bench))
    db = tmp_path / "r.db"
    bench_reports.build(db, 300, 6)
    store = Store(db)
    try:
        until = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
        since = until - timedelta(days=20)
        severity = {i.id: i.severity for i in store.incidents(None)
                    if since <= i.opened_at < until}
        expected: Counter[tuple[str, str, str]] = Counter()
        for row in store.conn.execute(SELECT_CYCLES):
            incident_id, cycle = cycle_from_row(row)
            if incident_id in severity and cycle.started_at < until:
                expected[severity[incident_id], cycle.kind, cycle_outcome(cycle, until)] += 1
        r = build_report(store, store, since, until, "severity")
        got = Counter({(g.name, kind, outcome): n for g in r.groups
                       for kind, outcomes in g.compliance.items()
                       for outcome, n in outcomes.items()})
        assert got == expected
        assert {o for _, _, o in expected} == {"met", "late", "breached", "running"}
    finally:
        store.close()


def test_a_report_imports_neither_the_service_nor_the_dashboard(
        db_path: Path, policy: Policy) -> None:
    """Python's start is part of every `sladeck report`: a read-only command loads no
    notice service (actions, sockets, signals), no Textual and no Rich."""
    import subprocess
    import sys

    sc.build(db_path, policy)
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "sladeck", "--db", str(db_path), "report",
         "--since", sc.REPORT_SINCE, "--until", sc.REPORT_UNTIL, "--format", "json"],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert "sladeck.domain.reports" in imported
    assert not imported & {"sladeck.service", "sladeck.domain.actions", "textual", "rich"}
