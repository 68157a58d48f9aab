"""The stand-up's reads: the day's activity from the timeline, follow-ups across
incidents, and resolved and closed incidents a page at a time."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from sladeck.clock import FixedClock
from sladeck.domain import actions
from sladeck.domain.actions import Desk
from sladeck.domain.standup import (
    ACTIVITY_KINDS,
    activity_summary,
    follow_ups_shown,
    since_day,
)
from sladeck.store import Store

pytestmark = pytest.mark.both_backends


def _resolved(desk: Desk, title: str, severity: str = "P1") -> int:
    inc = actions.open_incident(desk, title=title, severity=severity).incident
    actions.resolve(desk, inc.id, summary="fixed", checks="all")
    return inc.id


def test_activity_counts_incidents_by_event_kind_in_the_last_24_hours(
        desk: Desk, store: Store, clock: FixedClock) -> None:
    old = actions.open_incident(desk, title="yesterday's", severity="P2").incident
    actions.acknowledge(desk, old.id)
    clock.advance(hours=30)  # both events fall out of the window
    one = actions.open_incident(desk, title="new one", severity="P2").incident
    two = actions.open_incident(desk, title="new two", severity="P3").incident
    actions.acknowledge(desk, one.id)
    actions.escalate(desk, two.id, to="L2", trigger="other", reason="needs L2",
                     fields={f.key: "x" for f in desk.policy.escalation["L2"].handoff})
    actions.acknowledge(desk, two.id)
    actions.resolve(desk, old.id, summary="done", checks="all")  # P2: resolved and closed
    now = clock.now()
    counts = store.activity(since_day(now), now + timedelta(microseconds=1), ACTIVITY_KINDS)
    assert dict(activity_summary(counts)) == {
        "opened": 2, "acknowledged": 2, "escalated": 1, "breached": 0, "resolved": 1,
        "closed": 1}
    # a day and a microsecond later, every one of those events has left the window (the
    # open incidents' clocks may have breached meanwhile)
    later = now + timedelta(hours=24, microseconds=1)
    assert set(store.activity(since_day(later), later, ACTIVITY_KINDS)) <= {"sla_breached"}


@pytest.mark.sqlite_only  # SQLite's plan (test_postgres has the server's)
def test_activity_reads_the_time_index_not_the_whole_log(store: Store) -> None:
    plan = store.conn.execute(
        "EXPLAIN QUERY PLAN SELECT kind, count(DISTINCT incident_id) FROM events "
        "INDEXED BY events_time WHERE at >= '2026' AND at < '2027' GROUP BY kind").fetchall()
    assert "USING COVERING INDEX events_time" in " ".join(str(r[-1]) for r in plan)


def test_follow_ups_across_incidents_with_their_incident(desk: Desk, store: Store,
                                                         clock: FixedClock) -> None:
    a = _resolved(desk, "Checkout down")
    b = _resolved(desk, "Search slow", "P2")  # closed on resolve: still takes follow-ups
    first = actions.add_follow_up(desk, a, kind="monitoring", description="Alert on pool",
                                  owner="Tess", due="2026-11-20")
    actions.add_follow_up(desk, b, kind="training", description="Runbook drill",
                          owner="alice", due="2026-12-31")
    actions.add_follow_up(desk, b, kind="process_updates", description="Update the guide",
                          owner="bob")
    done_id = int(first.message.split()[1])
    entries = store.follow_up_entries()
    assert [(e.ref, e.follow_up.description, e.title, e.state) for e in entries] == [
        (f"INC-{a}", "Alert on pool", "Checkout down", "resolved"),
        (f"INC-{b}", "Runbook drill", "Search slow", "closed"),
        (f"INC-{b}", "Update the guide", "Search slow", "closed")]
    today = clock.now().date()
    assert [e.follow_up.description for e in follow_ups_shown(entries, "overdue", (), today)] \
        == ["Alert on pool"]
    assert [e.follow_up.description for e in follow_ups_shown(entries, "mine", ("tester",
                                                                              "tess"), today)] \
        == ["Alert on pool"]
    # open: the overdue one first, then by due date, undated last
    assert [e.follow_up.description for e in follow_ups_shown(entries, "open", (), today)] == [
        "Alert on pool", "Runbook drill", "Update the guide"]
    actions.complete_follow_up(desk, done_id)
    assert [e.follow_up.id for e in store.follow_up_entries()] == [done_id + 1, done_id + 2]
    everything = store.follow_up_entries(include_done=True)
    done = next(e for e in everything if e.follow_up.id == done_id)
    assert done.done and done.follow_up.done_by == "Tess (tester)"
    assert not done.overdue(date(2030, 1, 1))


def test_finished_incidents_come_a_page_at_a_time_newest_first(desk: Desk,
                                                               store: Store) -> None:
    ids = [_resolved(desk, f"closed {n}", "P3") for n in range(5)]  # P3 closes on resolve
    resolved = _resolved(desk, "needs a review", "P1")
    actions.open_incident(desk, title="still open", severity="P2")
    page = store.finished_incidents(("resolved", "closed"), limit=3)
    assert [i.id for i in page] == [resolved, ids[4], ids[3]]
    rest = store.finished_incidents(("resolved", "closed"), limit=3, before_id=page[-1].id)
    assert [i.id for i in rest] == [ids[2], ids[1], ids[0]]
    assert [i.id for i in store.finished_incidents(("closed",), limit=10)] == ids[::-1]


def test_a_breach_counts_in_the_day_whether_or_not_its_notice_was_recorded(
        desk: Desk, store: Store, clock: FixedClock) -> None:
    told = actions.open_incident(desk, title="told", severity="P1").incident
    actions.open_incident(desk, title="nobody watching", severity="P1")
    clock.advance(hours=2)  # both response clocks (P1 at L1) have breached
    actions.record_notices(desk, [store.incident(told.id)])  # one was seen and told
    now = clock.now()
    counts = store.activity(since_day(now), now, ACTIVITY_KINDS)
    assert dict(activity_summary(counts))["breached"] == 2
    later = now + timedelta(hours=26)  # breached before that day began
    assert "sla_breached" not in store.activity(since_day(later), later, ACTIVITY_KINDS)
