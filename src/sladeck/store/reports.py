"""The SQL behind `sladeck report` and `sladeck digest` (domain/reports.py aggregates).

A report's cohort is the incidents opened in [since, until); each query reads only
their events recorded before `until`, so a range that has ended always reads the same.
The report reads its cohort's events once (`incident_events`: the kinds it counts, in
event order, notes skipped by SQL) and domain/reports.py folds them incident by
incident; times come out as julian days, so durations are SQLite's own julianday
arithmetic. Escalations, follow-ups and compliance are SQL aggregates (one row per group).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from typing import Any

# What a report groups by: an expression over the incident row (its value now).
GROUP_SQL = {"severity": "severity", "level": "level", "service": "service",
             "assignee": "coalesce(assignee, '')", "all": "''"}



# The same over the incident row named `c` in a join.
_C_GROUP = {"severity": "c.severity", "level": "c.level", "service": "c.service",
            "assignee": "coalesce(c.assignee, '')", "all": "''"}


def cohort(conn: sqlite3.Connection, by: str, since: str, until: str) -> sqlite3.Cursor:
    """The incidents opened in [since, until), in id order: (incident id, group, policy
    id, severity, julian day of its opening)."""
    return conn.execute(
        f"SELECT id, {GROUP_SQL[by]}, policy_id, severity, julianday(opened_at) FROM incidents "
        "WHERE opened_at >= :since AND opened_at < :until", {"since": since, "until": until})


def incident_events(conn: sqlite3.Connection, since: str, until: str) -> sqlite3.Cursor:
    """The cohort's events of `domain.reports.REPORT_KINDS` recorded before `until`, in one pass, by
    incident (in id order) and in event order within each: (incident id, the kind's
    index in REPORT_KINDS, julian day of the event, the level it entered: an opening's
    level or an escalation's target, else None). Times are julian days so durations
    computed from them, (a - b) × 86400, are SQLite's own `julianday` arithmetic.

    Incidents are read in rowid order (CROSS JOIN: otherwise SQLite reads every event
    by time and sorts them) and each one's events through events_incident (incident_id,
    id), so neither order needs a sort (a test checks the plan); the columns are few and the kind
    a small int because building Python rows is most of the cost (~1 µs a cell)."""
    from sladeck.domain.reports import REPORT_KINDS  # not at import: the dashboard's start

    codes = " ".join(f"WHEN {kind!r} THEN {n}" for n, kind in enumerate(REPORT_KINDS))
    sql = f"""SELECT c.id, CASE e.kind {codes} END, julianday(e.at),
               CASE e.kind WHEN 'opened' THEN json_extract(e.payload, '$.level')
                           WHEN 'escalated' THEN json_extract(e.payload, '$.to') END
        FROM incidents c CROSS JOIN events e ON e.incident_id = c.id AND e.at < :until
             AND e.kind IN ({', '.join(repr(k) for k in REPORT_KINDS)})
        WHERE c.opened_at >= :since AND c.opened_at < :until
        ORDER BY c.id, e.id"""
    return conn.execute(sql, {"since": since, "until": until})


def escalations(conn: sqlite3.Connection, by: str, since: str, until: str
                ) -> list[tuple[Any, ...]]:
    """Per group, target level and trigger: (group, to level, trigger, count). Read from
    the handoffs (fewer and narrower than the incidents), each one's incident and event
    by key."""
    sql = f"""SELECT {_C_GROUP[by]}, h.to_level, h.trigger, count(*)
        FROM handoffs h CROSS JOIN incidents c ON c.id = h.incident_id
        CROSS JOIN events e ON e.id = h.event_id
        WHERE c.opened_at >= :since AND c.opened_at < :until AND e.at < :until
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""
    return conn.execute(sql, {"since": since, "until": until}).fetchall()


def follow_ups(conn: sqlite3.Connection, by: str, since: str, until: str, today: str
               ) -> list[tuple[Any, ...]]:
    """Per group: (group, follow-ups open at `until`, of them due before `today`). Read
    from the follow-ups, each one's incident and events by key."""
    sql = f"""SELECT {_C_GROUP[by]}, count(*), sum(f.due IS NOT NULL AND f.due < :today)
        FROM follow_ups f CROSS JOIN incidents c ON c.id = f.incident_id
        CROSS JOIN events a ON a.id = f.event_id
        LEFT JOIN events d ON d.id = f.done_event_id
        WHERE c.opened_at >= :since AND c.opened_at < :until
          AND a.at < :until AND (d.id IS NULL OR d.at >= :until)
        GROUP BY 1"""
    return conn.execute(sql, {"since": since, "until": until, "today": today}).fetchall()


def daily_opened(conn: sqlite3.Connection, since: str, until: str) -> list[tuple[str, int]]:
    """Incidents opened per UTC day in [since, until): (YYYY-MM-DD, count)."""
    return conn.execute(
        "SELECT substr(opened_at, 1, 10), count(*) FROM incidents "
        "WHERE opened_at >= :since AND opened_at < :until GROUP BY 1 ORDER BY 1",
        {"since": since, "until": until}).fetchall()


def compliance(conn: sqlite3.Connection, by: str, since: str, until: str
               ) -> list[tuple[Any, ...]]:
    """From the stored clock history: (group, clock kind, outcome at `until`, cycles) of
    the cohort's cycles started before `until`. A cycle stopped by then counts by its
    outcome; one still running counts `breached` when it is a response or resolution
    maximum whose deadline passed, else `running` (domain/reports.py says the same).

    SQLite sorts every row a GROUP BY over (group, kind, outcome) reads (~0.5 s at
    500,000 cycles), so each incident's cycles are packed into one text as they are read
    in key order (no sort), the few distinct (group, text) pairs counted, then unpacked."""
    sql = f"""SELECT {_C_GROUP[by]}, group_concat(k.kind || char(31) ||
               CASE WHEN k.stopped_at IS NOT NULL AND k.stopped_at < :until
                    THEN ifnull(k.outcome, '')
                    WHEN k.kind IN ('response', 'resolution_maximum') AND k.due_at <= :until
                    THEN 'breached' ELSE 'running' END, char(30))
        FROM incidents c CROSS JOIN clock_cycles k ON k.incident_id = c.id
        WHERE c.opened_at >= :since AND c.opened_at < :until AND k.started_at < :until
        GROUP BY c.id"""
    packed = Counter(conn.execute(sql, {"since": since, "until": until}))
    out: Counter[tuple[Any, str, str | None]] = Counter()
    for (grp, cycles), n in packed.items():
        for cycle in cycles.split("\x1e"):
            kind, _, outcome = cycle.partition("\x1f")
            out[grp, kind, outcome or None] += n
    return [(*key, n) for key, n in out.items()]


# -- the digest: what happened in [since, until) ------------------------------------------

DIGEST_KINDS = ("opened", "acknowledged", "escalated", "resolved", "closed", "reopened")


def digest_events(conn: sqlite3.Connection, since: str, until: str
                  ) -> list[tuple[Any, ...]]:
    """The window's events of DIGEST_KINDS, in order, with their incident and its
    escalation's handoff: (kind, at, actor account, actor name, incident id, title,
    severity, level, trigger, handoff fields JSON or None, to level)."""
    sql = f"""SELECT e.kind, e.at, e.account, e.name, i.id, i.title, i.severity, i.level,
                     h.trigger, h.fields, h.to_level
              FROM events e JOIN incidents i ON i.id = e.incident_id
              LEFT JOIN handoffs h ON h.event_id = e.id
              WHERE e.at >= :since AND e.at < :until
                AND e.kind IN ({', '.join(repr(k) for k in DIGEST_KINDS)})
              ORDER BY e.id"""
    return conn.execute(sql, {"since": since, "until": until}).fetchall()


def follow_ups_due(conn: sqlite3.Connection, through: str) -> list[tuple[Any, ...]]:
    """Open follow-ups due on or before `through` (YYYY-MM-DD), soonest first: (id,
    incident id, kind, description, owner, due)."""
    return conn.execute(
        "SELECT id, incident_id, kind, description, owner, due FROM follow_ups "
        "WHERE done_event_id IS NULL AND due IS NOT NULL AND due <= ? ORDER BY due, id",
        (through,)).fetchall()



# The ids `digest` checks for breaches: active incidents whose stored breach instant
# falls in the window, and every incident with an event in it.
BREACH_CANDIDATES = (
    "SELECT id FROM incidents WHERE state IN ('open', 'acknowledged') "
    "AND sla_breach_at >= :since_us AND sla_breach_at < :until_us "
    "UNION SELECT incident_id FROM events WHERE at >= :since AND at < :until")
