"""`sladeck board`: the dashboard for the stand-up screen, read-only.

The queue and its live updates are the dashboard's own (`SladeckApp`, live.py); the
board adds large risk counts (Textual's `Digits`, worst first and the worst the most
visible: a block, then a heavy border) and the last 24 hours beside the queue (below
it on a narrow terminal), counted from the timeline through the store's port. It
never writes: every action key says so in one line, no form or writer opens, and it
records no notice (the dashboard or `sladeck watch` does).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Digits, Footer, Static

from sladeck.domain.clocks import RISKS
from sladeck.domain.standup import ACTIVITY_KINDS, activity_summary, since_day
from sladeck.tui.app import QueueScreen, SladeckApp
from sladeck.tui.keys import ACTIONS
from sladeck.tui.queue import QueueHeader, QueueView
from sladeck.tui.summary import SummaryLine

if TYPE_CHECKING:
    from collections.abc import Mapping

    from textual.actions import ActionParseResult
    from textual.dom import DOMNode
    from textual.screen import Screen

READ_ONLY = "board is read-only: open `sladeck` to act"
# What the board still does: look (filters are views, not changes).
VIEW_ACTIONS = frozenset({"search", "filter", "mine"})
RISK_TITLES = {"breached": "✖ BREACHED", "due": "▲ DUE", "warning": "● WARNING", "ok": "· OK"}
DAY_EVERY = timedelta(minutes=1)  # the 24-hour window slides: counted again this often
SHORT = {"acknowledged": "acked", "escalated": "escalated"}  # one line on a narrow board


class RiskCount(Vertical):
    """One risk's count in large digits under its name; `-active` when not 0."""

    def __init__(self, risk: str) -> None:
        super().__init__(id=f"risk-{risk}", classes=f"risk-count -{risk}")
        self.risk = risk
        self.count = 0

    def compose(self) -> ComposeResult:
        yield Static(RISK_TITLES[self.risk], classes="risk-title")
        yield Digits(str(self.count))

    def show(self, count: int) -> None:
        self.count = count
        self.set_class(count > 0, "-active")
        found = self.query(Digits)  # none yet before the first compose: it shows `count`
        if found and found.first().value != str(count):
            found.first(Digits).update(str(count))


def day_text(counts: Mapping[str, int], *, wide: bool, width: int = 80) -> Text:
    """The last 24 hours: a column on a wide board, one line (wrapping at words) on a
    narrow one."""
    text = Text()
    rows = activity_summary(counts)
    if wide:
        text.append("Last 24 hours\n", style="bold")
        width = max(len(name) for name, _ in rows)
        for name, count in rows:
            text.append(f"\n{name:<{width}} ")
            text.append(f"{count:>4}", style="bold")
        return text
    # Packed by hand: a wrapped line never parts a count from its word.
    column = len("24 h:")
    text.append("24 h:", style="bold")
    for n, (name, count) in enumerate(rows):
        part = f"{count} {SHORT.get(name, name)}"
        gap = " · " if n else " "
        if column + len(gap) + len(part) > width:
            text.append("\n")
            gap, column = "", 0
        text.append(gap)
        text.append(str(count), style="bold")
        text.append(part[len(str(count)):])
        column += len(gap) + len(part)
    return text


class DaySummary(Static):
    """The last 24 hours' counts: opened, acknowledged, escalated, breached, resolved,
    closed (incidents with such an event since now − 24 h)."""

    counts: Mapping[str, int] = {}

    def show(self, counts: Mapping[str, int]) -> None:
        self.counts = counts
        self.update(day_text(counts, wide=self.screen.has_class("-wide"),
                             width=self.size.width or 80))

    def on_resize(self) -> None:
        self.show(self.counts)


def _read_only_bindings() -> list[Binding]:
    """Every action key of the dashboard, saying the board is read-only."""
    return [Binding(a.key, "app.read_only", a.label, show=False, id=f"board.{a.id}")
            for a in ACTIONS.values() if a.name not in VIEW_ACTIONS]


class BoardScreen(QueueScreen, inherit_bindings=False):
    """Risk counts, the queue and the last 24 hours; no action keys."""

    BINDINGS = [
        *_read_only_bindings(),
        Binding("slash", "app.search", "Filter", id="board.search"),
        Binding("f", "app.filter", "Filters", show=False, id="board.filter"),
        Binding("m", "app.mine", "Mine", show=False, id="board.mine"),
        Binding("escape", "app.clear_search", "Clear filter", show=False, id="board.clear"),
    ]

    def compose(self) -> ComposeResult:
        app: SladeckApp = self.app  # type: ignore[assignment]
        yield SummaryLine(id="summary")
        with Horizontal(id="board-risks"):
            for risk in RISKS:
                yield RiskCount(risk)
        with Horizontal(id="board-main"):
            with Vertical(id="board-queue"):
                yield QueueHeader(id="queue-header")
                yield QueueView(app.queue, app.clock, id="queue")
            yield DaySummary(id="board-day")
        yield Footer(compact=True)

    def on_resize(self) -> None:
        super().on_resize()
        self.query_one(DaySummary).show(self.query_one(DaySummary).counts)


class BoardApp(SladeckApp):
    """The dashboard, read-only, with the board's screen."""

    TITLE = "sladeck board"
    CSS_PATH = [SladeckApp.CSS_PATH, Path(__file__).with_name("board.tcss")]
    _day_at: datetime | None = None  # when the last 24 hours were last counted
    _risk_counts: tuple[int, ...] = ()

    def get_default_screen(self) -> Screen[Any]:
        return BoardScreen()

    # -- read-only ---------------------------------------------------------------------

    def action_read_only(self) -> None:
        self.notify(READ_ONLY, severity="warning", markup=False)

    async def run_action(self, action: str | ActionParseResult,
                         default_namespace: DOMNode | None = None,
                         namespaces: Mapping[str, DOMNode] | None = None) -> bool:
        """Any action of the registry but a view's (from a key, a click or anywhere
        else) says the board is read-only, and does nothing."""
        if isinstance(action, str) and action.startswith("app.") \
                and action[4:] in ACTIONS and action[4:] not in VIEW_ACTIONS:
            self.action_read_only()
            return True
        return await super().run_action(action, default_namespace, namespaces)

    def _applies(self, action: str, screen: Screen[Any]) -> bool | None:
        """No action of the registry applies but a view's: never offered by the palette,
        never shown in the footer."""
        entry = ACTIONS.get(action)
        if entry is not None and action not in VIEW_ACTIONS:
            return False
        return super()._applies(action, screen)

    def record_notices(self, incident_ids: list[int]) -> None:  # type: ignore[override]
        """The board writes nothing: a notice is recorded by a dashboard that can act, or
        by `sladeck watch`."""

    # -- what it adds to the dashboard -------------------------------------------------

    def _update_summary(self, now: datetime, out: list[str] | None = None) -> None:
        super()._update_summary(now, out)
        counts = tuple(self.queue.by_risk.get(risk, 0) for risk in RISKS)
        if counts != self._risk_counts and self.screen_stack \
                and isinstance(self.screen_stack[0], BoardScreen):
            shown = self.screen_stack[0].query(RiskCount)
            if shown:  # (not before the screen's first compose, which calls again)
                self._risk_counts = counts
                for widget in shown:
                    widget.show(counts[RISKS.index(widget.risk)])
        if self._day_at is None or now - self._day_at >= DAY_EVERY:
            self.count_day(now)

    def _refresh(self, force: bool) -> None:
        seq = self.seq
        super()._refresh(force)
        if self.seq != seq:  # something happened: count the day again
            self.count_day(self.clock.now())

    def count_day(self, now: datetime) -> None:
        """Count the last 24 hours' events (a read of the events' time index)."""
        if self.closing or not self.screen_stack \
                or not isinstance(self.screen_stack[0], BoardScreen):
            return
        found = self.screen_stack[0].query("#board-day")
        if not found:
            return
        self._day_at = now
        counts = self.reader.activity(since_day(now), now + timedelta(microseconds=1),
                                      ACTIVITY_KINDS)
        found.first(DaySummary).show(counts)
