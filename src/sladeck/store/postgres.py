"""The PostgreSQL store: `PgStore` (one connection: reads, the queue's reads, change
detection) and `PgTransaction` (one write transaction), the same port as `sqlite`.

Its methods mirror `sqlite.Store` and `sqlite.Transaction`, in the same order and with
the same names: porting a new SQLite method is writing the same SQL with `%s`
placeholders beside its twin. Rows are converted by `rows`, exactly as on SQLite.

Writes. Every write transaction is `BEGIN ISOLATION LEVEL READ COMMITTED` followed by
`pg_advisory_xact_lock(WRITE_LOCK)` (`pg_schema.lock_statements`), held until its COMMIT
or ROLLBACK: writers run one at a time, as SQLite's `BEGIN IMMEDIATE` makes them, so the
version checks, the next incident and event ids and the hash chain's head are read and
written by one transaction alone, on every host. READ COMMITTED is the right level under
that lock:
each statement sees everything committed before it, so every read made after the lock
was granted sees the previous writer's commit. REPEATABLE READ or SERIALIZABLE would
take their snapshot at the lock's own statement, before waiting, and then fail with
serialization errors a person would see. As one lock is the only one waited for first,
no two writers can deadlock. `lock_timeout` bounds the wait as SQLite's busy timeout:
it is `SET LOCAL` in each transaction that waits for a lock (a write, a migration, a
copy), so it holds on every connection, a reconnected one included, and reads, which wait
for no lock of sladeck's, are never cut short.

Round trips. A command pays one per statement, so the common ones are folded together
(simple-protocol statements, constants only): BEGIN, the lock timeout and the lock; the
NOTIFY and the COMMIT; the schema's version and the session's role at opening. A
transaction reads the chain's head once (`newest_event` remembers it).

Reads run in autocommit (no transaction left open); `snapshot` is one REPEATABLE READ
READ ONLY transaction for reads that must agree. A connection the server dropped (a
restart, `pg_terminate_backend`, a network cut) is reopened once before a read or
before a write begins, and said in one line (`on_reconnect`); a connection lost inside
a write rolls it back (the server does), and the person is told nothing was written.
Committed writes `NOTIFY` CHANNEL, which a dashboard's `PgWatch` listens to.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any

from sladeck.domain.chain import GENESIS, canonical_json, event_hash
from sladeck.domain.clocks import HEAD_SQL as _HEAD_SQL
from sladeck.domain.clocks import NEVER as _NEVER
from sladeck.domain.clocks import RISK_SQL as _RISK_SQL
from sladeck.domain.clocks import RISKS, to_us
from sladeck.domain.history import ClockCycle, clock_history
from sladeck.domain.model import (
    ACTIVE_STATES,
    Actor,
    ChecklistTick,
    Event,
    FollowUp,
    Handoff,
    Incident,
    IncidentDetail,
    Review,
    current_cycle,
    from_iso,
    to_iso,
)
from sladeck.domain.ports import ImportPlan
from sladeck.domain.queue import QueueItem
from sladeck.domain.standup import FollowUpEntry
from sladeck.errors import ReadOnly, Refused, StoreError
from sladeck.policy import Policy
from sladeck.store import bulk, pg_schema, reports
from sladeck.store.pg_import import psycopg  # imported without importlib.metadata
from sladeck.store.pg_schema import (
    CHANNEL,
    MIGRATE_LOCK,
    WRITE_LOCK,
    lock_statements,
)
from sladeck.store.rows import (
    CYCLE_COLUMNS,
    EVENT_COLUMNS,
    SELECT_CYCLES,
    SELECT_INCIDENT,
    SELECT_ITEM,
    WRITTEN_COLUMNS,
    cycle_from_row,
    cycle_rows,
    event_from_row,
    incident_from_row,
    incident_row,
    incident_rows,
    item_from_row,
)
from sladeck.store.urls import display_url

pgerrors = psycopg.errors
BackendError = psycopg.Error
CONNECT_TIMEOUT_S = 10
FEW_CYCLES = 32  # clock_cycles rows inserted by one INSERT rather than COPY
_OPEN_STATES = "state IN ('open', 'acknowledged')"  # matches incidents_open_dedup's WHERE
_RISK = _RISK_SQL.replace(":now", "%(now)s").replace(":never", "%(never)s")
_HEAD = _HEAD_SQL.replace(":now", "%(now)s").replace(":never", "%(never)s").replace(
    "min(", "least(")  # SQLite's scalar min: both sides are coalesced, so no NULL differs


def _say(line: str) -> None:
    with suppress(OSError, ValueError):
        print(f"sladeck: {line}", file=sys.stderr, flush=True)


def plain_pg_error(exc: psycopg.Error, where: str) -> StoreError | None:
    """PostgreSQL's error as one line a person can act on (nothing was written), or
    None for one that is a bug."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, pgerrors.LockNotAvailable | pgerrors.QueryCanceled):
        return StoreError(f"cannot write {where}: another process kept it locked "
                          f"(PostgreSQL: {text}); try again")
    if isinstance(exc, pgerrors.InsufficientPrivilege):
        return StoreError(f"cannot use {where}: permission denied (PostgreSQL: {text}); "
                          f"ask its owner for the grants in the README")
    if isinstance(exc, pgerrors.ReadOnlySqlTransaction):
        return ReadOnly(f"cannot write {where}: the server is read-only (a standby?) "
                        f"(PostgreSQL: {text}); nothing was written")
    if isinstance(exc, pgerrors.DiskFull):
        return StoreError(f"cannot write {where}: the server's disk is full (PostgreSQL: "
                          f"{text}); nothing was written")
    if isinstance(exc, psycopg.OperationalError):
        return StoreError(f"cannot reach {where} (PostgreSQL: {text}); nothing was written; "
                          f"try again")
    return None


class PgStore:
    """One connection to a PostgreSQL database; one PgStore per thread.

    `expect` and `identity` exist for the port's callers (a file's identity on SQLite):
    a server has no file to replace, so both are None and `same_file` is always true.
    """

    errors = psycopg.Error  # what a read may raise: `refusal` turns it into one line

    def __init__(self, url: str, *, migrate: bool = True, expect: object = None,
                 on_reconnect: Callable[[str], None] | None = _say) -> None:
        self.url = url
        self.path = display_url(url)  # what messages name: the URL (it never holds a password)
        self.read_only = False
        self.identity: tuple[int, int] | None = None
        self.on_reconnect = on_reconnect
        self._in_snapshot = False
        self._account: str | None = None  # the session's role, read with the schema's version
        self.conn = self._connect()
        self._policies: dict[int, Policy] = {}
        self._policy_ids: dict[str, int] = {}
        if migrate:
            try:
                self.migrate()
            except psycopg.Error as exc:
                self.conn.close()
                raise self.refusal(exc) or StoreError(f"cannot open {self.path}: {exc}") \
                    from None

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                                   application_name="sladeck")
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {self.path}: "
                             f"{' '.join(str(exc).split())}") from None
        return conn

    def reconnect(self) -> None:
        """A new connection in place of one the server dropped; said in one line."""
        with suppress(Exception):
            self.conn.close()
        self.conn = self._connect()
        if self.on_reconnect is not None:
            self.on_reconnect(f"the connection to {self.path} was lost; reconnected")

    def _lost(self) -> bool:
        return self.conn.closed or self.conn.broken

    def file_identity(self) -> tuple[int, int] | None:
        return None

    def same_file(self) -> bool:
        return True

    def close(self) -> None:
        self.conn.close()

    def small_cache(self, kib: int = 256) -> None:
        """Nothing to tune: the server caches."""

    def account(self) -> str:
        """The role this connection logged in as: the recorded actor's account (read
        with the schema's version when the store opened; a reconnection logs in as the
        same role)."""
        if self._account is None:
            self._account = self._one("SELECT session_user")[0]
        return self._account

    # -- schema ---------------------------------------------------------------

    def schema_version(self) -> int:
        row = self._one("SELECT to_regclass('sladeck_schema') IS NOT NULL")
        if not row[0]:
            return 0
        return self._one("SELECT version FROM sladeck_schema")[0]

    def _opening_version(self) -> int:
        """`schema_version` and the session's role (`account`) in one round trip, for
        opening (autocommit: a missing table is an error that leaves nothing behind)."""
        try:
            rows = self._rows("SELECT version, session_user FROM sladeck_schema")
        except pgerrors.UndefinedTable:
            return 0
        if not rows:
            return 0
        self._account = rows[0][1]
        return rows[0][0]

    def migrate(self) -> None:
        """Bring the schema up to date under an advisory lock; starters wait, one migrates."""
        idle = self.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        current = self._opening_version() if idle else self.schema_version()
        if current == pg_schema.SCHEMA_VERSION:
            return
        with self.conn.transaction():
            self.conn.execute(lock_statements(MIGRATE_LOCK))
            current = self.schema_version()
            if current > pg_schema.SCHEMA_VERSION:
                raise StoreError(f"{self.path} was written by a newer sladeck "
                                 f"(schema {current}); upgrade sladeck")
            if current == 0:
                self.conn.execute("CREATE TABLE sladeck_schema (version INTEGER NOT NULL)")
                self.conn.execute("INSERT INTO sladeck_schema VALUES (0)")
            for number, step in pg_schema.STEPS:
                if number > current:
                    step(self.conn)
                    self.conn.execute("UPDATE sladeck_schema SET version = %s", (number,))

    def refusal(self, exc: BaseException) -> StoreError | None:
        return plain_pg_error(exc, self.path) if isinstance(exc, psycopg.Error) else None

    @contextmanager
    def _immediate(self) -> Iterator[PgTransaction]:
        try:
            self._begin()
        except psycopg.Error as exc:
            raise self.refusal(exc) or StoreError(f"cannot write {self.path}: {exc}") from None
        tx = PgTransaction(self)  # on the connection the transaction began on
        try:
            yield tx
        except BaseException as exc:
            if not self._lost():
                with suppress(psycopg.Error):
                    self.conn.execute("ROLLBACK")
            error = self.refusal(exc)
            if error is not None:
                raise error from None
            raise
        try:
            # NOTIFY is delivered at COMMIT: both in one round trip
            self.conn.execute(f"NOTIFY {CHANNEL}; COMMIT" if tx.wrote else "COMMIT")
        except psycopg.Error as exc:
            if self._lost():  # the COMMIT's answer never came: it may or may not have landed
                raise StoreError(f"the connection to {self.path} was lost while committing; "
                                 f"check with `sladeck show` before acting again") from None
            with suppress(psycopg.Error):
                self.conn.execute("ROLLBACK")
            raise self.refusal(exc) or StoreError(f"cannot write {self.path}: {exc}") from None

    def _begin(self) -> None:
        """BEGIN and take the write lock; a dropped connection is reopened once first
        (nothing was written on it)."""
        for attempt in (1, 2):
            if self._lost():
                self.reconnect()
            try:
                self.conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED; "
                                  + lock_statements(WRITE_LOCK))
                return
            except psycopg.OperationalError:
                if attempt == 2 or not self._lost():
                    if not self._lost():
                        with suppress(psycopg.Error):
                            self.conn.execute("ROLLBACK")
                    raise
            except psycopg.Error:
                with suppress(psycopg.Error):
                    self.conn.execute("ROLLBACK")
                raise

    @contextmanager
    def write(self, *, bulk: bool = False) -> Iterator[PgTransaction]:
        """One write transaction under the write lock, committed on success (`bulk`
        changes nothing here: the server sizes its own buffers)."""
        with self._immediate() as tx:
            yield tx

    # -- reads ----------------------------------------------------------------

    def _rows(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        """A read's rows; outside a transaction, a dropped connection is reopened once."""
        try:
            return self.conn.execute(sql, params).fetchall()
        except psycopg.OperationalError:
            if not self._lost() or self._in_snapshot:
                raise
            self.reconnect()
            return self.conn.execute(sql, params).fetchall()

    def _one(self, sql: str, params: Any = ()) -> tuple[Any, ...]:
        rows = self._rows(sql, params)
        return rows[0] if rows else ()

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Several reads that must agree: one REPEATABLE READ, READ ONLY transaction."""
        if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            yield
            return
        if self._lost():
            self.reconnect()
        self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        self._in_snapshot = True
        try:
            yield
        finally:
            self._in_snapshot = False
            if not self._lost():
                self.conn.execute("COMMIT")

    def data_version(self) -> int:
        """Moves whenever a write is committed: the chain's last event id (every change
        of an incident appends an event)."""
        return self._one("SELECT coalesce(max(id), 0) FROM events")[0]

    def last_seq(self) -> int:
        return self._one("SELECT coalesce(max(id), 0) FROM events")[0]

    def incident(self, incident_id: int) -> Incident | None:
        rows = self._rows(f"{SELECT_INCIDENT} WHERE id = %s", (incident_id,))
        return incident_from_row(rows[0]) if rows else None

    def clock_history(self, incident_id: int) -> tuple[ClockCycle, ...]:
        """The incident's stored clock history, in the order its cycles started."""
        return tuple(cycle_from_row(row)[1] for row in self._rows(
            f"{SELECT_CYCLES} WHERE incident_id = %s ORDER BY seq", (incident_id,)))

    def clock_histories(self, states: Iterable[str] | None = None
                        ) -> dict[int, tuple[ClockCycle, ...]]:
        """The stored clock history of every incident in `states` (every state when None)."""
        sql, params = SELECT_CYCLES, []
        if states is not None:
            sql += " WHERE incident_id IN (SELECT id FROM incidents WHERE state = ANY(%s))"
            params = [list(states)]
        out: dict[int, list[ClockCycle]] = {}
        for row in self._rows(sql + " ORDER BY incident_id, seq", params):
            incident_id, cycle = cycle_from_row(row)
            out.setdefault(incident_id, []).append(cycle)
        return {i: tuple(c) for i, c in out.items()}

    def incidents(self, states: Iterable[str] | None = ACTIVE_STATES, *,
                  severity: str | None = None, level: str | None = None) -> list[Incident]:
        where, params = [], []
        if states is not None:
            where.append("state = ANY(%s)")
            params.append(list(states))
        for column, value in (("severity", severity), ("level", level)):
            if value:
                where.append(f"{column} = %s")
                params.append(value)
        sql = SELECT_INCIDENT + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id"
        return [incident_from_row(row) for row in self._rows(sql, params)]

    def queue_items(self, states: Sequence[str], *, worst: int | None = None, now: int = 0,
                    severities: Sequence[str] = ()) -> list[QueueItem]:
        """`Store.queue_items`: the same order, evaluated by the server."""
        sql = f"{SELECT_ITEM} WHERE state = ANY(%(states)s)"
        params: dict[str, Any] = {"states": list(states)}
        if worst is not None:
            rank = "CASE severity " + " ".join(
                f"WHEN %(sev{n})s THEN {n}" for n in range(len(severities))) + " ELSE 99 END"
            order = f"ORDER BY {_RISK}, {rank}, {_HEAD}, id"
            sql = (f"{SELECT_ITEM} WHERE id IN (SELECT id FROM incidents "
                   f"WHERE state = ANY(%(states)s) {order} LIMIT %(worst)s) {order}")
            params.update({"now": now, "never": _NEVER, "worst": worst},
                          **{f"sev{n}": s for n, s in enumerate(severities)})
        return [item_from_row(row) for row in self._rows(sql, params)]

    def queue_counts(self, states: Sequence[str], now: int
                     ) -> tuple[dict[str, int], dict[str, int]]:
        by_severity: dict[str, int] = {}
        by_risk: dict[str, int] = {}
        for severity, risk, count in self._rows(
                f"SELECT severity, {_RISK} AS risk, count(*) FROM incidents "
                f"WHERE state = ANY(%(states)s) GROUP BY severity, risk",
                {"now": now, "never": _NEVER, "states": list(states)}):
            by_severity[severity] = by_severity.get(severity, 0) + count
            by_risk[RISKS[risk]] = by_risk.get(RISKS[risk], 0) + count
        return by_severity, by_risk

    def told_notices(self, incident_ids: Iterable[int]) -> set[tuple[int, str, str]]:
        """The (incident, kind, key) of every notice already claimed for `incident_ids`."""
        return {(i, k, key) for i, k, key in self._rows(
            "SELECT incident_id, kind, key FROM notices WHERE incident_id = ANY(%s)",
            (list(incident_ids),))}

    def changed_since(self, seq: int) -> list[QueueItem]:
        return [item_from_row(row) for row in self._rows(
            f"{SELECT_ITEM} WHERE changed_seq > %s ORDER BY id", (seq,))]

    def queue_items_by_id(self, ids: Iterable[int]) -> list[QueueItem]:
        return [item_from_row(row) for row in self._rows(
            f"{SELECT_ITEM} WHERE id = ANY(%s)", (list(ids),))]

    def queue_ids(self, states: Sequence[str], *, levels: Sequence[str] = (),
                  assignees: Sequence[str] | None = None, text: str = "") -> set[int]:
        """`Store.queue_ids`; the text is matched on `lower()` (the server's Unicode
        lower case, where SQLite's store uses Python's casefold)."""
        where = ["state = ANY(%(states)s)"]
        params: dict[str, Any] = {"states": list(states), "levels": list(levels),
                                  "assignees": list(assignees or ()), "text": text}
        if levels:
            where.append("level = ANY(%(levels)s)")
        if assignees is not None:
            where.append("coalesce(assignee, '') = ANY(%(assignees)s)")
        if text:
            where.append("strpos(lower('INC-' || id || ' ' || title || ' ' || coalesce(service, '') || ' ' "
                         "|| coalesce(assignee, '') || ' ' || severity || ' ' || level), "
                         "%(text)s) > 0")
        return {row[0] for row in self._rows(
            f"SELECT id FROM incidents WHERE {' AND '.join(where)}", params)}

    def events(self, incident_id: int | None = None, *, after: int = 0) -> list[Event]:
        sql = f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE id > %s"
        params: list[Any] = [after]
        if incident_id is not None:
            sql += " AND incident_id = %s"
            params.append(incident_id)
        return [event_from_row(row) for row in self._rows(sql + " ORDER BY id", params)]

    def iter_events(self, batch: int = 5000) -> Iterator[Event]:
        after = 0
        while True:
            rows = self._rows(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events "
                              "WHERE id > %s ORDER BY id LIMIT %s", (after, batch))
            if not rows:
                return
            chunk = [event_from_row(row) for row in rows]
            yield from chunk
            after = chunk[-1].id

    def detail(self, incident_id: int) -> IncidentDetail | None:
        with self.snapshot():
            return self._detail(incident_id)

    def _detail(self, incident_id: int) -> IncidentDetail | None:
        incident = self.incident(incident_id)
        if incident is None:
            return None
        events = self.events(incident_id)
        by_id = {e.id: e for e in events}
        handoffs = tuple(
            Handoff(r[0], incident_id, r[1], by_id[r[1]].at, by_id[r[1]].actor.display, r[2],
                    r[3], r[4], r[5] or "", json.loads(r[6]))
            for r in self._rows(
                'SELECT id, event_id, from_level, to_level, "trigger", reason, fields '
                "FROM handoffs WHERE incident_id = %s ORDER BY id", (incident_id,)))
        ticks = tuple(
            ChecklistTick(r[0], r[1], by_id[r[2]].at, by_id[r[2]].actor.display, r[2])
            for r in self._rows(
                "SELECT checklist, item, event_id FROM checklist_ticks WHERE incident_id = %s "
                "ORDER BY event_id", (incident_id,)))
        row = self._one("SELECT event_id, fields FROM reviews WHERE incident_id = %s",
                        (incident_id,))
        review = Review(incident_id, by_id[row[0]].at, by_id[row[0]].actor.display,
                        json.loads(row[1]), row[0]) if row else None
        follow_ups = tuple(
            FollowUp(r[0], incident_id, r[1], r[2], r[3], r[4], by_id[r[5]].at,
                     by_id[r[6]].at if r[6] else None,
                     by_id[r[6]].actor.display if r[6] else None)
            for r in self._rows(
                "SELECT id, kind, description, owner, due, event_id, done_event_id "
                "FROM follow_ups WHERE incident_id = %s ORDER BY id", (incident_id,)))
        return current_cycle(IncidentDetail(incident, tuple(events), handoffs, ticks, review,
                                            follow_ups,
                                            clock_history=self.clock_history(incident_id)))

    def policy(self, policy_id: int) -> Policy:
        if policy_id not in self._policies:
            from sladeck.policy import stored_policy

            row = self._one("SELECT source FROM policies WHERE id = %s", (policy_id,))
            if not row:
                raise StoreError(f"{self.path}: policy {policy_id} is missing")
            self._policies[policy_id] = stored_policy(row[0], f"stored policy {policy_id}")
        return self._policies[policy_id]

    def adopt(self, policy: Policy) -> None:
        row = self._one("SELECT id FROM policies WHERE digest = %s", (policy.digest,))
        if row:
            self.remember_policy(row[0], policy)

    def remember_policy(self, policy_id: int, policy: Policy) -> None:
        self._policies[policy_id] = policy
        self._policy_ids[policy.digest] = policy_id

    # -- the stand-up: the day's activity, follow-ups across incidents, finished ones --

    def activity(self, since: datetime, until: datetime,
                 kinds: Sequence[str] = ()) -> dict[str, int]:
        """`Store.activity`: read from the events' time index and the queue's index."""
        where = "at >= %(since)s AND at < %(until)s"
        params: dict[str, Any] = {"since": to_iso(since), "until": to_iso(until),
                                  "since_us": to_us(since), "until_us": to_us(until),
                                  "kinds": list(kinds)}
        if kinds:
            where += " AND kind = ANY(%(kinds)s)"
        with self.snapshot():
            counts = dict(self._rows(
                f"SELECT kind, count(DISTINCT incident_id) FROM events WHERE {where} "
                "GROUP BY kind", params))
            if not kinds or "sla_breached" in kinds:
                breached = self._one(
                    "SELECT count(*) FROM (SELECT incident_id FROM events WHERE at >= "
                    "%(since)s AND at < %(until)s AND kind = 'sla_breached' "
                    f"UNION SELECT id FROM incidents WHERE {_OPEN_STATES} AND sla_breach_at "
                    ">= %(since_us)s AND sla_breach_at < %(until_us)s) AS told", params)[0]
                if breached:
                    counts["sla_breached"] = breached
        return counts

    def follow_up_entries(self, *, include_done: bool = False) -> list[FollowUpEntry]:
        """`Store.follow_up_entries`."""
        rows = self._rows(
            "SELECT f.id, f.incident_id, f.kind, f.description, f.owner, f.due, a.at, d.at, "
            "d.account, d.name, i.title, i.severity, i.state FROM follow_ups f "
            "JOIN incidents i ON i.id = f.incident_id JOIN events a ON a.id = f.event_id "
            "LEFT JOIN events d ON d.id = f.done_event_id"
            + ("" if include_done else " WHERE f.done_event_id IS NULL") + " ORDER BY f.id")
        return [FollowUpEntry(FollowUp(r[0], r[1], r[2], r[3], r[4], r[5], from_iso(r[6]),
                                       from_iso(r[7]) if r[7] else None,
                                       Actor(r[8], r[9]).display if r[7] else None),
                              r[10], r[11], r[12]) for r in rows]

    def finished_incidents(self, states: Sequence[str], *, limit: int,
                           before_id: int | None = None) -> list[Incident]:
        """`Store.finished_incidents`: one page, newest id first."""
        where = "state = ANY(%(states)s)"
        params: dict[str, Any] = {"limit": limit, "states": list(states)}
        if before_id is not None:
            where += " AND id < %(before)s"
            params["before"] = before_id
        return [incident_from_row(row) for row in self._rows(
            f"{SELECT_INCIDENT} WHERE {where} ORDER BY id DESC LIMIT %(limit)s", params)]

    # -- reports (SPEC §11): the same SQL as SQLite's, in PostgreSQL's spellings --------

    def _report(self, query: Callable[..., Any], *args: Any) -> list[tuple[Any, ...]]:
        """One query of store/reports.py in the POSTGRES dialect, read whole (no
        transaction left open); a dropped connection is reopened once first."""
        if self._lost():
            self.reconnect()
        return list(query(self.conn, *args, reports.POSTGRES))

    def report_cohort(self, by: str, since: str, until: str) -> Iterator[tuple[Any, ...]]:
        return iter(self._report(reports.cohort, by, since, until))

    def report_events(self, since: str, until: str) -> Iterator[tuple[Any, ...]]:
        return iter(self._report(reports.incident_events, since, until))

    def report_escalations(self, by: str, since: str, until: str) -> list[tuple[Any, ...]]:
        return self._report(reports.escalations, by, since, until)

    def report_follow_ups(self, by: str, since: str, until: str, today: str
                          ) -> list[tuple[Any, ...]]:
        return self._report(reports.follow_ups, by, since, until, today)

    def report_compliance(self, by: str, since: str, until: str) -> list[tuple[Any, ...]]:
        return self._report(reports.compliance, by, since, until)

    def report_daily(self, since: str, until: str) -> list[tuple[str, int]]:
        return self._report(reports.daily_opened, since, until)

    def digest_events(self, since: str, until: str) -> list[tuple[Any, ...]]:
        return self._report(reports.digest_events, since, until)

    def breach_candidates(self, since: str, until: str, since_us: int, until_us: int
                          ) -> list[Incident]:
        return [incident_from_row(row) for row in reports.POSTGRES.run(
            self.conn, f"{SELECT_INCIDENT} WHERE id IN ({reports.BREACH_CANDIDATES}) ORDER BY id",
            {"since": since, "until": until, "since_us": since_us, "until_us": until_us}
        ).fetchall()]

    def follow_ups_due(self, through: str) -> list[tuple[Any, ...]]:
        return self._report(reports.follow_ups_due, through)

    def counts(self) -> dict[str, int]:
        return dict(self._rows("SELECT state, count(*) FROM incidents GROUP BY state"))

    def integrity_check(self) -> str:
        """The server keeps its own pages whole (checksums, WAL): what sladeck can
        check is the chain and the rows, which `verify` does."""
        self._one("SELECT 1")
        return "ok"

    def backup(self, dest: str | os.PathLike[str]) -> None:
        raise StoreError(f"backup copies SQLite files; for {self.path} use the server's "
                         f"own tool: pg_dump --format=custom --file={os.fspath(dest)} "
                         f"'{self.path}' (pg_restore puts it back)")

    # -- a whole database, row for row (`sladeck migrate --to`) -----------------------

    def is_empty(self) -> bool:
        return not self._one("SELECT EXISTS (SELECT 1 FROM policies) "
                             "OR EXISTS (SELECT 1 FROM incidents)")[0]

    def listen(self) -> PgWatch:
        """A watch on commits (LISTEN CHANNEL) on a connection of its own."""
        return PgWatch(self.url)


class PgWatch:
    """Commits made anywhere, as NOTIFYs on a connection of its own: `fd` turns readable
    when one arrives; `read()` says whether any did (and empties the queue). It looks
    like `tui.watch.DatabaseWatch` so `LiveUpdates` uses either; `broken` once the
    server dropped it (the dashboard polls from then on)."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                                    application_name="sladeck-listen")
        self.conn.execute(f"LISTEN {CHANNEL}")
        self.fd = self.conn.pgconn.socket
        self.broken = False

    def read(self) -> bool:
        pgconn = self.conn.pgconn
        try:
            pgconn.consume_input()
        except psycopg.Error:
            self.broken = True
            return True
        seen = False
        while pgconn.notifies() is not None:
            seen = True
        if pgconn.status != psycopg.pq.ConnStatus.OK:
            self.broken = True
            return True
        return seen

    def close(self) -> None:
        with suppress(Exception):
            self.conn.close()


class PgTransaction:
    """Writes inside one transaction holding the write lock; from `PgStore.write()`."""

    def __init__(self, store: PgStore) -> None:
        self.store = store
        self.conn = store.conn
        self._last: tuple[int, str] | None = None  # (id, hash) of the chain's last event
        self.wrote = False  # an event or a notice was written: tell the listeners

    def _rows(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()

    def incident(self, incident_id: int) -> Incident | None:
        rows = self._rows(f"{SELECT_INCIDENT} WHERE id = %s", (incident_id,))
        return incident_from_row(rows[0]) if rows else None

    def open_by_dedup(self, key: str) -> Incident | None:
        rows = self._rows(f"{SELECT_INCIDENT} WHERE dedup_key = %s AND {_OPEN_STATES}", (key,))
        return incident_from_row(rows[0]) if rows else None

    def latest_by_dedup(self, key: str) -> Incident | None:
        rows = self._rows(f"{SELECT_INCIDENT} WHERE dedup_key = %s ORDER BY id DESC LIMIT 1",
                          (key,))
        return incident_from_row(rows[0]) if rows else None

    def open_by_dedup_keys(self, keys: Iterable[str]) -> dict[str, Incident]:
        rows = self._rows(f"{SELECT_INCIDENT} WHERE dedup_key = ANY(%s) AND {_OPEN_STATES}",
                          (list(keys),))
        return {i.dedup_key: i for i in map(incident_from_row, rows) if i.dedup_key is not None}

    def latest_by_dedup_keys(self, keys: Iterable[str]) -> dict[str, Incident]:
        rows = self._rows(f"{SELECT_INCIDENT} WHERE id IN (SELECT max(id) FROM incidents "
                          "WHERE dedup_key = ANY(%s) GROUP BY dedup_key)", (list(keys),))
        return {i.dedup_key: i for i in map(incident_from_row, rows) if i.dedup_key is not None}

    def last_events_at(self, incident_ids: Iterable[int]) -> dict[int, datetime]:
        rows = self._rows("SELECT incident_id, max(at) FROM events WHERE incident_id = ANY(%s) "
                          "GROUP BY incident_id", (list(incident_ids),))
        return {incident_id: from_iso(at) for incident_id, at in rows if at}

    def events_after(self, incident_id: int, version: int) -> list[Event]:
        rows = self._rows(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE incident_id = %s "
                          "AND version > %s ORDER BY id", (incident_id, version))
        return [event_from_row(r) for r in rows]

    def newest_event(self) -> Event | None:
        """The last event written (by id: one step down the primary key); it is the
        chain's head for `next_event_id` too (the write lock keeps it so)."""
        rows = self._rows(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events "
                          "ORDER BY id DESC LIMIT 1")
        event = event_from_row(rows[0]) if rows else None
        self._last = (event.id, event.hash) if event is not None else (0, GENESIS)
        return event

    def last_event_at(self, incident_id: int) -> datetime | None:
        rows = self._rows("SELECT max(at) FROM events WHERE incident_id = %s", (incident_id,))
        return from_iso(rows[0][0]) if rows and rows[0][0] else None

    def policy_id(self, policy: Policy, now: datetime) -> int:
        known = self.store._policy_ids.get(policy.digest)
        if known is not None:
            return known
        rows = self._rows("SELECT id FROM policies WHERE digest = %s", (policy.digest,))
        if rows:
            policy_id = rows[0][0]
        else:
            policy_id = self._rows(
                "INSERT INTO policies (digest, name, source, added_at) VALUES (%s, %s, %s, %s) "
                "RETURNING id", (policy.digest, policy.name, policy.source, to_iso(now)))[0][0]
        self.store.remember_policy(policy_id, policy)
        return policy_id

    def next_incident_id(self) -> int:
        return self._rows("SELECT coalesce(max(id), 0) + 1 FROM incidents")[0][0]

    def _write_row(self, sql: str, params: Sequence[Any], incident: Incident | None) -> int:
        try:
            return self.conn.execute(sql, params).rowcount
        except pgerrors.UniqueViolation as exc:
            if exc.diag.constraint_name == "incidents_open_dedup":
                key = repr(incident.dedup_key) if incident is not None else "of one of these"
                raise Refused(f"another open incident has dedup key {key}") from None
            raise

    def insert_incident(self, incident: Incident) -> None:
        row = incident_row(incident, self.store.policy(incident.policy_id))
        self._write_row(f"INSERT INTO incidents ({', '.join(WRITTEN_COLUMNS)}) "
                        f"VALUES ({', '.join(['%s'] * len(WRITTEN_COLUMNS))})",
                        [row[c] for c in WRITTEN_COLUMNS], incident)
        self.insert_cycle_rows(bulk.opening_cycles((incident,), self.store.policy))

    def insert_incidents(self, incidents: list[Incident]) -> None:
        self.insert_incident_rows(incident_rows(incidents, self.store.policy))
        self.insert_cycle_rows(bulk.opening_cycles(incidents, self.store.policy))

    def _histories(self, incident_ids: Iterable[int]) -> dict[int, tuple[ClockCycle, ...]]:
        """`Transaction._histories`: each incident's clock history from its events as they
        stand in this transaction, stored afresh in clock_cycles."""
        ids = list(incident_ids)
        events: dict[int, list[Event]] = {i: [] for i in ids}
        for row in self._rows(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events "
                              "WHERE incident_id = ANY(%s) ORDER BY id", (ids,)):
            event = event_from_row(row)
            events[event.incident_id].append(event)
        histories = {i: h for i, e in events.items()
                     if e and (h := clock_history(e, self.store.policy))}
        self.conn.execute("DELETE FROM clock_cycles WHERE incident_id = ANY(%s)", (ids,))
        self.insert_cycle_rows(row for i, h in histories.items() for row in cycle_rows(i, h))
        return histories

    def insert_cycle_rows(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """clock_cycles rows (`rows.cycle_rows`): none, no statement; a few (one
        incident's), one INSERT (one round trip); more, through COPY (two)."""
        rows = list(rows)
        if not rows:
            return
        columns = ", ".join(CYCLE_COLUMNS)
        if len(rows) <= FEW_CYCLES:
            one = f"({', '.join(['%s'] * len(CYCLE_COLUMNS))})"
            self.conn.execute(f"INSERT INTO clock_cycles ({columns}) VALUES "
                              + ", ".join([one] * len(rows)), [v for r in rows for v in r])
            return
        with self.conn.cursor() as cursor, cursor.copy(
                f"COPY clock_cycles ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def insert_incident_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """Rows in WRITTEN_COLUMNS' order, through COPY (one round trip for them all)."""
        if not rows:
            return
        try:
            with self.conn.cursor() as cursor, cursor.copy(
                    f"COPY incidents ({', '.join(WRITTEN_COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        except pgerrors.UniqueViolation as exc:
            if exc.diag.constraint_name == "incidents_open_dedup":
                raise Refused("another open incident has the dedup key of one of these "
                              "incidents") from None
            raise

    def update_incidents(self, changes: list[tuple[Incident, int]]) -> None:
        if not changes:
            return
        columns = [c for c in WRITTEN_COLUMNS if c != "id"]
        histories = self._histories(incident.id for incident, _ in changes)
        rows = incident_rows((incident for incident, _ in changes), self.store.policy,
                             histories)
        changed = 0
        with self.conn.cursor() as cursor:
            for row, (_, version) in zip(rows, changes, strict=True):
                cursor.execute(f"UPDATE incidents SET {', '.join(f'{c} = %s' for c in columns)} "
                               "WHERE id = %s AND version = %s", (*row[1:], row[0], version))
                changed += cursor.rowcount
        if changed != len(changes):
            raise StoreError("incidents changed during the transaction")

    def update_incident(self, incident: Incident, expected_version: int) -> None:
        """Store the incident's new state (after its event is appended: its clock
        history and schedule are worked out from the events)."""
        history = self._histories((incident.id,)).get(incident.id)
        row = incident_row(incident, self.store.policy(incident.policy_id), history)
        columns = [c for c in WRITTEN_COLUMNS if c != "id"]
        count = self._write_row(
            f"UPDATE incidents SET {', '.join(f'{c} = %s' for c in columns)} "
            "WHERE id = %s AND version = %s",
            [row[c] for c in columns] + [incident.id, expected_version], incident)
        if count != 1:
            raise StoreError(f"INC-{incident.id} changed during the transaction")

    def next_event_id(self) -> int:
        if self._last is None:
            rows = self._rows("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1")
            self._last = (rows[0][0], rows[0][1]) if rows else (0, GENESIS)
        return self._last[0] + 1

    def append_event(self, incident_id: int, version: int, at: datetime, actor: Actor,
                     kind: str, payload: dict[str, Any]) -> Event:
        """Append one event to the hash chain (the write lock keeps the chain linear)."""
        event_id = self.next_event_id()
        assert self._last is not None
        prev_hash = self._last[1]
        at_text, payload_text = to_iso(at), canonical_json(payload)
        digest = event_hash(prev_hash, event_id, incident_id, version, at_text, actor.account,
                            actor.name, kind, payload_text)
        self.conn.execute(
            f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "
            f"VALUES ({', '.join(['%s'] * len(EVENT_COLUMNS))})",
            (event_id, incident_id, version, at_text, actor.account, actor.name, kind,
             payload_text, prev_hash, digest))
        self._last = (event_id, digest)
        self.wrote = True
        return Event(event_id, incident_id, version, at, actor.account, actor.name, kind,
                     json.loads(payload_text), prev_hash, digest)

    def append_events(self, actor: Actor, events: Iterable[bulk.EventItem]
                      ) -> list[tuple[str, str]]:
        """`Transaction.append_events`, through COPY."""
        self.next_event_id()
        assert self._last is not None
        rows, links, self._last = bulk.event_rows(self._last, actor, events)
        if rows:
            with self.conn.cursor() as cursor, cursor.copy(
                    f"COPY events ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            self.wrote = True
        return links

    def write_import(self, plan: ImportPlan) -> list[tuple[str, str]]:
        return bulk.write_import(self, plan)

    def add_handoff(self, incident_id: int, event_id: int, from_level: str, to_level: str,
                    trigger: str, reason: str, fields: dict[str, str]) -> None:
        self.conn.execute(
            'INSERT INTO handoffs (incident_id, event_id, from_level, to_level, "trigger", '
            "reason, fields) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (incident_id, event_id, from_level, to_level, trigger, reason, canonical_json(fields)))

    def ticks(self, incident_id: int) -> set[tuple[str, str]]:
        return {(c, i) for c, i in self._rows(
            "SELECT checklist, item FROM checklist_ticks WHERE incident_id = %s", (incident_id,))}

    def set_tick(self, incident_id: int, checklist: str, item: str, event_id: int | None) -> None:
        if event_id is None:
            self.conn.execute("DELETE FROM checklist_ticks WHERE incident_id = %s AND "
                              "checklist = %s AND item = %s", (incident_id, checklist, item))
        else:
            self.conn.execute(
                "INSERT INTO checklist_ticks VALUES (%s, %s, %s, %s) ON CONFLICT "
                "(incident_id, checklist, item) DO UPDATE SET event_id = EXCLUDED.event_id",
                (incident_id, checklist, item, event_id))

    def add_review(self, incident_id: int, event_id: int, fields: dict[str, str]) -> None:
        self.conn.execute(
            "INSERT INTO reviews VALUES (%s, %s, %s) ON CONFLICT (incident_id) DO UPDATE "
            "SET event_id = EXCLUDED.event_id, fields = EXCLUDED.fields",
            (incident_id, event_id, canonical_json(fields)))

    def add_follow_up(self, incident_id: int, event_id: int, kind: str, description: str,
                      owner: str, due: str | None) -> int:
        return self._rows(
            "INSERT INTO follow_ups (incident_id, kind, description, owner, due, event_id) "
            "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            (incident_id, kind, description, owner, due, event_id))[0][0]

    def follow_up(self, follow_up_id: int) -> tuple[int, int | None] | None:
        rows = self._rows("SELECT incident_id, done_event_id FROM follow_ups WHERE id = %s",
                          (follow_up_id,))
        return (rows[0][0], rows[0][1]) if rows else None

    def finish_follow_up(self, follow_up_id: int, event_id: int) -> None:
        self.conn.execute("UPDATE follow_ups SET done_event_id = %s WHERE id = %s",
                          (event_id, follow_up_id))

    def claim_notice(self, incident_id: int, kind: str, key: str) -> bool:
        """True for the one transaction, on any host, that inserts the notice first (the
        primary key decides: `ON CONFLICT DO NOTHING`)."""
        count = self.conn.execute(
            "INSERT INTO notices (incident_id, kind, key) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING", (incident_id, kind, key)).rowcount
        if count == 1:
            self.wrote = True
        return count == 1

    def link_notice(self, incident_id: int, kind: str, key: str, event_id: int) -> None:
        self.conn.execute("UPDATE notices SET event_id = %s WHERE incident_id = %s AND "
                          "kind = %s AND key = %s", (event_id, incident_id, kind, key))
