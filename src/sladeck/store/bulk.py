"""The bulk write path: an import's rows and events, many to a statement.

`write_import` writes an `ImportPlan` through the transaction's own `insert_incident_rows`,
`append_events` and `update_incidents`, which are these functions over its connection.
Everything here runs inside the caller's `BEGIN IMMEDIATE`: a failure anywhere rolls the
whole import back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from itertools import chain
from typing import TYPE_CHECKING, Any

from sladeck.domain.chain import canonical_json, chain_hasher
from sladeck.domain.clocks import implied_history
from sladeck.domain.history import ClockCycle
from sladeck.domain.model import Actor, Incident, to_iso
from sladeck.domain.ports import ImportPlan, NewEvent, Opening
from sladeck.errors import Refused, StoreError
from sladeck.policy import Policy
from sladeck.store.rows import (
    CYCLE_COLUMNS,
    EVENT_COLUMNS,
    WRITTEN_COLUMNS,
    cycle_rows,
    incident_rows,
)

if TYPE_CHECKING:
    from sladeck.store.postgres import PgTransaction
    from sladeck.store.sqlite import Transaction

MULTI_ROW = 500  # rows per INSERT of `insert_incident_rows`
EventItem = tuple[int, int, int, str, str, dict[str, Any] | str]


def write_import(tx: Transaction | PgTransaction, plan: ImportPlan) -> list[tuple[str, str]]:
    """`ImportTransaction.write_import`: new incidents, then the events, then the
    incidents the import changed; returns each event's (prev_hash, hash)."""
    tx.insert_incident_rows(incident_rows(plan.new, tx.store.policy))
    tx.insert_cycle_rows(opening_cycles(plan.new, tx.store.policy))
    links = tx.append_events(plan.actor, event_items(plan.events))
    tx.update_incidents(plan.changed)
    return links


def opening_cycles(records: Iterable[Opening | Incident], policy_for: Callable[[int], Policy]
                   ) -> Iterator[tuple[Any, ...]]:
    """clock_cycles rows of new incidents as their state implies them (exact for an
    opening): worked out once per (policy, severity, level, state) and moved to each
    incident's instants; each distinct time formatted once."""
    templates: dict[tuple[Any, ...], tuple[datetime, tuple[ClockCycle, ...]]] = {}
    texts: dict[datetime, str] = {}

    def t(at: datetime) -> str:
        text = texts.get(at)
        if text is None:
            text = texts[at] = to_iso(at)
        return text

    for o in records:
        if isinstance(o, Incident) and (o.level_entered_at != o.opened_at or o.resolved_at
                                        or o.acknowledged_at):
            history = implied_history(o, policy_for(o.policy_id))  # changed since: exact
            yield from cycle_rows(o.id, history)
            continue
        key = (o.policy_id, o.severity, o.level)
        template = templates.get(key)
        if template is None:
            template = templates[key] = (o.opened_at, implied_history(
                o, policy_for(o.policy_id)))  # type: ignore[arg-type]
        by = o.opened_at - template[0]
        for seq, c in enumerate(template[1]):
            yield (o.id, seq, c.kind, c.level, t(c.started_at + by), t(c.due_at + by),
                   None if c.stopped_at is None else t(c.stopped_at + by), c.outcome,
                   c.late_by_s)


CYCLES_PER_INSERT = 100


def insert_cycles(conn: sqlite3.Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    """clock_cycles rows (`rows.cycle_rows`), CYCLES_PER_INSERT to a statement (an import
    writes ~5 per incident: one row per statement took twice as long)."""
    rows = list(rows)
    one = f"({', '.join('?' * len(CYCLE_COLUMNS))})"

    def sql(count: int) -> str:
        return f"INSERT INTO clock_cycles ({', '.join(CYCLE_COLUMNS)}) VALUES " + \
            ", ".join([one] * count)

    per = CYCLES_PER_INSERT
    whole = len(rows) - len(rows) % per
    flat = chain.from_iterable
    if whole:
        conn.executemany(sql(per), (tuple(flat(rows[start:start + per]))
                                    for start in range(0, whole, per)))
    if whole < len(rows):
        conn.execute(sql(len(rows) - whole), tuple(flat(rows[whole:])))


def event_items(events: Iterable[NewEvent]) -> Iterator[EventItem]:
    """Events as `append_events` takes them, each distinct time formatted once."""
    texts: dict[datetime, str] = {}
    for e in events:
        at = texts.get(e.at)
        if at is None:
            at = texts[e.at] = to_iso(e.at)
        yield e.id, e.incident_id, e.version, at, e.kind, e.payload


def insert_incident_rows(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Rows in WRITTEN_COLUMNS' order (`rows.incident_rows`), as multi-row INSERTs of up
    to MULTI_ROW rows each: SQLite evaluates the `state` CHECK's IN list through a
    temporary b-tree it builds once per statement, so one single-row INSERT per row
    rebuilt it every row (~2 µs, a quarter of what SQLite spent on each incident row)."""
    columns = len(WRITTEN_COLUMNS)
    per = max(1, min(MULTI_ROW, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // columns,
                     conn.getlimit(sqlite3.SQLITE_LIMIT_COMPOUND_SELECT)))
    one = f"({', '.join('?' * columns)})"

    def sql(count: int) -> str:
        return f"INSERT INTO incidents ({', '.join(WRITTEN_COLUMNS)}) VALUES " + \
            ", ".join([one] * count)

    whole = len(rows) - len(rows) % per
    flat = chain.from_iterable
    try:
        if whole:
            conn.executemany(sql(per), (tuple(flat(rows[start:start + per]))
                                        for start in range(0, whole, per)))
        if whole < len(rows):
            conn.execute(sql(len(rows) - whole), tuple(flat(rows[whole:])))
    except sqlite3.IntegrityError as exc:
        if "dedup_key" in str(exc):
            raise Refused("another open incident has the dedup key of one of these "
                          "incidents") from None
        raise


def append_events(conn: sqlite3.Connection, last: tuple[int, str], actor: Actor,
                  events: Iterable[EventItem]) -> tuple[list[tuple[str, str]], tuple[int, str]]:
    """Events by one actor after `last` (the chain's last (id, hash)), in one
    `executemany`: ([(prev_hash, hash)] of each, the new last). Each event's id must
    continue the chain, else StoreError; a payload is a dict or its canonical text."""
    rows, links, last = event_rows(last, actor, events)
    conn.executemany(f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "
                     f"VALUES ({', '.join('?' * len(EVENT_COLUMNS))})", rows)
    return links, last


def event_rows(last: tuple[int, str], actor: Actor, events: Iterable[EventItem]
               ) -> tuple[list[tuple[Any, ...]], list[tuple[str, str]], tuple[int, str]]:
    """The rows (in EVENT_COLUMNS' order) of events by one actor after `last`, linked
    into the hash chain, whichever database they go to: (rows, [(prev_hash, hash)] of
    each, the new last (id, hash)). Each event's id must continue the chain, else
    StoreError."""
    last_id, prev_hash = last
    account, name = actor.account, actor.name
    link = chain_hasher(account, name)
    rows, links = [], []
    for event_id, incident_id, version, at_text, kind, payload in events:
        last_id += 1
        if event_id != last_id:
            raise StoreError(f"event {event_id} does not continue the chain at {last_id}")
        payload_text = payload if type(payload) is str else canonical_json(payload)
        digest = link(prev_hash, event_id, incident_id, version, at_text, kind, payload_text)
        rows.append((event_id, incident_id, version, at_text, account, name, kind,
                     payload_text, prev_hash, digest))
        links.append((prev_hash, digest))
        prev_hash = digest
    return rows, links, (last_id, prev_hash)
