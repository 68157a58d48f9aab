"""The SQL behind `sladeck report` and `sladeck digest` (domain/reports.py aggregates).

A report's cohort is the incidents opened in [since, until); each query reads only
their events recorded before `until`, so a range that has ended always reads the same.
The report reads its cohort's events once (`incident_events`: the kinds it counts, in
event order, notes skipped by SQL) and domain/reports.py folds them incident by
incident; times come out as julian days, so durations are SQLite's own julianday
arithmetic. Escalations, follow-ups and compliance are SQL aggregates (one row per group).

Each query is written once; the few spellings SQLite and PostgreSQL do not share (a
julian day, a JSON field, a boolean summed, text aggregation, the driving join, `:name`
parameters) come from the `Dialect` the store passes: `SQLITE` (the default) or
`POSTGRES`.
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Dialect:
    """How a backend spells what the queries need; each field a template."""

    day: str  # the julian day (a float) of time text {}
    field: str  # JSON text {col}'s top-level {key}, as text
    flag: str  # a boolean {} as 0 or 1 (summed)
    concat: str  # text {x} of a group's rows joined by chr(30)
    char: str  # the character of code {}
    join: str  # the join that drives from its left table (SQLite: CROSS JOIN fixes order)
    named: bool  # parameters as `:name` (SQLite) or `%(name)s` (psycopg)
    by_id: str  # what makes a scan of incidents come in id order (SQLite's rowid scan does)

    def run(self, conn: Any, sql: str, params: Any) -> Any:
        """The cursor of `sql` with `params`, in this dialect's parameter style."""
        if not self.named:
            sql = re.sub(r"(?<!:):(?!:)([a-z_]+)", r"%(\1)s", sql)
        return conn.execute(sql, params)


SQLITE = Dialect(day="julianday({})", field="json_extract({col}, '$.{key}')", flag="{}",
                 concat="group_concat({x}, char(30))", char="char({})", join="CROSS JOIN",
                 named=True, by_id="")
# PostgreSQL's: the julian day from the epoch (times are `to_iso` text, UTC), `->>`,
# booleans cast to integers, string_agg, chr, and a plain JOIN (no CROSS JOIN ... ON).
POSTGRES = Dialect(day="(extract(epoch FROM ({})::timestamptz)::float8 / 86400.0 + 2440587.5)",
                   field="(({col})::json ->> '{key}')", flag="({})::int",
                   concat="string_agg({x}, chr(30))", char="chr({})", join="JOIN",
                   named=False, by_id=" ORDER BY id")

# What a report groups by: an expression over the incident row (its value now).
GROUP_SQL = {"severity": "severity", "level": "level", "service": "service",
             "assignee": "coalesce(assignee, '')", "all": "''"}



# The same over the incident row named `c` in a join.
_C_GROUP = {"severity": "c.severity", "level": "c.level", "service": "c.service",
            "assignee": "coalesce(c.assignee, '')", "all": "''"}


def cohort(conn: sqlite3.Connection, by: str, since: str, until: str, d: Dialect = SQLITE
           ) -> sqlite3.Cursor:
    """The incidents opened in [since, until), in id order: (incident id, group, policy
    id, severity, julian day of its opening)."""
    return d.run(conn,
                 f"SELECT id, {GROUP_SQL[by]}, policy_id, severity, {d.day.format('opened_at')} "
                 f"FROM incidents WHERE opened_at >= :since AND opened_at < :until{d.by_id}",
                 {"since": since, "until": until})


def incident_events(conn: sqlite3.Connection, since: str, until: str, d: Dialect = SQLITE
                    ) -> sqlite3.Cursor:
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
    sql = f"""SELECT c.id, CASE e.kind {codes} END, {d.day.format('e.at')},
               CASE e.kind WHEN 'opened' THEN {d.field.format(col='e.payload', key='level')}
                           WHEN 'escalated' THEN {d.field.format(col='e.payload', key='to')} END
        FROM incidents c {d.join} events e ON e.incident_id = c.id AND e.at < :until
             AND e.kind IN ({', '.join(repr(k) for k in REPORT_KINDS)})
        WHERE c.opened_at >= :since AND c.opened_at < :until
        ORDER BY c.id, e.id"""
    return d.run(conn, sql, {"since": since, "until": until})


def escalations(conn: sqlite3.Connection, by: str, since: str, until: str,
                d: Dialect = SQLITE) -> list[tuple[Any, ...]]:
    """Per group, target level and trigger: (group, to level, trigger, count). Read from
    the handoffs (fewer and narrower than the incidents), each one's incident and event
    by key."""
    sql = f"""SELECT {_C_GROUP[by]}, h.to_level, h.trigger, count(*)
        FROM handoffs h {d.join} incidents c ON c.id = h.incident_id
        {d.join} events e ON e.id = h.event_id
        WHERE c.opened_at >= :since AND c.opened_at < :until AND e.at < :until
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""
    return d.run(conn, sql, {"since": since, "until": until}).fetchall()


def follow_ups(conn: sqlite3.Connection, by: str, since: str, until: str, today: str,
               d: Dialect = SQLITE) -> list[tuple[Any, ...]]:
    """Per group: (group, follow-ups open at `until`, of them due before `today`). Read
    from the follow-ups, each one's incident and events by key."""
    due = d.flag.format("f.due IS NOT NULL AND f.due < :today")
    sql = f"""SELECT {_C_GROUP[by]}, count(*), sum({due})
        FROM follow_ups f {d.join} incidents c ON c.id = f.incident_id
        {d.join} events a ON a.id = f.event_id
        LEFT JOIN events d ON d.id = f.done_event_id
        WHERE c.opened_at >= :since AND c.opened_at < :until
          AND a.at < :until AND (d.id IS NULL OR d.at >= :until)
        GROUP BY 1"""
    return d.run(conn, sql, {"since": since, "until": until, "today": today}).fetchall()


def daily_opened(conn: sqlite3.Connection, since: str, until: str, d: Dialect = SQLITE
                 ) -> list[tuple[str, int]]:
    """Incidents opened per UTC day in [since, until): (YYYY-MM-DD, count)."""
    return d.run(
        conn, "SELECT substr(opened_at, 1, 10), count(*) FROM incidents "
        "WHERE opened_at >= :since AND opened_at < :until GROUP BY 1 ORDER BY 1",
        {"since": since, "until": until}).fetchall()


def compliance(conn: sqlite3.Connection, by: str, since: str, until: str,
               d: Dialect = SQLITE) -> list[tuple[Any, ...]]:
    """From the stored clock history: (group, clock kind, outcome at `until`, cycles) of
    the cohort's cycles started before `until`. A cycle stopped by then counts by its
    outcome; one still running counts `breached` when it is a response or resolution
    maximum whose deadline passed, else `running` (domain/reports.py says the same).

    SQLite sorts every row a GROUP BY over (group, kind, outcome) reads (~0.5 s at
    500,000 cycles), so each incident's cycles are packed into one text as they are read
    in key order (no sort), the few distinct (group, text) pairs counted, then unpacked."""
    cycle = (f"""k.kind || {d.char.format(31)} ||
               CASE WHEN k.stopped_at IS NOT NULL AND k.stopped_at < :until
                    THEN coalesce(k.outcome, '')
                    WHEN k.kind IN ('response', 'resolution_maximum') AND k.due_at <= :until
                    THEN 'breached' ELSE 'running' END""")
    sql = f"""SELECT {_C_GROUP[by]}, {d.concat.format(x=cycle)}
        FROM incidents c {d.join} clock_cycles k ON k.incident_id = c.id
        WHERE c.opened_at >= :since AND c.opened_at < :until AND k.started_at < :until
        GROUP BY c.id"""
    packed = Counter(d.run(conn, sql, {"since": since, "until": until}))
    out: Counter[tuple[Any, str, str | None]] = Counter()
    for (grp, cycles), n in packed.items():
        for cycle in cycles.split("\x1e"):
            kind, _, outcome = cycle.partition("\x1f")
            out[grp, kind, outcome or None] += n
    return [(*key, n) for key, n in out.items()]


# -- the digest: what happened in [since, until) ------------------------------------------

DIGEST_KINDS = ("opened", "acknowledged", "escalated", "resolved", "closed", "reopened")


def digest_events(conn: sqlite3.Connection, since: str, until: str, d: Dialect = SQLITE
                  ) -> list[tuple[Any, ...]]:
    """The window's events of DIGEST_KINDS, in order, with their incident and its
    escalation's handoff: (kind, at, actor account, actor name, incident id, title,
    severity, level, trigger, handoff fields JSON or None, to level)."""
    sql = f"""SELECT e.kind, e.at, e.account, e.name, i.id, i.title, i.severity, i.level,
                     h."trigger", h.fields, h.to_level
              FROM events e JOIN incidents i ON i.id = e.incident_id
              LEFT JOIN handoffs h ON h.event_id = e.id
              WHERE e.at >= :since AND e.at < :until
                AND e.kind IN ({', '.join(repr(k) for k in DIGEST_KINDS)})
              ORDER BY e.id"""
    return d.run(conn, sql, {"since": since, "until": until}).fetchall()


def follow_ups_due(conn: sqlite3.Connection, through: str, d: Dialect = SQLITE
                   ) -> list[tuple[Any, ...]]:
    """Open follow-ups due on or before `through` (YYYY-MM-DD), soonest first: (id,
    incident id, kind, description, owner, due)."""
    return d.run(conn,
                 "SELECT id, incident_id, kind, description, owner, due FROM follow_ups "
                 "WHERE done_event_id IS NULL AND due IS NOT NULL AND due <= :through "
                 "ORDER BY due, id", {"through": through}).fetchall()



# The ids `digest` checks for breaches: active incidents whose stored breach instant
# falls in the window, and every incident with an event in it.
BREACH_CANDIDATES = (
    "SELECT id FROM incidents WHERE state IN ('open', 'acknowledged') "
    "AND sla_breach_at >= :since_us AND sla_breach_at < :until_us "
    "UNION SELECT incident_id FROM events WHERE at >= :since AND at < :until")
