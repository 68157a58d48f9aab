"""The incidents table's columns are declared once; every conversion follows that list."""

from __future__ import annotations

import json
from datetime import timedelta

from conftest import T0
from sladeck.domain import actions
from sladeck.domain.actions import Desk
from sladeck.domain.clocks import schedule
from sladeck.domain.model import Actor
from sladeck.domain.ports import Opening
from sladeck.domain.queue import QueueItem
from sladeck.domain.timeline import apply_event
from sladeck.store import Store, rows
from sladeck.store.schema import ADDED_BY
from test_store import _random_incidents


def test_the_declared_columns_are_the_tables_in_order(store: Store) -> None:
    """Every incident column, in table order, but for the columns later migrations
    appended (`ALTER TABLE … ADD COLUMN` puts them last; every statement names its
    columns)."""
    table = [r[1] for r in store.conn.execute("PRAGMA table_info(incidents)").fetchall()]
    added = [c for c in rows.WRITTEN_COLUMNS if c in ADDED_BY]
    assert tuple(table) == tuple(c for c in rows.WRITTEN_COLUMNS if c not in added) + \
        tuple(added)
    events = [r[1] for r in store.conn.execute("PRAGMA table_info(events)").fetchall()]
    assert tuple(events) == rows.EVENT_COLUMNS


def test_compiled_readers_and_writers_equal_column_by_column(store: Store, policy) -> None:
    """The compiled fast paths against the plain loop over the same list, on incidents
    in every state (None times, several levels reached, empty texts)."""
    incidents = _random_incidents(store, policy, 200, seed=11)
    stored = store.conn.execute(rows.SELECT_INCIDENT + " ORDER BY id").fetchall()
    assert [rows.incident_from_row(r) for r in stored] == \
        [rows.incident_from_row_slowly(r) for r in stored] == incidents
    assert rows.incident_rows(incidents, store.policy) == [
        tuple(rows.incident_row(i, policy).values()) for i in incidents]
    items = store.conn.execute(rows.SELECT_ITEM + " ORDER BY id").fetchall()
    assert [rows.item_from_row(r) for r in items] == [QueueItem.of(i, policy)
                                                      for i in incidents]


def test_an_opening_is_stored_as_the_incident_its_opened_event_makes(policy) -> None:
    """What an import writes without making an `Incident` is the row of the `Incident`
    that `apply_event` makes of the same `opened` event."""
    actor = Actor("tester", "Tess")
    for opened_at in (None, T0 - timedelta(minutes=7)):
        payload = {"id": 4, "title": "Disk", "severity": "P2", "level": policy.levels[0],
                   "description": "", "service": "db", "dedup_key": "k",
                   "external_ref": None, "policy_id": 1,
                   "opened_at": None if opened_at is None else opened_at.isoformat()}
        incident = apply_event(None, event_id=9, version=1, kind="opened",
                               payload=json.loads(json.dumps(payload)), at=T0, actor=actor,
                               levels=policy.levels)
        at = T0 if opened_at is None else opened_at
        opening = Opening(4, "Disk", "", "db", "P2", policy.levels[0], None, "k", at,
                          actor.display, at, {policy.levels[0]: at}, 1, 9, T0,
                          actor.display, schedule(incident, policy))
        assert rows.incident_values(opening, policy) == rows.incident_values(incident, policy)


def test_the_compiled_functions_show_their_source() -> None:
    text = rows.source(rows.incident_from_row)
    assert text.startswith("def incident_from_row(row):")
    assert all(name in text for name in rows.INCIDENT_COLUMNS)


def test_an_import_writes_what_actions_write(desk: Desk, store: Store, clock) -> None:
    """Smoke: opened by the bulk path or by `open_incident`, rows read back alike."""
    from sladeck.domain.ingest import import_ndjson

    import_ndjson(desk, b'{"title": "A", "severity": "P1", "dedup_key": "a"}\n', "a")
    actions.open_incident(desk, title="A", severity="P1", dedup_key="b")
    first, second = store.incidents()
    assert (first.title, first.state, first.reached, first.version) == \
        (second.title, second.state, second.reached, second.version)
