"""The escalation procedure as people read it: `sladeck policy show` and `sladeck contacts`.

Plain text, at most 80 columns wide (longer values wrap under their label). Every
policy string passes through `text.one_line`: a stored or edited policy may hold any
character, and none of them reaches the terminal as a control sequence.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from sladeck.domain.model import ChecklistTick, Incident, IncidentDetail
from sladeck.policy import Item, ManagementContact, Policy, format_duration
from sladeck.text import one_line

WIDTH = 80


def wrap(text: str, indent: str = "", hang: str | None = None) -> list[str]:
    """`text` (already made visible) as lines of at most WIDTH columns."""
    return textwrap.wrap(text, WIDTH, initial_indent=indent,
                         subsequent_indent=hang if hang is not None else indent + "  ",
                         break_long_words=True, break_on_hyphens=False) or [indent.rstrip()]


def v(text: str) -> str:
    """A policy string, sanitised and on one line."""
    return one_line(text)


def _labelled(label: str, value: str, indent: str = "  ") -> list[str]:
    return wrap(f"{label}: {value}", indent, indent + "    ")


def _bullets(title: str, entries: Sequence[str], indent: str = "  ") -> list[str]:
    if not entries:
        return [f"{indent}{title}: none"]
    out = [f"{indent}{title}:"]
    for entry in entries:
        out += wrap(f"- {v(entry)}", indent + "  ", indent + "    ")
    return out


def _items(title: str, items: Iterable[Item], indent: str = "  ",
           marks: dict[str, str] | None = None) -> list[str]:
    """Keyed items as `- key: label (help)`; with `marks`, a tick box before each."""
    items = tuple(items)
    out = [f"{indent}{title}:" if items else f"{indent}{title}: none"]
    for item in items:
        box = f"[{'x' if marks and item.key in marks else ' '}] " if marks is not None else ""
        text = f"{box}{v(item.key)}: {v(item.label)}"
        if item.help:
            text += f" ({v(item.help)})"
        after = getattr(item, "after", None)  # a timed trigger
        if after is not None:
            text += f" [after {format_duration(after)} at the current level]"
        if marks and item.key in marks:
            text += f" - {marks[item.key]}"
        out += wrap(f"- {text}", indent + "  ", indent + "    " + " " * len(box))
    return out


def _duration(value: object) -> str:
    from datetime import timedelta

    if value is None:
        return "none"
    assert isinstance(value, timedelta)
    return "immediately" if not value else format_duration(value)


def review_status(policy: Policy, today: date) -> str:
    """`version 1.0.0 · owner Support Team · next review 2025-11-22 (passed)`."""
    parts = [f"version {v(policy.version) or '-'}", f"owner {v(policy.owner) or '-'}"]
    due = policy.next_review_date()
    if due is None:
        parts.append("no next review date")
    else:
        parts.append(f"next review {due.isoformat()}"
                     + (" (PASSED: the procedure is due for review)"
                        if policy.review_overdue(today) else ""))
    return " · ".join(parts)


def show_policy(policy: Policy, today: date, *, severity: str | None = None,
                level: str | None = None) -> str:
    """The whole procedure (or the part about one severity and/or level)."""
    sevs = [severity] if severity else list(policy.severities)
    levels = [level] if level else list(policy.levels)
    out = [v(policy.name), *wrap(review_status(policy, today), "", "  ")]

    out += ["", "SEVERITIES"]
    for key in sevs:
        s = policy.severities[key]
        out += ["", f"{v(key)} {v(s.name)}"]
        out += _labelled("Definition", v(s.definition) or "-")
        out += _labelled("Business impact", v(s.business_impact) or "-")
        out += _bullets("Examples", s.examples)
        first = policy.levels[0]
        out += _labelled("Response", f"{_duration(policy.response_time(key, first))} at "
                         f"{v(first)} (the response matrix gives every level)")
        out += _labelled("Resolution", f"target {_duration(s.resolution_target)}, maximum "
                         f"{_duration(s.resolution_maximum)} from opening")
        within = (f"within {_duration(s.escalate_within)} of opening"
                  if s.escalate_within else "immediately on opening")
        out += _labelled("Escalation", f"reach {v(s.escalate_to)} {within}")
        out += _labelled("Post-incident review",
                         "required" if policy.needs_review(key) else "not required")

    out += ["", "LEVELS"]
    for key in levels:
        t = policy.tiers[key]
        out += ["", f"{v(key)} {v(t.name)}"]
        out += _labelled("Scope", v(t.scope) or "-")
        out += _labelled("Escalate after", _duration(t.escalate_after)
                         if t.escalate_after is not None else "never (the top level)")
        out += _bullets("Responsibilities", t.responsibilities)
        out += _bullets("Common issues", t.common_issues)
        out += _bullets("Escalation criteria", t.escalation_criteria)
        target = policy.escalation.get(key)
        if target is not None:
            out.append(f"  Escalating to {v(key)} (sladeck escalate ID --to {v(key)}):")
            out += _bullets("Process", target.process, "    ")
            out += _items("Triggers (one, or other with a reason)", target.triggers, "    ")
            out += _items("Handoff fields (every one)", target.handoff, "    ")

    out += ["", "RESPONSE MATRIX (time to acknowledge, by severity and current level)", ""]
    cell = max([6, *(len(v(lv)) + 2 for lv in levels)])
    head = max([4, *(len(v(s)) + 2 for s in sevs)])
    out.append(" " * head + "".join(f"{v(lv):>{cell}}" for lv in levels))
    for key in sevs:
        out.append(f"{v(key):<{head}}" + "".join(
            f"{_duration(policy.response_time(key, lv)):>{cell}}" for lv in levels))

    out += ["", "CHECKLISTS"]
    out += ["", *wrap("Triage (tick with: sladeck tick ID triage KEY)")]
    out += _items("Items", policy.checklists.get("triage", ()))
    out += ["", *wrap("Internal communication, per level (sladeck tick ID internal KEY)")]
    for key in levels:
        out += _items(f"{v(key)}", policy.internal_communication.get(key, ()))
    out += ["", *wrap("External communication (sladeck tick ID external.AUDIENCE KEY)")]
    for audience, items in policy.external_communication.items():
        out += _items(v(audience), items)
    out += ["", *wrap("Resolution (sladeck resolve ID --check KEY or --check all)")]
    out += _items("Items", policy.checklists.get("resolution", ()))
    out += ["", *wrap("Knowledge sharing (part of the post-incident review)")]
    out += _items("Items", policy.checklists.get("knowledge_sharing", ()))

    out += ["", "POST-INCIDENT REVIEW"]
    out += _labelled("Required for", ", ".join(v(s) for s in policy.review_required_for)
                     or "no severity", "")
    out += _items("Fields (sladeck review ID --field KEY=TEXT)", policy.review_fields, "")
    out += _items("Follow-up kinds (sladeck follow-up add ID --kind KEY)",
                  policy.follow_up_kinds, "")

    out += ["", "CONTACTS", ""]
    out += level_contacts(policy, levels)
    out += ["", *wrap(hours_line(policy))]
    out += ["Management:"]
    for person in policy.management:
        out += wrap(f"- {_person(person)}; {_availability(person)}", "  ", "    ")
    out += _named(policy)

    if policy.tools:
        out += ["", "TOOLS"]
        for name, entries in policy.tools.items():
            out += wrap(f"{v(name)}: " + ", ".join(f"{v(k)} {v(val)}"
                                                     for k, val in entries.items()), "", "    ")
    if policy.intake is not None:
        out += ["", "ALERT INTAKE (sladeck receive; sladeck import --format alertmanager|grafana)"]
        out += _intake(policy)
    return "\n".join(out)


def _intake(policy: Policy) -> list[str]:
    """How an alert becomes an incident: the policy's `intake` section, as people read it."""
    intake = policy.intake
    assert intake is not None
    values = ", ".join(f"{v(value)} -> {v(sev)}" for value, sev in intake.severities.items())
    return [*_labelled("Severity", f"label {v(intake.severity_label)}: {values or 'none listed'}; "
                       f"anything else {v(intake.default_severity)}"),
            *_labelled("Service", f"label {v(intake.service_label)}"),
            *_labelled("Title", "annotation " + ", else ".join(v(a) for a in intake.title)
                       + ", else the alertname label"),
            *_labelled("Description", "annotations " + ", ".join(v(a) for a in intake.description)),
            *_labelled("Dedup key", "the alert's fingerprint, else labels "
                       + ", ".join(v(a) for a in intake.dedup_labels)),
            *wrap("A resolved alert marks its incident \"source cleared\"; people resolve it.",
                  "  ", "  ")]


def _person(person: ManagementContact) -> str:
    return f"{v(person.name)} ({v(person.email)}, {v(person.phone)})"


def _availability(person: ManagementContact) -> str:
    return "; ".join(f"{', '.join(v(s) for s in a.severities)}: "
                     f"{'always' if a.when == 'always' else 'business hours'}"
                     for a in person.availability)


def hours_line(policy: Policy) -> str:
    hours = policy.business_hours
    days = ", ".join(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[d] for d in hours.days)
    return (f"Business hours: {days} {hours.start:%H:%M}-{hours.end:%H:%M} "
            f"{v(hours.timezone)}")


def level_contacts(policy: Policy, levels: Iterable[str]) -> list[str]:
    out = []
    for key in levels:
        c = policy.level_contacts.get(key)
        if c is None:
            continue
        out += wrap(f"{v(key)} {v(policy.tiers[key].name)}: {v(c.primary)} · {v(c.phone)} · "
                    f"{v(c.chat)} · escalation {v(c.escalation)}", "", "    ")
    return out


def _named(policy: Policy) -> list[str]:
    out = ["Vendors:" if policy.vendors else "Vendors: none"]
    out += [line for n in policy.vendors for line in wrap(f"- {v(n.name)}: {v(n.contact)}",
                                                          "  ", "    ")]
    out.append("Professional services (legal, security, consultants):"
               if policy.professional_services else "Professional services: none")
    out += [line for n in policy.professional_services
            for line in wrap(f"- {v(n.name)}: {v(n.contact)}", "  ", "    ")]
    return out


def show_contacts(policy: Policy, now: datetime, *, severity: str | None = None,
                  level: str | None = None) -> str:
    """Who to call now: the level's on-call, management available now (business hours
    as the policy sets them, through `Policy.management_available`), vendors and
    professional services."""
    from zoneinfo import ZoneInfo

    hours = policy.business_hours
    local = now.astimezone(ZoneInfo(hours.timezone))
    inside = hours.contains(now)
    out = wrap(f"Now: {local:%a %Y-%m-%d %H:%M} {v(hours.timezone)}, "
               f"{'inside' if inside else 'outside'} business hours", "", "  ")
    out += wrap(hours_line(policy), "", "  ")
    out += ["", "Levels:"]
    out += [f"  {line}" for line in level_contacts(policy, [level] if level
                                                     else policy.levels)]
    sevs = [severity] if severity else list(policy.severities)
    out += [""]
    for sev in sevs:
        available = policy.management_available(sev, now)
        out.append(f"Management to call now for {v(sev)}:"
                   if available else f"Management to call now for {v(sev)}: none")
        out += [line for p in available for line in wrap(f"- {_person(p)}", "  ", "    ")]
        later = [p for p in policy.management if p not in available
                 and any(sev in a.severities for a in p.availability)]
        if later:
            out += wrap("Not now (business hours only): " + ", ".join(
                _person(p) for p in later), "  ", "    ")
    out += ["", *_named(policy)]
    return "\n".join(out)


def incident_checklists(detail: IncidentDetail, policy: Policy
                        ) -> list[tuple[str, str, list[tuple[Item, ChecklistTick | None]]]]:
    """The triage and communication checklists of an incident, as (title, checklist name,
    [(item, its tick or None)]): the internal list of every level the incident has been
    at, not only the current one (ticks are kept per level, `internal.L1`, so ticks made
    at L1 are still listed after it moved on). Titles are raw policy text."""
    inc: Incident = detail.incident
    ticks = {(t.checklist, t.item): t for t in detail.ticks}
    been = set(inc.reached) | {inc.level} | {
        t.checklist.split(".", 1)[1] for t in detail.ticks if t.checklist.startswith("internal.")}
    lists: list[tuple[str, str, tuple[Item, ...]]] = [
        ("Triage", "triage", policy.checklists.get("triage", ()))]
    for lv in [*(lv for lv in policy.levels if lv in been),
               *sorted(lv for lv in been if lv not in policy.levels)]:
        here = " (current level)" if lv == inc.level else ""
        lists.append((f"Internal communication at {lv}{here}", f"internal.{lv}",
                      policy.internal_communication.get(lv, ())))
    for audience, items in policy.external_communication.items():
        lists.append((f"External communication: {audience}", f"external.{audience}", items))
    return [(title, name, [(item, ticks.get((name, item.key))) for item in items])
            for title, name, items in lists]
