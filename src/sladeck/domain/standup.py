"""What a stand-up looks at, as plain data: the last day's activity and the follow-ups
across incidents.

The store counts and reads (`Storage.activity`, `Storage.follow_up_entries`); what a
screen shows of them (which follow-ups are overdue or mine) is decided here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sladeck.domain.model import FollowUp, format_ref

# The board's summary of a day: (event kind on the timeline, what the board calls it).
ACTIVITY = (("opened", "opened"), ("acknowledged", "acknowledged"),
            ("escalated", "escalated"), ("sla_breached", "breached"),
            ("resolved", "resolved"), ("closed", "closed"))
ACTIVITY_KINDS = tuple(kind for kind, _ in ACTIVITY)
DAY = timedelta(hours=24)


def activity_summary(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """(name, incidents) for each kind of the day's summary, in the board's order, from
    the store's counts by event kind (a kind with no event counts 0)."""
    return [(name, counts.get(kind, 0)) for kind, name in ACTIVITY]


@dataclass(frozen=True)
class FollowUpEntry:
    """A follow-up with the incident it belongs to, for a list across incidents."""

    follow_up: FollowUp
    title: str  # the incident's
    severity: str
    state: str

    @property
    def ref(self) -> str:
        return format_ref(self.follow_up.incident_id)

    @property
    def done(self) -> bool:
        return self.follow_up.done_at is not None

    def due_date(self) -> date | None:
        """The due date, or None when there is none (or it does not read as a date)."""
        due = self.follow_up.due
        if not due:
            return None
        try:
            return date.fromisoformat(due)
        except ValueError:
            return None

    def overdue(self, today: date) -> bool:
        """Not done, and its due date is before `today`."""
        due = self.due_date()
        return not self.done and due is not None and due < today


FOLLOW_UP_VIEWS = ("open", "overdue", "mine", "all")


def follow_ups_shown(entries: Iterable[FollowUpEntry], view: str, me: Iterable[str],
                     today: date) -> list[FollowUpEntry]:
    """The follow-ups a view shows: `open` (not done), `overdue` (not done, past due),
    `mine` (not done, owned by one of the names in `me`), `all`. Overdue first, then
    by due date (none last), then by id."""
    names = {n.casefold() for n in me if n}
    chosen = [e for e in entries if view == "all"
              or (not e.done and (view == "open"
                                  or (view == "overdue" and e.overdue(today))
                                  or (view == "mine"
                                      and e.follow_up.owner.strip().casefold() in names)))]
    return sorted(chosen, key=lambda e: (e.done, not e.overdue(today),
                                         e.due_date() or date.max, e.follow_up.id))


def since_day(now: datetime) -> datetime:
    """The start of the board's day: 24 hours before `now`."""
    return now - DAY
