"""A big queue (issue 12's 100,000 open): the full load after the first frame goes in
steps that let keys through, and ends with exactly the queue a one-go load gives."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual import events

from conftest import T0, make_app, settle, sync, view
from sladeck.domain.queue import Queue
from sladeck.store import Store
from sladeck.tui import app as app_module
from sladeck.tui.app import LOADED_STATES
from test_store import _random_incidents


@sync
async def test_the_rest_of_a_big_queue_loads_in_steps_answering_keys_between_them(
        db_path: Path, policy, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(db_path)
    _random_incidents(store, policy, 700, seed=11)
    whole = Queue(store.policy)
    whole.load(store.queue_items(LOADED_STATES), T0)
    assert len(whole.rows) > 4 * app_module.FIRST_ROWS
    monkeypatch.setattr(app_module, "LOAD_BATCH", 40)
    monkeypatch.setattr(app_module, "LOAD_STEP", 0.0)  # yield after every batch
    seen: list[tuple[bool, int | None]] = []  # (all in?, selected id) at each step
    merge = Queue.merge

    def watched(queue: Queue, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not kwargs.get("ordered", True):  # a step of the load
            if not seen:  # someone presses down twice as the load starts
                for _ in range(2):
                    app.post_message(events.Key("down", None))
            seen.append((app.queue.complete, view(app).selected_id))
        return merge(queue, *args, **kwargs)

    monkeypatch.setattr(Queue, "merge", watched)
    app = make_app(db_path, policy)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert len(seen) > 3  # several steps, each a turn of the event loop
        third = whole.order[2].incident.id
        partial = [selected for full, selected in seen if not full]
        assert partial[-1] == third  # both keys answered before every row was in
        assert [r.incident.id for r in app.queue.order] == [r.incident.id for r in whole.order]
        assert app.queue.summary() == whole.summary()
        assert view(app).selected_id == third  # still where it was moved to
        assert app.queue.complete


def _shown_refs(app) -> list[str]:  # type: ignore[no-untyped-def]
    """The incident refs on the queue's screen lines, top to bottom."""
    import re

    from conftest import screen_lines
    return [m.group(0) for line in screen_lines(app)
            if (m := re.search(r"INC-\d+", line))]


@sync
async def test_beyond_lean_above_the_dashboard_keeps_places_not_rows_and_works_alike(
        db_path: Path, policy, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past LEAN_ABOVE open incidents the queue keeps each row's place and reads what it
    shows: a person sees the same screen, moves, filters, and sees others' changes and
    time passing exactly as with every row kept."""
    from datetime import timedelta

    from sladeck.clock import FixedClock
    from sladeck.domain import actions
    from sladeck.domain.actions import Desk
    from sladeck.domain.lean_queue import LeanQueue
    from sladeck.domain.model import Actor
    from sladeck.domain.queue import Filter
    from test_forms import burst

    store = Store(db_path)
    _random_incidents(store, policy, 700, seed=12)
    whole = Queue(store.policy)
    whole.load(store.queue_items(LOADED_STATES), T0)
    monkeypatch.setattr(app_module, "LEAN_ABOVE", 50)
    monkeypatch.setattr(app_module, "LOAD_BATCH", 100)
    clock = FixedClock(T0)
    app = make_app(db_path, policy, clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert isinstance(app.queue, LeanQueue)
        on_screen = _shown_refs(app)
        assert len(on_screen) > 20
        assert on_screen == [r.incident.ref for r in whole.visible[:len(on_screen)]]
        await pilot.press("end")
        assert view(app).selected_id == whole.visible[-1].incident.id
        assert _shown_refs(app)[-1] == whole.visible[-1].incident.ref  # read and drawn
        await pilot.press("home", "down", "down")
        third = whole.visible[2].incident.id
        assert view(app).selected_id == third

        searches: list[str] = []
        search = Store.queue_ids

        def counted(store, *args, **kwargs):  # type: ignore[no-untyped-def]
            searches.append(kwargs.get("text", ""))
            return search(store, *args, **kwargs)

        monkeypatch.setattr(Store, "queue_ids", counted)
        await burst(pilot, "/", *"t12", "enter")  # typed fast: the store searches once
        assert searches == ["t12"]
        whole.set_filter(Filter(text="t12"))
        assert _shown_refs(app) == [r.incident.ref for r in whole.visible][:30]
        await pilot.press("escape")
        await pilot.pause()
        whole.set_filter(Filter())
        assert view(app).selected_id == third  # back where it was

        bob = Desk(Store(db_path), policy, clock, Actor("bob"))
        new = actions.open_incident(bob, title="Arrived while lean", severity="P0").incident
        actions.acknowledge(bob, third)
        app.refresh_from_store()
        await pilot.pause()
        whole.merge(store.changed_since(0), clock.now())
        assert view(app).selected_id == third  # followed as its row moved
        assert app.queue.index_of(third) == whole.index_of(third)
        assert app.queue.index_of(new.id) == whole.index_of(new.id)

        clock.advance(timedelta(hours=3))  # clocks run out: rows move
        alerts = whole.tick(clock.now())
        assert alerts  # this instant moves rows
        assert app.queue.tick(clock.now()) == alerts
        app._rows_changed()
        await pilot.pause()
        await pilot.press("home")
        assert _shown_refs(app) == [r.incident.ref for r in whole.visible][:len(_shown_refs(app))]
        assert app.queue.summary() == whole.summary()
