"""Every use of Textual's private API, in one place, and only once installed.

The dashboard's fast paths reach inside Textual. They are fenced in here: nothing else
in sladeck imports `textual._…` or touches a private attribute of Textual's
(tests/test_fenced.py checks). `install()` turns them on, and only on a Textual
version they were checked against (`CHECKED`); `SladeckApp` calls it as the dashboard
starts. Not installed, or on any other version, every function here answers "no" and
the caller does what public Textual does (the frames are the same:
tests/test_compat.py runs the dashboard both ways and compares them).

What it touches in Textual 8.2.8:

- `textual._compositor.CompositorUpdate`: subclassed (`CellsUpdate`), handed to
  `App._display` (`display`).
- `Screen._compositor.visible_widgets`, `Screen._layout_required`,
  `Screen._scroll_required`, `App._batch_count`, `App._driver`,
  `Widget._layout_required`, `Widget._repaint_required`, `Widget._repaint_regions`:
  read by `write_cells` to tell when writing cells straight is safe.
- `Widget._styles_cache.set_dirty`: `write_cells` tells Textual's line cache.
- `Static._Static__content`, `Static._Static__visual`: set by `set_static_content`.

Each fast path says what it saves, measured with it on and off in one run
(`bench_idle.py`'s dashboard at 10,000 open, 20 s idle, two runs each, alternating).
Two earlier ones were removed when measured so (issue 11): a replacement of
`ChopsUpdate.render_segments` that wrote a partial update from the span's first cell,
not the widget's edge (idle CPU 0.075 s without it vs 0.085 s with, bytes 23.80 vs
23.83 KB: since `write_cells` writes the ticks it no longer served them), and a
`StylesCache` subclass that handed the queue's content lines straight through (idle
CPU the same, 0.085 s; ~1.2–2.6 ms per full 33-line queue render, under 1 % of the
first frame).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import textual
from rich.cells import cell_len
from rich.color import ColorSystem
from rich.console import Console
from rich.segment import Segment
from textual.geometry import Region
from textual.strip import Strip

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from textual.app import App
    from textual.visual import VisualType
    from textual.widget import Widget
    from textual.widgets import Static

CHECKED = ("8.2.8",)
_installed = False
_textual: dict[str, Any] = {}  # what `install` made from Textual's private classes


@cache
def checked() -> bool:
    """Whether the installed Textual is one these fast paths were checked against.

    Its version from the distribution's folder name when it has one (what
    `textual.__version__` computes through importlib.metadata, which took ~10 ms of
    every start-up), else from `textual.__version__` itself.
    """
    package = Path(textual.__file__).parent
    found = [d.name for d in package.parent.glob("textual-*.dist-info")]
    if len(found) == 1:
        return found[0].removeprefix("textual-").removesuffix(".dist-info") in CHECKED
    return textual.__version__ in CHECKED


def install() -> bool:
    """Turn the fast paths on; False (and nothing touched) on a Textual not `CHECKED`."""
    global _installed
    if _installed:
        return True
    if not checked():
        return False
    if "CellsUpdate" not in _textual:
        from textual._compositor import CompositorUpdate

        class CellsUpdate(CompositorUpdate):
            """Terminal data already rendered, displayed as Textual displays a partial
            update (inside a synchronized update, the cursor put back after it)."""

            def __init__(self, data: str) -> None:
                self.data = data

            def render_segments(self, console: Console) -> str:
                return self.data

        _textual["CellsUpdate"] = CellsUpdate
    _installed = True
    return True


def uninstall() -> None:
    """Public Textual only from now on (what any other Textual version gets)."""
    global _installed
    _installed = False


def installed() -> bool:
    return _installed


def _cut(segments: Iterable[Segment], start: int, stop: int) -> list[Segment] | None:
    """The segments of cells [start, stop), cut where a segment straddles an end; None
    where that would cut a double-width character or the line holds a control segment
    (the caller refreshes through Textual instead)."""
    out: list[Segment] = []
    pos = 0
    for segment in segments:
        if pos >= stop:
            break
        text, style, control = segment
        if control:
            return None
        width = cell_len(text)
        end = pos + width
        if end > start and text:
            if pos < start or end > stop:  # a cut inside this segment
                if width != len(text):
                    return None
                segment = Segment(text[max(0, start - pos): stop - pos], style)
            out.append(segment)
        pos = end
    return out


def _render(segments: Iterable[Segment], color_system: ColorSystem) -> str:
    render = Strip.render_style
    return "".join(text if style is None else render(style, text, color_system)
                   for text, style, _ in segments)


def is_plain(widget: Widget) -> bool:
    """Whether Textual draws `widget`'s lines as its content lines, unchanged: no border,
    padding, outline, hatch, tint or opacity (the queue and summary as app.tcss styles
    them)."""
    styles = widget.styles
    return (widget.region.size == widget.content_region.size
            and widget.opacity == 1.0 and styles.text_opacity == 1.0 and not styles.tint.a
            and not any(styles.padding)
            and not any(edge for edge, _ in styles.border)
            and not any(edge for edge, _ in styles.outline)
            and not (styles.has_rule("hatch") and styles.hatch != "none"))


def write_cells(widget: Widget, lines: Sequence[tuple[int, int, int]],
                render_line: Callable[[int], Iterable[Segment]],
                out: list[str] | None = None) -> bool:
    """Write cells [x1, x2) of `widget`'s content lines y straight to the terminal,
    for each (y, x1, x2) in `lines`, each line drawn by `render_line(y)`; False where
    that is not safe, having written nothing: the caller refreshes the regions instead.

    What Textual's refresh of those regions would write, without its round trip: the
    idle message, the screen's update timer, rendering every widget the regions' union
    crosses (the summary line and the countdowns cross them all) and dividing each
    line into its chops. Safe only when nothing is pending that would move or cover the
    cells: the widget's screen is the one shown and laid out, the widget is drawn as
    its content lines (`is_plain`) with no repaint pending, the cells are inside its
    visible part and no widget in front of it (a toast, a tooltip, a scroll bar)
    overlaps them. Textual's line cache is told the lines changed, so any later
    repaint draws them anew. With `out`, the data is appended to it for `display`.
    Used only once installed.

    Measured on and off: idle CPU 0.085 s with it, 0.19 s without (2.2×), terminal
    bytes 23.8 vs 25.1 KB over the 20 s.
    """
    if not lines or not _installed:
        return False
    app = widget.app
    screen = widget.screen
    if (app.screen is not screen or app._batch_count or app.is_inline
            or app._driver is None or screen._layout_required or screen._scroll_required
            or widget._layout_required or widget._repaint_required
            or widget._repaint_regions or not is_plain(widget)):
        return False
    found = screen._compositor.visible_widgets.get(widget)
    if found is None:
        return False
    region, clip = found
    width = widget.content_region.width
    top = min(y for y, _, _ in lines)
    bottom = max(y for y, _, _ in lines)
    left = min(x1 for _, x1, _ in lines)
    right = min(width, max(x2 for _, _, x2 in lines))
    if right <= left:
        return False
    box = Region(region.x + left, region.y + top, right - left, bottom - top + 1)
    if not clip.contains_region(box):
        return False
    for other, (other_region, other_clip) in screen._compositor.visible_widgets.items():
        if other is widget:  # the rest are behind it
            break
        if box.overlaps(other_region.intersection(other_clip)):
            return False
    filters = widget.get_line_filters()
    background = widget.background_colors[1]
    color_system = app.console._color_system or ColorSystem.TRUECOLOR
    data: list[str] = []
    for y, x1, x2 in lines:
        x2 = min(x2, width)
        if x2 <= x1:
            continue
        cut = _cut(render_line(y), x1, x2)  # filters map segment to segment: cut first
        if cut is None:  # the span would cut a double-width character
            return False
        for line_filter in filters:
            cut = line_filter.apply(cut, background)
        data.append(f"\x1b[{region.y + y + 1};{region.x + x1 + 1}H{_render(cut, color_system)}")
    widget._styles_cache.set_dirty(*(Region(0, y, width, 1) for y, _, _ in lines))
    if out is None:
        display(app, data)
    else:
        out += data
    return True


def display(app: App[object], data: Sequence[str]) -> None:
    """Write what `write_cells` rendered, as one partial update of the screen shown."""
    if data and _installed:
        app._display(app.screen, _textual["CellsUpdate"]("".join(data)))


def set_static_content(widget: Static, content: VisualType) -> bool:
    """Give `widget` its new content without `Static.update`'s refresh of the whole
    widget (the caller refreshes the cells that changed); False where not installed:
    the caller updates it as public Textual does.

    For the summary line's clock: without it, `Static.update` each second repaints
    the whole line through Textual (and `write_cells` cannot write the clock): idle
    CPU 0.085 s with it, 0.15 s without (1.8×), bytes 23.8 vs 29.7 KB over the 20 s.
    """
    if not _installed:
        return False
    widget._Static__content = content  # type: ignore[attr-defined]
    widget._Static__visual = None  # type: ignore[attr-defined]  # rebuilt on render
    return True
