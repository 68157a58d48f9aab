"""NDJSON import for alert pipelines: whole or nothing, idempotent by dedup key."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sladeck.domain.actions import MAX_TEXT, MAX_TITLE, Desk, Outcome, _open, _Writer, clean_text
from sladeck.domain.model import CLOSED, RESOLVED, to_iso
from sladeck.errors import Refused, SladeckError

TEXT_KEYS = ("description", "service", "dedup_key", "external_ref")
KNOWN_KEYS = ("title", "severity", "opened_at", *TEXT_KEYS)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


class ImportRefused(SladeckError):
    """Some lines were bad; nothing was written. Carries one `FILE:LINE: reason` each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class ImportReport:
    opened: int = 0
    repeated: int = 0
    late: int = 0
    problems: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number sladeck accepts")


def parse_line(raw: bytes, severities: tuple[str, ...], now: datetime) -> dict[str, Any]:
    """One NDJSON line → a checked record; raises ValueError with the reason."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not valid UTF-8 (byte {exc.start + 1})") from None
    try:
        record = json.loads(text, parse_constant=_no_constants)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(record, dict):
        raise ValueError("must be a JSON object")
    unknown = sorted(set(record) - set(KNOWN_KEYS))
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (keys: {', '.join(KNOWN_KEYS)})")
    for key in ("title", "severity"):
        if key not in record:
            raise ValueError(f"{key} is missing")
    try:
        clean_text(record["title"], "title", limit=MAX_TITLE)
        for key in TEXT_KEYS:
            if record.get(key) is not None:
                clean_text(record[key], key, required=False,
                           limit=MAX_TEXT if key == "description" else MAX_TITLE)
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
            at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        except (ValueError, OverflowError):
            raise ValueError(f"opened_at {opened!r} is not an ISO 8601 time") from None
        if at < EARLIEST:  # an alert from before 1970 is a typo, not an alert
            raise ValueError(f"opened_at {opened!r} is before {EARLIEST.year}")
        if at > now + timedelta(minutes=5):
            raise ValueError(f"opened_at {opened!r} is in the future")
        record["opened_at"] = at
    return record


def import_ndjson(desk: Desk, data: bytes, name: str, *, skip_invalid: bool = False
                  ) -> ImportReport:
    """Import every line in one transaction; any bad line refuses the whole file
    unless `skip_invalid`, which writes the good lines and reports the rest."""
    report = ImportReport()
    now = desk.clock.now()
    severities = tuple(desk.policy.severities)
    records: list[tuple[int, dict[str, Any]]] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            records.append((number, parse_line(raw.rstrip(b"\r"), severities, now)))
        except ValueError as exc:
            report.problems.append(f"{name}:{number}: {exc}")
    if report.problems and not skip_invalid:
        raise ImportRefused(report.problems)
    if not records:
        return report
    with desk.store.write() as tx:
        w = _Writer(desk, tx)
        for number, record in records:
            key = record.get("dedup_key")
            opened_at = record.get("opened_at")
            if key and opened_at and tx.open_by_dedup(key) is None:
                late = tx.latest_by_dedup(key)
                if late and late.state in (RESOLVED, CLOSED) and late.resolved_at \
                        and opened_at <= late.resolved_at:
                    payload = {"dedup_key": key, "source": f"{name}:{number}",
                               "reason": f"alert started {to_iso(opened_at)}, before "
                                         f"{late.ref} was resolved"}
                    new, event = w.record(late, "repeated", payload, w.policy(late).levels)
                    report.late += 1
                    report.outcomes.append(Outcome(new, event, f"{new.ref} late repeat"))
                    continue
            outcome = _open(w, title=record["title"], severity=record["severity"],
                            description=record.get("description") or "",
                            service=record.get("service") or "", dedup_key=key,
                            external_ref=record.get("external_ref"), opened_at=opened_at,
                            source=f"{name}:{number}")
            if outcome.event is not None and outcome.event.kind == "repeated":
                report.repeated += 1
            else:
                report.opened += 1
            report.outcomes.append(outcome)
    return report
