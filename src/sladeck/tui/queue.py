"""The queue: a Line-API widget that renders only the rows on screen.

Countdown text is computed as each line renders, from the row's cached
assessment and the injected clock, so the one-second repaint costs the same
with 50 or 10,000 open incidents. The risk word and the countdown come first on
the line: Textual rewrites a changed line from its left edge, so the cells that
change every second sit where rewriting them is cheapest.
"""

from __future__ import annotations

from datetime import datetime

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from sladeck.clock import Clock
from sladeck.domain.clocks import KIND_LABEL, format_countdown
from sladeck.domain.queue import Queue, Row
from sladeck.text import one_line

RISK_WORD = {"breached": "✖ BREACH", "due": "▲ DUE", "warning": "● WARN", "ok": "· ok"}
STATE_WORD = {"open": "open", "acknowledged": "ack", "resolved": "res", "closed": "clsd"}


def layout(width: int) -> dict[str, int]:
    """Column widths for a terminal width; optional columns appear as room allows."""
    cols = {"risk": 8, "next": 11, "ref": 8, "sev": 2, "lvl": 2, "state": 4}
    if width >= 100:
        cols["assignee"] = 10
    if width >= 120:
        cols["service"] = 14
    used = sum(cols.values()) + len(cols)  # one space after each
    cols["title"] = max(10, width - used)
    return cols


def header_text(width: int) -> str:
    cols = layout(width)
    names = {"risk": "RISK", "next": "NEXT", "ref": "ID", "sev": "SV", "lvl": "LV",
             "state": "STAT", "assignee": "ASSIGNEE", "service": "SERVICE", "title": "TITLE"}
    return " ".join(names[k].ljust(w)[:w] for k, w in cols.items())[:width]


def row_cells(row: Row, now: datetime, width: int) -> list[tuple[str, str]]:
    """(column, text) for one row at `now`; every piece of user text is sanitised."""
    cols = layout(width)
    i, a = row.incident, row.assessment
    nxt = "-"
    if a.nearest is not None:
        nxt = f"{KIND_LABEL[a.nearest.kind]} {format_countdown(a.nearest.due_at - now):>7}"
    values = {"risk": RISK_WORD[a.risk], "next": nxt, "ref": i.ref, "sev": i.severity,
              "lvl": i.level, "state": STATE_WORD.get(i.state, i.state),
              "assignee": one_line(i.assignee or "-"), "service": one_line(i.service or "-"),
              "title": one_line(i.title)}
    cells = []
    for key, w in cols.items():
        text = values[key]
        if len(text) > w:
            text = text[: max(0, w - 1)] + "…"
        cells.append((key, text.ljust(w)))
    return cells


class QueueHeader(Static):
    """The column names above the queue."""

    def on_resize(self, event: events.Resize) -> None:
        self.update(header_text(event.size.width))


class QueueView(ScrollView, can_focus=True):
    """Open incidents in queue order; the selection follows its incident as rows re-sort."""

    COMPONENT_CLASSES = {"queue--cursor", "queue--breached", "queue--due", "queue--warning",
                         "queue--ok", "queue--dim", "queue--empty"}
    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False, id="queue.up"),
        Binding("down,j", "cursor(1)", "Down", show=False, id="queue.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="queue.pageup"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="queue.pagedown"),
        Binding("home,g", "jump(0)", "First", show=False, id="queue.first"),
        Binding("end,G", "jump(-1)", "Last", show=False, id="queue.last"),
    ]

    cursor: reactive[int] = reactive(0, always_update=True, repaint=False)

    class Selected(Message):
        """The highlighted incident changed."""

        def __init__(self, incident_id: int | None) -> None:
            self.incident_id = incident_id
            super().__init__()

    def __init__(self, queue: Queue, clock: Clock, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.queue = queue
        self.clock = clock
        self.selected_id: int | None = None
        self.empty_text = "No open incidents. Press n to open one."

    @property
    def selected_row(self) -> Row | None:
        rows = self.queue.visible
        return rows[self.cursor] if 0 <= self.cursor < len(rows) else None

    def rows_changed(self) -> None:
        """Call after the queue's rows or order changed: keep the selected incident."""
        rows = self.queue.visible
        self.virtual_size = Size(self.size.width, len(rows))
        index = self.queue.index_of(self.selected_id)
        if index is None:
            index = min(self.cursor, len(rows) - 1) if rows else 0
        self.cursor = max(0, index)
        self.refresh()

    def watch_cursor(self, old: int, new: int) -> None:
        row = self.selected_row
        new_id = row.incident.id if row else None
        if new_id != self.selected_id:
            self.selected_id = new_id
            self.post_message(self.Selected(new_id))
        self.scroll_to_region_if_needed(new)
        self.refresh()

    def scroll_to_region_if_needed(self, index: int) -> None:
        top = self.scroll_offset.y
        height = self.scrollable_content_region.height or 1
        if index < top:
            self.scroll_to(y=index, animate=False)
        elif index >= top + height:
            self.scroll_to(y=index - height + 1, animate=False)

    def select_id(self, incident_id: int) -> None:
        index = self.queue.index_of(incident_id)
        if index is not None:
            self.cursor = index

    def action_cursor(self, delta: int) -> None:
        if self.queue.visible:
            self.cursor = max(0, min(len(self.queue.visible) - 1, self.cursor + delta))

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(1, self.scrollable_content_region.height - 1))

    def action_jump(self, where: int) -> None:
        if self.queue.visible:
            self.cursor = where % len(self.queue.visible)

    def on_click(self, event: events.Click) -> None:
        index = self.scroll_offset.y + event.y
        if 0 <= index < len(self.queue.visible):
            self.cursor = index

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, len(self.queue.visible))
        self.call_after_refresh(self.scroll_to_region_if_needed, self.cursor)  # keep it in view

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = self.scroll_offset.y + y
        rows = self.queue.visible
        if index >= len(rows):
            if index == 0:
                style = self.get_component_rich_style("queue--empty")
                return Strip([Segment(self.empty_text[:width].ljust(width), style)], width)
            return Strip.blank(width, self.rich_style)
        row = rows[index]
        risk_style = self.get_component_rich_style(f"queue--{row.assessment.risk}")
        base = self.rich_style
        if not row.incident.active:
            base = base + self.get_component_rich_style("queue--dim")
        segments = []
        for key, text in row_cells(row, self.clock.now(), width):
            style = base + risk_style if key in ("risk", "next") else base
            segments.append(Segment(text + " ", style))
        strip = Strip(segments).crop(0, width).extend_cell_length(width, base)
        if index == self.cursor:
            strip = strip.apply_style(self.get_component_rich_style("queue--cursor")
                                      if self.has_focus else Style(underline=True))
        return strip

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
