"""Which notices of SPEC §6 an incident owes at an instant, and when it next owes one.

A notice is named by its key (incident, kind, key): the same name in every process
and on every host, because it is derived from the timeline and the incident's own
policy, never from the clock of whoever records it. The store claims each name once
(a unique key in the database), so a notice is recorded once, whoever sees it first.

Kinds (each an event on the timeline):
- `announced`: the incident arrived with, or was raised to, a severity the policy
  announces (P0, P1); key "" (once per incident).
- `paged`: escalated to a level, to that level's contacts; key `LEVEL@ENTERED`.
- `sla_due` / `sla_breached`: a ticking clock passed its deadline (also one that had
  already passed when the incident arrived); key `CLOCK@DUE_AT`.
- `repaged`: still unacknowledged `repage_every` after the response deadline, and again
  after each further `repage_every`, up to `repage_limit`; key `LEVEL@ENTERED#N`. Only the
  latest page due is told: pages missed while no sladeck ran fold into it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sladeck.domain.clocks import BREACHED, DUE, RESPONSE, assess
from sladeck.domain.model import Incident, to_iso
from sladeck.policy import Policy

ANNOUNCED, PAGED, SLA_DUE, SLA_BREACHED, REPAGED = (
    "announced", "paged", "sla_due", "sla_breached", "repaged")
NOTICE_KINDS = (ANNOUNCED, PAGED, SLA_DUE, SLA_BREACHED, REPAGED)


@dataclass(frozen=True, slots=True)
class Notice:
    """One notice an incident owes: its event kind, its unique key, and what it says."""

    kind: str
    key: str
    payload: dict[str, Any]


def _contacts(policy: Policy, level: str) -> list[str]:
    contact = policy.level_contacts.get(level)
    if contact is None:
        return []
    return [c for c in (contact.primary, contact.phone, contact.chat) if c]


def _paged_level(incident: Incident, policy: Policy) -> bool:
    """True when the incident entered its level by an escalation (not by opening there,
    nor by a reopen at a level it had reached before)."""
    levels = policy.levels
    if incident.level not in levels or levels.index(incident.level) == 0:
        return False
    return incident.reached.get(incident.level) == incident.level_entered_at


def owed(incident: Incident, policy: Policy, now: datetime) -> list[Notice]:
    """Every notice `incident` owes at `now`, told or not (the store knows which)."""
    if not incident.active:
        return []
    assessment = assess(incident, policy, now)
    notices: list[Notice] = []
    settings = policy.notifications
    entered = to_iso(incident.level_entered_at)
    if incident.severity in settings.announce:
        notices.append(Notice(ANNOUNCED, "", {
            "severity": incident.severity, "level": incident.level,
            "risk": assessment.risk, "to": _contacts(policy, incident.level)}))
    if _paged_level(incident, policy):
        notices.append(Notice(PAGED, f"{incident.level}@{entered}", {
            "level": incident.level, "to": _contacts(policy, incident.level)}))
    for clock in assessment.clocks:
        if clock.stopped or clock.status not in (DUE, BREACHED):
            continue
        kind = SLA_DUE if clock.status == DUE else SLA_BREACHED
        notices.append(Notice(kind, f"{clock.kind}@{to_iso(clock.due_at)}", {
            "clock": clock.kind, "due_at": to_iso(clock.due_at),
            "level": clock.target_level or incident.level}))
        if clock.kind == RESPONSE and settings.repage_limit:
            page = min((now - clock.due_at) // settings.repage_every, settings.repage_limit)
            if page >= 1:
                contact = policy.level_contacts.get(incident.level)
                notices.append(Notice(REPAGED, f"{incident.level}@{entered}#{page}", {
                    "level": incident.level, "page": page, "of": settings.repage_limit,
                    "due_at": to_iso(clock.due_at),
                    "to": [contact.escalation] if contact and contact.escalation else []}))
    return notices


def next_owed_at(incident: Incident, policy: Policy, now: datetime) -> datetime | None:
    """The next instant after `now` at which `incident` may owe a new notice, if nothing
    happens to it meanwhile (None: never)."""
    if not incident.active:
        return None
    settings = policy.notifications
    later: list[datetime] = []
    for clock in assess(incident, policy, now).clocks:
        if clock.stopped:
            continue
        if clock.due_at > now:
            later.append(clock.due_at)
        if clock.kind == RESPONSE and settings.repage_limit:
            for page in range(1, settings.repage_limit + 1):
                at = clock.due_at + settings.repage_every * page
                if at > now:
                    later.append(at)
                    break
    return min(later) if later else None


def next_repage_us(ack_at: int | None, settings: Any, now: int) -> int | None:
    """The next instant (`to_us`) after `now` at which a row still unacknowledged at its
    level, whose response deadline is `ack_at`, is paged again (`repaged`); None when it
    is acknowledged or has had every page (the dashboard's timer of re-pages: it keeps
    no `Incident`, only this instant)."""
    step = settings.repage_every // _US
    if ack_at is None or not settings.repage_limit or step <= 0:
        return None
    page = max(1, (now - ack_at) // step + 1)
    return ack_at + page * step if page <= settings.repage_limit else None


_US = timedelta(microseconds=1)
