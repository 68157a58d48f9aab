"""The dashboard's queue as plain data: rows, filter, order, and when each row changes.

Each row keeps only what the queue shows (risk, the headline deadline, when that
next changes), computed once and kept until its `changes_at` instant (or until the
incident changes), so a one-second tick costs nothing per row: it only pops the
rows whose risk may have moved. Every row is kept in sort order (`order`) and the
filtered rows (`visible`) are a subsequence of it, so a changed row moves with a
bisect instead of a full sort, a new filter is one pass without a sort, and the
counts the summary line shows are kept up to date as rows come and go. Countdown
text is computed by the view for the rows on screen, never here.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sladeck.domain.clocks import BREACHED, DUE, RISKS, headline
from sladeck.domain.model import ACKNOWLEDGED, CLOSED, OPEN, Incident
from sladeck.policy import Policy

DEFAULT_STATES = frozenset({OPEN, ACKNOWLEDGED})
_RISK_RANK = {risk: n for n, risk in enumerate(RISKS)}
_INF = float("inf")
BULK = 256  # merging more rows than this re-sorts once instead of moving each row


@dataclass(frozen=True)
class Filter:
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


def _key(row: Row) -> tuple:
    return row.key


@dataclass(slots=True)
class Row:
    """One incident as the queue shows it: no clocks kept, only the headline."""

    incident: Incident
    policy: Policy
    risk: str
    kind: str | None  # the headline deadline's clock kind, None when nothing ticks
    due_at: datetime | None  # ... and when it falls due
    changes_at: float | None  # POSIX time at which risk or any clock status next changes
    key: tuple = ()
    haystack: str = ""


@dataclass(frozen=True)
class Transition:
    """An incident whose risk worsened into due or breached."""

    incident: Incident
    before: str
    after: str


@dataclass
class Queue:
    policy_for: Callable[[int], Policy]
    me: tuple[str, ...] = ()
    filter: Filter = field(default_factory=Filter)
    rows: dict[int, Row] = field(default_factory=dict)
    visible: list[Row] = field(default_factory=list)
    order: list[Row] = field(default_factory=list)  # every row, in queue order
    by_severity: Counter[str] = field(default_factory=Counter)  # active rows only
    by_risk: Counter[str] = field(default_factory=Counter)
    max_id: int = 0
    _heap: list[tuple[float, int]] = field(default_factory=list)
    _ranks: dict[int, dict[str, int]] = field(default_factory=dict)  # id(policy) → ranks

    def _row(self, incident: Incident, now: datetime) -> Row:
        policy = self.policy_for(incident.policy_id)
        risk, kind, due_at, changes = headline(incident, policy, now)
        haystack = " ".join((incident.ref, incident.title, incident.service,
                             incident.assignee or "", incident.severity, incident.level)).casefold()
        ranks = self._ranks.get(id(policy))
        if ranks is None:
            ranks = self._ranks[id(policy)] = {s: n for n, s in enumerate(policy.severities)}
        # The same order as Assessment.sort_key: risk, headline deadline, severity, id.
        key = (_RISK_RANK[risk], due_at.timestamp() if due_at is not None else _INF,
               ranks[incident.severity], incident.id)
        changes_at = changes.timestamp() if changes is not None else None
        row = Row(incident, policy, risk, kind, due_at, changes_at, key, haystack)
        if changes_at is not None:
            heapq.heappush(self._heap, (changes_at, incident.id))
        return row

    # -- counts ------------------------------------------------------------------------

    def _count(self, row: Row, sign: int) -> None:
        if row.incident.active:
            self.by_severity[row.incident.severity] += sign
            self.by_risk[row.risk] += sign

    def summary(self) -> tuple[Counter[str], Counter[str]]:
        """(active incidents by severity, active incidents by risk); kept, not counted."""
        return self.by_severity, self.by_risk

    # -- loading and merging -----------------------------------------------------------

    def load(self, incidents: Iterable[Incident], now: datetime) -> None:
        self.rows, self._heap, self.order, self.visible = {}, [], [], []
        self.by_severity, self.by_risk = Counter(), Counter()
        self.merge(incidents, now)

    def merge(self, incidents: Iterable[Incident], now: datetime) -> list[Transition]:
        """Take in new or changed incidents; closed ones leave memory."""
        incidents = list(incidents)
        bulk = len(incidents) > BULK
        transitions = []
        for incident in incidents:
            old = self.rows.get(incident.id)
            if old is not None:
                self._drop(old, bulk)
            if incident.state == CLOSED:
                continue
            row = self._row(incident, now)
            self.max_id = max(self.max_id, incident.id)
            self._put(row, bulk)
            if old is not None:
                transitions += self._worse(old, row)
        if bulk:
            self.order = sorted(self.rows.values(), key=_key)
            self._refilter()
        return transitions

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
        stamp = now.timestamp()
        transitions: list[Transition] = []
        heap = self._heap
        while heap and heap[0][0] <= stamp:
            _, incident_id = heapq.heappop(heap)
            old = self.rows.get(incident_id)
            if old is None or old.changes_at is None or old.changes_at > stamp:
                continue  # a stale heap entry
            row = self._row(old.incident, now)
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
        rank = {BREACHED: 0, DUE: 1}
        after, before = new.risk, old.risk
        if after in rank and rank[after] < rank.get(before, 9):
            return [Transition(new.incident, before, after)]
        return []

    # -- filtering -------------------------------------------------------------------------

    def set_filter(self, new: Filter) -> None:
        old, self.filter = self.filter, new
        if new == old:
            return
        same_but_text = (old.severities, old.levels, old.states, old.risks, old.mine) == \
            (new.severities, new.levels, new.states, new.risks, new.mine)
        if same_but_text and old.text.casefold() in new.text.casefold():
            # Typing one more character: only rows shown now can still match.
            text = new.text.casefold()
            self.visible = [r for r in self.visible if text in r.haystack]
        else:
            self._refilter()

    def _matches(self, row: Row) -> bool:
        f, i = self.filter, row.incident
        return ((not f.states or i.state in f.states)
                and (not f.severities or i.severity in f.severities)
                and (not f.levels or i.level in f.levels)
                and (not f.risks or row.risk in f.risks)
                and (not f.mine or (i.assignee or "") in self.me)
                and (not f.text or f.text.casefold() in row.haystack))

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
            rows = [r for r in rows if text in r.haystack]
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

