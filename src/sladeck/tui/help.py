"""`?`: every key the dashboard knows, from the registry the footer and palette use."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from sladeck.policy import Policy, format_duration
from sladeck.text import visible
from sladeck.tui.forms import FOCUS_BINDINGS, ActionForm, FilterForm
from sladeck.tui.keys import INCIDENT_ACTIONS, QUEUE_ACTIONS, VIEW_ACTIONS
from sladeck.tui.queue import QueueView

APP_KEYS = [
    ("q", "Quit"), ("?", "This help"), ("ctrl+p", "Command palette: every action by name"),
    ("escape", "Back from details / clear the filter / close a form"),
]


def _key(key: str) -> str:
    return key.replace("question_mark", "?").replace("slash", "/")


def severity_table(policy: Policy) -> Table:
    """Severity, name, response (at the first level) and resolution target / maximum."""
    first = policy.levels[0]
    table = Table(box=None, pad_edge=False, expand=True, header_style="bold")
    table.add_column("Key", no_wrap=True)
    table.add_column("Name", ratio=1)
    table.add_column(f"Response ({visible(first)})", no_wrap=True)
    table.add_column("Resolution target / max", no_wrap=True)
    for key, s in policy.severities.items():
        response = policy.response_time(key, first)
        table.add_row(Text(visible(key)), Text(visible(s.name)),
                      Text(format_duration(response) if response else "immediately"),
                      Text(f"{format_duration(s.resolution_target)} / "
                           f"{format_duration(s.resolution_maximum)}"))
    return table


def help_table(policy: Policy | None = None) -> Group:
    """One heading and one two-column table per section (headings never cut short)."""
    sections = [
        ("Incident (queue row or detail screen)", [(_key(a.key), a.tooltip or a.label)
                                                   for a in INCIDENT_ACTIONS]),
        ("Queue", [(_key(a.key), a.tooltip or a.label) for a in QUEUE_ACTIONS]
         + [(b.key.replace(",", " / "), b.description) for b in QueueView.BINDINGS
            if isinstance(b, Binding)]),
        ("Views (from the queue)", [(_key(a.key), a.tooltip or a.label)
                                    for a in VIEW_ACTIONS]
         + [("", "Reports: t today · w 7 days · m 30 days · g group by; digest: y copies")]),
        ("Details", [("enter / space", "Tick or untick the highlighted checklist item"),
                     ("tab", "Between the checklist and the page (to scroll it)")]),
        ("Forms", [(b.key, b.tooltip or b.description) for b in ActionForm.BINDINGS
                   if isinstance(b, Binding) and b not in FOCUS_BINDINGS]
         + [("tab / shift+tab", "Next / previous field"), ("space", "Tick a checkbox"),
            ("", "esc keeps what you typed: the form brings it back when next opened")]),
        ("Filters", [(b.key, b.description) for b in FilterForm.BINDINGS
                     if isinstance(b, Binding) and b not in FOCUS_BINDINGS]),
        ("Everywhere", APP_KEYS),
    ]
    parts: list[Text | Table] = []
    if policy is not None:
        about = f"{policy.name}\nversion {policy.version} · owner {policy.owner}"
        if policy.next_review:
            about += f" · next review {policy.next_review}"
        parts += [Text(visible(about, multiline=True)),
                  Text("\nSeverities", style="bold underline"),
                  severity_table(policy)]
    for title, rows in sections:
        parts.append(Text("\n" + title, style="bold underline"))
        table = Table(box=None, show_header=False, pad_edge=False, expand=True)
        table.add_column("key", style="bold", no_wrap=True, width=16)
        table.add_column("what", ratio=1)
        for key, what in rows:
            table.add_row(key, what)
        parts.append(table)
    return Group(*parts)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close")]

    def __init__(self, policy: Policy | None = None) -> None:
        super().__init__()
        self.policy = policy

    def compose(self) -> ComposeResult:
        with Vertical(id="form"):
            yield Label("Keys", id="form-title")
            with VerticalScroll(id="form-body"):
                yield Static(help_table(self.policy))
            yield Label("↑/↓ pgup/pgdn scroll · escape closes", classes="field-help")

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
