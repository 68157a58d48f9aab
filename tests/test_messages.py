"""The dashboard's messages (tui/messages.py): a flood of store changes collapses into
one, and a form hears of a change to its incident before it submits (issue 11)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import App

from conftest import (
    error_text,
    first_with,
    make_app,
    select,
    sync,
)
from sladeck.domain import actions
from sladeck.domain.actions import Desk
from sladeck.policy import Policy
from sladeck.tui.forms import NoteForm
from sladeck.tui.messages import StoreChanged


class Listener(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.heard: list[frozenset[int]] = []

    def on_store_changed(self, event: StoreChanged) -> None:
        self.heard.append(event.ids)


@sync
async def test_a_flood_of_store_changes_is_handled_once_with_every_id() -> None:
    app = Listener()
    reader: Any = object()
    async with app.run_test() as pilot:
        for n in (1, 2, 3):  # queued before the app handles the first
            app.post_message(StoreChanged(frozenset({n}), reader))
        await pilot.pause()
    assert app.heard == [frozenset({1, 2, 3})]


@sync
async def test_an_open_form_says_when_someone_changed_its_incident(
        demo_db: Path, policy: Policy, other: Desk) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        target = first_with(app, "open")
        await select(pilot, target)
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, NoteForm)
        actions.assign(other, target, "bob")
        app.refresh_from_store()
        await pilot.pause()
        assert "was just changed by alice" in error_text(app)
