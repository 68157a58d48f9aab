"""The summary line at the top of the queue: counts by severity and risk, the filter, the clock.

`summary_text` is a pure function of the queue, the policy, the time and the width;
`SummaryLine` shows it, repainting only the cells that changed (mostly the clock).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import Static

from sladeck.domain.lean_queue import LeanQueue
from sladeck.domain.model import zone_label
from sladeck.domain.queue import Queue
from sladeck.policy import Policy
from sladeck.text import visible
from sladeck.tui import compat
from sladeck.tui.compat import write_cells
from sladeck.tui.queue import changed_span

# The risk counts' styles when no widget gives its own (`SummaryLine.risk_styles`).
RISK_STYLES: dict[str, Style | str] = {"breached": "bold reverse", "due": "bold"}


def summary_text(queue: Queue | LeanQueue, policy: Policy, now: datetime, width: int,
                 styles: Mapping[str, Style | str] | None = None) -> Text:
    """The top line; what matters most survives a narrow terminal (counts go first).
    `styles`: the breached and due counts' styles (the worst the most visible), used
    only when the count is not 0."""
    full, short = _summary_heads(queue, policy, styles or RISK_STYLES)
    local = now.astimezone()
    zoned = local.strftime("%H:%M:%S ") + zone_label(local)  # `UTC-14:00`, never a false name
    clock = zoned
    head, head_cells = full
    if head_cells + 3 + cell_len(zoned) > width:
        head, head_cells = short
        if head_cells + 3 + cell_len(zoned) > width:
            clock = local.strftime("%H:%M:%S")
    text = head.copy()
    text.append(f" │ {clock}")
    return text


_SUMMARY_HEADS: dict[tuple[object, ...], tuple[tuple[Text, int], tuple[Text, int]]] = {}


def _summary_heads(queue: Queue | LeanQueue, policy: Policy, styles: Mapping[str, Style | str]
                   ) -> tuple[tuple[Text, int], tuple[Text, int]]:
    """The top line before its clock, with and without the counts by severity, and
    their widths; kept until the counts or the filter change (the clock ticks alone)."""
    by_severity, by_risk = queue.summary()
    shown = queue.filter.describe()
    key = (tuple(policy.severities), tuple(by_severity.items()), tuple(by_risk.items()),
           shown, len(queue.visible) if shown else 0, tuple(styles.items()))
    heads = _SUMMARY_HEADS.get(key)
    if heads is None:
        total = sum(by_severity.values())
        made = []
        for full_counts in (True, False):
            text = Text()
            text.append(" sladeck ", style="reverse bold")
            text.append(f" {total} open")
            if full_counts:
                text.append(" " + " ".join(f"{visible(k)}:{by_severity.get(k, 0)}"
                                           for k in policy.severities))
            text.append(" │ ")
            for risk, mark, gap in (("breached", "✖", " "), ("due", "▲", "")):
                count = by_risk.get(risk, 0)
                text.append(f"{mark}{count} {risk}", style=styles.get(risk, "") if count else "")
                text.append(gap)
            text.append(f" ●{by_risk.get('warning', 0)} warn")
            if shown:
                text.append(f" │ {visible(shown)}: {len(queue.visible)} shown", style="bold")
            made.append((text, text.cell_len))
        if len(_SUMMARY_HEADS) >= 16:
            _SUMMARY_HEADS.clear()
        heads = _SUMMARY_HEADS[key] = (made[0], made[1])
    return heads


class SummaryLine(Static):
    """The top line; a new text repaints only the cells that changed (mostly the clock).

    The line is drawn here, not through Static's content pipeline: everything before
    the clock is rendered once per change of counts, filter or width, and the clock
    (the plain text after the last `│`) is appended as it is, each second.
    """

    COMPONENT_CLASSES = {"summary--breached", "summary--due"}
    shown: Text | None = None
    _risk_styles: dict[str, Style] | None = None
    _head: tuple[tuple[object, ...], list[Segment]] | None = None

    def risk_styles(self) -> dict[str, Style]:
        """The breached and due counts' styles, from the CSS (app.tcss)."""
        if self._risk_styles is None:
            self._risk_styles = {risk: self.get_component_rich_style(f"summary--{risk}",
                                                                      partial=True)
                                 for risk in ("breached", "due")}
        return self._risk_styles

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._risk_styles = None

    def show(self, text: Text, out: list[str] | None = None) -> None:
        """Show `text`; `out`: see `QueueView.refresh_changed`."""
        old, self.shown = self.shown, text
        if old is not None and old.plain == text.plain and old.spans == text.spans:
            return
        span = None
        if old is not None and old.spans == text.spans and self.is_mounted:
            span = changed_span(old.plain, text.plain)
        width = self.size.width
        # Static.update() repaints the whole line; set the content and refresh the span.
        if span is None or span[0] >= width or not compat.set_static_content(self, text):
            self.update(text, layout=False)
            return
        x2 = min(width, span[1])
        if not write_cells(self, [(0, span[0], x2)], self.render_line, out):
            self.refresh(Region(span[0], 0, x2 - span[0], 1))

    def render_line(self, y: int) -> Strip:
        text = self.shown
        if y or text is None:
            return super().render_line(y)
        plain = text.plain
        cut = plain.rfind(" │ ") + 3 if " │ " in plain else len(plain)
        base = self.rich_style  # the widget's colours, under the text's own styles
        key = (plain[:cut], tuple(text.spans), self.size.width, base)
        if self._head is None or self._head[0] != key:
            self._head = key, list(Segment.apply_style(text[:cut].render(self.app.console),
                                                       base))
        return Strip([*self._head[1], Segment(plain[cut:], base)]).adjust_cell_length(
            self.size.width, Style(bgcolor=base.bgcolor))
