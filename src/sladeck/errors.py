"""The errors sladeck shows to people: each is one line, never a traceback."""

from __future__ import annotations


class SladeckError(Exception):
    """A request that was understood and refused (exit status 1)."""


class PolicyError(SladeckError):
    """A policy file that cannot be used; carries one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class NotFound(SladeckError):
    """No such incident."""


class Refused(SladeckError):
    """The action is not allowed in the incident's current state."""


class MissingFields(Refused):
    """Required form fields (handoff, checklist, review) are blank."""

    def __init__(self, message: str, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(message)


class Conflict(SladeckError):
    """Someone else changed the incident since the person looked at it."""


class StoreError(SladeckError):
    """The database cannot be used safely (permissions, newer schema, corruption)."""


class FileReplaced(StoreError):
    """The database file was replaced (a backup restored with `mv`) or removed since it
    was opened: acting now would change a file other than the one shown."""


class ReadOnly(StoreError):
    """The database can be read but not written (read-only file, folder or mount)."""


class Damaged(StoreError):
    """SQLite reported the file as malformed: nothing more is written to it."""
