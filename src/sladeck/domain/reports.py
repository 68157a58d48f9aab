"""Reports (SPEC §11): time to acknowledge and resolve, SLA compliance, escalations,
reviews and follow-ups over a date range, and the shift digest.

Plain Python over what the store's report queries return (`ReportSource`, ports.py):
the store reads the cohort's events in one pass and aggregates the rest in SQL; this
module folds the events incident by incident into counts, level entries and resolution
cycles, turns durations into statistics, applies each incident's own stored policy,
and adds up the groups. The definitions here are
the README's, word for word.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from sladeck.domain.model import to_iso
from sladeck.errors import SladeckError

GROUPINGS = ("severity", "level", "service", "assignee")
TOTAL = "all"  # the group of every incident in the range
COUNT_KEYS = ("opened", "acknowledged", "escalated", "resolved", "closed", "reopened",
              "open")


# -- ranges ---------------------------------------------------------------------------------

_RELATIVE = re.compile(r"^(\d{1,5})([dhm])$")
_CLOCK_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_when(text: str, now: datetime, zone: tzinfo | None, what: str = "--since"
               ) -> datetime:
    """`7d`, `12h`, `30m` (before `now`); `2026-11-01` (midnight, in `zone`); `08:00`
    (the latest such time at or before `now`, in `zone`); or an ISO 8601 date-time
    (in `zone` when it names none; `zone` None is the viewer's own). Anything else is
    refused in one line."""
    value = text.strip()
    if m := _RELATIVE.match(value):
        n, unit = int(m.group(1)), m.group(2)
        return now - timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: n})
    if m := _CLOCK_TIME.match(value):
        today = now.astimezone(zone).date()
        at = _local(today, time(int(m.group(1)), int(m.group(2))), zone)
        if at > now:
            at = _local(today - timedelta(days=1), at.astimezone(zone).time(), zone)
        return at
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return _local(date.fromisoformat(value), time(), zone)
        at = datetime.fromisoformat(value)
    except ValueError:
        at = None
    if at is None or not re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", value):
        raise SladeckError(f"{what} {text!r} is not a time (write 7d, 12h, 30m, "
                           f"2026-11-01, 08:00 or 2026-11-01T08:00)")
    if at.tzinfo is None:
        return _local(at.date(), at.time(), zone)
    return at.astimezone(UTC)


def _local(day: date, at: time, zone: tzinfo | None) -> datetime:
    """`day` at `at` in `zone` (None: the viewer's own zone), as UTC."""
    naive = datetime.combine(day, at)
    return (naive.replace(tzinfo=zone) if zone else naive.astimezone()).astimezone(UTC)


def report_range(since: str | None, until: str | None, now: datetime, zone: tzinfo | None,
                 default: timedelta = timedelta(days=7)) -> tuple[datetime, datetime]:
    """[since, until) from the command line's texts: until defaults to `now`, since to
    `default` before it; an empty or backwards range is refused."""
    end = parse_when(until, now, zone, "--until") if until else now
    start = parse_when(since, now, zone, "--since") if since else end - default
    if start >= end:
        raise SladeckError(f"--since {since or ''} ({to_iso(start)}) is not before --until "
                           f"{until or 'now'} ({to_iso(end)}): the range is empty")
    return start, end


def last_shift_start(now: datetime, shifts: Iterable[time], zone: tzinfo) -> datetime:
    """The latest shift boundary (a local time of day in `zone`) at or before `now`."""
    local = now.astimezone(zone)
    starts = [datetime.combine(local.date() - timedelta(days=back), t, tzinfo=zone)
              for back in (0, 1) for t in shifts]
    return max(s for s in starts if s <= local).astimezone(UTC)


def shift_window(policy: Any, since: str | None, now: datetime
                 ) -> tuple[datetime, datetime, str]:
    """The digest's [since, now) and the day whose follow-ups are due (YYYY-MM-DD), in
    the policy's business-hours zone; since defaults to the last shift boundary."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(policy.business_hours.timezone)
    start = parse_when(since, now, zone) if since else last_shift_start(now, policy.shifts,
                                                                         zone)
    if start >= now:
        raise SladeckError(f"--since {since} ({to_iso(start)}) is not before now: the "
                           "digest would be empty")
    return start, now, now.astimezone(zone).date().isoformat()


# -- statistics -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Stats:
    """Durations in seconds: how many, their median, p90 (nearest rank) and mean."""

    count: int
    median: float | None
    p90: float | None
    mean: float | None

    def json(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 3)
        return {"count": self.count, "median_s": r(self.median), "p90_s": r(self.p90),
                "mean_s": r(self.mean)}


def stats(values: list[float]) -> Stats:
    """Median (the middle value, or the mean of the two middle ones), p90 (nearest rank:
    the ⌈0.9·n⌉-th smallest) and mean of `values`."""
    n = len(values)
    if not n:
        return Stats(0, None, None, None)
    ordered = sorted(values)
    mid = n // 2
    median = ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    p90 = ordered[max(1, math.ceil(0.9 * n)) - 1]
    return Stats(n, median, p90, math.fsum(ordered) / n)


# -- the report -----------------------------------------------------------------------------

@dataclass
class GroupReport:
    """Everything a report says of one group (or of all incidents: `TOTAL`)."""

    name: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNT_KEYS, 0))
    tta: list[float] = field(default_factory=list)
    tta_by_level: dict[str, list[float]] = field(default_factory=dict)
    unacknowledged_entries: int = 0
    ttr: list[float] = field(default_factory=list)
    unresolved_cycles: int = 0
    compliance: dict[str, dict[str, int]] = field(default_factory=dict)
    escalations: dict[tuple[str, str], int] = field(default_factory=dict)
    reviews_outstanding: int = 0
    follow_ups_open: int = 0
    follow_ups_overdue: int = 0

    def merge(self, other: GroupReport) -> None:
        for k, v in other.counts.items():
            self.counts[k] += v
        self.tta += other.tta
        for level, values in other.tta_by_level.items():
            self.tta_by_level.setdefault(level, []).extend(values)
        self.unacknowledged_entries += other.unacknowledged_entries
        self.ttr += other.ttr
        self.unresolved_cycles += other.unresolved_cycles
        for kind, outcomes in other.compliance.items():
            mine = self.compliance.setdefault(kind, {})
            for outcome, n in outcomes.items():
                mine[outcome] = mine.get(outcome, 0) + n
        for key, n in other.escalations.items():
            self.escalations[key] = self.escalations.get(key, 0) + n
        self.reviews_outstanding += other.reviews_outstanding
        self.follow_ups_open += other.follow_ups_open
        self.follow_ups_overdue += other.follow_ups_overdue


@dataclass
class Report:
    """A report over [since, until), grouped `by`; `total` covers every group."""

    since: datetime
    until: datetime
    by: str
    groups: list[GroupReport]
    total: GroupReport
    levels: tuple[str, ...] = ()
    daily: list[tuple[str, int]] = field(default_factory=list)


def build_report(source: Any, policies: Any, since: datetime, until: datetime, by: str,
                 levels: tuple[str, ...] = ()) -> Report:
    """The report of the incidents opened in [since, until), as recorded by `until`.

    `source` is the store's `ReportSource`; `policies` its `PolicySource` (each
    incident's own stored policy decides whether it needs a review)."""
    if by not in GROUPINGS:
        raise SladeckError(f"--by {by!r} is not a grouping (choose {', '.join(GROUPINGS)})")
    s, u = to_iso(since), to_iso(until)
    groups: dict[str, GroupReport] = {}

    def group(name: Any) -> GroupReport:
        key = "" if name is None else str(name)
        g = groups.get(key)
        if g is None:
            g = groups[key] = GroupReport(key)
        return g

    _fold_events(source.report_cohort(by, s, u), source.report_events(s, u), group,
                 policies)
    for name, to_level, trigger, n in source.report_escalations(by, s, u):
        group(name).escalations[(to_level, trigger)] = n
    for name, n_open, n_overdue in source.report_follow_ups(by, s, u, until.date().isoformat()):
        group(name).follow_ups_open += n_open
        group(name).follow_ups_overdue += int(n_overdue or 0)
    # The stored clock history (issue 12), counted at `until` by SQL: a stopped cycle
    # by its outcome; a running one `breached` when it is a response or resolution
    # maximum whose deadline passed, else `running` (`cycle_outcome` says the same).
    for name, kind, outcome, n in source.report_compliance(by, s, u):
        outcomes = group(name).compliance.setdefault(kind, {})
        outcomes[outcome] = outcomes.get(outcome, 0) + n
    ordered = [groups[k] for k in sorted(groups)]
    total = GroupReport(TOTAL)
    for g in ordered:
        _sort_durations(g)
        total.merge(g)
    _sort_durations(total)  # the groups' sorted runs, which timsort merges
    return Report(since, until, by, ordered, total, levels,
                  source.report_daily(s, u))


_DAY = 86400.0  # julian days to seconds, as SQLite's (julianday(a) - julianday(b)) * 86400
# The kinds a report reads from the events, by their index (`ReportSource.report_events`).
REPORT_KINDS = ("opened", "acknowledged", "escalated", "resolved", "closed", "reopened",
                "review_filed")
_OPENED, _ACKED, _ESCALATED, _RESOLVED, _CLOSED, _REOPENED, _REVIEWED = range(7)
_COUNTED = ((_ACKED, "acknowledged"), (_ESCALATED, "escalated"), (_RESOLVED, "resolved"),
            (_CLOSED, "closed"), (_REOPENED, "reopened"))


def _fold_events(cohort: Iterable[tuple[Any, ...]], events: Iterable[tuple[Any, ...]],
                 group: Any, policies: Any) -> None:
    """Counts, level entries and resolution cycles of the cohort's incidents from their
    events, one incident at a time (`ReportSource.report_events`: by incident, in event
    order).

    - counts: opened (every incident), and whether it was ever acknowledged, escalated,
      resolved, closed or reopened; still open when its last resolve/close/reopen is a
      reopen or it has none; a review outstanding when that last one is a resolve or
      close with no review filed since the last reopen (and its own policy asks for one);
    - a level entry at each opening, escalation or reopen, in the level last opened or
      escalated to, acknowledged at its earliest acknowledgement before the next entry;
      TTA is the incident's earliest acknowledgement, counted from its opening;
    - a resolution cycle from the opening and from each reopen to its first resolve."""
    needs: dict[tuple[Any, Any], bool] = {}
    incidents: dict[int, tuple[GroupReport, float, bool]] = {}
    for incident_id, name, policy_id, severity, opened in cohort:
        key = (policy_id, severity)
        review = needs.get(key)
        if review is None:
            review = needs[key] = policies.policy(policy_id).needs_review(severity)
        incidents[incident_id] = (group(name), opened, review)
    current: Any = None
    seen = [False] * len(REPORT_KINDS)
    last_end, reviewed, lv = -1, False, None
    entries: list[list[Any]] = []  # [level, entered, earliest acknowledgement]
    cycles: list[list[Any]] = []  # [started, first resolution]
    info: tuple[GroupReport, float, bool] | None = None
    opened = 0.0
    for incident_id, kind, at, level in events:
        if incident_id != current:
            if info is not None:
                _settle(*info, seen, last_end, reviewed, entries, cycles)
            current = incident_id
            # None: opened after the cohort was read (a commit between the two reads)
            info = incidents.pop(incident_id, None)
            opened = info[1] if info is not None else 0.0
            seen = [False] * len(REPORT_KINDS)
            last_end, reviewed, lv, entries, cycles = -1, False, None, [], []
        if info is None:
            continue
        seen[kind] = True
        if kind == _ACKED:
            if entries:
                entry = entries[-1]
                if entry[2] is None or at < entry[2]:
                    entry[2] = at
        elif kind in (_OPENED, _ESCALATED, _REOPENED):
            if level is not None:
                lv = level
            t = opened if kind == _OPENED else at
            entries.append([lv, t, None])
            if kind == _REOPENED:
                last_end, reviewed = kind, False
                cycles.append([t, None])
            elif kind == _OPENED:
                cycles.append([t, None])
        elif kind == _RESOLVED:
            last_end = kind
            if cycles:
                cycle = cycles[-1]
                if cycle[1] is None or at < cycle[1]:
                    cycle[1] = at
        elif kind == _CLOSED:
            last_end = kind
        elif kind == _REVIEWED:
            reviewed = True
    if info is not None:
        _settle(*info, seen, last_end, reviewed, entries, cycles)
    nothing = [False] * len(REPORT_KINDS)
    for g, _opened, review in incidents.values():  # no event recorded before `until`
        _settle(g, _opened, review, nothing, -1, False, [], [])


def _settle(g: GroupReport, opened: float, review: bool, seen: list[bool], last_end: int,
            reviewed: bool, entries: list[list[Any]], cycles: list[list[Any]]) -> None:
    """Add one incident's counts, entries and cycles (`_fold_events`) to its group."""
    counts = g.counts
    counts["opened"] += 1
    for kind, key in _COUNTED:
        if seen[kind]:
            counts[key] += 1
    if last_end == -1 or last_end == _REOPENED:
        counts["open"] += 1
    elif review and not reviewed:
        g.reviews_outstanding += 1
    first: float | None = None
    for level, entered, acked in entries:
        if acked is None:
            g.unacknowledged_entries += 1
            continue
        seconds = (acked - entered) * _DAY
        g.tta_by_level.setdefault(level or "?", []).append(seconds)
        at = (entered - opened) * _DAY + seconds
        first = at if first is None or at < first else first
    if first is not None:
        g.tta.append(first)
    for started, done in cycles:
        if done is None:
            g.unresolved_cycles += 1
        else:
            g.ttr.append((done - started) * _DAY)


def _sort_durations(g: GroupReport) -> None:
    """Sort a group's durations in place once: `stats` (sorting a copy) then finds each
    list in order, and the total's, made of the groups' sorted runs, merges quickly."""
    for values in (g.tta, g.ttr, *g.tta_by_level.values()):
        values.sort()


def cycle_outcome(cycle: Any, until: datetime) -> str:
    """How a report counts a clock cycle at `until` (store/reports.py's `compliance` is
    the same rule in SQL): its outcome once stopped; while running, `breached` for a
    response or resolution maximum past its deadline, else `running`."""
    from sladeck.domain.history import BREACHED, PASSED, RUNNING

    if cycle.stopped_at is not None and cycle.stopped_at < until:
        return str(cycle.outcome)
    return BREACHED if PASSED[cycle.kind] == BREACHED and cycle.due_at <= until else RUNNING


# -- JSON (keys are stable: scripts read them) ------------------------------------------------

def group_json(g: GroupReport, levels: Iterable[str] = ()) -> dict[str, Any]:
    known = [lv for lv in levels if lv in g.tta_by_level]
    known += sorted(lv for lv in g.tta_by_level if lv not in known)
    return {
        "group": g.name,
        "counts": dict(g.counts),
        "tta": stats(g.tta).json(),
        "tta_by_level": {lv: stats(g.tta_by_level[lv]).json() for lv in known},
        "unacknowledged_entries": g.unacknowledged_entries,
        "ttr": stats(g.ttr).json(),
        "unresolved_cycles": g.unresolved_cycles,
        "compliance": {kind: compliance_json(outcomes)
                       for kind, outcomes in sorted(g.compliance.items())},
        "escalations": [{"to": to, "trigger": trigger, "count": n}
                        for (to, trigger), n in sorted(g.escalations.items())],
        "reviews_outstanding": g.reviews_outstanding,
        "follow_ups": {"open": g.follow_ups_open, "overdue": g.follow_ups_overdue},
    }


OUTCOMES = ("met", "late", "breached", "running")


def compliance_json(outcomes: dict[str, int]) -> dict[str, Any]:
    """{met, late, breached, running, stopped, rate}: rate = met ÷ stopped (None when
    no cycle stopped)."""
    out: dict[str, Any] = {k: outcomes.get(k, 0) for k in OUTCOMES}
    stopped = out["met"] + out["late"] + out["breached"]
    out["stopped"] = stopped
    out["rate"] = round(out["met"] / stopped, 4) if stopped else None
    return out


def report_json(r: Report) -> dict[str, Any]:
    from sladeck.domain.model import json_time

    return {"since": json_time(r.since), "until": json_time(r.until), "by": r.by,
            "groups": [group_json(g, r.levels) for g in r.groups],
            "total": group_json(r.total, r.levels),
            "daily_opened": [{"date": d, "opened": n} for d, n in r.daily]}
