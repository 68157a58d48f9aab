"""The dashboard's queue as plain data: rows, filter, order, and when each row changes.

A row keeps only what the queue shows of an incident (a `QueueItem`: its cells and its
SLA `Schedule`, never the whole incident) and what that gives now (risk, the headline
deadline, when that next changes). A one-second tick costs nothing per row: it only
pops the rows whose risk may have moved and re-reads their schedules, with no I/O.
Every row is kept in sort order (`order`) and the filtered rows (`visible`) are a
subsequence of it, so a changed row moves with a bisect instead of a full sort, a new
filter is one pass without a sort, and the counts the summary line shows are kept up
to date as rows come and go. Countdown text is computed by the view for the rows on
screen, never here.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from sys import intern

from sladeck.domain.clocks import (
    BREACHED,
    DUE,
    ID_LIMIT,
    Schedule,
    from_us,
    order_key,
    schedule,
    to_us,
)
from sladeck.domain.history import ClockCycle
from sladeck.domain.model import ACKNOWLEDGED, CLOSED, OPEN, Incident, format_ref, to_iso
from sladeck.policy import Policy

DEFAULT_STATES = frozenset({OPEN, ACKNOWLEDGED})
_ID = ID_LIMIT  # incident ids below this (a trillion) pack into sort keys and heap entries
BULK = 256  # merging more rows than this re-sorts once instead of moving each row


@dataclass(frozen=True)
class Filter:
    """What the queue shows: text and the severity, level, state and risk chosen."""

    text: str = ""
    severities: frozenset[str] = frozenset()
    levels: frozenset[str] = frozenset()
    states: frozenset[str] = DEFAULT_STATES
    risks: frozenset[str] = frozenset()
    mine: bool = False

    def describe(self) -> str:
        parts = [f"/{self.text}"] if self.text else []
        for values in (self.severities, self.levels, self.risks):
            if values:
                parts.append(",".join(sorted(values)))
        if self.states != DEFAULT_STATES:
            parts.append(",".join(sorted(self.states)) or "no state")
        if self.mine:
            parts.append("mine")
        return " ".join(parts)


def _key(row: Row) -> int:
    return row.key


@dataclass(frozen=True, slots=True)
class QueueItem(Schedule):
    """What the queue keeps of an incident: its SLA schedule and the cells it shows.

    About a third of an `Incident`'s memory (10,000 of them: 4.1 MiB, not 11.9); the
    dashboard reads the whole incident from the store when someone acts on it or opens it.
    """

    id: int
    title: str
    service: str
    assignee: str | None
    severity: str
    level: str
    state: str
    policy_id: int
    version: int
    changed_seq: int
    source_cleared_at: str | None = None  # as stored: set while the alert's source says it ended

    @property
    def ref(self) -> str:
        return format_ref(self.id)

    @classmethod
    def of(cls, incident: Incident, policy: Policy,
           history: tuple[ClockCycle, ...] | None = None) -> QueueItem:
        """The incident's queue item; its schedule from its clock `history` (by default
        the one its state implies)."""
        i, s = incident, schedule(incident, policy, history)
        return cls(s.active, s.breached, s.breach_at, s.breach_kind, s.due_at, s.due_kind,
                   s.warn_at, s.ack_at, i.id, i.title, intern(i.service),
                   intern(i.assignee) if i.assignee else None, intern(i.severity),
                   intern(i.level), intern(i.state), i.policy_id, i.version, i.changed_seq,
                   i.source_cleared_at and to_iso(i.source_cleared_at))


@dataclass(slots=True)
class Row:
    """One incident as the queue shows it now: no clocks kept, only the headline."""

    incident: QueueItem
    risk: str
    kind: str | None  # the headline deadline's clock kind, None when nothing ticks
    due_us: int | None  # ... and when it falls due (`to_us` microseconds)
    changes_at: int | None  # when risk or the headline next changes (microseconds)
    key: int = 0  # the queue's order: `clocks.order_key`
    haystack: str | None = None  # the search text: see `_hay`

    @property
    def due_at(self) -> datetime | None:
        return from_us(self.due_us) if self.due_us is not None else None


def search_text(item: QueueItem) -> str:
    """The text a `/` filter searches in (casefolded); the store's `queue_ids` searches
    the same text."""
    return " ".join((item.ref, item.title, item.service, item.assignee or "",
                     item.severity, item.level)).casefold()


def _hay(row: Row) -> str:
    """The text a `/` filter searches in, made the first time a filter needs it: 1 MiB
    at 10,000 open that a dashboard nobody filters never needs."""
    if row.haystack is None:
        row.haystack = search_text(row.incident)
    return row.haystack


@dataclass(frozen=True)
class Transition:
    """An incident whose risk worsened into due or breached."""

    incident: QueueItem
    before: str
    after: str


def worsened(before: str, new: Row) -> list[Transition]:
    """The transition of a row whose risk went from `before` into due or breached."""
    rank = {BREACHED: 0, DUE: 1}
    if new.risk in rank and rank[new.risk] < rank.get(before, 9):
        return [Transition(new.incident, before, new.risk)]
    return []


@dataclass
class Queue:
    """The dashboard's open incidents, worst first, kept in order as they change."""

    policy_for: Callable[[int], Policy]
    me: tuple[str, ...] = ()
    filter: Filter = field(default_factory=Filter)
    rows: dict[int, Row] = field(default_factory=dict)
    visible: list[Row] = field(default_factory=list)
    order: list[Row] = field(default_factory=list)  # every row, in queue order
    by_severity: Counter[str] = field(default_factory=Counter)  # active rows only
    by_risk: Counter[str] = field(default_factory=Counter)
    max_id: int = 0
    _heap: list[int] = field(default_factory=list)  # changes_at * _ID + id, soonest first
    _ranks: dict[int, dict[str, int]] = field(default_factory=dict)  # policy id → ranks
    complete: bool = True  # False while only the worst rows are loaded

    def item(self, incident: Incident | QueueItem) -> QueueItem:
        if isinstance(incident, QueueItem):
            return incident
        return QueueItem.of(incident, self.policy_for(incident.policy_id))

    def _row(self, item: QueueItem, now: int, haystack: str | None = None) -> Row:
        risk, kind, due, changes = item.at(now)
        ranks = self._ranks.get(item.policy_id)
        if ranks is None:
            policy = self.policy_for(item.policy_id)
            ranks = self._ranks[item.policy_id] = {s: n for n, s in enumerate(policy.severities)}
        key = order_key(risk, due, ranks[item.severity], item.id)  # as `sladeck list`
        if changes is not None:
            heapq.heappush(self._heap, changes * _ID + item.id)
        return Row(item, risk, kind, due, changes, key, haystack)

    # -- counts ------------------------------------------------------------------------

    def _count(self, row: Row, sign: int) -> None:
        if row.incident.active:
            self.by_severity[row.incident.severity] += sign
            self.by_risk[row.risk] += sign

    def counts_from(self, counts: tuple[dict[str, int], dict[str, int]]) -> None:
        """Counts read from the store, while only the worst rows are loaded."""
        self.by_severity, self.by_risk = Counter(counts[0]), Counter(counts[1])

    def summary(self) -> tuple[Counter[str], Counter[str]]:
        """(active incidents by severity, active incidents by risk); kept, not counted."""
        return self.by_severity, self.by_risk

    # -- loading and merging -----------------------------------------------------------

    def load(self, incidents: Iterable[Incident | QueueItem], now: datetime, *,
             complete: bool = True) -> None:
        """Every row afresh; `complete=False` for the worst rows only, to show first."""
        self.rows, self._heap, self.order, self.visible = {}, [], [], []
        self.by_severity, self.by_risk = Counter(), Counter()
        self.complete = complete
        self.merge(incidents, now)

    def merge(self, incidents: Iterable[Incident | QueueItem], now: datetime, *,
              ordered: bool = True) -> list[Transition]:
        """Take in new or changed incidents; closed ones leave memory. `ordered=False`
        (a load in steps) leaves the order to `take`, which sorts once."""
        items = [self.item(i) for i in incidents]
        bulk = len(items) > BULK or not ordered
        stamp = to_us(now)
        transitions = []
        for item in items:
            old = self.rows.get(item.id)
            if old is not None:
                self._drop(old, bulk)
            if item.state == CLOSED:
                continue
            row = self._row(item, stamp)
            self.max_id = max(self.max_id, item.id)
            self._put(row, bulk)
            if old is not None:
                transitions += self._worse(old, row)
        if bulk and ordered:
            self.order = sorted(self.rows.values(), key=_key)
            self._refilter()
        return transitions

    def take(self, staged: Queue) -> None:
        """Every row of `staged` (loaded in steps with `ordered=False`) in place of this
        queue's, ordered once and filtered by this queue's filter."""
        self.rows, self._heap, self.max_id = staged.rows, staged._heap, staged.max_id
        self.by_severity, self.by_risk = staged.by_severity, staged.by_risk
        self.complete = True
        self.order = sorted(self.rows.values(), key=_key)
        self._refilter()

    def _drop(self, row: Row, bulk: bool = False) -> None:
        del self.rows[row.incident.id]
        self._count(row, -1)
        if not bulk:
            _remove(self.order, row)
            if self._matches(row):
                _remove(self.visible, row)

    def _put(self, row: Row, bulk: bool = False) -> None:
        self.rows[row.incident.id] = row
        self._count(row, +1)
        if not bulk:
            insort(self.order, row, key=_key)
            if self._matches(row):
                insort(self.visible, row, key=_key)

    def tick(self, now: datetime) -> list[Transition]:
        """Re-assess only the rows whose assessment changes by `now`."""
        stamp = to_us(now)
        transitions: list[Transition] = []
        heap = self._heap
        while heap and heap[0] // _ID <= stamp:
            incident_id = heapq.heappop(heap) % _ID
            old = self.rows.get(incident_id)
            if old is None or old.changes_at is None or old.changes_at > stamp:
                continue  # a stale heap entry
            row = self._row(old.incident, stamp, old.haystack)
            if row.key == old.key:  # the key starts with the risk
                self._replace(old, row)  # same place: no move, no count change
            else:
                self._drop(old)
                self._put(row)
            transitions += self._worse(old, row)
        return transitions

    def _replace(self, old: Row, new: Row) -> None:
        self.rows[new.incident.id] = new
        for rows in (self.order, self.visible):
            index = bisect_left(rows, old.key, key=_key)
            if index < len(rows) and rows[index] is old:
                rows[index] = new

    @staticmethod
    def _worse(old: Row, new: Row) -> list[Transition]:
        return worsened(old.risk, new)

    # -- filtering -------------------------------------------------------------------------

    def prepare_search(self) -> None:
        """Make every row's search text now (someone is about to type a filter), so
        that their first keystroke is as quick as the next ones."""
        for row in self.rows.values():
            if row.haystack is None:
                _hay(row)

    def set_filter(self, new: Filter) -> None:
        old, self.filter = self.filter, new
        if new == old:
            return
        same_but_text = (old.severities, old.levels, old.states, old.risks, old.mine) == \
            (new.severities, new.levels, new.states, new.risks, new.mine)
        if same_but_text and old.text.casefold() in new.text.casefold():
            # Typing one more character: only rows shown now can still match.
            text = new.text.casefold()
            self.visible = [r for r in self.visible if text in (r.haystack or _hay(r))]
        else:
            self._refilter()

    def _matches(self, row: Row) -> bool:
        f, i = self.filter, row.incident
        return ((not f.states or i.state in f.states)
                and (not f.severities or i.severity in f.severities)
                and (not f.levels or i.level in f.levels)
                and (not f.risks or row.risk in f.risks)
                and (not f.mine or (i.assignee or "") in self.me)
                and (not f.text or f.text.casefold() in (row.haystack or _hay(row))))

    def _refilter(self) -> None:
        """The filtered rows, in order: one pass over the sorted rows, no sort."""
        f = self.filter
        rows: Iterable[Row] = self.order
        if f.states:
            rows = [r for r in rows if r.incident.state in f.states]
        if f.severities:
            rows = [r for r in rows if r.incident.severity in f.severities]
        if f.levels:
            rows = [r for r in rows if r.incident.level in f.levels]
        if f.risks:
            rows = [r for r in rows if r.risk in f.risks]
        if f.mine:
            rows = [r for r in rows if (r.incident.assignee or "") in self.me]
        if f.text:
            text = f.text.casefold()
            rows = [r for r in rows if text in (r.haystack or _hay(r))]
        self.visible = list(rows) if rows is self.order else rows  # type: ignore[assignment]

    def index_of(self, incident_id: int | None) -> int | None:
        """The row's place among the visible rows (a bisect on its sort key)."""
        row = self.rows.get(incident_id) if incident_id is not None else None
        if row is None:
            return None
        index = bisect_left(self.visible, row.key, key=_key)
        if index < len(self.visible) and self.visible[index] is row:
            return index
        return None


def _remove(rows: list[Row], row: Row) -> None:
    index = bisect_left(rows, row.key, key=_key)
    if index < len(rows) and rows[index] is row:
        del rows[index]
    else:  # not where its key says (never expected): fall back to a scan
        for i, r in enumerate(rows):
            if r is row:
                del rows[i]
                return

