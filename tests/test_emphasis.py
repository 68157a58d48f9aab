"""The worst state is the most visible one: breached above due above warning, in the
summary line and in the queue's rows, with colour, on a monochrome projector (colours
seen as greys) and under NO_COLOR (reverse and bold, never colour alone).

Each check reads the screen as the Pilot draws it (after Textual's NO_COLOR filter) and
measures the WCAG contrast ratio of the colours each cell is drawn in."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from rich.color import Color as RichColor
from rich.segment import Segment
from rich.style import Style
from textual.color import Color

from conftest import settle, sync
from sladeck.tui.app import SladeckApp


def luminance(color: Color) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    return 0.2126 * channel(color.r) + 0.7152 * channel(color.g) + 0.0722 * channel(color.b)


def contrast(style: Style, *, mono: bool = False) -> float:
    """The WCAG contrast ratio of a cell's text and background colours (reverse swaps
    them, which leaves the ratio as it is); `mono`: as a monochrome projector shows them."""
    assert style.color is not None and style.bgcolor is not None, style

    def color(c: RichColor) -> Color:
        found = Color.from_rich_color(c)
        return found.monochrome if mono else found
    high, low = sorted((luminance(color(style.color)), luminance(color(style.bgcolor))),
                       reverse=True)
    return (high + 0.05) / (low + 0.05)


def emphasis(style: Style, background: RichColor | None) -> int:
    """2 a block (reverse, or a background other than the line's `background`), 1 bold,
    0 plain."""
    return 2 if style.reverse or style.bgcolor != background else 1 if style.bold else 0


def segments(app: SladeckApp) -> list[list[Segment]]:
    return [list(strip) for strip in app.screen._compositor.render_strips()]


def segment_with(line: list[Segment], text: str) -> Segment:
    return next(s for s in line if text in s.text)


@contextmanager
def no_color(on: bool) -> Iterator[None]:
    old = os.environ.get("NO_COLOR")
    if on:
        os.environ["NO_COLOR"] = "1"
    else:
        os.environ.pop("NO_COLOR", None)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("NO_COLOR", None)
        else:
            os.environ["NO_COLOR"] = old


@pytest.mark.usefixtures("utc_and_still")
@pytest.mark.parametrize("colour", ["NO_COLOR", "colour"])
@sync
async def test_breached_stands_out_more_than_due_and_due_more_than_warning(
        colour: str, demo_db: Path, dashboard) -> None:
    with no_color(colour == "NO_COLOR"):
        app = dashboard(demo_db)
    assert app.no_color is (colour == "NO_COLOR")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("escape")  # nothing to clear: the cursor stays on the first row
        lines = segments(app)
        texts = ["".join(s.text for s in line) for line in lines]
        # the header's counts, on the summary line's own background
        panel = lines[0][-1].style.bgcolor
        breached_count = segment_with(lines[0], "breached").style
        due_count = segment_with(lines[0], " due").style
        assert emphasis(breached_count, panel) == 2 and breached_count.bold
        assert emphasis(due_count, panel) == 1
        # rows below the cursor's: the first breached, due and warning rows
        def row(word: str) -> Style:
            y = next(y for y, t in enumerate(texts) if y > 2 and t.startswith(word))
            return lines[y][0].style
        queue = next(line[-1].style.bgcolor for line, t in zip(lines, texts, strict=True)
                     if t.startswith("▲ DUE"))  # the queue's background, off the cursor
        breached, due, warning = row("✖ BREACH"), row("▲ DUE"), row("● WARN")
        assert emphasis(breached, queue) == 2 and breached.bold
        assert emphasis(due, queue) == 1
        assert emphasis(warning, queue) == 0
        for style in (breached_count, due_count, breached, due, warning):
            assert contrast(style) >= 4.5, style
            assert contrast(style, mono=True) >= 4.5, style  # a monochrome projector


@pytest.mark.usefixtures("utc_and_still")
@pytest.mark.parametrize("colour", ["NO_COLOR", "colour"])
@sync
async def test_the_boards_breached_count_is_a_block_and_its_due_count_bold(
        colour: str, demo_db: Path, policy) -> None:
    from conftest import ME, T0
    from sladeck.clock import FixedClock
    from sladeck.tui.board import BoardApp

    with no_color(colour == "NO_COLOR"):
        app = BoardApp(demo_db, policy, ME, clock=FixedClock(T0), poll_interval=None,
                       tick_interval=None, bell=False, run_hooks=False, cursor_blink=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        lines = segments(app)
        title = next(line for line in lines if any("BREACHED" in s.text for s in line))
        digits = lines[lines.index(title) + 1]  # the count's first row of large digits
        screen_bg = lines[-3][-1].style.bgcolor  # beside the queue, below the counts
        breached = segment_with(title, "BREACHED").style
        due = segment_with(title, "DUE").style
        warning = segment_with(title, "WARNING").style
        assert emphasis(breached, screen_bg) == 2 and breached.bold
        assert emphasis(due, screen_bg) == 1 and emphasis(warning, screen_bg) == 1
        # due is framed heavier than warning: ┏━━┓ against ╭──╮
        top = "".join(s.text for s in lines[lines.index(title) - 1])
        boxes = top.split("╮")
        assert boxes[0].startswith("╭") and "┏" in boxes[1] and boxes[2].startswith("╭")
        big = [s.style for s in digits if s.text.strip()]
        assert big[0].bgcolor == breached.bgcolor  # the digits sit in the block
        for style in (breached, due, warning, big[0]):
            assert contrast(style) >= 4.5, style
            assert contrast(style, mono=True) >= 4.5, style
