"""The incident state machine: how each event changes an incident.

Actions build an event and call `apply_event` to get the new state; `verify`
replays the whole timeline through the same function and compares. So the
stored incident row is only ever a cache of its events.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sladeck.domain.model import (
    ACKNOWLEDGED,
    CLOSED,
    OPEN,
    RESOLVED,
    Actor,
    Incident,
    from_iso,
)
from sladeck.text import visible

# Events that change an incident's state bump its version; the rest (notes, ticks,
# repeats, automatic notices) never make someone's open form stale.
STATE_EVENTS = frozenset({
    "opened", "acknowledged", "escalated", "severity_changed", "assigned", "resolved",
    "closed", "reopened", "policy_applied"})
EVENT_KINDS = STATE_EVENTS | {
    "note", "repeated", "checklist_ticked", "checklist_unticked", "review_filed",
    "follow_up_added", "follow_up_done", "sla_due", "sla_breached", "hook_failed",
    "source_cleared", "announced", "paged", "repaged"}


def _reach(reached: dict[str, datetime], levels: tuple[str, ...], level: str,
           at: datetime) -> dict[str, datetime]:
    """Record the first time the incident stood at or above each level."""
    out = dict(reached)
    for lv in levels[: levels.index(level) + 1]:
        out.setdefault(lv, at)
    return out


def apply_event(incident: Incident | None, *, event_id: int, version: int, kind: str,
                payload: dict[str, Any], at: datetime, actor: Actor,
                levels: tuple[str, ...]) -> Incident:
    """The incident after one event. `levels` is the policy's level order."""
    if kind == "opened":
        opened_at = from_iso(payload["opened_at"]) if payload.get("opened_at") else at
        return Incident(
            id=payload["id"], title=payload["title"], severity=payload["severity"],
            level=payload["level"], state=OPEN, opened_at=opened_at, opened_by=actor.display,
            level_entered_at=opened_at, policy_id=payload["policy_id"], version=version,
            description=payload.get("description") or "", service=payload.get("service") or "",
            external_ref=payload.get("external_ref"), dedup_key=payload.get("dedup_key"),
            reached=_reach({}, levels, payload["level"], opened_at), changed_seq=event_id,
            updated_at=at, updated_by=actor.display, last_change=kind)
    if incident is None:
        raise ValueError(f"event {event_id} ({kind}) comes before its incident was opened")
    changes: dict[str, Any] = {}
    if kind == "acknowledged":
        changes = {"state": ACKNOWLEDGED, "acknowledged_at": at,
                   "acknowledged_by": actor.display,
                   "first_acknowledged_at": incident.first_acknowledged_at or at}
    elif kind in ("escalated", "reopened"):
        level = payload.get("to", incident.level)
        changes = {"level": level, "state": OPEN, "level_entered_at": at,
                   "acknowledged_at": None, "acknowledged_by": None, "resolved_at": None,
                   "closed_at": None, "reached": _reach(incident.reached, levels, level, at)}
        if kind == "escalated" and "assignee" in payload:
            # Ownership moves to the new level: cleared unless the escalation names the
            # new owner (escalations recorded before this rule carry no key and kept it).
            changes["assignee"] = payload["assignee"] or None
    elif kind == "severity_changed":
        changes = {"severity": payload["to"]}
    elif kind == "assigned":
        changes = {"assignee": payload["to"] or None}
    elif kind == "resolved":
        changes = {"state": RESOLVED, "resolved_at": at}
    elif kind == "closed":
        changes = {"state": CLOSED, "closed_at": at}
    elif kind == "policy_applied":
        changes = {"policy_id": payload["policy_id"]}
    elif kind == "repeated":  # the alert fires again: its source no longer says it ended
        changes = {"repeats": incident.repeats + 1, "source_cleared_at": None}
    elif kind == "source_cleared":
        changes = {"source_cleared_at": at}
    if kind in STATE_EVENTS:
        changes.update(version=version, updated_at=at, updated_by=actor.display,
                       last_change=kind)
    return replace(incident, changed_seq=event_id, **changes)


def describe(kind: str, payload: dict[str, Any]) -> str:
    """A past-tense phrase for an event: `escalated to L3`, `acknowledged`."""
    match kind:
        case "opened":
            return f"opened as {payload.get('severity')} at {payload.get('level')}"
        case "escalated":
            owner = payload.get("assignee")  # free text: escaped, as for `assigned`
            return f"escalated to {payload.get('to')}" + (
                f", assigned to {visible(str(owner))}" if owner else "")
        case "severity_changed":
            return f"changed to {payload.get('to')}"
        case "assigned":
            # the only free text in a phrase: shown escaped wherever the phrase goes
            return f"assigned to {visible(str(payload['to']))}" if payload.get("to") \
                else "unassigned"
        case "policy_applied":
            return "re-based on the current policy"
        case "note":
            return "given a note"
        case "repeated":
            upgrade = payload.get("upgrade")
            if isinstance(upgrade, dict):  # kept visible: a person changes the severity
                return (f"repeated by an alert that now says {visible(str(upgrade.get('to')))} "
                        f"(the incident is {visible(str(upgrade.get('from')))})")
            return "repeated by an alert"
        case "source_cleared":
            return "cleared at its source (the alert ended; resolve it when it is)"
        case "checklist_ticked":
            return f"ticked {payload.get('item')}"
        case "checklist_unticked":
            return f"unticked {payload.get('item')}"
        case "review_filed":
            return "reviewed"
        case "follow_up_added":
            return "given a follow-up"
        case "follow_up_done":
            return "had a follow-up done"
        case "sla_due":
            towards = "to" if payload.get("clock") == "severity_level" else "from"
            return (f"due for escalation {towards} {payload.get('level')} "
                    f"({_clock_name(payload.get('clock'))} deadline passed)")
        case "sla_breached":
            return f"breached its {_clock_name(payload.get('clock'))} SLA"
        case "announced":
            risk = payload.get("risk")
            late = f", already {risk}" if risk in ("due", "breached") else ""
            return f"announced as {payload.get('severity')} at {payload.get('level')}{late}"
        case "paged":
            return f"paged {payload.get('level')}" + _to(payload)
        case "repaged":
            return (f"paged again, still unacknowledged at {payload.get('level')} "
                    f"(page {payload.get('page')} of {payload.get('of')})" + _to(payload))
        case "hook_failed":
            return "not delivered to the notification command"
        case _:
            return kind.replace("_", " ")


def _to(payload: dict[str, Any]) -> str:
    """`: who, where`: the contacts a notice went to, if it names any."""
    to = payload.get("to")
    return f": {', '.join(str(c) for c in to)}" if isinstance(to, list) and to else ""


def _clock_name(kind: Any) -> str:
    """`Response (acknowledge)` for `response`: a clock as people read it."""
    from sladeck.domain.clocks import KIND_TITLE

    return KIND_TITLE.get(str(kind), str(kind).replace("_", " "))
