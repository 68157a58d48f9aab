"""What people do to incidents. One action, many doors: CLI, keys and palette call these.

Each action is one transaction: load the incident, check it has not changed since
the person looked (`expected_version`), validate against the incident's own
policy, append the event and store the new state, commit. A refusal raises a
domain error whose message a person understands; nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sladeck.clock import Clock
from sladeck.domain.clocks import format_countdown
from sladeck.domain.model import (
    ACKNOWLEDGED,
    ACTIVE_STATES,
    CLOSED,
    RESOLVED,
    Actor,
    Event,
    Incident,
    format_ref,
    local_time,
    to_iso,
)
from sladeck.domain.notices import owed
from sladeck.domain.ports import Storage, WriteTransaction
from sladeck.domain.stamps import CLOCK_TOLERANCE, check_clock, stamp
from sladeck.domain.timeline import STATE_EVENTS, apply_event, describe
from sladeck.errors import Conflict, MissingFields, NotFound, Refused
from sladeck.policy import Policy

OTHER = "other"
MAX_TITLE = 1_000
MAX_TEXT = 200_000


@dataclass
class Desk:
    """Everything an action needs: where, under which policy, when, and who."""

    store: Storage  # a `sladeck.store.Store`, or any other implementation of the port
    policy: Policy  # the current policy; new incidents are opened under it
    clock: Clock
    actor: Actor


@dataclass(frozen=True)
class Outcome:
    """What an action did: the incident after it, the event, and a one-line message."""

    incident: Incident
    event: Event | None
    message: str

    @property
    def changed(self) -> bool:
        return self.event is not None


def ago(at: datetime, now: datetime) -> str:
    """`40s ago`, `5m ago`, `3h ago`, `2d ago` (or `just now`)."""
    seconds = int((now - at).total_seconds())
    if seconds < 1:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def clean_text(value: Any, what: str, *, required: bool = True, limit: int = MAX_TEXT) -> str:
    """Validate person-typed text: stored as given, but it must be text we can store."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise Refused(f"{what} must be text")
    if required and not value.strip():
        raise Refused(f"{what} must not be blank")
    if len(value) > limit:
        raise Refused(f"{what} is {len(value):,} characters long; the limit is {limit:,}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Refused(f"{what} is not valid UTF-8") from None
    return value


def severity_upgrade(policy: Policy, current: str, said: str) -> dict[str, str] | None:
    """`{"from", "to"}` when a repeat says a worse severity than its incident's: kept on
    the `repeated` event, shown on the timeline, for a person to change the severity
    (with a reason); never changed behind their back."""
    ranks = tuple(policy.severities)
    if said in ranks and current in ranks and ranks.index(said) < ranks.index(current):
        return {"from": current, "to": said}
    return None


class _Writer:
    """Helpers shared by the actions inside one transaction."""

    def __init__(self, desk: Desk, tx: WriteTransaction) -> None:
        self.desk, self.tx = desk, tx
        self.now = desk.clock.now()

    def load(self, incident_id: int, expected_version: int | None) -> Incident:
        incident = self.tx.incident(incident_id)
        if incident is None:
            raise NotFound(f"{format_ref(incident_id)} does not exist")
        if expected_version is not None and incident.version != expected_version:
            raise Conflict(self.conflict_message(incident, expected_version))
        return incident

    def conflict_message(self, incident: Incident, seen: int) -> str:
        changes = [e for e in self.tx.events_after(incident.id, seen) if e.kind in STATE_EVENTS]
        if not changes:
            return f"{incident.ref} changed since you looked — reload before acting"
        last = changes[-1]
        more = f" (and {len(changes) - 1} more change{'s' * (len(changes) > 2)})" \
            if len(changes) > 1 else ""
        return (f"{incident.ref} was {describe(last.kind, last.payload)} by "
                f"{last.actor.display} {ago(last.at, self.now)}{more} — reload before acting")

    def policy(self, incident: Incident) -> Policy:
        return self.desk.store.policy(incident.policy_id)

    def at(self, incident: Incident | None) -> datetime:
        """When an event written now happens (`stamps.stamp`): now, or the incident's last
        event when that is at most a few minutes ahead (notes and ticks leave
        `updated_at` alone, so ask the timeline itself); never dragged further."""
        if incident is None:
            return self.now
        return stamp(self.now, self.tx.last_event_at(incident.id) or incident.updated_at)

    _clock_checked = False

    def record(self, incident: Incident | None, kind: str, payload: dict[str, Any],
               levels: tuple[str, ...]) -> tuple[Incident, Event]:
        """Append one event and store the state it produces (refused, before anything is
        written, when this host's clock is far ahead of the file: `stamps.check_clock`)."""
        if not self._clock_checked:
            check_clock(self.now, self.tx.newest_event())
            self._clock_checked = True
        at = self.at(incident)
        event_id = self.tx.next_event_id()
        version = (incident.version if incident else 0) + (1 if kind in STATE_EVENTS else 0)
        new = apply_event(incident, event_id=event_id, version=version, kind=kind,
                          payload=payload, at=at, actor=self.desk.actor, levels=levels)
        if incident is None:
            self.tx.insert_incident(new)
        event = self.tx.append_event(new.id, version, at, self.desk.actor, kind, payload)
        if incident is not None:
            self.tx.update_incident(new, incident.version)
        return new, event


def _require_active(incident: Incident, doing: str) -> None:
    if incident.state in (RESOLVED, CLOSED):
        raise Refused(f"{incident.ref} is {incident.state}; reopen it before you {doing}")


def open_incident(desk: Desk, *, title: str, severity: str, description: str = "",
                  service: str = "", dedup_key: str | None = None,
                  external_ref: str | None = None, opened_at: datetime | None = None
                  ) -> Outcome:
    """Open an incident at the first level, or count a repeat of an open one (dedup key)."""
    with desk.store.write() as tx:
        return _open(_Writer(desk, tx), title=title, severity=severity, description=description,
                     service=service, dedup_key=dedup_key, external_ref=external_ref,
                     opened_at=opened_at)


def _open(w: _Writer, *, title: str, severity: str, description: str, service: str,
          dedup_key: str | None, external_ref: str | None, opened_at: datetime | None,
          source: str | None = None) -> Outcome:
    policy = w.desk.policy
    title = clean_text(title, "title", limit=MAX_TITLE)
    description = clean_text(description, "description", required=False)
    service = clean_text(service, "service", required=False, limit=MAX_TITLE)
    dedup_key = clean_text(dedup_key, "dedup key", required=False, limit=MAX_TITLE) or None
    external_ref = clean_text(external_ref, "external ref", required=False,
                              limit=MAX_TITLE) or None
    if severity not in policy.severities:
        raise Refused(f"unknown severity {severity!r} (choose {', '.join(policy.severities)})")
    if opened_at is not None and opened_at > w.now + CLOCK_TOLERANCE:
        raise Refused(f"opened_at {to_iso(opened_at)} is in the future")
    if dedup_key:
        existing = w.tx.open_by_dedup(dedup_key)
        if existing is not None:
            payload = {"dedup_key": dedup_key, "title": title, "severity": severity}
            if source:
                payload["source"] = source
            upgrade = severity_upgrade(policy, existing.severity, severity)
            if upgrade:
                payload["upgrade"] = upgrade
            new, event = w.record(existing, "repeated", payload,
                                  w.policy(existing).levels)
            return Outcome(new, event, f"{new.ref} repeated ({new.repeats} repeats)")
    policy_id = w.tx.policy_id(policy, w.now)
    payload = {"id": w.tx.next_incident_id(), "title": title, "severity": severity,
               "level": policy.levels[0], "description": description, "service": service,
               "dedup_key": dedup_key, "external_ref": external_ref, "policy_id": policy_id,
               "opened_at": to_iso(opened_at) if opened_at else None}
    if source:
        payload["source"] = source
    new, event = w.record(None, "opened", payload, policy.levels)
    return Outcome(new, event, f"{new.ref} opened ({severity} at {new.level})")


def acknowledge(desk: Desk, incident_id: int, *, expected_version: int | None = None) -> Outcome:
    """Take ownership at the current level; stops the response clock."""
    with desk.store.write() as tx:
        w = _Writer(desk, tx)
        # Someone acknowledging what a colleague just acknowledged wanted exactly this
        # state: tell them who has it (not a conflict), whatever version they saw.
        incident = w.load(incident_id, None)
        if incident.state != ACKNOWLEDGED and expected_version not in (None, incident.version):
            raise Conflict(w.conflict_message(incident, expected_version))
        _require_active(incident, "acknowledge it")
        if incident.state == ACKNOWLEDGED:
            assert incident.acknowledged_at is not None
            return Outcome(incident, None,
                           f"{incident.ref} is already acknowledged by {incident.acknowledged_by}"
                           f" at {local_time(incident.acknowledged_at)}")
        new, event = w.record(incident, "acknowledged", {"level": incident.level},
                              w.policy(incident).levels)
        return Outcome(new, event, f"{new.ref} acknowledged at {new.level}")


def trigger_wait(policy: Policy, to: str, trigger: str, incident: Incident, now: datetime
                 ) -> timedelta | None:
    """How long before `trigger` (to `to`) can be chosen for `incident`, or None if it can
    be now. A trigger that names a time ("not resolved within 30 minutes", `after` in the
    policy) counts it from when the incident entered its current level: the procedure
    lists it under that level's own escalation criteria, as the level clock does."""
    target = policy.escalation.get(to)
    found = next((t for t in target.triggers if t.key == trigger), None) if target else None
    after = getattr(found, "after", None)
    if after is None:
        return None
    left = incident.level_entered_at + after - now
    return left if left > timedelta(0) else None


def wait_countdown(left: timedelta) -> str:
    """`12m30s`: a wait in whole seconds, rounded up (never `0m00s` while one is left)."""
    return format_countdown(timedelta(seconds=-(-left // timedelta(seconds=1))))


def wait_message(trigger: str, left: timedelta) -> str:
    """`trigger 'not_resolved_30m' can be chosen in 12m30s`."""
    return f"trigger {trigger!r} can be chosen in {wait_countdown(left)}"


def handoff_problems(policy: Policy, to: str, trigger: str, reason: str,
                     fields: Mapping[str, str], *, incident: Incident | None = None,
                     now: datetime | None = None) -> tuple[list[str], str | None]:
    """(missing handoff field keys, other problem) for an escalation to `to`; given the
    incident and the time, a timed trigger chosen too early is a problem too."""
    target = policy.escalation[to]
    known = {item.key for item in target.handoff}
    unknown = sorted(set(fields) - known)
    if unknown:
        return [], (f"unknown handoff field {unknown[0]!r} for {to} "
                    f"(fields: {', '.join(item.key for item in target.handoff)})")
    missing = [item.key for item in target.handoff if not str(fields.get(item.key, "")).strip()]
    triggers = {item.key for item in target.triggers}
    problem = None
    if trigger == OTHER:
        if not reason.strip():
            problem = "trigger 'other' needs a reason"
    elif trigger not in triggers:
        problem = (f"unknown trigger {trigger!r} for {to} "
                   f"(choose {', '.join([*sorted(triggers), OTHER])})" if trigger
                   else "choose a trigger")
    elif incident is not None and now is not None:
        left = trigger_wait(policy, to, trigger, incident, now)
        if left is not None:
            problem = wait_message(trigger, left)
    return missing, problem


def escalate(desk: Desk, incident_id: int, *, to: str, trigger: str, fields: Mapping[str, str],
             reason: str = "", expected_version: int | None = None,
             assignee: str | None = None) -> Outcome:
    """Hand the incident to a higher level with that level's complete handoff. Ownership
    moves with it (SPEC §2): the assignee is cleared, unless `assignee` names the new
    owner."""
    with desk.store.write() as tx:
        w = _Writer(desk, tx)
        incident = w.load(incident_id, expected_version)
        policy = w.policy(incident)
        _require_active(incident, "escalate it")
        if to not in policy.tiers:
            raise Refused(f"unknown level {to!r} (choose {', '.join(policy.levels)})")
        if policy.level_rank(to) <= policy.level_rank(incident.level):
            above = policy.next_level(incident.level)
            if above is None:
                raise Refused(f"{incident.ref} is at {incident.level}, the top level; "
                              "nothing is above it")
            raise Refused(f"{incident.ref} is already at {incident.level}; escalate to a higher "
                          f"level ({', '.join(policy.levels[policy.level_rank(above):])})")
        fields = {k: clean_text(v, f"handoff field {k}", required=False)
                  for k, v in fields.items()}
        reason = clean_text(reason, "reason", required=False)
        owner = clean_text(assignee, "assignee", required=False, limit=200).strip() or None
        missing, problem = handoff_problems(policy, to, trigger, reason, fields,
                                            incident=incident, now=w.at(incident))
        if missing:
            labels = {item.key: item.label for item in policy.escalation[to].handoff}
            message = f"escalating {incident.ref} to {to} needs: " + ", ".join(
                f"{labels[k]} ({k})" for k in missing)
            trigger_missing = ["trigger"] if problem else []
            raise MissingFields(message + (f"; and {problem}" if problem else ""),
                                trigger_missing + missing)
        if problem:
            raise MissingFields(problem, ["reason" if trigger == OTHER else "trigger"])
        payload = {"from": incident.level, "to": to, "trigger": trigger, "reason": reason,
                   "fields": dict(fields), "assignee": owner}
        new, event = w.record(incident, "escalated", payload, policy.levels)
        tx.add_handoff(new.id, event.id, incident.level, to, trigger, reason, dict(fields))
        owned = f", assigned to {owner}" if owner else \
            f", unassigned (was {incident.assignee})" if incident.assignee else ""
        return Outcome(new, event, f"{new.ref} escalated to {to}{owned}")


def add_note(desk: Desk, incident_id: int, text: str) -> Outcome:
    """A note never conflicts: it changes no state."""
    with desk.store.write() as tx:
        w = _Writer(desk, tx)
        incident = w.load(incident_id, None)
        text = clean_text(text, "note")
        new, event = w.record(incident, "note", {"text": text}, w.policy(incident).levels)
        return Outcome(new, event, f"note added to {new.ref}")


def assign(desk: Desk, incident_id: int, name: str, *,
           expected_version: int | None = None) -> Outcome:
    with desk.store.write() as tx:
        w = _Writer(desk, tx)
        incident = w.load(incident_id, expected_version)
        name = clean_text(name, "assignee", required=False, limit=200).strip()
        if incident.state == CLOSED:
            raise Refused(f"{incident.ref} is closed; reopen it before you assign it")
        if (incident.assignee or "") == name:
            return Outcome(incident, None, f"{incident.ref} is already assigned to "
                           f"{name or 'nobody'}")
        new, event = w.record(incident, "assigned", {"from": incident.assignee, "to": name},
                              w.policy(incident).levels)
        return Outcome(new, event, f"{new.ref} assigned to {name}" if name
                       else f"{new.ref} unassigned")


def change_severity(desk: Desk, incident_id: int, severity: str, *, reason: str,
                    expected_version: int | None = None) -> Outcome:
    """Every clock follows the new severity from the incident's opening."""
    with desk.store.write() as tx:
        w = _Writer(desk, tx)
        incident = w.load(incident_id, expected_version)
        policy = w.policy(incident)
        if incident.state == CLOSED:
            raise Refused(f"{incident.ref} is closed; reopen it before you change its severity")
        if severity not in policy.severities:
            raise Refused(f"unknown severity {severity!r} (choose {', '.join(policy.severities)})")
        if severity == incident.severity:
            raise Refused(f"{incident.ref} is already {severity}")
        reason = clean_text(reason, "reason")
        new, event = w.record(incident, "severity_changed",
                              {"from": incident.severity, "to": severity, "reason": reason},
                              policy.levels)
        return Outcome(new, event, f"{new.ref} changed from {incident.severity} to {severity}")


def resolve(desk: Desk, incident_id: int, *, summary: str, checks: Iterable[str] | str,
            expected_version: int | None = None) -> Outcome:
    """Resolve with a summary and every resolution checklist item; close if no review is due."""
    with desk.store.write() as tx:
        w = _Writer(desk, tx)
        incident = w.load(incident_id, expected_version)
        policy = w.policy(incident)
        _require_active(incident, "resolve it")
        items = policy.checklists["resolution"]
        keys = [i.key for i in items]
        checked = keys if checks == "all" else list(checks)
        unknown = [c for c in checked if c not in keys]
        if unknown:
            raise Refused(f"unknown checklist item {unknown[0]!r} (items: {', '.join(keys)})")
        missing = [k for k in keys if k not in checked]
        summary = clean_text(summary, "resolution summary", required=False)
        if not summary.strip():
            raise MissingFields(f"resolving {incident.ref} needs a resolution summary",
                                ["summary", *missing])
        if missing:
            labels = {i.key: i.label for i in items}
            raise MissingFields(f"resolving {incident.ref} needs every checklist item; not "
                                "checked: " + ", ".join(f"{labels[k]} ({k})" for k in missing),
                                missing)
        new, event = w.record(incident, "resolved", {"summary": summary, "checks": keys},
                              policy.levels)
        for key in keys:
            tx.set_tick(new.id, "resolution", key, event.id)
        if not policy.needs_review(new.severity) and policy.close_on_resolve:
            new, event = w.record(new, "closed", {"reason": "no review required"}, policy.levels)
            return Outcome(new, event, f"{new.ref} resolved and closed")
        return Outcome(new, event, f"{new.ref} resolved; a post-incident review closes it")


def reopen(desk: Desk, incident_id: int, *, reason: str,
           expected_version: int | None = None) -> Outcome:
    with desk.store.write() as tx:
        w = _Writer(desk, tx)
        incident = w.load(incident_id, expected_version)
        if incident.state not in (RESOLVED, CLOSED):
            raise Refused(f"{incident.ref} is {incident.state}; only resolved or closed "
                          "incidents can be reopened")
        reason = clean_text(reason, "reason")
        new, event = w.record(incident, "reopened", {"reason": reason}, w.policy(incident).levels)
        return Outcome(new, event, f"{new.ref} reopened at {new.level}")


def file_review(desk: Desk, incident_id: int, fields: Mapping[str, str], *,
                expected_version: int | None = None) -> Outcome:
    """The post-incident review: every field; closes the incident."""
    with desk.store.write() as tx:
        w = _Writer(desk, tx)
        incident = w.load(incident_id, expected_version)
        policy = w.policy(incident)
        if incident.state != RESOLVED:
            raise Refused(f"{incident.ref} is {incident.state}; a review is filed for a "
                          "resolved incident")
        known = [f.key for f in policy.review_fields]
        unknown = sorted(set(fields) - set(known))
        if unknown:
            raise Refused(f"unknown review field {unknown[0]!r} (fields: {', '.join(known)})")
        fields = {k: clean_text(v, f"review field {k}", required=False)
                  for k, v in fields.items()}
        missing = [k for k in known if not fields.get(k, "").strip()]
        if missing:
            labels = {f.key: f.label for f in policy.review_fields}
            raise MissingFields(f"the review of {incident.ref} needs: "
                                + ", ".join(f"{labels[k]} ({k})" for k in missing), missing)
        new, event = w.record(incident, "review_filed", {"fields": dict(fields)}, policy.levels)
        tx.add_review(new.id, event.id, dict(fields))
        new, event = w.record(new, "closed", {"reason": "review filed"}, policy.levels)
        return Outcome(new, event, f"{new.ref} reviewed and closed")


def add_follow_up(desk: Desk, incident_id: int, *, kind: str, description: str, owner: str,
                  due: str | None = None) -> Outcome:
    with desk.store.write() as tx:
        w = _Writer(desk, tx)
        incident = w.load(incident_id, None)
        policy = w.policy(incident)
        if incident.state not in (RESOLVED, CLOSED):
            raise Refused(f"{incident.ref} is {incident.state}; follow-ups are for resolved "
                          "incidents")
        kinds = [k.key for k in policy.follow_up_kinds]
        if kind not in kinds:
            raise Refused(f"unknown follow-up kind {kind!r} (choose {', '.join(kinds)})")
        description = clean_text(description, "description")
        owner = clean_text(owner, "owner", limit=200)
        if due:
            try:
                datetime.strptime(due, "%Y-%m-%d")
            except ValueError:
                raise Refused(f"due date {due!r} is not a date (write 2026-12-31)") from None
        payload = {"kind": kind, "description": description, "owner": owner, "due": due or None}
        new, event = w.record(incident, "follow_up_added", payload, policy.levels)
        follow_up_id = tx.add_follow_up(new.id, event.id, kind, description, owner, due or None)
        return Outcome(new, event, f"follow-up {follow_up_id} added to {new.ref}")


def complete_follow_up(desk: Desk, follow_up_id: int) -> Outcome:
    with desk.store.write() as tx:
        w = _Writer(desk, tx)
        found = tx.follow_up(follow_up_id)
        if found is None:
            raise NotFound(f"follow-up {follow_up_id} does not exist")
        incident = w.load(found[0], None)
        if found[1] is not None:
            return Outcome(incident, None, f"follow-up {follow_up_id} is already done")
        new, event = w.record(incident, "follow_up_done", {"follow_up": follow_up_id},
                              w.policy(incident).levels)
        tx.finish_follow_up(follow_up_id, event.id)
        return Outcome(new, event, f"follow-up {follow_up_id} of {new.ref} done")


def checklist_items(policy: Policy, incident: Incident) -> dict[str, tuple]:
    """The tickable checklists of an incident: triage and communication."""
    lists: dict[str, tuple] = {"triage": policy.checklists.get("triage", ())}
    lists[f"internal.{incident.level}"] = policy.internal_communication.get(incident.level, ())
    for audience, items in policy.external_communication.items():
        lists[f"external.{audience}"] = items
    return lists


def tick(desk: Desk, incident_id: int, checklist: str, item: str, *, done: bool = True
         ) -> Outcome:
    """Tick or untick one item of a triage or communication checklist."""
    with desk.store.write() as tx:
        w = _Writer(desk, tx)
        incident = w.load(incident_id, None)
        policy = w.policy(incident)
        if checklist.startswith("internal."):
            items = policy.internal_communication.get(checklist.split(".", 1)[1], ())
        else:
            items = checklist_items(policy, incident).get(checklist, ())
        if item not in {i.key for i in items}:
            raise Refused(f"{checklist!r} has no item {item!r}")
        if ((checklist, item) in tx.ticks(incident.id)) == done:
            return Outcome(incident, None, f"{item} is already {'ticked' if done else 'unticked'}")
        kind = "checklist_ticked" if done else "checklist_unticked"
        new, event = w.record(incident, kind, {"checklist": checklist, "item": item},
                              policy.levels)
        tx.set_tick(new.id, checklist, item, event.id if done else None)
        return Outcome(new, event, f"{'ticked' if done else 'unticked'} {item} on {new.ref}")


def apply_policy(desk: Desk) -> list[Outcome]:
    """Re-base every open incident on the current policy, as an event each."""
    outcomes = []
    with desk.store.write() as tx:
        w = _Writer(desk, tx)
        policy_id = tx.policy_id(desk.policy, w.now)
        for incident in desk.store.incidents(ACTIVE_STATES):
            if incident.policy_id == policy_id:
                continue
            missing = [what for what, known in (
                (incident.severity, desk.policy.severities), (incident.level, desk.policy.tiers))
                if what not in known]
            if missing:
                raise Refused(f"{incident.ref} uses {missing[0]}, which the current policy "
                              "does not define; nothing was re-based")
            new, event = w.record(incident, "policy_applied",
                                  {"from": incident.policy_id, "policy_id": policy_id},
                                  desk.policy.levels)
            outcomes.append(Outcome(new, event, f"{new.ref} re-based on the current policy"))
    return outcomes


NOTICE_BATCH = 200  # incidents per notices' transaction: the write lock is never held long


def record_notices(desk: Desk, incidents: Iterable[Incident], *,
                   into: list[tuple[Incident, Event]] | None = None
                   ) -> list[tuple[Incident, Event]]:
    """Record every notice of SPEC §6 that `incidents` owe now and nobody has told yet,
    each once, whichever process sees it first (`notices.owed`; the store's claim on
    the notice's name decides, in the same transaction as its event).

    Returns the notices this process recorded (so it alone runs the notification hook).
    Nothing is written when every notice owed was told already. Notices are written
    NOTICE_BATCH incidents per transaction; each committed batch is appended to `into`
    at once, so a caller whose later batch failed (locked, disk full) still knows what
    was recorded.
    """
    recorded: list[tuple[Incident, Event]] = into if into is not None else []
    now = desk.clock.now()
    owing: list[int] = []
    hints: dict[int, set[tuple[str, str]]] = {}
    for incident in incidents:
        if not incident.active:
            continue
        due = owed(incident, desk.store.policy(incident.policy_id), now)
        if due:
            owing.append(incident.id)
            hints[incident.id] = {(n.kind, n.key) for n in due}
    if not owing:
        return recorded
    for incident_id, kind, key in desk.store.told_notices(owing):
        hints[incident_id].discard((kind, key))
    owing = [i for i in owing if hints[i]]
    for start in range(0, len(owing), NOTICE_BATCH):
        batch: list[tuple[Incident, Event]] = []
        with desk.store.write() as tx:
            w = _Writer(desk, tx)
            for incident_id in owing[start:start + NOTICE_BATCH]:
                current = tx.incident(incident_id)
                if current is None:
                    continue
                policy = w.policy(current)
                for notice in owed(current, policy, now):  # as it stands, under the lock
                    if not tx.claim_notice(current.id, notice.kind, notice.key):
                        continue
                    current, event = w.record(current, notice.kind, dict(notice.payload),
                                              policy.levels)
                    tx.link_notice(current.id, notice.kind, notice.key, event.id)
                    batch.append((current, event))
        recorded.extend(batch)  # committed
    return recorded


def record_hook_failure(desk: Desk, incident_id: int, notice: Event, reason: str
                        ) -> Outcome | None:
    """Record on the incident's timeline that the notification command did not deliver
    `notice` (it failed, timed out or was refused); None if the incident is gone."""
    with desk.store.write() as tx:
        w = _Writer(desk, tx)
        incident = tx.incident(incident_id)
        if incident is None:
            return None
        payload = {"notice": notice.id, "event": notice.kind, "reason": reason}
        new, event = w.record(incident, "hook_failed", payload, w.policy(incident).levels)
        return Outcome(new, event, f"{new.ref}: notification command failed: {reason}")
