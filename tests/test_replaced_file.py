"""A database file replaced or removed under an open dashboard or store (SPEC §5, §9).

Restoring a backup is `mv backup.db desk.db`: every open connection still reads and
writes the old file. Nothing may act on a file other than the one shown: a store
refuses to write once its path names another file (or none), and the dashboard
notices on its poll, says so in one line and shows the new file (or refuses every
action while there is none).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from conftest import T0, make_app, select, settle, sync
from sladeck.clock import FixedClock
from sladeck.domain import actions
from sladeck.domain.actions import Desk
from sladeck.domain.model import Actor
from sladeck.errors import FileReplaced
from sladeck.policy import Policy
from sladeck.store import Store
from sladeck.tui.requests import AcknowledgeRequest

ALICE = Actor("alice")


def desk_on(path: Path, policy: Policy) -> Desk:
    return Desk(Store(path), policy, FixedClock(T0), ALICE)


def restore(backup: Path, db: Path) -> None:
    """What a person does to restore a backup: move it over the database."""
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    os.rename(backup, db)


@pytest.fixture
def two_files(tmp_path: Path, policy: Policy) -> tuple[Path, Path]:
    """desk.db with INC-1, a P1; backup.db whose INC-1 is another incident, a P0."""
    db, backup = tmp_path / "desk.db", tmp_path / "backup.db"
    for path, severity, title in ((db, "P1", "Checkout slow"), (backup, "P0", "Payments down")):
        desk = desk_on(path, policy)
        assert actions.open_incident(desk, title=title, severity=severity).incident.id == 1
        desk.store.close()
    return db, backup


def state_of(path: Path, incident_id: int) -> tuple[str, str]:
    store = Store(path)
    try:
        incident = store.incident(incident_id)
        assert incident is not None
        return incident.severity, incident.state
    finally:
        store.close()


# -- the store -------------------------------------------------------------------------------


def test_a_store_refuses_to_write_a_file_replaced_under_it(two_files: tuple[Path, Path],
                                                           policy: Policy) -> None:
    db, backup = two_files
    desk = desk_on(db, policy)
    restore(backup, db)
    with pytest.raises(FileReplaced) as refused:
        actions.acknowledge(desk, 1)
    message = str(refused.value)
    assert "\n" not in message and str(db) in message and "reload" in message
    assert state_of(db, 1) == ("P0", "open")  # the P0 it never showed is untouched
    desk.store.close()


def test_a_store_refuses_to_write_a_removed_file_and_never_recreates_it(
        two_files: tuple[Path, Path], policy: Policy) -> None:
    db, _ = two_files
    desk = desk_on(db, policy)
    first = desk.store.identity
    for name in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        name.unlink(missing_ok=True)
    with pytest.raises(FileReplaced, match="was removed"):
        actions.acknowledge(desk, 1)
    with pytest.raises(FileReplaced, match="was removed"):  # a second connection to it
        Store(db, expect=first)
    assert not db.exists()
    desk.store.close()


# -- the dashboard ---------------------------------------------------------------------------


@pytest.mark.parametrize("writer_open", [True, False])
@sync
async def test_a_on_a_replaced_file_acts_on_nothing_then_the_new_file_is_shown(
        two_files: tuple[Path, Path], policy: Policy, writer_open: bool) -> None:
    db, backup = two_files
    desk = desk_on(db, policy)
    actions.open_incident(desk, title="Warm-up", severity="P3")  # INC-2, in desk.db only
    desk.store.close()
    app = make_app(db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()  # the first frame and its check are done
        if writer_open:  # an earlier action opened the actions' connection
            await select(pilot, 2)
            await pilot.press("a")
            await settle(pilot)
            assert state_of(db, 2) == ("P3", "acknowledged")
        restore(backup, db)
        await select(pilot, 1)
        assert app.queue.rows[1].incident.severity == "P1"  # not polled yet: the old P1
        await pilot.press("a")
        await settle(pilot)
        assert state_of(db, 1) == ("P0", "open")  # never the P0 it did not show
        refusals = [n.message for n in app._notifications if "nothing was written" in n.message]
        assert len(refusals) == 1 and "\n" not in refusals[0] and str(db) in refusals[0]
        app.refresh_from_store()  # the poll
        await pilot.pause()
        assert app.queue.rows[1].incident.severity == "P0" and 2 not in app.queue.rows
        assert any("was replaced" in n.message and "now showing the new file" in n.message
                   for n in app._notifications)
        await select(pilot, 1)
        await pilot.press("a")  # shown now: acting on it is what the person sees
        await settle(pilot)
        assert state_of(db, 1) == ("P0", "acknowledged")


@sync
async def test_a_form_on_the_old_file_is_closed_when_the_new_file_is_shown(
        two_files: tuple[Path, Path], policy: Policy) -> None:
    db, backup = two_files
    app = make_app(db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await select(pilot, 1)
        await pilot.press("enter")  # the detail of the old INC-1
        await pilot.pause()
        await pilot.press("n")  # a note form on top of it
        await pilot.pause()
        assert len(app.screen_stack) == 3
        restore(backup, db)
        app.refresh_from_store()
        await pilot.pause()
        assert len(app.screen_stack) == 1  # nothing left aimed at the old file's INC-1


@sync
async def test_a_removed_file_is_said_and_every_action_refused_until_it_is_back(
        two_files: tuple[Path, Path], policy: Policy) -> None:
    db, backup = two_files
    app = make_app(db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        shutil.move(db, db.with_name("moved-away.db"))
        app.refresh_from_store()
        await pilot.pause()
        gone = [n.message for n in app._notifications if "was removed or moved" in n.message]
        assert len(gone) == 1 and "refused" in gone[0]
        app.refresh_from_store()  # said once, not every poll
        assert len([n for n in app._notifications if "was removed" in n.message]) == 1
        await select(pilot, 1)  # still showing what it held
        await pilot.press("a")
        await settle(pilot)
        assert not db.exists()  # no empty database made in its place
        assert any("was removed" in n.message and "nothing was written" in n.message
                   for n in app._notifications)
        restore(backup, db)  # a file is back: shown, and actions work on it
        app.refresh_from_store()
        await pilot.pause()
        assert app.queue.rows[1].incident.severity == "P0"
        await select(pilot, 1)
        await pilot.press("a")
        await settle(pilot)
        assert state_of(db, 1) == ("P0", "acknowledged")


@sync
async def test_the_watch_notices_a_restore_without_a_keypress(
        two_files: tuple[Path, Path], policy: Policy) -> None:
    db, backup = two_files
    app = make_app(db, policy, poll_interval=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        restore(backup, db)
        for _ in range(60):
            await asyncio.sleep(0.05)
            if app.queue.rows.get(1) and app.queue.rows[1].incident.severity == "P0":
                break
        assert app.queue.rows[1].incident.severity == "P0"


@sync
async def test_a_file_found_damaged_by_the_poll_is_said_once_and_never_written(
        two_files: tuple[Path, Path], policy: Policy) -> None:
    import sqlite3

    from test_store import _damage

    db, _ = two_files
    app = make_app(db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        _damage(db, "incidents", "incidents_changed")  # what the poll reads
        other = sqlite3.connect(db)  # a commit elsewhere that does not touch the damage
        other.execute("INSERT INTO policies (digest, source, added_at) VALUES ('d', 's', 't')")
        other.commit()
        other.close()
        app.refresh_from_store()
        app.refresh_from_store(force=True)
        await pilot.pause()
        told = [n.message for n in app._notifications if "malformed" in n.message]
        assert len(told) == 1 and "sladeck verify" in told[0] and ".recover" in told[0]
        # an action on what is shown (the keys' own reads are the dashboard's guard's)
        app.perform(AcknowledgeRequest(1))
        await settle(pilot)
        assert any("will not write" in n.message for n in app._notifications)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 1  # opened only
    conn.close()
