"""What the domain needs from storage, declared by the domain: the store's port.

`actions`, `ingest` and the notices depend on these Protocols, never on a storage class;
`sladeck.store.Store` (SQLite) is the one implementation. The records an import hands
the store (`ImportPlan`) are defined here too: the domain decides every id, event and
row value, the store only writes them.

Errors every write may raise, from `Storage.write` or any method of a transaction:
`StoreError` (the database cannot be used safely), with its kinds `FileReplaced` (the
path names another file, or none, since it was opened: nothing was written),
`ReadOnly` and `Damaged`. A transaction that raises is rolled back whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

from sladeck.domain.clocks import Schedule
from sladeck.domain.history import ClockCycle
from sladeck.domain.model import OPEN, Actor, Event, Incident
from sladeck.domain.standup import FollowUpEntry
from sladeck.policy import Policy


@runtime_checkable
class PolicySource(Protocol):
    def policy(self, policy_id: int) -> Policy:
        """The policy stored under `policy_id` (parsed once per process). Raises
        `StoreError` when no policy has that id."""
        ...


@runtime_checkable
class Storage(PolicySource, Protocol):
    """A place incidents are kept: read outside a transaction, written inside one."""

    def incidents(self, states: Iterable[str] | None = ...) -> list[Incident]:
        """The incidents in `states` (every state when None), by id; read in one
        statement, no transaction left open."""
        ...

    def activity(self, since: datetime, until: datetime,
                 kinds: Sequence[str] = ...) -> dict[str, int]:
        """{event kind: how many distinct incidents had one} for events at or after
        `since` and before `until` (only `kinds`, when given); a kind with none is
        left out. `sla_breached` also counts the open or acknowledged incidents whose
        running clock breached in the window, whether a notice was recorded or not.
        Costs what the window holds, not the whole log."""
        ...

    def follow_up_entries(self, *, include_done: bool = False) -> list[FollowUpEntry]:
        """Follow-ups across every incident (only those not done unless
        `include_done`), each with its incident's title, severity and state, by id."""
        ...

    def finished_incidents(self, states: Sequence[str], *, limit: int,
                           before_id: int | None = None) -> list[Incident]:
        """At most `limit` incidents in `states` (resolved, closed), newest id first,
        with ids below `before_id` when given: one page, read on demand."""
        ...

    def told_notices(self, incident_ids: Iterable[int]) -> set[tuple[int, str, str]]:
        """The (incident id, notice kind, key) of every notice already claimed for
        `incident_ids` (read outside a transaction: a hint, the claim decides)."""
        ...

    def clock_history(self, incident_id: int) -> tuple[ClockCycle, ...]:
        """The incident's clock history as stored (the derived record of SPEC §3, kept in
        the transaction of each event; `verify` recomputes it), in start order."""
        ...

    def write(self, *, bulk: bool = False) -> AbstractContextManager[ImportTransaction]:
        """One write transaction: it holds the write lock from the start (no one else
        writes until it ends), commits when the block ends, rolls back when it raises.
        `bulk` only tunes it for many rows. Raises `ReadOnly`, `Damaged`, `FileReplaced`
        (checked holding the lock, before anything is written) or `StoreError` (locked
        past the busy timeout, disk full ...); nothing is written then."""
        ...


@runtime_checkable
class WriteTransaction(Protocol):
    """Everything one action does inside its transaction. Reads see this transaction's
    own writes; ids are assigned here, under the write lock, so they never collide."""

    # -- incidents ------------------------------------------------------------------------
    def incident(self, incident_id: int) -> Incident | None:
        """The incident as stored now, or None."""
        ...

    def open_by_dedup(self, key: str) -> Incident | None:
        """The open or acknowledged incident with dedup key `key`, or None."""
        ...

    def next_incident_id(self) -> int:
        """The id the next inserted incident takes."""
        ...

    def policy_id(self, policy: Policy, now: datetime) -> int:
        """The stored id of `policy`, storing its text (once per distinct text) if new."""
        ...

    def insert_incident(self, incident: Incident) -> None:
        """Store a new incident (and its SLA schedule). Raises `Refused` when another
        open incident has its dedup key (the store enforces one open per key)."""
        ...

    def update_incident(self, incident: Incident, expected_version: int) -> None:
        """Store the incident's new state (its event already appended: the store derives
        its clock history and schedule from its events), if the stored one is still at
        `expected_version`; raises `StoreError` otherwise (under the write lock that
        means a bug: the caller read it in this transaction), or `Refused` on a dedup
        key clash. A version seen before the transaction is checked by the caller,
        which raises `Conflict` itself."""
        ...

    # -- the timeline -----------------------------------------------------------------------
    def events_after(self, incident_id: int, version: int) -> list[Event]:
        """The incident's events after `version`, in chain order (for a `Conflict`'s
        message: who changed what since the person looked)."""
        ...

    def last_event_at(self, incident_id: int) -> datetime | None:
        """When the incident's latest event happened, or None."""
        ...

    def newest_event(self) -> Event | None:
        """The last event written to the file (the highest id, whatever its incident), or
        None in an empty file: the file's own idea of the present (`stamps`). Cheap."""
        ...

    def next_event_id(self) -> int:
        """The id the next appended event takes."""
        ...

    def append_event(self, incident_id: int, version: int, at: datetime, actor: Actor,
                     kind: str, payload: dict[str, Any]) -> Event:
        """Append one event to the hash chain (`chain.event_hash` over the previous
        event's hash) and return it as stored."""
        ...

    # -- what an event leaves beside the incident -------------------------------------------
    def add_handoff(self, incident_id: int, event_id: int, from_level: str, to_level: str,
                    trigger: str, reason: str, fields: dict[str, str]) -> None:
        """Record an escalation's handoff, made by event `event_id`."""
        ...

    def ticks(self, incident_id: int) -> set[tuple[str, str]]:
        """The (checklist, item) pairs ticked on the incident."""
        ...

    def set_tick(self, incident_id: int, checklist: str, item: str,
                 event_id: int | None) -> None:
        """Tick an item (by event `event_id`), or untick it (None)."""
        ...

    def add_review(self, incident_id: int, event_id: int, fields: dict[str, str]) -> None:
        """Record the incident's post-incident review (replacing an earlier one)."""
        ...

    def add_follow_up(self, incident_id: int, event_id: int, kind: str, description: str,
                      owner: str, due: str | None) -> int:
        """Record a follow-up; returns its id."""
        ...

    def follow_up(self, follow_up_id: int) -> tuple[int, int | None] | None:
        """(incident id, event id that finished it or None) of a follow-up, or None."""
        ...

    def finish_follow_up(self, follow_up_id: int, event_id: int) -> None:
        """Mark a follow-up done by event `event_id`."""
        ...

    # -- notices: each notice of SPEC §6 is told once, whichever process sees it first ------
    def claim_notice(self, incident_id: int, kind: str, key: str) -> bool:
        """True for the one transaction that claims notice (incident, kind, key) first,
        False for every later one (in any process): the database's unique key decides."""
        ...

    def link_notice(self, incident_id: int, kind: str, key: str, event_id: int) -> None:
        """Record which event told a claimed notice."""
        ...


@runtime_checkable
class ImportTransaction(WriteTransaction, Protocol):
    """A write transaction that also takes a whole import: lookups a batch at a time,
    and the plan written at once."""

    def open_by_dedup_keys(self, keys: Iterable[str]) -> dict[str, Incident]:
        """`open_by_dedup` for many keys: the open incident of each key that has one."""
        ...

    def latest_by_dedup_keys(self, keys: Iterable[str]) -> dict[str, Incident]:
        """Each key's newest incident in any state, for the keys that have one."""
        ...

    def last_events_at(self, incident_ids: Iterable[int]) -> dict[int, datetime]:
        """`last_event_at` for many incidents (those without events are left out)."""
        ...

    def write_import(self, plan: ImportPlan) -> list[tuple[str, str]]:
        """Write the plan: its new incidents, its events (their ids must continue the
        chain from `next_event_id`, else `StoreError`), and its changed incidents (each
        still at the version the plan says, else `StoreError`). Raises `Refused` when a
        new incident's dedup key is already open. Returns each event's (prev_hash,
        hash), in order."""
        ...


# -- what an import hands the store ----------------------------------------------------------

@dataclass(slots=True)
class NewEvent:
    """One event to append; `payload` is a dict, or already its `chain.canonical_json`."""

    id: int
    incident_id: int
    version: int
    at: datetime
    kind: str
    payload: dict[str, Any] | str


@dataclass(slots=True)
class Opening:
    """A new incident exactly as `apply_event` opens it from its `opened` event, made
    without an `Incident` (a frozen 25-field Incident per line was an import's largest
    cost). It reads like one: the class constants below are what every opening sets,
    and `schedule` is its SLA schedule, already worked out."""

    id: int
    title: str
    description: str
    service: str
    severity: str
    level: str
    external_ref: str | None
    dedup_key: str | None
    opened_at: datetime
    opened_by: str
    level_entered_at: datetime  # = opened_at
    reached: dict[str, datetime]  # {level: opened_at}
    policy_id: int
    changed_seq: int  # its opening event's id
    updated_at: datetime  # when its opening event was recorded
    updated_by: str  # = opened_by
    schedule: Schedule
    state: ClassVar[str] = OPEN
    assignee: ClassVar[None] = None
    acknowledged_at: ClassVar[None] = None
    acknowledged_by: ClassVar[None] = None
    resolved_at: ClassVar[None] = None
    closed_at: ClassVar[None] = None
    repeats: ClassVar[int] = 0
    version: ClassVar[int] = 1
    last_change: ClassVar[str] = "opened"
    source_cleared_at: ClassVar[None] = None
    first_acknowledged_at: ClassVar[None] = None


@dataclass(slots=True)
class ImportPlan:
    """What one import writes, every decision made: incidents to insert (in id order;
    an `Incident` when later lines of the same file changed it), events in chain order,
    and the existing incidents it changed, each with the version it had."""

    actor: Actor
    new: list[Opening | Incident] = field(default_factory=list)
    events: list[NewEvent] = field(default_factory=list)
    changed: list[tuple[Incident, int]] = field(default_factory=list)


@runtime_checkable
class ReportSource(Protocol):
    """The report and digest queries (SPEC §11; store/reports.py has their SQL). Times
    are `to_iso` text; a report's cohort is the incidents opened in [since, until), read
    as recorded before `until`; `by` is one of `reports.GROUPINGS`."""

    def report_cohort(self, by: str, since: str, until: str) -> Iterable[tuple[Any, ...]]:
        """The incidents opened in [since, until): (incident id, group, policy id,
        severity, julian day of its opening)."""
        ...

    def report_events(self, since: str, until: str) -> Iterable[tuple[Any, ...]]:
        """The cohort's events of `reports.REPORT_KINDS` recorded before `until`,
        incident by incident, each one's in event order: (incident id, index of its
        kind in REPORT_KINDS, julian day of the event, level entered or None)."""
        ...

    def report_escalations(self, by: str, since: str, until: str) -> list[tuple[Any, ...]]:
        """(group, to level, trigger, count)."""
        ...

    def report_follow_ups(self, by: str, since: str, until: str, today: str
                          ) -> list[tuple[Any, ...]]:
        """(group, follow-ups open at until, of them due before `today`)."""
        ...

    def report_compliance(self, by: str, since: str, until: str) -> list[tuple[Any, ...]]:
        """(group, clock kind, outcome at until, cycles) from the stored clock history
        (clock_cycles, the derived record of `history.clock_history`)."""
        ...

    def report_daily(self, since: str, until: str) -> list[tuple[str, int]]:
        """(UTC date, incidents opened)."""
        ...

    def digest_events(self, since: str, until: str) -> list[tuple[Any, ...]]:
        """The window's opened/acknowledged/escalated/resolved/closed/reopened events."""
        ...

    def events(self, incident_id: int) -> list[Event]:
        """One incident's events in chain order (the digest replays its clock history)."""
        ...

    def breach_candidates(self, since: str, until: str, since_us: int, until_us: int
                          ) -> list[Incident]:
        """Incidents that may have breached in the window: active ones whose stored
        breach instant falls in it, and those with events in it."""
        ...

    def follow_ups_due(self, through: str) -> list[tuple[Any, ...]]:
        """Open follow-ups due on or before `through`: (id, incident id, kind,
        description, owner, due)."""
        ...
