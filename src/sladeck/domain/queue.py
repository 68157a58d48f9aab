"""The dashboard's queue as plain data: rows, filter, order, and when each row changes.

Each row's assessment is computed once and kept until its `changes_at` instant
(or until the incident changes), so a one-second tick costs nothing per row:
it only pops the rows whose risk may have moved. Countdown text is computed by
the view for the rows on screen, never here.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sladeck.domain.clocks import BREACHED, DUE, Assessment, assess
from sladeck.domain.model import ACKNOWLEDGED, CLOSED, OPEN, Incident
from sladeck.policy import Policy

DEFAULT_STATES = frozenset({OPEN, ACKNOWLEDGED})


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


@dataclass
class Row:
    incident: Incident
    policy: Policy
    assessment: Assessment
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
    _heap: list[tuple[float, int]] = field(default_factory=list)

    def _row(self, incident: Incident, now: datetime) -> Row:
        policy = self.policy_for(incident.policy_id)
        a = assess(incident, policy, now)
        haystack = " ".join((incident.ref, incident.title, incident.service,
                             incident.assignee or "", incident.severity, incident.level)).casefold()
        row = Row(incident, policy, a, a.sort_key(incident, policy), haystack)
        if a.changes_at is not None:
            heapq.heappush(self._heap, (a.changes_at.timestamp(), incident.id))
        return row

    def load(self, incidents: Iterable[Incident], now: datetime) -> None:
        self.rows, self._heap = {}, []
        self.merge(incidents, now)

    def merge(self, incidents: Iterable[Incident], now: datetime) -> list[Transition]:
        """Take in new or changed incidents; closed ones leave memory."""
        transitions = []
        for incident in incidents:
            old = self.rows.pop(incident.id, None)
            if incident.state == CLOSED:
                continue
            row = self.rows[incident.id] = self._row(incident, now)
            if old is not None:
                transitions += self._worse(old, row)
        self._refilter()
        return transitions

    def tick(self, now: datetime) -> list[Transition]:
        """Re-assess only the rows whose assessment changes by `now`."""
        stamp = now.timestamp()
        transitions: list[Transition] = []
        touched = False
        while self._heap and self._heap[0][0] <= stamp:
            _, incident_id = heapq.heappop(self._heap)
            old = self.rows.get(incident_id)
            if old is None or old.assessment.changes_at is None \
                    or old.assessment.changes_at.timestamp() > stamp:
                continue  # a stale heap entry
            row = self.rows[incident_id] = self._row(old.incident, now)
            transitions += self._worse(old, row)
            touched = True
        if touched:
            self._refilter()
        return transitions

    @staticmethod
    def _worse(old: Row, new: Row) -> list[Transition]:
        rank = {BREACHED: 0, DUE: 1}
        after, before = new.assessment.risk, old.assessment.risk
        if after in rank and rank[after] < rank.get(before, 9):
            return [Transition(new.incident, before, after)]
        return []

    def set_filter(self, new: Filter) -> None:
        self.filter = new
        self._refilter()

    def _matches(self, row: Row) -> bool:
        f, i = self.filter, row.incident
        return ((not f.states or i.state in f.states)
                and (not f.severities or i.severity in f.severities)
                and (not f.levels or i.level in f.levels)
                and (not f.risks or row.assessment.risk in f.risks)
                and (not f.mine or (i.assignee or "") in self.me)
                and (not f.text or f.text.casefold() in row.haystack))

    def _refilter(self) -> None:
        self.visible = sorted((r for r in self.rows.values() if self._matches(r)),
                              key=lambda r: r.key)

    def index_of(self, incident_id: int | None) -> int | None:
        for index, row in enumerate(self.visible):
            if row.incident.id == incident_id:
                return index
        return None

    def summary(self) -> tuple[Counter[str], Counter[str]]:
        """(active incidents by severity, active incidents by risk)."""
        active = [r for r in self.rows.values() if r.incident.active]
        return (Counter(r.incident.severity for r in active),
                Counter(r.assessment.risk for r in active))
