"""One incident: clocks, contacts, checklists, handoffs, timeline, review."""

from __future__ import annotations

from datetime import datetime

import humanize
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Label, OptionList, Static
from textual.widgets.option_list import Option

from sladeck.domain.clocks import KIND_TITLE, assess, format_countdown
from sladeck.domain.model import IncidentDetail, zone_label
from sladeck.domain.timeline import describe
from sladeck.policy import Policy
from sladeck.procedure import incident_checklists
from sladeck.report import HISTORY_HEADINGS, history_rows
from sladeck.text import visible
from sladeck.tui.forms import contacts_text, outside_help_text, tier_text
from sladeck.tui.keys import INCIDENT_BINDINGS
from sladeck.tui.messages import ActionRequested, StoreChanged
from sladeck.tui.requests import TickRequest

CHECKLIST_PREFIX = {"internal": "Internal ", "external": ""}
STATUS_WORD = {"running": "running", "met": "✔ met", "late": "◆ late", "due": "▲ DUE",
               "breached": "✖ BREACHED"}
STATUS_STYLE = {"breached": "bold red", "due": "bold yellow", "late": "yellow", "met": "green"}


def local(at: datetime) -> str:
    """`Sun 02:30:00 CET +01:00`: the weekday, and a zone that cannot mislead."""
    shown = at.astimezone()
    return shown.strftime("%a %H:%M:%S ") + zone_label(shown)


def clocks_table(detail: IncidentDetail, policy: Policy, now: datetime) -> Table:
    a = assess(detail.incident, policy, now, detail.clock_history or None)
    table = Table(box=None, pad_edge=False, expand=True, show_edge=False)
    # Only the relative-time column wraps, so due times and statuses stay whole at 80 columns.
    table.add_column("Clock", no_wrap=True)
    table.add_column("Due", no_wrap=True)
    table.add_column("", ratio=1)
    table.add_column("Status", no_wrap=True, min_width=10)
    for c in a.clocks:
        when = c.stopped_at or now
        rel = "stopped" if c.stopped else (
            f"in {humanize.naturaldelta(c.due_at - now)}" if c.due_at > now
            else f"{humanize.naturaldelta(now - c.due_at)} ago")
        countdown = "" if c.stopped else format_countdown(c.due_at - when)
        style = STATUS_STYLE.get(c.status, "")
        target = f" → {visible(c.target_level)}" if c.target_level else ""
        table.add_row(KIND_TITLE[c.kind] + target, local(c.due_at), f"{countdown} {rel}",
                      Text(STATUS_WORD[c.status], style=style))
    return table


def history_table(detail: IncidentDetail, policy: Policy, now: datetime) -> Table:
    """Every cycle of every clock (SPEC §3), as `show` and the export list them."""
    table = Table(box=None, pad_edge=False, show_edge=False)
    for heading in HISTORY_HEADINGS:
        table.add_column(heading, no_wrap=True)
    for row in history_rows(detail.clock_history, now, policy, detail.incident.severity):
        *cells, outcome, late = row
        table.add_row(*(visible(c) for c in cells),
                      Text(outcome, style=STATUS_STYLE.get(outcome, "")), late)
    return table


def header_text(detail: IncidentDetail, policy: Policy, now: datetime) -> Text:
    i = detail.incident
    a = assess(i, policy, now, detail.clock_history or None)
    sev, tier = policy.severities[i.severity], policy.tiers[i.level]
    text = Text()
    text.append(f"{i.ref} ", style="bold")
    text.append(visible(i.title), style="bold")
    # Policy text is shown like user text: an old stored policy may hold anything.
    text.append(f"\n{visible(i.severity)} {visible(sev.name)} · {visible(i.level)} "
                f"{visible(tier.name)} · {i.state} · risk {a.risk.upper()}")
    text.append(f"\nService {visible(i.service) or '-'} · assignee {visible(i.assignee) or '-'}"
                f" · ref {visible(i.external_ref) or '-'} · repeats {i.repeats}")
    text.append(f"\nOpened {local(i.opened_at)} by {visible(i.opened_by)}")
    if i.source_cleared_at is not None:  # the alert ended at its source; people resolve
        text.append(f"\nSource cleared {local(i.source_cleared_at)}: the alert has ended; "
                    "resolve the incident when it is", style="bold")
    if i.description:
        text.append("\n\n" + visible(i.description, multiline=True))
    return text


def timeline_text(detail: IncidentDetail) -> Text:
    text = Text()
    for e in detail.events:
        text.append(f"{local(e.at)}  ", style="dim")
        text.append(visible(e.actor.display), style="bold")
        text.append(" " + visible(describe(e.kind, e.payload)))
        body = e.payload.get("text") or e.payload.get("summary") or e.payload.get("reason")
        if body:
            text.append(": " + visible(str(body), multiline=True))
        text.append("\n")
    return text


def handoffs_renderable(detail: IncidentDetail, policy: Policy) -> Group | Text:
    if not detail.handoffs:
        return Text("No handoffs yet.", style="dim")
    parts: list[Text] = []
    for h in detail.handoffs:
        target = policy.escalation.get(h.to_level)
        labels = {f.key: f.label for f in target.handoff} if target else {}
        triggers = {t.key: t.label for t in target.triggers} if target else {}
        t = Text()
        t.append(f"{visible(h.from_level)} → {visible(h.to_level)}  {local(h.at)} by "
                 f"{visible(h.actor)}\n",
                 style="bold")
        t.append(f"Trigger: {visible(triggers.get(h.trigger, h.trigger))}")
        if h.reason:
            t.append(f" ({visible(h.reason)})")
        for key, value in h.fields.items():
            t.append(f"\n{visible(labels.get(key, key))}: ", style="bold")
            t.append(visible(value, multiline=True))
        parts.append(t)
    return Group(*parts)


class Checklist(OptionList):
    """The incident's checklists: enter or space ticks (or unticks) the highlighted item."""

    BINDINGS = [Binding("space", "select", "Tick", show=False, id="detail.tick")]


class DetailScreen(Screen[None]):
    """Everything about one incident; the action keys act on it."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="detail.back"),
                *INCIDENT_BINDINGS]

    def __init__(self, detail: IncidentDetail, policy: Policy) -> None:
        super().__init__()
        self.detail = detail
        self.policy = policy

    @property
    def incident(self):
        return self.detail.incident

    def compose(self) -> ComposeResult:
        yield Static(id="detail-header")
        with VerticalScroll(id="detail-body"):
            yield Label("SLA clocks", classes="section")
            yield Static(id="clocks")
            yield Label("Contacts", classes="section")
            yield Static(id="contacts")
            yield Label("Checklists (↑↓ choose, enter or space ticks; tab: the page)",
                        classes="section")
            yield Checklist(id="checklists")
            yield Label("Level", classes="section")
            yield Static(id="tier")
            yield Label("Handoffs", classes="section")
            yield Static(id="handoffs")
            yield Label("Clock history (times in your zone)", classes="section")
            yield Static(id="history")
            yield Label("Timeline", classes="section")
            yield Static(id="timeline")
            yield Label("Review and follow-ups", classes="section")
            yield Static(id="review")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.show(self.detail)
        # The checklist has the keys from the start: enter ticks at once. The page stays
        # at its top (the clocks); tab gives the arrows to the page to scroll it.
        self.query_one("#checklists", Checklist).focus(scroll_visible=False)

    def show(self, detail: IncidentDetail) -> None:
        """Render a (possibly newer) copy of the incident, keeping the scroll position."""
        self.detail = detail
        now = self.app.clock.now()  # type: ignore[attr-defined]
        self.query_one("#detail-header", Static).update(header_text(detail, self.policy, now))
        self.query_one("#tier", Static).update(
            tier_text(self.policy, detail.incident.level, full=False))
        contacts = contacts_text(self.policy, detail.incident.level, detail.incident.severity,
                                 now)
        contacts.append("\n")
        self.query_one("#contacts", Static).update(contacts + outside_help_text(self.policy, compact=True))
        self.query_one("#handoffs", Static).update(handoffs_renderable(detail, self.policy))
        self.query_one("#timeline", Static).update(timeline_text(detail))
        self.query_one("#review", Static).update(self._review_text())
        self._fill_checklists()
        self.tick(now)

    def tick(self, now: datetime) -> None:
        self.query_one("#clocks", Static).update(clocks_table(self.detail, self.policy, now))
        self.query_one("#history", Static).update(history_table(self.detail, self.policy, now))

    def _review_text(self) -> Text:
        d = self.detail
        text = Text()
        if d.review:
            for f in self.policy.review_fields:
                text.append(f"{visible(f.label)}: ", style="bold")
                text.append(visible(d.review.fields.get(f.key, ""), multiline=True) + "\n")
        elif self.policy.needs_review(d.incident.severity):
            text.append("A review is required before this incident closes (key v).\n")
        else:
            text.append("No review required for this severity.\n", style="dim")
        if d.earlier_review and d.reopened_at:
            text.append(f"Earlier cycle: a review filed {local(d.earlier_review.at)} by "
                        f"{visible(d.earlier_review.actor)}, before the reopen at "
                        f"{local(d.reopened_at)}; this cycle needs its own.\n", style="dim")
        for f in d.follow_ups:
            done = f"done {local(f.done_at)}" if f.done_at else "open"
            text.append(f"#{f.id} {visible(f.kind)}: {visible(f.description)} — "
                        f"{visible(f.owner)} (due {visible(f.due) or '-'}, {done})\n")
        return text

    def _fill_checklists(self) -> None:
        lists = self.query_one("#checklists", OptionList)
        highlighted = lists.highlighted
        lists.clear_options()
        options = []
        level = self.detail.incident.level
        # Every level the incident has been at: ticks made at L1 still show after it moved on.
        for _title, name, entries in incident_checklists(self.detail, self.policy):
            kind, _, which = name.partition(".")
            earlier = " (earlier level)" if kind == "internal" and which != level else ""
            prefix = "" if name == "triage" else CHECKLIST_PREFIX.get(kind, "") \
                + visible(which.capitalize()) + earlier + ": "
            for item, tick in entries:
                mark = "[x]" if tick is not None else "[ ]"
                options.append(Option(Text(f"{mark} {prefix}{visible(item.label)}"),
                                      id=f"{name}|{item.key}|{'0' if mark == '[x]' else '1'}"))
        lists.add_options(options)
        if options:  # something is always highlighted, so enter ticks straight away
            lists.highlighted = self._filled_at = highlighted if highlighted is not None \
                and highlighted < len(options) else 0

    @on(OptionList.OptionHighlighted, "#checklists")
    def _follow(self, event: OptionList.OptionHighlighted) -> None:
        """Moving through the checklist brings it into view on the page."""
        if event.option_list.has_focus and event.option_index != self._filled_at:
            self._filled_at = event.option_index
            event.option_list.scroll_visible(animate=False)

    _filled_at: int | None = None  # the highlight a refill put back: no need to scroll

    @on(OptionList.OptionSelected, "#checklists")
    def _toggled(self, event: OptionList.OptionSelected) -> None:
        name, item, done = str(event.option.id).split("|")
        self.post_message(ActionRequested(TickRequest(self.incident.id, name, item, done == "1")))

    def on_store_changed(self, event: StoreChanged) -> None:
        """Someone changed the incident shown: show it as it is now."""
        detail = event.detail(self.incident.id)
        if detail is not None:
            self.show(detail)
