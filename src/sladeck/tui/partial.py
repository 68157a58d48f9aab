"""Write only the changed cells of a partial screen update.

Textual 8 turns a refreshed region into "spans" (line, x1, x2), but its
`ChopsUpdate.render_segments` writes each span from the left edge of the widget
that holds it, up to x2: a queue line whose countdown's last digit changed is
rewritten from column 0. The dashboard repaints only a few cells a second, so it
installs this version, which starts at x1 as the span says. Where starting at x1
would split a double-width character it starts at the widget's edge as before.
Installed only on the Textual versions it was checked against; full updates are
untouched. A span is cut straight from the strip's segments, without building the
cropped Strips Textual would (each carries seven caches): at one changed countdown
a line, a second's update is mostly spans.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import textual
from rich.cells import cell_len
from rich.color import ColorSystem
from rich.console import Console
from rich.control import Control
from textual._compositor import ChopsUpdate
from textual.strip import Strip

CHECKED = ("8.2.8",)


@cache
def checked() -> bool:
    """Whether the installed Textual is one these replacements were checked against.

    Its version from the distribution's folder name when it has one (what
    `textual.__version__` computes through importlib.metadata, which took ~10 ms of
    every start-up), else from `textual.__version__` itself.
    """
    package = Path(textual.__file__).parent
    found = [d.name for d in package.parent.glob("textual-*.dist-info")]
    if len(found) == 1:
        return found[0].removeprefix("textual-").removesuffix(".dist-info") in CHECKED
    return textual.__version__ in CHECKED
TEXTUAL_RENDER_SEGMENTS = ChopsUpdate.render_segments  # Textual's own, for comparison


def _cells(strip: Strip, start: int, stop: int, color_system: ColorSystem) -> str | None:
    """Terminal data for cells [start, stop) of `strip`; None where that would cut a
    double-width character or the strip holds a control segment (the caller crops)."""
    render = Strip.render_style
    out: list[str] = []
    pos = 0
    for text, style, control in strip:
        if pos >= stop:
            break
        if control:
            return None
        width = cell_len(text)
        end = pos + width
        if end > start and text:
            if pos < start or end > stop:  # a cut inside this segment
                if width != len(text):
                    return None
                text = text[max(0, start - pos): stop - pos]
            out.append(text if style is None else render(style, text, color_system))
        pos = end
    return "".join(out)


def render_segments(self: ChopsUpdate, console: Console) -> str:
    """Raw terminal data for the spans: each span's own cells, not from the widget's edge."""
    sequences: list[str] = []
    append = sequences.append
    move_to = Control.move_to
    chops = self.chops
    chop_ends = self.chop_ends
    last_y = self.spans[-1][0]
    color_system = console._color_system or ColorSystem.TRUECOLOR
    for y, x1, x2 in self.spans:
        line = chops[y]
        ends = chop_ends[y]
        for end, (x, strip) in zip(ends, line.items(), strict=False):
            if strip is None or x > x2 or end <= x1:
                continue
            if x2 > x >= x1 and end <= x2:
                append(move_to(x, y).segment.text)
                append(strip.render(console))
                continue
            start, stop = max(x, x1), min(end, x2)
            if start >= stop:
                continue
            cells = _cells(strip, start - x, stop - x, color_system)
            if cells is not None:
                append(move_to(start, y).segment.text)
                append(cells)
                continue
            start = x
            if x1 > x:
                text = strip.crop(0, x1 - x).text
                if cell_len(text) == x1 - x and strip.text.startswith(text):  # x1 splits no
                    start = x1  # double-width character (a split one is cropped to spaces)
            strip = strip.crop(start - x, min(end, x2) - x)
            append(move_to(start, y).segment.text)
            append(strip.render(console))
        if y != last_y:
            append("\n")
    return "".join(sequences)


def install() -> bool:
    """Use `render_segments` above for partial updates; False where not checked."""
    if not checked():
        return False
    ChopsUpdate.render_segments = render_segments  # type: ignore[method-assign]
    return True
