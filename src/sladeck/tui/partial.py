"""Write only the changed cells of a partial screen update.

Textual 8 turns a refreshed region into "spans" (line, x1, x2), but its
`ChopsUpdate.render_segments` writes each span from the left edge of the widget
that holds it, up to x2: a queue line whose countdown's last digit changed is
rewritten from column 0. The dashboard repaints only a few cells a second, so it
installs this version, which starts at x1 as the span says. Where starting at x1
would split a double-width character it starts at the widget's edge as before.
Installed only on the Textual versions it was checked against; full updates are
untouched.
"""

from __future__ import annotations

import textual
from rich.cells import cell_len
from rich.console import Console
from rich.control import Control
from textual._compositor import ChopsUpdate

CHECKED = ("8.2.8",)


def render_segments(self: ChopsUpdate, console: Console) -> str:
    """Raw terminal data for the spans: each span's own cells, not from the widget's edge."""
    sequences: list[str] = []
    append = sequences.append
    move_to = Control.move_to
    chops = self.chops
    chop_ends = self.chop_ends
    last_y = self.spans[-1][0]
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
    if textual.__version__ not in CHECKED:
        return False
    ChopsUpdate.render_segments = render_segments  # type: ignore[method-assign]
    return True
