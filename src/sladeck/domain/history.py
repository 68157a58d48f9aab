"""An incident's clock history: every cycle of every SLA clock, derived from its timeline.

SPEC §3: each level an incident enters starts a new cycle of its response and level
clocks; a reopen starts new cycles of every clock. A cycle that has stopped keeps its
outcome for ever: `met` (stopped in time), `late` (an escalation or resolution made
after its deadline, `late_by_s` seconds after it) or `breached` (a response or a
resolution maximum that passed before it stopped). A stopped clock is never `due`.

`clock_history` is a pure function of the events and the policies the incident was
under; the store keeps its result as a derived record (`verify` recomputes it), and
reports aggregate it. `statuses`/`current` say what the cycles mean at an instant.

How each event moves the cycles:

- opened / reopened: a cycle of every clock starts (a reopen first stops any still
  running); the severity clock starts already met when the incident stands at or above
  the level it asks for;
- acknowledged: the running response cycle stops;
- escalated: the response and level cycles stop, and new ones start at the new level;
  the severity cycle stops when the new level reaches the level it asks for;
- resolved / closed: every running cycle stops;
- severity_changed / policy_applied: running cycles are re-based on the new severity
  or policy (stopped ones keep their outcome); when the new severity asks for a level
  not yet reached and no severity cycle runs, a new one starts at the change.

An immediate escalation (`within: 0m`, P0 → L4) is due the moment its cycle starts,
and its deadline (`due_at`) is the start plus the severity's `grace` (default: its
response time): reaching the level by then is `met`, after it `late`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from sladeck.domain.model import Actor, Incident
from sladeck.domain.timeline import apply_event
from sladeck.policy import Policy

RESPONSE, LEVEL, SEVERITY_LEVEL = "response", "level", "severity_level"
RESOLUTION_TARGET, RESOLUTION_MAXIMUM = "resolution_target", "resolution_maximum"
CLOCK_KINDS = (RESPONSE, LEVEL, SEVERITY_LEVEL, RESOLUTION_TARGET, RESOLUTION_MAXIMUM)
RUNNING, MET, LATE, DUE, BREACHED = "running", "met", "late", "due", "breached"
OUTCOMES = (MET, LATE, BREACHED)
STATUSES = (RUNNING, MET, LATE, DUE, BREACHED)
# What passing a clock's deadline means while it runs (and its outcome once stopped late).
PASSED = {RESPONSE: BREACHED, LEVEL: DUE, SEVERITY_LEVEL: DUE, RESOLUTION_TARGET: DUE,
          RESOLUTION_MAXIMUM: BREACHED}


@dataclass(frozen=True, slots=True)
class ClockCycle:
    """One cycle of one SLA clock (SPEC §3 `clock_history`).

    `level` is the level the cycle belongs to: the level entered (response, level), the
    level it asks for (severity_level), the level when it started (resolution clocks).
    `outcome` and `late_by_s` are None while it runs; `late_by_s` is how many seconds
    (rounded up) after `due_at` a late or breached cycle stopped.
    """

    kind: str
    level: str
    started_at: datetime
    due_at: datetime
    stopped_at: datetime | None
    outcome: str | None
    late_by_s: int | None

    @property
    def running(self) -> bool:
        return self.stopped_at is None

    def stop(self, at: datetime) -> ClockCycle:
        """This cycle stopped at `at`, with its outcome."""
        if at <= self.due_at:
            return replace(self, stopped_at=at, outcome=MET, late_by_s=None)
        outcome = BREACHED if PASSED[self.kind] == BREACHED else LATE
        late = math.ceil((at - self.due_at).total_seconds())
        return replace(self, stopped_at=at, outcome=outcome, late_by_s=late)

    def as_json(self) -> dict[str, Any]:
        from sladeck.domain.model import json_time

        return {"kind": self.kind, "level": self.level, "started_at": json_time(self.started_at),
                "due_at": json_time(self.due_at), "stopped_at": json_time(self.stopped_at),
                "outcome": self.outcome, "late_by_s": self.late_by_s}


class TimelineEvent(Protocol):
    """What `clock_history` reads of an event (a `model.Event` is one)."""

    id: int
    version: int
    kind: str
    payload: dict[str, Any]
    at: datetime

    @property
    def actor(self) -> Actor: ...


def severity_due(policy: Policy, severity: str, started: datetime) -> datetime:
    """The deadline of a severity-escalation cycle started at `started`."""
    sev = policy.severities[severity]
    return started + (sev.grace if sev.immediate else sev.escalate_within)


def _reached(policy: Policy, level: str, target: str) -> bool:
    return policy.level_rank(level) >= policy.level_rank(target)


class _Cycles:
    """The cycles so far, and which one of each kind runs."""

    def __init__(self) -> None:
        self.cycles: list[ClockCycle] = []
        self.running: dict[str, int] = {}

    def start(self, cycle: ClockCycle) -> None:
        self.running[cycle.kind] = len(self.cycles)
        self.cycles.append(cycle)

    def stop(self, kind: str, at: datetime) -> None:
        index = self.running.pop(kind, None)
        if index is not None:
            self.cycles[index] = self.cycles[index].stop(at)

    def stop_all(self, at: datetime) -> None:
        for kind in list(self.running):
            self.stop(kind, at)

    def set(self, kind: str, cycle: ClockCycle) -> None:
        self.cycles[self.running[kind]] = cycle

    def get(self, kind: str) -> ClockCycle | None:
        index = self.running.get(kind)
        return None if index is None else self.cycles[index]

    def start_level(self, incident: Incident, policy: Policy, at: datetime) -> None:
        """New response and level cycles at the incident's level."""
        level = incident.level
        self.start(ClockCycle(RESPONSE, level, at,
                              at + policy.response_time(incident.severity, level), None, None,
                              None))
        after = policy.tiers[level].escalate_after
        if after is not None:
            self.start(ClockCycle(LEVEL, level, at, at + after, None, None, None))

    def start_severity(self, incident: Incident, policy: Policy, at: datetime) -> None:
        target = policy.severities[incident.severity].escalate_to
        if not target or target not in policy.tiers:
            return
        cycle = ClockCycle(SEVERITY_LEVEL, target, at,
                           severity_due(policy, incident.severity, at), None, None, None)
        self.start(cycle)
        if _reached(policy, incident.level, target):
            self.stop(SEVERITY_LEVEL, at)

    def start_all(self, incident: Incident, policy: Policy, at: datetime) -> None:
        sev = policy.severities[incident.severity]
        self.start_level(incident, policy, at)
        self.start_severity(incident, policy, at)
        self.start(ClockCycle(RESOLUTION_TARGET, incident.level, at, at + sev.resolution_target,
                              None, None, None))
        self.start(ClockCycle(RESOLUTION_MAXIMUM, incident.level, at,
                              at + sev.resolution_maximum, None, None, None))

    def rebase(self, incident: Incident, policy: Policy, at: datetime) -> None:
        """Running cycles re-based on the incident's severity and policy now."""
        sev = policy.severities[incident.severity]
        for kind in list(self.running):
            c = self.cycles[self.running[kind]]
            if kind == RESPONSE:
                self.set(kind, replace(c, due_at=c.started_at + policy.response_time(
                    incident.severity, c.level)))
            elif kind == LEVEL:
                after = policy.tiers[c.level].escalate_after if c.level in policy.tiers \
                    else None
                if after is not None:
                    self.set(kind, replace(c, due_at=c.started_at + after))
            elif kind == SEVERITY_LEVEL:
                self.set(kind, replace(c, level=sev.escalate_to, due_at=severity_due(
                    policy, incident.severity, c.started_at)))
                if _reached(policy, incident.level, sev.escalate_to):
                    self.stop(kind, at)
            elif kind == RESOLUTION_TARGET:
                self.set(kind, replace(c, due_at=c.started_at + sev.resolution_target))
            elif kind == RESOLUTION_MAXIMUM:
                self.set(kind, replace(c, due_at=c.started_at + sev.resolution_maximum))
        if incident.active and SEVERITY_LEVEL not in self.running and sev.escalate_to and \
                not _reached(policy, incident.level, sev.escalate_to):
            self.start_severity(incident, policy, at)


def clock_history(events: Iterable[TimelineEvent],
                  policy_for: Callable[[int], Policy] | Policy) -> tuple[ClockCycle, ...]:
    """Every cycle of every clock of one incident, in the order they started, from its
    events in chain order and the policy (or `policy_for(policy_id)`) it was under."""
    replay = HistoryReplay(policy_for)
    for event in events:
        replay.step(event)
    return replay.history()


class HistoryReplay:
    """`clock_history` one event at a time (`verify` walks the whole chain once)."""

    def __init__(self, policy_for: Callable[[int], Policy] | Policy) -> None:
        self.lookup = (lambda _id: policy_for) if isinstance(policy_for, Policy) \
            else policy_for
        self.cycles = _Cycles()
        self.incident: Incident | None = None

    def history(self) -> tuple[ClockCycle, ...]:
        return tuple(self.cycles.cycles)

    def step(self, event: TimelineEvent) -> None:
        """Take in the incident's next event."""
        cycles, incident, lookup = self.cycles, self.incident, self.lookup
        kind = event.kind
        policy_id = event.payload["policy_id"] if kind == "opened" else \
            incident.policy_id if incident is not None else None
        if policy_id is None:
            return  # an event before its opening: `verify` reports it
        levels = lookup(policy_id).levels
        incident = self.incident = apply_event(
            incident, event_id=event.id, version=event.version, kind=kind,
            payload=event.payload, at=event.at, actor=event.actor, levels=levels)
        policy, at = lookup(incident.policy_id), event.at
        if kind == "opened":
            cycles.start_all(incident, policy, incident.opened_at)
        elif kind == "acknowledged":
            cycles.stop(RESPONSE, at)
        elif kind == "escalated":
            cycles.stop(RESPONSE, at)
            cycles.stop(LEVEL, at)
            running = cycles.get(SEVERITY_LEVEL)
            if running is not None and _reached(policy, incident.level, running.level):
                cycles.stop(SEVERITY_LEVEL, at)
            cycles.start_level(incident, policy, at)
        elif kind in ("resolved", "closed"):
            cycles.stop_all(at)
        elif kind == "reopened":
            cycles.stop_all(at)
            cycles.start_all(incident, policy, at)
        elif kind in ("severity_changed", "policy_applied"):
            cycles.rebase(incident, policy, at)


# -- what the cycles say at an instant --------------------------------------------------

def escalation_due_from(cycle: ClockCycle, policy: Policy, severity: str) -> datetime:
    """When a running cycle's passing makes an escalation due or a breach: its deadline,
    or its start for an immediate escalation (due at once, SPEC §3)."""
    if cycle.kind == SEVERITY_LEVEL and severity in policy.severities and \
            policy.severities[severity].immediate:
        return cycle.started_at
    return cycle.due_at


def status(cycle: ClockCycle, now: datetime, policy: Policy, severity: str) -> str:
    """`running`, `due` or `breached` for a cycle running at `now`; its outcome (`met`,
    `late`, `breached`) once it has stopped (never `due`). A cycle stopped after `now`
    (a clock behind the timeline) is judged as running at `now`."""
    if cycle.stopped_at is not None and cycle.stopped_at <= now:
        assert cycle.outcome is not None
        return cycle.outcome
    if now < escalation_due_from(cycle, policy, severity):
        return RUNNING
    return PASSED[cycle.kind]


def statuses(history: Sequence[ClockCycle], now: datetime, policy: Policy, severity: str
             ) -> list[str]:
    """Each cycle's status at `now`, in the history's order."""
    return [status(c, now, policy, severity) for c in history]


def latest(history: Sequence[ClockCycle]) -> dict[str, ClockCycle]:
    """The latest cycle of each kind, in CLOCK_KINDS order (the clocks an incident has
    now)."""
    last = {c.kind: c for c in history}
    return {k: last[k] for k in CLOCK_KINDS if k in last}


def ever_breached(history: Sequence[ClockCycle], now: datetime | None = None) -> bool:
    """Whether any cycle stopped breached (by `now`, when given): a fact that stays."""
    return any(c.outcome == BREACHED and (now is None or c.stopped_at is None
                                          or c.stopped_at <= now) for c in history)

