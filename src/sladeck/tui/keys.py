"""Every action of the dashboard in one registry: its key, its label and when it applies.

The registry feeds the key bindings (each with a stable id, so people can rebind
them), the App's `check_action` (and so the footer), the command palette and the
help screen. Whether an incident action applies is decided here, from the incident
(or the queue's row of it) and its policy; the domain action decides again when it
runs, against the stored incident.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from textual.binding import Binding

from sladeck.domain.model import ACKNOWLEDGED, CLOSED, OPEN, RESOLVED
from sladeck.policy import Policy


class Subject(Protocol):
    """What an action looks at: an `Incident`, or the queue's `QueueItem` of it."""

    @property
    def ref(self) -> str: ...
    state: str
    level: str


Rule = Callable[[Subject, Policy], "str | None"]  # why the action does not apply, or None


def _acknowledge(i: Subject, policy: Policy) -> str | None:
    if i.state == OPEN:
        return None
    if i.state == ACKNOWLEDGED:
        return f"{i.ref} is already acknowledged"
    return f"{i.ref} is {i.state}: only an open incident is acknowledged"


def _escalate(i: Subject, policy: Policy) -> str | None:
    if i.state not in (OPEN, ACKNOWLEDGED):
        return f"{i.ref} is {i.state}: only an open or acknowledged incident is escalated"
    if policy.next_level(i.level) is None:
        return f"{i.ref} is already at the top level ({i.level})"
    return None


def _resolve(i: Subject, policy: Policy) -> str | None:
    if i.state in (OPEN, ACKNOWLEDGED):
        return None
    if i.state == RESOLVED:
        return f"{i.ref} is already resolved"
    return f"{i.ref} is {i.state}: only an open or acknowledged incident is resolved"


def _review(i: Subject, policy: Policy) -> str | None:
    if i.state == RESOLVED:
        return None
    return f"{i.ref} is {i.state}: a review is filed once the incident is resolved"


def _finished(i: Subject, policy: Policy) -> str | None:
    if i.state in (RESOLVED, CLOSED):
        return None
    return f"{i.ref} is {i.state}: only a resolved or closed incident is reopened"


def _follow_up(i: Subject, policy: Policy) -> str | None:
    if i.state in (RESOLVED, CLOSED):
        return None
    return f"{i.ref} is {i.state}: follow-ups are added once the incident is resolved"


def _not_closed(i: Subject, policy: Policy) -> str | None:
    return f"{i.ref} is closed" if i.state == "closed" else None


@dataclass(frozen=True)
class Action:
    """One action: the App's `action_<name>`, bound to `key`.

    `needs_incident`: it acts on the selected row or the incident shown (its key is
    dimmed when there is none, and on a form); `rule` says why it does not apply to
    an incident, or None when it does. `priority`: the app runs it as it takes the key
    from its queue, before handing the keys behind it to the focused widget (a key that
    moves focus to a field, so a burst "/text" types "text" there).
    """

    name: str
    key: str
    label: str
    tooltip: str
    id: str
    show: bool = True
    needs_incident: bool = False
    rule: Rule | None = None
    priority: bool = False

    def is_available(self, incident: Subject, policy: Policy) -> bool:
        return self.rule is None or self.rule(incident, policy) is None

    def why_not(self, incident: Subject, policy: Policy) -> str | None:
        """One line saying why the action does not apply to `incident`; None if it does."""
        return None if self.rule is None else self.rule(incident, policy)

    @property
    def binding(self) -> Binding:
        return Binding(self.key, f"app.{self.name}", self.label, show=self.show, id=self.id,
                       tooltip=self.tooltip, priority=self.priority)


# The incident actions: on the queue they act on the selected row, on the detail
# screen on the incident shown.
INCIDENT_ACTIONS = (
    Action("acknowledge", "a", "Ack", "Acknowledge at the current level (stops the response "
           "clock)", "incident.acknowledge", needs_incident=True, rule=_acknowledge),
    Action("escalate", "e", "Escalate", "Escalate with the target level's handoff",
           "incident.escalate", needs_incident=True, rule=_escalate),
    Action("resolve", "r", "Resolve", "Resolve with a summary and the resolution checklist",
           "incident.resolve", needs_incident=True, rule=_resolve),
    Action("comment", "c", "Note", "Add a note", "incident.comment", needs_incident=True),
    Action("severity", "s", "Sev", "Change severity (every clock follows)", "incident.severity",
           show=False, needs_incident=True, rule=_not_closed),
    Action("assign", "i", "Assign", "Assign to someone", "incident.assign", show=False,
           needs_incident=True, rule=_not_closed),
    Action("review", "v", "Review", "File the post-incident review", "incident.review",
           show=False, needs_incident=True, rule=_review),
    Action("new", "n", "New", "Open a new incident", "incident.new"),
    Action("reopen", "o", "Reopen", "Reopen a resolved or closed incident, with a reason",
           "incident.reopen", show=False, needs_incident=True, rule=_finished),
    Action("follow_up", "u", "Follow-up", "Add a follow-up action to a resolved incident",
           "incident.follow_up", show=False, needs_incident=True, rule=_follow_up),
)

QUEUE_ACTIONS = (
    Action("details", "enter", "Details", "Show the selected incident", "queue.details",
           needs_incident=True),
    Action("search", "slash", "Filter", "Filter by text", "queue.search", priority=True),
    Action("filter", "f", "Filters", "Filter by severity, level, state, risk", "queue.filter",
           show=False),
    Action("mine", "m", "Mine", "Only incidents assigned to me", "queue.mine", show=False),
    Action("follow_ups", "F", "Follow-ups", "Follow-ups across incidents: open, overdue, mine",
           "queue.follow_ups", show=False),
    Action("finished", "C", "Closed", "Resolved and closed incidents, loaded on demand; "
           "reopen one from there", "queue.finished", show=False),
)

# Screens of their own, opened from the queue (tui/reports.py, loaded when opened).
VIEW_ACTIONS = (
    Action("reports", "R", "Reports", "Reports: time to acknowledge and resolve, SLA "
           "compliance, escalations, reviews and follow-ups", "view.reports", show=False),
    Action("digest", "D", "Digest", "The shift digest: what happened since the shift began",
           "view.digest", show=False),
)

ACTIONS = {a.name: a for a in (*INCIDENT_ACTIONS, *QUEUE_ACTIONS, *VIEW_ACTIONS)}

INCIDENT_BINDINGS = [a.binding for a in INCIDENT_ACTIONS]
QUEUE_BINDINGS = [a.binding for a in QUEUE_ACTIONS]
VIEW_BINDINGS = [a.binding for a in VIEW_ACTIONS]
