"""The escalation policy as immutable typed objects, and loading it.

`policy_file` reads and validates the YAML (every problem at once, as
`FILE:LINE: key.path: what is wrong`). A policy text read once is kept, parsed, in
the user's cache folder (`policy_cache`), so the next start needs neither YAML nor
validation: the policy is read at every start of every command.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from sladeck.errors import PolicyError, Refused

MAX_DURATION = timedelta(days=3650)  # beyond this, deadlines would overflow the calendar
DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")  # a handoff field, trigger, checklist item …
# Every key that names something (a severity, a level, a tool, any mapping key): what a
# command line can type and a terminal shows as it is.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$")
MAX_KEY = 48
MAX_POLICY_BYTES = 256 << 10  # 17 times the shipped policy; nothing longer is read
MAX_PROBLEMS = 20  # a broken policy is told this many problems, then how many more
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WORD_UNITS = {"d": "d", "day": "d", "h": "h", "hr": "h", "hour": "h", "m": "m",
              "min": "m", "minute": "m", "s": "s", "sec": "s", "second": "s"}


@dataclass(frozen=True)
class Item:
    """A keyed entry: a handoff field, trigger, checklist item, review field."""

    key: str
    label: str
    help: str = ""


@dataclass(frozen=True)
class Trigger(Item):
    """An escalation trigger; `after` is the time it names ("not resolved within 30
    minutes"): it can be chosen only once the incident has been that long at its
    current level (the tier's own escalation criteria, SPEC §3)."""

    after: timedelta | None = None


@dataclass(frozen=True)
class Severity:
    """A severity (P0-P3): what it means and its SLA targets."""

    key: str
    name: str
    business_impact: str
    definition: str
    examples: tuple[str, ...]
    response: timedelta
    resolution_target: timedelta
    resolution_maximum: timedelta
    escalate_to: str
    escalate_within: timedelta
    review_required: bool
    # An immediate escalation (`within: 0m`) is met when its level is reached within this
    # grace (`escalation.grace`); None: the severity's response time (SPEC §3).
    escalate_grace: timedelta | None = None

    @property
    def immediate(self) -> bool:
        """Whether this severity escalates at once (P0 → L4 `within: 0m`)."""
        return self.escalate_within == timedelta(0)

    @property
    def grace(self) -> timedelta:
        """How long an immediate escalation may take and still be met."""
        return self.response if self.escalate_grace is None else self.escalate_grace


@dataclass(frozen=True)
class Tier:
    """A support level (L1-L4): its scope, response and when it escalates."""

    key: str
    name: str
    scope: str
    response: timedelta
    resolution: timedelta | None
    escalate_after: timedelta | None
    responsibilities: tuple[str, ...]
    common_issues: tuple[str, ...]
    escalation_criteria: tuple[str, ...]


@dataclass(frozen=True)
class EscalationTarget:
    """What escalating *to* a level needs."""

    level: str
    process: tuple[str, ...]
    triggers: tuple[Trigger, ...]
    handoff: tuple[Item, ...]


@dataclass(frozen=True)
class LevelContact:
    """Who a level's on-call is and how to reach them."""

    primary: str
    phone: str
    chat: str
    escalation: str


@dataclass(frozen=True)
class Availability:
    """When a management contact is called, and for which severities."""

    severities: tuple[str, ...]
    when: str  # "always" or "business_hours"


@dataclass(frozen=True)
class ManagementContact:
    """A manager to call, with when they are available."""

    name: str
    email: str
    phone: str
    availability: tuple[Availability, ...]


@dataclass(frozen=True)
class NamedContact:
    """A vendor or professional-services contact."""

    name: str
    contact: str


@dataclass(frozen=True)
class BusinessHours:
    """The hours some contacts are called in, in their own time zone."""

    timezone: str
    days: tuple[int, ...]  # 0 = Monday
    start: time
    end: time

    def contains(self, at: datetime) -> bool:
        from zoneinfo import ZoneInfo  # not before a contact is looked up (0.25 MiB)

        local = at.astimezone(ZoneInfo(self.timezone))
        return local.weekday() in self.days and self.start <= local.time() < self.end


@dataclass(frozen=True)
class Notifications:
    """How notices are told: the bell, an optional command, which severities are
    announced on arrival, and how an unacknowledged incident is paged again (SPEC §6).
    The defaults are what a stored policy kept before these keys existed promises."""

    bell: bool
    command: tuple[str, ...]
    timeout: timedelta
    announce: tuple[str, ...] = ("P0", "P1")
    repage_every: timedelta = timedelta(minutes=15)
    repage_limit: int = 3


@dataclass(frozen=True)
class Intake:
    """How an alert from Alertmanager or Grafana becomes an incident (`intake`)."""

    severity_label: str
    severities: Mapping[str, str]  # the label's value, lower-cased → a severity key
    default_severity: str  # when the label is missing or its value is not listed
    service_label: str
    title: tuple[str, ...]  # annotations tried in order; then the `alertname` label
    description: tuple[str, ...]  # annotations, each one present joined by a blank line
    dedup_labels: tuple[str, ...]  # the dedup key of an alert without a fingerprint

    def severity_of(self, labels: Mapping[str, str]) -> str:
        value = labels.get(self.severity_label)
        found = self.severities.get(value.strip().lower()) if isinstance(value, str) else None
        return found or self.default_severity


@dataclass(frozen=True)
class Policy:
    """The whole escalation procedure, as read from policy.yaml."""

    name: str
    version: str
    owner: str
    warn_at: float
    close_on_resolve: bool
    severities: Mapping[str, Severity]
    tiers: Mapping[str, Tier]
    response_matrix: Mapping[str, Mapping[str, timedelta]]
    escalation: Mapping[str, EscalationTarget]
    checklists: Mapping[str, tuple[Item, ...]]
    internal_communication: Mapping[str, tuple[Item, ...]]
    external_communication: Mapping[str, tuple[Item, ...]]
    review_required_for: tuple[str, ...]
    review_fields: tuple[Item, ...]
    follow_up_kinds: tuple[Item, ...]
    level_contacts: Mapping[str, LevelContact]
    management: tuple[ManagementContact, ...]
    vendors: tuple[NamedContact, ...]
    professional_services: tuple[NamedContact, ...]
    business_hours: BusinessHours
    tools: Mapping[str, Mapping[str, str]]
    notifications: Notifications
    source: str
    digest: str
    next_review: str = ""  # YYYY-MM-DD (validated), or "" when the policy names none
    intake: Intake | None = None  # None: the policy has no `intake` section
    shifts: tuple[time, ...] = (time(0),)  # reporting.shifts: local shift starts, sorted

    @property
    def levels(self) -> tuple[str, ...]:
        return tuple(self.tiers)

    def level_rank(self, level: str) -> int:
        return self.levels.index(level)

    def severity_rank(self, severity: str) -> int:
        return tuple(self.severities).index(severity)

    def next_level(self, level: str) -> str | None:
        rank = self.level_rank(level)
        return self.levels[rank + 1] if rank + 1 < len(self.levels) else None

    def response_time(self, severity: str, level: str) -> timedelta:
        return self.response_matrix[severity][level]

    def severity_key(self, text: str) -> str:
        """The severity `text` names, in any case, as the policy spells it."""
        return _key_in(self.severities, text, "severity")

    def level_key(self, text: str) -> str:
        """The level `text` names, in any case, as the policy spells it."""
        return _key_in(self.tiers, text, "level")

    def needs_review(self, severity: str) -> bool:
        return severity in self.review_required_for

    def next_review_date(self) -> date | None:
        """When the procedure is due for review, if the policy says."""
        return date.fromisoformat(self.next_review) if self.next_review else None

    def review_overdue(self, today: date) -> bool:
        """Whether the policy's next review date has passed on `today`."""
        due = self.next_review_date()
        return due is not None and today > due

    def management_available(self, severity: str, at: datetime) -> list[ManagementContact]:
        """The management contacts whose availability covers this severity at `at`."""
        in_hours = self.business_hours.contains(at)
        return [
            person for person in self.management
            if any(severity in a.severities and (a.when == "always" or in_hours)
                   for a in person.availability)
        ]


def _key_in(keys: Mapping[str, Any], text: str, what: str) -> str:
    """The key of `keys` equal to `text` but for case (a policy never holds two such)."""
    if text in keys:
        return text
    folded = text.strip().lower()
    for key in keys:
        if key.lower() == folded:
            return key
    raise Refused(f"unknown {what} {text!r} (choose {', '.join(keys)})")


def parse_duration(text: str) -> timedelta | None:
    """`5m`, `1h`, `2h30m`, `1d`, `0m` → timedelta; anything else → None."""
    match = DURATION_RE.match(text.strip())
    if not text.strip() or not match:
        return None
    d, h, m, s = (int(g) if g else 0 for g in match.groups())
    try:
        delta = timedelta(days=d, hours=h, minutes=m, seconds=s)
    except OverflowError:
        return None
    return delta if delta <= MAX_DURATION else None


def format_duration(delta: timedelta) -> str:
    """The inverse of parse_duration, for showing policy values."""
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "0m"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)


def default_policy_path() -> Path:
    return Path(str(resources.files("sladeck") / "policy.yaml"))


def load_policy(path: str | os.PathLike[str] | None = None) -> Policy:
    """Read a policy file (the shipped default when `path` is None)."""
    file = Path(path) if path else default_policy_path()
    shown = str(path) if path else "policy.yaml (built in)"
    source = _read(file, shown)
    from sladeck import policy_cache

    policy = policy_cache.cached(source)
    if policy is None:
        policy = parse_policy(source, shown)
        policy_cache.keep(policy)
    return policy


_STORED: dict[str, Policy] = {}  # policy text -> parsed, for this process's stores


def stored_policy(source: str, shown: str) -> Policy:
    """A policy text kept in a database, parsed once per process (whatever the number
    of stores that hold it) and, like a file's, kept in the cache for the next one."""
    policy = _STORED.get(source)
    if policy is None:
        from sladeck import policy_cache

        policy = policy_cache.cached(source)
        if policy is None:
            policy = parse_policy(source, shown, stored=True)
            policy_cache.keep(policy)
        _STORED[source] = policy
    return policy


def _read(file: Path, shown: str) -> str:
    """The text of a policy file: at most MAX_POLICY_BYTES of UTF-8 from a file or a
    pipe, never the whole of an endless or huge one."""
    import stat

    try:
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise PolicyError([f"{shown}: no such file"]) from None
    except OSError as exc:
        raise PolicyError([f"{shown}: cannot read: {exc.strerror}"]) from None
    try:
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
            kind = "a folder" if stat.S_ISDIR(mode) else "a device" \
                if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket"
            raise PolicyError([f"{shown}: cannot read: {kind}, not a policy file"])
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(MAX_POLICY_BYTES + 1)
    except OSError as exc:
        raise PolicyError([f"{shown}: cannot read: {exc.strerror}"]) from None
    finally:
        os.close(fd)
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError([f"{shown}: too large (a policy is at most "
                           f"{MAX_POLICY_BYTES // 1024} KiB)"])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise PolicyError([f"{shown}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                           "a policy is a YAML text file"]) from None


def parse_policy(source: str, filename: str = "policy.yaml", *, stored: bool = False
                 ) -> Policy:
    """Validate policy text; raise PolicyError listing every problem (see
    `policy_file.parse_policy` for what `stored` allows)."""
    from sladeck.policy_file import parse_policy as parse

    return parse(source, filename, stored=stored)
