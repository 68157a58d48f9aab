"""The database's schema: each migration step, in order, and the version it reaches.

`Store.migrate` runs the steps a file lacks, inside one `BEGIN IMMEDIATE` (concurrent
starters wait, one migrates). A new step is appended to MIGRATIONS, never edited in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sladeck.store.rows import SELECT_INCIDENT, SLA_COLUMNS, incident_from_row, sla_values

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
        rows = conn.execute(f"{SELECT_INCIDENT} WHERE id > ? ORDER BY id LIMIT 2000",
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


MIGRATIONS = (_v1, _v2, _v3, _v4)
SCHEDULES_SINCE = 3  # the schema version that stores SLA schedules
SCHEMA_VERSION = len(MIGRATIONS)
