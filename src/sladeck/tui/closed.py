"""Resolved and closed incidents, loaded on demand, newest first; reopen one with a reason.

Closed incidents never enter the queue's memory (the queue's start reads open and
resolved ones only): this screen reads them a page at a time when it opens
(`Storage.finished_incidents`), and again when the store changes. It loads when
first opened: the queue's start never imports it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from sladeck.domain.model import CLOSED, RESOLVED, Incident, zone_label
from sladeck.text import one_line
from sladeck.tui.forms import ActionForm
from sladeck.tui.messages import StoreChanged
from sladeck.tui.requests import ReopenRequest, Request

if TYPE_CHECKING:
    from sladeck.tui.app import SladeckApp

PAGE = 200  # rows read at a time
FINISHED = (RESOLVED, CLOSED)


class ReopenForm(ActionForm):
    """Reopen a resolved or closed incident at its level: why it is not over."""

    heading = "Reopen"

    def fields(self) -> ComposeResult:
        yield from self.labelled("Reason", "Why it is not over (recorded on the timeline)",
                                 Input(id="reason", name="reason", compact=True))

    def build(self) -> Request | None:
        assert self.incident is not None
        reason = self.query_one("#reason", Input).value
        if not reason.strip():
            self.show_refusal("reopening needs a reason", ["reason"])
            return None
        return ReopenRequest(self.incident.id, reason, expected_version=self.expected_version)


def when(at: datetime | None) -> str:
    """`2026-11-25 19:00 UTC`: a date, since these may be weeks old; the viewer's zone."""
    if at is None:
        return "-"
    shown = at.astimezone()
    return shown.strftime("%Y-%m-%d %H:%M ") + zone_label(shown)


def incident_cells(incident: Incident) -> list[Text]:
    """One row; user text made visible."""
    return [Text(incident.ref), Text(one_line(incident.severity)), Text(one_line(incident.level)),
            Text(incident.state), Text(when(incident.closed_at or incident.resolved_at)),
            Text(one_line(incident.title, 200))]


class ClosedScreen(Screen[None]):
    """Resolved and closed incidents, newest first, a page at a time."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="closed.back"),
        Binding("o", "reopen", "Reopen", id="closed.reopen",
                tooltip="Reopen the selected incident, with a reason"),
        Binding("enter", "details", "Details", id="closed.details"),
        Binding("m", "more", "More", id="closed.more", tooltip="Read the next page"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.incidents: list[Incident] = []
        self.complete = False  # every finished incident is read

    @property
    def sladeck(self) -> SladeckApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="closed-title")
        yield DataTable(id="closed", cursor_type="row", zebra_stripes=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for name, width in (("ID", 10), ("SV", 3), ("LV", 3), ("STATE", 9),
                            ("RESOLVED/CLOSED", 26), ("TITLE", None)):
            table.add_column(name, width=width, key=name)
        table.focus()  # the rows load as the screen shows (`on_screen_resume`)

    def load(self, count: int) -> None:
        """Read the newest `count` finished incidents afresh (the selection stays)."""
        selected = self.selected
        self.incidents = self.sladeck.reader.finished_incidents(FINISHED, limit=count)
        self.complete = len(self.incidents) < count
        self._show(selected.id if selected else None)

    def action_more(self) -> None:
        if self.complete:
            self.notify("Every resolved and closed incident is shown", markup=False)
            return
        before = self.incidents[-1].id if self.incidents else None
        more = self.sladeck.reader.finished_incidents(FINISHED, limit=PAGE, before_id=before)
        self.complete = len(more) < PAGE
        self.incidents += more
        self._show(self.selected.id if self.selected else None)

    def _show(self, selected_id: int | None) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for incident in self.incidents:
            table.add_row(*incident_cells(incident), key=str(incident.id))
        for index, incident in enumerate(self.incidents):
            if incident.id == selected_id:
                table.move_cursor(row=index)
        title = Text(" Resolved and closed ", style="bold reverse")
        title.append(f" {len(self.incidents)} shown, newest first"
                     + ("" if self.complete else " · m reads more")
                     + " · o reopens the selected one")
        self.query_one("#closed-title", Static).update(title)

    @property
    def selected(self) -> Incident | None:
        if not self.is_mounted or not self.incidents:
            return None
        row = self.query_one(DataTable).cursor_row
        return self.incidents[row] if 0 <= row < len(self.incidents) else None

    def action_reopen(self) -> None:
        shown = self.selected
        if shown is None:
            self.notify("Select an incident first", severity="warning")
            return
        app = self.sladeck
        incident = app.reader.incident(shown.id)
        if incident is None:
            return
        form = ReopenForm(incident, app.reader.policy(incident.policy_id))
        form.expected_version = shown.version  # acting on what was seen
        app.push_screen(form)

    def action_details(self) -> None:
        shown = self.selected
        if shown is None:
            return
        app = self.sladeck
        detail = app.reader.detail(shown.id)
        if detail is not None:
            from sladeck.tui.detail import DetailScreen

            app.push_screen(DetailScreen(detail, app.reader.policy(detail.incident.policy_id)))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_details()

    def on_store_changed(self, event: StoreChanged) -> None:
        self.load(max(PAGE, len(self.incidents)))

    def on_screen_resume(self, event: Any) -> None:
        """Shown (first, or back from a form or an incident): read what is there now."""
        self.load(max(PAGE, len(self.incidents)))
