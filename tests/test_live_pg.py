"""Live updates on PostgreSQL survive the server dropping the LISTEN connection (a
restart, a failover, a network cut): the dashboard polls meanwhile, opens LISTEN again,
and shows others' commits through it as before."""

from __future__ import annotations

import asyncio
import time

import pytest

from conftest import make_app, sync
from sladeck.domain import actions
from sladeck.domain.actions import Desk
from sladeck.domain.model import Actor
from sladeck.store import open_store
from sladeck.tui.live import LiveUpdates

pytestmark = pytest.mark.usefixtures("pg_cluster")


@pytest.fixture
def backend() -> str:
    return "postgres"


async def _until(condition, what: str, limit: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > limit:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@sync
async def test_a_dropped_listen_connection_is_opened_again_and_commits_show_through_it(
        pg_cluster, db_url: str, policy, clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LiveUpdates, "REWATCH", 0.3)
    other = open_store(db_url)
    bob = Desk(other, policy, clock, Actor("bob"))
    app = make_app(db_url, policy, poll_interval=0.2)
    try:
        async with app.run_test(size=(100, 30)):
            await _until(lambda: app.live is not None and app.live.watching, "LISTEN")
            first = app.live.watch
            pg_cluster.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE application_name = 'sladeck-listen'")
            await _until(lambda: app.live.watch is not first, "the break to be noticed")
            during = actions.open_incident(bob, title="While LISTEN was down",
                                           severity="P1").incident
            await _until(lambda: app.live.watching, "LISTEN again")
            assert type(app.live.watch).__name__ == "PgWatch"
            await _until(lambda: during.id in app.queue.rows, "the commit made meanwhile")
            app.live.interval = 30.0  # from now on only LISTEN can tell in time
            after = actions.open_incident(bob, title="After", severity="P0").incident
            start = time.monotonic()
            await _until(lambda: after.id in app.queue.rows, "the commit after", 2.0)
            assert time.monotonic() - start < 0.5
    finally:
        other.close()
