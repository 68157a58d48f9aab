"""When an event happened: the writer's clock, checked against the file's own history.

Every event is stamped with the clock of the process that writes it. Several hosts (or
one host whose clock was stepped) may write one file, so two rules keep the timeline
truthful:

- **Small disagreements are absorbed.** Clocks a few seconds or minutes apart (NTP
  steps, two hosts) must not make a timeline run backwards: an event written up to
  `CLOCK_TOLERANCE` before the incident's last event is stamped at that last event.
- **A large one never drags.** An incident whose last event lies further ahead than
  that was written by a clock that was ahead (or this one is behind): the new event is
  stamped with this host's own time, never the other host's, so one event from a host
  a year ahead cannot push every later event of its incident a year ahead. The
  timeline's order is the event id (the hash chain's order), never the time, so a
  time earlier than the one before it is shown in its place and `verify` accepts it.

And a clock far ahead of everything the file holds is refused before it writes
(`check_clock`): its first event would open an incident whose clocks do not start for
years. The file knows the present only through its newest event, and a file may rest
for days with no event at all, so "ahead" can only mean *implausibly* ahead:
`MAX_AHEAD` (a clock the wrong year, month or decade); a rest longer than that is
told, and `SLADECK_CLOCK_OK=1` lets a person whose clock is right go on.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from sladeck.domain.clocks import format_countdown
from sladeck.domain.model import Event, format_ref, local_time
from sladeck.errors import Refused

CLOCK_TOLERANCE = timedelta(minutes=5)  # clocks this close agree; a timeline never runs back
MAX_AHEAD = timedelta(days=30)  # a writer this far ahead of the file's newest event: refused
CLOCK_OK_VARIABLE = "SLADECK_CLOCK_OK"


class ClockSkew(Refused):
    """This host's clock is implausibly far ahead of the newest event in the file."""


def stamp(now: datetime, last: datetime | None) -> datetime:
    """The time of a new event written at `now` after an event at `last`: `last` when it
    is ahead by at most CLOCK_TOLERANCE (the timeline stays in order), else `now`."""
    if last is not None and now < last <= now + CLOCK_TOLERANCE:
        return last
    return now


def span(delta: timedelta) -> str:
    """`10 years`, `45 days`, else a countdown (`3h05m`): how far apart two clocks are."""
    days = delta.days
    if days >= 730:
        return f"{days // 365} years"
    if days >= 2:
        return f"{days} days"
    return format_countdown(delta)


def clock_trusted() -> bool:
    """Whether the person running this process said its clock is right."""
    return os.environ.get(CLOCK_OK_VARIABLE, "") == "1"


def check_clock(now: datetime, newest: Event | None, *, trusted: bool | None = None) -> None:
    """Refuse (ClockSkew) a write at `now` far ahead of `newest`, the last event written
    to the file, unless the person said their clock is right (`trusted`, by default
    from SLADECK_CLOCK_OK)."""
    if trusted is None:
        trusted = clock_trusted()
    if newest is None or trusted or now - newest.at <= MAX_AHEAD:
        return
    raise ClockSkew(
        f"this host's clock is {span(now - newest.at)} ahead of the newest event in the "
        f"file ({format_ref(newest.incident_id)} {newest.kind.replace('_', ' ')} by "
        f"{newest.actor.display} at {local_time(newest.at)}); fix the clock before acting "
        f"(if it is right and the file has rested that long, set {CLOCK_OK_VARIABLE}=1)")
