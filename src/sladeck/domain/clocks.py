"""The five SLA clocks of an incident, its risk, sort key and countdown text.

Everything here is a pure function of an incident's derived state (itself a
replay of its timeline), its policy and an instant: nothing is stored as truth.
This is the one home of the SLA rules: the store's schedule columns, its SQL risk and
headline expressions and the queue's order (`sladeck list` and the dashboard alike)
are generated here from the same constants, and tests/test_sla_representations.py
drives every representation on random incidents and compares them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from sladeck.domain.history import (
    BREACHED,
    CLOCK_KINDS,
    DUE,
    LATE,
    LEVEL,
    MET,
    PASSED,
    RESOLUTION_MAXIMUM,
    RESOLUTION_TARGET,
    RESPONSE,
    RUNNING,
    SEVERITY_LEVEL,
    STATUSES,
    ClockCycle,
    escalation_due_from,
    latest,
    severity_due,
    status,
)
from sladeck.domain.model import Incident
from sladeck.policy import Policy

__all__ = ["BREACHED", "CLOCK_KINDS", "DUE", "LATE", "LEVEL", "MET", "RESOLUTION_MAXIMUM",
           "RESOLUTION_TARGET", "RESPONSE", "RUNNING", "SEVERITY_LEVEL", "STATUSES",
           "ClockCycle"]
WARNING, OK = "warning", "ok"
RISKS = (BREACHED, DUE, WARNING, OK)

# The short word the queue shows beside a countdown: what the deadline asks for.
KIND_LABEL = {RESPONSE: "ACK", LEVEL: "ESC", SEVERITY_LEVEL: "ESC",
              RESOLUTION_TARGET: "RES", RESOLUTION_MAXIMUM: "RES"}
KIND_TITLE = {RESPONSE: "Response (acknowledge)", LEVEL: "Level (escalate after)",
              SEVERITY_LEVEL: "Severity escalation", RESOLUTION_TARGET: "Resolution target",
              RESOLUTION_MAXIMUM: "Resolution maximum"}


@dataclass(frozen=True, slots=True)
class SlaClock:
    """One SLA clock of an incident now (its latest cycle): when it started, falls due,
    and its status. A running clock's `due_at` is when it falls due (an immediate
    escalation: at once); a stopped one's, the deadline it was judged by."""

    kind: str
    started_at: datetime
    due_at: datetime
    stopped_at: datetime | None
    status: str
    target_level: str | None = None  # for severity_level: the level it asks for

    @property
    def stopped(self) -> bool:
        return self.stopped_at is not None

    @property
    def label(self) -> str:
        return KIND_LABEL[self.kind]


@dataclass(frozen=True, slots=True)
class Assessment:
    """An incident's clocks and risk at one instant, and when that next changes."""

    clocks: tuple[SlaClock, ...]
    risk: str
    nearest: SlaClock | None  # the headline deadline (see `Schedule.at`)
    changes_at: datetime | None  # next instant at which risk or any status changes
    history: tuple[ClockCycle, ...] = ()

    def sort_key(self, incident: Incident, policy: Policy) -> int:
        """The queue's `order_key`: risk, severity, headline deadline, id; stable until
        `changes_at`."""
        return order_key(self.risk, to_us(self.nearest.due_at) if self.nearest else None,
                         policy.severity_rank(incident.severity), incident.id)


def _specs(incident: Incident, policy: Policy
           ) -> list[tuple[str, str, datetime, datetime, datetime | None]]:
    """(kind, level, started, due, stopped-by) of each clock's current cycle as the
    incident's state alone implies it (SPEC §3), for `implied_history`."""
    severity = policy.severities[incident.severity]
    tier = policy.tiers[incident.level]
    opened, entered, resolved = incident.opened_at, incident.level_entered_at, incident.resolved_at
    acked = incident.acknowledged_at
    if acked is not None and acked < entered:
        acked = None  # an acknowledgement at an earlier level does not count here
    reached = incident.reached.get(severity.escalate_to)
    sev_stop = min(reached, resolved) if reached is not None and resolved is not None \
        else reached if reached is not None else resolved
    if sev_stop is not None and sev_stop < opened:
        sev_stop = opened
    level = incident.level
    specs = [(RESPONSE, level, entered, entered + policy.response_matrix[incident.severity][
        incident.level], acked or resolved)]
    if tier.escalate_after is not None:
        specs.append((LEVEL, level, entered, entered + tier.escalate_after, resolved))
    specs.append((SEVERITY_LEVEL, severity.escalate_to, opened,
                  severity_due(policy, incident.severity, opened), sev_stop))
    specs.append((RESOLUTION_TARGET, level, opened, opened + severity.resolution_target,
                  resolved))
    specs.append((RESOLUTION_MAXIMUM, level, opened, opened + severity.resolution_maximum,
                  resolved))
    return specs


def implied_history(incident: Incident, policy: Policy) -> tuple[ClockCycle, ...]:
    """The current cycle of each clock as the incident's state alone implies it, with no
    earlier cycle: exact for an incident as opened; otherwise `history.clock_history` of
    its events is the record (the store keeps it)."""
    out = []
    for kind, level, start, due, stop in _specs(incident, policy):
        cycle = ClockCycle(kind, level, start, due, None, None, None)
        out.append(cycle.stop(stop) if stop is not None else cycle)
    return tuple(out)


def _clock(cycle: ClockCycle, now: datetime, policy: Policy, severity: str) -> SlaClock:
    state = status(cycle, now, policy, severity)
    stopped = cycle.stopped_at is not None and cycle.stopped_at <= now
    due = cycle.due_at if stopped else escalation_due_from(cycle, policy, severity)
    return SlaClock(cycle.kind, cycle.started_at, due, cycle.stopped_at if stopped else None,
                    state, cycle.level if cycle.kind == SEVERITY_LEVEL else None)


def compute_clocks(incident: Incident, policy: Policy, now: datetime,
                   history: tuple[ClockCycle, ...] | None = None) -> tuple[SlaClock, ...]:
    """The clocks of SPEC §3 for `incident` at `now`: the latest cycle of each kind of
    its `history` (by default the one its state implies); stopped ones keep their
    outcome (`met`, `late`, `breached`), running ones are `running`, `due` or
    `breached`."""
    cycles = implied_history(incident, policy) if history is None else history
    # A level's own clocks are those of the level it stands at (L4 has no level clock).
    return tuple(_clock(c, now, policy, incident.severity) for c in latest(cycles).values()
                 if c.kind not in (RESPONSE, LEVEL) or c.level == incident.level)


_ORDER = {kind: n for n, kind in enumerate(CLOCK_KINDS)}  # ties go to the earlier clock


def assess(incident: Incident, policy: Policy, now: datetime,
           history: tuple[ClockCycle, ...] | None = None) -> Assessment:
    """Clocks, risk and headline of `incident` at `now`, from its clock `history` (by
    default the one its state implies): the rule `Schedule.at` evaluates from stored
    columns (tests check they agree)."""
    cycles = implied_history(incident, policy) if history is None else history
    clocks = compute_clocks(incident, policy, now, cycles)
    ticking = [c for c in clocks if not c.stopped] if incident.active else []
    passed = [c for c in ticking if c.status != RUNNING]
    breached_now = [c for c in ticking if c.status == BREACHED]
    due_now = [c for c in ticking if c.status == DUE]
    response = next((c for c in ticking if c.kind == RESPONSE), None)

    def soonest(group: list[SlaClock]) -> SlaClock:
        return min(group, key=lambda c: (c.due_at, _ORDER[c.kind]))

    # The headline: a passed breach, else the acknowledge countdown while the level has
    # not acknowledged, else a due escalation, else the soonest deadline.
    nearest = soonest(breached_now) if breached_now else response if response else \
        soonest(due_now) if due_now else soonest(ticking) if ticking else None
    past_breach = any(c.outcome == BREACHED and c.stopped_at is not None and c.stopped_at <= now
                      for c in cycles)
    running = [c for c in ticking if c.status == RUNNING]
    upcoming = [c.due_at for c in running]
    warn_from = None
    if ticking and not passed:
        first = soonest(ticking)
        warn_from = first.due_at - (first.due_at - first.started_at) * policy.warn_at
        if warn_from > now:
            upcoming.append(warn_from)
    if past_breach or breached_now or any(
            c.status == BREACHED for c in clocks if c.stopped):
        risk = BREACHED
    elif due_now:
        risk = DUE
    elif warn_from is not None and now >= warn_from:
        risk = WARNING
    else:
        risk = OK
    return Assessment(tuple(clocks), risk, nearest, min(upcoming) if upcoming else None,
                      tuple(cycles))


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def to_us(at: datetime) -> int:
    """An instant as whole microseconds since the epoch: exact, and what SQLite stores."""
    return (at - EPOCH) // _US


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


@dataclass(frozen=True, slots=True)
class Schedule:
    """When an incident's risk and headline deadline change if nothing more happens to it.

    Every clock that an event stopped is settled, and the rest tick on: so risk and the
    headline deadline are step functions of time with at most three steps (warning,
    escalation due, breach). Instants are `to_us` microseconds. The store keeps these
    beside each incident, so the queue's worst rows are one indexed `ORDER BY` away and
    a queue row needs no clocks at all.
    """

    active: bool
    breached: bool  # a stopped clock was breached: a fact that stays
    breach_at: int | None  # the first ticking clock whose passing is a breach ...
    breach_kind: str | None  # ... and its kind
    due_at: int | None  # the first ticking clock whose passing makes escalation due
    due_kind: str | None
    warn_at: int | None  # the nearest ticking deadline's warning instant
    ack_at: int | None  # the response deadline, while the level has not acknowledged

    @property
    def nearest(self) -> tuple[int, str] | None:
        """The soonest ticking deadline (due, kind), before any has passed; at the same
        instant, the clock SPEC §3 lists first."""
        b, bk, d, dk = self.breach_at, self.breach_kind, self.due_at, self.due_kind
        if d is None or dk is None:
            return None if b is None or bk is None else (b, bk)
        if b is None or bk is None or (d, _ORDER[dk]) < (b, _ORDER[bk]):
            return d, dk
        return b, bk

    def shifted(self, by: int) -> Schedule:
        """This schedule `by` microseconds later: an incident that happened that much later
        (every instant of SPEC §3 is an event's instant plus a policy duration)."""
        def move(t: int | None) -> int | None:
            return None if t is None else t + by
        return Schedule(self.active, self.breached, move(self.breach_at), self.breach_kind,
                        move(self.due_at), self.due_kind, move(self.warn_at),
                        move(self.ack_at))

    def values(self) -> tuple[Any, ...]:
        """The fields in order (the store's SLA_COLUMNS)."""
        return (self.active, self.breached, self.breach_at, self.breach_kind, self.due_at,
                self.due_kind, self.warn_at, self.ack_at)

    def at(self, now: int) -> tuple[str, str | None, int | None, int | None]:
        """(risk, headline kind, headline due, next change) at `now`, all in microseconds."""
        b, d, w = self.breach_at, self.due_at, self.warn_at
        passed_b = b is not None and now >= b
        if not self.active:
            risk = BREACHED if self.breached or passed_b else OK
            return risk, None, None, b if b is not None and b > now else None
        due = d is not None and now >= d
        if passed_b:
            kind, at = self.breach_kind, b
        elif self.ack_at is not None:  # not acknowledged at its level: the ACK countdown
            kind, at = RESPONSE, self.ack_at
        elif due:
            kind, at = self.due_kind, d
        else:
            nearest = self.nearest
            kind, at = nearest[1] if nearest else None, nearest[0] if nearest else None
        if self.breached or passed_b:
            risk = BREACHED
        elif due:
            risk = DUE
        elif w is not None and now >= w:
            risk = WARNING
        else:
            risk = OK
        later = [t for t in (b, d, w) if t is not None and t > now]
        return risk, kind, at, min(later) if later else None


def schedule(incident: Incident, policy: Policy,
             history: tuple[ClockCycle, ...] | None = None) -> Schedule:
    """The `Schedule` of SPEC §3's clocks for `incident` as it stands, from its clock
    `history` (by default the one its state implies)."""
    cycles = implied_history(incident, policy) if history is None else history
    active = incident.active
    breached = False
    breach: tuple[datetime, int, str] | None = None
    due: tuple[datetime, int, str] | None = None
    nearest: tuple[datetime, int, datetime] | None = None  # due, order, started
    ack_at = None
    for cycle in cycles:
        kind = cycle.kind
        if cycle.stopped_at is not None:  # an event stopped it: settled
            breached = breached or cycle.outcome == BREACHED
            continue
        due_at = escalation_due_from(cycle, policy, incident.severity)
        order = _ORDER[kind]
        if PASSED[kind] == BREACHED:
            if breach is None or (due_at, order) < breach[:2]:
                breach = (due_at, order, kind)
        elif not active:
            continue
        elif due is None or (due_at, order) < due[:2]:
            due = (due_at, order, kind)
        if active and kind == RESPONSE:
            ack_at = to_us(due_at)
        if active and (nearest is None or (due_at, order) < nearest[:2]):
            nearest = (due_at, order, cycle.started_at)
    warn_at = None
    if nearest is not None:
        warn_at = to_us(nearest[0] - (nearest[0] - nearest[2]) * policy.warn_at)
    return Schedule(active, breached,
                    to_us(breach[0]) if breach else None, breach[2] if breach else None,
                    to_us(due[0]) if due else None, due[2] if due else None, warn_at, ack_at)


def headline(incident: Incident, policy: Policy, now: datetime
             ) -> tuple[str, str | None, datetime | None, datetime | None]:
    """(risk, headline clock kind, its due_at, next change): `assess` without the clocks,
    for an incident whose events have all happened by `now` (tests check they agree)."""
    risk, kind, due, changes = schedule(incident, policy).at(to_us(now))
    return (risk, kind, from_us(due) if due is not None else None,
            from_us(changes) if changes is not None else None)


# -- the same rules as SQL columns and expressions, and as the queue's order ------------

RISK_RANK = {risk: n for n, risk in enumerate(RISKS)}  # worst first
NEVER = (1 << 62) - 1  # the headline deadline of an incident with none: after every real one
# The store keeps a `Schedule` beside each incident, field for field, in these columns.
SLA_COLUMNS = tuple(f"sla_{f.name}" for f in fields(Schedule))


def _sla_sql() -> tuple[str, str]:
    """`Schedule.at`'s risk (as its RISK_RANK) and headline deadline (NEVER for none),
    written over the stored SLA_COLUMNS at the parameter `:now` (and `:never`): the
    store orders and counts the queue's incidents with these without reading them."""
    c = dict(zip((f.name for f in fields(Schedule)), SLA_COLUMNS, strict=True))
    active, breached, breach, due, warn, ack = (c["active"], c["breached"], c["breach_at"],
                                                c["due_at"], c["warn_at"], c["ack_at"])
    risk = (f"CASE WHEN {breached} OR {breach} <= :now THEN {RISK_RANK[BREACHED]} "
            f"WHEN {active} AND {due} <= :now THEN {RISK_RANK[DUE]} "
            f"WHEN {active} AND {warn} <= :now THEN {RISK_RANK[WARNING]} "
            f"ELSE {RISK_RANK[OK]} END")
    head = (f"CASE WHEN NOT {active} THEN :never "
            f"WHEN {breach} <= :now THEN {breach} "
            f"WHEN {ack} IS NOT NULL THEN {ack} "
            f"WHEN {due} <= :now THEN {due} "
            f"ELSE min(coalesce({breach}, :never), coalesce({due}, :never)) END")
    return risk, head


RISK_SQL, HEAD_SQL = _sla_sql()

ID_LIMIT = 1 << 40  # incident ids below this (a trillion) pack into order keys
SEVERITY_LIMIT = 1 << 6  # severity ranks below this pack into order keys
_DUE_OFFSET = -to_us(datetime.min.replace(tzinfo=UTC))  # any instant's `to_us` + this >= 0


def order_key(risk: str, due_us: int | None, severity_rank: int, incident_id: int) -> int:
    """The queue's order, the one `sladeck list` and the dashboard share (SPEC §3): risk
    (worst first), then severity (its rank in the policy), then the headline deadline
    (`to_us`; soonest first, none last), then id: a fresh P0 breach above a three-day-old
    P3 breach. Packed into one int that sorts like that tuple, in a third of its memory,
    and compares faster (ids below ID_LIMIT, ranks below SEVERITY_LIMIT). The store's
    first-frame `ORDER BY` is RISK_SQL, severity rank, HEAD_SQL, id: the same order (a
    test compares them)."""
    due = NEVER if due_us is None else due_us + _DUE_OFFSET
    return ((RISK_RANK[risk] << 6 | severity_rank) << 62 | due) * ID_LIMIT + incident_id


def format_countdown(delta: timedelta) -> str:
    """`4m12s` under an hour, `1h05m` under a day, `2d03h` beyond; `-` once passed."""
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 3600:
        return f"{sign}{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{sign}{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{sign}{seconds // 86400}d{seconds % 86400 // 3600:02d}h"
