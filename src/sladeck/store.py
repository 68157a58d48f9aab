"""The only module that speaks SQL: schema, migrations, transactions, change detection.

Every write runs inside `BEGIN IMMEDIATE` (a deferred `BEGIN` that reads then
writes fails at once with "database is locked" when another process committed in
between). Reads are fetched into lists so no read transaction outlives a call:
an open one would freeze `PRAGMA data_version` and stop WAL checkpoints.
Rows never leave this module: they become domain objects here.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from sys import intern as _intern
from typing import TYPE_CHECKING, Any

from sladeck.domain.chain import GENESIS, canonical_json, chain_hasher, event_hash
from sladeck.domain.clocks import RISKS, schedule
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
from sladeck.domain.queue import QueueItem
from sladeck.errors import Damaged, FileReplaced, ReadOnly, Refused, StoreError
from sladeck.permissions import check_planted, check_sharing, is_shared_folder, resolve_links
from sladeck.policy import Policy

if TYPE_CHECKING:
    import sqlite_utils

BUSY_TIMEOUT_MS = 30_000
BATCH = 500  # parameters per IN (...) lookup, well under SQLite's limit
BULK_CACHE_KIB = 32 * 1024  # page cache of a bulk write (`Store.write(bulk=True)`)
MULTI_ROW = 500  # rows per INSERT of `insert_incident_rows`
_fromisoformat = datetime.fromisoformat


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
    for column in SLA_COLUMNS:
        kind = "TEXT" if column.endswith("_kind") else "INTEGER"
        conn.execute(f"ALTER TABLE incidents ADD COLUMN {column} {kind}")
    policies = {pid: parse_policy(source, f"stored policy {pid}")
                for pid, source in conn.execute("SELECT id, source FROM policies")}
    after = 0
    while True:
        rows = conn.execute(f"{_SELECT_INCIDENT} WHERE id > ? ORDER BY id LIMIT 2000",
                            (after,)).fetchall()
        if not rows:
            break
        incidents = [_incident(row) for row in rows]
        conn.executemany(
            f"UPDATE incidents SET {', '.join(f'{c} = ?' for c in SLA_COLUMNS)} WHERE id = ?",
            [(*_sla_values(i, policies[i.policy_id]), i.id) for i in incidents])
        after = incidents[-1].id


# What the first frame reads of every queued incident: its state, severity and schedule.
_QUEUE_INDEX = ("state", "severity", "sla_breached", "sla_active", "sla_breach_at",
                "sla_due_at", "sla_warn_at")


def _v4(db: sqlite_utils.Database) -> None:
    """The queue's columns in one index, state first: the first frame's worst rows and
    its counts are read from the index alone, not from every open incident's row
    (spread among all the closed ones). It replaces the index on state alone."""
    db.execute(f"CREATE INDEX incidents_queue ON incidents({', '.join(_QUEUE_INDEX)})")
    db.execute("DROP INDEX incidents_state")


MIGRATIONS = (_v1, _v2, _v3, _v4)
SCHEDULES_SINCE = 3  # the schema version that stores SLA schedules
SCHEMA_VERSION = len(MIGRATIONS)

SLA_COLUMNS = ("sla_active", "sla_breached", "sla_breach_at", "sla_breach_kind", "sla_due_at",
               "sla_due_kind", "sla_warn_at")  # a clocks.Schedule, field for field
INCIDENT_COLUMNS = (
    "id", "title", "description", "service", "severity", "level", "state", "assignee",
    "external_ref", "dedup_key", "opened_at", "opened_by", "level_entered_at",
    "acknowledged_at", "acknowledged_by", "resolved_at", "closed_at", "reached", "repeats",
    "policy_id", "version", "changed_seq", "updated_at", "updated_by", "last_change")
_TIME_COLUMNS = {"opened_at", "level_entered_at", "acknowledged_at", "resolved_at",
                 "closed_at", "updated_at"}
WRITTEN_COLUMNS = INCIDENT_COLUMNS + SLA_COLUMNS
_SELECT_INCIDENT = f"SELECT {', '.join(INCIDENT_COLUMNS)} FROM incidents"
_OPEN_STATES = "state IN ('open', 'acknowledged')"  # matches incidents_open_dedup's WHERE
_LOADED_STATES = "state IN ('open', 'acknowledged', 'resolved')"  # what the dashboard shows
# `Schedule.at`'s risk (as its index in RISKS) and headline deadline, over the stored
# schedules at :now; a test checks both against the Python for random incidents.
_NEVER = 2**62  # no deadline: after every real one
_RISK_SQL = ("CASE WHEN sla_breached OR sla_breach_at <= :now THEN 0 "
             "WHEN sla_active AND sla_due_at <= :now THEN 1 "
             "WHEN sla_active AND sla_warn_at <= :now THEN 2 ELSE 3 END")
_HEAD_SQL = ("CASE WHEN NOT sla_active THEN :never "
             "WHEN sla_breach_at <= :now THEN sla_breach_at "
             "WHEN sla_due_at <= :now THEN sla_due_at "
             "ELSE min(coalesce(sla_breach_at, :never), coalesce(sla_due_at, :never)) END")


def _markers(prefix: str, values: Sequence[Any]) -> str:
    return ", ".join(f":{prefix}{n}" for n in range(len(values)))


def _named(prefix: str, values: Sequence[Any]) -> dict[str, Any]:
    return {f"{prefix}{n}": v for n, v in enumerate(values)}


_SELECT_ITEM = (f"SELECT {', '.join(SLA_COLUMNS)}, id, title, service, assignee, severity, "
                "level, state, policy_id, version, changed_seq FROM incidents")


def _time(text: str) -> datetime:
    """A stored time (`to_iso` text, always UTC with `Z`): the direct parse, which is
    2-3× cheaper than `from_iso`, with `from_iso` for any other form."""
    at = _fromisoformat(text)
    return at if at.tzinfo is UTC else from_iso(text)


def _incident(row: sqlite3.Row | tuple) -> Incident:
    (id_, title, description, service, severity, level, state, assignee, external_ref,
     dedup_key, opened_at, opened_by, level_entered_at, acknowledged_at, acknowledged_by,
     resolved_at, closed_at, reached, repeats, policy_id, version, changed_seq, updated_at,
     updated_by, last_change) = row  # INCIDENT_COLUMNS' order
    return Incident(
        id=id_, title=title, description=description or "", service=service or "",
        severity=severity, level=level, state=state, assignee=assignee,
        external_ref=external_ref, dedup_key=dedup_key, opened_at=_time(opened_at),
        opened_by=opened_by, level_entered_at=_time(level_entered_at),
        acknowledged_at=_time(acknowledged_at) if acknowledged_at is not None else None,
        acknowledged_by=acknowledged_by,
        resolved_at=_time(resolved_at) if resolved_at is not None else None,
        closed_at=_time(closed_at) if closed_at is not None else None,
        reached={k: _time(v) for k, v in json.loads(reached).items()}, repeats=repeats,
        policy_id=policy_id, version=version, changed_seq=changed_seq,
        updated_at=_time(updated_at) if updated_at is not None else None,
        updated_by=updated_by, last_change=last_change)


def _sla_values(incident: Incident, policy: Policy) -> tuple[Any, ...]:
    """The SLA_COLUMNS of an incident as it stands."""
    return schedule(incident, policy).values()


def _item(row: tuple[Any, ...]) -> QueueItem:
    """A `_SELECT_ITEM` row; repeated short strings are shared, not copied per row."""
    (active, breached, breach_at, breach_kind, due_at, due_kind, warn_at, id_, title, service,
     assignee, severity, level, state, policy_id, version, changed_seq) = row
    return QueueItem(bool(active), bool(breached), breach_at,
                     breach_kind and _intern(breach_kind), due_at, due_kind and _intern(due_kind),
                     warn_at, id_, title, _intern(service), _intern(assignee) if assignee else None,
                     _intern(severity), _intern(level), _intern(state), policy_id, version,
                     changed_seq)


def _incident_row(incident: Incident, policy: Policy) -> dict[str, Any]:
    row = {column: getattr(incident, column) for column in INCIDENT_COLUMNS}  # not asdict: it deep-copies
    for key in _TIME_COLUMNS:
        if row[key] is not None:
            row[key] = to_iso(row[key])
    row["reached"] = json.dumps({k: to_iso(v) for k, v in incident.reached.items()})
    row.update(zip(SLA_COLUMNS, _sla_values(incident, policy), strict=True))
    return row


def _incident_rows(incidents: Iterable[Incident], policy_for: Callable[[int], Policy]
                   ) -> list[tuple[Any, ...]]:
    """`_incident_row` for many incidents, as tuples in WRITTEN_COLUMNS' order: each
    distinct time is formatted once (a bulk import shares `now` across every row)."""
    texts: dict[datetime, str] = {}
    reached_texts: dict[tuple[tuple[str, datetime], ...], str] = {}

    def t(at: datetime | None) -> str | None:
        if at is None:
            return None
        text = texts.get(at)
        if text is None:
            text = texts[at] = to_iso(at)
        return text

    rows = []
    for i in incidents:
        key = tuple(i.reached.items())
        reached = reached_texts.get(key)
        if reached is None:
            reached = reached_texts[key] = json.dumps({k: t(v) for k, v in key})
        rows.append((
            i.id, i.title, i.description, i.service, i.severity, i.level, i.state, i.assignee,
            i.external_ref, i.dedup_key, t(i.opened_at), i.opened_by, t(i.level_entered_at),
            t(i.acknowledged_at), i.acknowledged_by, t(i.resolved_at), t(i.closed_at),
            reached, i.repeats, i.policy_id, i.version, i.changed_seq, t(i.updated_at),
            i.updated_by, i.last_change, *_sla_values(i, policy_for(i.policy_id))))
    return rows


def incident_values(incident: Incident, policy: Policy) -> tuple[Any, ...]:
    """One incident as `insert_incident_rows` takes it: its `_incident_rows` tuple."""
    return _incident_rows((incident,), lambda _: policy)[0]


EVENT_COLUMNS = ("id", "incident_id", "version", "at", "account", "name", "kind", "payload",
                 "prev_hash", "hash")


def _event(row: sqlite3.Row | tuple) -> Event:
    v = dict(zip(EVENT_COLUMNS, row, strict=True))
    v["at"] = _time(v["at"])
    v["payload"] = json.loads(v["payload"])
    return Event(**v)


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except FileNotFoundError:
        return None


def prepare_file(path: Path) -> bool:
    """Create the database file without world access, or refuse an unsafe one; True
    when it can only be read (a read-only mount, or a file or folder you cannot write
    outside a team folder: an archived backup).

    0660 when its folder is group-shared (setgid), else 0600. SQLite gives the
    `-wal` and `-shm` files the main file's permissions. A new file is created with
    O_EXCL|O_NOFOLLOW, never through a symbolic link; a link someone else made, a
    dangling one, and another user's file outside a team folder are refused. A
    missing database beside a `-wal` that holds data is refused too: starting afresh
    would throw that data away.
    """
    path = resolve_links(path)
    folder = path.parent
    if not folder.exists():
        try:
            folder.mkdir(parents=True, mode=0o700)
        except OSError as exc:
            raise StoreError(f"cannot create the folder {exc.filename or folder}: "
                             f"{exc.strerror}") from None
    check_planted(path)
    if _lstat(path) is None:
        wal = Path(f"{path}-wal")
        wal_info = _lstat(wal)
        if wal_info is not None and wal_info.st_size > 0:
            raise StoreError(f"{path} is missing but {wal} holds its last committed changes "
                             f"({wal_info.st_size} bytes); put {path} back (moved or deleted?) "
                             f"and run again, or move {wal} and {path}-shm away to start an "
                             f"empty database")
        mode = 0o660 if is_shared_folder(folder.stat()) else 0o600
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, mode)
        except FileExistsError:
            check_planted(resolve_links(path))  # someone made it meanwhile: look again
        except OSError as exc:
            raise StoreError(f"cannot create {path}: {exc.strerror}") from None
        else:
            os.fchmod(fd, mode)
            os.close(fd)
    if read_only_reason(path):
        return True
    check_sharing(path)  # world-writable, unwritable, wrong group, 0644 in a team folder
    return False


def read_only_reason(path: Path) -> str | None:
    """Why `path` can only be read, or None. In a team folder a file the team cannot
    write is a sharing problem with its fix (`check_sharing`), not a read-only file."""
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "on a read-only file system"
        folder = path.parent
        if is_shared_folder(folder.stat()):
            return None
        if not os.access(path, os.W_OK):
            return "the file is read-only to you"
        sidecars = [Path(f"{path}-wal"), Path(f"{path}-shm")]
        if not all(f.exists() for f in sidecars) and not os.access(folder, os.W_OK | os.X_OK):
            return f"its folder {folder} is read-only to you"
    except OSError:
        return None  # check_sharing names what cannot be used
    return None


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
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return info.st_dev, info.st_ino

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
        if current == SCHEMA_VERSION:
            return
        if current > SCHEMA_VERSION:
            raise StoreError(f"{self.path} was written by a newer sladeck "
                             f"(schema {current}); upgrade sladeck")
        if self.read_only:
            raise ReadOnly(f"{self.path} is read-only ({read_only_reason(self.path)}) and was "
                           f"written by an older sladeck (schema {current}); copy it somewhere "
                           f"you can write and open the copy")
        with self._immediate():
            current = self.schema_version()
            if current > SCHEMA_VERSION:
                raise StoreError(f"{self.path} was written by a newer sladeck "
                                 f"(schema {current}); upgrade sladeck")
            import sqlite_utils  # only migrations need it; keeps start-up fast

            db = sqlite_utils.Database(self.conn)
            for number, step in enumerate(MIGRATIONS[current:], start=current + 1):
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
        row = self.conn.execute(f"{_SELECT_INCIDENT} WHERE id = ?", (incident_id,)).fetchone()
        return _incident(row) if row else None

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
        sql = _SELECT_INCIDENT + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id"
        return [_incident(row) for row in self.conn.execute(sql, params).fetchall()]

    def queue_items(self, states: Sequence[str], *, worst: int | None = None, now: int = 0,
                    severities: Sequence[str] = ()) -> list[QueueItem]:
        """What the dashboard's queue keeps of each incident in `states` (never all the
        columns). With `worst`, only that many, worst first at `now` (`to_us`): the
        rule of `Schedule.at` and the queue's order (risk, headline deadline, severity in
        the order `severities` lists them, id), evaluated by SQLite over the stored
        schedules, so the first screen needs no other row read or assessed."""
        sql = f"{_SELECT_ITEM} WHERE state IN ({', '.join('?' * len(states))})"
        params: Any = list(states)
        if worst is not None:
            # The inner query orders from the queue index alone; only `worst` rows are read.
            rank = "CASE severity " + " ".join(
                f"WHEN :sev{n} THEN {n}" for n in range(len(severities))) + " ELSE 99 END"
            order = f"ORDER BY {_RISK_SQL}, {_HEAD_SQL}, {rank}, id"
            sql = (f"{_SELECT_ITEM} WHERE id IN (SELECT id FROM incidents "
                   f"WHERE state IN ({_markers('st', states)}) {order} LIMIT :worst) {order}")
            params = {"now": now, "never": _NEVER, "worst": worst, **_named("st", states),
                      **_named("sev", severities)}
        return [_item(row) for row in self.conn.execute(sql, params)]

    def queue_counts(self, states: Sequence[str], now: int
                     ) -> tuple[dict[str, int], dict[str, int]]:
        """Incidents in `states` by severity and by risk at `now` (as the queue counts
        them), without reading them: for the summary line before every row is loaded."""
        by_severity: dict[str, int] = {}
        by_risk: dict[str, int] = {}
        for severity, risk, count in self.conn.execute(
                f"SELECT severity, {_RISK_SQL} AS risk, count(*) FROM incidents "
                f"WHERE state IN ({_markers('st', states)}) GROUP BY severity, risk",
                {"now": now, **_named("st", states)}):
            by_severity[severity] = by_severity.get(severity, 0) + count
            by_risk[RISKS[risk]] = by_risk.get(RISKS[risk], 0) + count
        return by_severity, by_risk

    def changed_since(self, seq: int) -> list[QueueItem]:
        """Incidents changed by events after `seq`, as the queue keeps them (cheap: an
        index range scan; `+id` keeps SQLite from walking the whole table in id order)."""
        return [_item(row) for row in self.conn.execute(
            f"{_SELECT_ITEM} WHERE changed_seq > ? ORDER BY +id", (seq,)).fetchall()]

    def events(self, incident_id: int | None = None, *, after: int = 0) -> list[Event]:
        sql = f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE id > ?"
        params: list[Any] = [after]
        if incident_id is not None:
            sql += " AND incident_id = ?"
            params.append(incident_id)
        return [_event(row) for row in self.conn.execute(sql + " ORDER BY id", params).fetchall()]

    def iter_events(self, batch: int = 5000) -> Iterator[Event]:
        """Every event in chain order, in batches (no read transaction held between)."""
        after = 0
        while True:
            rows = self.conn.execute(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events "
                                     "WHERE id > ? ORDER BY id LIMIT ?", (after, batch)).fetchall()
            if not rows:
                return
            chunk = [_event(row) for row in rows]
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
                                            follow_ups))

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
        row = self.conn.execute(f"{_SELECT_INCIDENT} WHERE dedup_key = ? AND {_OPEN_STATES}",
                                (key,)).fetchone()
        return _incident(row) if row else None

    def latest_by_dedup(self, key: str) -> Incident | None:
        row = self.conn.execute(f"{_SELECT_INCIDENT} WHERE dedup_key = ? AND dedup_key IS NOT NULL "
                                "ORDER BY id DESC LIMIT 1", (key,)).fetchone()
        return _incident(row) if row else None

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
        rows = self._batched(f"{_SELECT_INCIDENT} INDEXED BY incidents_open_dedup "
                             f"WHERE dedup_key IN ({{}}) AND {_OPEN_STATES}", keys)
        return {i.dedup_key: i for i in map(_incident, rows) if i.dedup_key is not None}

    def latest_by_dedup_keys(self, keys: Iterable[str]) -> dict[str, Incident]:
        """`latest_by_dedup` for many keys at once: each key's newest incident, if any."""
        rows = self._batched(f"{_SELECT_INCIDENT} WHERE id IN (SELECT max(id) FROM incidents "
                             "WHERE dedup_key IN ({}) GROUP BY dedup_key)", keys)
        return {i.dedup_key: i for i in map(_incident, rows) if i.dedup_key is not None}

    def last_events_at(self, incident_ids: Iterable[int]) -> dict[int, datetime]:
        """`last_event_at` for many incidents at once (those without events are left out)."""
        rows = self._batched("SELECT incident_id, max(at) FROM events WHERE incident_id IN ({}) "
                             "GROUP BY incident_id", incident_ids)
        return {incident_id: from_iso(at) for incident_id, at in rows if at}

    def events_after(self, incident_id: int, version: int) -> list[Event]:
        rows = self.conn.execute(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE incident_id = ? AND version > ? "
            "ORDER BY id", (incident_id, version)).fetchall()
        return [_event(r) for r in rows]

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
        row = _incident_row(incident, self.store.policy(incident.policy_id))
        self._write_row(f"INSERT INTO incidents ({', '.join(WRITTEN_COLUMNS)}) "
                        f"VALUES ({', '.join('?' * len(WRITTEN_COLUMNS))})",
                        [row[c] for c in WRITTEN_COLUMNS], incident)

    def insert_incidents(self, incidents: list[Incident]) -> None:
        """`insert_incident` for many new incidents, in one `executemany`."""
        self.insert_incident_rows(_incident_rows(incidents, self.store.policy))

    def insert_incident_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """`insert_incidents` for rows already made: tuples in WRITTEN_COLUMNS' order,
        times as `to_iso` text and `reached` as its JSON, exactly as `incident_values`
        makes them (a bulk import builds an opened incident's row without the
        `Incident`).

        Written as multi-row INSERTs, up to MULTI_ROW rows each: SQLite evaluates the
        `state` CHECK's IN list through a temporary b-tree it builds once per statement,
        so one single-row INSERT per row rebuilt it every row (~2 µs, a quarter of
        what SQLite spent on each incident row)."""
        columns = len(WRITTEN_COLUMNS)
        per = max(1, min(MULTI_ROW, self.conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
                         // columns,
                         self.conn.getlimit(sqlite3.SQLITE_LIMIT_COMPOUND_SELECT)))
        one = f"({', '.join('?' * columns)})"

        def sql(count: int) -> str:
            return f"INSERT INTO incidents ({', '.join(WRITTEN_COLUMNS)}) VALUES " + \
                ", ".join([one] * count)

        whole = len(rows) - len(rows) % per
        flat = chain.from_iterable
        try:
            if whole:
                self.conn.executemany(sql(per), (tuple(flat(rows[start:start + per]))
                                                 for start in range(0, whole, per)))
            if whole < len(rows):
                self.conn.execute(sql(len(rows) - whole), tuple(flat(rows[whole:])))
        except sqlite3.IntegrityError as exc:
            if "dedup_key" in str(exc):
                raise Refused("another open incident has the dedup key of one of these "
                              "incidents") from None
            raise

    def update_incidents(self, changes: list[tuple[Incident, int]]) -> None:
        """`update_incident` for many (incident, expected_version) pairs at once."""
        if not changes:
            return
        columns = [c for c in WRITTEN_COLUMNS if c != "id"]
        rows = _incident_rows((incident for incident, _ in changes), self.store.policy)
        cursor = self.conn.executemany(
            f"UPDATE incidents SET {', '.join(f'{c} = ?' for c in columns)} "
            "WHERE id = ? AND version = ?",
            [(*row[1:], row[0], version) for row, (_, version) in zip(rows, changes, strict=True)])
        if cursor.rowcount != len(changes):
            raise StoreError("incidents changed during the transaction")

    def update_incident(self, incident: Incident, expected_version: int) -> None:
        row = _incident_row(incident, self.store.policy(incident.policy_id))
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
        is a dict, or already its `canonical_json` text. Returns each event's (prev_hash, hash),
        linked exactly as `append_event` links them."""
        self.next_event_id()
        assert self._last is not None
        last_id, prev_hash = self._last
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
        self.conn.executemany(f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        self._last = (last_id, prev_hash)
        return links

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

    def claim_notice(self, incident_id: int, clock: str, due_at: datetime, status: str) -> bool:
        """True for the one process that records this notice first; False for the rest."""
        cursor = self.conn.execute("INSERT OR IGNORE INTO notices (incident_id, clock, due_at, "
                                   "status) VALUES (?, ?, ?, ?)",
                                   (incident_id, clock, to_iso(due_at), status))
        return cursor.rowcount == 1

    def link_notice(self, incident_id: int, clock: str, due_at: datetime, status: str,
                    event_id: int) -> None:
        self.conn.execute("UPDATE notices SET event_id = ? WHERE incident_id = ? AND clock = ? "
                          "AND due_at = ? AND status = ?",
                          (event_id, incident_id, clock, to_iso(due_at), status))
