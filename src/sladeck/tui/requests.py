"""What a form (or a key) asks the app to do: one typed request per action.

A form builds one from its fields and posts it (`messages.ActionRequested`); the app
runs it on its own connection in a worker and answers the form. A request is plain
data: `run` calls the one domain action, which alone decides what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sladeck.domain import actions
from sladeck.domain.actions import Desk, Outcome


@dataclass(frozen=True)
class AcknowledgeRequest:
    incident_id: int
    expected_version: int | None = None

    def run(self, desk: Desk) -> Outcome:
        return actions.acknowledge(desk, self.incident_id,
                                   expected_version=self.expected_version)


@dataclass(frozen=True)
class EscalateRequest:
    incident_id: int
    to: str
    trigger: str
    fields: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    expected_version: int | None = None
    assignee: str = ""  # the new owner; blank: unassigned

    def run(self, desk: Desk) -> Outcome:
        return actions.escalate(desk, self.incident_id, to=self.to, trigger=self.trigger,
                                fields=self.fields, reason=self.reason,
                                expected_version=self.expected_version,
                                assignee=self.assignee)


@dataclass(frozen=True)
class ResolveRequest:
    incident_id: int
    summary: str
    checks: list[str] = field(default_factory=list)
    expected_version: int | None = None

    def run(self, desk: Desk) -> Outcome:
        return actions.resolve(desk, self.incident_id, summary=self.summary, checks=self.checks,
                               expected_version=self.expected_version)


@dataclass(frozen=True)
class ReviewRequest:
    incident_id: int
    fields: dict[str, str]
    expected_version: int | None = None

    def run(self, desk: Desk) -> Outcome:
        return actions.file_review(desk, self.incident_id, self.fields,
                                   expected_version=self.expected_version)


@dataclass(frozen=True)
class NoteRequest:
    incident_id: int
    text: str

    def run(self, desk: Desk) -> Outcome:
        return actions.add_note(desk, self.incident_id, self.text)


@dataclass(frozen=True)
class NewIncidentRequest:
    title: str
    severity: str
    service: str = ""
    description: str = ""

    def run(self, desk: Desk) -> Outcome:
        return actions.open_incident(desk, title=self.title, severity=self.severity,
                                     service=self.service, description=self.description)


@dataclass(frozen=True)
class SeverityRequest:
    incident_id: int
    severity: str
    reason: str
    expected_version: int | None = None

    def run(self, desk: Desk) -> Outcome:
        return actions.change_severity(desk, self.incident_id, self.severity,
                                       reason=self.reason,
                                       expected_version=self.expected_version)


@dataclass(frozen=True)
class AssignRequest:
    incident_id: int
    assignee: str
    expected_version: int | None = None

    def run(self, desk: Desk) -> Outcome:
        return actions.assign(desk, self.incident_id, self.assignee,
                              expected_version=self.expected_version)


@dataclass(frozen=True)
class TickRequest:
    incident_id: int
    checklist: str
    item: str
    done: bool

    def run(self, desk: Desk) -> Outcome:
        return actions.tick(desk, self.incident_id, self.checklist, self.item, done=self.done)


@dataclass(frozen=True)
class ReopenRequest:
    incident_id: int
    reason: str
    expected_version: int | None = None

    def run(self, desk: Desk) -> Outcome:
        return actions.reopen(desk, self.incident_id, reason=self.reason,
                              expected_version=self.expected_version)


@dataclass(frozen=True)
class FollowUpRequest:
    incident_id: int
    kind: str
    description: str
    owner: str
    due: str | None = None

    def run(self, desk: Desk) -> Outcome:
        return actions.add_follow_up(desk, self.incident_id, kind=self.kind,
                                     description=self.description, owner=self.owner,
                                     due=self.due)


@dataclass(frozen=True)
class FollowUpDoneRequest:
    follow_up_id: int

    def run(self, desk: Desk) -> Outcome:
        return actions.complete_follow_up(desk, self.follow_up_id)


Request = (AcknowledgeRequest | EscalateRequest | ResolveRequest | ReviewRequest | NoteRequest
           | NewIncidentRequest | SeverityRequest | AssignRequest | TickRequest | ReopenRequest
           | FollowUpRequest | FollowUpDoneRequest)
