"""The fast paths on Textual's private API (tui/compat.py) change no frame.

The dashboard runs twice on the same database and the same fixed clock: once with the
compat layer installed, once with public Textual only. Every frame it would write (the
first one, then each tick's partial updates, painted on a terminal in order) and the
full screen after each step must be the same, cell by cell and colour by colour.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import T0, paint
from sladeck.clock import FixedClock
from sladeck.demo import fill_demo
from sladeck.domain.model import Actor
from sladeck.policy import Policy
from sladeck.store import Store
from sladeck.tui import compat
from sladeck.tui.app import SladeckApp

ME = Actor("tester", "Tess")
Cells = dict[tuple[int, int], tuple[str, str]]


@pytest.fixture(autouse=True)
def _utc_and_still() -> None:
    os.environ["TZ"] = "UTC"
    time.tzset()
    os.environ["TEXTUAL_ANIMATIONS"] = "none"


async def run(db: Path, policy: Policy, fast_paths: bool, size: tuple[int, int]
              ) -> tuple[list[Cells], list[list[tuple[str, str]]], int]:
    """(the terminal after each step, the full screen after each step, the number of
    partial writes the compat layer made itself)."""
    from textual._compositor import CompositorUpdate

    clock = FixedClock(T0)
    app = SladeckApp(db, policy, ME, clock=clock, poll_interval=None, tick_interval=None,
                     bell=False, run_hooks=False, cursor_blink=False, fast_paths=fast_paths)
    assert compat.installed() is fast_paths
    written: list[str] = []
    own = 0
    display = app._display

    def recording(screen, renderable):  # type: ignore[no-untyped-def]
        nonlocal own
        if isinstance(renderable, CompositorUpdate):
            written.append(renderable.render_segments(app.console))
            own += type(renderable).__name__ == "CellsUpdate"
        return display(screen, renderable)
    app._display = recording  # type: ignore[method-assign]
    terminals: list[Cells] = []
    screens: list[list[tuple[str, str]]] = []
    async with app.run_test(size=size) as pilot:

        async def step() -> None:
            for _ in range(5):
                await pilot.app.workers.wait_for_complete()
                await pilot.pause()
            cells: Cells = {}
            for data in written:
                paint(data, cells)
            terminals.append(cells)
            screens.append([(segment.text, str(segment.style))
                            for strip in app.screen._compositor.render_strips()
                            for segment in strip])

        await step()
        for seconds in (1, 1, 1, 7, 50, 1, 600, 1):  # countdowns, then risks that move
            clock.advance(timedelta(seconds=seconds))
            app.tick()
            await step()
        await pilot.press("down", "down")  # the cursor moves: Textual's partial updates
        clock.advance(timedelta(seconds=1))
        app.tick()
        await step()
    return terminals, screens, own


@pytest.mark.parametrize("size", [(120, 36), (80, 24)])
def test_the_compat_layer_changes_no_frame(db_path: Path, policy: Policy,
                                           size: tuple[int, int]) -> None:
    store = Store(db_path)
    fill_demo(store, policy, ME, T0)
    store.close()
    try:
        public = asyncio.run(run(db_path, policy, False, size))
        fast = asyncio.run(run(db_path, policy, True, size))
    finally:
        compat.install()  # as every other test's dashboard has it
    assert public[2] == 0 and fast[2] > 0  # the fast paths did run, and only when installed
    assert len(fast[0]) == len(public[0])
    for step, (ours, theirs) in enumerate(zip(fast[0], public[0], strict=True)):
        assert ours == theirs, f"the terminal differs after step {step}"
    for step, (ours, theirs) in enumerate(zip(fast[1], public[1], strict=True)):
        assert ours == theirs, f"the screen differs after step {step}"


async def fast_paths_taken(db: Path, policy: Policy) -> tuple[bool, bool]:
    """(whether the summary's content was set in place, whether cells were written
    straight) on a dashboard made before the compat layer's state was changed."""
    from rich.text import Text

    from sladeck.tui.app import SummaryLine

    app = SladeckApp(db, policy, ME, clock=FixedClock(T0), poll_interval=None,
                     tick_interval=None, bell=False, run_hooks=False, cursor_blink=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        summary = app.screen.query_one(SummaryLine)
        compat.uninstall()
        set_in_place = compat.set_static_content(summary, Text("x"))
        written = compat.write_cells(summary, [(0, 0, 1)], summary.render_line, [])
    return set_in_place, written


def test_not_installed_means_public_textual(db_path: Path, policy: Policy) -> None:
    Store(db_path).close()
    try:
        assert asyncio.run(fast_paths_taken(db_path, policy)) == (False, False)
        assert not compat.installed()
    finally:
        assert compat.install()  # Textual 8.2.8, the version it was checked against


def test_another_textual_version_gets_public_textual(monkeypatch: pytest.MonkeyPatch) -> None:
    compat.uninstall()
    monkeypatch.setattr(compat, "CHECKED", ("0.0.1",))
    compat.checked.cache_clear()
    try:
        assert not compat.install() and not compat.installed()
    finally:
        monkeypatch.undo()
        compat.checked.cache_clear()
        assert compat.install()
