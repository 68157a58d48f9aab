"""The reports screen (`R`) and the digest screen (`D`), pressed as a person would, on
the fixed-clock scenario of tests/report_scenario.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import report_scenario as sc
from conftest import make_app, screen_lines, settle, sync
from sladeck.clock import FixedClock
from sladeck.policy import Policy

pytestmark = pytest.mark.usefixtures("utc_and_still")


@pytest.fixture
def scenario(db_path: Path, policy: Policy) -> Path:
    sc.build(db_path, policy)
    return db_path


def _text(app) -> str:
    return "\n".join(screen_lines(app))


def _widget_text(app, selector: str) -> str:
    from textual.widgets import Static

    widget = app.screen.query_one(selector, Static)
    from rich.console import Console

    console = Console(width=200, record=True, color_system=None)
    console.print(widget.content)
    return console.export_text()


@sync
async def test_r_opens_the_reports_with_presets_and_grouping(scenario: Path,
                                                            policy: Policy) -> None:
    from sladeck.tui.reports import ReportsScreen

    app = make_app(scenario, policy, FixedClock(sc.NOW))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("R")
        await settle(pilot)
        assert isinstance(app.screen, ReportsScreen)
        assert "Reports · Last 7 days · by severity" in _text(app)
        tables = _widget_text(app, "#reports-tables")
        # The last 7 days (from 2026-11-19 15:00) hold all 15 stories; acknowledged:
        # the 10 of the report's range, before-p3, after-p2, shift-away-p1 (not shift-p1).
        assert re.search(r"^\(all\)\s+15\s+13\s", tables, re.M)
        await pilot.press("g")  # by level
        await settle(pilot)
        assert app.screen.report.by == "level"
        assert "Reports · Last 7 days · by level" in _text(app)
        await pilot.press("t")  # today: since midnight UTC, stories 13, 14 and 15
        await settle(pilot)
        assert app.screen.report.total.counts["opened"] == 3
        await pilot.press("m")
        await settle(pilot)
        assert app.screen.report.total.counts["opened"] == 15
        charts = _widget_text(app, "#reports-bars")
        assert "Median time to acknowledge per level" in charts
        await pilot.press("escape")
        assert not isinstance(app.screen, ReportsScreen)


@sync
async def test_the_palette_opens_the_reports(scenario: Path, policy: Policy) -> None:
    from sladeck.tui.reports import ReportsScreen

    app = make_app(scenario, policy, FixedClock(sc.NOW))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Reports (R)")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ReportsScreen)


@sync
async def test_d_opens_the_shift_digest(scenario: Path, policy: Policy) -> None:
    from sladeck.tui.reports import DigestScreen

    app = make_app(scenario, policy, FixedClock(sc.NOW))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("D")
        await settle(pilot)
        assert isinstance(app.screen, DigestScreen)
        await pilot.pause(0.2)
        text = _text(app)
        assert "Shift digest: 2026-11-26 13:00:00 UTC to 2026-11-26 15:00:00 UTC" in text
        assert "Opened (2)" in text and "Breached (2)" in text
        assert app.screen.text.count("INC-14") >= 3  # opened, escalated, breached
        await pilot.press("q")
        assert not isinstance(app.screen, DigestScreen)
