"""`sladeck verify`: the hash chain is intact and every incident row equals its replay,
down to the SLA schedule and the clock history stored beside it.

What the chain proves, and what it does not: each event's hash covers its content and
the hash before it, so an event edited or removed through SQL without recomputing the
hashes after it is found. The chain has no secret: someone who can write the file can
rewrite an event and recompute every hash after it, and the chain is intact again.
Only a head recorded somewhere they cannot write (`verify --expect ID:HASH`) proves
that nothing up to it was changed or removed since.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from sladeck.domain.chain import GENESIS, canonical_json, event_hash
from sladeck.domain.clocks import schedule
from sladeck.domain.history import HistoryReplay
from sladeck.domain.model import Incident, to_iso
from sladeck.domain.timeline import apply_event
from sladeck.store import HISTORY_SINCE, SCHEDULES_SINCE, Store

COMPARED = ("title", "description", "service", "severity", "level", "state", "assignee",
            "external_ref", "dedup_key", "opened_at", "level_entered_at", "acknowledged_at",
            "resolved_at", "closed_at", "reached", "repeats", "policy_id", "version",
            "changed_seq", "source_cleared_at", "first_acknowledged_at")
MAX_PROBLEMS = 20  # after this many, the rest of the chain is still walked, not told
_HEAD = re.compile(r"(?:(\d{1,19}):)?([0-9a-f]{64})")
# SQLite's primary result codes for a damaged file: SQLITE_CORRUPT, SQLITE_NOTADB.
_CORRUPT_CODES = (11, 26)


@dataclass(frozen=True)
class Head:
    """An event's place in the chain, written `ID:HASH` (the hash alone is accepted)."""

    event_id: int | None
    hash: str

    def __str__(self) -> str:
        return self.hash if self.event_id is None else f"{self.event_id}:{self.hash}"


def parse_head(text: str) -> Head:
    """`ID:HASH` or `HASH` (64 hex digits) → a Head; ValueError otherwise."""
    match = _HEAD.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"{text!r} is not a chain head (give ID:HASH or the 64-digit "
                         "HASH that `sladeck verify` printed)")
    return Head(int(match[1]) if match[1] is not None else None, match[2])


@dataclass
class Verdict:
    """What `audit` found: problems (empty when all is well), the events, the head."""

    problems: list[str] = field(default_factory=list)
    events: int = 0
    head: Head = Head(0, GENESIS)
    expected_at: int | None = None  # the id of the event `expect` named, when found

    def tell(self, problem: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)


def corruption(exc: BaseException) -> str | None:
    """SQLite's words if `exc` (or the error it was raised from) says the database file
    is damaged, else None."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, sqlite3.DatabaseError) and \
                (getattr(seen, "sqlite_errorcode", 0) & 0xFF) in _CORRUPT_CODES:
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return None


def damaged(path: object, finding: str) -> str:
    """One line: the database file is damaged, and what to do next."""
    from shlex import quote

    lines = [line.strip() for line in finding.splitlines()
             if line.strip() and not line.startswith("*** ")]
    said = lines[0] if lines else finding.strip()
    if len(lines) > 1:
        said += f"; {len(lines) - 1} more problem(s)"
    return (f"{path}: the database file is damaged ({said}); restore the latest backup, "
            f"or save what SQLite can still read: `sqlite3 {quote(str(path))} .recover "
            "| sqlite3 NEW.db` (`.dump` where this sqlite3 has no .recover), then "
            "`sladeck verify --db NEW.db`")


def verify(store: Store) -> list[str]:
    """Every problem found, first bad event first; an empty list means all is well."""
    return audit(store).problems


def audit(store: Store, expect: Head | None = None) -> Verdict:
    """Check the chain and the rows; with `expect`, also that the event with that hash
    is still in the chain (at that id, when one is given).

    Events and rows are read in one snapshot: on a database others are writing to,
    rows read after the events would be newer than their replay.
    """
    with store.snapshot():
        verdict = _verify(store, expect)
    return verdict


def _verify(store: Store, expect: Head | None) -> Verdict:
    verdict = Verdict()
    tell = verdict.tell
    prev_hash, prev_id = GENESIS, 0
    expected_at = 0 if expect is not None and expect.hash == GENESIS else None
    replayed: dict[int, Incident] = {}
    histories: dict[int, HistoryReplay] = {}
    count = 0
    for event in store.iter_events():
        count += 1
        where = f"event {event.id} (INC-{event.incident_id}, {event.kind})"
        if event.id != prev_id + 1:
            tell(f"events {prev_id + 1}..{event.id - 1} are missing (deleted)")
        if event.prev_hash != prev_hash:
            tell(f"{where}: does not follow the event before it (chain broken)")
        expected = event_hash(event.prev_hash, event.id, event.incident_id, event.version,
                              to_iso(event.at), event.account,
                              event.name, event.kind, canonical_json(event.payload))
        if expected != event.hash:
            tell(f"{where}: its content does not match its hash (edited)")
        if expect is not None and event.hash == expect.hash:
            expected_at = event.id
        prev_hash, prev_id = event.hash, event.id
        if len(verdict.problems) >= MAX_PROBLEMS:
            continue  # enough told: only the chain (and the expected head) still matter
        current = replayed.get(event.incident_id)
        policy_id = event.payload["policy_id"] if event.kind == "opened" else (
            current.policy_id if current else None)
        try:
            levels = store.policy(policy_id).levels if policy_id else ()
            replayed[event.incident_id] = apply_event(
                current, event_id=event.id, version=event.version, kind=event.kind,
                payload=event.payload, at=event.at, actor=event.actor, levels=levels)
            replay = histories.get(event.incident_id)
            if replay is None:
                replay = histories[event.incident_id] = HistoryReplay(store.policy)
            replay.step(event)
        except (KeyError, ValueError, TypeError) as exc:
            tell(f"{where}: cannot be replayed ({exc})")
    verdict.events, verdict.head = count, Head(prev_id, prev_hash)
    verdict.expected_at = expected_at
    if expect is not None:
        _check_expected(verdict, expect, expected_at)
    if len(verdict.problems) >= MAX_PROBLEMS:
        return verdict
    _check_rows(store, replayed, histories, tell)
    return verdict


def _check_expected(verdict: Verdict, expect: Head, found_at: int | None) -> None:
    """The recorded head must still be in the chain, first among the problems."""
    if found_at is None:
        verdict.problems.insert(0, f"the expected head {expect} is not in the chain: "
                                   "history up to it was rewritten or removed")
    elif expect.event_id is not None and expect.event_id != found_at:
        verdict.problems.insert(0, f"the expected head {expect} is event {found_at}'s "
                                   f"hash, not event {expect.event_id}'s: check the "
                                   "recorded head")


def _check_rows(store: Store, replayed: dict[int, Incident],
                histories: dict[int, HistoryReplay], tell: Callable[[str], None]) -> None:
    """Every incident row equals its replay, its clock history the one its timeline
    gives, and its SLA schedule its policy's over that history."""
    stored = {i.id: i for i in store.incidents(None)}
    schedules = {i.id: i for i in store.queue_items(
        ("open", "acknowledged", "resolved", "closed"))} \
        if store.schema_version() >= SCHEDULES_SINCE else None  # an old file, not migrated
    kept_histories = store.clock_histories() if store.schema_version() >= HISTORY_SINCE \
        else None
    for incident_id in sorted(set(stored) | set(replayed)):
        row, replay = stored.get(incident_id), replayed.get(incident_id)
        if row is None or replay is None:
            tell(f"INC-{incident_id}: " + ("has no events" if replay is None
                                           else "row is missing"))
            continue
        a, b = asdict(row), asdict(replay)
        wrong = [key for key in COMPARED if a[key] != b[key]]
        if wrong:
            tell(f"INC-{incident_id}: stored {wrong[0]} {a[wrong[0]]!r} differs "
                 f"from its timeline ({b[wrong[0]]!r})")
            continue
        if schedules is None:
            continue
        kept = schedules.get(incident_id)
        history = histories[incident_id].history() if incident_id in histories else ()
        try:
            expected = schedule(replay, store.policy(replay.policy_id), history)
        except (KeyError, ValueError):
            continue  # a policy problem, reported by the replay above
        if kept_histories is not None and kept_histories.get(incident_id, ()) != history:
            tell(f"INC-{incident_id}: stored clock history differs from its timeline "
                 "(its SLA record would be wrong)")
            continue
        if kept is None or expected.values() != kept.values():
            tell(f"INC-{incident_id}: stored SLA schedule differs from its "
                 "timeline (the dashboard would order it wrongly)")
