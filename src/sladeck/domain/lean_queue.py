"""The queue for very many open incidents: every row's place, only the shown rows' cells.

A `Queue` keeps each row whole (~690 bytes: its title, schedule and sort key), 66 MiB
at 100,000 open, more than the whole dashboard may use. A `LeanQueue` keeps, for each
row, its order key (in one sorted list), one heap entry for its next change, and ten
bytes in arrays indexed by incident id (state, risk and severity, headline deadline):
about 110 bytes a row. It answers what a `Queue` answers, in the same order
(`clocks.order_key`), with the same counts and transitions, but reads the rows it shows
from the store a window at a time (`visible`: a sequence whose items are `Row`s), and
asks the store which rows match a level, assignee or text filter when the filter changes.

The price: a tick that reaches a row's next change reads that row (by id: one indexed
read a tick that has any), and scrolling to rows not read yet reads a window of them.
Severity ranks come from one list (the current policy's order, other names after it),
as the store's first-frame order has them, so the severity is known from the key.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol, overload

from sladeck.domain.clocks import ID_LIMIT, NEVER, RISKS, SEVERITY_LIMIT, order_key, to_us
from sladeck.domain.model import ACKNOWLEDGED, CLOSED, OPEN, RESOLVED, Incident
from sladeck.domain.queue import (
    BULK,
    Filter,
    QueueItem,
    Row,
    Transition,
    search_text,
    worsened,
)
from sladeck.policy import Policy

_ID = ID_LIMIT
_STATE_CODE = {OPEN: 1, ACKNOWLEDGED: 2, RESOLVED: 3}  # 0: not in the queue
_CODE_STATE = {code: state for state, code in _STATE_CODE.items()}
_ACTIVE_CODES = (1, 2)
WINDOW = 128  # rows read at a time when the screen shows rows not read yet
CACHE_LIMIT = 2048  # rows kept read; more, and the kept ones are forgotten
RETRY_US = 1_000_000  # a row that could not be read is tried again a second later


class QueueSource(Protocol):
    """What a `LeanQueue` reads from the store (an error reading gives nothing)."""

    def queue_items_by_id(self, ids: Iterable[int]) -> list[QueueItem]:
        """The queue items of `ids` (those that exist), in any order."""
        ...

    def queue_ids(self, states: Sequence[str], *, levels: Sequence[str] = (),
                  assignees: Sequence[str] | None = None, text: str = "") -> set[int]:
        """Ids of the incidents in `states` at one of `levels` (any when empty),
        assigned to one of `assignees` (any when None; "" for none), whose
        `queue.search_text` contains `text` (casefolded)."""
        ...


def _split(key: int) -> tuple[int, int]:
    """An order key's (risk and severity byte, encoded headline deadline)."""
    high = key // _ID
    return high >> 62, high & NEVER


class LeanQueue:
    """The dashboard's open incidents, worst first, without keeping the rows."""

    complete = True

    def __init__(self, policy_for: Callable[[int], Policy], source: QueueSource,
                 severities: Sequence[str], me: tuple[str, ...] = (),
                 filter: Filter | None = None) -> None:
        self.policy_for, self.source, self.me = policy_for, source, me
        self.filter = filter or Filter()
        self._names: list[str] = list(severities)[: SEVERITY_LIMIT - 1]
        self._ranks = {name: n for n, name in enumerate(self._names)}
        self.order: list[int] = []  # every row's key, sorted
        self._visible: list[int] = self.order  # the keys the filter shows (`order` when all)
        self._state = bytearray()  # by id: _STATE_CODE, 0 when not in the queue
        self._class = bytearray()  # by id: RISK_RANK << 6 | severity rank
        self._due = array("q")  # by id: the key's encoded headline deadline
        self._heap: list[int] = []  # changes_at * _ID + id, soonest first
        self._rows: dict[int, Row] = {}  # rows read, by id
        self._matched: set[int] | None = None  # ids the store says match; None: no need
        self.by_severity: Counter[str] = Counter()  # active rows only
        self.by_risk: Counter[str] = Counter()
        self.max_id = 0
        self._stamp = 0  # the instant (`to_us`) every key was assessed at

    # -- the rows' keys ----------------------------------------------------------------

    def _rank(self, severity: str) -> int:
        rank = self._ranks.get(severity)
        if rank is None:
            if len(self._names) < SEVERITY_LIMIT - 1:
                self._names.append(severity)
            rank = self._ranks[severity] = len(self._names) - 1
        return rank

    def _key(self, incident_id: int) -> int:
        return ((self._class[incident_id] << 62) | self._due[incident_id]) * _ID + incident_id

    def _row(self, item: QueueItem, stamp: int) -> tuple[Row, int | None]:
        risk, kind, due, changes = item.at(stamp)
        key = order_key(risk, due, self._rank(item.severity), item.id)
        return Row(item, risk, kind, due, changes, key), changes

    def _grow(self, incident_id: int) -> None:
        if incident_id >= len(self._state):
            more = max(incident_id + 1, len(self._state) * 3 // 2) - len(self._state)
            self._state.extend(bytes(more))
            self._class.extend(bytes(more))
            self._due.frombytes(bytes(8 * more))

    def _count(self, incident_id: int, sign: int) -> None:
        if self._state[incident_id] in _ACTIVE_CODES:
            byte = self._class[incident_id]
            self.by_severity[self._names[byte & (SEVERITY_LIMIT - 1)]] += sign
            self.by_risk[RISKS[byte >> 6]] += sign

    def _put(self, row: Row, bulk: bool) -> None:
        item = row.incident
        self._grow(item.id)
        self._state[item.id] = _STATE_CODE.get(item.state, 3)
        self._class[item.id], self._due[item.id] = _split(row.key)
        self._count(item.id, +1)
        self.max_id = max(self.max_id, item.id)
        if not bulk:
            insort(self.order, row.key)
            if self._visible is not self.order:
                if self._shows(row.key):
                    insort(self._visible, row.key)
            elif not self._shows(row.key):  # the first row the filter hides
                self._refilter()

    def _drop(self, incident_id: int, bulk: bool) -> int | None:
        """Take a row out; its key, or None when it was not in the queue."""
        if incident_id >= len(self._state) or not self._state[incident_id]:
            return None
        key = self._key(incident_id)
        self._count(incident_id, -1)
        if not bulk:
            _remove(self.order, key)
            if self._visible is not self.order:
                _remove(self._visible, key)
        self._state[incident_id] = 0
        return key

    # -- loading, merging, ticking -----------------------------------------------------

    def item(self, incident: Incident | QueueItem) -> QueueItem:
        if isinstance(incident, QueueItem):
            return incident
        return QueueItem.of(incident, self.policy_for(incident.policy_id))

    def merge(self, incidents: Iterable[Incident | QueueItem], now: datetime, *,
              ordered: bool = True) -> list[Transition]:
        """Take in new or changed incidents; closed ones leave. `ordered=False` (a load
        in steps) leaves the order to `settle`."""
        items = [self.item(i) for i in incidents]
        bulk = len(items) > BULK or not ordered
        stamp = self._stamp = to_us(now)
        transitions = []
        for item in items:
            old = self._drop(item.id, bulk)
            if item.state == CLOSED or item.state not in _STATE_CODE:
                self._rows.pop(item.id, None)
                continue
            if self._matched is not None:  # before `_put`, which asks it
                (self._matched.add if self._side_matches(item) else self._matched.discard)(
                    item.id)
            row, changes = self._row(item, stamp)
            self._put(row, bulk)
            if changes is not None:
                heapq.heappush(self._heap, changes * _ID + item.id)
            if item.id in self._rows:
                self._rows[item.id] = row
            if old is not None:
                transitions += worsened(RISKS[old // _ID >> 68], row)
        if bulk and ordered:
            self._reorder()
        return transitions

    def settle(self, filter: Filter, now: datetime) -> None:
        """After a load in steps: every row in order, filtered by `filter`."""
        self._stamp = to_us(now)
        self.filter = Filter()
        self._reorder()
        self.set_filter(filter)

    def _reorder(self) -> None:
        state, key = self._state, self._key
        self.order = sorted(key(i) for i in range(len(state)) if state[i])
        self._refilter()

    def tick(self, now: datetime) -> list[Transition]:
        """Re-assess only the rows whose assessment changes by `now` (read by id)."""
        stamp = self._stamp = to_us(now)
        heap, due = self._heap, {}  # in the order the heap gives them, once each
        while heap and heap[0] // _ID <= stamp:
            incident_id = heapq.heappop(heap) % _ID
            if incident_id < len(self._state) and self._state[incident_id]:
                due[incident_id] = None
        if not due:
            return []
        found = {item.id: item for item in self.source.queue_items_by_id(due)}
        transitions: list[Transition] = []
        for incident_id in due:
            item = found.get(incident_id)
            if item is None:  # not read (the store refused): try again shortly
                heapq.heappush(heap, (stamp + RETRY_US) * _ID + incident_id)
                continue
            transitions += self.merge([item], now)
        return transitions

    # -- what is shown -------------------------------------------------------------------

    @property
    def visible(self) -> _Rows:
        """The rows the filter shows, in order, read from the store as they are asked for."""
        return _Rows(self)

    def summary(self) -> tuple[Counter[str], Counter[str]]:
        return self.by_severity, self.by_risk

    def prepare_search(self) -> None:
        """Nothing to prepare: the store searches."""

    def index_of(self, incident_id: int | None) -> int | None:
        if incident_id is None or incident_id >= len(self._state) \
                or not self._state[incident_id]:
            return None
        key = self._key(incident_id)
        index = bisect_left(self._visible, key)
        if index < len(self._visible) and self._visible[index] == key:
            return index
        return None

    def set_filter(self, new: Filter) -> None:
        old, self.filter = self.filter, new
        if new == old:
            return
        if (old.levels, old.mine, old.text) != (new.levels, new.mine, new.text):
            self._matched = None
            if new.levels or new.mine or new.text:
                self._matched = self.source.queue_ids(
                    tuple(_STATE_CODE), levels=tuple(sorted(new.levels)),
                    assignees=self.me if new.mine else None, text=new.text.casefold())
        self._refilter()

    def _side_matches(self, item: QueueItem) -> bool:
        """The part of the filter the store answers, for a row that just changed."""
        f = self.filter
        return ((not f.levels or item.level in f.levels)
                and (not f.mine or (item.assignee or "") in self.me)
                and (not f.text or f.text.casefold() in search_text(item)))

    def _shows(self, key: int) -> bool:
        f, incident_id = self.filter, key % _ID
        byte = key // _ID >> 62
        return ((not f.states or _CODE_STATE.get(self._state[incident_id]) in f.states)
                and (not f.severities
                     or self._names[byte & (SEVERITY_LIMIT - 1)] in f.severities)
                and (not f.risks or RISKS[byte >> 6] in f.risks)
                and (self._matched is None or incident_id in self._matched))

    def _refilter(self) -> None:
        f = self.filter
        shared = not (f.severities or f.risks or self._matched is not None) and (
            not f.states or not self._has_state_outside(f.states))
        self._visible = self.order if shared else [k for k in self.order if self._shows(k)]

    def _has_state_outside(self, states: frozenset[str]) -> bool:
        """Whether a row in the queue is in a state not among `states`."""
        return any(code in self._state for state, code in _STATE_CODE.items()
                   if state not in states)

    def row_at(self, index: int) -> Row:
        key = self._visible[index]
        incident_id = key % _ID
        row = self._rows.get(incident_id)
        if row is None:
            self._read_around(index)
            row = self._rows.get(incident_id) or self._unreadable(key)
        return row

    def _read_around(self, index: int) -> None:
        """Read the rows around `index` not read yet (a window), forgetting every row read
        so far once there are CACHE_LIMIT."""
        if len(self._rows) > CACHE_LIMIT:
            self._rows.clear()
        keys = self._visible[max(0, index - WINDOW // 4): index + WINDOW]
        wanted = [k % _ID for k in keys if k % _ID not in self._rows]
        for item in self.source.queue_items_by_id(wanted):
            if item.state in _STATE_CODE:
                self._rows[item.id] = self._row(item, self._stamp)[0]

    def _unreadable(self, key: int) -> Row:
        """A row whose incident could not be read now: its place, and that it could not."""
        byte, incident_id = key // _ID >> 62, key % _ID
        item = replace(_UNREAD, id=incident_id,
                       severity=self._names[byte & (SEVERITY_LIMIT - 1)],
                       state=_CODE_STATE.get(self._state[incident_id], OPEN))
        return Row(item, RISKS[byte >> 6], None, None, None, key)


_UNREAD = QueueItem(True, False, None, None, None, None, None, None, 0,
                    "(not readable just now)", "", None, "", "", OPEN, 0, 0, 0)


class _Rows(Sequence[Row]):
    """A `LeanQueue`'s visible rows, each read from the store the first time it is shown."""

    def __init__(self, queue: LeanQueue) -> None:
        self._queue = queue

    def __len__(self) -> int:
        return len(self._queue._visible)

    @overload
    def __getitem__(self, index: int) -> Row: ...
    @overload
    def __getitem__(self, index: slice) -> list[Row]: ...

    def __getitem__(self, index: int | slice) -> Row | list[Row]:
        if isinstance(index, slice):
            return [self._queue.row_at(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._queue.row_at(index)


def _remove(keys: list[int], key: int) -> None:
    index = bisect_left(keys, key)
    if index < len(keys) and keys[index] == key:
        del keys[index]
