"""Snapshots of the dashboard's screens at 80×24 and 120×36.

Frozen clock, fixed demo data, UTC, no animation and no cursor blink, so the
SVGs only change when the dashboard does. Update them on this whole module:
`pytest tests/test_snapshots.py --snapshot-update`, then run again without it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from textual.pilot import Pilot

from conftest import T0
from sladeck.clock import FixedClock
from sladeck.demo import fill_demo
from sladeck.domain.model import Actor
from sladeck.policy import Policy
from sladeck.store import Store
from sladeck.tui.app import SladeckApp
from sladeck.tui.detail import DetailScreen
from sladeck.tui.forms import EscalateForm, NewIncidentForm
from sladeck.tui.help import HelpScreen

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 36), id="120x36")]


@pytest.fixture(autouse=True)
def _utc_and_still() -> None:
    os.environ["TZ"] = "UTC"
    time.tzset()
    os.environ["TEXTUAL_ANIMATIONS"] = "none"


@pytest.fixture
def app(db_path: Path, policy: Policy) -> SladeckApp:
    store = Store(db_path)
    fill_demo(store, policy, Actor("tester", "Tess"), T0)
    store.close()
    app = SladeckApp(db_path, policy, Actor("tester", "Tess"), clock=FixedClock(T0),
                     poll_interval=None, tick_interval=None, bell=False, run_hooks=False,
                     cursor_blink=False)
    app.animation_level = "none"
    return app


async def settle(pilot: Pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_queue(snap_compare, app: SladeckApp, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot) -> None:
        await pilot.press("down", "down")  # the third row is selected
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_detail(snap_compare, app: SladeckApp, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot) -> None:
        await pilot.press("down", "enter")
        await settle(pilot)
        assert isinstance(pilot.app.screen, DetailScreen)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_escalation_form_with_missing_fields(snap_compare, app: SladeckApp,
                                             size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot) -> None:
        await pilot.press("down", "down", "e")
        await pilot.pause()
        assert isinstance(pilot.app.screen, EscalateForm)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert pilot.app.screen.query(".missing")

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare, app: SladeckApp, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot) -> None:
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(pilot.app.screen, HelpScreen)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_new_incident_form_explains_the_severity(snap_compare, app: SladeckApp,
                                                 size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot) -> None:
        from textual.widgets import Select

        await pilot.press("n")
        await pilot.pause()
        form = pilot.app.screen
        assert isinstance(form, NewIncidentForm)
        form.query_one("#severity", Select).value = "P1"
        await pilot.pause()
        form.query_one("#severity-info").scroll_visible(animate=False)
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_escalation_form_at_l4_for_vendor_support(snap_compare, app: SladeckApp,
                                                  size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot) -> None:
        from textual.widgets import Select

        await pilot.press("down", "down", "e")
        await pilot.pause()
        form = pilot.app.screen
        assert isinstance(form, EscalateForm)
        form.query_one("#target", Select).value = "L4"
        await pilot.pause()
        form.query_one("#trigger", Select).value = "vendor_support"
        await pilot.pause()
        form.query_one("#outside-help").scroll_visible(animate=False, top=True)
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_detail_level_and_contacts(snap_compare, app: SladeckApp,
                                   size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot) -> None:
        await pilot.press("down", "enter")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, DetailScreen)
        screen.query_one("#tier").scroll_visible(animate=False, top=True)
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_detail_clock_history(snap_compare, app: SladeckApp, size: tuple[int, int]) -> None:
    """The P0 escalated to L4 a minute beyond its grace: its clock history (SPEC §3)."""
    from conftest import select

    async def run_before(pilot: Pilot) -> None:
        await settle(pilot)
        await select(pilot, 2)
        await pilot.press("enter")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, DetailScreen)
        screen.query_one("#history").scroll_visible(animate=False, top=True)
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_screenshots_script_runs(tmp_path: Path) -> None:
    """scripts/screenshots.py still works (smoke): every picture is written."""
    import importlib.util

    script = Path(__file__).resolve().parent.parent / "scripts" / "screenshots.py"
    spec = importlib.util.spec_from_file_location("sladeck_screenshots", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = module.main(tmp_path)
    assert sorted(p.name for p in written) == sorted(f"{name}.svg" for name, _, _ in module.SHOTS)
    for path in written:
        text = path.read_text()
        assert text.startswith("<svg") and "sladeck" in text
        assert str(tmp_path) not in text


@pytest.fixture
def board_app(db_path: Path, policy: Policy) -> SladeckApp:
    from sladeck.tui.board import BoardApp

    store = Store(db_path)
    fill_demo(store, policy, Actor("tester", "Tess"), T0)
    store.close()
    app = BoardApp(db_path, policy, Actor("tester", "Tess"), clock=FixedClock(T0),
                   poll_interval=None, tick_interval=None, bell=False, run_hooks=False,
                   cursor_blink=False)
    app.animation_level = "none"
    return app


@pytest.mark.parametrize("size", SIZES)
def test_board(snap_compare, board_app: SladeckApp, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot) -> None:
        await settle(pilot)

    assert snap_compare(board_app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_follow_ups(snap_compare, app: SladeckApp, db_path: Path, policy: Policy,
                    size: tuple[int, int]) -> None:
    from sladeck.domain import actions
    from sladeck.domain.actions import Desk
    from sladeck.tui.followups import FollowUpsScreen

    store = Store(db_path)
    desk = Desk(store, policy, FixedClock(T0), Actor("tester", "Tess"))
    finished = [i.id for i in store.incidents(("resolved", "closed"))]
    for n, (kind, text, owner, due) in enumerate((
            ("monitoring", "Alert when the pool runs low", "Tess", "2026-11-20"),
            ("process_updates", "Update the failover runbook", "alice", "2026-12-04"),
            ("training", "Drill the L2 handoff", "bob", None),
            ("preventive_measures", "Pin the release tooling", "Tess", "2026-12-10"))):
        actions.add_follow_up(desk, finished[n % len(finished)], kind=kind, description=text,
                              owner=owner, due=due)
    store.close()

    async def run_before(pilot: Pilot) -> None:
        await pilot.press("F")
        await settle(pilot)
        assert isinstance(pilot.app.screen, FollowUpsScreen)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
