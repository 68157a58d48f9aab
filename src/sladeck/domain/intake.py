"""Alert payloads (the Alertmanager webhook, version 4, and Grafana's alerting webhook)
as import records, mapped by the policy's `intake` section.

Plain Python: `sladeck receive` hands it a request's body, `sladeck import --format`
a file's payloads; both write the records through `ingest.write_records`, the same path
as an NDJSON import (whole payload or nothing, repeats by dedup key).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, BinaryIO

from sladeck.domain.actions import MAX_TEXT, MAX_TITLE, Desk
from sladeck.domain.ingest import (
    BOM,
    EARLIEST,
    ImportRefused,
    ImportReport,
    check_record,
    write_records,
)
from sladeck.errors import SladeckError
from sladeck.policy import Intake, Policy

FORMATS = ("alertmanager", "grafana")
MAX_FILE = 64 << 20  # bytes of payloads `import --format` reads (a payload is a few KiB)
MAX_PROBLEMS = 100
_STATUSES = ("firing", "resolved")


class PayloadError(ValueError):
    """A payload sladeck cannot read: its one-line reason."""


def _no_constants(name: str) -> Any:
    raise PayloadError(f"{name} is not a JSON number sladeck accepts")


def decode(body: bytes) -> Any:
    """A request's or a line's JSON; PayloadError with the reason."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"not valid UTF-8 (byte {exc.start + 1})") from None
    try:
        return json.loads(text.removeprefix("\ufeff"), parse_constant=_no_constants)
    except RecursionError:
        raise PayloadError("JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise PayloadError(f"not JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
                           ) from None


def records(fmt: str, payload: Any, policy: Policy, now: datetime) -> list[dict[str, Any]]:
    """A decoded payload's alerts as checked import records, in order; PayloadError (one
    line, naming the alert) when the payload is not of `fmt`'s shape."""
    intake = policy.intake
    if intake is None:
        raise PayloadError("the policy has no intake section (see the built-in policy.yaml)")
    if not isinstance(payload, dict):
        raise PayloadError("must be a JSON object")
    version = payload.get("version")
    if fmt == "alertmanager":
        if version != "4" or "orgId" in payload:
            other = " (a Grafana payload? post it to /grafana)" if "orgId" in payload else ""
            raise PayloadError(f"not an Alertmanager webhook payload of version 4 "
                               f"(version {version!r}){other}")
    elif fmt == "grafana":
        if "orgId" not in payload:
            other = " (an Alertmanager payload? post it to /alertmanager)" \
                if version == "4" else ""
            raise PayloadError(f"not a Grafana alerting webhook payload (no orgId){other}")
    else:
        raise PayloadError(f"unknown format {fmt!r} (choose {', '.join(FORMATS)})")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError("alerts must be a list")
    severities = tuple(policy.severities)
    out = []
    for n, alert in enumerate(alerts):
        try:
            out.append(_record(fmt, alert, intake, severities, now))
        except ValueError as exc:
            raise PayloadError(f"alerts[{n}]: {exc}") from None
    return out


def _text(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be text")
    return value


def _strings(value: Any, what: str) -> Mapping[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError(f"{what} must be an object of texts")
    return value


def _time(value: Any, what: str) -> datetime | None:
    """An RFC 3339 time; None for Go's zero time (`0001-01-01T00:00:00Z`: not set)."""
    text = _text(value, what)
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{what} {text[:40]!r} is not an RFC 3339 time") from None
    if at.tzinfo is None:
        raise ValueError(f"{what} {text[:40]!r} has no time zone offset")
    return None if at < EARLIEST else at


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _record(fmt: str, alert: Any, intake: Intake, severities: tuple[str, ...],
            now: datetime) -> dict[str, Any]:
    if not isinstance(alert, dict):
        raise ValueError("must be a JSON object")
    status = alert.get("status")
    if status not in _STATUSES:
        raise ValueError(f"status {str(status)[:20]!r} is not firing or resolved")
    labels = _strings(alert.get("labels"), "labels")
    annotations = _strings(alert.get("annotations"), "annotations")
    starts = _time(alert.get("startsAt"), "startsAt")
    ends = _time(alert.get("endsAt"), "endsAt")
    if starts is None:
        raise ValueError("startsAt is missing")
    title = next((annotations[k] for k in intake.title if annotations.get(k, "").strip()),
                 labels.get("alertname", "").strip() or "alert")
    title = _cut(title.strip().splitlines()[0].strip() or "alert", MAX_TITLE)
    parts = [annotations[k].strip() for k in intake.description if annotations.get(k, "").strip()]
    if fmt == "grafana" and _text(alert.get("valueString"), "valueString").strip():
        parts.append(f"Value: {alert['valueString'].strip()}")
    if fmt == "grafana" and _text(alert.get("silenceURL"), "silenceURL").strip():
        parts.append(f"Silence: {alert['silenceURL'].strip()}")
    fingerprint = _text(alert.get("fingerprint"), "fingerprint").strip()
    if not fingerprint:  # the labels the policy names; hashed when too long to be a key
        fingerprint = ",".join(f"{k}={labels.get(k, '')}" for k in intake.dedup_labels)
        if len(fingerprint) > MAX_TITLE:
            fingerprint = hashlib.sha256(fingerprint.encode()).hexdigest()
    urls = ("dashboardURL", "panelURL", "generatorURL") if fmt == "grafana" \
        else ("generatorURL",)
    ref = next((u for k in urls if (u := _text(alert.get(k), k).strip())), None)
    record: dict[str, Any] = {
        "title": title,
        "severity": intake.severity_of(labels),
        "description": _cut("\n\n".join(parts), MAX_TEXT),
        "service": _cut(labels.get(intake.service_label, "").strip(), MAX_TITLE),
        "dedup_key": _cut(fingerprint, MAX_TITLE),
        "external_ref": ref if ref and len(ref) <= MAX_TITLE else None,
        # a sender's clock a little ahead of ours must not refuse the alert
        "opened_at": min(starts, now).isoformat(),
    }
    checked = check_record(record, severities, now)
    if status == "resolved":
        checked["cleared"] = True
        checked["ended_at"] = min(ends or now, now)
    return checked


def import_payloads(desk: Desk, data: bytes | BinaryIO, name: str, fmt: str) -> ImportReport:
    """`sladeck import --format`: one payload per line, or the whole file as one
    document; any bad payload refuses the file (`NAME:LINE: reason`), nothing written."""
    raw = data if isinstance(data, bytes) else _read(data, name)
    raw = raw.removeprefix(BOM)
    now = desk.clock.now()
    problems: list[str] = []
    found: list[tuple[int, dict[str, Any]]] = []
    for line, payload in _payloads(raw, name):
        try:
            if isinstance(payload, PayloadError):
                raise payload
            found += ((line, r) for r in records(fmt, payload, desk.policy, now))
        except PayloadError as exc:
            problems.append(f"{name}:{line}: {exc}")
            if len(problems) == MAX_PROBLEMS:
                problems.append(f"{name}: stopped reading after {MAX_PROBLEMS} bad payloads; "
                                "nothing imported")
                break
    if problems:
        raise ImportRefused(problems)
    return write_records(desk, found, name)


def _read(stream: BinaryIO, name: str) -> bytes:
    try:
        raw = stream.read(MAX_FILE + 1)
    except OSError as exc:
        raise SladeckError(f"{name}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE:
        raise SladeckError(f"{name}: larger than {MAX_FILE >> 20} MiB; split it")
    return raw


def _payloads(raw: bytes, name: str) -> Iterator[tuple[int, Any]]:
    """(line, payload or its PayloadError): the whole text when it is one JSON document
    (a pretty-printed payload), else each non-blank line."""
    if not raw.strip():
        return
    try:
        yield 1, decode(raw)
        return
    except PayloadError as exc:
        whole = exc
    lines = raw.split(b"\n")
    first = next(b for b in lines if b.strip())
    try:  # one payload a line only if the first line is one: else the document's error
        decode(first)
    except PayloadError:
        yield 1 + raw[:raw.index(first)].count(b"\n") if first in raw else 1, whole
        return
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                yield number, decode(line)
            except PayloadError as exc:
                yield number, exc
