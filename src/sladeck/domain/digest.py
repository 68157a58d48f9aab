"""The shift digest (SPEC §11): what happened in [since, until), for a chat or a handoff.

Built from the store's digest queries (`ReportSource`, ports.py) and each incident's own
stored policy; `reports_out.digest_markdown` writes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sladeck.domain.clocks import BREACHED, to_us
from sladeck.domain.model import ACTIVE_STATES, Incident, from_iso, to_iso

STILL_OPEN_SHOWN = 20  # the worst open incidents listed; the rest are counted


@dataclass(frozen=True)
class DigestLine:
    """One thing that happened to one incident."""

    incident_id: int
    title: str
    severity: str
    level: str
    at: datetime
    who: str
    detail: str = ""


@dataclass(frozen=True)
class OpenLine:
    """An incident still open at the digest's end, in queue order."""

    incident_id: int
    title: str
    severity: str
    level: str
    state: str
    risk: str
    assignee: str | None


@dataclass
class Digest:
    since: datetime
    until: datetime
    sections: dict[str, list[DigestLine]] = field(default_factory=dict)
    still_open: list[OpenLine] = field(default_factory=list)
    still_open_total: int = 0
    follow_ups_due: list[tuple[Any, ...]] = field(default_factory=list)


SECTIONS = ("opened", "acknowledged", "escalated", "breached", "resolved", "closed",
            "reopened")


def _who(account: str, name: str | None) -> str:
    return f"{name} ({account})" if name and name != account else account


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def build_digest(source: Any, policies: Any, since: datetime, until: datetime,
                 severities: tuple[str, ...], today: str) -> Digest:
    """The digest of [since, until). `source` is the store (`ReportSource` and its queue
    reads), `policies` its `PolicySource`; `severities` orders the still-open list as
    the queue does; follow-ups due on or before `today` (YYYY-MM-DD) are listed."""
    s, u = to_iso(since), to_iso(until)
    d = Digest(since, until, {k: [] for k in SECTIONS})
    for (kind, at, account, name, incident_id, title, severity, level, trigger, fields,
         to_level) in source.digest_events(s, u):
        detail = ""
        if kind == "escalated":
            incident = source.incident(incident_id)
            policy = policies.policy(incident.policy_id) if incident else None
            target = policy.escalation.get(to_level) if policy else None
            labels = {t.key: t.label for t in target.triggers} if target else {}
            values = json.loads(fields) if fields else {}
            order = [i.key for i in target.handoff] if target else []
            first = next((values[k] for k in [*order, *sorted(values)] if values.get(k)), "")
            detail = f"to {to_level}, trigger: {labels.get(trigger, trigger)}"
            if first:
                detail += f" — {_first_line(first)}"
        d.sections[kind].append(DigestLine(incident_id, title, severity, level, from_iso(at),
                                           _who(account, name), detail))
    for incident in source.breach_candidates(s, u, to_us(since), to_us(until)):
        d.sections[BREACHED] += _breaches(incident, source.events(incident.id), policies,
                                          since, until)
    d.sections[BREACHED].sort(key=lambda line: (line.at, line.incident_id))
    items = source.queue_items(ACTIVE_STATES, worst=STILL_OPEN_SHOWN, now=to_us(until),
                               severities=severities)
    for item in items:
        risk, *_ = item.at(to_us(until))
        d.still_open.append(OpenLine(item.id, item.title, item.severity, item.level,
                                     item.state, risk, item.assignee))
    by_severity, _ = source.queue_counts(ACTIVE_STATES, to_us(until))
    d.still_open_total = sum(by_severity.values())
    d.follow_ups_due = source.follow_ups_due(today)
    return d


def _breaches(incident: Incident, events: list[Any], policies: Any, since: datetime,
              until: datetime) -> list[DigestLine]:
    """The clock cycles of `incident` (its clock history, domain/history.py, as recorded
    by `until`) that breached within [since, until): a response or resolution maximum
    whose deadline passed in the window before the cycle stopped, even if an escalation
    stopped it later."""
    from sladeck.domain.clocks import KIND_TITLE
    from sladeck.domain.history import PASSED, clock_history

    history = clock_history([e for e in events if e.at < until], policies.policy)
    return [DigestLine(incident.id, incident.title, incident.severity, incident.level,
                       c.due_at, "", f"{KIND_TITLE[c.kind]} at {c.level}")
            for c in history
            if PASSED[c.kind] == BREACHED and since <= c.due_at < until
            and (c.stopped_at is None or c.stopped_at > c.due_at)]
