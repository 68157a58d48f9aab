"""The SQL behind `sladeck report` and `sladeck digest` (domain/reports.py aggregates).

A report's cohort is the incidents opened in [since, until); each query reads only
their events recorded before `until`, so a range that has ended always reads the same.
Durations come out of SQLite as seconds (julianday difference × 86400); counts and
groupings are SQL aggregates, so Python sees one row per group, per level entry or per
resolution cycle, never every event.

Each query is written once; the few spellings SQLite and PostgreSQL do not share (a
boolean counted as 0/1, an id padded for ordering, a JSON field, seconds between two
times, the cohort's join, `:name` parameters) come from the `Dialect` the store passes:
`SQLITE` (the default) or `POSTGRES`.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Dialect:
    """How a backend spells what the queries need; each field a template."""

    flag: str  # a boolean {} as 0 or 1 (max/sum over it)
    pad: str  # an id {} as 12 digits, so text maxima order by id
    field: str  # JSON text {col}'s top-level {key}, as text
    seconds: str  # seconds from time text {b} to {a}
    join: str  # the cohort's join to its events (and to its clock cycles)
    named: bool  # parameters as `:name` (SQLite) or `%(name)s` (psycopg)

    def quoted(self, column: str) -> str:
        """A column named by a keyword (`trigger`): quoted where the dialect needs it."""
        return column if self.named else f'"{column}"'

    def run(self, conn: Any, sql: str, params: Any) -> Any:
        """The cursor of `sql` with `params`, in this dialect's parameter style."""
        if not self.named:
            sql = re.sub(r"(?<!:):(?!:)([a-z_]+)", r"%(\1)s", sql)
        return conn.execute(sql, params)


# SQLite's spellings: the queries as they were written for it. The cohort drives the
# join (CROSS JOIN fixes SQLite's order): each of its incidents' events is found through
# events_incident, so a short range reads only its own incidents' events, not the whole
# table (SQLite, knowing nothing of a materialized cohort's size, preferred to scan every
# event).
SQLITE = Dialect(flag="{}", pad="printf('%012d', {})", field="json_extract({col}, '$.{key}')",
                 seconds="(julianday({a}) - julianday({b})) * 86400.0", join="CROSS JOIN",
                 named=True)
# PostgreSQL's: booleans cast to integers (max/sum take none), `lpad`, `->>`, epochs of
# timestamptz (times are `to_iso` text, UTC), and a plain JOIN (no CROSS JOIN ... ON).
POSTGRES = Dialect(flag="({})::int", pad="lpad(({})::text, 12, '0')",
                   field="(({col})::json ->> '{key}')",
                   seconds="extract(epoch FROM ({a})::timestamptz - ({b})::timestamptz)::float8",
                   join="JOIN", named=False)

# What a report groups by: an expression over the incident row (its value now).
GROUP_SQL = {"severity": "severity", "level": "level", "service": "service",
             "assignee": "coalesce(assignee, '')", "all": "''"}


def _cohort(by: str) -> str:
    return (f"cohort AS MATERIALIZED (SELECT id, {GROUP_SQL[by]} AS grp, policy_id, severity, "
            "opened_at FROM incidents WHERE opened_at >= :since AND opened_at < :until)")


def counts(conn: sqlite3.Connection, by: str, since: str, until: str, d: Dialect = SQLITE
           ) -> list[tuple[Any, ...]]:
    """Per group, policy and severity, in one pass over the cohort's events: (group,
    policy id, severity, opened, acknowledged, escalated, resolved, closed, reopened,
    still open at `until`, resolved or closed at `until` with no review filed since
    their last reopen); the domain asks each policy whether that severity needs one."""
    flag = d.flag.format
    still_open = flag("p.last_end IS NULL OR substr(p.last_end, 13) = 'reopened'")
    unreviewed = flag("substr(p.last_end, 13) IN ('resolved', 'closed') AND "
                      "(p.review_id IS NULL OR p.review_id < coalesce(p.reopen_id, 0))")
    sql = f"""WITH {_cohort(by)},
        per AS (SELECT e.incident_id AS id,
                       max({flag("e.kind = 'acknowledged'")}) AS acked,
                       max({flag("e.kind = 'escalated'")}) AS escalated,
                       max({flag("e.kind = 'resolved'")}) AS resolved,
                       max({flag("e.kind = 'closed'")}) AS closed,
                       max({flag("e.kind = 'reopened'")}) AS reopened,
                       max(CASE WHEN e.kind IN ('resolved', 'closed', 'reopened')
                           THEN {d.pad.format('e.id')} || e.kind END) AS last_end,
                       max(CASE WHEN e.kind = 'reopened' THEN e.id END) AS reopen_id,
                       max(CASE WHEN e.kind = 'review_filed' THEN e.id END) AS review_id
                FROM cohort c {d.join} events e ON e.incident_id = c.id
                WHERE e.at < :until AND e.kind IN ('acknowledged', 'escalated', 'resolved',
                                                   'closed', 'reopened', 'review_filed')
                GROUP BY e.incident_id)
        SELECT c.grp, c.policy_id, c.severity, count(*), sum(coalesce(p.acked, 0)),
               sum(coalesce(p.escalated, 0)), sum(coalesce(p.resolved, 0)),
               sum(coalesce(p.closed, 0)), sum(coalesce(p.reopened, 0)),
               sum({still_open}),
               sum({unreviewed})
        FROM cohort c LEFT JOIN per p ON p.id = c.id
        GROUP BY c.grp, c.policy_id, c.severity"""
    return d.run(conn, sql, {"since": since, "until": until}).fetchall()


def timings(conn: sqlite3.Connection, by: str, since: str, until: str, d: Dialect = SQLITE
            ) -> Iterator[tuple[Any, ...]]:
    """Level entries and resolution cycles of the cohort, in one pass over its events:

    - ("E", group, incident id, level, seconds from opening to the entry, seconds from
      the entry to the first acknowledgement before the next entry or None), for every
      time an incident entered a level (opened, escalated, reopened), in incident order;
    - ("C", group, incident id, None, None, seconds from the cycle's start (the opening,
      or a reopen) to its first resolution, or None while unresolved).

    Each event is tagged with its entry and its cycle (running maxima over the
    incident's events) and the tags are grouped: a join of entries to their
    acknowledgements would be quadratic."""
    pad = d.pad.format("e.id")
    sql = f"""WITH {_cohort(by)},
        ev AS MATERIALIZED (
            SELECT c.grp, e.incident_id, e.kind, e.at, c.opened_at,
                CASE e.kind WHEN 'opened' THEN c.opened_at ELSE e.at END AS t,
                max(CASE WHEN e.kind IN ('opened', 'escalated', 'reopened') THEN e.id END)
                    OVER w AS entry,
                max(CASE WHEN e.kind IN ('opened', 'reopened') THEN e.id END) OVER w AS start,
                max(CASE e.kind
                    WHEN 'opened' THEN {pad} || {d.field.format(col='e.payload', key='level')}
                    WHEN 'escalated' THEN {pad} || {d.field.format(col='e.payload', key='to')}
                    END) OVER w AS lv
            FROM cohort c {d.join} events e ON e.incident_id = c.id
            WHERE e.kind IN ('opened', 'escalated', 'reopened', 'acknowledged', 'resolved')
              AND e.at < :until
            WINDOW w AS (PARTITION BY e.incident_id ORDER BY e.id)),
        entries AS (SELECT grp, incident_id, entry, min(opened_at) AS opened_at,
                           min(CASE WHEN kind != 'acknowledged' THEN t END) AS entered,
                           min(CASE WHEN kind != 'acknowledged' THEN lv END) AS lv,
                           min(CASE WHEN kind = 'acknowledged' THEN at END) AS acked
                    FROM ev WHERE kind != 'resolved' AND entry IS NOT NULL
                    GROUP BY grp, incident_id, entry),
        cycles AS (SELECT grp, incident_id, start,
                          min(CASE WHEN kind != 'resolved' THEN t END) AS started,
                          min(CASE WHEN kind = 'resolved' THEN at END) AS done
                   FROM ev WHERE kind IN ('opened', 'reopened', 'resolved')
                     AND start IS NOT NULL GROUP BY grp, incident_id, start)
        SELECT * FROM (
            SELECT 'E', grp, incident_id, substr(lv, 13),
                   {d.seconds.format(a='entered', b='opened_at')},
                   {d.seconds.format(a='acked', b='entered')}
            FROM entries ORDER BY incident_id, entry) AS level_entries
        UNION ALL
        SELECT 'C', grp, incident_id, NULL, NULL, {d.seconds.format(a='done', b='started')}
        FROM cycles"""
    yield from d.run(conn, sql, {"since": since, "until": until})


def escalations(conn: sqlite3.Connection, by: str, since: str, until: str,
                d: Dialect = SQLITE) -> list[tuple[Any, ...]]:
    """Per group, target level and trigger: (group, to level, trigger, count)."""
    sql = f"""WITH {_cohort(by)}
        SELECT c.grp, h.to_level, h.{d.quoted('trigger')}, count(*)
        FROM cohort c JOIN handoffs h ON h.incident_id = c.id
        JOIN events e ON e.id = h.event_id
        WHERE e.at < :until GROUP BY c.grp, h.to_level, h.{d.quoted('trigger')}
        ORDER BY c.grp, h.to_level, h.{d.quoted('trigger')}"""
    return d.run(conn, sql, {"since": since, "until": until}).fetchall()


def follow_ups(conn: sqlite3.Connection, by: str, since: str, until: str, today: str,
               d: Dialect = SQLITE) -> list[tuple[Any, ...]]:
    """Per group: (group, follow-ups open at `until`, of them due before `today`)."""
    sql = f"""WITH {_cohort(by)}
        SELECT c.grp, count(*), sum({d.flag.format("f.due IS NOT NULL AND f.due < :today")})
        FROM cohort c JOIN follow_ups f ON f.incident_id = c.id
        JOIN events a ON a.id = f.event_id
        LEFT JOIN events d ON d.id = f.done_event_id
        WHERE a.at < :until AND (d.id IS NULL OR d.at >= :until)
        GROUP BY c.grp"""
    return d.run(conn, sql, {"since": since, "until": until, "today": today}).fetchall()


def daily_opened(conn: sqlite3.Connection, since: str, until: str, d: Dialect = SQLITE
                 ) -> list[tuple[str, int]]:
    """Incidents opened per UTC day in [since, until): (YYYY-MM-DD, count)."""
    return d.run(conn,
        "SELECT substr(opened_at, 1, 10), count(*) FROM incidents "
        "WHERE opened_at >= :since AND opened_at < :until GROUP BY 1 ORDER BY 1",
        {"since": since, "until": until}).fetchall()


def compliance(conn: sqlite3.Connection, by: str, since: str, until: str,
               d: Dialect = SQLITE) -> list[tuple[Any, ...]]:
    """From the stored clock history: (group, clock kind, outcome at `until`, cycles) of
    the cohort's cycles started before `until`. A cycle stopped by then counts by its
    outcome; one still running counts `breached` when it is a response or resolution
    maximum whose deadline passed, else `running` (domain/reports.py says the same)."""
    sql = f"""WITH {_cohort(by)}
        SELECT c.grp, k.kind,
               CASE WHEN k.stopped_at IS NOT NULL AND k.stopped_at < :until THEN k.outcome
                    WHEN k.kind IN ('response', 'resolution_maximum') AND k.due_at <= :until
                    THEN 'breached' ELSE 'running' END AS outcome,
               count(*)
        FROM cohort c {d.join} clock_cycles k ON k.incident_id = c.id
        WHERE k.started_at < :until
        GROUP BY 1, 2, 3  -- the outcome worked out above, not k.outcome"""
    return d.run(conn, sql, {"since": since, "until": until}).fetchall()


# -- the digest: what happened in [since, until) ------------------------------------------

DIGEST_KINDS = ("opened", "acknowledged", "escalated", "resolved", "closed", "reopened")


def digest_events(conn: sqlite3.Connection, since: str, until: str, d: Dialect = SQLITE
                  ) -> list[tuple[Any, ...]]:
    """The window's events of DIGEST_KINDS, in order, with their incident and its
    escalation's handoff: (kind, at, actor account, actor name, incident id, title,
    severity, level, trigger, handoff fields JSON or None, to level)."""
    sql = f"""SELECT e.kind, e.at, e.account, e.name, i.id, i.title, i.severity, i.level,
                     h.{d.quoted('trigger')}, h.fields, h.to_level
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
