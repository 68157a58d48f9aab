"""Resolved and closed incidents, loaded on demand; reopen one with a reason. The queue's
start reads no closed incident, however many there are."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input

from conftest import error_text, settle, sync
from sladeck.domain.notices import NOTICE_KINDS
from sladeck.store import Store
from sladeck.store.rows import WRITTEN_COLUMNS
from sladeck.tui.closed import ClosedScreen, ReopenForm

pytestmark = pytest.mark.usefixtures("utc_and_still")


def shown_ids(app) -> list[str]:  # type: ignore[no-untyped-def]
    table = app.screen.query_one(DataTable)
    return [str(table.get_row_at(n)[0]) for n in range(table.row_count)]


@sync
async def test_reopen_a_closed_incident_with_a_reason_from_the_closed_view(
        demo_db: Path, dashboard) -> None:
    app = dashboard(demo_db)
    store = Store(demo_db)
    finished = [i.ref for i in sorted(store.incidents(("resolved", "closed")),
                                      key=lambda i: -i.id)]
    closed = next(i for i in store.incidents(("closed",)))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert closed.id not in app.queue.rows  # closed ones are not in the queue
        await pilot.press("C")
        await settle(pilot)
        assert isinstance(app.screen, ClosedScreen)
        assert shown_ids(app) == finished  # newest first
        app.screen.query_one(DataTable).move_cursor(row=finished.index(closed.ref))
        await pilot.press("o")
        await settle(pilot)
        assert isinstance(app.screen, ReopenForm)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert error_text(app) == "reopening needs a reason"
        await pilot.press(*"came back", "ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ClosedScreen)
        assert store.incident(closed.id).state == "open"  # type: ignore[union-attr]
        # (the notices the reopened incident owes at once may follow it)
        assert [e.payload for e in store.events(closed.id) if e.kind not in NOTICE_KINDS][-1] \
            == {"reason": "came back"}
        assert closed.ref not in shown_ids(app)
        assert closed.id in app.queue.rows  # back in the queue
        await pilot.press("escape")
        assert not isinstance(app.screen, ClosedScreen)


@sync
async def test_a_reopen_refused_by_a_change_elsewhere_keeps_the_reason(
        demo_db: Path, dashboard, other) -> None:
    from sladeck.domain import actions

    app = dashboard(demo_db)
    store = Store(demo_db)
    closed = next(i for i in store.incidents(("closed",)))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("C")
        await settle(pilot)
        app.screen.query_one(DataTable).move_cursor(row=shown_ids(app).index(closed.ref))
        await pilot.press("o")
        await settle(pilot)
        actions.reopen(other, closed.id, reason="alice got there first")
        await pilot.press(*"came back", "ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ReopenForm)
        assert "reopened" in error_text(app) and "alice" in error_text(app)
        assert app.screen.query_one("#reason", Input).value == "came back"


class CountingStore(Store):
    """A reader that counts the incident rows each read returns."""

    rows = 0
    closed_rows = 0

    def _count(self, found):  # type: ignore[no-untyped-def]
        self.rows += len(found)
        self.closed_rows += sum(1 for i in found if i.state == "closed")
        return found

    def queue_items(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self._count(super().queue_items(*args, **kwargs))

    def changed_since(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self._count(super().changed_since(*args, **kwargs))

    def incidents(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self._count(super().incidents(*args, **kwargs))

    def finished_incidents(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self._count(super().finished_incidents(*args, **kwargs))


@sync
async def test_the_queue_start_reads_no_closed_incident_even_with_10000(
        demo_db: Path, dashboard) -> None:
    store = Store(demo_db)
    active = len(store.incidents(("open", "acknowledged", "resolved")))
    closed = store.incidents(("closed",))[0]
    columns = ", ".join(WRITTEN_COLUMNS)
    copied = ", ".join(":id" if c == "id" else "NULL" if c == "dedup_key" else c
                       for c in WRITTEN_COLUMNS)
    with store.write() as tx:  # 10,000 more closed incidents, copies of one
        tx.conn.executemany(f"INSERT INTO incidents ({columns}) SELECT {copied} FROM incidents "
                            "WHERE id = :closed", [{"id": 1000 + n, "closed": closed.id}
                                                   for n in range(10_000)])
    assert store.counts()["closed"] > 10_000
    reader = CountingStore(demo_db)
    app = dashboard(demo_db, reader=reader)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert reader.closed_rows == 0
        assert reader.rows <= 2 * active  # the first screenful, then every active row
        await pilot.press("C")  # on demand: one page
        await settle(pilot)
        assert len(shown_ids(app)) == 200 and reader.closed_rows == 200


@sync
async def test_o_on_the_queue_reopens_the_selected_resolved_incident(demo_db: Path,
                                                                    dashboard) -> None:
    from conftest import select
    from sladeck.domain.queue import Filter

    app = dashboard(demo_db)
    store = Store(demo_db)
    resolved = next(i.id for i in store.incidents(("resolved",)))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        app._apply_filter(Filter(states=frozenset({"resolved"})))
        await select(pilot, resolved)
        await pilot.press("o")
        await settle(pilot)
        assert isinstance(app.screen, ReopenForm)
        await pilot.press(*"not fixed", "ctrl+s")
        await settle(pilot)
        assert store.incident(resolved).state == "open"  # type: ignore[union-attr]
