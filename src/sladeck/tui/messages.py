"""Every message that crosses between the dashboard's screens and the app, in one place.

Messages go up (a form asks for an action), attributes come down (the app answers
the form it came from). Each is a small dataclass, as Textual allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from textual.screen import Screen

    from sladeck.domain.model import Incident, IncidentDetail
    from sladeck.store import Store
    from sladeck.tui.requests import Request


@dataclass(eq=False)
class StoreChanged(Message, bubble=False):
    """Incidents `ids` changed in the store: a screen showing one of them reads it again
    through `reader`. A flood (a long import) collapses into the newest message, which
    takes over the ids of those it replaces."""

    ids: frozenset[int]
    reader: Store

    def can_replace(self, message: Message) -> bool:
        if isinstance(message, StoreChanged) and message.reader is self.reader:
            message.ids = message.ids | self.ids  # `message` is newer: it is kept
            return True
        return False

    def detail(self, incident_id: int) -> IncidentDetail | None:
        return self.reader.detail(incident_id) if incident_id in self.ids else None

    def incident(self, incident_id: int) -> Incident | None:
        return self.reader.incident(incident_id) if incident_id in self.ids else None


@dataclass(eq=False)
class ActionRequested(Message):
    """A form (or a screen) asks the app to run `request`; the app answers `form`, if
    given: it closes on success, or gets an `ActionRefused`."""

    request: Request
    form: Screen[Any] | None = None


@dataclass(eq=False)
class ActionRefused(Message, bubble=False):
    """The app's answer to a form whose action was refused: the form stays open with
    what was typed, says why and marks the `missing` fields. `newer`: someone else
    changed the incident meanwhile; a second submit acts on it as it is now."""

    message: str
    missing: list[str] | None = None
    newer: Incident | None = None
