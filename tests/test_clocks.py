"""The five SLA clocks, risk, the queue's sort key and countdowns, at exact instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sladeck.domain.clocks import (
    BREACHED,
    DUE,
    LATE,
    LEVEL,
    MET,
    OK,
    RESOLUTION_MAXIMUM,
    RESOLUTION_TARGET,
    RESPONSE,
    RUNNING,
    SEVERITY_LEVEL,
    WARNING,
    Assessment,
    SlaClock,
    assess,
    compute_clocks,
    format_countdown,
)
from sladeck.domain.model import Incident
from sladeck.policy import Policy

T0 = datetime(2026, 11, 26, 15, 0, 0, tzinfo=UTC)
S = timedelta(seconds=1)
LEVELS = ("L1", "L2", "L3", "L4")


def m(n: float) -> timedelta:
    return timedelta(minutes=n)


def h(n: float) -> timedelta:
    return timedelta(hours=n)


# What SPEC §1 promises, written out independently of the loader.
RESPONSE_MATRIX = {
    "P0": {"L1": m(5), "L2": m(15), "L3": m(30), "L4": h(1)},
    "P1": {"L1": m(15), "L2": m(30), "L3": h(1), "L4": h(2)},
    "P2": {"L1": h(1), "L2": h(2), "L3": h(4), "L4": h(8)},
    "P3": {"L1": h(4), "L2": h(8), "L3": h(24), "L4": h(48)},
}
ESCALATE_AFTER = {"L1": m(30), "L2": h(2), "L3": h(8), "L4": None}
SEVERITY_RULE = {"P0": ("L4", m(0)), "P1": ("L3", h(1)), "P2": ("L2", h(2)), "P3": ("L1", h(4))}
RESOLUTION = {"P0": (h(2), h(4)), "P1": (h(4), h(8)), "P2": (h(8), h(24)), "P3": (h(24), h(48))}


def incident(severity: str = "P1", level: str = "L1", *, opened: datetime = T0,
             entered: datetime | None = None, reached: dict[str, datetime] | None = None,
             state: str = "open", acked: datetime | None = None,
             resolved: datetime | None = None, id: int = 1) -> Incident:
    """An incident as the timeline replay would derive it.

    By default it was opened at `level` (so it reached every level up to it when opened).
    """
    entered = entered or opened
    if reached is None:
        reached = {lvl: opened for lvl in LEVELS[:LEVELS.index(level) + 1]}
    return Incident(id=id, title=f"incident {id}", severity=severity, level=level, state=state,
                    opened_at=opened, opened_by="tester", level_entered_at=entered, policy_id=1,
                    version=1, acknowledged_at=acked, acknowledged_by="tester" if acked else None,
                    resolved_at=resolved, reached=reached)


def clocks(inc: Incident, policy: Policy, now: datetime) -> dict[str, SlaClock]:
    return {c.kind: c for c in compute_clocks(inc, policy, now)}


def statuses(a: Assessment) -> dict[str, str]:
    return {c.kind: c.status for c in a.clocks}


# -- due times ------------------------------------------------------------------------


@pytest.mark.parametrize("severity", list(RESPONSE_MATRIX))
@pytest.mark.parametrize("level", LEVELS)
def test_due_times_for_every_severity_and_level(policy: Policy, severity: str, level: str) -> None:
    # Opened at T0 at L1, escalated straight to `level` 10 minutes later.
    entered = T0 + m(10) if level != "L1" else T0
    reached = {lvl: (T0 if lvl == "L1" else entered) for lvl in LEVELS[:LEVELS.index(level) + 1]}
    inc = incident(severity, level, entered=entered, reached=reached)
    c = clocks(inc, policy, entered)

    assert c[RESPONSE].started_at == entered
    assert c[RESPONSE].due_at == entered + RESPONSE_MATRIX[severity][level]
    if ESCALATE_AFTER[level] is None:
        assert LEVEL not in c  # L4 is the top: no level clock
    else:
        assert c[LEVEL].started_at == entered
        assert c[LEVEL].due_at == entered + ESCALATE_AFTER[level]
    to, within = SEVERITY_RULE[severity]
    assert c[SEVERITY_LEVEL].started_at == T0
    # An immediate escalation that has been made is judged by its grace (P0: 5m).
    grace = RESPONSE_MATRIX[severity]["L1"] if not within and level == to else timedelta(0)
    assert c[SEVERITY_LEVEL].due_at == T0 + within + grace
    assert c[SEVERITY_LEVEL].target_level == to
    target, maximum = RESOLUTION[severity]
    assert (c[RESOLUTION_TARGET].started_at, c[RESOLUTION_TARGET].due_at) == (T0, T0 + target)
    assert (c[RESOLUTION_MAXIMUM].started_at, c[RESOLUTION_MAXIMUM].due_at) == (T0, T0 + maximum)
    # Standing at or above the severity's level stops the severity clock: met if in time.
    if LEVELS.index(level) >= LEVELS.index(to):
        assert c[SEVERITY_LEVEL].stopped_at == reached[to]
        # ... and a stopped clock is never due: late when the level came after it.
        assert c[SEVERITY_LEVEL].status == (MET if reached[to] <= T0 + within + grace
                                            else LATE)
    else:
        assert not c[SEVERITY_LEVEL].stopped
        assert c[SEVERITY_LEVEL].status == (RUNNING if entered < T0 + within else DUE)


def test_clocks_run_then_pass_at_their_due_instant(policy: Policy) -> None:
    inc = incident("P2", "L1")  # response 1h, level 30m, L2 within 2h, resolution 8h / 24h
    assert {k: c.status for k, c in clocks(inc, policy, T0 + m(30) - S).items()} == {
        RESPONSE: RUNNING, LEVEL: RUNNING, SEVERITY_LEVEL: RUNNING,
        RESOLUTION_TARGET: RUNNING, RESOLUTION_MAXIMUM: RUNNING}
    assert clocks(inc, policy, T0 + m(30))[LEVEL].status == DUE
    assert clocks(inc, policy, T0 + h(1) - S)[RESPONSE].status == RUNNING
    assert clocks(inc, policy, T0 + h(1))[RESPONSE].status == BREACHED
    assert clocks(inc, policy, T0 + h(2))[SEVERITY_LEVEL].status == DUE
    assert clocks(inc, policy, T0 + h(8))[RESOLUTION_TARGET].status == DUE
    assert clocks(inc, policy, T0 + h(24) - S)[RESOLUTION_MAXIMUM].status == RUNNING
    assert clocks(inc, policy, T0 + h(24))[RESOLUTION_MAXIMUM].status == BREACHED
    assert not any(c.stopped for c in clocks(inc, policy, T0 + h(30)).values())


# -- response: acknowledgement at this level ------------------------------------------


@pytest.mark.parametrize("ack_after", [m(0), m(7), m(15)])
def test_acknowledged_in_time_stops_response_as_met(policy: Policy, ack_after: timedelta) -> None:
    inc = incident("P1", "L1", acked=T0 + ack_after, state="acknowledged")
    c = clocks(inc, policy, T0 + h(1))
    assert c[RESPONSE].status == MET
    assert c[RESPONSE].stopped_at == T0 + ack_after
    assert c[LEVEL].status == DUE  # acknowledging does not stop the level clock


def test_acknowledged_late_is_breached(policy: Policy) -> None:
    inc = incident("P1", "L1", acked=T0 + m(15) + S, state="acknowledged")
    c = clocks(inc, policy, T0 + m(20))
    assert c[RESPONSE].status == BREACHED
    assert c[RESPONSE].stopped_at == T0 + m(15) + S


def test_a_breach_stays_on_the_incident_after_a_late_ack(policy: Policy) -> None:
    """SPEC §3: risk is breached if any clock is breached, even one that has stopped."""
    inc = incident("P1", "L1", acked=T0 + m(15) + S, state="acknowledged")
    a = assess(inc, policy, T0 + m(20))
    assert a.risk == BREACHED
    assert a.nearest is not None and a.nearest.kind != RESPONSE  # the headline still ticks


def test_ack_before_the_escalation_does_not_count_at_the_new_level(policy: Policy) -> None:
    escalated = T0 + m(20)
    inc = incident("P1", "L2", entered=escalated, acked=T0 + m(5),
                   reached={"L1": T0, "L2": escalated})
    c = clocks(inc, policy, escalated + m(29))
    assert c[RESPONSE].status == RUNNING and not c[RESPONSE].stopped
    assert c[RESPONSE].due_at == escalated + m(30)
    assert clocks(inc, policy, escalated + m(30))[RESPONSE].status == BREACHED
    assert assess(inc, policy, escalated + m(30)).risk == BREACHED
    # An ack at the new level stops it.
    acked = incident("P1", "L2", entered=escalated, acked=escalated + m(3),
                     reached={"L1": T0, "L2": escalated}, state="acknowledged")
    assert clocks(acked, policy, escalated + h(1))[RESPONSE].status == MET


def test_escalation_restarts_response_and_level_clocks(policy: Policy) -> None:
    # At L1 for 40 minutes: response long breached, level clock due.
    before = incident("P2", "L1", acked=None)
    c = clocks(before, policy, T0 + m(40))
    assert (c[RESPONSE].status, c[LEVEL].status) == (RUNNING, DUE)
    assert assess(before, policy, T0 + m(40)).risk == DUE
    # Escalated to L2 at T0+40m: both start again from the escalation.
    escalated = T0 + m(40)
    after = incident("P2", "L2", entered=escalated, reached={"L1": T0, "L2": escalated})
    c = clocks(after, policy, escalated)
    assert (c[RESPONSE].started_at, c[RESPONSE].due_at) == (escalated, escalated + h(2))
    assert (c[LEVEL].started_at, c[LEVEL].due_at) == (escalated, escalated + h(2))
    assert (c[RESPONSE].status, c[LEVEL].status) == (RUNNING, RUNNING)
    # The severity clock (P2 → L2 within 2h) was met by the escalation; resolution keeps going.
    assert c[SEVERITY_LEVEL].status == MET and c[SEVERITY_LEVEL].stopped_at == escalated
    assert c[RESOLUTION_TARGET].started_at == T0
    assert assess(after, policy, escalated).risk == OK


def test_severity_change_moves_every_clock(policy: Policy) -> None:
    now = T0 + m(20)
    as_p2 = clocks(incident("P2", "L1"), policy, now)
    as_p1 = clocks(incident("P1", "L1"), policy, now)
    assert as_p2[RESPONSE].due_at == T0 + h(1) and as_p1[RESPONSE].due_at == T0 + m(15)
    assert as_p2[RESPONSE].status == RUNNING and as_p1[RESPONSE].status == BREACHED
    assert as_p2[SEVERITY_LEVEL].due_at == T0 + h(2) and as_p1[SEVERITY_LEVEL].due_at == T0 + h(1)
    assert as_p2[SEVERITY_LEVEL].target_level == "L2" and as_p1[SEVERITY_LEVEL].target_level == "L3"
    assert as_p2[RESOLUTION_TARGET].due_at == T0 + h(8)
    assert as_p1[RESOLUTION_TARGET].due_at == T0 + h(4)
    assert as_p2[RESOLUTION_MAXIMUM].due_at == T0 + h(24)
    assert as_p1[RESOLUTION_MAXIMUM].due_at == T0 + h(8)
    assert as_p2[LEVEL].due_at == as_p1[LEVEL].due_at == T0 + m(30)  # the level's own clock
    # Upgraded to P0: due for L4 at once.
    assert clocks(incident("P0", "L1"), policy, now)[SEVERITY_LEVEL].status == DUE


# -- P0 --------------------------------------------------------------------------------


def test_p0_is_due_for_l4_the_instant_it_opens(policy: Policy) -> None:
    inc = incident("P0", "L1")
    a = assess(inc, policy, T0)
    c = {x.kind: x for x in a.clocks}
    assert c[SEVERITY_LEVEL].status == DUE and c[SEVERITY_LEVEL].target_level == "L4"
    assert c[SEVERITY_LEVEL].due_at == T0
    assert a.risk == DUE
    # Not acknowledged yet: the row's headline is the five-minute acknowledge countdown.
    assert a.nearest is not None and a.nearest.kind == RESPONSE
    assert a.nearest.due_at == T0 + m(5)
    # Escalating to L3 is not enough; L4 is.
    at_l3 = incident("P0", "L3", entered=T0 + m(2),
                     reached={"L1": T0, "L2": T0 + m(2), "L3": T0 + m(2)})
    assert clocks(at_l3, policy, T0 + m(2))[SEVERITY_LEVEL].status == DUE
    at_l4 = incident("P0", "L4", entered=T0 + m(3),
                     reached={"L1": T0, "L2": T0 + m(3), "L3": T0 + m(3), "L4": T0 + m(3)})
    c = clocks(at_l4, policy, T0 + m(3))
    assert c[SEVERITY_LEVEL].status == MET and c[SEVERITY_LEVEL].stopped_at == T0 + m(3)
    assert assess(at_l4, policy, T0 + m(3)).risk == OK  # done now: the due is history


def test_p0_opened_straight_at_l4_is_met(policy: Policy) -> None:
    inc = incident("P0", "L4")
    a = assess(inc, policy, T0)
    c = {x.kind: x for x in a.clocks}
    assert c[SEVERITY_LEVEL].status == MET and c[SEVERITY_LEVEL].stopped_at == T0
    assert LEVEL not in c
    assert a.risk == OK
    assert a.nearest is not None and a.nearest.kind == RESPONSE
    assert a.nearest.due_at == T0 + h(1)


# -- risk --------------------------------------------------------------------------------


def test_warning_starts_exactly_at_the_warn_share(policy: Policy) -> None:
    assert policy.warn_at == 0.25
    inc = incident("P1", "L1")  # nearest: response, 15m span → warning from 11m15s
    assert assess(inc, policy, T0 + m(11) + 14 * S).risk == OK
    assert assess(inc, policy, T0 + m(11) + 15 * S).risk == WARNING
    assert assess(inc, policy, T0 + m(15) - S).risk == WARNING
    assert assess(inc, policy, T0 + m(15)).risk == BREACHED
    # Acknowledged: the next deadline is the level's (30m span → warning from 22m30s).
    acked = incident("P1", "L1", acked=T0 + m(2), state="acknowledged")
    assert assess(acked, policy, T0 + m(22) + 29 * S).risk == OK
    assert assess(acked, policy, T0 + m(22) + 30 * S).risk == WARNING
    assert assess(acked, policy, T0 + m(30)).risk == DUE


def test_risk_precedence(policy: Policy) -> None:
    inc = incident("P1", "L1")
    # breached (response) and due (level) at once → breached
    a = assess(inc, policy, T0 + m(31))
    assert {BREACHED, DUE} <= set(statuses(a).values())
    assert a.risk == BREACHED
    assert a.nearest is not None and a.nearest.kind == RESPONSE
    # due (level) while another deadline is inside its warning share → due
    acked = incident("P1", "L1", acked=T0 + m(1), state="acknowledged")
    a = assess(acked, policy, T0 + m(50))  # severity clock: 10 of 60 minutes left
    assert statuses(a)[LEVEL] == DUE and statuses(a)[SEVERITY_LEVEL] == RUNNING
    assert a.risk == DUE
    assert a.nearest is not None and a.nearest.kind == LEVEL
    # warning beats ok, ok is the rest
    assert assess(inc, policy, T0 + m(12)).risk == WARNING
    assert assess(inc, policy, T0 + m(1)).risk == OK
    # a breach of the maximum outweighs everything
    a = assess(acked, policy, T0 + h(8))
    assert statuses(a)[RESOLUTION_MAXIMUM] == BREACHED and a.risk == BREACHED


def test_changes_at_is_the_next_change(policy: Policy) -> None:
    inc = incident("P1", "L1")
    now = T0
    seen = []
    for _ in range(12):
        a = assess(inc, policy, now)
        if a.changes_at is None:
            break
        assert a.changes_at > now
        # Nothing changes before it ...
        before = assess(inc, policy, a.changes_at - S)
        assert (before.risk, statuses(before)) == (a.risk, statuses(a))
        # ... and something does at it.
        at = assess(inc, policy, a.changes_at)
        assert (at.risk, statuses(at)) != (a.risk, statuses(a))
        seen.append((a.changes_at - T0, at.risk))
        now = a.changes_at
    assert seen == [
        (m(11) + 15 * S, WARNING),   # response has a quarter of its 15m left
        (m(15), BREACHED),           # response breached
        (m(30), BREACHED),           # level due
        (h(1), BREACHED),            # severity: L3 due
        (h(4), BREACHED),            # resolution target due
        (h(8), BREACHED),            # resolution maximum breached
    ]
    assert assess(inc, policy, T0 + h(8)).changes_at is None


def test_changes_at_of_a_resolved_incident_is_none(policy: Policy) -> None:
    inc = incident("P1", "L1", state="resolved", acked=T0 + m(1), resolved=T0 + m(20))
    assert assess(inc, policy, T0 + m(21)).changes_at is None


def test_sort_key_orders_by_risk_then_deadline_then_severity(policy: Policy) -> None:
    now = T0 + m(20)
    acked = T0 + m(1)
    breached = incident("P3", "L1", opened=now - h(4) - S, id=1)           # response passed
    due = incident("P2", "L1", opened=now - m(31), acked=now - m(30), state="acknowledged", id=2)
    warning = incident("P1", "L1", opened=now - m(12), id=3)                # 3m of 15m left
    ok_soon_p2 = incident("P2", "L1", acked=acked, state="acknowledged", id=4)  # level: T0+30m
    ok_soon_p1 = incident("P1", "L1", acked=acked, state="acknowledged", id=5)  # level: T0+30m
    ok_later = incident("P3", "L2", opened=now, acked=now, state="acknowledged", id=6,
                        reached={"L1": now, "L2": now})                     # level: now+2h
    queue = [ok_later, ok_soon_p2, warning, ok_soon_p1, due, breached]
    risks = {i.id: assess(i, policy, now).risk for i in queue}
    assert risks == {1: BREACHED, 2: DUE, 3: WARNING, 4: OK, 5: OK, 6: OK}
    nearest = {i.id: assess(i, policy, now).nearest for i in queue}
    assert nearest[4].due_at == nearest[5].due_at == T0 + m(30)  # a real tie on the deadline
    ordered = sorted(queue, key=lambda i: assess(i, policy, now).sort_key(i, policy))
    assert [i.id for i in ordered] == [1, 2, 3, 5, 4, 6]


def test_resolved_incident_clocks_are_stopped(policy: Policy) -> None:
    resolved = T0 + m(20)
    inc = incident("P1", "L1", state="resolved", acked=T0 + m(2), resolved=resolved)
    for now in (resolved, T0 + h(10), T0 + timedelta(days=30)):
        a = assess(inc, policy, now)
        assert all(c.stopped for c in a.clocks)
        assert statuses(a) == {RESPONSE: MET, LEVEL: MET, SEVERITY_LEVEL: MET,
                               RESOLUTION_TARGET: MET, RESOLUTION_MAXIMUM: MET}
        assert {c.stopped_at for c in a.clocks} == {T0 + m(2), resolved}
        assert (a.risk, a.nearest, a.changes_at) == (OK, None, None)
    # Resolved after the maximum: the breach stays on record; nothing is "due" any more.
    late = incident("P1", "L1", state="closed", acked=T0 + m(2), resolved=T0 + h(9))
    a = assess(late, policy, T0 + h(20))
    assert statuses(a)[RESOLUTION_MAXIMUM] == BREACHED
    assert a.risk == BREACHED and a.nearest is None
    assert all(c.stopped_at == T0 + h(9) for c in a.clocks if c.kind != RESPONSE)


def test_resolving_without_ack_stops_response(policy: Policy) -> None:
    inc = incident("P1", "L1", state="resolved", resolved=T0 + m(10))
    c = clocks(inc, policy, T0 + h(1))
    assert c[RESPONSE].status == MET and c[RESPONSE].stopped_at == T0 + m(10)


# -- countdowns ---------------------------------------------------------------------------


@pytest.mark.parametrize(("delta", "text"), [
    (m(4) + 12 * S, "4m12s"),
    (h(1) + m(5), "1h05m"),
    (h(1) + m(5) + 59 * S, "1h05m"),
    (timedelta(days=2, hours=3), "2d03h"),
    (timedelta(days=2, hours=3, minutes=59), "2d03h"),
    (-(m(3) + 10 * S), "-3m10s"),
    (timedelta(0), "0m00s"),
    (m(59) + 59 * S, "59m59s"),
    (h(1), "1h00m"),
    (h(23) + m(59) + 59 * S, "23h59m"),
    (timedelta(days=1), "1d00h"),
    (-(h(2) + m(7)), "-2h07m"),
    (-timedelta(days=3, hours=1), "-3d01h"),
    (S, "0m01s"),
    (-S, "-0m01s"),
])
def test_countdown(delta: timedelta, text: str) -> None:
    assert format_countdown(delta) == text
