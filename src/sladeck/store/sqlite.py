"""The SQLite store: one connection (`Store`) and its write transaction (`Transaction`),
reads, the queue's ordered reads and change detection.

Every write runs inside `BEGIN IMMEDIATE` (a deferred `BEGIN` that reads then
writes fails at once with "database is locked" when another process committed in
between). Reads are fetched into lists so no read transaction outlives a call:
an open one would freeze `PRAGMA data_version` and stop WAL checkpoints.
Rows never leave the store: `rows` turns them into domain objects. `Store` is the
domain's `Storage` port and `Transaction` its `ImportTransaction` (`domain/ports.py`).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

from sladeck.domain.chain import GENESIS, canonical_json, event_hash
from sladeck.domain.clocks import BREACHED, DUE, OK, RISK_RANK, RISKS, WARNING, to_us
from sladeck.domain.clocks import HEAD_SQL as _HEAD_SQL
from sladeck.domain.clocks import NEVER as _NEVER
from sladeck.domain.clocks import RISK_SQL as _RISK_SQL
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
from sladeck.errors import Damaged, FileReplaced, ReadOnly, Refused, StoreError
from sladeck.permissions import is_shared_folder
from sladeck.policy import Policy
from sladeck.store import bulk, reports, schema
from sladeck.store.files import file_identity, prepare_file, read_only_reason
from sladeck.store.rows import (
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

BackendError = sqlite3.Error  # what a read may raise: `Store.refusal` turns it into one line
BUSY_TIMEOUT_MS = 30_000
BATCH = 500  # parameters per IN (...) lookup, well under SQLite's limit
BULK_CACHE_KIB = 32 * 1024  # page cache of a bulk write (`Store.write(bulk=True)`)

_OPEN_STATES = "state IN ('open', 'acknowledged')"  # matches incidents_open_dedup's WHERE


# One (risk, severity) class of the queue's order, worst first: the inner query orders
# from the queue index alone (only `worst` rows are read); ranges that hold the risk
# let SQLite seek to it (breached: flagged, or its breach instant passed).
_RISK_RANGE = {
    BREACHED: "(sla_breached = 1 OR (sla_breached = 0 AND sla_active IN (0, 1) "
              "AND sla_breach_at <= :now))",
    DUE: "sla_breached = 0 AND sla_active = 1",
    WARNING: "sla_breached = 0 AND sla_active = 1",
    OK: "1"}
_WORST_ORDER = f"ORDER BY {_HEAD_SQL}, id"
_WORST_SQL = (f"{SELECT_ITEM} WHERE id IN (SELECT id FROM incidents "
              "WHERE state IN ({states}) AND severity {severity} AND {risk} "
              f"AND {_RISK_SQL} = :risk {_WORST_ORDER} LIMIT :worst) {_WORST_ORDER}")


def _casefold(text: str | None) -> str:
    return text.casefold() if text else ""


def _markers(prefix: str, values: Sequence[Any]) -> str:
    return ", ".join(f":{prefix}{n}" for n in range(len(values)))


def _named(prefix: str, values: Sequence[Any]) -> dict[str, Any]:
    return {f"{prefix}{n}": v for n, v in enumerate(values)}


# SQLite's result codes people can act on, as one plain line each: (what, next step).
_PLAIN = {
    "SQLITE_FULL": ("the disk is full", "free space on its file system and try again"),
    "SQLITE_CORRUPT": ("the file is damaged", None),
    "SQLITE_NOTADB": ("it is not a sladeck database (or is damaged)", None),
    "SQLITE_READONLY": ("it is read-only", "use a copy you can write to act"),
    "SQLITE_IOERR": ("the disk reported an input/output error", "check the disk, then run "
                     "sladeck verify"),
    "SQLITE_CANTOPEN": ("it cannot be opened", "check the file and its folder exist and are "
                        "yours or your team's"),
    "SQLITE_PERM": ("permission denied", "check the file's owner and mode"),
    "SQLITE_BUSY": ("another process kept it locked", "try again"),
    "SQLITE_LOCKED": ("another process kept it locked", "try again"),
    "SQLITE_NOMEM": ("out of memory", "try again"),
    "SQLITE_PROTOCOL": ("another process kept it locked", "try again"),
}


def damaged_text(path: Path | str, what: str) -> str:
    return (f"{path}: {what}; sladeck will not write to it: check it with sladeck verify, "
            f"restore the latest backup, or rescue what is left with: "
            f"sqlite3 {path} .recover | sqlite3 recovered.db")


def plain_error(exc: sqlite3.Error, path: Path | str) -> StoreError | None:
    """SQLite's error as one line a person can act on (nothing was written), or None
    for one that is a bug (an integrity or programming error)."""
    base = "_".join((getattr(exc, "sqlite_errorname", None) or "").split("_")[:2])
    text = str(exc)
    if "malformed" in text:
        base = "SQLITE_CORRUPT"
    if base not in _PLAIN:
        return None
    what, step = _PLAIN[base]
    if base in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
        return Damaged(damaged_text(path, f"{what} (SQLite: {text})"))
    cls = ReadOnly if base == "SQLITE_READONLY" else StoreError
    return cls(f"cannot use {path}: {what} (SQLite: {text}); {step}")


class Store:
    """One connection to the database; one Store per thread.

    It remembers which file it opened (`identity`: device and inode) and refuses to
    write once the path names another file or none (a backup restored with `mv`, a
    file deleted): its connection would still write the old one. `expect` opens the
    same file another Store has open, or refuses (it never creates one).
    """

    _damaged: set[tuple[int, int]] = set()  # files SQLite called malformed in this process
    errors = sqlite3.Error  # what a read may raise (each backend's own: `refusal` tells it)

    def __init__(self, path: str | os.PathLike[str], *, migrate: bool = True,
                 expect: tuple[int, int] | None = None) -> None:
        self.path = Path(path)
        self.read_only = False
        self.identity: tuple[int, int] | None = None
        memory = str(path) == ":memory:"
        if expect is not None and self.file_identity() != expect:
            raise self._replaced()
        if not memory:
            self.read_only = prepare_file(self.path)
        try:
            if self.read_only:
                conn = self._connect_read_only()
            else:
                conn = sqlite3.connect(str(path), isolation_level=None,
                                       timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            raise plain_error(exc, self.path) or StoreError(f"cannot open {path}: {exc}") from None
        self.conn = conn
        if not memory:
            self.identity = self.file_identity()
        if expect is not None and self.identity != expect:
            conn.close()
            raise self._replaced()
        self._policies: dict[int, Policy] = {}
        self._policy_ids: dict[str, int] = {}
        if migrate:
            try:
                self.migrate()
            except sqlite3.DatabaseError as exc:
                conn.close()
                raise plain_error(exc, self.path) or StoreError(
                    f"cannot open {path}: {exc}") from None

    def _connect_read_only(self) -> sqlite3.Connection:
        """A read-only connection; `immutable` when no `-shm` exists and none can be made
        (an archived backup in a read-only folder, or on a read-only mount)."""
        from urllib.parse import quote

        real = self.path.resolve()
        uri = f"file:{quote(str(real))}?mode=ro"
        no_shm = not Path(f"{real}-shm").exists() and not os.access(real.parent,
                                                                     os.W_OK | os.X_OK)
        if no_shm or os.statvfs(real).f_flag & os.ST_RDONLY:
            uri += "&immutable=1"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None,
                               timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA schema_version").fetchone()  # fails here, not mid-command
        return conn

    def file_identity(self) -> tuple[int, int] | None:
        """(device, inode) of the file the path names now, or None if it names none."""
        return file_identity(self.path)

    def same_file(self) -> bool:
        """Whether the path still names the file this Store opened."""
        return self.identity is None or self.file_identity() == self.identity

    def _replaced(self) -> FileReplaced:
        if self.file_identity() is None:
            return FileReplaced(f"{self.path} was removed since it was opened; nothing was "
                                f"written (put it back, or reload to start afresh)")
        return FileReplaced(f"{self.path} was replaced by another file since it was opened "
                            f"(a backup restored?); nothing was written: reload to see the "
                            f"new file before acting")

    def close(self) -> None:
        self.conn.close()

    def small_cache(self, kib: int = 256) -> None:
        """A smaller page cache (SQLite's default is 2 MiB a connection) for a long-lived
        reader that reads most rows once: the OS caches the file anyway."""
        self.conn.execute(f"PRAGMA cache_size=-{int(kib)}")

    # -- schema ---------------------------------------------------------------

    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self) -> None:
        """Bring the schema up to date; concurrent starters wait, one migrates."""
        current = self.schema_version()
        if current == schema.SCHEMA_VERSION:
            return
        if current > schema.SCHEMA_VERSION:
            raise StoreError(f"{self.path} was written by a newer sladeck "
                             f"(schema {current}); upgrade sladeck")
        if self.read_only:
            raise ReadOnly(f"{self.path} is read-only ({read_only_reason(self.path)}) and was "
                           f"written by an older sladeck (schema {current}); copy it somewhere "
                           f"you can write and open the copy")
        with self._immediate():
            current = self.schema_version()
            if current > schema.SCHEMA_VERSION:
                raise StoreError(f"{self.path} was written by a newer sladeck "
                                 f"(schema {current}); upgrade sladeck")
            import sqlite_utils  # only migrations need it; keeps start-up fast

            db = sqlite_utils.Database(self.conn)
            for number, step in enumerate(schema.MIGRATIONS[current:], start=current + 1):
                step(db)
                self.conn.execute(f"PRAGMA user_version={number}")

    def refusal(self, exc: sqlite3.Error) -> StoreError | None:
        """`plain_error`, remembering a damaged file so no writer here touches it again."""
        error = plain_error(exc, self.path)
        if isinstance(error, Damaged) and self.identity is not None:
            Store._damaged.add(self.identity)
        return error

    @contextmanager
    def _immediate(self) -> Iterator[None]:
        if self.read_only:
            why = read_only_reason(self.path) or "it is read-only"
            raise ReadOnly(f"cannot write {self.path}: {why}; nothing was written (to act, "
                           f"copy it somewhere you can write)")
        if self.identity in Store._damaged:
            raise Damaged(damaged_text(self.path, "SQLite reported it malformed"))
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self.refusal(exc) or StoreError(f"cannot write {self.path}: {exc}") from None
        if not self.same_file():  # checked holding the write lock, before any write
            self.conn.execute("ROLLBACK")
            raise self._replaced()
        try:
            yield
        except BaseException as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            error = self.refusal(exc) if isinstance(exc, sqlite3.Error) else None
            if error is not None:
                raise error from None
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise self.refusal(exc) or StoreError(f"cannot write {self.path}: {exc}") from None

    @contextmanager
    def write(self, *, bulk: bool = False) -> Iterator[Transaction]:
        """One write transaction, begun with BEGIN IMMEDIATE, committed on success.

        `bulk` (an import of many rows) gives it a larger page cache, as before after:
        with the default 2 MiB, a transaction whose indexes outgrow it (the random
        `hash` index above all) spills pages to the WAL and reads them back. Pages are
        only allocated as used, and none of this touches how the commit is made."""
        if not bulk:
            with self._immediate():
                yield Transaction(self)
            return
        cache = self.conn.execute("PRAGMA cache_size").fetchone()[0]
        self.conn.execute(f"PRAGMA cache_size={-BULK_CACHE_KIB}")
        try:
            with self._immediate():
                yield Transaction(self)
        finally:
            self.conn.execute(f"PRAGMA cache_size={int(cache)}")

    # -- reads ----------------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Several reads that must agree with each other: one read transaction, ended
        before returning (a commit between two SELECTs could otherwise show an event
        without its handoff, or a row newer than the events read before it)."""
        if self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            if self.conn.in_transaction:
                self.conn.execute("COMMIT")

    def data_version(self) -> int:
        """Changes whenever another connection commits (about 4 µs a call)."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def last_seq(self) -> int:
        return self.conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]

    def incident(self, incident_id: int) -> Incident | None:
        row = self.conn.execute(f"{SELECT_INCIDENT} WHERE id = ?", (incident_id,)).fetchone()
        return incident_from_row(row) if row else None

    def clock_history(self, incident_id: int) -> tuple[ClockCycle, ...]:
        """The incident's stored clock history, in the order its cycles started."""
        return tuple(cycle_from_row(row)[1] for row in self.conn.execute(
            f"{SELECT_CYCLES} WHERE incident_id = ? ORDER BY seq", (incident_id,)).fetchall())

    def clock_histories(self, states: Iterable[str] | None = None
                        ) -> dict[int, tuple[ClockCycle, ...]]:
        """The stored clock history of every incident in `states` (every state when None)."""
        sql, params = SELECT_CYCLES, []
        if states is not None:
            states = list(states)
            sql += (" WHERE incident_id IN (SELECT id FROM incidents WHERE state IN "
                    f"({', '.join('?' * len(states))}))")
            params = states
        out: dict[int, list[ClockCycle]] = {}
        for row in self.conn.execute(sql + " ORDER BY incident_id, seq", params).fetchall():
            incident_id, cycle = cycle_from_row(row)
            out.setdefault(incident_id, []).append(cycle)
        return {i: tuple(c) for i, c in out.items()}

    def incidents(self, states: Iterable[str] | None = ACTIVE_STATES, *,
                  severity: str | None = None, level: str | None = None) -> list[Incident]:
        where, params = [], []
        if states is not None:
            states = tuple(states)
            where.append(f"state IN ({', '.join('?' * len(states))})")
            params.extend(states)
        for column, value in (("severity", severity), ("level", level)):
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        sql = SELECT_INCIDENT + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id"
        return [incident_from_row(row) for row in self.conn.execute(sql, params).fetchall()]

    def queue_items(self, states: Sequence[str], *, worst: int | None = None, now: int = 0,
                    severities: Sequence[str] = ()) -> list[QueueItem]:
        """What the dashboard's queue keeps of each incident in `states` (never all the
        columns). With `worst`, only that many, worst first at `now` (`to_us`): the
        rule of `Schedule.at` and the queue's order (risk, severity in the order
        `severities` lists them, headline deadline, id), evaluated by SQLite over the stored
        schedules, so the first screen needs no other row read or assessed.

        The order is a sequence of (risk, severity) classes; they are read worst first,
        each ordered on its own from a severity range of the queue index, until `worst`
        rows are found: at 100,000 open, the few thousand breached P0s are sorted rather
        than every row (~80 ms down to a few)."""
        if worst is None:
            sql = f"{SELECT_ITEM} WHERE state IN ({', '.join('?' * len(states))})"
            return [item_from_row(row) for row in self.conn.execute(sql, states)]
        found: list[QueueItem] = []
        params: dict[str, Any] = {"now": now, "never": _NEVER, **_named("st", states),
                                  **_named("sev", severities)}
        classes = [f"= :sev{n}" for n in range(len(severities))]
        classes.append(f"NOT IN ({_markers('sev', severities)})")  # others: ranked last
        for risk in RISKS:
            for severity in classes:
                if len(found) >= worst:
                    return found
                params.update(risk=RISK_RANK[risk], worst=worst - len(found))
                found += [item_from_row(row) for row in self.conn.execute(
                    _WORST_SQL.format(severity=severity, states=_markers("st", states),
                                      risk=_RISK_RANGE[risk]), params)]
        return found

    def queue_item_batches(self, states: Sequence[str], size: int
                           ) -> Iterator[list[QueueItem]]:
        """`queue_items(states)` in lists of `size`, read as they are asked for: the
        dashboard loads 100,000 rows in steps, answering keys between them."""
        cursor = self.conn.execute(
            f"{SELECT_ITEM} WHERE state IN ({', '.join('?' * len(states))})", states)
        try:
            while rows := cursor.fetchmany(size):
                yield [item_from_row(row) for row in rows]
        finally:
            cursor.close()

    def queue_counts(self, states: Sequence[str], now: int
                     ) -> tuple[dict[str, int], dict[str, int]]:
        """Incidents in `states` by severity and by risk at `now` (as the queue counts
        them), without reading them: for the summary line before every row is loaded."""
        by_severity: dict[str, int] = {}
        by_risk: dict[str, int] = {}
        for (severity, risk), count in self._class_counts(states, now).items():
            by_severity[severity] = by_severity.get(severity, 0) + count
            by_risk[risk] = by_risk.get(risk, 0) + count
        return by_severity, by_risk

    def _class_counts(self, states: Sequence[str], now: int) -> dict[tuple[str, str], int]:
        """Incidents in `states` by (severity, risk) at `now`, from ranges of the queue
        index: no CASE evaluated per row and no sort (at 100,000 open the `GROUP BY` over
        `RISK_SQL` took ~180 ms). Risk changes only at a stored instant, so each risk is
        a range or a simple test: breached is `sla_breached` or `sla_breach_at <= now`;
        of the rest, active ones are due at `sla_due_at <= now`, else warned at
        `sla_warn_at <= now`, else ok; inactive ones are ok. The severities present are
        found by seeking from one to the next, not by reading every row."""
        out: dict[tuple[str, str], int] = {}
        conn = self.conn
        for state in states:
            severity = conn.execute("SELECT min(severity) FROM incidents WHERE state = ?",
                                    (state,)).fetchone()[0]
            while severity is not None:
                key = {"st": state, "sev": severity, "now": now}
                flagged, passed_inactive, passed_active = (conn.execute(
                    "SELECT count(*) FROM incidents WHERE state = :st AND severity = :sev "
                    f"AND {where}", key).fetchone()[0] for where in (
                        "sla_breached = 1",
                        "sla_breached = 0 AND sla_active = 0 AND sla_breach_at <= :now",
                        "sla_breached = 0 AND sla_active = 1 AND sla_breach_at <= :now"))
                inactive = conn.execute(
                    "SELECT count(*) FROM incidents WHERE state = :st AND severity = :sev "
                    "AND sla_breached = 0 AND sla_active = 0", key).fetchone()[0]
                rest, due, warned = conn.execute(
                    "SELECT count(*), count(*) FILTER (WHERE sla_due_at <= :now), "
                    "count(*) FILTER (WHERE sla_warn_at <= :now "
                    "AND (sla_due_at > :now OR sla_due_at IS NULL)) "
                    "FROM incidents WHERE state = :st AND severity = :sev "
                    "AND sla_breached = 0 AND sla_active = 1 "
                    "AND (sla_breach_at > :now OR sla_breach_at IS NULL)", key).fetchone()
                counts = {BREACHED: flagged + passed_inactive + passed_active, DUE: due,
                          WARNING: warned,
                          OK: inactive - passed_inactive + rest - due - warned}
                for risk, count in counts.items():
                    if count:
                        out[severity, risk] = out.get((severity, risk), 0) + count
                severity = conn.execute(
                    "SELECT min(severity) FROM incidents WHERE state = :st "
                    "AND severity > :sev", key).fetchone()[0]
        return out

    def told_notices(self, incident_ids: Iterable[int]) -> set[tuple[int, str, str]]:
        """The (incident, kind, key) of every notice already claimed for `incident_ids`."""
        found: set[tuple[int, str, str]] = set()
        ids = list(incident_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            found.update(self.conn.execute(
                f"SELECT incident_id, kind, key FROM notices WHERE incident_id IN "
                f"({', '.join('?' * len(chunk))})", chunk).fetchall())
        return found

    def changed_since(self, seq: int) -> list[QueueItem]:
        """Incidents changed by events after `seq`, as the queue keeps them (cheap: an
        index range scan; `+id` keeps SQLite from walking the whole table in id order)."""
        return [item_from_row(row) for row in self.conn.execute(
            f"{SELECT_ITEM} WHERE changed_seq > ? ORDER BY +id", (seq,)).fetchall()]

    def queue_items_by_id(self, ids: Iterable[int]) -> list[QueueItem]:
        """The queue items of `ids` (those that exist), BATCH at a time, in any order."""
        ids = list(ids)
        found: list[QueueItem] = []
        for start in range(0, len(ids), BATCH):
            chunk = ids[start:start + BATCH]
            found += [item_from_row(row) for row in self.conn.execute(
                f"{SELECT_ITEM} WHERE id IN ({', '.join('?' * len(chunk))})", chunk)]
        return found

    def queue_ids(self, states: Sequence[str], *, levels: Sequence[str] = (),
                  assignees: Sequence[str] | None = None, text: str = "") -> set[int]:
        """Ids of the incidents in `states` at one of `levels` (any when empty), assigned
        to one of `assignees` (any when None; "" for none), whose search text (as
        `queue.search_text` makes it) contains `text` (casefolded). One pass over the
        table (`+state`: reading the queue index, then each row by id, took 3× longer).
        An ASCII `text` is matched on SQLite's `lower()` (a third quicker than calling
        Python's casefold for each row; it differs only for the few non-ASCII letters
        whose casefold is ASCII, such as the Kelvin sign), any other on casefold."""
        where = [f"+state IN ({_markers('st', states)})"]
        params: dict[str, Any] = {**_named("st", states), "text": text}
        if levels:
            where.append(f"level IN ({_markers('lv', levels)})")
            params.update(_named("lv", levels))
        if assignees is not None:
            where.append(f"coalesce(assignee, '') IN ({_markers('as', assignees)})")
            params.update(_named("as", assignees))
        if text:
            fold = "lower"
            if not text.isascii():
                fold = "sladeck_casefold"
                self.conn.create_function(fold, 1, _casefold, deterministic=True)
            where.append(f"instr({fold}('INC-' || id || ' ' || title || ' ' || "
                         "coalesce(service, '') || ' ' || coalesce(assignee, '') || ' ' || severity "
                         "|| ' ' || level), :text) > 0")
        return {row[0] for row in self.conn.execute(
            f"SELECT id FROM incidents WHERE {' AND '.join(where)}", params)}

    def events(self, incident_id: int | None = None, *, after: int = 0) -> list[Event]:
        sql = f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE id > ?"
        params: list[Any] = [after]
        if incident_id is not None:
            sql += " AND incident_id = ?"
            params.append(incident_id)
        return [event_from_row(row) for row in self.conn.execute(sql + " ORDER BY id", params).fetchall()]

    def iter_events(self, batch: int = 5000) -> Iterator[Event]:
        """Every event in chain order, in batches (no read transaction held between)."""
        after = 0
        while True:
            rows = self.conn.execute(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events "
                                     "WHERE id > ? ORDER BY id LIMIT ?", (after, batch)).fetchall()
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
            for r in self.conn.execute(
                "SELECT id, event_id, from_level, to_level, trigger, reason, fields FROM handoffs "
                "WHERE incident_id = ? ORDER BY id", (incident_id,)).fetchall())
        ticks = tuple(
            ChecklistTick(r[0], r[1], by_id[r[2]].at, by_id[r[2]].actor.display, r[2])
            for r in self.conn.execute(
                "SELECT checklist, item, event_id FROM checklist_ticks WHERE incident_id = ? "
                "ORDER BY event_id", (incident_id,)).fetchall())
        row = self.conn.execute("SELECT event_id, fields FROM reviews WHERE incident_id = ?",
                                (incident_id,)).fetchone()
        review = Review(incident_id, by_id[row[0]].at, by_id[row[0]].actor.display,
                        json.loads(row[1]), row[0]) if row else None
        follow_ups = tuple(
            FollowUp(r[0], incident_id, r[1], r[2], r[3], r[4], by_id[r[5]].at,
                     by_id[r[6]].at if r[6] else None,
                     by_id[r[6]].actor.display if r[6] else None)
            for r in self.conn.execute(
                "SELECT id, kind, description, owner, due, event_id, done_event_id "
                "FROM follow_ups WHERE incident_id = ? ORDER BY id", (incident_id,)).fetchall())
        return current_cycle(IncidentDetail(incident, tuple(events), handoffs, ticks, review,
                                            follow_ups,
                                            clock_history=self.clock_history(incident_id)))

    def policy(self, policy_id: int) -> Policy:
        """The policy an incident was opened under (parsed once per process)."""
        if policy_id not in self._policies:
            from sladeck.policy import stored_policy

            row = self.conn.execute("SELECT source FROM policies WHERE id = ?",
                                    (policy_id,)).fetchone()
            if row is None:
                raise StoreError(f"{self.path}: policy {policy_id} is missing")
            self._policies[policy_id] = stored_policy(row[0], f"stored policy {policy_id}")
        return self._policies[policy_id]

    def adopt(self, policy: Policy) -> None:
        """Use an already-parsed policy for incidents stored under the same text."""
        row = self.conn.execute("SELECT id FROM policies WHERE digest = ?",
                                (policy.digest,)).fetchone()
        if row:
            self.remember_policy(row[0], policy)

    def remember_policy(self, policy_id: int, policy: Policy) -> None:
        self._policies[policy_id] = policy
        self._policy_ids[policy.digest] = policy_id

    # -- the stand-up: the day's activity, follow-ups across incidents, finished ones --

    def activity(self, since: datetime, until: datetime,
                 kinds: Sequence[str] = ()) -> dict[str, int]:
        """How many incidents had an event of each kind in [since, until) (distinct
        incidents per kind; `kinds` limits the kinds counted). `sla_breached` also
        counts the open incidents whose running clock breached in the window, told yet
        or not. Read from the events' time index and the queue's index: the cost
        follows the window, not the log's length."""
        where = "at >= :since AND at < :until"
        params: dict[str, Any] = {"since": to_iso(since), "until": to_iso(until),
                                  "since_us": to_us(since), "until_us": to_us(until)}
        if kinds:
            where += f" AND kind IN ({_markers('k', kinds)})"
            params.update(_named("k", kinds))
        with self.snapshot():
            counts = dict(self.conn.execute(
                f"SELECT kind, count(DISTINCT incident_id) FROM events INDEXED BY events_time "
                f"WHERE {where} GROUP BY kind", params).fetchall())
            if not kinds or "sla_breached" in kinds:
                breached = self.conn.execute(
                    "SELECT count(*) FROM (SELECT incident_id FROM events INDEXED BY "
                    "events_time WHERE at >= :since AND at < :until AND kind = 'sla_breached' "
                    f"UNION SELECT id FROM incidents WHERE {_OPEN_STATES} AND sla_breach_at "
                    ">= :since_us AND sla_breach_at < :until_us)", params).fetchone()[0]
                if breached:
                    counts["sla_breached"] = breached
        return counts

    def follow_up_entries(self, *, include_done: bool = False) -> list[FollowUpEntry]:
        """Follow-ups across incidents (not done only, unless `include_done`), each with
        its incident's title, severity and state, by id."""
        rows = self.conn.execute(
            "SELECT f.id, f.incident_id, f.kind, f.description, f.owner, f.due, a.at, d.at, "
            "d.account, d.name, i.title, i.severity, i.state FROM follow_ups f "
            "JOIN incidents i ON i.id = f.incident_id JOIN events a ON a.id = f.event_id "
            "LEFT JOIN events d ON d.id = f.done_event_id"
            + ("" if include_done else " WHERE f.done_event_id IS NULL") + " ORDER BY f.id"
        ).fetchall()
        return [FollowUpEntry(FollowUp(r[0], r[1], r[2], r[3], r[4], r[5], from_iso(r[6]),
                                       from_iso(r[7]) if r[7] else None,
                                       Actor(r[8], r[9]).display if r[7] else None),
                              r[10], r[11], r[12]) for r in rows]

    def finished_incidents(self, states: Sequence[str], *, limit: int,
                           before_id: int | None = None) -> list[Incident]:
        """A page of incidents in `states` (resolved, closed), newest id first, below
        `before_id` when given: read on demand, `limit` rows at most."""
        where = f"state IN ({_markers('st', states)})"
        params: dict[str, Any] = {"limit": limit, **_named("st", states)}
        if before_id is not None:
            where += " AND id < :before"
            params["before"] = before_id
        return [incident_from_row(row) for row in self.conn.execute(
            f"{SELECT_INCIDENT} WHERE {where} ORDER BY id DESC LIMIT :limit", params).fetchall()]

    # -- reports (SPEC §11): the domain's `ReportSource`, SQL in store/reports.py -----------

    def report_cohort(self, by: str, since: str, until: str) -> Iterator[tuple[Any, ...]]:
        return reports.cohort(self.conn, by, since, until)

    def report_events(self, since: str, until: str) -> Iterator[tuple[Any, ...]]:
        return reports.incident_events(self.conn, since, until)

    def report_escalations(self, by: str, since: str, until: str) -> list[tuple[Any, ...]]:
        return reports.escalations(self.conn, by, since, until)

    def report_follow_ups(self, by: str, since: str, until: str, today: str
                          ) -> list[tuple[Any, ...]]:
        return reports.follow_ups(self.conn, by, since, until, today)

    def report_compliance(self, by: str, since: str, until: str) -> list[tuple[Any, ...]]:
        return reports.compliance(self.conn, by, since, until)

    def report_daily(self, since: str, until: str) -> list[tuple[str, int]]:
        return reports.daily_opened(self.conn, since, until)

    def digest_events(self, since: str, until: str) -> list[tuple[Any, ...]]:
        return reports.digest_events(self.conn, since, until)

    def breach_candidates(self, since: str, until: str, since_us: int, until_us: int
                          ) -> list[Incident]:
        return [incident_from_row(row) for row in self.conn.execute(
            f"{SELECT_INCIDENT} WHERE id IN ({reports.BREACH_CANDIDATES}) ORDER BY id",
            {"since": since, "until": until, "since_us": since_us, "until_us": until_us})]

    def follow_ups_due(self, through: str) -> list[tuple[Any, ...]]:
        return reports.follow_ups_due(self.conn, through)

    def counts(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT state, count(*) FROM incidents GROUP BY state")
                    .fetchall())

    def integrity_check(self) -> str:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0]

    def backup(self, dest: str | os.PathLike[str]) -> None:
        """A consistent copy through SQLite's backup API while others keep writing.

        The copy is written to a private temporary file in the destination's folder
        (0600, or 0660 in a group-shared folder; never through a link someone planted)
        and linked into place only when complete, never over an existing file. The
        folder must exist: a mistyped path is not silently created.
        """
        import tempfile

        target = Path(dest)
        folder = target.parent if str(target.parent) else Path(".")
        if not folder.is_dir():
            raise StoreError(f"cannot back up to {target}: the folder {folder} does not exist "
                             f"(create it first)")
        if os.path.lexists(target):
            raise StoreError(f"{target} already exists; choose a new file")
        try:
            fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
        except OSError as exc:
            raise StoreError(f"cannot back up to {target}: {exc.strerror}") from None
        try:
            os.fchmod(fd, 0o660 if is_shared_folder(folder.stat()) else 0o600)
            os.close(fd)
            copy = sqlite3.connect(temp)
            try:
                self.conn.backup(copy)
            finally:
                copy.close()
            with open(temp, "rb") as written:
                os.fsync(written.fileno())
            try:
                os.link(temp, target)  # fails if anything, even a link, appeared there
            except FileExistsError:
                raise StoreError(f"{target} already exists; choose a new file") from None
            except OSError:  # a file system without hard links: rename, after one more look
                if os.path.lexists(target):
                    raise StoreError(f"{target} already exists; choose a new file") from None
                os.rename(temp, target)
        except sqlite3.Error as exc:
            raise self.refusal(exc) or StoreError(f"cannot back up to {target}: {exc}") \
                from None
        except OSError as exc:
            raise StoreError(f"cannot back up to {target}: {exc.strerror}") from None
        finally:
            for leftover in (temp, f"{temp}-journal"):
                with suppress(FileNotFoundError):
                    os.unlink(leftover)


class Transaction:
    """Writes inside one BEGIN IMMEDIATE; obtained from `Store.write()`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.conn = store.conn
        self._last: tuple[int, str] | None = None  # (id, hash) of the chain's last event

    def incident(self, incident_id: int) -> Incident | None:
        return self.store.incident(incident_id)

    def open_by_dedup(self, key: str) -> Incident | None:
        # The states are literals so the planner sees this query implies the partial
        # unique index's WHERE and uses it (with parameters it scans the whole table).
        row = self.conn.execute(f"{SELECT_INCIDENT} WHERE dedup_key = ? AND {_OPEN_STATES}",
                                (key,)).fetchone()
        return incident_from_row(row) if row else None

    def latest_by_dedup(self, key: str) -> Incident | None:
        row = self.conn.execute(f"{SELECT_INCIDENT} WHERE dedup_key = ? AND dedup_key IS NOT NULL "
                                "ORDER BY id DESC LIMIT 1", (key,)).fetchone()
        return incident_from_row(row) if row else None

    def _batched(self, sql: str, values: Iterable[Any]) -> list[tuple[Any, ...]]:
        """Rows of `sql` (one `{}` for the IN list's markers) over `values`, BATCH at a time."""
        values = list(values)
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(values), BATCH):
            chunk = values[start:start + BATCH]
            rows += self.conn.execute(sql.format(", ".join("?" * len(chunk))), chunk).fetchall()
        return rows

    def open_by_dedup_keys(self, keys: Iterable[str]) -> dict[str, Incident]:
        """`open_by_dedup` for many keys at once: the open incident of each key that has one."""
        # INDEXED BY: with a long IN list the planner prefers incidents_queue and scans
        # every open incident once per batch (100,000 repeats took 8 s instead of 0.2 s).
        rows = self._batched(f"{SELECT_INCIDENT} INDEXED BY incidents_open_dedup "
                             f"WHERE dedup_key IN ({{}}) AND {_OPEN_STATES}", keys)
        return {i.dedup_key: i for i in map(incident_from_row, rows) if i.dedup_key is not None}

    def latest_by_dedup_keys(self, keys: Iterable[str]) -> dict[str, Incident]:
        """`latest_by_dedup` for many keys at once: each key's newest incident, if any."""
        rows = self._batched(f"{SELECT_INCIDENT} WHERE id IN (SELECT max(id) FROM incidents "
                             "WHERE dedup_key IN ({}) GROUP BY dedup_key)", keys)
        return {i.dedup_key: i for i in map(incident_from_row, rows) if i.dedup_key is not None}

    def last_events_at(self, incident_ids: Iterable[int]) -> dict[int, datetime]:
        """`last_event_at` for many incidents at once (those without events are left out)."""
        rows = self._batched("SELECT incident_id, max(at) FROM events WHERE incident_id IN ({}) "
                             "GROUP BY incident_id", incident_ids)
        return {incident_id: from_iso(at) for incident_id, at in rows if at}

    def events_after(self, incident_id: int, version: int) -> list[Event]:
        rows = self.conn.execute(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE incident_id = ? AND version > ? "
            "ORDER BY id", (incident_id, version)).fetchall()
        return [event_from_row(r) for r in rows]

    def newest_event(self) -> Event | None:
        """The last event written (by id: one step down the primary key)."""
        row = self.conn.execute(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events "
                                "ORDER BY id DESC LIMIT 1").fetchone()
        return event_from_row(row) if row else None

    def last_event_at(self, incident_id: int) -> datetime | None:
        """When the incident's latest event happened (its timeline never runs back)."""
        row = self.conn.execute("SELECT max(at) FROM events WHERE incident_id = ?",
                                (incident_id,)).fetchone()
        return from_iso(row[0]) if row and row[0] else None

    def policy_id(self, policy: Policy, now: datetime) -> int:
        """The stored id of `policy`, storing it once per distinct text."""
        known = self.store._policy_ids.get(policy.digest)
        if known is not None:
            return known
        row = self.conn.execute("SELECT id FROM policies WHERE digest = ?",
                                (policy.digest,)).fetchone()
        if row:
            policy_id = row[0]
        else:
            policy_id = self.conn.execute(
                "INSERT INTO policies (digest, name, source, added_at) VALUES (?, ?, ?, ?)",
                (policy.digest, policy.name, policy.source, to_iso(now))).lastrowid
        self.store.remember_policy(policy_id, policy)
        return policy_id

    def next_incident_id(self) -> int:
        return self.conn.execute("SELECT coalesce(max(id), 0) + 1 FROM incidents").fetchone()[0]

    def _write_row(self, sql: str, params: list[Any], incident: Incident) -> sqlite3.Cursor:
        try:
            return self.conn.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            if "dedup_key" in str(exc):
                raise Refused(f"another open incident has dedup key {incident.dedup_key!r}"
                              ) from None
            raise

    def insert_incident(self, incident: Incident) -> None:
        row = incident_row(incident, self.store.policy(incident.policy_id))
        self._write_row(f"INSERT INTO incidents ({', '.join(WRITTEN_COLUMNS)}) "
                        f"VALUES ({', '.join('?' * len(WRITTEN_COLUMNS))})",
                        [row[c] for c in WRITTEN_COLUMNS], incident)
        bulk.insert_cycles(self.conn, bulk.opening_cycles((incident,), self.store.policy))

    def insert_incidents(self, incidents: list[Incident]) -> None:
        """`insert_incident` for many new incidents, in one `executemany`."""
        self.insert_incident_rows(incident_rows(incidents, self.store.policy))
        bulk.insert_cycles(self.conn, bulk.opening_cycles(incidents, self.store.policy))

    def _histories(self, incident_ids: Iterable[int]) -> dict[int, tuple[ClockCycle, ...]]:
        """Each incident's clock history from its events as they stand in this
        transaction, stored afresh in clock_cycles (the derived record)."""
        ids = list(incident_ids)
        events: dict[int, list[Event]] = {i: [] for i in ids}
        for row in self._batched(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events "
                                 "WHERE incident_id IN ({}) ORDER BY id", ids):
            event = event_from_row(row)
            events[event.incident_id].append(event)
        # An incident whose timeline lacks its opening (rows written without events, as
        # the benchmarks' fixtures are) has no history: its state alone implies its clocks.
        histories = {i: h for i, e in events.items()
                     if e and (h := clock_history(e, self.store.policy))}
        self._batched("DELETE FROM clock_cycles WHERE incident_id IN ({})", ids)
        bulk.insert_cycles(self.conn, (row for i, h in histories.items()
                                       for row in cycle_rows(i, h)))
        return histories

    def insert_cycle_rows(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """clock_cycles rows (`rows.cycle_rows`), as `bulk.insert_cycles` writes them."""
        bulk.insert_cycles(self.conn, rows)

    def insert_incident_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """`insert_incidents` for rows already made: tuples in WRITTEN_COLUMNS' order,
        exactly as `rows.incident_values` makes them (`bulk.insert_incident_rows`)."""
        bulk.insert_incident_rows(self.conn, rows)

    def update_incidents(self, changes: list[tuple[Incident, int]]) -> None:
        """`update_incident` for many (incident, expected_version) pairs at once."""
        if not changes:
            return
        columns = [c for c in WRITTEN_COLUMNS if c != "id"]
        histories = self._histories(incident.id for incident, _ in changes)
        rows = incident_rows((incident for incident, _ in changes), self.store.policy,
                             histories)
        cursor = self.conn.executemany(
            f"UPDATE incidents SET {', '.join(f'{c} = ?' for c in columns)} "
            "WHERE id = ? AND version = ?",
            [(*row[1:], row[0], version) for row, (_, version) in zip(rows, changes, strict=True)])
        if cursor.rowcount != len(changes):
            raise StoreError("incidents changed during the transaction")

    def update_incident(self, incident: Incident, expected_version: int) -> None:
        """Store the incident's new state (after its event is appended: its clock
        history and schedule are worked out from the events)."""
        history = self._histories((incident.id,)).get(incident.id)
        row = incident_row(incident, self.store.policy(incident.policy_id), history)
        columns = [c for c in WRITTEN_COLUMNS if c != "id"]
        cursor = self._write_row(
            f"UPDATE incidents SET {', '.join(f'{c} = ?' for c in columns)} "
            "WHERE id = ? AND version = ?",
            [row[c] for c in columns] + [incident.id, expected_version], incident)
        if cursor.rowcount != 1:
            raise StoreError(f"INC-{incident.id} changed during the transaction")

    def next_event_id(self) -> int:
        if self._last is None:
            row = self.conn.execute("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1").fetchone()
            self._last = (row[0], row[1]) if row else (0, GENESIS)
        return self._last[0] + 1

    def append_event(self, incident_id: int, version: int, at: datetime, actor: Actor,
                     kind: str, payload: dict[str, Any]) -> Event:
        """Append one event to the hash chain (we hold the write lock: the chain is linear)."""
        event_id = self.next_event_id()
        assert self._last is not None
        prev_hash = self._last[1]
        at_text, payload_text = to_iso(at), canonical_json(payload)
        digest = event_hash(prev_hash, event_id, incident_id, version, at_text, actor.account,
                            actor.name, kind, payload_text)
        self.conn.execute(
            f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (event_id, incident_id, version, at_text, actor.account, actor.name, kind,
             payload_text, prev_hash, digest))
        self._last = (event_id, digest)
        return Event(event_id, incident_id, version, at, actor.account, actor.name, kind,
                     json.loads(payload_text), prev_hash, digest)

    def append_events(self, actor: Actor, events: Iterable[tuple[int, int, int, str, str,
                                                                 dict[str, Any] | str]]
                      ) -> list[tuple[str, str]]:
        """`append_event` for many events by one actor, in one `executemany`: each is
        (id, incident_id, version, at as `to_iso` text, kind, payload), and the ids must
        continue the chain (the caller pre-assigns them from `next_event_id`). A payload
        is a dict, or already its `canonical_json` text. Returns each event's (prev_hash,
        hash), linked exactly as `append_event` links them."""
        self.next_event_id()
        assert self._last is not None
        links, self._last = bulk.append_events(self.conn, self._last, actor, events)
        return links

    def write_import(self, plan: ImportPlan) -> list[tuple[str, str]]:
        """`ImportTransaction.write_import` (`bulk.write_import`)."""
        return bulk.write_import(self, plan)

    def add_handoff(self, incident_id: int, event_id: int, from_level: str, to_level: str,
                    trigger: str, reason: str, fields: dict[str, str]) -> None:
        self.conn.execute(
            "INSERT INTO handoffs (incident_id, event_id, from_level, to_level, trigger, reason, "
            "fields) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (incident_id, event_id, from_level, to_level, trigger, reason, canonical_json(fields)))

    def ticks(self, incident_id: int) -> set[tuple[str, str]]:
        return set(self.conn.execute(
            "SELECT checklist, item FROM checklist_ticks WHERE incident_id = ?",
            (incident_id,)).fetchall())

    def set_tick(self, incident_id: int, checklist: str, item: str, event_id: int | None) -> None:
        """Tick (event_id given) or untick (None) one checklist item."""
        if event_id is None:
            self.conn.execute("DELETE FROM checklist_ticks WHERE incident_id = ? AND checklist = ? "
                              "AND item = ?", (incident_id, checklist, item))
        else:
            self.conn.execute("INSERT OR REPLACE INTO checklist_ticks VALUES (?, ?, ?, ?)",
                              (incident_id, checklist, item, event_id))

    def add_review(self, incident_id: int, event_id: int, fields: dict[str, str]) -> None:
        self.conn.execute("INSERT OR REPLACE INTO reviews VALUES (?, ?, ?)",
                          (incident_id, event_id, canonical_json(fields)))

    def add_follow_up(self, incident_id: int, event_id: int, kind: str, description: str,
                      owner: str, due: str | None) -> int:
        return self.conn.execute(
            "INSERT INTO follow_ups (incident_id, kind, description, owner, due, event_id) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (incident_id, kind, description, owner, due, event_id)).lastrowid

    def follow_up(self, follow_up_id: int) -> tuple[int, int | None] | None:
        """(incident_id, done_event_id) of a follow-up, or None."""
        row = self.conn.execute("SELECT incident_id, done_event_id FROM follow_ups WHERE id = ?",
                                (follow_up_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def finish_follow_up(self, follow_up_id: int, event_id: int) -> None:
        self.conn.execute("UPDATE follow_ups SET done_event_id = ? WHERE id = ?",
                          (event_id, follow_up_id))

    def claim_notice(self, incident_id: int, kind: str, key: str) -> bool:
        """True for the one process that records this notice first; False for the rest
        (the primary key decides, inside the write lock: never timing)."""
        cursor = self.conn.execute("INSERT OR IGNORE INTO notices (incident_id, kind, key) "
                                   "VALUES (?, ?, ?)", (incident_id, kind, key))
        return cursor.rowcount == 1

    def link_notice(self, incident_id: int, kind: str, key: str, event_id: int) -> None:
        self.conn.execute("UPDATE notices SET event_id = ? WHERE incident_id = ? AND kind = ? "
                          "AND key = ?", (event_id, incident_id, kind, key))
