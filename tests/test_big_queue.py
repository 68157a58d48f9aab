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
