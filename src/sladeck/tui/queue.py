"""The queue: a Line-API widget that renders only the rows on screen.

Countdown text is computed as each line renders, from the row's cached
headline deadline and the injected clock. Each line remembers what it last drew,
so the one-second tick compares the lines on screen with what they would show now
and refreshes only the cells that changed (usually the countdown's last digit):
its cost depends on the screen's height, never on the number of open incidents.
The risk word and the countdown come first on the line: Textual rewrites a
changed line from the start of the first changed segment, so the cells that
change every second sit where rewriting them is cheapest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from sladeck.clock import Clock
from sladeck.domain.clocks import KIND_LABEL, format_countdown
from sladeck.domain.lean_queue import LeanQueue
from sladeck.domain.model import format_ref
from sladeck.domain.queue import Filter, Queue, Row
from sladeck.text import one_line
from sladeck.tui.compat import write_cells

RISK_WORD = {"breached": "✖ BREACH", "due": "▲ DUE", "warning": "● WARN", "ok": "· ok"}
STATE_WORD = {"open": "open", "acknowledged": "ack", "resolved": "res", "closed": "clsd"}
REF_WIDTH = 8  # INC-9999; wider when a larger id is in the queue


def ref_width(max_id: int) -> int:
    """The ID column fits the largest id, so INC-104213 never shows as INC-104…."""
    return max(REF_WIDTH, len(format_ref(max_id)))


@lru_cache(maxsize=64)
def _layout(width: int, ref: int) -> tuple[tuple[str, int], ...]:
    cols = {"risk": 8, "next": 11, "ref": ref, "sev": 2, "lvl": 2, "state": 4}
    if width >= 100:
        cols["assignee"] = 10
    if width >= 120:
        cols["service"] = 14
    used = sum(cols.values()) + len(cols)  # one space after each
    cols["title"] = max(10, width - used)
    return tuple(cols.items())


def layout(width: int, ref: int = REF_WIDTH) -> dict[str, int]:
    """Column widths for a terminal width; optional columns appear as room allows."""
    return dict(_layout(width, ref))


def header_text(width: int, ref: int = REF_WIDTH) -> str:
    names = {"risk": "RISK", "next": "NEXT", "ref": "ID", "sev": "SV", "lvl": "LV",
             "state": "STAT", "assignee": "ASSIGNEE", "service": "SERVICE", "title": "TITLE"}
    return " ".join(names[k].ljust(w)[:w] for k, w in _layout(width, ref))[:width]


def row_cells(row: Row, now: datetime, width: int, ref: int = REF_WIDTH
              ) -> list[tuple[str, str]]:
    """(column, text) for one row at `now`; every piece of user text is sanitised."""
    return head_cells(row, now) + tail_cells(row, width, ref)


def head_cells(row: Row, now: datetime) -> list[tuple[str, str]]:
    """The risk word and the countdown: the cells that change as time passes."""
    kind = row.kind
    nxt = "-" if kind is None or row.due_at is None else \
        f"{KIND_LABEL[kind]} {format_countdown(row.due_at - now):>7}"
    return [("risk", _fit(RISK_WORD[row.risk], 8)), ("next", _fit(nxt, 11))]


def _fit(text: str, w: int) -> str:
    if len(text) > w:
        text = text[: max(0, w - 1)] + "…"
    return text.ljust(w)


_RISK_FIT = {risk: _fit(word, 8) for risk, word in RISK_WORD.items()}
_NO_COUNTDOWN = _fit("-", 11)
# The risk and countdown cells with their spaces: the prefix of every queue line. Its
# text is one cell a character (the countdown is ASCII), so a line can be built from
# it and the row's kept tail without measuring anything.
HEAD_CELLS = 8 + 1 + 11 + 1
_HEAD_IS_NARROW = all(cell_len(t) == len(t) for t in _RISK_FIT.values())


def head_text(row: Row, now: datetime) -> str:
    """`" ".join` of `head_cells(row, now)`'s texts, without building the list."""
    if row.kind is None or row.due_at is None:
        return f"{_RISK_FIT[row.risk]} {_NO_COUNTDOWN}"
    nxt = f"{KIND_LABEL[row.kind]} {format_countdown(row.due_at - now):>7}"
    return f"{_RISK_FIT[row.risk]} {nxt if len(nxt) <= 11 else _fit(nxt, 11):<11}"


def tail_cells(row: Row, width: int, ref: int = REF_WIDTH) -> list[tuple[str, str]]:
    """Every other cell: they change only when the incident does."""
    i = row.incident
    cells = []
    for key, w in _layout(width, ref)[2:]:
        if key == "ref":
            text = i.ref
        elif key == "sev":  # policy keys, shown like user text (an old policy may hold any)
            text = one_line(i.severity)
        elif key == "lvl":
            text = one_line(i.level)
        elif key == "state":
            text = STATE_WORD.get(i.state, i.state)
        elif key == "assignee":
            text = one_line(i.assignee or "-")
        elif key == "service":
            text = one_line(i.service or "-")
        elif i.source_cleared_at:  # the alert ended; the row waits for a person to resolve
            text = "source cleared · " + one_line(i.title)
        else:
            text = one_line(i.title)
        cells.append((key, _fit(text, w)))
    return cells


def changed_span(old: str, new: str, narrow: bool = False) -> tuple[int, int] | None:
    """The cells [start, end) in which two lines of text differ; None if equal.
    `narrow`: every character of both is one cell wide (a queue line's head)."""
    if old == new:
        return None
    limit = min(len(old), len(new))
    start = 0
    while start < limit and old[start] == new[start]:
        start += 1
    end_old, end_new = len(old), len(new)
    # A common end stays in place only if both lines are equally wide (a clock whose zone
    # turns from `CET +01:00` to `CEST +02:00` moves its last `:00` a cell to the right).
    if (len(old) == len(new)) if narrow else (cell_len(old) == cell_len(new)):
        while end_old > start and end_new > start and old[end_old - 1] == new[end_new - 1]:
            end_old, end_new = end_old - 1, end_new - 1
    if narrow:
        return start, max(end_new, end_old, start + 1)
    x0 = cell_len(new[:start])
    x1 = max(cell_len(new[:end_new]), cell_len(old[:end_old]))
    return x0, max(x1, x0 + 1)


class QueueHeader(Static):
    """The column names above the queue."""

    ref = REF_WIDTH

    def show(self, width: int, ref: int) -> None:
        self.ref = ref
        self.update(header_text(width, ref), layout=False)

    def on_resize(self, event: events.Resize) -> None:
        self.show(event.size.width, self.ref)


_EMPTY = Segment("")


@dataclass(slots=True)
class _Tail:
    """A row's cells after the countdown, for one width and ID column."""

    row: Row
    key: tuple[int, int]  # (width, ID column)
    text: str  # the cells' texts joined by spaces, as `tail_cells` gives them
    style: Style | None = None  # the style `segment` was made in
    segment: Segment = _EMPTY  # the text cut to the line after the head, padded


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

    def __init__(self, queue: Queue | LeanQueue, clock: Clock, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.queue = queue
        self.clock = clock
        self.selected_id: int | None = None
        self.ref = ref_width(queue.max_id)
        # What each screen line last drew: its signature (row id, cursor, focus, dim,
        # risk, width, ID column), the row, the head text and the tail text.
        self._drawn: dict[int, tuple[tuple[object, ...], Row | None, str, str]] = {}
        # The instant the lines show (the last tick's): every line shows the same one.
        self.now: datetime | None = None
        self._heads: dict[int, tuple[Row, str]] = {}  # y → the head text at `now`
        self._styles: dict[object, Style] = {}
        self._tails: dict[int, _Tail] = {}  # incident id → its kept tail

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()

    def _style(self, risk: str | None, active: bool, cursor: bool = False) -> Style:
        """The base (and risk) style of a line; kept until the CSS or the focus change."""
        key = (risk, active, cursor and self.has_focus, cursor)
        style = self._styles.get(key)
        if style is None:
            style = self.rich_style
            if not active:
                style = style + self.get_component_rich_style("queue--dim")
            if risk is not None:
                style = style + self.get_component_rich_style(f"queue--{risk}")
            if cursor:
                style = self.get_component_rich_style("queue--cursor") if self.has_focus \
                    else Style(underline=True)
            self._styles[key] = style
        return style

    def _set_now(self, now: datetime) -> None:
        if now != self.now:
            self.now = now
            self._heads.clear()

    def _head(self, y: int, row: Row) -> str:
        """Line `y`'s risk word and countdown at `now`, computed once a tick."""
        found = self._heads.get(y)
        if found is not None and found[0] is row:
            return found[1]
        head = head_text(row, self.now or self.clock.now())
        self._heads[y] = (row, head)
        return head

    def _tail(self, row: Row, width: int) -> _Tail:
        """Every cell after the countdown: sanitised user text, kept per row until the
        row, the width or the ID column change."""
        tail = self._tails.get(row.incident.id)
        if tail is None or tail.row is not row or tail.key != (width, self.ref):
            if len(self._tails) > 8 * max(1, self.size.height):
                self._tails.clear()
            text = " ".join(t for _, t in tail_cells(row, width, self.ref))
            tail = self._tails[row.incident.id] = _Tail(row, (width, self.ref), text)
        return tail

    @property
    def selected_row(self) -> Row | None:
        rows = self.queue.visible
        return rows[self.cursor] if 0 <= self.cursor < len(rows) else None

    def rows_changed(self, out: list[str] | None = None) -> None:
        """Call after the queue's rows or order changed: keep the selected incident.

        `out`: see `refresh_changed`."""
        rows = self.queue.visible
        if self.virtual_size.height != len(rows) or self.virtual_size.width != self.size.width:
            self.virtual_size = Size(self.size.width, len(rows))
        index = self.queue.index_of(self.selected_id)
        if index is None:
            index = min(self.cursor, len(rows) - 1) if rows else 0
        ref = ref_width(self.queue.max_id)
        if ref != self.ref:  # a wider ID column moves every column after it
            self.ref = ref
            header = self.screen.query("#queue-header") if self.is_attached else None
            if header:
                header.first(QueueHeader).show(self.size.width, ref)
            self.refresh()
        if max(0, index) != self.cursor:
            self.cursor = max(0, index)  # repaints
        else:
            self.refresh_changed(out=out)

    def refresh_changed(self, now: datetime | None = None, out: list[str] | None = None
                        ) -> int:
        """Refresh only the cells on screen whose text changed; the number of regions.

        A line showing the same row as it drew compares only its head (risk word and
        countdown): the rest of the line is the row's kept tail, unchanged. When only
        such cells changed they are written straight to the terminal where that is
        safe (`compat.write_cells`; appended to `out` for one write with the summary's
        clock), else refreshed through Textual.
        """
        self._set_now(now or self.clock.now())
        drawn_lines = self._drawn
        if not drawn_lines:
            return 0  # nothing drawn yet: the first paint draws everything
        content = self.scrollable_content_region
        width = content.width
        top = self.scroll_offset.y
        rows = self.queue.visible
        cursor, focus, ref = self.cursor, self.has_focus, self.ref
        regions = []
        spans: list[tuple[int, int, int]] = []  # (y, x1, x2): cells of a line it drew
        for y in range(content.height):
            index = top + y
            drawn = drawn_lines.get(y)
            if index >= len(rows):
                if drawn is None or drawn[0] != (None, index == 0 and self.empty_text, width):
                    regions.append(Region(0, y, width, 1))
                continue
            row = rows[index]
            incident = row.incident
            sig = (incident.id, index == cursor, focus, incident.active, row.risk, width, ref)
            if drawn is None or drawn[0] != sig:
                regions.append(Region(0, y, width, 1))
                continue
            head = self._head(y, row)
            if drawn[1] is row:
                span = changed_span(drawn[2], head, _HEAD_IS_NARROW)
            else:  # the incident changed: its tail may have too
                span = changed_span(f"{drawn[2]} {drawn[3]}",
                                    f"{head} {self._tail(row, width).text}")
            if span is not None:
                spans.append((y, span[0], min(width, span[1])))
        if spans and not regions and write_cells(
                self, spans, lambda y: self._line(y, width, top, cursor, focus), out):
            return len(spans)
        regions += [Region(x1, y, x2 - x1, 1) for y, x1, x2 in spans]
        if regions:
            self.refresh(*regions)
        return len(regions)

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
        self._drawn.clear()
        self._heads.clear()
        self.call_after_refresh(self.scroll_to_region_if_needed, self.cursor)  # keep it in view

    @property
    def empty_text(self) -> str:
        """What an empty queue says: nothing open, or nothing matching the filter."""
        if self.queue.filter != Filter():
            open_ = sum(self.queue.by_severity.values())
            return f"No incidents match the filter ({open_} open). Press esc to clear it."
        return "No open incidents. Press n to open one."

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        return Strip(self._line(y, width, self.scroll_offset.y, self.cursor, self.has_focus),
                     width)

    def _line(self, y: int, width: int, top: int, cursor_index: int, focus: bool
              ) -> list[Segment]:
        """Line `y`'s segments, `width` cells, with the queue scrolled to `top`."""
        index = top + y
        rows = self.queue.visible
        if index >= len(rows):
            self._drawn[y] = ((None, index == 0 and self.empty_text, width), None, "", "")
            if index == 0:
                style = self.get_component_rich_style("queue--empty")
                return [Segment(self.empty_text[:width].ljust(width), style)]
            return [Segment(" " * width, self.rich_style)]
        row = rows[index]
        incident = row.incident
        active = incident.active
        base, risky = self._style(None, active), self._style(row.risk, active)
        if self.now is None:
            self._set_now(self.clock.now())
        head = self._head(y, row)
        tail = self._tail(row, width)
        if _HEAD_IS_NARROW and width >= HEAD_CELLS:
            # One segment for the head, one for the tail (cut to the line once per row).
            if tail.style is not base:
                rest = Strip([Segment(tail.text + " ", base)]).crop(0, width - HEAD_CELLS) \
                    .extend_cell_length(width - HEAD_CELLS, base)
                tail.style, tail.segment = base, Segment(rest.text, base)
            segments = [Segment(head + " ", risky), tail.segment] if tail.segment.text \
                else [Segment(head + " ", risky)]
        else:  # a line narrower than its head: cut it as a whole
            segments = list(Strip([Segment(head + " ", risky), Segment(tail.text + " ", base)])
                            .crop(0, width).extend_cell_length(width, base))
        cursor = index == cursor_index
        if cursor:
            segments = list(Segment.apply_style(segments, self._style(None, True, cursor=True)))
        self._drawn[y] = ((incident.id, cursor, focus, active, row.risk, width, self.ref),
                          row, head, tail.text)
        return segments

    def on_focus(self) -> None:
        self._styles.clear()
        self.refresh()

    def on_blur(self) -> None:
        self._styles.clear()
        self.refresh()
