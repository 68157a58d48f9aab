"""The follow-ups screen across incidents, driven with the Pilot: open, overdue and mine;
add one to a resolved incident, mark one done, open its incident."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Select, Static

from conftest import ME, T0, error_text, first_with, select, settle, sync
from sladeck.clock import FixedClock
from sladeck.domain import actions
from sladeck.domain.actions import Desk
from sladeck.policy import Policy
from sladeck.store import Store
from sladeck.tui.detail import DetailScreen
from sladeck.tui.followups import FollowUpForm, FollowUpsScreen

pytestmark = pytest.mark.usefixtures("utc_and_still")


@pytest.fixture
def demo_db(demo_db: Path, policy: Policy) -> Path:
    """The demo with its own follow-ups done: these tests start from none open."""
    store = Store(demo_db)
    desk = Desk(store, policy, FixedClock(T0), ME)
    for entry in store.follow_up_entries():
        actions.complete_follow_up(desk, entry.follow_up.id)
    store.close()
    return demo_db


def rows(app) -> list[str]:  # type: ignore[no-untyped-def]
    table = app.screen.query_one(DataTable)
    return [" ".join(str(c) for c in table.get_row_at(n)) for n in range(table.row_count)]


def title(app) -> str:  # type: ignore[no-untyped-def]
    return str(app.screen.query_one("#followups-title", Static).content)


async def fill(pilot, incident: str, kind: str, description: str, due: str) -> None:  # type: ignore[no-untyped-def]
    form = pilot.app.screen
    assert isinstance(form, FollowUpForm)
    form.query_one("#incident", Input).value = incident
    form.query_one("#kind", Select).value = kind
    form.query_one("#description", Input).focus()
    await pilot.press(*description)
    form.query_one("#due", Input).value = due
    await pilot.press("ctrl+s")
    await settle(pilot)


@sync
async def test_add_a_follow_up_see_it_overdue_and_mine_mark_it_done(demo_db: Path,
                                                                   dashboard) -> None:
    app = dashboard(demo_db)
    store = Store(demo_db)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        resolved = next(i.id for i in store.incidents(("resolved",)))
        await pilot.press("F")
        await settle(pilot)
        assert isinstance(app.screen, FollowUpsScreen)
        assert rows(app) == [] and "No open follow-ups" in str(
            app.screen.query_one("#followups-empty", Static).content)
        await pilot.press("a")
        await settle(pilot)
        await fill(pilot, f"INC-{resolved}", "monitoring", "Alert on pool", "2026-11-20")
        assert isinstance(app.screen, FollowUpsScreen)  # the form closed
        (entry,) = store.follow_up_entries()  # the only open one
        assert (entry.follow_up.owner, entry.follow_up.due) == ("Tess", "2026-11-20")
        assert rows(app)[0].startswith(f"{entry.follow_up.id} INC-{resolved} ! 2026-11-20 Tess")
        await pilot.press("2")  # overdue: due before today (Thursday 2026-11-26)
        assert len(rows(app)) == 1 and "2 Overdue 1" in title(app)
        await pilot.press("3")  # mine: owned by Tess, this dashboard's --as name
        assert len(rows(app)) == 1 and "3 Mine 1" in title(app)
        await pilot.press("x")
        await settle(pilot)
        assert store.follow_up_entries() == []  # done: open ones only
        assert rows(app) == [] and "3 Mine 0" in title(app)
        await pilot.press("4")
        assert rows(app)[0].split()[2] == "done"


@sync
async def test_a_follow_up_for_an_open_incident_is_refused_in_the_form(demo_db: Path,
                                                                      dashboard) -> None:
    app = dashboard(demo_db)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        open_id = first_with(app, "open")
        await pilot.press("F", "a")
        await settle(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "a follow-up needs: incident, kind, description" in error_text(app)
        await fill(pilot, f"INC-{open_id}", "training", "Drill", "")
        assert isinstance(app.screen, FollowUpForm)  # still open, with what was typed
        assert f"INC-{open_id} is open; follow-ups are for resolved" in error_text(app)
        assert app.screen.query_one("#description", Input).value == "Drill"


@sync
async def test_the_queue_key_u_adds_one_to_the_selected_resolved_incident_and_enter_opens_it(
        demo_db: Path, dashboard) -> None:
    app = dashboard(demo_db)
    store = Store(demo_db)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        resolved = next(i.id for i in store.incidents(("resolved",)))
        app._apply_filter(app.queue.filter.__class__(states=frozenset({"resolved"})))
        await select(pilot, resolved)
        await pilot.press("u")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, FollowUpForm)
        assert form.query_one("#incident", Input).value == f"INC-{resolved}"
        await fill(pilot, f"INC-{resolved}", "training", "Runbook drill", "")
        assert len(store.follow_up_entries()) == 1
        await pilot.press("F")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen) and app.screen.incident.id == resolved


@sync
async def test_the_palette_offers_the_follow_ups_and_the_closed_incidents(demo_db: Path,
                                                                         dashboard) -> None:
    app = dashboard(demo_db)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Follow-ups (F)" in titles and "Closed (C)" in titles
        await pilot.press("ctrl+p")
        await settle(pilot)
        await pilot.press(*"Follow-ups", "enter")
        await settle(pilot)
        assert isinstance(app.screen, FollowUpsScreen)
