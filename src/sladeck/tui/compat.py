"""Every use of Textual's private API, in one place, and only once installed.

The dashboard's fast paths reach inside Textual. They are fenced in here: nothing else
in sladeck imports `textual._…` or touches a private attribute of Textual's
(tests/test_fenced.py checks). `install()` turns them on, and only on a Textual
version they were checked against (`CHECKED`); `run_dashboard` and `SladeckApp` call
it as the dashboard starts. Not installed, or on any other version, every function
here answers "no" and sladeck does what public Textual does (the frames are the same:
tests/test_compat.py runs the dashboard both ways and compares them).

What it touches in Textual 8.2.8:

- `textual._compositor.ChopsUpdate.render_segments`: replaced (`render_segments`).
- `textual._compositor.CompositorUpdate`: subclassed (`CellsUpdate`), handed to
  `App._display`.
- `Screen._compositor.visible_widgets`, `Screen._layout_required`,
  `Screen._scroll_required`, `App._batch_count`, `App._driver`,
  `Widget._layout_required`, `Widget._repaint_required`, `Widget._repaint_regions`:
  read by `write_cells` to tell when writing cells straight is safe.
- `Widget._styles_cache.set_dirty`: `write_cells` tells Textual's line cache.
- `Static._Static__content`, `Static._Static__visual`: set by `set_static_content`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import textual
from rich.cells import cell_len
from rich.color import ColorSystem
from rich.console import Console
from rich.control import Control
from rich.segment import Segment
from textual.geometry import Region
from textual.strip import Strip

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from textual._compositor import ChopsUpdate
    from textual.app import App
    from textual.visual import VisualType
    from textual.widget import Widget
    from textual.widgets import Static

CHECKED = ("8.2.8",)
_installed = False
_textual: dict[str, Any] = {}  # what `install` replaced or uses, by name


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
    from textual._compositor import ChopsUpdate, CompositorUpdate

    class CellsUpdate(CompositorUpdate):
        """Terminal data already rendered, displayed as Textual displays a partial
        update (inside a synchronized update, the cursor put back after it)."""

        def __init__(self, data: str) -> None:
            self.data = data

        def render_segments(self, console: Console) -> str:
            return self.data

    _textual["render_segments"] = ChopsUpdate.render_segments
    _textual["CellsUpdate"] = CellsUpdate
    ChopsUpdate.render_segments = render_segments  # type: ignore[method-assign]
    _installed = True
    return True


def uninstall() -> None:
    """Public Textual only from now on (what any other Textual version gets)."""
    global _installed
    if _installed:
        from textual._compositor import ChopsUpdate

        ChopsUpdate.render_segments = _textual["render_segments"]  # type: ignore[method-assign]
        _installed = False


def installed() -> bool:
    return _installed


def textual_render_segments() -> Callable[..., str]:
    """Textual's own `ChopsUpdate.render_segments`, installed or not (for comparison)."""
    from textual._compositor import ChopsUpdate

    return _textual.get("render_segments", ChopsUpdate.render_segments)  # type: ignore[no-any-return]

def _cut(segments: Iterable[Segment], start: int, stop: int) -> list[Segment] | None:
    """The segments of cells [start, stop), cut where a segment straddles an end; None
    where that would cut a double-width character or the line holds a control segment
    (the caller crops)."""
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


def _cells(strip: Iterable[Segment], start: int, stop: int, color_system: ColorSystem
           ) -> str | None:
    """Terminal data for cells [start, stop) of `strip` (a Strip or its segments); None
    where `_cut` gives None."""
    cut = _cut(strip, start, stop)
    return None if cut is None else _render(cut, color_system)


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
    the caller updates it as public Textual does."""
    if not _installed:
        return False
    widget._Static__content = content  # type: ignore[attr-defined]
    widget._Static__visual = None  # type: ignore[attr-defined]  # rebuilt on render
    return True


def use_plain_line_cache(widget: Widget) -> None:
    """Where installed, `widget`'s lines skip Textual's per-line style work when it is
    drawn with no border, padding, outline, hatch, tint or opacity.

    For such a widget Textual's `StylesCache.render_line` returns the content line
    unchanged in a new Strip, after a dozen style look-ups; this returns the content
    line itself, so a tick's changed lines each cost one Strip fewer. Any decoration
    takes Textual's own path.
    """
    if not _installed:
        return
    cls = _textual.get("PlainStylesCache")
    if cls is None:
        from textual._styles_cache import StylesCache

        class PlainStylesCache(StylesCache):
            _plain = False

            def render_widget(self, widget: Widget, crop: Region) -> list[Strip]:
                self._plain = is_plain(widget)
                return super().render_widget(widget, crop)

            def render_line(self, styles, y, size, content_size, padding,  # type: ignore[no-untyped-def]
                            base_background, background, render_content_line, *args):
                if not self._plain:
                    return super().render_line(styles, y, size, content_size, padding,
                                               base_background, background,
                                               render_content_line, *args)
                inner = self.get_inner_outer(base_background, background)[0].rich_style
                width = content_size.width
                if y < content_size.height:
                    return render_content_line(y).adjust_cell_length(width, inner)
                return Strip.blank(width, inner)

        cls = _textual["PlainStylesCache"] = PlainStylesCache
    widget._styles_cache = cls()
