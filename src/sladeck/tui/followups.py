"""Follow-ups across incidents: open, overdue, mine or all; add one, mark one done,
open its incident.

The list is read from the store when the screen opens and again when the store
changes (`StoreChanged`); which rows a view shows is `domain.standup.follow_ups_shown`.
Adding and finishing go through the app's one action path (requests.py), like every
form. The screen loads when first opened: the queue's start never imports it.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Select, Static

from sladeck.domain.model import parse_ref
from sladeck.domain.standup import FOLLOW_UP_VIEWS, FollowUpEntry, follow_ups_shown
from sladeck.text import one_line, visible
from sladeck.tui.forms import ActionForm
from sladeck.tui.messages import ActionRequested, StoreChanged
from sladeck.tui.requests import FollowUpDoneRequest, FollowUpRequest, Request

if TYPE_CHECKING:
    from sladeck.domain.model import Incident
    from sladeck.policy import Policy
    from sladeck.tui.app import SladeckApp

VIEW_TITLES = {"open": "Open", "overdue": "Overdue", "mine": "Mine", "all": "All"}
KIND_FROM = 110  # the kind gets its own column from this width on


def columns(width: int) -> list[tuple[str, int]]:
    """(name, width) of each column for a table `width` cells wide (DataTable pads
    each column by a cell on both sides): the description takes what is left."""
    cols = [("#", 4), ("INCIDENT", 10), ("DUE", 12), ("OWNER", 10)]
    if width >= KIND_FROM:
        cols.append(("KIND", 19))
    used = sum(w + 2 for _, w in cols) + 2 + 1  # and the description's padding, a scrollbar
    return [*cols, ("DESCRIPTION", max(16, width - used))]


class FollowUpForm(ActionForm):
    """Add a follow-up to a resolved (or closed) incident: kind, description, owner and
    an optional due date."""

    heading = "Add a follow-up"

    def __init__(self, incident: Incident | None, policy: Policy | None, owner: str) -> None:
        super().__init__(incident, policy)
        self.owner = owner

    def fields(self) -> ComposeResult:
        assert self.policy is not None
        ref = self.incident.ref if self.incident is not None else ""
        yield from self.labelled("Incident", "A resolved or closed incident, e.g. INC-42",
                                 Input(ref, id="incident", name="incident", compact=True))
        yield from self.labelled(
            "Kind", "",
            Select([(Text(visible(k.label)), k.key) for k in self.policy.follow_up_kinds],
                   prompt="Choose a kind", id="kind", name="kind", compact=True))
        yield from self.labelled("Description", "What is to be done",
                                 Input(id="description", name="description", compact=True))
        safe = visible(self.owner) == self.owner  # an Input shows its text as it is
        yield from self.labelled("Owner", "Who does it",
                                 Input(self.owner if safe else "", id="owner", name="owner",
                                       compact=True))
        yield from self.labelled("Due date", "Optional: YYYY-MM-DD",
                                 Input(id="due", name="due", compact=True))

    def build(self) -> Request | None:
        values = {name: self.query_one(f"#{name}", Input).value.strip()
                  for name in ("incident", "description", "owner", "due")}
        kind = self.query_one("#kind", Select).value
        incident_id = parse_ref(values["incident"]) if values["incident"] else None
        missing = [name for name, blank in (("incident", incident_id is None),
                                            ("kind", not isinstance(kind, str)),
                                            ("description", not values["description"]),
                                            ("owner", not values["owner"])) if blank]
        if missing:
            self.show_refusal("a follow-up needs: " + ", ".join(missing), missing)
            return None
        assert incident_id is not None and isinstance(kind, str)
        return FollowUpRequest(incident_id, kind, values["description"], values["owner"],
                               values["due"] or None)


def entry_cells(entry: FollowUpEntry, today: date, widths: dict[str, int]) -> list[Text]:
    """One row, each cell cut to its column with an ellipsis; every piece of user text
    made visible; overdue and done said in words (overdue in reverse too), never by
    colour alone."""
    f = entry.follow_up
    if entry.done:
        due = Text("done")
    elif entry.overdue(today):
        due = Text(f"! {one_line(f.due, 10)}", style="bold reverse")
    else:
        due = Text(one_line(f.due, 12) if f.due else "-")
    cells = {"#": Text(str(f.id)), "INCIDENT": Text(entry.ref), "DUE": due,
             "OWNER": Text(one_line(f.owner, widths["OWNER"])),
             "KIND": Text(one_line(f.kind, widths.get("KIND", 0))),
             "DESCRIPTION": Text(one_line(f"{f.description} — {entry.title}",
                                          widths["DESCRIPTION"]))}
    return [cells[name] for name in widths]


class FollowUpsScreen(Screen[None]):
    """Follow-ups of every incident, in one list."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="followups.back"),
        Binding("1", "view('open')", "Open", id="followups.open"),
        Binding("2", "view('overdue')", "Overdue", id="followups.overdue"),
        Binding("3", "view('mine')", "Mine", id="followups.mine"),
        Binding("4", "view('all')", "All", id="followups.all"),
        Binding("a", "add", "Add", id="followups.add",
                tooltip="Add a follow-up to a resolved incident"),
        Binding("x", "done", "Done", id="followups.done", tooltip="Mark the follow-up done"),
        Binding("enter", "incident", "Incident", id="followups.incident",
                tooltip="Open the follow-up's incident"),
    ]

    def __init__(self, view: str = "open") -> None:
        super().__init__()
        self.view = view
        self.entries: list[FollowUpEntry] = []
        self.shown: list[FollowUpEntry] = []

    @property
    def sladeck(self) -> SladeckApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="followups-title")
        table: DataTable[Text] = DataTable(id="followups", cursor_type="row", zebra_stripes=False)
        yield table
        yield Static(id="followups-empty")
        yield Footer(compact=True)

    widths: dict[str, int] = {}

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()  # the rows load as the screen shows

    def on_resize(self) -> None:
        if self.entries or self.widths:
            self.show()

    def today(self) -> date:
        return self.sladeck.clock.now().astimezone().date()

    def load(self) -> None:
        """Read every follow-up (done ones too: the `all` view) and show the view's."""
        self.entries = self.sladeck.reader.follow_up_entries(include_done=True)
        self.show()

    def show(self) -> None:
        app = self.sladeck
        me = (app.actor.account, app.actor.name or "")
        today = self.today()
        self.shown = follow_ups_shown(self.entries, self.view, me, today)
        table = self.query_one(DataTable)
        selected = self.selected
        widths = dict(columns(self.size.width or 80))
        if widths != self.widths:  # the columns fit the width
            self.widths = widths
            table.clear(columns=True)
            for name, width in widths.items():
                table.add_column(name, width=width, key=name)
        table.clear()
        for entry in self.shown:
            table.add_row(*entry_cells(entry, today, widths), key=str(entry.follow_up.id))
        if selected is not None:
            for index, entry in enumerate(self.shown):
                if entry.follow_up.id == selected.follow_up.id:
                    table.move_cursor(row=index)
        title = Text(" Follow-ups ", style="bold reverse")
        for view in FOLLOW_UP_VIEWS:
            count = len(follow_ups_shown(self.entries, view, me, today))
            key = FOLLOW_UP_VIEWS.index(view) + 1
            label = f" {key} {VIEW_TITLES[view]} {count} "
            title.append(" ")
            title.append(label, style="bold reverse" if view == self.view else "")
        self.query_one("#followups-title", Static).update(title)
        empty = self.query_one("#followups-empty", Static)
        empty.display = not self.shown
        empty.update(Text({"open": "No open follow-ups.", "overdue": "Nothing overdue.",
                           "mine": "No open follow-ups of yours.",
                           "all": "No follow-ups yet."}[self.view]
                          + " Press a to add one to a resolved incident."))

    @property
    def selected(self) -> FollowUpEntry | None:
        if not self.is_mounted or not self.shown:
            return None
        row = self.query_one(DataTable).cursor_row
        return self.shown[row] if 0 <= row < len(self.shown) else None

    def action_view(self, view: str) -> None:
        if view in FOLLOW_UP_VIEWS:
            self.view = view
            self.show()

    def action_add(self) -> None:
        entry = self.selected
        app = self.sladeck
        incident = app.reader.incident(entry.follow_up.incident_id) if entry else None
        policy = app.reader.policy(incident.policy_id) if incident else app.policy
        self.app.push_screen(FollowUpForm(incident, policy, app.me_name))

    def action_done(self) -> None:
        entry = self.selected
        if entry is None:
            self.notify("Select a follow-up first", severity="warning")
        elif entry.done:
            self.notify(f"follow-up {entry.follow_up.id} is already done", severity="warning")
        else:
            self.post_message(ActionRequested(FollowUpDoneRequest(entry.follow_up.id)))

    def action_incident(self) -> None:
        entry = self.selected
        if entry is None:
            return
        app = self.sladeck
        detail = app.reader.detail(entry.follow_up.incident_id)
        if detail is not None:
            from sladeck.tui.detail import DetailScreen

            app.push_screen(DetailScreen(detail, app.reader.policy(detail.incident.policy_id)))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_incident()

    def on_store_changed(self, event: StoreChanged) -> None:
        """A follow-up was added or finished, here or in another process: read again."""
        self.load()

    def on_screen_resume(self, event: Any) -> None:
        """Shown (first, or back from a form or an incident): read what is there now."""
        self.load()
