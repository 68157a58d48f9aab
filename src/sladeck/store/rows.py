"""Rows of the incidents and events tables: the one place that knows their columns and
their order.

INCIDENT declares each incident column once, in table order, with how its value is
stored (a time as `to_iso` text, `reached` as JSON, ...); SCHEDULE follows it, a
`clocks.Schedule` field for field. Everything else is derived from these two lists: the
column names, the SELECT texts, the readers (row → Incident, row → QueueItem) and the
writers (Incident or import record → row).

The readers and the bulk writer run for every row at start-up and in an import, so they
are compiled from the lists once, when this module is imported, into plain functions
that unpack a row and call the constructor, as `dataclasses` and `namedtuple` make
theirs (`rows.source(fn)` shows one): converting column by column in a loop cost
10-15 % more per row. `incident_row` is that loop, for single writes and as the
reference the compiled functions are tested against.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from sys import intern as _intern
from typing import Any

from sladeck.domain.clocks import Schedule, schedule
from sladeck.domain.history import ClockCycle
from sladeck.domain.model import Event, Incident, from_iso, to_iso
from sladeck.domain.ports import Opening
from sladeck.domain.queue import QueueItem
from sladeck.policy import Policy

_fromisoformat = datetime.fromisoformat

# How a kind of value is stored, as two expressions of {v}: (stored → Python, Python →
# stored). A writer gets `t` (a time → its `to_iso` text, None stays None) and `reached`
# (a `reached` dict → its JSON text).
_CODECS: dict[str, tuple[str, str]] = {
    "value": ("{v}", "{v}"),
    "text": ("{v} or ''", "{v}"),  # NOT NULL DEFAULT '': read '' for a NULL all the same
    "time": ("_time({v})", "t({v})"),
    "time?": ("_time({v}) if {v} is not None else None", "t({v})"),
    "reached": ("{{k: _time(x) for k, x in _loads({v}).items()}}", "reached({v})"),
    "flag": ("bool({v})", "{v}"),
}
# How the queue reads a short string that many rows repeat: one shared copy for all.
SHARED = "_intern({v})"
SHARED_OR_NONE = "_intern({v}) if {v} else None"
SHARED_KIND = "{v} and _intern({v})"


@dataclass(frozen=True)
class Column:
    """One column: its name (the `Incident` field it holds), how its value is stored,
    and how a `QueueItem` reads it when that differs."""

    name: str
    kind: str = "value"
    item: str | None = None

    def read(self, v: str) -> str:
        return _CODECS[self.kind][0].format(v=v)

    def write(self, v: str) -> str:
        return _CODECS[self.kind][1].format(v=v)


INCIDENT: tuple[Column, ...] = (
    Column("id"),
    Column("title"),
    Column("description", "text"),
    Column("service", "text", item=SHARED),
    Column("severity", item=SHARED),
    Column("level", item=SHARED),
    Column("state", item=SHARED),
    Column("assignee", item=SHARED_OR_NONE),
    Column("external_ref"),
    Column("dedup_key"),
    Column("opened_at", "time"),
    Column("opened_by"),
    Column("level_entered_at", "time"),
    Column("acknowledged_at", "time?"),
    Column("acknowledged_by"),
    Column("resolved_at", "time?"),
    Column("closed_at", "time?"),
    Column("reached", "reached"),
    Column("repeats"),
    Column("policy_id"),
    Column("version"),
    Column("changed_seq"),
    Column("updated_at", "time?"),
    Column("updated_by"),
    Column("last_change"),
    Column("source_cleared_at", "time?"),  # added by schema._source_cleared
    Column("first_acknowledged_at", "time?"),
)
SCHEDULE: tuple[Column, ...] = (  # `Schedule`'s fields, each as `sla_<field>`
    Column("sla_active", item="bool({v})"),
    Column("sla_breached", item="bool({v})"),
    Column("sla_breach_at"),
    Column("sla_breach_kind", item=SHARED_KIND),
    Column("sla_due_at"),
    Column("sla_due_kind", item=SHARED_KIND),
    Column("sla_warn_at"),
    Column("sla_ack_at"),
)
if [c.name for c in SCHEDULE] != [f"sla_{f.name}" for f in fields(Schedule)]:
    raise ImportError("sladeck.store.rows: SCHEDULE no longer matches clocks.Schedule")

INCIDENT_COLUMNS = tuple(c.name for c in INCIDENT)
SLA_COLUMNS = tuple(c.name for c in SCHEDULE)
WRITTEN_COLUMNS = INCIDENT_COLUMNS + SLA_COLUMNS  # every column (INSERTs name them)
SELECT_INCIDENT = f"SELECT {', '.join(INCIDENT_COLUMNS)} FROM incidents"
# A QueueItem's fields in order: Schedule's (as sla_ columns), then incident columns.
_BY_NAME = {c.name: c for c in INCIDENT + SCHEDULE}
_SCHEDULE_FIELDS = {f.name for f in fields(Schedule)}
ITEM: tuple[Column, ...] = tuple(
    _BY_NAME[f"sla_{f.name}" if f.name in _SCHEDULE_FIELDS else f.name]
    for f in fields(QueueItem))
SELECT_ITEM = f"SELECT {', '.join(c.name for c in ITEM)} FROM incidents"

EVENT_COLUMNS = ("id", "incident_id", "version", "at", "account", "name", "kind", "payload",
                 "prev_hash", "hash")


def _time(text: str) -> datetime:
    """A stored time (`to_iso` text, always UTC with `Z`): the direct parse, which is
    2-3× cheaper than `from_iso`, with `from_iso` for any other form."""
    at = _fromisoformat(text)
    return at if at.tzinfo is UTC else from_iso(text)


def _iso(at: datetime | None) -> str | None:
    return None if at is None else to_iso(at)


def _reached_text(reached: dict[str, datetime]) -> str:
    return json.dumps({k: to_iso(v) for k, v in reached.items()})


# -- compiled from the lists ------------------------------------------------------------

_NAMESPACE: dict[str, Any] = {"_time": _time, "_loads": json.loads, "_intern": _intern,
                              "Incident": Incident, "QueueItem": QueueItem}
_SOURCES: dict[Callable[..., Any], str] = {}


def _compile(name: str, source: str, namespace: dict[str, Any] | None = None
             ) -> Callable[..., Any]:
    scope = {**_NAMESPACE, **(namespace or {})}
    exec(compile(source, f"<sladeck.store.rows: {name}>", "exec"), scope)
    function = scope[name]
    _SOURCES[function] = source
    return function


def source(function: Callable[..., Any]) -> str:
    """The source text a compiled reader or writer was made from."""
    return _SOURCES[function]


def _reader(name: str, columns: tuple[Column, ...], make: str, keywords: bool,
            item: bool) -> Callable[[Any], Any]:
    values = [(c.item.format(v=c.name) if c.item else c.name) if item else c.read(c.name)
              for c in columns]
    args = ", ".join(f"{c.name}={v}" if keywords else v
                     for c, v in zip(columns, values, strict=True))
    return _compile(name, f"def {name}(row):\n"
                          f"    ({', '.join(c.name for c in columns)},) = row\n"
                          f"    return {make}({args})\n")


# A row of SELECT_INCIDENT → Incident; of SELECT_ITEM → QueueItem (shared short strings).
incident_from_row: Callable[[Any], Incident] = _reader(
    "incident_from_row", INCIDENT, "Incident", keywords=True, item=False)
item_from_row: Callable[[Any], QueueItem] = _reader(
    "item_from_row", ITEM, "QueueItem", keywords=False, item=True)


def _writer(record: type) -> Callable[..., tuple[Any, ...]]:
    """(record, sla values, t, reached) → the row in WRITTEN_COLUMNS' order, for a record
    type that reads like an `Incident`: each column is its attribute, or, when the type
    declares it as a class constant (an `Opening` is always `open`, version 1), that
    constant, stored once here."""
    instance = {f.name for f in fields(record)}
    constants: dict[str, Any] = {}
    values = []
    for c in INCIDENT:
        if c.name in instance or isinstance(getattr(record, c.name), property):
            values.append(c.write(f"o.{c.name}"))
        else:
            stored = incident_row_value(c, getattr(record, c.name))
            if stored is None:
                values.append("None")
            else:
                constants[f"_{c.name}"] = stored
                values.append(f"_{c.name}")
    name = f"{record.__name__.lower()}_values"
    return _compile(name, f"def {name}(o, sla, t, reached):\n"
                          f"    return ({', '.join(values)}, *sla)\n", constants)


# -- one column at a time: single writes, and the reference for the compiled ones --------

_WRITE_KIND = {kind: eval(f"lambda v, t, reached: {write.format(v='v')}")
               for kind, (_, write) in _CODECS.items()}
_READ_KIND = {kind: eval(f"lambda v: {read.format(v='v')}", dict(_NAMESPACE))
              for kind, (read, _) in _CODECS.items()}


def incident_row_value(column: Column, value: Any) -> Any:
    """How `column` stores `value`."""
    return _WRITE_KIND[column.kind](value, _iso, _reached_text)


def incident_row(incident: Incident, policy: Policy,
                 history: tuple[ClockCycle, ...] | None = None) -> dict[str, Any]:
    """One incident's row, column by column (not `asdict`: it deep-copies); its schedule
    from its clock `history` (by default the one its state implies)."""
    row = {c.name: _WRITE_KIND[c.kind](getattr(incident, c.name), _iso, _reached_text)
           for c in INCIDENT}
    row.update(zip(SLA_COLUMNS, sla_values(incident, policy, history), strict=True))
    return row


def incident_from_row_slowly(row: Any) -> Incident:
    """`incident_from_row`, column by column (the reference it is tested against)."""
    return Incident(**{c.name: _READ_KIND[c.kind](v) for c, v in zip(INCIDENT, row, strict=True)})


_WRITERS: dict[type, Callable[..., tuple[Any, ...]]] = {Incident: _writer(Incident),
                                                        Opening: _writer(Opening)}


# -- many rows ---------------------------------------------------------------------------

def sla_values(incident: Incident, policy: Policy,
               history: tuple[ClockCycle, ...] | None = None) -> tuple[Any, ...]:
    """The SLA_COLUMNS of an incident as it stands (with its clock `history`, when given)."""
    return schedule(incident, policy, history).values()


def incident_rows(records: Iterable[Incident | Opening], policy_for: Callable[[int], Policy],
                  histories: Mapping[int, tuple[ClockCycle, ...]] | None = None
                  ) -> list[tuple[Any, ...]]:
    """Rows in WRITTEN_COLUMNS' order, as `incident_row` makes them: an Incident's
    schedule is worked out from its policy, an Opening brings its own; each distinct time
    and `reached` is formatted once (a bulk import shares `now` across every row)."""
    texts: dict[datetime, str] = {}
    reached_texts: dict[tuple[tuple[str, datetime], ...], str] = {}

    def t(at: datetime | None) -> str | None:
        if at is None:
            return None
        text = texts.get(at)
        if text is None:
            text = texts[at] = to_iso(at)
        return text

    def reached(value: dict[str, datetime]) -> str:
        key = tuple(value.items())
        text = reached_texts.get(key)
        if text is None:
            text = reached_texts[key] = json.dumps({k: t(v) for k, v in key})
        return text

    of_incident, of_opening = _WRITERS[Incident], _WRITERS[Opening]
    rows = []
    for o in records:
        if isinstance(o, Opening):
            rows.append(of_opening(o, o.schedule.values(), t, reached))
        else:
            rows.append(of_incident(o, sla_values(o, policy_for(o.policy_id), (
                histories or {}).get(o.id)), t, reached))
    return rows


def incident_values(incident: Incident | Opening, policy: Policy) -> tuple[Any, ...]:
    """One incident as `Transaction.insert_incident_rows` takes it."""
    return incident_rows((incident,), lambda _: policy)[0]


def event_from_row(row: Any) -> Event:
    v = dict(zip(EVENT_COLUMNS, row, strict=True))
    v["at"] = _time(v["at"])
    v["payload"] = json.loads(v["payload"])
    return Event(**v)


# -- the clock history (a derived record: `history.clock_history` of the events) --------

CYCLE_COLUMNS = ("incident_id", "seq", "kind", "level", "started_at", "due_at", "stopped_at",
                 "outcome", "late_by_s")
SELECT_CYCLES = f"SELECT {', '.join(CYCLE_COLUMNS)} FROM clock_cycles"


def cycle_rows(incident_id: int, history: Iterable[ClockCycle]) -> list[tuple[Any, ...]]:
    """An incident's cycles as clock_cycles rows, `seq` in the order they started."""
    return [(incident_id, seq, c.kind, c.level, to_iso(c.started_at), to_iso(c.due_at),
             _iso(c.stopped_at), c.outcome, c.late_by_s) for seq, c in enumerate(history)]


def cycle_from_row(row: Any) -> tuple[int, ClockCycle]:
    """(incident id, cycle) of a row of SELECT_CYCLES."""
    incident_id, _seq, kind, level, started, due, stopped, outcome, late = row
    return incident_id, ClockCycle(kind, level, _time(started), _time(due),
                                   _time(stopped) if stopped is not None else None,
                                   outcome, late)
