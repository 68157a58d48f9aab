"""Incidents as JSON objects, CSV rows, text lines and Markdown documents."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sladeck.domain.clocks import (
    BREACHED,
    KIND_LABEL,
    KIND_TITLE,
    Assessment,
    assess,
    format_countdown,
)
from sladeck.domain.history import ClockCycle, status
from sladeck.domain.model import (
    Incident,
    IncidentDetail,
    from_iso,
    json_time,
    local_time,
    zone_label,
)
from sladeck.domain.timeline import describe
from sladeck.policy import Policy
from sladeck.text import one_line, visible

CSV_COLUMNS = ("id", "ref", "title", "severity", "level", "state", "risk", "service",
               "assignee", "opened_at", "next_deadline", "next_due_at", "external_ref")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAYS: dict[int, str] = {}  # days since 1970 → "YYYY-MM-DDT"
_SECONDS: dict[int, str] = {}  # second of the day → "HH:MM:SSZ"


def _json_time(at: datetime | None) -> str | None:
    """`json_time`, about 6× faster (a list of 10,000 incidents formats ~80,000 times):
    the day and the time of day are each formatted once and looked up after."""
    if at is None:
        return None
    since = at - _EPOCH
    day = _DAYS.get(since.days)
    if day is None:
        date = _EPOCH + timedelta(days=since.days)
        day = _DAYS[since.days] = f"{date.year:04d}-{date.month:02d}-{date.day:02d}T"
    second = since.seconds
    time = _SECONDS.get(second)
    if time is None:
        time = _SECONDS[second] = f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"
    return day + time


def incident_json(incident: Incident, policy: Policy, now: datetime,
                  a: Assessment | None = None) -> dict[str, Any]:
    a = a or assess(incident, policy, now)
    t = _json_time
    nearest = a.nearest
    return {
        "id": incident.id, "ref": incident.ref, "title": incident.title,
        "description": incident.description, "service": incident.service,
        "severity": incident.severity, "level": incident.level, "state": incident.state,
        "assignee": incident.assignee, "external_ref": incident.external_ref,
        "dedup_key": incident.dedup_key, "opened_at": t(incident.opened_at),
        "opened_by": incident.opened_by,
        "acknowledged_at": t(incident.acknowledged_at),
        "acknowledged_by": incident.acknowledged_by,
        "first_acknowledged_at": t(incident.first_acknowledged_at),
        "resolved_at": t(incident.resolved_at), "closed_at": t(incident.closed_at),
        "repeats": incident.repeats, "source_cleared_at": t(incident.source_cleared_at),
        "version": incident.version, "risk": a.risk,
        "breached": a.risk == BREACHED,  # true once any cycle breached (SPEC §3)
        "next_deadline": ({"kind": nearest.kind, "due_at": t(nearest.due_at)}
                          if nearest else None),
        "clocks": [{"kind": c.kind, "started_at": t(c.started_at),
                    "due_at": t(c.due_at), "stopped_at": t(c.stopped_at),
                    "status": c.status} for c in a.clocks],
    }


def detail_json(detail: IncidentDetail, policy: Policy, now: datetime) -> dict[str, Any]:
    a = assess(detail.incident, policy, now, detail.clock_history or None)
    out = incident_json(detail.incident, policy, now, a)
    out["clock_history"] = [
        {**c.as_json(), "status": status(c, now, policy, detail.incident.severity)}
        for c in a.history]
    out["events"] = [{"id": e.id, "at": json_time(e.at), "account": e.account, "name": e.name,
                      "kind": e.kind, "version": e.version, "payload": e.payload}
                     for e in detail.events]
    out["handoffs"] = [{"at": json_time(h.at), "by": h.actor, "from": h.from_level,
                        "to": h.to_level, "trigger": h.trigger, "reason": h.reason,
                        "fields": h.fields} for h in detail.handoffs]
    out["checklists"] = [{"checklist": t.checklist, "item": t.item, "at": json_time(t.at),
                          "by": t.actor} for t in detail.ticks]
    out["review"] = ({"at": json_time(detail.review.at), "by": detail.review.actor,
                      "fields": detail.review.fields} if detail.review else None)
    out["follow_ups"] = [{"id": f.id, "kind": f.kind, "description": f.description,
                          "owner": f.owner, "due": f.due, "done_at": json_time(f.done_at),
                          "done_by": f.done_by} for f in detail.follow_ups]
    return out


# A formula starts a cell, or starts a piece of one that a spreadsheet in a `;` (or `,`)
# locale splits off: `a;=1+1` opened where `;` separates is two cells, the second a
# formula. Quotes and spaces before the trigger do not make it text.
_FORMULA = re.compile(r"(^|[;,])([\s\"]*)(?=[=+\-@|\t\r])")
_CELL_START = frozenset('=+-@|"')


def spreadsheet_safe(value: Any) -> str:
    """A CSV cell no spreadsheet will run as a formula, in any locale, and no terminal
    will obey: a `'` goes before every formula trigger that starts the cell or follows a
    `;` or `,` in it."""
    text = visible("" if value is None else str(value))
    first = text[:1]
    if ";" not in text and "," not in text and first not in _CELL_START \
            and not first.isspace():
        return text  # most cells: nowhere a formula could start
    return _FORMULA.sub(r"\1\2'", text)


def incidents_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    # Every cell quoted: a spreadsheet that splits on `;` still sees each cell's edges.
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        nxt = row.get("next_deadline") or {}
        values = {**row, "next_deadline": nxt.get("kind"), "next_due_at": nxt.get("due_at")}
        writer.writerow([spreadsheet_safe(values.get(c)) for c in CSV_COLUMNS])
    return out.getvalue()


def md(text: str | None) -> str:
    """Text for a Markdown table cell or line: visible, pipes and markup escaped."""
    shown = visible(text or "", multiline=False)
    for char in "\\`*_[]<>|#":
        shown = shown.replace(char, "\\" + char)
    return shown


# What makes a line a block of its own: a heading underline (`===`, `---`), a list item
# or checkbox (`-`, `+`, `*`, `1.`, `1)`), a fence (`~~~`; backticks are escaped by `md`),
# a heading (`#`) or a quote (`>`). Its first character is escaped.
_BLOCK_START = re.compile(r"^( *)(?:([-+=~])|(\d{1,9})([.)]))")


def md_block_line(line: str) -> str:
    """One line of user text that stays a plain paragraph line in Markdown."""
    shown = _BLOCK_START.sub(lambda m: m.group(1) + (
        "\\" + m.group(2) if m.group(2) else m.group(3) + "\\" + m.group(4)), md(line))
    # Four spaces would start a code block: keep the indent, as non-breaking spaces.
    indent = len(shown) - len(shown.lstrip(" "))
    return "\u00a0" * indent + shown[indent:]


def md_block(text: str | None) -> str:
    """Multi-line user text as a Markdown quote (escaped, never interpreted)."""
    lines = visible(text or "", multiline=True).split("\n")
    return "\n".join("> " + md_block_line(line) if line else ">" for line in lines)


def incidents_markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| Incident | Sev | Level | State | Risk | Opened | Title |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['ref']} | {md(r['severity'])} | {md(r['level'])} | {r['state']} | "
                     f"{r['risk']} | {shown(from_iso(r['opened_at']))} | {md(r['title'])} |")
    return "\n".join(lines) + "\n"


def shown(at: datetime | None) -> str:
    """A time as a person reads it: in their own zone, with the zone named."""
    return local_time(at) if at is not None else "-"


def incident_markdown(detail: IncidentDetail, policy: Policy, now: datetime) -> str:
    """One incident as a readable handoff / post-incident document."""
    inc = detail.incident
    a = assess(inc, policy, now, detail.clock_history or None)
    sev = policy.severities[inc.severity]
    out = [f"# {inc.ref}: {md(inc.title)}", "",
           "| | |", "|---|---|",
           # Policy text is escaped like user text: an old stored policy may hold anything.
           f"| Severity | {md(inc.severity)} ({md(sev.name)}) |",
           f"| Level | {md(inc.level)} ({md(policy.tiers[inc.level].name)}) |",
           f"| State | {inc.state} |", f"| Risk | {a.risk} |",
           f"| Service | {md(inc.service) or '-'} |", f"| Assignee | {md(inc.assignee) or '-'} |",
           f"| External ref | {md(inc.external_ref) or '-'} |",
           f"| Opened | {shown(inc.opened_at)} by {md(inc.opened_by)} |"]
    if inc.source_cleared_at is not None:  # the alert ended; a person still resolves
        out.append(f"| Source cleared | {shown(inc.source_cleared_at)} (the alert ended) |")
    out.append("")
    if inc.description:
        out += ["## Description", "", md_block(inc.description), ""]
    out += ["## SLA clocks", "", "| Clock | Due | Status |", "|---|---|---|"]
    out += [f"| {KIND_TITLE[c.kind]} | {shown(c.due_at)} | {c.status} |" for c in a.clocks]
    out.append("")
    out += ["## Clock history", "", f"Times in {zone_label(now.astimezone())}.", "",
            "| " + " | ".join(HISTORY_HEADINGS) + " |", "|---|---|---|---|---|---|"]
    out += ["| " + " | ".join(md(cell) for cell in row) + " |"
            for row in history_rows(a.history, now, policy, inc.severity)]
    out.append("")
    if detail.handoffs:
        out += ["## Handoffs", ""]
        for h in detail.handoffs:
            labels = {i.key: i.label for i in policy.escalation[h.to_level].handoff} \
                if h.to_level in policy.escalation else {}
            trigger = {t.key: t.label for t in policy.escalation[h.to_level].triggers}.get(
                h.trigger, h.trigger) if h.to_level in policy.escalation else h.trigger
            out += [f"### {md(h.from_level)} → {md(h.to_level)}, {shown(h.at)} by "
                    f"{md(h.actor)}", "",
                    f"Trigger: {md(trigger)}" + (f" ({md(h.reason)})" if h.reason else ""), ""]
            # In the policy's order (the stored mapping is sorted by key), then any others.
            for key in [*(k for k in labels if k in h.fields),
                        *(k for k in h.fields if k not in labels)]:
                out += [f"**{md(labels.get(key, key))}**", "", md_block(h.fields[key]), ""]
    out += ["## Timeline", "", "| Time | Who | What |", "|---|---|---|"]
    for e in detail.events:
        what = describe(e.kind, e.payload)
        text = e.payload.get("text") or e.payload.get("summary") or e.payload.get("reason")
        if text:
            what += ": " + one_line(text, 200)
        out.append(f"| {shown(e.at)} | {md(e.actor.display)} | {md(what)} |")
    out.append("")
    out += _checklists_markdown(detail, policy)
    ticks = {(t.checklist, t.item): t for t in detail.ticks}
    out += ["## Resolution checklist", ""]
    for item in policy.checklists.get("resolution", ()):
        t = ticks.get(("resolution", item.key))
        out.append(f"- [{'x' if t else ' '}] {md(item.label)}"
                   + (f" ({shown(t.at)}, {md(t.actor)})" if t else ""))
    out.append("")
    earlier = detail.earlier_review
    if detail.earlier_ticks or earlier:  # made before the last reopen
        done = [*(["resolution checklist"] if detail.earlier_ticks else []),
                *([f"review (filed {shown(earlier.at)} by {md(earlier.actor)})"]
                  if earlier else [])]
        do = "do" if len(done) > 1 else "does"
        out += [f"Reopened {shown(detail.reopened_at)}: the earlier cycle's "
                f"{' and '.join(done)} {do} not count for this one.", ""]
    if policy.needs_review(inc.severity) or detail.review:
        out += ["## Post-incident review", ""]
        if detail.review:
            for f in policy.review_fields:
                out += [f"**{md(f.label)}**", "", md_block(detail.review.fields.get(f.key)), ""]
        else:
            out += ["Not filed yet.", ""]
    if detail.follow_ups:
        out += ["## Follow-up actions", "", "| # | Kind | Action | Owner | Due | Done |",
                "|---|---|---|---|---|---|"]
        for f in detail.follow_ups:
            out.append(f"| {f.id} | {md(f.kind)} | {md(f.description)} | {md(f.owner)} | "
                       f"{md(f.due) or '-'} | {shown(f.done_at)} |")
        out.append("")
    return "\n".join(out)


def _checklists_markdown(detail: IncidentDetail, policy: Policy) -> list[str]:
    """Triage and communication checklists with their ticks, every level the incident
    has been at (`sladeck tick` or the detail screen ticks them)."""
    from sladeck.procedure import incident_checklists

    out = ["## Checklists", ""]
    for title, name, entries in incident_checklists(detail, policy):
        done = sum(1 for _, t in entries if t)
        out += [f"### {md(title)} ({done}/{len(entries)}, {md(name)})", ""]
        for item, t in entries:
            out.append(f"- [{'x' if t else ' '}] {md(item.label)} ({md(item.key)})"
                       + (f" ({shown(t.at)}, {md(t.actor)})" if t else ""))
        out.append("")
    return out


def queue_line(incident: Incident, policy: Policy, now: datetime,
               a: Assessment | None = None, title_width: int = 60) -> str:
    """One plain-text line of `sladeck list`."""
    a = a or assess(incident, policy, now)
    nxt = (f"{KIND_LABEL[a.nearest.kind]} {format_countdown(a.nearest.due_at - now)}"
           if a.nearest else "-")
    title = one_line(incident.title, title_width)
    service = f" [{one_line(incident.service, 30)}]" if incident.service else ""
    cleared = " (source cleared)" if incident.source_cleared_at is not None else ""
    return (f"{incident.ref:<9} {one_line(incident.severity):<3} {one_line(incident.level):<3} "
            f"{incident.state:<12} "
            f"{a.risk:<8} {nxt:<11} {title}{service}{cleared}")


# -- the clock history as a table that fits 80 columns ----------------------------------

HISTORY_HEADINGS = ("Level", "Clock", "Due", "Stopped", "Outcome", "Late by")
CLOCK_SHORT = {"response": "Response", "level": "Level", "severity_level": "Severity",
               "resolution_target": "Res. target", "resolution_maximum": "Res. maximum"}


def short_time(at: datetime | None, now: datetime) -> str:
    """A time in the viewer's zone, short: `14:05` today, `11-28 14:05` another day."""
    if at is None:
        return "-"
    local, today = at.astimezone(), now.astimezone()
    return local.strftime("%H:%M" if local.date() == today.date() else "%m-%d %H:%M")


def late_by(seconds: int | None) -> str:
    """`1m05s`, `2h10m`, `1d03h`; `-` when not late."""
    return format_countdown(timedelta(seconds=seconds)) if seconds else "-"


def history_rows(history: tuple[ClockCycle, ...], now: datetime, policy: Policy,
                 severity: str) -> list[tuple[str, str, str, str, str, str]]:
    """One row per cycle (level, clock, due, stopped, outcome, late by), in the order
    they started; a running cycle's outcome is its status now."""
    return [(c.level, CLOCK_SHORT.get(c.kind, c.kind), short_time(c.due_at, now),
             short_time(c.stopped_at, now), status(c, now, policy, severity),
             late_by(c.late_by_s)) for c in history]
