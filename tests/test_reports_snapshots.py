"""Snapshots of the reports and digest screens at 80×24 and 120×36, on the fixed-clock
scenario of tests/report_scenario.py (UTC, no animation, no cursor blink). Update with
`pytest tests/test_reports_snapshots.py --snapshot-update`, then run again without it."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot

import report_scenario as sc
from conftest import settle
from sladeck.clock import FixedClock
from sladeck.domain.model import Actor
from sladeck.policy import Policy
from sladeck.tui.app import SladeckApp

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 36), id="120x36")]


pytestmark = pytest.mark.usefixtures("utc_and_still")


@pytest.fixture
def app(db_path: Path, policy: Policy) -> SladeckApp:
    sc.build(db_path, policy)
    app = SladeckApp(db_path, policy, Actor("tester", "Tess"), clock=FixedClock(sc.NOW),
                     poll_interval=None, tick_interval=None, bell=False, run_hooks=False,
                     cursor_blink=False)
    app.animation_level = "none"
    return app


@pytest.mark.parametrize("size", SIZES)
def test_reports(snap_compare, app: SladeckApp, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot) -> None:
        await settle(pilot)
        await pilot.press("R")
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_reports_charts(snap_compare, app: SladeckApp, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot) -> None:
        await settle(pilot)
        await pilot.press("R")
        await settle(pilot)
        await pilot.press("end")
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_digest(snap_compare, app: SladeckApp, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot) -> None:
        await settle(pilot)
        await pilot.press("D")
        await settle(pilot)
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
