"""Every key of the dashboard, with a stable id so people can rebind them."""

from __future__ import annotations

from textual.binding import Binding

# The incident actions: on the queue they act on the selected row, on the detail
# screen on the incident shown. The App implements them and decides what applies.
INCIDENT_BINDINGS = [
    Binding("a", "app.acknowledge", "Ack", id="incident.acknowledge",
            tooltip="Acknowledge at the current level (stops the response clock)"),
    Binding("e", "app.escalate", "Escalate", id="incident.escalate",
            tooltip="Escalate with the target level's handoff"),
    Binding("r", "app.resolve", "Resolve", id="incident.resolve",
            tooltip="Resolve with a summary and the resolution checklist"),
    Binding("c", "app.comment", "Note", id="incident.comment", tooltip="Add a note"),
    Binding("s", "app.severity", "Sev", id="incident.severity", show=False,
            tooltip="Change severity (every clock follows)"),
    Binding("i", "app.assign", "Assign", id="incident.assign", show=False,
            tooltip="Assign to someone"),
    Binding("v", "app.review", "Review", id="incident.review",
            tooltip="File the post-incident review", show=False),
    Binding("n", "app.new", "New", id="incident.new", tooltip="Open a new incident"),
]

QUEUE_BINDINGS = [
    Binding("enter", "app.details", "Details", id="queue.details",
            tooltip="Show the selected incident"),
    Binding("slash", "app.search", "Filter", id="queue.search", tooltip="Filter by text"),
    Binding("f", "app.filter", "Filters", id="queue.filter", show=False,
            tooltip="Filter by severity, level, state, risk"),
    Binding("m", "app.mine", "Mine", id="queue.mine", show=False,
            tooltip="Only incidents assigned to me"),
]
