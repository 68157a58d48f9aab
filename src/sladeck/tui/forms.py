"""Modal forms: escalate, resolve, review, note, new incident, severity, assign, filter.

A form collects input, builds a typed request (requests.py) and posts it
(`ActionRequested`); the app runs it in a worker and answers: on success the form
closes, on refusal (`ActionRefused`) it stays open with the message shown and the
refused fields marked — nothing typed is lost.
`esc` keeps what was typed as a draft, per incident and form, for the dashboard's
life: the next time the same form opens on the same incident it comes back.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, Select, Static, TextArea
from textual.widgets.select import InvalidSelectValueError

from sladeck.clock import Clock
from sladeck.domain.actions import OTHER, Outcome, trigger_wait, wait_message
from sladeck.domain.clocks import SEVERITY_LEVEL, assess
from sladeck.domain.model import Incident
from sladeck.domain.queue import DEFAULT_STATES, Filter
from sladeck.policy import Policy, Trigger, format_duration
from sladeck.text import visible
from sladeck.tui.cursors import steady_cursors
from sladeck.tui.messages import ActionRefused, ActionRequested, StoreChanged
from sladeck.tui.requests import (
    AssignRequest,
    EscalateRequest,
    NewIncidentRequest,
    NoteRequest,
    Request,
    ResolveRequest,
    ReviewRequest,
    SeverityRequest,
)

DraftKey = tuple[str, int | None]  # (form, incident id)
Draft = dict[str, Any]  # field name → what it held

_DRAFTS: WeakKeyDictionary[App[Any], dict[DraftKey, Draft]] = WeakKeyDictionary()


def form_drafts(app: App[Any]) -> dict[DraftKey, Draft]:
    """The drafts `esc` kept in this dashboard, in memory for its life."""
    return _DRAFTS.setdefault(app, {})


def contacts_text(policy: Policy, level: str, severity: str, now: datetime) -> Text:
    """Who to contact at `level` now: the level's contacts and management on call."""
    text = Text()
    contact = policy.level_contacts.get(level)
    tier = policy.tiers[level]
    text.append(f"Contact {visible(level)} {visible(tier.name)}: ", style="bold")
    if contact:  # policy text is shown like user text: a stored policy may hold anything
        text.append(visible(f"{contact.primary} · {contact.phone} · {contact.chat} · "
                            f"escalation {contact.escalation}"))
    available = policy.management_available(severity, now)
    text.append("\nManagement available now for " + visible(severity) + ": ", style="bold")
    text.append(visible(", ".join(f"{m.name} ({m.email}, {m.phone})" for m in available))
                or "none")
    return text


def _bold(text: Text, label: str, value: str) -> None:
    """`label: value`, the label bold; `value` is raw policy text, shown made visible."""
    text.append(f"{label}: ", style="bold")
    text.append(visible(value) or "-")


def severity_text(policy: Policy, key: str) -> Text:
    """What a severity means: its definition, business impact and examples."""
    s = policy.severities[key]
    text = Text()
    text.append(visible(f"{key} {s.name}"), style="bold")
    text.append("\n")
    _bold(text, "Definition", s.definition)
    text.append("\n")
    _bold(text, "Business impact", s.business_impact)
    text.append("\n")
    text.append("Examples:", style="bold")
    for example in s.examples:
        text.append("\n- " + visible(example))
    if not s.examples:
        text.append(" none")
    return text


def _list(text: Text, title: str, entries: tuple[str, ...], *, numbered: bool = False) -> None:
    text.append(f"\n{title}:", style="bold")
    for n, entry in enumerate(entries, 1):
        text.append(f"\n{n:>2}. " if numbered else "\n- ")
        text.append(visible(entry))
    if not entries:
        text.append(" none")


def tier_text(policy: Policy, level: str, *, full: bool = True) -> Text:
    """A level's scope and escalation criteria; `full` adds its responsibilities and
    common issues."""
    tier = policy.tiers[level]
    text = Text()
    text.append(visible(f"{level} {tier.name}"), style="bold")
    text.append("\n")
    _bold(text, "Scope", tier.scope)
    if full:
        _list(text, "Responsibilities", tier.responsibilities)
        _list(text, "Common issues", tier.common_issues)
    _list(text, f"Escalate from {visible(level)} when", tier.escalation_criteria)
    return text


def steps_text(policy: Policy, level: str) -> Text:
    """The escalation process to `level`, as the steps the person escalating is doing."""
    text = Text()
    _list(text, f"Escalating to {visible(level)}: your steps",
          policy.escalation[level].process, numbered=True)
    return text[1:]


VENDOR_TRIGGER = "vendor_support"  # policy.yaml: "External vendor support needed"


def outside_help_text(policy: Policy, *, compact: bool = False) -> Text:
    """Vendor contacts and professional services (legal, security, consultants); `compact`
    puts each group on one wrapped line."""
    text = Text()
    for n, (title, named) in enumerate((
            ("Vendors", policy.vendors),
            ("Professional services (legal, security, consultants)",
             policy.professional_services))):
        text.append(("\n" if n else "") + title + ":", style="bold")
        if not named:
            text.append(" none")
        elif compact:
            text.append(" " + visible(" · ".join(f"{c.name} {c.contact}" for c in named)))
        else:
            for c in named:
                text.append("\n- " + visible(f"{c.name}: {c.contact}"))
    return text


# Tab and shift+tab move focus as priority bindings: the app runs them as it takes the
# key from its queue, before it hands the keys behind it to the focused field. Left to
# the field, a burst "abc<tab>def" (a laggy link, a paste without bracketed paste) had
# "def" handed to the old field before the tab moved focus.
FOCUS_BINDINGS = [
    Binding("tab", "app.focus_next", "Next field", show=False, priority=True,
            id="form.next"),
    Binding("shift+tab", "app.focus_previous", "Previous field", show=False, priority=True,
            id="form.previous"),
]


class FormBody(VerticalScroll, can_focus=False):
    """A form's scrolling body: focus goes to its first field, never to the body itself
    (so `c` then typing writes the note), and moving focus scrolls the field into view."""


class ActionForm(ModalScreen[Outcome | None]):
    """The shared frame: title, fields, an inline error, Submit and Cancel."""

    BINDINGS = [
        Binding("ctrl+s", "submit", "Submit", priority=True, id="form.submit",
                tooltip="Run this action"),
        Binding("escape", "cancel", "Cancel", id="form.cancel", tooltip="Close without acting"),
        *FOCUS_BINDINGS,
    ]
    heading = "Form"

    def __init__(self, incident: Incident | None = None, policy: Policy | None = None,
                 now: datetime | None = None) -> None:
        super().__init__()
        self.incident = incident
        self.policy = policy
        self.now = now
        self.expected_version = incident.version if incident else None

    def compose(self) -> ComposeResult:
        with Vertical(id="form"):
            title = self.heading
            if self.incident is not None:
                title += f" · {self.incident.ref} {visible(self.incident.title)}"
            yield Label(Text(title), id="form-title")
            with FormBody(id="form-body"):
                yield from self.fields()
            yield Static("", id="form-error")
            with Horizontal(id="form-buttons"):
                yield Button("Submit (ctrl+s)", id="submit", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def fields(self) -> ComposeResult:
        yield from ()

    def build(self) -> Request | None:
        """The action to ask for, or None after showing why not."""
        raise NotImplementedError

    class SubmitAfterKeys(Message):
        """Posted to the focused field by ctrl+s: it reaches the form after every key
        queued before it, so a burst "text<ctrl+s>" submits the whole text."""

    def action_submit(self) -> None:
        # ctrl+s is a priority binding: the app runs it as it takes the key from its queue,
        # maybe before the focused field has handled the keys in front of it.
        focused = self.focused
        if focused is not None:
            focused.post_message(self.SubmitAfterKeys())
        else:
            self.submit_now()

    @on(SubmitAfterKeys)
    def _submit_after_keys(self, event: SubmitAfterKeys) -> None:
        event.stop()
        self.submit_now()

    def submit_now(self) -> None:
        """Build the request from the fields as they are and ask the app to run it."""
        request = self.build()
        if request is not None:
            self.query_one("#form-error", Static).update("Working…")
            self.post_message(ActionRequested(request, form=self))

    @on(ActionRefused)
    def _refused(self, event: ActionRefused) -> None:
        """The app's answer: refused. Aim at the newer incident if there is one, say why."""
        if event.newer is not None:
            self.incident, self.expected_version = event.newer, event.newer.version
        self.show_refusal(event.message, event.missing)

    def on_store_changed(self, event: StoreChanged) -> None:
        """Someone changed the incident this form acts on: say so before the submit."""
        if self.incident is None:
            return
        newer = event.incident(self.incident.id)
        if newer is not None and newer.version != self.expected_version:
            self.query_one("#form-error", Static).update(Text(
                f"{newer.ref} was just changed by {visible(newer.updated_by)} "
                f"({newer.last_change}); submitting will show what changed."))

    def action_cancel(self) -> None:
        """Close without acting; anything typed stays as a draft for the next opening."""
        values = self.draft_values()
        drafts = form_drafts(self.app)
        if self._has_typing(values):
            drafts[self.draft_key] = values
        else:
            drafts.pop(self.draft_key, None)
        self.dismiss(None)

    def dismiss(self, result: Outcome | None = None) -> Any:
        if result is not None:  # acted: the draft is spent
            form_drafts(self.app).pop(self.draft_key, None)
        return super().dismiss(result)

    @property
    def draft_key(self) -> DraftKey:
        return type(self).__name__, self.incident.id if self.incident else None

    def draft_values(self) -> Draft:
        """What each named field holds now."""
        values: Draft = {}
        for widget in self.query_one("#form-body").query("Input, TextArea, Select, Checkbox"):
            key = widget.name or widget.id
            if not key:
                continue
            if isinstance(widget, Input):
                values[key] = widget.value
            elif isinstance(widget, TextArea):
                values[key] = widget.text
            elif isinstance(widget, Select):
                values[key] = widget.value if isinstance(widget.value, str) else None
            elif isinstance(widget, Checkbox):
                values[key] = widget.value
        return values

    async def restore_draft(self, values: Draft) -> None:
        """Put a draft's values back in the fields that still exist."""
        for widget in self.query_one("#form-body").query("Input, TextArea, Select, Checkbox"):
            key = widget.name or widget.id
            value = values.get(key or "")
            if value is None:
                continue
            if isinstance(widget, Input) and isinstance(value, str):
                widget.value = value
            elif isinstance(widget, TextArea) and isinstance(value, str):
                _load_at_end(widget, value)
            elif isinstance(widget, Select) and isinstance(value, str):
                with contextlib.suppress(InvalidSelectValueError):
                    widget.value = value
            elif isinstance(widget, Checkbox) and isinstance(value, bool):
                widget.value = value

    def _has_typing(self, values: Draft) -> bool:
        """True if something differs from the form as it opened: text, a choice, a tick."""
        return any(value != self._blank.get(key) and (value is True or (
            isinstance(value, str) and bool(value.strip()))) for key, value in values.items())

    @on(Button.Pressed, "#submit")
    def _submit_pressed(self) -> None:
        self.submit_now()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    async def on_mount(self) -> None:
        """(After a subclass's own on_mount has built its fields.) Restore a draft."""
        steady_cursors(self)
        # A form opens at its top (focusing the first field before the layout is known
        # can scroll its label away).
        self.call_after_refresh(self.query_one("#form-body").scroll_home, animate=False)
        self._blank = self.draft_values()
        draft = form_drafts(self.app).get(self.draft_key)
        if draft:
            await self.restore_draft(draft)
            await self.query_one("#form", Vertical).mount(
                Static(Text("✎ Draft restored from before esc (empty the fields to drop it)"),
                       id="form-draft"),
                after="#form-title")

    _blank: Draft = {}

    def show_refusal(self, message: str, missing: list[str] | None = None) -> None:
        """Keep the form open: say why, mark the refused fields (in words too, for NO_COLOR)."""
        self.query_one("#form-error", Static).update(Text(visible(message)))
        for widget in self.query(".field"):
            refused = bool(missing) and widget.name in (missing or [])
            widget.set_class(refused, "missing")
            widget.border_title = "✖ required" if refused else None
        if missing:
            first = [w for w in self.query(".field") if w.name in missing]
            if first:
                first[0].focus()

    def labelled(self, label: str, help_text: str, widget: Widget) -> ComposeResult:
        """A field under its label and help; `widget.name` is the action's field key."""
        widget.add_class("field")
        yield Label(Text(visible(label), style="bold"), classes="field-label")
        if help_text:
            yield Label(Text(visible(help_text)), classes="field-help")
        yield widget


class Tick(Checkbox):
    """A checkbox that reads `[x]` / `[ ]`, so its state shows without colour."""

    @property
    def _button(self) -> Content:
        return Content.assemble((f"[{'x' if self.value else ' '}]",
                                 self.get_visual_style("toggle--button")))


def _load_at_end(area: TextArea, text: str) -> None:
    """Restored text, with the cursor after it: typing goes on where it stopped."""
    area.load_text(text)
    area.move_cursor(area.document.end)


def _area(value: str = "", *, name: str, id: str | None = None) -> TextArea:
    area = TextArea(value, soft_wrap=True, show_line_numbers=False, id=id, name=name)
    area.styles.height = 3
    return area


class EscalateForm(ActionForm):
    heading = "Escalate"

    def __init__(self, incident: Incident, policy: Policy, now: datetime,
                 typed: dict[str, str] | None = None, *, clock: Clock | None = None) -> None:
        super().__init__(incident, policy, now)
        self.clock = clock  # timed triggers are checked at the instant one is chosen
        self.typed: dict[str, str] = dict(typed or {})
        above = policy.levels[policy.level_rank(incident.level) + 1:]
        self.targets = above
        self.target = above[0] if above else incident.level
        a = assess(incident, policy, now)
        for clock in a.clocks:  # a due severity escalation offers its level directly (P0 → L4)
            if clock.kind == SEVERITY_LEVEL and clock.status == "due" and clock.target_level \
                    and clock.target_level in above:
                self.target = clock.target_level

    def fields(self) -> ComposeResult:
        assert self.policy is not None
        yield Label("Target level", classes="field-label")
        yield Select([(Text(visible(f"{lv} {self.policy.tiers[lv].name}")), lv)
                      for lv in self.targets],
                     value=self.target, allow_blank=False, id="target", compact=True)
        yield Vertical(id="level-fields")

    async def on_mount(self) -> None:
        await self._show_level(self.target)

    def draft_values(self) -> Draft:
        """The target, and the trigger and text given for every level shown."""
        self._remember_typed()
        return {**self.typed, "__target": self.target}

    async def restore_draft(self, values: Draft) -> None:
        target = values.get("__target")
        if isinstance(target, str) and target in self.targets:
            self.target = target
            self.query_one("#target", Select).value = target
        self.typed.update({k: v for k, v in values.items()
                           if isinstance(v, str) and k != "__target"})
        await self._show_level(self.target, remember=False)

    def _remember_typed(self) -> None:
        for area in self.query(".handoff"):
            if isinstance(area, TextArea) and area.name:
                self.typed[area.name] = area.text
        if self.query("#reason"):
            self.typed["__reason"] = self.query_one("#reason", Input).value
        if self.query("#owner"):
            self.typed["__owner"] = self.query_one("#owner", Input).value
        if self.query("#trigger") and self._shown_level:
            trigger = self.query_one("#trigger", Select).value
            if isinstance(trigger, str):  # each level has its own triggers
                self.typed[f"__trigger.{self._shown_level}"] = trigger

    _shown_level = ""  # the level whose fields are shown

    async def _show_level(self, level: str, *, remember: bool = True) -> None:
        """The fields of `level`, holding what was typed in them before."""
        assert self.policy is not None and self.incident is not None and self.now is not None
        if remember:
            self._remember_typed()
        box = self.query_one("#level-fields", Vertical)
        await box.remove_children()
        target = self.policy.escalation[level]
        chosen = self.typed.get(f"__trigger.{level}")
        vendors = Static(outside_help_text(self.policy), id="outside-help",
                         classes="contacts")
        vendors.display = chosen == VENDOR_TRIGGER
        widgets: list[Widget] = [
            Static(steps_text(self.policy, level), id="steps", classes="procedure"),
            Static(contacts_text(self.policy, level, self.incident.severity, self.now),
                   classes="contacts"),
            vendors,
            Label(Text("Trigger", style="bold"), classes="field-label"),
        ]
        choices = ([(self._trigger_label(level, t), t.key) for t in target.triggers]
                   + [("Other (give a reason)", OTHER)])
        trigger = Select(choices, prompt="Choose why", id="trigger", name="trigger",
                         value=chosen if chosen in {key for _, key in choices} else Select.NULL,
                         classes="field", compact=True)
        widgets += [trigger, Label("Reason (needed for Other)", classes="field-help"),
                    Input(self.typed.get("__reason", ""), id="reason", name="reason",
                          classes="field", compact=True)]
        for item in target.handoff:
            area = _area(self.typed.get(item.key, ""), name=item.key)
            area.add_class("handoff")
            widgets += list(self.labelled(item.label, item.help, area))
        owner = Input(self.typed.get("__owner", ""), id="owner", name="assignee",
                      placeholder="blank: unassigned", compact=True)
        widgets += list(self.labelled(
            f"New owner at {level}", "Ownership moves to the new level: the assignee is "
            "cleared unless you name who takes it", owner))
        # The level's reference text after the fields: the fields stay near the top.
        widgets.append(Static(tier_text(self.policy, level), id="tier-info",
                              classes="procedure"))
        await box.mount_all(widgets)
        self._shown_level = level
        for area in self.query(".handoff"):
            if isinstance(area, TextArea):
                area.move_cursor(area.document.end)  # typing goes on after restored text
        steady_cursors(self)

    @on(Select.Changed, "#target")
    async def _target_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and event.value != self.target:
            self.target = event.value
            await self._show_level(self.target)

    def _now(self) -> datetime:
        assert self.now is not None
        return self.clock.now() if self.clock is not None else self.now

    def _trigger_label(self, level: str, trigger: Trigger) -> Text:
        """A trigger's label, with the time it names and, while it must wait, when it can
        be chosen (a time of day in the viewer's zone: it does not go stale while the form
        is open; choosing it early says how long is left)."""
        assert self.policy is not None and self.incident is not None
        label = Text(visible(trigger.label))
        if trigger.after is not None:
            now = self._now()
            left = trigger_wait(self.policy, level, trigger.key, self.incident, now)
            when = ""
            if left is not None:
                local = (now + timedelta(seconds=-(-left // timedelta(seconds=1)))).astimezone()
                when = f"; from {local:%H:%M:%S}" + ("" if left < timedelta(hours=12)
                                                     else f" on {local:%a %d %b}")
            label.append(f" (after {format_duration(trigger.after)} at "
                         f"{visible(self.incident.level)}{when})")
        return label

    def _trigger_refusal(self, trigger: object) -> str | None:
        """The domain's message for a timed trigger chosen too early, or None."""
        assert self.policy is not None and self.incident is not None
        if not isinstance(trigger, str):
            return None
        left = trigger_wait(self.policy, self.target, trigger, self.incident, self._now())
        return wait_message(trigger, left) if left is not None else None

    @on(Select.Changed, "#trigger")
    def _trigger_changed(self, event: Select.Changed) -> None:
        """External vendor support needed: show whom to call outside the company. A timed
        trigger chosen before its time is refused on the spot, as the action would."""
        found = self.query("#outside-help")
        if found:
            found.first().display = event.value == VENDOR_TRIGGER
        refusal = self._trigger_refusal(event.value)
        if refusal is not None:
            self.show_refusal(refusal, ["trigger"])
        elif self._told_wait:
            self.show_refusal("")
        self._told_wait = refusal is not None

    _told_wait = False  # the form's error line says a trigger must wait

    def build(self) -> Request | None:
        assert self.incident is not None
        self._remember_typed()
        trigger = self.query_one("#trigger", Select).value
        trigger_key = trigger if isinstance(trigger, str) else ""
        fields = {a.name: a.text for a in self.query(".handoff")
                  if isinstance(a, TextArea) and a.name}
        reason = self.query_one("#reason", Input).value
        refusal = self._trigger_refusal(trigger_key)
        if refusal is not None:
            self.show_refusal(refusal, ["trigger"])
            return None
        return EscalateRequest(self.incident.id, to=self.target, trigger=trigger_key,
                               fields=fields, reason=reason,
                               expected_version=self.expected_version,
                               assignee=self.query_one("#owner", Input).value)


class ResolveForm(ActionForm):
    heading = "Resolve"

    def fields(self) -> ComposeResult:
        assert self.policy is not None
        yield from self.labelled("Resolution summary", "What fixed it",
                                 _area(name="summary", id="summary"))
        yield Label(Text("Resolution checklist", style="bold"), classes="field-label")
        for item in self.policy.checklists.get("resolution", ()):
            yield Tick(Text(visible(item.label)), name=item.key, classes="field check")

    def build(self) -> Request | None:
        assert self.incident is not None
        summary = self.query_one("#summary", TextArea).text
        checks = [c.name for c in self.query(".check") if isinstance(c, Checkbox) and c.value
                  and c.name]
        return ResolveRequest(self.incident.id, summary=summary, checks=checks,
                              expected_version=self.expected_version)


def knowledge_text(policy: Policy) -> Text:
    """The knowledge-sharing checklist, part of the post-incident review."""
    text = Text()
    text.append("Knowledge sharing (part of this review; say in the fields what was done):",
                style="bold")
    items = policy.checklists.get("knowledge_sharing", ())
    for item in items:
        text.append("\n- " + visible(item.label))
        if item.help:
            text.append(" (" + visible(item.help) + ")")
    if not items:
        text.append(" none in this policy")
    return text


class ReviewForm(ActionForm):
    heading = "Post-incident review"

    def fields(self) -> ComposeResult:
        assert self.policy is not None
        for item in self.policy.review_fields:
            area = _area(name=item.key)
            area.add_class("review")
            yield from self.labelled(item.label, item.help, area)
        yield Static(knowledge_text(self.policy), id="knowledge", classes="procedure")

    def build(self) -> Request | None:
        assert self.incident is not None
        fields = {a.name: a.text for a in self.query(".review") if isinstance(a, TextArea)
                  and a.name}
        return ReviewRequest(self.incident.id, fields, expected_version=self.expected_version)


class NoteForm(ActionForm):
    heading = "Comment"

    def fields(self) -> ComposeResult:
        yield from self.labelled("Note", "Added to the timeline", _area(name="note", id="note"))

    def build(self) -> Request | None:
        assert self.incident is not None
        return NoteRequest(self.incident.id, self.query_one("#note", TextArea).text)


class NewIncidentForm(ActionForm):
    heading = "New incident"

    def fields(self) -> ComposeResult:
        assert self.policy is not None
        yield from self.labelled("Title", "One line saying what is wrong",
                                 Input(id="title", name="title", compact=True))
        yield from self.labelled(
            "Severity", "",
            Select([(Text(visible(f"{k} {s.name}: {s.definition}")), k) for k, s in
                    self.policy.severities.items()], prompt="Choose a severity", id="severity",
                   name="severity", compact=True))
        yield Static(Text("Choose a severity to see its definition, business impact and "
                          "examples."), id="severity-info", classes="procedure")
        yield from self.labelled("Service", "Optional",
                                 Input(id="service", name="service", compact=True))
        yield from self.labelled("Description", "Optional",
                                 _area(name="description", id="description"))

    @on(Select.Changed, "#severity")
    def _severity_changed(self, event: Select.Changed) -> None:
        """Show what the chosen severity means, as the choice changes."""
        assert self.policy is not None
        if isinstance(event.value, str) and event.value in self.policy.severities:
            self.query_one("#severity-info", Static).update(
                severity_text(self.policy, event.value))

    def build(self) -> Request | None:
        title = self.query_one("#title", Input).value
        severity = self.query_one("#severity", Select).value
        missing = [name for name, blank in (("title", not title.strip()),
                                            ("severity", not isinstance(severity, str))) if blank]
        if missing:
            self.show_refusal("a new incident needs: " + ", ".join(missing), missing)
            return None
        assert isinstance(severity, str)
        service = self.query_one("#service", Input).value
        description = self.query_one("#description", TextArea).text
        return NewIncidentRequest(title=title, severity=severity, service=service,
                                  description=description)


class SeverityForm(ActionForm):
    heading = "Change severity"

    def fields(self) -> ComposeResult:
        assert self.policy is not None and self.incident is not None
        yield from self.labelled(
            "New severity", "Every clock follows the change",
            Select([(Text(visible(f"{k} {s.name}")), k) for k, s in self.policy.severities.items()
                    if k != self.incident.severity], prompt="Choose", id="severity",
                   name="severity", compact=True))
        yield from self.labelled("Reason", "Why the severity changes",
                                 Input(id="reason", name="reason", compact=True))

    def build(self) -> Request | None:
        assert self.incident is not None
        severity = self.query_one("#severity", Select).value
        reason = self.query_one("#reason", Input).value
        missing = [name for name, blank in (("severity", not isinstance(severity, str)),
                                            ("reason", not reason.strip())) if blank]
        if missing:
            self.show_refusal("changing the severity needs: " + ", ".join(missing), missing)
            return None
        assert isinstance(severity, str)
        return SeverityRequest(self.incident.id, severity, reason=reason,
                               expected_version=self.expected_version)


class AssignForm(ActionForm):
    heading = "Assign"

    def __init__(self, incident: Incident, me: str) -> None:
        super().__init__(incident)
        self.me = me

    def fields(self) -> ComposeResult:
        assert self.incident is not None
        current = self.incident.assignee or self.me
        # An Input writes its value to the terminal as it is: prefill only text that
        # is safe to show, else show the escaped name as a placeholder.
        safe = visible(current) == current
        yield from self.labelled("Assignee", "Empty to unassign",
                                 Input(current if safe else "", id="assignee", name="assignee",
                                       placeholder="" if safe else f"now: {visible(current)}",
                                       compact=True))

    def build(self) -> Request | None:
        assert self.incident is not None
        return AssignRequest(self.incident.id, self.query_one("#assignee", Input).value,
                             expected_version=self.expected_version)


class FilterForm(ModalScreen[Filter | None]):
    """Choose which incidents the queue shows."""

    BINDINGS = [
        Binding("ctrl+s", "apply", "Apply", priority=True, id="filter.apply"),
        Binding("escape", "cancel", "Cancel", id="filter.cancel"),
        *FOCUS_BINDINGS,
    ]

    def __init__(self, current: Filter, policy: Policy) -> None:
        super().__init__()
        self.current = current
        self.policy = policy

    def compose(self) -> ComposeResult:
        f = self.current
        with Vertical(id="form"):
            yield Label("Filter the queue", id="form-title")
            with FormBody(id="form-body"):
                yield Label("Text (/)", classes="field-label")
                yield Input(f.text, id="text", compact=True)
                yield Label("Tick what to show; nothing ticked in a column shows all of it.",
                            classes="field-help")
                with Horizontal(id="filter-lists"):
                    groups = (("severities", "Severity", tuple(self.policy.severities)),
                              ("levels", "Level", tuple(self.policy.levels)),
                              ("states", "State", ("open", "acknowledged", "resolved")),
                              ("risks", "Risk", ("breached", "due", "warning", "ok")))
                    for group, title, keys in groups:
                        with Vertical(classes="filter-column"):
                            yield Label(Text(title, style="bold"))
                            chosen = getattr(f, group)
                            for key in keys:
                                yield Tick(Text(visible(key)), key in chosen, name=key, classes=group,
                                           id=f"{group}-{key}", compact=True)
                yield Tick("Only mine (assigned to me)", f.mine, id="mine", compact=True)
            with Horizontal(id="form-buttons"):
                yield Button("Apply (ctrl+s)", id="apply", variant="primary", compact=True)
                yield Button("Reset", id="reset", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        steady_cursors(self)

    def action_apply(self) -> None:
        focused = self.focused  # after the keys queued before ctrl+s (see ActionForm)
        if focused is not None:
            focused.post_message(ActionForm.SubmitAfterKeys())
        else:
            self.apply_now()

    @on(ActionForm.SubmitAfterKeys)
    def _apply_after_keys(self, event: ActionForm.SubmitAfterKeys) -> None:
        event.stop()
        self.apply_now()

    def apply_now(self) -> None:
        def chosen(group: str) -> frozenset[str]:
            return frozenset(t.name for t in self.query(f"Tick.{group}")
                             if isinstance(t, Tick) and t.value and t.name)

        self.dismiss(Filter(self.query_one("#text", Input).value.strip(), chosen("severities"),
                            chosen("levels"), chosen("states"), chosen("risks"),
                            self.query_one("#mine", Checkbox).value))

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "apply":
            self.apply_now()
        elif event.button.id == "reset":
            self.dismiss(Filter(states=DEFAULT_STATES))
        else:
            self.action_cancel()
