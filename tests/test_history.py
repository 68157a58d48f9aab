"""The clock history (SPEC §3): every cycle of every clock with its outcome, derived from
the timeline at exact instants on a fixed clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from conftest import T0
from sladeck.clock import FixedClock
from sladeck.domain import actions
from sladeck.domain.actions import Desk
from sladeck.domain.clocks import assess
from sladeck.domain.history import (
    BREACHED,
    DUE,
    LATE,
    LEVEL,
    MET,
    RESOLUTION_MAXIMUM,
    RESOLUTION_TARGET,
    RESPONSE,
    RUNNING,
    SEVERITY_LEVEL,
    ClockCycle,
    clock_history,
    status,
)
from sladeck.errors import PolicyError
from sladeck.policy import Policy, parse_policy
from sladeck.store import Store

S = timedelta(seconds=1)


def m(n: float) -> timedelta:
    return timedelta(minutes=n)


def escalate(desk: Desk, incident_id: int, to: str, policy: Policy) -> None:
    fields = {f.key: f"{f.key} text" for f in policy.escalation[to].handoff}
    actions.escalate(desk, incident_id, to=to, trigger="other", reason="test", fields=fields)


def history(store: Store, incident_id: int) -> tuple[ClockCycle, ...]:
    return clock_history(store.events(incident_id), store.policy)


def cycles(h: tuple[ClockCycle, ...], kind: str) -> list[ClockCycle]:
    return [c for c in h if c.kind == kind]


def test_a_response_met_and_one_late_by_one_second(desk: Desk, store: Store,
                                                   clock: FixedClock) -> None:
    met = actions.open_incident(desk, title="a", severity="P1").incident.id
    late = actions.open_incident(desk, title="b", severity="P2").incident.id
    clock.advance(m(15))  # P1 L1 response: 15m, on the dot
    actions.acknowledge(desk, met)
    (r,) = cycles(history(store, met), RESPONSE)
    assert (r.level, r.started_at, r.due_at, r.stopped_at, r.outcome, r.late_by_s) == \
        ("L1", T0, T0 + m(15), T0 + m(15), MET, None)
    # P2's level clock at L1 (30m) is an escalation made 1 s late: `late`, never `due`.
    clock.set(T0 + m(30) + S)
    escalate(desk, late, "L2", desk.policy)
    lv = cycles(history(store, late), LEVEL)
    assert (lv[0].outcome, lv[0].late_by_s, lv[0].stopped_at) == (LATE, 1, T0 + m(30) + S)
    assert (lv[1].level, lv[1].started_at, lv[1].outcome) == ("L2", T0 + m(30) + S, None)
    clocks = {c.kind: c for c in assess(store.incident(late), desk.policy, clock.now(),
                                        history(store, late)).clocks}
    assert clocks[LEVEL].status == RUNNING  # the new level's cycle


def test_a_response_passed_before_acknowledgement_is_breached_and_stays(
        desk: Desk, store: Store, clock: FixedClock, policy: Policy) -> None:
    inc = actions.open_incident(desk, title="a", severity="P1").incident.id
    clock.advance(m(15) + S)  # one second past the 15 min response at L1
    h = history(store, inc)
    assert status(h[0], clock.now(), policy, "P1") == BREACHED
    clock.advance(m(1))
    escalate(desk, inc, "L2", policy)  # escalating away from a breached response
    h = history(store, inc)
    first, second = cycles(h, RESPONSE)
    assert (first.outcome, first.late_by_s) == (BREACHED, 61)
    assert (second.level, second.outcome) == ("L2", None)
    a = assess(store.incident(inc), policy, clock.now(), h)
    assert a.risk == BREACHED  # the breach at L1 is a fact that stays
    assert {c.kind: c.status for c in a.clocks}[RESPONSE] == RUNNING  # L2's cycle


def test_a_resolution_maximum_passed_is_breached(desk: Desk, store: Store,
                                                 clock: FixedClock, policy: Policy) -> None:
    inc = actions.open_incident(desk, title="a", severity="P3").incident.id
    actions.acknowledge(desk, inc)
    clock.advance(timedelta(hours=48) + 2 * S)  # P3: target 24h, maximum 48h
    actions.resolve(desk, inc, summary="done", checks="all")
    h = history(store, inc)
    (target,), (maximum,) = cycles(h, RESOLUTION_TARGET), cycles(h, RESOLUTION_MAXIMUM)
    assert (target.outcome, target.late_by_s) == (LATE, 24 * 3600 + 2)
    assert (maximum.outcome, maximum.late_by_s) == (BREACHED, 2)
    assert all(c.stopped_at is not None for c in h)  # resolving stops every clock
    a = assess(store.incident(inc), policy, clock.now(), h)
    assert a.risk == BREACHED and DUE not in {c.status for c in a.clocks}


def test_a_reopen_starts_new_cycles_of_every_clock(desk: Desk, store: Store,
                                                    clock: FixedClock, policy: Policy) -> None:
    inc = actions.open_incident(desk, title="a", severity="P2").incident.id
    clock.advance(m(10))
    actions.acknowledge(desk, inc)
    actions.resolve(desk, inc, summary="done", checks="all")
    clock.advance(m(50))
    actions.reopen(desk, inc, reason="came back")
    h = history(store, inc)
    reopened = T0 + m(60)
    for kind in (RESPONSE, LEVEL, SEVERITY_LEVEL, RESOLUTION_TARGET, RESOLUTION_MAXIMUM):
        old, new = cycles(h, kind)
        assert old.outcome == MET and old.stopped_at == T0 + m(10) and old.started_at == T0
        assert (new.started_at, new.stopped_at, new.outcome) == (reopened, None, None)
    assert cycles(h, RESPONSE)[1].due_at == reopened + m(60)  # P2 at L1: 1h
    assert cycles(h, RESOLUTION_TARGET)[1].due_at == reopened + timedelta(hours=8)
    a = assess(store.incident(inc), policy, clock.now(), h)
    assert a.risk == "ok"  # the new cycle has just begun


def test_p0_is_met_within_its_grace_and_late_beyond_it(desk: Desk, store: Store,
                                                       clock: FixedClock,
                                                       policy: Policy) -> None:
    within = actions.open_incident(desk, title="in time", severity="P0").incident.id
    beyond = actions.open_incident(desk, title="too late", severity="P0").incident.id
    h = history(store, within)
    (sev,) = cycles(h, SEVERITY_LEVEL)
    assert (sev.level, sev.due_at) == ("L4", T0 + m(5))  # grace: P0's response time
    assert status(sev, T0, policy, "P0") == DUE  # "immediately": due the moment it opens
    clock.advance(m(5))
    escalate(desk, within, "L4", policy)
    clock.advance(S)
    escalate(desk, beyond, "L4", policy)
    (met,) = cycles(history(store, within), SEVERITY_LEVEL)
    (late,) = cycles(history(store, beyond), SEVERITY_LEVEL)
    assert (met.outcome, met.stopped_at) == (MET, T0 + m(5))
    assert (late.outcome, late.late_by_s, late.stopped_at) == (LATE, 1, T0 + m(5) + S)
    for inc in (within, beyond):  # stopped: never `due` again, resolved or not
        a = assess(store.incident(inc), policy, clock.now(), history(store, inc))
        assert {c.kind: c.status for c in a.clocks}[SEVERITY_LEVEL] in (MET, LATE)
        assert a.risk != DUE


def test_the_grace_is_a_policy_key(policy: Policy) -> None:
    text = policy.source.replace("escalation: {to: L4, within: 0m}",
                                 "escalation: {to: L4, within: 0m, grace: 10m}")
    assert text != policy.source
    assert parse_policy(text, "p.yaml").severities["P0"].grace == m(10)
    assert policy.severities["P0"].grace == m(5)  # by default, P0's response time
    bad = policy.source.replace("escalation: {to: L4, within: 0m}",
                                "escalation: {to: L4, within: 0m, grace: soon}")
    with pytest.raises(PolicyError) as info:
        parse_policy(bad, "p.yaml")
    line = bad[:bad.index("grace: soon")].count("\n") + 1
    assert f'p.yaml:{line}: severities.P0.escalation.grace: "soon" is not a duration' in \
        str(info.value)
    wrong = policy.source.replace("escalation: {to: L3, within: 1h}",
                                  "escalation: {to: L3, within: 1h, grace: 5m}")
    with pytest.raises(PolicyError, match=r"severities.P1.escalation.grace: applies only to "
                                          "an immediate escalation"):
        parse_policy(wrong, "p.yaml")
