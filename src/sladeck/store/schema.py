"""The database's schema: each migration step, in order, and the version it reaches.

`Store.migrate` runs the steps a file lacks, inside one `BEGIN IMMEDIATE` (concurrent
starters wait, one migrates). A new step is appended to MIGRATIONS, never edited in.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sladeck.domain.model import from_iso
from sladeck.store.rows import (
    INCIDENT_COLUMNS,
    SELECT_INCIDENT,
    SLA_COLUMNS,
    _iso,
    cycle_rows,
    incident_from_row,
    sla_values,
)

if TYPE_CHECKING:
    import sqlite3

    import sqlite_utils


def _v1(db: sqlite_utils.Database) -> None:
    db["policies"].create(
        {"id": int, "digest": str, "name": str, "source": str, "added_at": str},
        pk="id", not_null={"digest", "source", "added_at"})
    db["policies"].create_index(["digest"], unique=True)
    db.execute("""
        CREATE TABLE incidents (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            service TEXT NOT NULL DEFAULT '',
            severity TEXT NOT NULL,
            level TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved', 'closed')),
            assignee TEXT,
            external_ref TEXT,
            dedup_key TEXT,
            opened_at TEXT NOT NULL,
            opened_by TEXT NOT NULL,
            level_entered_at TEXT NOT NULL,
            acknowledged_at TEXT,
            acknowledged_by TEXT,
            resolved_at TEXT,
            closed_at TEXT,
            reached TEXT NOT NULL,
            repeats INTEGER NOT NULL DEFAULT 0,
            policy_id INTEGER NOT NULL REFERENCES policies(id),
            version INTEGER NOT NULL,
            changed_seq INTEGER NOT NULL,
            updated_at TEXT NOT NULL,
            updated_by TEXT NOT NULL,
            last_change TEXT NOT NULL
        )""")
    # One open incident per dedup key, enforced by the database, not by app code.
    db.execute("""CREATE UNIQUE INDEX incidents_open_dedup ON incidents(dedup_key)
                  WHERE dedup_key IS NOT NULL AND state IN ('open', 'acknowledged')""")
    db.execute("CREATE INDEX incidents_state ON incidents(state)")
    db.execute("CREATE INDEX incidents_changed ON incidents(changed_seq)")
    db.execute("""
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            incident_id INTEGER NOT NULL REFERENCES incidents(id),
            version INTEGER NOT NULL,
            at TEXT NOT NULL,
            account TEXT NOT NULL,
            name TEXT,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE
        )""")
    db.execute("CREATE INDEX events_incident ON events(incident_id, id)")
    for verb in ("UPDATE", "DELETE"):
        db.execute(f"""CREATE TRIGGER events_no_{verb.lower()} BEFORE {verb} ON events
                       BEGIN SELECT RAISE(ABORT, 'events are append-only'); END""")
    db["handoffs"].create(
        {"id": int, "incident_id": int, "event_id": int, "from_level": str, "to_level": str,
         "trigger": str, "reason": str, "fields": str},
        pk="id", foreign_keys=[("incident_id", "incidents", "id"), ("event_id", "events", "id")])
    db["handoffs"].create_index(["incident_id"])
    db["checklist_ticks"].create(
        {"incident_id": int, "checklist": str, "item": str, "event_id": int},
        pk=("incident_id", "checklist", "item"),
        foreign_keys=[("incident_id", "incidents", "id"), ("event_id", "events", "id")])
    db["reviews"].create(
        {"incident_id": int, "event_id": int, "fields": str}, pk="incident_id",
        foreign_keys=[("incident_id", "incidents", "id"), ("event_id", "events", "id")])
    db["follow_ups"].create(
        {"id": int, "incident_id": int, "kind": str, "description": str, "owner": str,
         "due": str, "event_id": int, "done_event_id": int},
        pk="id", foreign_keys=[("incident_id", "incidents", "id"), ("event_id", "events", "id")])
    db["follow_ups"].create_index(["incident_id"])
    # An automatic notice (escalation due, SLA breached) is recorded once per deadline,
    # however many dashboards see it pass.
    db["notices"].create(
        {"incident_id": int, "clock": str, "due_at": str, "status": str, "event_id": int},
        pk=("incident_id", "clock", "due_at", "status"),
        foreign_keys=[("incident_id", "incidents", "id")])


def _v2(db: sqlite_utils.Database) -> None:
    """Find an alert's earlier incidents by dedup key without scanning the table
    (the unique index covers open incidents only)."""
    db.execute("CREATE INDEX incidents_dedup_key ON incidents(dedup_key) "
               "WHERE dedup_key IS NOT NULL")


def _select_as_of(version: int) -> str:
    """SELECT_INCIDENT as a file at `version` can answer it: incident columns added by a
    later migration (ADDED_BY) read NULL."""
    added = {column: MIGRATIONS.index(step) + 1 for column, step in ADDED_BY.items()}
    columns = [f"NULL AS {c}" if added.get(c, 0) > version else c
               for c in INCIDENT_COLUMNS]
    return f"SELECT {', '.join(columns)} FROM incidents"


def _v3(db: sqlite_utils.Database) -> None:
    """Each incident's SLA schedule beside it, so the queue's worst rows are one
    `ORDER BY … LIMIT` away and the dashboard never needs every incident's clocks."""
    from sladeck.policy import parse_policy

    conn = db.conn
    _add_missing_columns(conn)
    policies = {pid: parse_policy(source, f"stored policy {pid}")
                for pid, source in conn.execute("SELECT id, source FROM policies")}
    after = 0
    while True:
        rows = conn.execute(f"{_select_as_of(3)} WHERE id > ? ORDER BY id LIMIT 2000",
                            (after,)).fetchall()
        if not rows:
            break
        incidents = [incident_from_row(row) for row in rows]
        conn.executemany(
            f"UPDATE incidents SET {', '.join(f'{c} = ?' for c in SLA_COLUMNS)} WHERE id = ?",
            [(*sla_values(i, policies[i.policy_id]), i.id) for i in incidents])
        after = incidents[-1].id


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Add the incident and schedule columns of today's rows that the table lacks (the
    steps below read and write rows as `rows` declares them now)."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(incidents)")}
    for column in ("first_acknowledged_at", *SLA_COLUMNS):
        if column not in have:
            kind = "INTEGER" if column.startswith("sla_") and not column.endswith("_kind") \
                else "TEXT"
            conn.execute(f"ALTER TABLE incidents ADD COLUMN {column} {kind}")


# What the first frame reads of every queued incident: its state, severity and schedule.
_QUEUE_INDEX = ("state", "severity", "sla_breached", "sla_active", "sla_breach_at",
                "sla_due_at", "sla_warn_at", "sla_ack_at")


def _v4(db: sqlite_utils.Database) -> None:
    """The queue's columns in one index, state first: the first frame's worst rows and
    its counts are read from the index alone, not from every open incident's row
    (spread among all the closed ones). It replaces the index on state alone."""
    db.execute(f"CREATE INDEX incidents_queue ON incidents({', '.join(_QUEUE_INDEX)})")
    db.execute("DROP INDEX incidents_state")


def _events_by_time(db: sqlite_utils.Database) -> None:
    """Events by time, with their kind and incident: what happened in a window (the
    board's last 24 hours) is read from this index alone, whatever the log's length."""
    db.execute("CREATE INDEX IF NOT EXISTS events_time ON events(at, kind, incident_id)")


def _source_cleared(db: sqlite_utils.Database) -> None:
    """When an alert's source last said it ended (`source_cleared` events), so the queue
    marks the row without reading its timeline."""
    db.execute("ALTER TABLE incidents ADD COLUMN source_cleared_at TEXT")


def _notice_keys(db: sqlite_utils.Database) -> None:
    """Every notice of SPEC §6 claimed once by its name (incident, kind, key), unique in
    the database: the deadline notices keep their claims (`CLOCK@DUE_AT`), and the
    arrivals and escalation pages of incidents open today count as told (they happened
    before notices were kept: an upgrade must not page a whole queue again)."""
    conn = db.conn
    conn.execute("""
        CREATE TABLE notice_claims (
            incident_id INTEGER NOT NULL REFERENCES incidents(id),
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            event_id INTEGER,
            PRIMARY KEY (incident_id, kind, key)
        )""")
    conn.execute("""INSERT INTO notice_claims (incident_id, kind, key, event_id)
                    SELECT incident_id,
                           CASE status WHEN 'due' THEN 'sla_due' ELSE 'sla_breached' END,
                           clock || '@' || due_at, event_id FROM notices""")
    conn.execute("DROP TABLE notices")
    conn.execute("ALTER TABLE notice_claims RENAME TO notices")
    active = "state IN ('open', 'acknowledged')"
    conn.execute(f"INSERT OR IGNORE INTO notices (incident_id, kind, key) "
                 f"SELECT id, 'announced', '' FROM incidents WHERE {active}")
    conn.execute(f"INSERT OR IGNORE INTO notices (incident_id, kind, key) "
                 f"SELECT id, 'paged', level || '@' || level_entered_at FROM incidents "
                 f"WHERE {active}")


def _clock_history(db: sqlite_utils.Database) -> None:
    """Every incident's clock history (SPEC §3) beside it, derived from its events, and
    what it changes of the incident row: the first acknowledgement, the schedule (a
    breach stays, the ACK headline) and the queue index that covers it."""
    from sladeck.policy import stored_policy

    conn = db.conn
    _add_missing_columns(conn)
    conn.execute("DROP TABLE IF EXISTS clock_cycles")  # derived: rebuilt whole from events
    conn.execute(CREATE_CYCLES)
    conn.execute("DROP INDEX IF EXISTS incidents_queue")
    conn.execute(f"CREATE INDEX incidents_queue ON incidents({', '.join(_QUEUE_INDEX)})")
    policies = {pid: stored_policy(source, f"stored policy {pid}")
                for pid, source in conn.execute("SELECT id, source FROM policies")}
    rows = {row[0]: incident_from_row(row) for row in conn.execute(SELECT_INCIDENT)}
    updates, cycles = histories_from_events(policies, rows, conn.execute(HISTORY_EVENTS))
    conn.executemany(
        f"UPDATE incidents SET first_acknowledged_at = ?, "
        f"{', '.join(f'{c} = ?' for c in SLA_COLUMNS)} WHERE id = ?", updates)
    from sladeck.store.bulk import insert_cycles

    insert_cycles(conn, cycles)


# The events `histories_from_events` reads, each incident's in chain order.
HISTORY_EVENTS = ("SELECT id, incident_id, version, at, account, name, kind, payload "
                  "FROM events ORDER BY incident_id, id")


def histories_from_events(policies: dict[int, Any], rows: dict[int, Any],
                          events: Iterable[tuple[Any, ...]]
                          ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """What `_clock_history` writes, worked out from the stored incidents (`rows`, by id)
    and HISTORY_EVENTS' rows: each incident's (first_acknowledged_at, *SLA_COLUMNS, id)
    update, and its clock_cycles rows (shared with `pg_schema._clock_history`)."""
    import json

    from sladeck.domain.history import clock_history
    from sladeck.domain.model import Event
    from sladeck.domain.timeline import apply_event

    updates: list[tuple[Any, ...]] = []
    cycles: list[tuple[Any, ...]] = []

    def settle(incident_id: int, events: list[Event]) -> None:
        stored = rows.get(incident_id)
        if stored is None or not events:
            return  # `verify` tells of an incident without events, or events without one
        replayed = None
        for e in events:
            policy = policies[e.payload["policy_id"] if e.kind == "opened"
                              else replayed.policy_id if replayed else stored.policy_id]
            replayed = apply_event(replayed, event_id=e.id, version=e.version, kind=e.kind,
                                   payload=e.payload, at=e.at, actor=e.actor,
                                   levels=policy.levels)
        history = clock_history(events, policies.__getitem__)
        first = replayed.first_acknowledged_at if replayed else None
        updates.append((_iso(first), *sla_values(stored, policies[stored.policy_id], history),
                        incident_id))
        cycles.extend(cycle_rows(incident_id, history))

    current, batch = None, []
    for eid, incident_id, version, at, account, name, kind, payload in events:
        if incident_id != current:
            if current is not None:
                settle(current, batch)
            current, batch = incident_id, []
        batch.append(Event(eid, incident_id, version, from_iso(at), account, name, kind,
                           json.loads(payload)))
    if current is not None:
        settle(current, batch)
    return updates, cycles


# The clock history, a derived record (`verify` recomputes it from the events).
CREATE_CYCLES = """
    CREATE TABLE clock_cycles (
        incident_id INTEGER NOT NULL REFERENCES incidents(id),
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        level TEXT NOT NULL,
        started_at TEXT NOT NULL,
        due_at TEXT NOT NULL,
        stopped_at TEXT,
        outcome TEXT,  -- met, late, breached; NULL while running (no CHECK: it halved
                       -- the speed of an import's inserts; `verify` checks every row)
        late_by_s INTEGER,
        PRIMARY KEY (incident_id, seq)
    ) WITHOUT ROWID"""

MIGRATIONS = (_v1, _v2, _v3, _v4, _events_by_time, _source_cleared, _notice_keys,
              _clock_history)
# Incident columns added after the first version, with the step that added each (the
# clock history's and schedule's columns are added by `_add_missing_columns` instead).
ADDED_BY = {"source_cleared_at": _source_cleared}
SCHEDULES_SINCE = 3  # the schema version that stores SLA schedules
HISTORY_SINCE = 5  # ... and clock histories
SCHEMA_VERSION = len(MIGRATIONS)
