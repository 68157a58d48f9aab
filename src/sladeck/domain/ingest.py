"""NDJSON import for alert pipelines: whole or nothing, idempotent by dedup key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from json.encoder import encode_basestring as _json_text
from typing import Any, BinaryIO

from sladeck.domain.actions import MAX_TEXT, MAX_TITLE, Desk, Outcome, clean_text, severity_upgrade
from sladeck.domain.clocks import Schedule, schedule, to_us
from sladeck.domain.model import CLOSED, RESOLVED, Actor, Event, Incident, to_iso
from sladeck.domain.ports import ImportPlan, ImportTransaction, NewEvent, Opening
from sladeck.domain.stamps import CLOCK_TOLERANCE, check_clock, stamp
from sladeck.domain.timeline import apply_event
from sladeck.errors import Refused, SladeckError

TEXT_KEYS = ("description", "service", "dedup_key", "external_ref")
KNOWN_KEYS = ("title", "severity", "opened_at", *TEXT_KEYS)
_KNOWN = frozenset(KNOWN_KEYS)
_LIMITS = {key: MAX_TEXT if key == "description" else MAX_TITLE for key in TEXT_KEYS}
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
MAX_LINE = 1 << 20  # bytes: a longer line ends the reading (`/dev/zero` is one endless line)
MAX_PROBLEMS = 100  # bad lines told before a refused file's reading stops
BOM = b"\xef\xbb\xbf"  # UTF-8's byte order mark: skipped at the start of the file


class ImportRefused(SladeckError):
    """Some lines were bad; nothing was written. Carries one `FILE:LINE: reason` each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class ImportReport:
    """What an import did: incidents opened, repeats, late lines, alerts cleared at their
    source (and those with no incident to clear) and problems."""

    opened: int = 0
    repeated: int = 0
    late: int = 0
    cleared: int = 0
    unmatched: int = 0
    problems: list[str] = field(default_factory=list)
    # What the lines did, kept as written; `outcomes` makes the Outcome objects when
    # asked. Per import: its actor and levels, its events, and per event the incident
    # after a repeat, or None for an opening (its incident is `apply_event` of its
    # payload, kept as text), and each event's (prev_hash, hash).
    _made: list[tuple[Actor, tuple[str, ...], list[NewEvent], list[Incident | None],
                      list[tuple[str, str]]]] = field(default_factory=list, repr=False)

    @cached_property
    def outcomes(self) -> list[Outcome]:
        """Each written line's Outcome (its incident after the event, the event, a message)."""
        out = []
        for actor, levels, events, made, links in self._made:
            for done, e, (prev_hash, digest) in zip(made, events, links, strict=True):
                payload = json.loads(e.payload) if isinstance(e.payload, str) else e.payload
                incident = done if done is not None else apply_event(
                    None, event_id=e.id, version=e.version, kind=e.kind, payload=payload,
                    at=e.at, actor=actor, levels=levels)
                event = Event(e.id, e.incident_id, e.version, e.at, actor.account, actor.name,
                              e.kind, payload, prev_hash, digest)
                out.append(Outcome(incident, event, _message(incident, event)))
        return out


def _message(incident: Incident, event: Event) -> str:
    """The message `_open` (or a late repeat) gives for this line."""
    if event.kind == "opened":
        return f"{incident.ref} opened ({incident.severity} at {incident.level})"
    if event.kind == "source_cleared":
        return f"{incident.ref} cleared at its source"
    if "reason" in event.payload:
        return f"{incident.ref} late repeat"
    return f"{incident.ref} repeated ({incident.repeats} repeats)"


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number sladeck accepts")


_DECODER = json.JSONDecoder(parse_constant=_no_constants)  # built once, not per line
_decode, _scan = _DECODER.decode, _DECODER.scan_once


def _decode_line(text: str) -> Any:
    """`_decode(text)`. The usual line is one object with nothing around it: json's
    scanner alone reads it (what `decode` calls, after two whitespace matches). Any
    other line, and any line the scanner rejects, goes through `decode` itself, so
    errors are exactly its errors."""
    if text[:1] == "{":
        try:
            record, end = _scan(text, 0)
        except Exception:  # decode raises it again, as it always did
            end = -1
        if end == len(text):
            return record
    return _decode(text)


def parse_line(raw: bytes, severities: tuple[str, ...], now: datetime) -> dict[str, Any]:
    """One NDJSON line → a checked record; raises ValueError with the reason."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
            raise ValueError("UTF-16 text (it starts with a byte order mark); "
                             "save the file as UTF-8") from None
        raise ValueError(f"not valid UTF-8 (byte {exc.start + 1})") from None
    if text[:1] == "\ufeff":
        raise ValueError("starts with a byte order mark (U+FEFF): only the file's first "
                         "line may (were files joined?)")
    try:
        record = _decode_line(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(record, dict):
        raise ValueError("must be a JSON object")
    if not _KNOWN.issuperset(record):
        unknown = sorted(set(record) - _KNOWN)
        raise ValueError(f"unknown key {unknown[0]!r} (keys: {', '.join(KNOWN_KEYS)})")
    return check_record(record, severities, now)


def check_record(record: dict[str, Any], severities: tuple[str, ...], now: datetime
                 ) -> dict[str, Any]:
    """A record of KNOWN_KEYS checked as an NDJSON line is (`opened_at` becomes a UTC
    datetime); raises ValueError with the reason."""
    for key in ("title", "severity"):
        if key not in record:
            raise ValueError(f"{key} is missing")
    try:
        title = record["title"]
        # Short ASCII text needs no closer look (no surrogates); anything else gets one.
        if not (type(title) is str and len(title) <= MAX_TITLE and title.isascii()
                and not title.isspace() and title):
            clean_text(title, "title", limit=MAX_TITLE)
        for key in TEXT_KEYS:
            value = record.get(key)
            if value is not None and not (type(value) is str and len(value) <= _LIMITS[key]
                                          and value.isascii()):
                clean_text(value, key, required=False, limit=_LIMITS[key])
    except Refused as exc:
        raise ValueError(str(exc)) from None
    if record["severity"] not in severities:
        raise ValueError(f"unknown severity {record['severity']!r} "
                         f"(choose {', '.join(severities)})")
    opened = record.get("opened_at")
    if opened is not None:
        if not isinstance(opened, str):
            raise ValueError("opened_at must be an ISO 8601 text")
        try:
            at = datetime.fromisoformat(opened.replace("Z", "+00:00"))
            zoned = at.tzinfo is not None
            at = at.astimezone(UTC) if zoned else at
        except (ValueError, OverflowError):
            raise ValueError(f"opened_at {opened!r} is not an ISO 8601 time") from None
        if not zoned:  # whose 10:00? guessing UTC put clocks hours off
            raise ValueError(f"opened_at {opened!r} has no time zone offset (end it with Z "
                             "for UTC, or an offset such as +01:00)")
        if at < EARLIEST:  # an alert from before 1970 is a typo, not an alert
            raise ValueError(f"opened_at {opened!r} is before {EARLIEST.year}")
        if at > now + CLOCK_TOLERANCE:  # another host's clock may be this far ahead
            raise ValueError(f"opened_at {opened!r} is in the future")
        record["opened_at"] = at
    return record


class _TooLong(Exception):
    """A line longer than MAX_LINE: the reading stops there."""


def _lines(source: bytes | BinaryIO, name: str) -> Iterator[bytes]:
    """Each line of `source`, without its newline; raises `_TooLong` at a line over
    MAX_LINE bytes, having read at most MAX_LINE + 1 bytes of it."""
    if isinstance(source, bytes):
        for raw in source.split(b"\n"):
            if len(raw) > MAX_LINE:
                raise _TooLong
            yield raw
        return
    readline = source.readline
    while True:
        try:
            raw = readline(MAX_LINE + 1)
        except OSError as exc:
            raise SladeckError(f"{name}: cannot read: {exc.strerror or exc}") from None
        if not raw:
            return
        if raw[-1:] == b"\n":
            raw = raw[:-1]
        elif len(raw) > MAX_LINE:
            raise _TooLong
        yield raw


def import_ndjson(desk: Desk, data: bytes | BinaryIO, name: str, *,
                  skip_invalid: bool = False) -> ImportReport:
    """Import every line in one transaction; any bad line refuses the whole file
    unless `skip_invalid`, which writes the good lines and reports the rest.

    `data` is the file's bytes or a binary stream read a line at a time; a line
    longer than MAX_LINE refuses the whole file, `skip_invalid` or not (the rest of
    it cannot be read as lines: `/dev/zero` has no end). A UTF-8 byte order mark at
    the start of the file is skipped.

    A file's lines become hundreds of thousands of acyclic objects: a caller importing
    a large file pauses the cycle collector meanwhile (`runtime.collector_paused`)."""
    return _import(desk, data, name, skip_invalid)


def _import(desk: Desk, data: bytes | BinaryIO, name: str, skip_invalid: bool
            ) -> ImportReport:
    report = ImportReport()
    now = desk.clock.now()
    severities = tuple(desk.policy.severities)
    records: list[tuple[int, dict[str, Any]]] = []
    number = 0
    try:
        for number, raw in enumerate(_lines(data, name), start=1):
            if number == 1 and raw[:3] == BOM:
                raw = raw[3:]
            if not raw.strip():
                continue
            try:
                records.append((number, parse_line(raw.rstrip(b"\r"), severities, now)))
            except ValueError as exc:
                report.problems.append(f"{name}:{number}: {exc}")
                if len(report.problems) == MAX_PROBLEMS and not skip_invalid:
                    report.problems.append(f"{name}: stopped reading after {MAX_PROBLEMS} "
                                           "bad lines; nothing imported")
                    break
    except _TooLong:
        raise ImportRefused([*report.problems,
                             f"{name}:{number + 1}: line longer than 1 MiB"]) from None
    if report.problems and not skip_invalid:
        raise ImportRefused(report.problems)
    return write_records(desk, records, name, report)


def write_records(desk: Desk, records: list[tuple[int, dict[str, Any]]], name: str,
                  report: ImportReport | None = None) -> ImportReport:
    """Write checked records (`check_record`'s, numbered by their place in `name`) in one
    transaction. A record with `cleared` set is an alert its source says has ended: it
    records `source_cleared` on the incident of its dedup key (open, else the latest),
    and never opens or resolves one."""
    report = report or ImportReport()
    if records:
        with desk.store.write(bulk=True) as tx:
            _write_records(desk, tx, records, name, report)
    return report


def write_batch(desk: Desk, batch: list[tuple[list[tuple[int, dict[str, Any]]], str]]
                ) -> list[ImportReport]:
    """`write_records` of several (records, name), in order, in one transaction (one
    commit for many posts: `sladeck receive`'s writer); a failure writes none of them."""
    reports = [ImportReport() for _ in batch]
    with desk.store.write(bulk=True) as tx:
        for (records, name), report in zip(batch, reports, strict=True):
            if records:
                _write_records(desk, tx, records, name, report)
    return reports


def _opened_payload(incident_id: int, title: str, severity: str, level: str,
                    description: str, service: str, dedup_key: str | None,
                    external_ref: str | None, policy_id: int, opened_at: str | None,
                    source: str) -> str:
    """The `opened` payload's canonical text (`chain.canonical_json`: sorted keys, no spaces,
    not ASCII-escaped), put together from json's own string encoder: the values are
    str (checked by `parse_line`), int, or None."""
    return (f'{{"dedup_key":{"null" if dedup_key is None else _json_text(dedup_key)},'
            f'"description":{_json_text(description)},'
            f'"external_ref":{"null" if external_ref is None else _json_text(external_ref)},'
            f'"id":{incident_id:d},"level":{_json_text(level)},'
            f'"opened_at":{"null" if opened_at is None else _json_text(opened_at)},'
            f'"policy_id":{policy_id:d},"service":{_json_text(service)},'
            f'"severity":{_json_text(severity)},"source":{_json_text(source)},'
            f'"title":{_json_text(title)}}}')


def _write_records(desk: Desk, tx: ImportTransaction,
                   records: list[tuple[int, dict[str, Any]]], name: str,
                   report: ImportReport) -> None:
    """Every checked line as its event, in line order, inside the caller's transaction.

    The same events, payloads and rows as taking each line through `_open` (or, for a
    late repeat, `_Writer.record`) one at a time, decided in memory and handed to the
    store as one `ImportPlan`: we hold the write lock, so incident and event ids are
    assigned here; existing incidents are looked up by dedup key a batch at a time; a
    repeat's state comes from `apply_event`; a new incident is an `Opening`, with its
    payload built directly as `apply_event` and `canonical_json` would make them (its
    `Incident` is made only if a later line repeats it).
    """
    now = desk.clock.now()
    if records:
        check_clock(now, tx.newest_event())  # as `_Writer.record`: refused before any write
    actor, policy, store = desk.actor, desk.policy, desk.store
    now_us = to_us(now)
    levels = policy.levels
    keys = {key for _, record in records if (key := record.get("dedup_key"))}
    found = tx.open_by_dedup_keys(keys)
    # A key with no open incident but a timed line may be a late repeat of its latest;
    # an alert cleared at its source is recorded on its latest.
    late_keys = {key for _, record in records if (key := record.get("dedup_key"))
                 and (record.get("opened_at") is not None or record.get("cleared"))
                 and key not in found}
    latest = tx.latest_by_dedup_keys(late_keys) if late_keys else {}
    current: dict[int, Incident] = {i.id: i for i in (*found.values(), *latest.values())}
    before = dict(current)  # what each existing incident was: its row is updated if touched
    open_ids = {key: i.id for key, i in found.items()}
    # `_Writer.at`: stamped as `stamps.stamp` says (never dragged far ahead).
    last_at = tx.last_events_at(current) if current else {}
    at_of = {}
    for incident_id, incident in current.items():
        at_of[incident_id] = stamp(now, last_at.get(incident_id) or incident.updated_at)
    event_id = tx.next_event_id()
    next_id = policy_id = 0  # assigned at the first new incident
    plan = ImportPlan(actor)
    openings: list[Opening] = []  # the new incidents, in id order
    opened_event: dict[int, NewEvent] = {}  # a new incident's id → its `opened` event
    made: list[Incident | None] = []
    level, by = levels[0], actor.display
    reached_of: dict[datetime, dict[str, datetime]] = {}  # `reached` of an opening: shared
    # A new incident's SLA schedule: its severity's first one, moved by the difference
    # in opening time (every instant in it is the opening plus a policy duration); one
    # per severity and opening instant (every untimed line opens at `now`).
    sla_of: dict[str, tuple[int, Schedule]] = {}
    shifted: dict[tuple[str, int], Schedule] = {}
    opened = repeated = late_count = cleared = 0
    for number, record in records:
        get = record.get
        key = get("dedup_key") or None
        opened_at = get("opened_at")
        target = None
        kind = "repeated"
        if get("cleared"):
            target_id = open_ids.get(key) if key is not None else None
            if target_id is None and key in latest:
                target_id = latest[key].id
            if target_id is not None:
                target = current.get(target_id)
                if target is None:  # opened earlier in this file
                    first = opened_event[target_id]
                    opening = json.loads(first.payload) if isinstance(first.payload, str) \
                        else first.payload
                    target = apply_event(None, event_id=first.id, version=1, kind="opened",
                                         payload=opening, at=now, actor=actor, levels=levels)
            if target is None or target.source_cleared_at is not None:
                report.unmatched += target is None  # no incident: nothing to clear
                continue  # cleared already: the source said so before
            kind = "source_cleared"
            payload = {"dedup_key": key, "source": f"{name}:{number}"}
            if get("ended_at") is not None:
                payload["ended_at"] = to_iso(get("ended_at"))
            cleared += 1
        elif key is not None:
            target_id = open_ids.get(key)
            if target_id is not None:
                target = current.get(target_id)
                if target is None:  # opened earlier in this file: its Incident, made now
                    first = opened_event[target_id]
                    opening = json.loads(first.payload) if isinstance(first.payload, str) \
                        else first.payload
                    target = apply_event(None, event_id=first.id, version=1, kind="opened",
                                         payload=opening, at=now, actor=actor, levels=levels)
                payload = {"dedup_key": key, "title": record["title"],
                           "severity": record["severity"], "source": f"{name}:{number}"}
                upgrade = severity_upgrade(policy, target.severity, record["severity"])
                if upgrade:
                    payload["upgrade"] = upgrade
                repeated += 1
            elif opened_at is not None and key in latest:
                late = current[latest[key].id]
                if late.state in (RESOLVED, CLOSED) and late.resolved_at \
                        and opened_at <= late.resolved_at:
                    target = late
                    payload = {"dedup_key": key, "source": f"{name}:{number}",
                               "reason": f"alert started {to_iso(opened_at)}, before "
                                         f"{late.ref} was resolved"}
                    late_count += 1
        if target is not None:
            at = at_of[target.id]
            new = current[target.id] = apply_event(
                target, event_id=event_id, version=target.version, kind=kind,
                payload=payload, at=at, actor=actor,
                levels=store.policy(target.policy_id).levels)
            plan.events.append(NewEvent(event_id, new.id, new.version, at, kind, payload))
            made.append(new)
        else:
            if not next_id:
                policy_id = tx.policy_id(policy, now)
                next_id = tx.next_incident_id()
            title, severity = record["title"], record["severity"]
            description, service = get("description") or "", get("service") or ""
            external_ref = get("external_ref") or None
            payload_text = _opened_payload(
                next_id, title, severity, level, description, service, key, external_ref,
                policy_id, None if opened_at is None else to_iso(opened_at), f"{name}:{number}")
            opened_us = now_us if opened_at is None else to_us(opened_at)
            sla = shifted.get((severity, opened_us))
            if sla is None:
                first_of = sla_of.get(severity)
                if first_of is None:
                    first_of = sla_of[severity] = (opened_us, schedule(apply_event(
                        None, event_id=event_id, version=1, kind="opened",
                        payload=json.loads(payload_text), at=now, actor=actor, levels=levels),
                        policy))
                sla = shifted[severity, opened_us] = first_of[1].shifted(opened_us - first_of[0])
            at = now if opened_at is None else opened_at
            reached = reached_of.get(at)
            if reached is None:
                reached = reached_of[at] = {level: at}
            # Positional: keywords made it three times as dear (17 fields, every line).
            openings.append(Opening(next_id, title, description, service, severity, level,
                                    external_ref, key, at, by, at, reached,
                                    policy_id, event_id, now, by, sla))
            event = NewEvent(event_id, next_id, 1, now, "opened", payload_text)
            opened_event[next_id] = event
            plan.events.append(event)
            made.append(None)
            at_of[next_id] = now
            if key is not None:
                open_ids[key] = next_id
            next_id += 1
            opened += 1
        event_id += 1
    report.opened += opened
    report.repeated += repeated
    report.late += late_count
    report.cleared += cleared
    # A new incident a later line repeated is written as the Incident it became.
    plan.new = [current.get(o.id) or o for o in openings]
    plan.changed = [(current[i], old.version) for i, old in before.items()
                    if current[i] is not old]
    links = tx.write_import(plan)
    report._made.append((actor, levels, plan.events, made, links))
