"""The five SLA clocks of an incident, its risk, sort key and countdown text.

Everything here is a pure function of an incident's derived state (itself a
replay of its timeline), its policy and an instant: nothing is stored as truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sladeck.domain.model import Incident
from sladeck.policy import Policy

RESPONSE, LEVEL, SEVERITY_LEVEL = "response", "level", "severity_level"
RESOLUTION_TARGET, RESOLUTION_MAXIMUM = "resolution_target", "resolution_maximum"
CLOCK_KINDS = (RESPONSE, LEVEL, SEVERITY_LEVEL, RESOLUTION_TARGET, RESOLUTION_MAXIMUM)
RUNNING, MET, DUE, BREACHED = "running", "met", "due", "breached"
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
    nearest: SlaClock | None  # the headline deadline: worst status, then soonest
    changes_at: datetime | None  # next instant at which risk or any status changes

    def sort_key(self, incident: Incident, policy: Policy) -> tuple:
        """Risk, then headline deadline, then severity: stable until `changes_at`."""
        due = self.nearest.due_at.timestamp() if self.nearest else float("inf")
        return (RISKS.index(self.risk), due, policy.severity_rank(incident.severity), incident.id)


def _clock(kind: str, start: datetime, due: datetime, stop: datetime | None, now: datetime,
           passed: str, target_level: str | None = None) -> SlaClock:
    if stop is not None and stop <= now:
        status = MET if stop <= due else passed
    else:
        stop = None
        status = RUNNING if now < due else passed
    return SlaClock(kind, start, due, stop, status, target_level)


def _specs(incident: Incident, policy: Policy
           ) -> list[tuple[str, datetime, datetime, datetime | None, str, str | None]]:
    """(kind, started, due, stopped-by, status once passed, target level) per clock:
    the rules of SPEC §3, in one place for `compute_clocks` and `headline`."""
    severity = policy.severities[incident.severity]
    tier = policy.tiers[incident.level]
    opened, entered, resolved = incident.opened_at, incident.level_entered_at, incident.resolved_at
    acked = incident.acknowledged_at
    if acked is not None and acked < entered:
        acked = None  # an acknowledgement at an earlier level does not count here
    reached = incident.reached.get(severity.escalate_to)
    sev_stop = min(reached, resolved) if reached is not None and resolved is not None \
        else reached if reached is not None else resolved
    specs = [(RESPONSE, entered, entered + policy.response_matrix[incident.severity][
        incident.level], acked or resolved, BREACHED, None)]
    if tier.escalate_after is not None:
        specs.append((LEVEL, entered, entered + tier.escalate_after, resolved, DUE, None))
    specs.append((SEVERITY_LEVEL, opened, opened + severity.escalate_within, sev_stop, DUE,
                  severity.escalate_to))
    specs.append((RESOLUTION_TARGET, opened, opened + severity.resolution_target, resolved, DUE,
                  None))
    specs.append((RESOLUTION_MAXIMUM, opened, opened + severity.resolution_maximum, resolved,
                  BREACHED, None))
    return specs


def compute_clocks(incident: Incident, policy: Policy, now: datetime) -> tuple[SlaClock, ...]:
    """The clocks of SPEC §3 for `incident` at `now` (stopped ones keep their outcome)."""
    return tuple(_clock(kind, start, due, stop, now, passed, target)
                 for kind, start, due, stop, passed, target in _specs(incident, policy))


def assess(incident: Incident, policy: Policy, now: datetime) -> Assessment:
    clocks = compute_clocks(incident, policy, now)
    ticking = [c for c in clocks if not c.stopped] if incident.active else []
    # The headline deadline: the worst ticking clock first, then the soonest.
    urgency = {BREACHED: 0, DUE: 1, RUNNING: 2}
    nearest = min(ticking, key=lambda c: (urgency[c.status], c.due_at)) if ticking else None
    # A breach is a fact that stays (SPEC §3: any clock breached); an escalation is
    # only due while its clock is still ticking.
    statuses = {c.status for c in clocks if c.status == BREACHED} | {c.status for c in ticking}
    running = [c for c in ticking if c.status == RUNNING]
    upcoming = [c.due_at for c in running]
    warn_from = None
    if nearest is not None and nearest.status == RUNNING:
        span = nearest.due_at - nearest.started_at
        warn_from = nearest.due_at - span * policy.warn_at
        if warn_from > now:
            upcoming.append(warn_from)
    if BREACHED in statuses:
        risk = BREACHED
    elif DUE in statuses and incident.active:
        risk = DUE
    elif warn_from is not None and now >= warn_from:
        risk = WARNING
    else:
        risk = OK
    return Assessment(tuple(clocks), risk, nearest, min(upcoming) if upcoming else None)


_URGENCY = {BREACHED: 0, DUE: 1, RUNNING: 2}


def headline(incident: Incident, policy: Policy, now: datetime
             ) -> tuple[str, str | None, datetime | None, datetime | None]:
    """(risk, headline clock kind, its due_at, changes_at): `assess` without the clocks.

    The same rules as `assess` (tests check they agree), without building five
    SlaClock objects: what the queue keeps for each of thousands of rows.
    """
    specs = _specs(incident, policy)
    active = incident.active
    breached = due = False
    best: tuple[int, datetime, str, datetime] | None = None  # urgency, due, kind, start
    upcoming: datetime | None = None
    for kind, start, due_at, stop, passed, _target in specs:
        if stop is not None and stop <= now:  # stopped: its outcome stays
            if stop > due_at and passed == BREACHED:
                breached = True
            continue
        status = RUNNING if now < due_at else passed
        if status == BREACHED:
            breached = True
        if not active:
            continue
        if status == DUE:
            due = True
        elif status == RUNNING and (upcoming is None or due_at < upcoming):
            upcoming = due_at
        rank = _URGENCY[status]
        if best is None or (rank, due_at) < (best[0], best[1]):
            best = (rank, due_at, kind, start)
    warn_from = None
    if best is not None and best[0] == 2:  # the headline clock is running
        warn_from = best[1] - (best[1] - best[3]) * policy.warn_at
        if warn_from > now and (upcoming is None or warn_from < upcoming):
            upcoming = warn_from
    if breached:
        risk = BREACHED
    elif due:
        risk = DUE
    elif warn_from is not None and now >= warn_from:
        risk = WARNING
    else:
        risk = OK
    if best is None:
        return risk, None, None, upcoming
    return risk, best[2], best[1], upcoming


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
