"""Reports and digests as text, Markdown, CSV and JSON (`sladeck report`, `sladeck digest`).

Every cell of user text (a service, an assignee, a title) is escaped as in the other
exports: `report.md` for Markdown, `report.spreadsheet_safe` for CSV, `visible` for text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from sladeck.domain.clocks import CLOCK_KINDS, KIND_TITLE
from sladeck.domain.digest import Digest, DigestLine
from sladeck.domain.reports import (
    COUNT_KEYS,
    OUTCOMES,
    TOTAL,
    GroupReport,
    Report,
    Stats,
    compliance_json,
    group_json,
    stats,
)
from sladeck.report import md, shown, spreadsheet_safe
from sladeck.text import one_line, visible


def duration(seconds: float | None) -> str:
    """`45s`, `4m12s`, `1h05m`, `2d03h`; `-` for none."""
    if seconds is None:
        return "-"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _stat_cells(st: Stats) -> list[str]:
    return [str(st.count), duration(st.median), duration(st.p90), duration(st.mean)]


def _rows(r: Report) -> list[GroupReport]:
    return [*r.groups, r.total] if r.groups else [r.total]


def _namer(r: Report) -> Any:
    """A group's name as shown: `(all)` for the total row, `(none)` for a blank value."""
    return lambda g: "(all)" if g is r.total else (g.name or "(none)")


def report_tables(r: Report) -> list[tuple[str, list[str], list[list[str]]]]:
    """The report as (title, header, rows) tables, the same in text and Markdown."""
    groups = _rows(r)
    _name = _namer(r)
    by = r.by.capitalize()
    tables = [("Incidents", [by, *(k.capitalize() for k in COUNT_KEYS)],
               [[_name(g), *(str(g.counts[k]) for k in COUNT_KEYS)] for g in groups])]
    tables.append(("Time to acknowledge and resolve",
                   [by, "TTA n", "median", "p90", "mean", "TTR n", "median", "p90", "mean",
                    "Unresolved"],
                   [[_name(g), *_stat_cells(stats(g.tta)), *_stat_cells(stats(g.ttr)),
                     str(g.unresolved_cycles)] for g in groups]))
    level_rows = []
    for g in groups:
        j = group_json(g, r.levels)
        for level in j["tta_by_level"]:
            st = stats(g.tta_by_level[level])
            level_rows.append([_name(g), level, *_stat_cells(st)])
    tables.append(("Time to acknowledge per level (from entering it)",
                   [by, "Level", "n", "median", "p90", "mean"], level_rows))
    compliance_rows = []
    for g in groups:
        for kind in CLOCK_KINDS:
            if kind in g.compliance:
                c = compliance_json(g.compliance[kind])
                rate = "-" if c["rate"] is None else f"{c['rate'] * 100:.0f}%"
                compliance_rows.append([_name(g), KIND_TITLE[kind],
                                        *(str(c[o]) for o in OUTCOMES), rate])
    tables.append(("SLA compliance (met ÷ stopped cycles)",
                   [by, "Clock", "Met", "Late", "Breached", "Running", "Met ÷ stopped"],
                   compliance_rows))
    tables.append(("Escalations by target level and trigger", [by, "To", "Trigger", "Count"],
                   [[_name(g), to, trigger, str(n)] for g in groups
                    for (to, trigger), n in sorted(g.escalations.items())]))
    tables.append(("Reviews and follow-ups",
                   [by, "Reviews outstanding", "Follow-ups open", "Overdue"],
                   [[_name(g), str(g.reviews_outstanding), str(g.follow_ups_open),
                     str(g.follow_ups_overdue)] for g in groups]))
    return tables


def _title(r: Report) -> str:
    return (f"Incidents opened from {shown(r.since)} to {shown(r.until)}, by {r.by}")


def report_text(r: Report) -> str:
    out = [_title(r), ""]
    for title, header, rows in report_tables(r):
        out += [title, "-" * len(title)]
        if not rows:
            out += ["(none)", ""]
            continue
        cells = [[visible(one_line(c, 40)) for c in row] for row in [header, *rows]]
        widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
        for row in cells:
            out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(row, widths, strict=True)))
                       .rstrip())
        out.append("")
    return "\n".join(out)


def report_markdown(r: Report) -> str:
    out = [f"# {md(_title(r))}", ""]
    for title, header, rows in report_tables(r):
        out += [f"## {md(title)}", ""]
        if not rows:
            out += ["None.", ""]
            continue
        out.append("| " + " | ".join(md(h) for h in header) + " |")
        out.append("|" + "---|" * len(header))
        out += ["| " + " | ".join(md(c) for c in row) + " |" for row in rows]
        out.append("")
    return "\n".join(out)


CSV_HEADER = ("section", "group", "item", "measure", "value")


def report_csv_rows(r: Report) -> Iterable[tuple[Any, ...]]:
    """The report in long form: one (section, group, item, measure, value) per number."""
    for g in _rows(r):
        j = group_json(g, r.levels)
        j["group"] = TOTAL if g is r.total else g.name
        for k, v in j["counts"].items():
            yield "counts", j["group"], "", k, v
        for section in ("tta", "ttr"):
            for measure, v in j[section].items():
                yield section, j["group"], "", measure, v
        for level, st in j["tta_by_level"].items():
            for measure, v in st.items():
                yield "tta_by_level", j["group"], level, measure, v
        yield "tta", j["group"], "", "unacknowledged_entries", j["unacknowledged_entries"]
        yield "ttr", j["group"], "", "unresolved_cycles", j["unresolved_cycles"]
        for kind, c in j["compliance"].items():
            for measure, v in c.items():
                yield "compliance", j["group"], kind, measure, v
        for e in j["escalations"]:
            yield "escalations", j["group"], f"{e['to']}/{e['trigger']}", "count", e["count"]
        yield "reviews", j["group"], "", "outstanding", j["reviews_outstanding"]
        yield "follow_ups", j["group"], "", "open", j["follow_ups"]["open"]
        yield "follow_ups", j["group"], "", "overdue", j["follow_ups"]["overdue"]


def report_csv(r: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(CSV_HEADER)
    for row in report_csv_rows(r):
        writer.writerow([spreadsheet_safe("" if v is None else v) for v in row])
    return out.getvalue()


# -- the digest ----------------------------------------------------------------------------

_HEADINGS = {"opened": "Opened", "acknowledged": "Acknowledged", "escalated": "Escalated",
             "breached": "Breached", "resolved": "Resolved", "closed": "Closed",
             "reopened": "Reopened"}


def _line(line: DigestLine, time_only: bool) -> str:
    when = shown(line.at)
    text = (f"- **INC-{line.incident_id}** {md(line.severity)} {md(line.level)} "
            f"{md(one_line(line.title, 80))} · {md(when)}")
    if line.who:
        text += f" · {md(line.who)}"
    if line.detail:
        text += f" · {md(one_line(line.detail, 160))}"
    return text


def digest_markdown(d: Digest) -> str:
    """The digest as Markdown that pastes into a chat or a handoff document."""
    out = [f"## Shift digest: {md(shown(d.since))} to {md(shown(d.until))}", ""]
    for key, heading in _HEADINGS.items():
        lines = d.sections.get(key, [])
        if key == "reopened" and not lines:
            continue
        out.append(f"**{heading} ({len(lines)})**")
        out += [_line(line, True) for line in lines] or ["- none"]
        out.append("")
    out.append(f"**Still open, worst first ({d.still_open_total})**")
    for o in d.still_open:
        who = f" · {md(o.assignee)}" if o.assignee else " · unassigned"
        out.append(f"- **INC-{o.incident_id}** {o.risk.upper()} {md(o.severity)} "
                   f"{md(o.level)} {o.state} {md(one_line(o.title, 80))}{who}")
    if not d.still_open:
        out.append("- none")
    elif d.still_open_total > len(d.still_open):
        out.append(f"- … and {d.still_open_total - len(d.still_open)} more (sladeck list)")
    out += ["", f"**Follow-ups due ({len(d.follow_ups_due)})**"]
    for fid, incident_id, kind, description, owner, due in d.follow_ups_due:
        out.append(f"- #{fid} INC-{incident_id} {md(kind)}: {md(one_line(description, 100))} "
                   f"· {md(owner)} · due {md(due)}")
    if not d.follow_ups_due:
        out.append("- none")
    return "\n".join(out) + "\n"
