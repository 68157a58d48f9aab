"""`R`: the reports screen; `D`: the shift digest (SPEC §11).

Loaded when first opened, never at start-up (tests/test_architecture.py guards it).
The report is computed in a thread worker on its own connection (a report over many
incidents takes a moment; the dashboard keeps ticking): tables first, then charts drawn
with Textual's own Sparkline and block bars of plain characters, which read the same on
a monochrome projector and under NO_COLOR (met █, late ▓, breached ░).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Label, Markdown, Sparkline, Static

from sladeck.domain.clocks import CLOCK_KINDS, KIND_TITLE
from sladeck.domain.reports import GROUPINGS, Report, build_report, parse_when, stats
from sladeck.reports_out import duration, report_tables
from sladeck.text import one_line, visible

if TYPE_CHECKING:
    from sladeck.tui.app import SladeckApp

PRESETS = {"today": "Today", "7d": "Last 7 days", "30d": "Last 30 days"}
BAR_WIDTH = 30  # cells of the longest bar


def _store(app: SladeckApp) -> Any:
    """A connection of this worker's own (one Store per thread), on the file shown."""
    from sladeck.store import Store

    store = Store(app.db_path, migrate=False, expect=app.reader.identity)
    store.adopt(app.policy)
    return store


def preset_range(preset: str, now: datetime) -> tuple[datetime, datetime]:
    """[since, now) of a preset: since local midnight, or 7 or 30 days back."""
    if preset == "today":
        return parse_when("00:00", now, None), now
    return now - timedelta(days=int(preset[:-1])), now


def tables(report: Report) -> Group:
    parts: list[Any] = []
    for title, header, rows in report_tables(report):
        parts.append(Text(f"\n{title}", style="bold underline"))
        if not rows:
            parts.append(Text("none", style="dim"))
            continue
        table = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
        for n, h in enumerate(header):
            table.add_column(h, justify="left" if n == 0 or h in ("Clock", "To", "Trigger",
                                                                  "Level") else "right",
                             no_wrap=n == 0, overflow="ellipsis", max_width=24)
        for row in rows:
            table.add_row(*(Text(visible(one_line(c, 40))) for c in row))
        parts.append(table)
    return Group(*parts)


def bar(value: float, largest: float, char: str = "█") -> str:
    cells = 0 if largest <= 0 else round(value / largest * BAR_WIDTH)
    return char * (max(1, cells) if value > 0 else 0)


def time_bars(report: Report) -> Text:
    """Median TTA and TTR per group, as bars scaled to the longest of each."""
    out = Text()
    for metric, title in (("tta", "Median time to acknowledge"),
                          ("ttr", "Median time to resolve")):
        medians = [(g.name or "(none)", stats(getattr(g, metric)).median) for g in report.groups]
        largest = max((m for _, m in medians if m), default=0)
        out.append(f"\n{title} per {report.by}\n", style="bold underline")
        if not medians:
            out.append("none\n", style="dim")
        for name, m in medians:
            out.append(f"{visible(one_line(name, 10)):<10} ")
            out.append(bar(m or 0, largest), style="bold")
            out.append(f" {duration(m)}\n")
    return out


def compliance_bars(report: Report) -> Text:
    """Met █ / late ▓ / breached ░ cycles per clock kind, over every group."""
    out = Text()
    out.append("\nSLA cycles per clock: met █ late ▓ breached ░\n", style="bold underline")
    kinds = [k for k in CLOCK_KINDS if k in report.total.compliance]
    if not kinds:
        out.append("no clock history in this range\n", style="dim")
        return out
    largest = max(sum(report.total.compliance[k].get(o, 0) for o in ("met", "late", "breached"))
                  for k in kinds)
    for kind in kinds:
        c = report.total.compliance[kind]
        out.append(f"{KIND_TITLE[kind].split(' (')[0]:<19} ")
        for outcome, char, style in (("met", "█", "green"), ("late", "▓", "yellow"),
                                     ("breached", "░", "bold red")):
            out.append(bar(c.get(outcome, 0), largest, char), style=style)
        out.append(f" {c.get('met', 0)}/{c.get('late', 0)}/{c.get('breached', 0)}\n")
    return out


def daily_counts(report: Report) -> list[float]:
    """Incidents opened per day of the range (UTC days), zeros included."""
    found = dict(report.daily)
    day, last = report.since.date(), report.until.date()
    out = []
    while day <= last:
        out.append(float(found.get(day.isoformat(), 0)))
        day += timedelta(days=1)
    return out


class ReportsScreen(Screen[None]):
    """Report tables for a range preset and a grouping, then charts."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back", id="reports.back"),
        Binding("t", "preset('today')", "Today", id="reports.today"),
        Binding("w", "preset('7d')", "7 days", id="reports.week"),
        Binding("m", "preset('30d')", "30 days", id="reports.month"),
        Binding("g", "group", "Group by", id="reports.group"),
    ]

    def __init__(self, preset: str = "7d", by: str = "severity") -> None:
        super().__init__()
        self.preset, self.by = preset, by
        self.report: Report | None = None

    def compose(self) -> ComposeResult:
        yield Label("", id="reports-title")
        with VerticalScroll(id="reports-body"):
            yield Static("Computing the report…", id="reports-tables")
            yield Static("", id="reports-bars")
            yield Label("", id="reports-daily-title")
            yield Sparkline([], id="reports-daily")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#reports-body").focus()
        self.reload()

    def action_preset(self, preset: str) -> None:
        self.preset = preset
        self.reload()

    def action_group(self) -> None:
        self.by = GROUPINGS[(GROUPINGS.index(self.by) + 1) % len(GROUPINGS)]
        self.reload()

    def reload(self) -> None:
        self.query_one("#reports-title", Label).update(
            f"Reports · {PRESETS[self.preset]} · by {self.by}")
        self.compute(self.preset, self.by)

    @work(thread=True, exclusive=True, group="report", exit_on_error=False)
    def compute(self, preset: str, by: str) -> None:
        app: SladeckApp = self.app  # type: ignore[assignment]
        since, until = preset_range(preset, app.clock.now())
        store = _store(app)
        try:
            report = build_report(store, store, since, until, by, app.policy.levels)
        finally:
            store.close()
        app.call_from_thread(self.show, report)

    def show(self, report: Report) -> None:
        self.report = report
        self.query_one("#reports-tables", Static).update(tables(report))
        charts = Text.assemble(time_bars(report), compliance_bars(report))
        self.query_one("#reports-bars", Static).update(charts)
        daily = daily_counts(report)
        self.query_one("#reports-daily-title", Label).update(Text.assemble(
            ("\nIncidents opened per day", "bold underline"),
            f"  (max {int(max(daily, default=0))}, {report.since.date()} to "
            f"{report.until.date()})"))
        self.query_one("#reports-daily", Sparkline).data = daily


class DigestScreen(Screen[None]):
    """The shift digest (`sladeck digest`) as Markdown; `y` copies it."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back", id="digest.back"),
        Binding("y", "copy", "Copy", id="digest.copy"),
    ]
    text = ""

    def compose(self) -> ComposeResult:
        yield Label("Shift digest · since the last shift boundary", id="digest-title")
        with VerticalScroll(id="digest-body"):
            yield Markdown("Computing the digest…", id="digest")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#digest-body").focus()
        self.compute()

    @work(thread=True, exclusive=True, group="report", exit_on_error=False)
    def compute(self) -> None:
        from sladeck.domain.digest import build_digest
        from sladeck.domain.reports import shift_window
        from sladeck.reports_out import digest_markdown

        app: SladeckApp = self.app  # type: ignore[assignment]
        since, until, today = shift_window(app.policy, None, app.clock.now())
        store = _store(app)
        try:
            text = digest_markdown(build_digest(store, store, since, until,
                                                tuple(app.policy.severities), today))
        finally:
            store.close()
        app.call_from_thread(self.show, text)

    def show(self, text: str) -> None:
        self.text = text
        self.query_one("#digest", Markdown).update(text)

    def action_copy(self) -> None:
        if self.text:
            self.app.copy_to_clipboard(self.text)
            self.notify("Digest copied (where the terminal allows it)", markup=False)
