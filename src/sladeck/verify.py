"""`sladeck verify`: the hash chain is intact and every incident row equals its replay,
down to the SLA schedule stored beside it."""

from __future__ import annotations

from dataclasses import asdict

from sladeck.domain.clocks import schedule
from sladeck.domain.model import Incident, to_iso
from sladeck.domain.timeline import apply_event
from sladeck.store import GENESIS, SCHEDULES_SINCE, Store, _dumps, event_hash

COMPARED = ("title", "description", "service", "severity", "level", "state", "assignee",
            "external_ref", "dedup_key", "opened_at", "level_entered_at", "acknowledged_at",
            "resolved_at", "closed_at", "reached", "repeats", "policy_id", "version",
            "changed_seq")


def verify(store: Store) -> list[str]:
    """Every problem found, first bad event first; an empty list means all is well.

    Events and rows are read in one snapshot: on a database others are writing to,
    rows read after the events would be newer than their replay.
    """
    with store.snapshot():
        return _verify(store)


def _verify(store: Store) -> list[str]:
    problems: list[str] = []
    prev_hash, prev_id = GENESIS, 0
    replayed: dict[int, Incident] = {}
    for event in store.iter_events():
        where = f"event {event.id} (INC-{event.incident_id}, {event.kind})"
        if event.id != prev_id + 1:
            problems.append(f"events {prev_id + 1}..{event.id - 1} are missing (deleted)")
        if event.prev_hash != prev_hash:
            problems.append(f"{where}: does not follow the event before it (chain broken)")
        expected = event_hash(event.prev_hash, event.id, event.incident_id, event.version,
                              to_iso(event.at), event.account,
                              event.name, event.kind, _dumps(event.payload))
        if expected != event.hash:
            problems.append(f"{where}: its content does not match its hash (edited)")
        prev_hash, prev_id = event.hash, event.id
        current = replayed.get(event.incident_id)
        policy_id = event.payload["policy_id"] if event.kind == "opened" else (
            current.policy_id if current else None)
        try:
            levels = store.policy(policy_id).levels if policy_id else ()
            replayed[event.incident_id] = apply_event(
                current, event_id=event.id, version=event.version, kind=event.kind,
                payload=event.payload, at=event.at, actor=event.actor, levels=levels)
        except (KeyError, ValueError, TypeError) as exc:
            problems.append(f"{where}: cannot be replayed ({exc})")
        if len(problems) >= 20:
            return problems
    stored = {i.id: i for i in store.incidents(None)}
    schedules = {i.id: i for i in store.queue_items(
        ("open", "acknowledged", "resolved", "closed"))} \
        if store.schema_version() >= SCHEDULES_SINCE else None  # an old file, not migrated
    for incident_id in sorted(set(stored) | set(replayed)):
        row, replay = stored.get(incident_id), replayed.get(incident_id)
        if row is None or replay is None:
            problems.append(f"INC-{incident_id}: "
                            + ("has no events" if replay is None else "row is missing"))
            continue
        a, b = asdict(row), asdict(replay)
        wrong = [key for key in COMPARED if a[key] != b[key]]
        if wrong:
            problems.append(f"INC-{incident_id}: stored {wrong[0]} {a[wrong[0]]!r} differs "
                            f"from its timeline ({b[wrong[0]]!r})")
            continue
        if schedules is None:
            continue
        kept = schedules.get(incident_id)
        try:
            expected = schedule(replay, store.policy(replay.policy_id))
        except (KeyError, ValueError):
            continue  # a policy problem, reported by the replay above
        if kept is None or expected.values() != kept.values():
            problems.append(f"INC-{incident_id}: stored SLA schedule differs from its "
                            "timeline (the dashboard would order it wrongly)")
    return problems
