"""Incidents, events and the records around them, as immutable values."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

OPEN, ACKNOWLEDGED, RESOLVED, CLOSED = "open", "acknowledged", "resolved", "closed"
STATES = (OPEN, ACKNOWLEDGED, RESOLVED, CLOSED)
ACTIVE_STATES = (OPEN, ACKNOWLEDGED)

_REF_RE = re.compile(r"^(?:inc-?)?(\d+)$", re.IGNORECASE)


def parse_ref(text: str) -> int | None:
    """`42`, `INC-42`, `inc42` → 42; anything else → None."""
    match = _REF_RE.match(text.strip())
    return int(match.group(1)) if match else None


def format_ref(incident_id: int) -> str:
    return f"INC-{incident_id}"


def to_iso(at: datetime) -> str:
    """Fixed-width UTC text that sorts as time does."""
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def from_iso(text: str) -> datetime:
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def local_time(at: datetime) -> str:
    """A time in the viewer's zone, with the zone shown (SPEC: stored in UTC, shown in
    the viewer's local time zone): `2026-11-30 10:00:00 CET +01:00`."""
    local = at.astimezone()
    return local.strftime("%Y-%m-%d %H:%M:%S ") + zone_label(local)


_ZONE_NAME = re.compile(r"^[A-Za-z]{2,10}$")
_UTC_NAMES = frozenset({"UTC", "GMT", "UCT", "UT", "Z", "ZULU", "UNIVERSAL", "GREENWICH"})
_ZONE_LABELS: dict[tuple[str | None, timedelta | None], str] = {}


def zone_label(local: datetime) -> str:
    """The zone of an aware time, as far as it can be trusted: its name and numeric offset
    (`CET +01:00`); only the offset (`UTC-14:00`) when the name is numeric (`+14`) or says
    UTC at another offset (POSIX `TZ=UTC+14` is 14 h *behind* UTC); `UTC` alone at UTC."""
    key = (local.tzname(), local.utcoffset())
    label = _ZONE_LABELS.get(key)
    if label is None:
        name, offset = (key[0] or "").strip(), key[1] or timedelta(0)
        seconds = int(offset.total_seconds())
        sign, seconds = "-" if seconds < 0 else "+", abs(seconds)
        numeric = f"{sign}{seconds // 3600:02d}:{seconds // 60 % 60:02d}" + (
            f":{seconds % 60:02d}" if seconds % 60 else "")
        utc_name = name.upper() in _UTC_NAMES
        if utc_name and not seconds:
            label = name
        elif utc_name or not _ZONE_NAME.match(name):
            label = "UTC" + numeric
        else:
            label = f"{name} {numeric}"
        if len(_ZONE_LABELS) < 64:  # a process sees a handful of zones
            _ZONE_LABELS[key] = label
    return label


def json_time(at: datetime | None) -> str | None:
    """ISO 8601 UTC to the second, as the --json output shows it."""
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if at \
        else None


@dataclass(frozen=True)
class Actor:
    """Who did something: the OS account (from the uid) and an optional display name."""

    account: str
    name: str | None = None

    @property
    def display(self) -> str:
        return f"{self.name} ({self.account})" if self.name and self.name != self.account \
            else self.account


@dataclass(frozen=True, slots=True)
class Incident:
    """One incident as stored: its state now (the timeline is its events)."""

    id: int
    title: str
    severity: str
    level: str
    state: str
    opened_at: datetime
    opened_by: str
    level_entered_at: datetime
    policy_id: int
    version: int
    description: str = ""
    service: str = ""
    assignee: str | None = None
    external_ref: str | None = None
    dedup_key: str | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    reached: dict[str, datetime] = field(default_factory=dict)
    repeats: int = 0
    changed_seq: int = 0
    updated_at: datetime | None = None
    updated_by: str | None = None
    last_change: str | None = None
    # When the alert's source last said it ended (`source_cleared`); a later repeat of
    # the alert clears it again. People resolve: this never does.
    source_cleared_at: datetime | None = None
    # The first acknowledgement ever (`acknowledged_at` is the latest, at this level).
    first_acknowledged_at: datetime | None = None

    @property
    def ref(self) -> str:
        return format_ref(self.id)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


@dataclass(frozen=True)
class Event:
    """One link of an incident's append-only, hash-chained timeline."""

    id: int
    incident_id: int
    version: int
    at: datetime
    account: str
    name: str | None
    kind: str
    payload: dict[str, Any]
    prev_hash: str = ""
    hash: str = ""

    @property
    def actor(self) -> Actor:
        return Actor(self.account, self.name)


@dataclass(frozen=True)
class Handoff:
    """The handoff fields given with one escalation."""

    id: int
    incident_id: int
    event_id: int
    at: datetime
    actor: str
    from_level: str
    to_level: str
    trigger: str
    reason: str
    fields: dict[str, str]


@dataclass(frozen=True)
class ChecklistTick:
    """A checklist item someone ticked."""

    checklist: str
    item: str
    at: datetime
    actor: str
    event_id: int = 0


@dataclass(frozen=True)
class Review:
    """An incident's post-incident review."""

    incident_id: int
    at: datetime
    actor: str
    fields: dict[str, str]
    event_id: int = 0


@dataclass(frozen=True)
class FollowUp:
    """An action item from a review, and whether it is done."""

    id: int
    incident_id: int
    kind: str
    description: str
    owner: str
    due: str | None
    created_at: datetime
    done_at: datetime | None = None
    done_by: str | None = None


@dataclass(frozen=True, slots=True)
class IncidentDetail:
    """Everything about one incident, for the detail screen, `show` and exports."""

    incident: Incident
    events: tuple[Event, ...] = ()
    handoffs: tuple[Handoff, ...] = ()
    ticks: tuple[ChecklistTick, ...] = ()
    review: Review | None = None
    follow_ups: tuple[FollowUp, ...] = ()
    # Made before the last reopen: they belong to the earlier cycle, not to this one.
    earlier_ticks: tuple[ChecklistTick, ...] = ()
    earlier_review: Review | None = None
    reopened_at: datetime | None = None
    clock_history: tuple[Any, ...] = ()  # `history.ClockCycle`s, in the order they started


CYCLE_CHECKLISTS = ("resolution",)  # done again after each reopen


def current_cycle(detail: IncidentDetail) -> IncidentDetail:
    """`detail` with the resolution ticks and the review made before the last reopen moved
    to `earlier_ticks` / `earlier_review`: a reopened incident shows them as past, and
    resolving and reviewing it again need them again."""
    reopens = [e for e in detail.events if e.kind == "reopened"]
    if not reopens:
        return detail
    last = reopens[-1]
    earlier = tuple(t for t in detail.ticks
                    if t.checklist in CYCLE_CHECKLISTS and t.event_id < last.id)
    old_review = detail.review if detail.review and detail.review.event_id < last.id else None
    return replace(detail, ticks=tuple(t for t in detail.ticks if t not in earlier),
                   review=None if old_review else detail.review, earlier_ticks=earlier,
                   earlier_review=old_review, reopened_at=last.at)
