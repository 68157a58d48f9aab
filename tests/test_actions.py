"""What people do to incidents: each action, its refusals, conflicts, notices and import."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftest import transaction_class
from sladeck.domain import actions
from sladeck.domain.actions import Desk
from sladeck.domain.clocks import BREACHED, DUE, RUNNING, assess
from sladeck.domain.ingest import ImportRefused, import_ndjson
from sladeck.domain.model import Actor, to_iso
from sladeck.errors import Conflict, MissingFields, NotFound, Refused
from sladeck.policy import Policy, parse_policy
from sladeck.store import Store, open_store
from sladeck.verify import verify

T0 = datetime(2026, 11, 26, 15, 0, 0, tzinfo=UTC)  # the `clock` fixture's start

REVIEW = {"incident_analysis": "what happened", "root_cause_analysis": "a bad deploy",
          "lessons_learned": "canary first", "process_improvement": "add a canary stage"}


pytestmark = pytest.mark.both_backends

def handoff(policy: Policy, level: str) -> dict[str, str]:
    """Every handoff field of `level`, filled in."""
    return {item.key: f"{item.label} for {level}" for item in policy.escalation[level].handoff}


def trigger(policy: Policy, level: str) -> str:
    return next(t.key for t in policy.escalation[level].triggers if t.after is None)


def clocks(store: Store, incident_id: int, now):
    incident = store.incident(incident_id)
    return {c.kind: c for c in assess(incident, store.policy(incident.policy_id), now).clocks}


def count(store: Store, table: str) -> int:
    return store.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.fixture(autouse=True)
def _log_stays_verifiable(store: Store):
    """Whatever a test did, the hash chain and every incident row still check out."""
    yield
    assert verify(store) == []


@pytest.fixture
def inc(desk: Desk):
    """An open P2 incident at L1, opened at T0 by Tess."""
    return actions.open_incident(desk, title="Checkout is slow", severity="P2",
                                 service="checkout").incident


# -- open ---------------------------------------------------------------------------

def test_open_starts_at_the_first_level(desk: Desk, store: Store, clock) -> None:
    outcome = actions.open_incident(desk, title="API 500s", severity="P1", service="api",
                                    external_ref="OPS-12", description="spiking")
    inc = outcome.incident
    assert (inc.ref, inc.level, inc.state, inc.severity) == ("INC-1", "L1", "open", "P1")
    assert inc.opened_at == T0 and inc.level_entered_at == T0
    assert inc.opened_by == "Tess (tester)"
    assert outcome.message == "INC-1 opened (P1 at L1)"
    stored = store.incident(inc.id)
    assert stored == inc
    assert (stored.service, stored.external_ref, stored.description) == ("api", "OPS-12",
                                                                         "spiking")
    [event] = store.events(inc.id)
    assert (event.kind, event.account, event.name, event.at) == ("opened", "tester", "Tess", T0)


def test_policy_is_stored_once_per_distinct_text(desk: Desk, store: Store, db_url: str,
                                                 policy: Policy, clock) -> None:
    actions.open_incident(desk, title="One", severity="P2")
    actions.open_incident(desk, title="Two", severity="P3")
    assert count(store, "policies") == 1
    other = open_store(db_url)  # another process with an empty cache
    try:
        actions.open_incident(Desk(other, policy, clock, Actor("bob")), title="Three",
                              severity="P1")
    finally:
        other.close()
    assert count(store, "policies") == 1
    changed = parse_policy(policy.source.replace("owner: Support Team", "owner: Ops"), "new.yaml")
    actions.open_incident(Desk(store, changed, clock, Actor("bob")), title="Four", severity="P1")
    assert count(store, "policies") == 2
    assert len({i.policy_id for i in store.incidents()}) == 2


@pytest.mark.parametrize(("title", "severity", "message"), [
    ("Disk full", "P9", "unknown severity 'P9'"),
    ("Disk full", "p1", "unknown severity 'p1'"),
    ("", "P1", "title must not be blank"),
    ("   \t", "P1", "title must not be blank"),
    ("x" * 1001, "P1", "the limit is 1,000"),
])
def test_open_refuses_bad_input_and_writes_nothing(desk: Desk, store: Store, title: str,
                                                   severity: str, message: str) -> None:
    with pytest.raises(Refused, match=message):
        actions.open_incident(desk, title=title, severity=severity)
    assert store.incidents(None) == []
    assert store.last_seq() == 0


def test_title_with_control_characters_is_stored_exactly(desk: Desk, store: Store) -> None:
    title = "\x1b]0;pwned\x07\x1b[2J[bold red]boom[/] \u202eevil\r\n\x9b31m"
    inc = actions.open_incident(desk, title=title, severity="P3").incident
    assert store.incident(inc.id).title == title
    assert store.events(inc.id)[0].payload["title"] == title


def test_open_with_an_open_dedup_key_counts_a_repeat(desk: Desk, store: Store) -> None:
    first = actions.open_incident(desk, title="Disk full", severity="P2", dedup_key="disk")
    again = actions.open_incident(desk, title="Disk full", severity="P2", dedup_key="disk")
    assert again.incident.id == first.incident.id
    assert again.incident.repeats == 1
    assert again.message == "INC-1 repeated (1 repeats)"
    assert again.incident.version == first.incident.version  # a repeat makes no form stale
    assert len(store.incidents()) == 1


# -- acknowledge ----------------------------------------------------------------------

def test_acknowledge(desk: Desk, store: Store, clock, inc) -> None:
    clock.advance(minutes=4)
    outcome = actions.acknowledge(desk, inc.id)
    assert outcome.changed
    stored = store.incident(inc.id)
    assert stored.state == "acknowledged"
    assert stored.acknowledged_by == "Tess (tester)"
    assert stored.acknowledged_at == T0 + timedelta(minutes=4)
    event = store.events(inc.id)[-1]
    assert (event.kind, event.account, event.name) == ("acknowledged", "tester", "Tess")
    assert clocks(store, inc.id, clock.now())["response"].status == "met"


def test_acknowledging_twice_is_a_no_op_naming_who_and_when(desk: Desk, store: Store, clock,
                                                          make_desk, inc) -> None:
    actions.acknowledge(desk, inc.id)
    seq = store.last_seq()
    clock.advance(minutes=3)
    outcome = actions.acknowledge(make_desk("bob"), inc.id)
    assert not outcome.changed and outcome.event is None
    assert outcome.message == (f"INC-1 is already acknowledged by Tess (tester) at "
                               f"{actions.local_time(T0)}")
    assert store.last_seq() == seq
    assert store.incident(inc.id).acknowledged_by == "Tess (tester)"


def test_resolved_incident_cannot_be_acknowledged(desk: Desk, store: Store, inc) -> None:
    actions.resolve(desk, inc.id, summary="fixed", checks="all")
    seq = store.last_seq()
    with pytest.raises(Refused, match="INC-1 is closed; reopen it"):
        actions.acknowledge(desk, inc.id)
    assert store.last_seq() == seq


def test_unknown_incident_is_not_found(desk: Desk) -> None:
    with pytest.raises(NotFound, match="INC-99 does not exist"):
        actions.acknowledge(desk, 99)


# -- escalate -------------------------------------------------------------------------

@pytest.mark.parametrize("level", ["L2", "L3", "L4"])
def test_escalation_needs_every_handoff_field(desk: Desk, store: Store, policy: Policy,
                                              level: str, inc) -> None:
    fields = handoff(policy, level)
    keys = list(fields)
    fields[keys[0]] = "   \n\t"  # blank after trimming
    del fields[keys[-1]]
    seq = store.last_seq()
    with pytest.raises(MissingFields) as caught:
        actions.escalate(desk, inc.id, to=level, trigger=trigger(policy, level), fields=fields)
    assert caught.value.missing == [keys[0], keys[-1]]
    assert keys[0] in str(caught.value) and keys[-1] in str(caught.value)
    assert store.last_seq() == seq
    assert store.incident(inc.id).level == "L1"
    assert store.detail(inc.id).handoffs == ()


def test_escalation_with_no_fields_lists_them_all(desk: Desk, policy: Policy, inc) -> None:
    with pytest.raises(MissingFields) as caught:
        actions.escalate(desk, inc.id, to="L2", trigger="performance", fields={})
    assert caught.value.missing == ["issue_summary", "actions_taken", "current_status",
                                    "logs_and_evidence", "business_impact"]


def test_escalation_refuses_an_unknown_trigger_or_field(desk: Desk, store: Store,
                                                        policy: Policy, inc) -> None:
    seq = store.last_seq()
    with pytest.raises(Refused, match="unknown trigger 'not_resolved_8h' for L2"):
        actions.escalate(desk, inc.id, to="L2", trigger="not_resolved_8h",
                         fields=handoff(policy, "L2"))
    with pytest.raises(Refused, match="choose a trigger"):
        actions.escalate(desk, inc.id, to="L2", trigger="", fields=handoff(policy, "L2"))
    with pytest.raises(Refused, match="unknown handoff field 'mood'"):
        actions.escalate(desk, inc.id, to="L2", trigger="performance",
                         fields={**handoff(policy, "L2"), "mood": "grim"})
    assert store.last_seq() == seq


def test_trigger_other_needs_a_reason(desk: Desk, store: Store, policy: Policy, inc) -> None:
    with pytest.raises(Refused, match="'other' needs a reason"):
        actions.escalate(desk, inc.id, to="L2", trigger="other", fields=handoff(policy, "L2"),
                         reason="  ")
    assert store.incident(inc.id).level == "L1"
    actions.escalate(desk, inc.id, to="L2", trigger="other", fields=handoff(policy, "L2"),
                     reason="customer asked")
    [h] = store.detail(inc.id).handoffs
    assert (h.trigger, h.reason) == ("other", "customer asked")


def test_escalation_records_state_handoff_and_event(desk: Desk, store: Store, clock,
                                                    policy: Policy, inc) -> None:
    actions.acknowledge(desk, inc.id)
    clock.advance(minutes=20)
    fields = handoff(policy, "L2")
    outcome = actions.escalate(desk, inc.id, to="L2", trigger="performance", fields=fields)
    assert outcome.message == "INC-1 escalated to L2"
    now = T0 + timedelta(minutes=20)
    stored = store.incident(inc.id)
    assert (stored.level, stored.state) == ("L2", "open")  # L2 must respond now
    assert stored.acknowledged_at is None and stored.acknowledged_by is None
    assert stored.level_entered_at == now
    assert stored.reached["L1"] == T0 and stored.reached["L2"] == now
    event = store.events(inc.id)[-1]
    assert event.kind == "escalated"
    assert event.payload == {"from": "L1", "to": "L2", "trigger": "performance", "reason": "",
                             "fields": fields, "assignee": None}
    [h] = store.detail(inc.id).handoffs
    assert (h.from_level, h.to_level, h.trigger, h.fields, h.at, h.actor) == (
        "L1", "L2", "performance", fields, now, "Tess (tester)")
    response = clocks(store, inc.id, now)["response"]
    assert response.status == RUNNING
    assert response.due_at == now + policy.response_time("P2", "L2")


# -- ownership moves with an escalation (SPEC §2) ------------------------------------------

def test_escalating_clears_the_assignee_unless_it_names_the_new_owner(
        desk: Desk, store: Store, policy: Policy, inc) -> None:
    actions.assign(desk, inc.id, "ola (L1)")
    outcome = actions.escalate(desk, inc.id, to="L2", trigger="performance",
                               fields=handoff(policy, "L2"))
    assert outcome.message == "INC-1 escalated to L2, unassigned (was ola (L1))"
    assert store.incident(inc.id).assignee is None
    assert store.events(inc.id)[-1].payload["assignee"] is None
    outcome = actions.escalate(desk, inc.id, to="L3", trigger="security_concerns",
                               fields=handoff(policy, "L3"), assignee="  priya  ")
    assert outcome.message == "INC-1 escalated to L3, assigned to priya"
    assert store.incident(inc.id).assignee == "priya"
    assert store.events(inc.id)[-1].payload["assignee"] == "priya"
    actions.escalate(desk, inc.id, to="L4", trigger="business_critical",
                     fields=handoff(policy, "L4"), assignee="")
    assert store.incident(inc.id).assignee is None
    assert verify(store) == []  # the replay clears and sets it the same way


def test_an_escalation_recorded_before_ownership_moved_keeps_its_assignee() -> None:
    """Old files: an `escalated` event without the `assignee` key replays as it did."""
    from sladeck.domain.timeline import apply_event

    me = Actor("tester")
    opened = apply_event(None, event_id=1, version=1, kind="opened", at=T0, actor=me,
                         levels=("L1", "L2"), payload={"id": 1, "title": "t", "severity": "P2",
                                                       "level": "L1", "policy_id": 1})
    owned = apply_event(opened, event_id=2, version=2, kind="assigned", at=T0, actor=me,
                        levels=("L1", "L2"), payload={"from": None, "to": "ola"})
    old = apply_event(owned, event_id=3, version=3, kind="escalated", at=T0, actor=me,
                      levels=("L1", "L2"), payload={"from": "L1", "to": "L2",
                                                    "trigger": "x", "fields": {}})
    assert old.assignee == "ola"


# -- timed triggers (SPEC §3: a trigger naming a time waits for it) ------------------------

def test_a_timed_trigger_is_refused_until_its_time_at_the_level_has_passed(
        desk: Desk, store: Store, clock, policy: Policy, inc) -> None:
    assert policy.escalation["L2"].triggers[0].after == timedelta(minutes=30)
    clock.advance(minutes=17, seconds=30)
    with pytest.raises(MissingFields, match=r"^trigger 'not_resolved_30m' can be chosen in "
                                            r"12m30s$") as refused:
        actions.escalate(desk, inc.id, to="L2", trigger="not_resolved_30m",
                         fields=handoff(policy, "L2"))
    assert refused.value.missing == ["trigger"]
    clock.set(T0 + timedelta(minutes=30) - timedelta(microseconds=1))
    with pytest.raises(MissingFields, match=r"can be chosen in 0m01s$"):  # rounded up
        actions.escalate(desk, inc.id, to="L2", trigger="not_resolved_30m",
                         fields=handoff(policy, "L2"))
    assert store.incident(inc.id).level == "L1"
    assert [e.kind for e in store.events(inc.id)] == ["opened"]
    clock.set(T0 + timedelta(minutes=30))
    actions.escalate(desk, inc.id, to="L2", trigger="not_resolved_30m",
                     fields=handoff(policy, "L2"))
    # It counts from entering the current level: L2's own criterion waits 2h at L2.
    clock.advance(hours=1, minutes=59, seconds=59)
    with pytest.raises(MissingFields, match=r"'not_resolved_2h' can be chosen in 0m01s$"):
        actions.escalate(desk, inc.id, to="L3", trigger="not_resolved_2h",
                         fields=handoff(policy, "L3"))
    clock.advance(seconds=1)
    actions.escalate(desk, inc.id, to="L3", trigger="not_resolved_2h",
                     fields=handoff(policy, "L3"))
    assert store.incident(inc.id).level == "L3"


def test_a_timed_trigger_refusal_comes_after_missing_fields(desk: Desk, policy: Policy,
                                                            inc) -> None:
    with pytest.raises(MissingFields, match=r"needs: .*; and trigger 'not_resolved_30m' can be "
                                            r"chosen in 30m00s$"):
        actions.escalate(desk, inc.id, to="L2", trigger="not_resolved_30m", fields={})


def test_escalation_may_skip_levels_up_to_l4_and_no_further(desk: Desk, store: Store,
                                                            policy: Policy) -> None:
    inc = actions.open_incident(desk, title="Total outage", severity="P0").incident
    actions.escalate(desk, inc.id, to="L4", trigger=trigger(policy, "L4"),
                     fields=handoff(policy, "L4"))
    stored = store.incident(inc.id)
    assert stored.level == "L4"
    assert set(stored.reached) == {"L1", "L2", "L3", "L4"}
    assert clocks(store, inc.id, T0)["severity_level"].status == "met"
    seq = store.last_seq()
    with pytest.raises(Refused, match="INC-1 is at L4, the top level; nothing is above it"):
        actions.escalate(desk, inc.id, to="L4", trigger=trigger(policy, "L4"),
                         fields=handoff(policy, "L4"))
    with pytest.raises(Refused, match="unknown level 'L5'"):
        actions.escalate(desk, inc.id, to="L5", trigger="x", fields={})
    assert store.last_seq() == seq


def test_escalation_never_goes_sideways_or_down(desk: Desk, store: Store, policy: Policy,
                                                inc) -> None:
    actions.escalate(desk, inc.id, to="L3", trigger=trigger(policy, "L3"),
                     fields=handoff(policy, "L3"))
    seq = store.last_seq()
    for level in ("L3", "L2", "L1"):
        with pytest.raises(Refused, match=r"already at L3; escalate to a higher level \(L4\)"):
            actions.escalate(desk, inc.id, to=level, trigger=trigger(policy, "L2"),
                             fields=handoff(policy, "L2"))
    assert store.last_seq() == seq


def test_resolved_or_closed_incident_cannot_be_escalated(desk: Desk, store: Store,
                                                         policy: Policy) -> None:
    p1 = actions.open_incident(desk, title="Resolved", severity="P1").incident
    p3 = actions.open_incident(desk, title="Closed", severity="P3").incident
    actions.resolve(desk, p1.id, summary="fixed", checks="all")
    actions.resolve(desk, p3.id, summary="fixed", checks="all")
    seq = store.last_seq()
    with pytest.raises(Refused, match="INC-1 is resolved"):
        actions.escalate(desk, p1.id, to="L2", trigger="performance",
                         fields=handoff(policy, "L2"))
    with pytest.raises(Refused, match="INC-2 is closed"):
        actions.escalate(desk, p3.id, to="L2", trigger="performance",
                         fields=handoff(policy, "L2"))
    assert store.last_seq() == seq


# -- note, assign, severity -------------------------------------------------------------

def test_note_never_makes_a_form_stale(desk: Desk, store: Store, make_desk, inc) -> None:
    seen = inc.version
    outcome = actions.add_note(make_desk("bob"), inc.id, "looking at the DB")
    assert outcome.incident.version == seen
    assert store.events(inc.id)[-1].payload == {"text": "looking at the DB"}
    assert actions.acknowledge(desk, inc.id, expected_version=seen).changed
    with pytest.raises(Refused, match="note must not be blank"):
        actions.add_note(desk, inc.id, "  ")


def test_assign_and_unassign(desk: Desk, store: Store, inc) -> None:
    outcome = actions.assign(desk, inc.id, "  bob  ")
    assert outcome.message == "INC-1 assigned to bob"
    assert store.incident(inc.id).assignee == "bob"
    assert store.events(inc.id)[-1].payload == {"from": None, "to": "bob"}
    seq = store.last_seq()
    again = actions.assign(desk, inc.id, "bob")
    assert not again.changed and store.last_seq() == seq
    assert actions.assign(desk, inc.id, "").message == "INC-1 unassigned"
    assert store.incident(inc.id).assignee is None


def test_change_severity_needs_a_reason_and_clocks_follow(desk: Desk, store: Store,
                                                          policy: Policy, inc) -> None:
    before = clocks(store, inc.id, T0)
    assert before["severity_level"].due_at == T0 + timedelta(hours=2)
    assert before["severity_level"].target_level == "L2"
    with pytest.raises(Refused, match="reason must not be blank"):
        actions.change_severity(desk, inc.id, "P1", reason=" ")
    with pytest.raises(Refused, match="already P2"):
        actions.change_severity(desk, inc.id, "P2", reason="same")
    with pytest.raises(Refused, match="unknown severity"):
        actions.change_severity(desk, inc.id, "P7", reason="x")
    assert store.last_seq() == 1
    outcome = actions.change_severity(desk, inc.id, "P1", reason="customers affected")
    assert outcome.message == "INC-1 changed from P2 to P1"
    after = clocks(store, inc.id, T0)
    assert after["severity_level"].due_at == T0 + timedelta(hours=1)
    assert after["severity_level"].target_level == "L3"
    assert after["response"].due_at == T0 + policy.response_time("P1", "L1")
    assert after["resolution_maximum"].due_at == T0 + timedelta(hours=8)
    assert store.events(inc.id)[-1].payload == {"from": "P2", "to": "P1",
                                                "reason": "customers affected"}


# -- resolve, reopen, review, follow-ups ------------------------------------------------

def test_resolve_needs_summary_and_every_checklist_item(desk: Desk, store: Store,
                                                        inc) -> None:
    with pytest.raises(MissingFields, match="resolution summary") as caught:
        actions.resolve(desk, inc.id, summary="  ", checks="all")
    assert caught.value.missing == ["summary"]
    with pytest.raises(MissingFields) as caught:
        actions.resolve(desk, inc.id, summary="fixed", checks=["verify_resolution"])
    assert caught.value.missing == ["test_system", "monitor_stability", "document_resolution"]
    with pytest.raises(Refused, match="unknown checklist item 'vibes'"):
        actions.resolve(desk, inc.id, summary="fixed", checks=["vibes"])
    assert store.last_seq() == 1
    assert store.incident(inc.id).state == "open"


def test_p2_and_p3_close_on_resolve(desk: Desk, store: Store, clock) -> None:
    for severity in ("P2", "P3"):
        inc = actions.open_incident(desk, title=severity, severity=severity).incident
        clock.advance(minutes=5)
        outcome = actions.resolve(desk, inc.id, summary="fixed", checks=[
            "verify_resolution", "test_system", "monitor_stability", "document_resolution"])
        assert outcome.message == f"{inc.ref} resolved and closed"
        stored = store.incident(inc.id)
        assert stored.state == "closed"
        assert stored.resolved_at == stored.closed_at == clock.now()
        assert [e.kind for e in store.events(inc.id)][-2:] == ["resolved", "closed"]
        ticks = store.detail(inc.id).ticks
        assert {(t.checklist, t.item) for t in ticks} == {
            ("resolution", k) for k in ("verify_resolution", "test_system",
                                        "monitor_stability", "document_resolution")}
    assert store.incidents() == []


@pytest.mark.parametrize("severity", ["P0", "P1"])
def test_p0_and_p1_stay_resolved_until_reviewed(desk: Desk, store: Store, clock,
                                                severity: str) -> None:
    inc = actions.open_incident(desk, title="Outage", severity=severity).incident
    outcome = actions.resolve(desk, inc.id, summary="rolled back", checks="all")
    assert outcome.message == "INC-1 resolved; a post-incident review closes it"
    assert store.incident(inc.id).state == "resolved"
    assert store.events(inc.id)[-1].payload["summary"] == "rolled back"

    missing = dict(REVIEW, lessons_learned=" ")
    with pytest.raises(MissingFields) as caught:
        actions.file_review(desk, inc.id, missing)
    assert caught.value.missing == ["lessons_learned"]
    with pytest.raises(Refused, match="unknown review field 'blame'"):
        actions.file_review(desk, inc.id, {**REVIEW, "blame": "bob"})
    assert store.incident(inc.id).state == "resolved"

    clock.advance(hours=1)
    outcome = actions.file_review(desk, inc.id, REVIEW)
    assert outcome.message == "INC-1 reviewed and closed"
    stored = store.incident(inc.id)
    assert (stored.state, stored.closed_at) == ("closed", T0 + timedelta(hours=1))
    review = store.detail(inc.id).review
    assert review is not None and review.fields == REVIEW and review.actor == "Tess (tester)"
    with pytest.raises(Refused, match="INC-1 is closed; a review is filed for a resolved"):
        actions.file_review(desk, inc.id, REVIEW)


def test_review_only_for_a_resolved_incident(desk: Desk, store: Store) -> None:
    inc = actions.open_incident(desk, title="Outage", severity="P1").incident
    with pytest.raises(Refused, match="INC-1 is open"):
        actions.file_review(desk, inc.id, REVIEW)
    assert store.detail(inc.id).review is None


def test_reopen(desk: Desk, store: Store, clock, policy: Policy, inc) -> None:
    actions.escalate(desk, inc.id, to="L2", trigger="performance", fields=handoff(policy, "L2"))
    actions.acknowledge(desk, inc.id)
    with pytest.raises(Refused, match="INC-1 is acknowledged; only resolved or closed"):
        actions.reopen(desk, inc.id, reason="again")
    actions.resolve(desk, inc.id, summary="fixed", checks="all")
    assert store.incident(inc.id).state == "closed"
    clock.advance(minutes=30)
    with pytest.raises(Refused, match="reason must not be blank"):
        actions.reopen(desk, inc.id, reason="")
    assert store.incident(inc.id).state == "closed"
    outcome = actions.reopen(desk, inc.id, reason="it came back")
    assert outcome.message == "INC-1 reopened at L2"
    stored = store.incident(inc.id)
    assert (stored.state, stored.level) == ("open", "L2")
    assert stored.resolved_at is None and stored.closed_at is None
    assert stored.acknowledged_at is None
    assert stored.level_entered_at == clock.now()
    assert clocks(store, inc.id, clock.now())["response"].status == RUNNING


def test_reopen_a_resolved_p1_awaiting_review(desk: Desk, store: Store) -> None:
    inc = actions.open_incident(desk, title="Outage", severity="P1").incident
    actions.resolve(desk, inc.id, summary="fixed", checks="all")
    actions.reopen(desk, inc.id, reason="not fixed")
    assert store.incident(inc.id).state == "open"


def test_reopen_refuses_to_duplicate_an_open_dedup_key(desk: Desk, store: Store) -> None:
    first = actions.open_incident(desk, title="Disk full", severity="P3", dedup_key="disk")
    actions.resolve(desk, first.incident.id, summary="cleaned", checks="all")
    actions.open_incident(desk, title="Disk full", severity="P3", dedup_key="disk")
    seq = store.last_seq()
    with pytest.raises(Refused, match="another open incident has dedup key 'disk'"):
        actions.reopen(desk, first.incident.id, reason="back")
    assert store.last_seq() == seq
    assert store.incident(first.incident.id).state == "closed"


def test_follow_ups(desk: Desk, store: Store, clock, inc) -> None:
    with pytest.raises(Refused, match="follow-ups are for resolved"):
        actions.add_follow_up(desk, inc.id, kind="monitoring", description="x", owner="bob")
    actions.resolve(desk, inc.id, summary="fixed", checks="all")
    with pytest.raises(Refused, match="unknown follow-up kind 'party'"):
        actions.add_follow_up(desk, inc.id, kind="party", description="x", owner="bob")
    with pytest.raises(Refused, match="is not a date"):
        actions.add_follow_up(desk, inc.id, kind="monitoring", description="x", owner="bob",
                              due="next week")
    with pytest.raises(Refused, match="owner must not be blank"):
        actions.add_follow_up(desk, inc.id, kind="monitoring", description="x", owner=" ")
    outcome = actions.add_follow_up(desk, inc.id, kind="monitoring",
                                    description="alert on p99", owner="bob", due="2026-12-31")
    assert outcome.message == "follow-up 1 added to INC-1"
    [fu] = store.detail(inc.id).follow_ups
    assert (fu.kind, fu.description, fu.owner, fu.due, fu.done_at) == (
        "monitoring", "alert on p99", "bob", "2026-12-31", None)
    clock.advance(days=2)
    done = actions.complete_follow_up(desk, fu.id)
    assert done.message == "follow-up 1 of INC-1 done"
    [fu] = store.detail(inc.id).follow_ups
    assert (fu.done_at, fu.done_by) == (clock.now(), "Tess (tester)")
    seq = store.last_seq()
    assert not actions.complete_follow_up(desk, fu.id).changed
    assert store.last_seq() == seq
    with pytest.raises(NotFound):
        actions.complete_follow_up(desk, 42)


def test_tick_and_untick_checklists(desk: Desk, store: Store, inc) -> None:
    seen = store.incident(inc.id).version
    actions.tick(desk, inc.id, "triage", "assess_severity")
    actions.tick(desk, inc.id, "internal.L1", "team_chat")
    actions.tick(desk, inc.id, "external.customer", "status_updates")
    ticks = {(t.checklist, t.item) for t in store.detail(inc.id).ticks}
    assert ticks == {("triage", "assess_severity"), ("internal.L1", "team_chat"),
                     ("external.customer", "status_updates")}
    assert store.incident(inc.id).version == seen  # ticking makes no form stale
    seq = store.last_seq()
    assert not actions.tick(desk, inc.id, "triage", "assess_severity").changed
    assert store.last_seq() == seq
    actions.tick(desk, inc.id, "triage", "assess_severity", done=False)
    ticks = {(t.checklist, t.item) for t in store.detail(inc.id).ticks}
    assert ("triage", "assess_severity") not in ticks
    assert [e.kind for e in store.events(inc.id)][-1] == "checklist_unticked"
    assert not actions.tick(desk, inc.id, "triage", "assess_severity", done=False).changed
    with pytest.raises(Refused, match="has no item 'nope'"):
        actions.tick(desk, inc.id, "triage", "nope")
    with pytest.raises(Refused):
        actions.tick(desk, inc.id, "external.martians", "status_updates")


# -- conflicts ----------------------------------------------------------------------------

def test_stale_version_is_a_conflict_naming_what_changed(desk: Desk, store: Store, clock,
                                                         make_desk, policy: Policy,
                                                         inc) -> None:
    seen = inc.version
    alice = make_desk("alice")
    actions.escalate(alice, inc.id, to="L3", trigger=trigger(policy, "L3"),
                     fields=handoff(policy, "L3"))
    clock.advance(seconds=40)
    seq = store.last_seq()
    before = store.incident(inc.id)
    for act in (
        lambda: actions.acknowledge(desk, inc.id, expected_version=seen),
        lambda: actions.resolve(desk, inc.id, summary="x", checks="all", expected_version=seen),
        lambda: actions.assign(desk, inc.id, "bob", expected_version=seen),
        lambda: actions.change_severity(desk, inc.id, "P1", reason="x", expected_version=seen),
    ):
        with pytest.raises(Conflict) as caught:
            act()
        assert str(caught.value) == "INC-1 was escalated to L3 by alice 40s ago — " \
                                    "reload before acting"
    assert store.last_seq() == seq
    assert store.incident(inc.id) == before
    # with the fresh version the same action goes through
    assert actions.acknowledge(desk, inc.id, expected_version=before.version).changed


def test_conflict_counts_further_changes(desk: Desk, clock, make_desk, inc) -> None:
    bob = make_desk("bob")
    actions.assign(bob, inc.id, "bob")
    clock.advance(minutes=2)
    actions.acknowledge(bob, inc.id)
    clock.advance(minutes=5)
    with pytest.raises(Conflict, match=r"^INC-1 was acknowledged by bob 5m ago \(and 1 more "
                                       r"change\) — reload before acting$"):
        actions.add_note(desk, inc.id, "fine")  # notes never conflict...
        actions.assign(desk, inc.id, "tess", expected_version=inc.version)


# -- policy re-basing ------------------------------------------------------------------

def test_apply_policy_rebases_open_incidents_as_an_event(desk: Desk, store: Store, clock,
                                                         policy: Policy) -> None:
    old = actions.open_incident(desk, title="Old promise", severity="P2").incident
    done = actions.open_incident(desk, title="Resolved", severity="P1").incident
    actions.resolve(desk, done.id, summary="fixed", checks="all")
    assert clocks(store, old.id, T0)["response"].due_at == T0 + timedelta(hours=1)

    text = policy.source.replace("  P2: {L1: 1h, L2: 2h,", "  P2: {L1: 3h, L2: 2h,")
    assert text != policy.source
    newer = parse_policy(text, "edited.yaml")
    new_desk = Desk(store, newer, clock, Actor("lead"))
    fresh = actions.open_incident(new_desk, title="New promise", severity="P2").incident
    assert fresh.policy_id != old.policy_id
    assert clocks(store, fresh.id, T0)["response"].due_at == T0 + timedelta(hours=3)
    # editing the policy did not change the promise made to the open incident
    assert store.incident(old.id).policy_id == old.policy_id
    assert clocks(store, old.id, T0)["response"].due_at == T0 + timedelta(hours=1)

    clock.advance(minutes=10)
    outcomes = actions.apply_policy(new_desk)
    assert [o.incident.id for o in outcomes] == [old.id]
    rebased = store.incident(old.id)
    assert rebased.policy_id == fresh.policy_id
    assert rebased.version == old.version + 1
    assert clocks(store, old.id, clock.now())["response"].due_at == T0 + timedelta(hours=3)
    event = store.events(old.id)[-1]
    assert (event.kind, event.account) == ("policy_applied", "lead")
    assert event.payload == {"from": old.policy_id, "policy_id": fresh.policy_id}
    assert store.incident(done.id).policy_id == done.policy_id  # resolved: left alone
    assert actions.apply_policy(new_desk) == []  # nothing left to re-base


# -- notices ------------------------------------------------------------------------------

def test_a_due_notice_is_recorded_once_across_desks(desk: Desk, store: Store, db_url: str,
                                                    policy: Policy, clock) -> None:
    inc = actions.open_incident(desk, title="Total outage", severity="P0").incident
    # a P0 is announced, and due for escalation to L4 the moment it opens
    recorded = actions.record_notices(desk, store.incidents())
    assert [(e.kind, e.payload.get("clock"), e.payload["level"]) for _, e in recorded] == [
        ("announced", None, "L1"), ("sla_due", "severity_level", "L4")]
    assert actions.record_notices(desk, store.incidents()) == []
    other_store = open_store(db_url)
    try:
        other = Desk(other_store, policy, clock, Actor("bob"))
        assert actions.record_notices(other, other_store.incidents()) == []
        clock.advance(minutes=6)  # P0 at L1 must be acknowledged within 5m
        first = actions.record_notices(other, other_store.incidents())
        assert [(e.kind, e.payload["clock"]) for _, e in first] == [("sla_breached", "response")]
        assert actions.record_notices(desk, store.incidents()) == []
    finally:
        other_store.close()
    kinds = [e.kind for e in store.events(inc.id)]
    assert kinds.count("sla_due") == 1 and kinds.count("sla_breached") == 1
    assert store.incident(inc.id).version == inc.version  # notices make no form stale


def test_no_notice_for_a_healthy_incident(desk: Desk, store: Store, inc) -> None:
    assert actions.record_notices(desk, store.incidents()) == []
    assert store.last_seq() == 1


# -- import ------------------------------------------------------------------------------

def ndjson(*records) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n"
                    for r in records)


GOOD = [{"title": "Disk full", "severity": "P2", "dedup_key": "disk", "service": "db"},
        {"title": "API 500s", "severity": "P1", "dedup_key": "api"}]


def test_import_is_all_or_nothing(desk: Desk, store: Store) -> None:
    data = ndjson(GOOD[0], {"title": "x", "severity": "P9"}, b"not json", GOOD[1],
                  {"severity": "P1"}, {"title": "x", "severity": "P1", "colour": "red"},
                  b"[1, 2]")
    with pytest.raises(ImportRefused) as caught:
        import_ndjson(desk, data, "alerts.ndjson")
    problems = caught.value.problems
    assert [p.split(": ", 1)[0] for p in problems] == [
        "alerts.ndjson:2", "alerts.ndjson:3", "alerts.ndjson:5", "alerts.ndjson:6",
        "alerts.ndjson:7"]
    assert problems[0] == "alerts.ndjson:2: unknown severity 'P9' (choose P0, P1, P2, P3)"
    assert problems[2] == "alerts.ndjson:5: title is missing"
    assert "unknown key 'colour'" in problems[3]
    assert problems[4] == "alerts.ndjson:7: must be a JSON object"
    assert store.incidents(None) == [] and store.last_seq() == 0


def test_import_skip_invalid_writes_the_good_lines(desk: Desk, store: Store) -> None:
    data = ndjson(GOOD[0], {"title": " ", "severity": "P1"}, GOOD[1])
    report = import_ndjson(desk, data, "a.ndjson", skip_invalid=True)
    assert (report.opened, report.repeated) == (2, 0)
    assert report.problems == ["a.ndjson:2: title must not be blank"]
    assert [i.title for i in store.incidents()] == ["Disk full", "API 500s"]
    assert store.events(1)[0].payload["source"] == "a.ndjson:1"
    assert store.events(2)[0].payload["source"] == "a.ndjson:3"


def test_importing_the_same_file_twice_only_counts_repeats(desk: Desk, store: Store) -> None:
    data = ndjson(*GOOD)
    first = import_ndjson(desk, data, "a.ndjson")
    assert (first.opened, first.repeated) == (2, 0)
    before = store.incidents()
    second = import_ndjson(desk, data, "a.ndjson")
    assert (second.opened, second.repeated) == (0, 2)
    after = store.incidents()
    assert [i.id for i in after] == [i.id for i in before]
    assert [i.repeats for i in after] == [1, 1]
    assert [i.version for i in after] == [i.version for i in before]
    assert [e.kind for e in store.events(after=store.last_seq() - 2)] == ["repeated"] * 2


def test_repeat_within_one_file(desk: Desk, store: Store) -> None:
    report = import_ndjson(desk, ndjson(GOOD[0], GOOD[0], GOOD[0]), "a.ndjson")
    assert (report.opened, report.repeated) == (1, 2)
    assert store.incident(1).repeats == 2


def test_after_resolve_the_same_key_opens_a_new_incident(desk: Desk, store: Store,
                                                         clock) -> None:
    import_ndjson(desk, ndjson(GOOD[0]), "a.ndjson")
    actions.resolve(desk, 1, summary="cleaned", checks="all")
    clock.advance(minutes=5)
    report = import_ndjson(desk, ndjson(GOOD[0]), "a.ndjson")
    assert (report.opened, report.repeated) == (1, 0)
    assert [(i.id, i.dedup_key, i.state) for i in store.incidents(None)] == [
        (1, "disk", "closed"), (2, "disk", "open")]


def test_late_alert_from_before_the_resolution_is_a_repeat(desk: Desk, store: Store,
                                                           clock) -> None:
    import_ndjson(desk, ndjson(GOOD[0]), "a.ndjson")
    clock.advance(minutes=10)
    actions.resolve(desk, 1, summary="cleaned", checks="all")
    clock.advance(minutes=10)
    late = dict(GOOD[0], opened_at=to_iso(T0 + timedelta(minutes=5)))
    report = import_ndjson(desk, ndjson(late), "b.ndjson")
    assert (report.opened, report.late) == (0, 1)
    assert len(store.incidents(None)) == 1
    assert store.events(1)[-1].kind == "repeated"


def test_imported_opened_at_in_the_past_makes_clocks_run(desk: Desk, store: Store,
                                                         clock) -> None:
    started = T0 - timedelta(minutes=90)
    record = {"title": "API 500s", "severity": "P1", "opened_at": "2026-11-26T13:30:00Z"}
    import_ndjson(desk, ndjson(record), "a.ndjson")
    inc = store.incident(1)
    assert inc.opened_at == started and inc.level_entered_at == started
    found = clocks(store, 1, clock.now())
    assert found["response"].status == BREACHED  # 15m for P1 at L1, 90m ago
    assert found["severity_level"].status == DUE  # L3 within 1h
    assert found["resolution_target"].status == RUNNING
    assert assess(inc, store.policy(inc.policy_id), clock.now()).risk == BREACHED
    # an alert from the future is refused
    future = dict(record, opened_at=to_iso(T0 + timedelta(hours=1)))
    with pytest.raises(ImportRefused, match=r"a\.ndjson:1: opened_at .* is in the future"):
        import_ndjson(desk, ndjson(future), "a.ndjson")


@pytest.mark.parametrize(("line", "reason"), [
    (b'{"title": "x", "severity": "P1", "description": NaN}', "NaN is not a JSON number"),
    (b'{"title": "x", "severity": "P1", "description": -Infinity}', "-Infinity is not"),
    (b'{"title": "x", "severity": "P1", "service": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
     "nested too deeply"),
    (b'{"title": "caf\xe9", "severity": "P1"}', "not valid UTF-8 (byte 15)"),
    (b'{"title": "\\ud800", "severity": "P1"}', "title is not valid UTF-8"),
    (b'{"title": 42, "severity": "P1"}', "title must be text"),
    (b'{"title": "x", "severity": "P1", "opened_at": "yesterday"}', "not an ISO 8601 time"),
    (b'{"title": "x", "severity": "P1", "service": "' + b"s" * 2000 + b'"}',
     "the limit is 1,000"),
], ids=["nan", "infinity", "deep", "latin1", "surrogate", "number-title", "bad-time",
        "long-service"])
def test_import_refuses_hostile_lines(desk: Desk, store: Store, line: bytes,
                                      reason: str) -> None:
    data = ndjson(GOOD[0]) + line + b"\n"
    with pytest.raises(ImportRefused) as caught:
        import_ndjson(desk, data, "evil.ndjson")
    [problem] = caught.value.problems
    assert problem.startswith("evil.ndjson:2: ")
    assert reason in problem
    assert store.last_seq() == 0
    report = import_ndjson(desk, data, "evil.ndjson", skip_invalid=True)
    assert report.opened == 1 and len(report.problems) == 1


def import_one_at_a_time(desk: Desk, data: bytes, name: str) -> list[tuple]:
    """The import as it was before the bulk path: each line through `_open` (a late
    repeat through `_Writer.record`), one statement at a time. The bulk path must
    write exactly what this writes."""
    from sladeck.domain.ingest import parse_line
    from sladeck.domain.model import CLOSED, RESOLVED

    now = desk.clock.now()
    outcomes = []
    with desk.store.write() as tx:
        w = actions._Writer(desk, tx)
        for number, raw in enumerate(data.split(b"\n"), start=1):
            if not raw.strip():
                continue
            record = parse_line(raw, tuple(desk.policy.severities), now)
            key, opened_at = record.get("dedup_key"), record.get("opened_at")
            if key and opened_at and tx.open_by_dedup(key) is None:
                late = tx.latest_by_dedup(key)
                if late and late.state in (RESOLVED, CLOSED) and late.resolved_at \
                        and opened_at <= late.resolved_at:
                    payload = {"dedup_key": key, "source": f"{name}:{number}",
                               "reason": f"alert started {to_iso(opened_at)}, before "
                                         f"{late.ref} was resolved"}
                    new, event = w.record(late, "repeated", payload, w.policy(late).levels)
                    outcomes.append((new, event, f"{new.ref} late repeat"))
                    continue
            out = actions._open(w, title=record["title"], severity=record["severity"],
                                description=record.get("description") or "",
                                service=record.get("service") or "", dedup_key=key,
                                external_ref=record.get("external_ref"), opened_at=opened_at,
                                source=f"{name}:{number}")
            outcomes.append((out.incident, out.event, out.message))
    return outcomes


def history(desk: Desk, clock) -> None:
    """An open `disk`, a resolved `db` (a late alert may repeat it), an open `api`."""
    actions.open_incident(desk, title="Disk full", severity="P2", dedup_key="disk")
    db = actions.open_incident(desk, title="DB down", severity="P3", dedup_key="db").incident
    actions.open_incident(desk, title="API 500s", severity="P1", dedup_key="api",
                          external_ref="PD-1")
    clock.advance(minutes=10)
    actions.resolve(desk, db.id, summary="restarted", checks="all")
    clock.advance(minutes=10)


MIXED = [
    {"title": "Disk full again", "severity": "P2", "dedup_key": "disk"},  # open in the db
    {"title": "New one", "severity": "P1", "dedup_key": "new", "service": "web",
     "description": "line\nbreak", "external_ref": "PD-7"},
    {"title": "No key", "severity": "P3"},
    {"title": "New one", "severity": "P1", "dedup_key": "new"},  # earlier in this file
    {"title": "DB down", "severity": "P3", "dedup_key": "db",
     "opened_at": to_iso(T0 + timedelta(minutes=5))},  # late: before db's resolution
    {"title": "DB down", "severity": "P3", "dedup_key": "db",
     "opened_at": to_iso(T0 + timedelta(minutes=5))},  # late again, same incident
    {"title": "Old alert", "severity": "P0", "dedup_key": "old",
     "opened_at": "2026-11-26T13:30:00+02:00"},  # a zone, in the past, unknown key
    {"title": "DB down", "severity": "P3", "dedup_key": "db"},  # after: opens a new one
    {"title": "DB down", "severity": "P2", "dedup_key": "db",
     "opened_at": to_iso(T0 + timedelta(minutes=5))},  # now repeats the new one
    {"title": "Ünïcode ☃ title", "severity": "P2", "dedup_key": "", "external_ref": ""},
    {"title": "API 500s", "severity": "P1", "dedup_key": "api"},
    {"title": "Disk full again", "severity": "P2", "dedup_key": "disk"},
]


def test_bulk_import_writes_what_one_line_at_a_time_writes(tmp_path: Path, policy: Policy,
                                                           clock) -> None:
    from sladeck.clock import FixedClock

    data = ndjson(*MIXED)
    stores, results = [], []
    for name in ("bulk", "each"):
        store = Store(tmp_path / f"{name}.db")
        desk = Desk(store, policy, FixedClock(T0), Actor("tester", "Tess"))
        history(desk, desk.clock)
        if name == "bulk":
            report = import_ndjson(desk, data, "alerts.ndjson")
            assert (report.opened, report.repeated, report.late) == (5, 5, 2)
            results.append([(o.incident, o.event, o.message) for o in report.outcomes])
        else:
            results.append(import_one_at_a_time(desk, data, "alerts.ndjson"))
        stores.append(store)
    bulk, each = stores
    assert results[0] == results[1]  # the same incident after each line, event, message
    assert bulk.incidents(None) == each.incidents(None)
    assert bulk.events() == each.events()  # same ids, payloads, times and hashes
    assert [json.dumps(e.payload, sort_keys=True) for e in bulk.events()] == \
        [json.dumps(e.payload, sort_keys=True) for e in each.events()]
    assert verify(bulk) == [] and verify(each) == []
    by_key = {}
    for i in bulk.incidents(None):
        by_key.setdefault(i.dedup_key, []).append(i)
    assert [i.repeats for i in by_key["db"]] == [2, 1]  # two late repeats, then one
    assert by_key["disk"][0].repeats == 2 and by_key["new"][0].repeats == 1
    for s in stores:
        s.close()


def test_an_opened_payload_is_the_text_dumps_makes() -> None:
    """The bulk path writes a new incident's `opened` payload without `_dumps`."""
    from hypothesis import given
    from hypothesis import strategies as st

    from sladeck.domain.chain import canonical_json as _dumps
    from sladeck.domain.ingest import _opened_payload

    text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)))

    @given(st.integers(1, 2**63 - 1), text, text, text, text, text, st.none() | text,
           st.none() | text, st.integers(1, 2**63 - 1), st.none() | text, text)
    def check(incident_id, title, severity, level, description, service, dedup_key,
              external_ref, policy_id, opened_at, source) -> None:
        payload = {"id": incident_id, "title": title, "severity": severity, "level": level,
                   "description": description, "service": service, "dedup_key": dedup_key,
                   "external_ref": external_ref, "policy_id": policy_id,
                   "opened_at": opened_at, "source": source}
        assert _opened_payload(incident_id, title, severity, level, description, service,
                               dedup_key, external_ref, policy_id, opened_at, source) == \
            _dumps(payload)

    check()


def test_a_line_is_decoded_as_json_decode_decodes_it() -> None:
    """`_decode_line` skips `decode`'s whitespace matches for the usual line: every line
    gives the same value, or the same error, as `decode`."""
    from hypothesis import given
    from hypothesis import strategies as st

    from sladeck.domain.ingest import _decode, _decode_line

    def outcome(decode, text: str):
        try:
            return ("value", decode(text))
        except (ValueError, RecursionError) as exc:
            return (type(exc), str(exc))

    lines = ['{"a": 1}', ' {"a": 1}', '{"a": 1} ', '{"a": 1}{}', '{"a": 1} x', "{", "{}",
             '{"a": }', '{"a": NaN}', '{"a": -Infinity}', '{"a": [1, 2,]}', "[1]", '"x"',
             "", " ", "{" * 5000 + "}" * 5000, '{"a": "\x01"}', '{"a": "\\ud800"}',
             '{"a": 1, "a": 2}', '{"a": 1.5e999}', "{\n}", '{"a": "b"}\t']
    for text in lines:
        assert outcome(_decode_line, text) == outcome(_decode, text), text

    @given(st.text(alphabet='{}[]":, 0123456789.eE-+ntrufalsNIiy\\ab\t\n'))
    def check(text: str) -> None:
        assert outcome(_decode_line, "{" + text) == outcome(_decode, "{" + text)

    check()


def test_bulk_import_of_awkward_text_writes_what_one_line_at_a_time_writes(
        tmp_path: Path, policy: Policy) -> None:
    """Quotes, backslashes, control and non-ASCII characters, zones: the rows and
    payloads the bulk path builds itself match `apply_event`'s and `_dumps`'."""
    from sladeck.clock import FixedClock

    awkward = ['say "hi"', "back\\slash", "tab\there", "\u2028 line sep", "Zürich ☃ 🚨",
               "\x7f\x1b[31m", "'single'"]
    lines = [{"title": t, "severity": "P2", "description": t, "service": t, "dedup_key": t,
              "external_ref": t} for t in awkward]
    lines += [{"title": "timed", "severity": "P1", "opened_at": "2026-11-26T14:00:00.5+01:00"},
              {"title": "timed", "severity": "P1", "dedup_key": "t",
               "opened_at": "2026-11-26T14:59:00Z"},
              {"title": "again", "severity": "P3", "dedup_key": "t",
               "opened_at": "2026-11-26T14:58:00Z"},
              {"title": awkward[0], "severity": "P2", "dedup_key": awkward[0]}]
    data = ndjson(*lines)
    stores, results = [], []
    for name in ("bulk", "each"):
        store = Store(tmp_path / f"{name}.db")
        desk = Desk(store, policy, FixedClock(T0), Actor("tester", 'Tess "T" O\'Neil'))
        if name == "bulk":
            report = import_ndjson(desk, data, 'dir/"odd" name.ndjson')
            results.append([(o.incident, o.event, o.message) for o in report.outcomes])
        else:
            results.append(import_one_at_a_time(desk, data, 'dir/"odd" name.ndjson'))
        stores.append(store)
    bulk, each = stores
    assert results[0] == results[1]
    assert bulk.incidents(None) == each.incidents(None)
    assert bulk.events() == each.events()
    assert bulk.conn.execute("SELECT * FROM incidents ORDER BY id").fetchall() == \
        each.conn.execute("SELECT * FROM incidents ORDER BY id").fetchall()
    assert bulk.conn.execute("SELECT * FROM events ORDER BY id").fetchall() == \
        each.conn.execute("SELECT * FROM events ORDER BY id").fetchall()
    assert verify(bulk) == []
    for s in stores:
        s.close()


def test_bulk_import_looks_up_keys_in_batches(desk: Desk, store: Store) -> None:
    from sladeck.store import BATCH

    lines = [{"title": f"Alert {n}", "severity": "P3", "dedup_key": f"k{n}"}
             for n in range(BATCH * 2 + 7)]
    first = import_ndjson(desk, ndjson(*lines), "a.ndjson")
    assert (first.opened, first.repeated) == (len(lines), 0)
    second = import_ndjson(desk, ndjson(*reversed(lines)), "b.ndjson")
    assert (second.opened, second.repeated) == (0, len(lines))
    assert [o.incident.id for o in second.outcomes] == list(range(len(lines), 0, -1))
    assert all(i.repeats == 1 for i in store.incidents())
    assert verify(store) == []


def test_a_bad_last_line_of_a_long_file_writes_nothing(desk: Desk, store: Store) -> None:
    import gc

    actions.open_incident(desk, title="Before", severity="P3", dedup_key="k1")
    seq = store.last_seq()
    lines = [{"title": f"Alert {n}", "severity": "P3", "dedup_key": f"k{n}"}
             for n in range(1500)]
    with pytest.raises(ImportRefused) as caught:
        import_ndjson(desk, ndjson(*lines, {"title": "x", "severity": "P9"}), "a.ndjson")
    assert caught.value.problems == [
        "a.ndjson:1501: unknown severity 'P9' (choose P0, P1, P2, P3)"]
    assert store.last_seq() == seq and len(store.incidents(None)) == 1
    assert gc.isenabled()  # the import pauses the collector only while it runs


def test_a_failed_bulk_write_rolls_the_whole_file_back(desk: Desk, store: Store,
                                                       monkeypatch) -> None:
    Transaction = transaction_class(store)

    actions.open_incident(desk, title="Before", severity="P3", dedup_key="k1")
    seq = store.last_seq()

    def broken(self, changes):
        raise RuntimeError("disk gone")
    monkeypatch.setattr(Transaction, "update_incidents", broken)
    with pytest.raises(RuntimeError):
        import_ndjson(desk, ndjson(*({"title": f"A{n}", "severity": "P3", "dedup_key": f"k{n}"}
                                    for n in range(50))), "a.ndjson")
    assert store.last_seq() == seq and len(store.incidents(None)) == 1
    assert store.incident(1).repeats == 0 and verify(store) == []


# -- time ---------------------------------------------------------------------------------

def test_a_clock_stepped_back_a_little_keeps_the_timeline_in_order(
        desk: Desk, store: Store, clock, policy: Policy, inc) -> None:
    clock.advance(minutes=10)
    actions.add_note(desk, inc.id, "first look")
    clock.advance(minutes=-4, seconds=-59)  # NTP steps the clock back, within the tolerance
    actions.add_note(desk, inc.id, "second look")
    actions.acknowledge(desk, inc.id)
    assert [e.at for e in store.events(inc.id)] == [T0, *[T0 + timedelta(minutes=10)] * 3]
    assert store.incident(inc.id).acknowledged_at == T0 + timedelta(minutes=10)


def test_a_clock_far_behind_the_last_event_is_never_dragged_to_it(
        desk: Desk, store: Store, clock, policy: Policy, inc) -> None:
    """Beyond the tolerance one of two clocks is wrong: each event keeps its writer's
    own time; the timeline's order is the event id (the chain's), and verify agrees."""
    clock.advance(minutes=10)
    actions.add_note(desk, inc.id, "first look")
    clock.advance(hours=-1)  # stepped back an hour: it had been an hour ahead
    actions.add_note(desk, inc.id, "second look")
    actions.acknowledge(desk, inc.id)
    actions.escalate(desk, inc.id, to="L2", trigger="performance", fields=handoff(policy, "L2"))
    events = store.events(inc.id)
    assert [e.id for e in events] == sorted(e.id for e in events)
    back = T0 - timedelta(minutes=50)
    assert [e.at for e in events] == [T0, T0 + timedelta(minutes=10), back, back, back]
    stored = store.incident(inc.id)
    assert stored.level_entered_at == back and stored.level == "L2"
    assert [e.kind for e in store.detail(inc.id).events] == [
        "opened", "note", "note", "acknowledged", "escalated"]
