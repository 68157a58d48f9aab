"""`sladeck watch`: notices and notification commands with no dashboard open (SPEC §6).

`NoticeWatch` keeps, for every open incident, the next instant at which it may owe a
notice (`notices.next_owed_at`), and looks at an incident only when that instant comes
or when the incident changed (another process's commit: SQLite's `PRAGMA data_version`,
checked every `poll` seconds, about 4 µs). An idle watch on 10,000 open incidents so
does nearly nothing. Each notice is claimed by its name in the database (see
`domain.notices`): a watch, dashboards and commands racing record it once.

A failed pass (the database locked past the busy timeout, a full disk) is rolled back
whole: nothing is half-recorded, the incidents it looked at are looked at again at the
next try, and the failure is told in one line (once, until it changes).

`run_watch` is the command: one copy per database file (an advisory lock on
`DB.watch.lock`, next to it), a clean exit on SIGTERM or SIGINT.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
import select
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sladeck.clock import Clock
from sladeck.domain.actions import Desk, record_notices
from sladeck.domain.model import ACTIVE_STATES, Incident, to_iso
from sladeck.domain.notices import next_owed_at
from sladeck.errors import SladeckError

log = logging.getLogger("sladeck.watch")
RETRY = 5.0  # seconds before a failed pass is tried again
POLL = 1.0  # seconds between checks of `data_version`
RESOLUTION = 60.0  # the longest sleep: a pass at least once a minute


def deliver(desk: Desk, recorded: list[tuple[Any, Any]], *, policy_file: str | Path | None,
            run_hooks: bool = True) -> list[str]:
    """Run this process's own notification command for the notices it recorded."""
    if not run_hooks or not recorded:
        return []
    from sladeck.hooks import deliver_notices

    return deliver_notices(desk, recorded, desk.policy.notifications, policy_file=policy_file)


class NoticeWatch:
    """Records the notices of a database's open incidents as they fall due."""

    def __init__(self, desk: Desk, *, policy_file: str | Path | None = None,
                 run_hooks: bool = True, say: Callable[[str], None] | None = None) -> None:
        self.desk = desk
        self.store: Any = desk.store
        self.clock: Clock = desk.clock
        self.policy_file = policy_file
        self.run_hooks = run_hooks
        self.say = say or (lambda line: log.warning("%s", line))
        self.seq = 0
        self.version: int | None = None
        self.heap: list[tuple[datetime, int]] = []  # (next instant, incident id)
        self.next_at: dict[int, datetime] = {}  # the current entry of each incident
        self.retry: set[int] = set()  # incidents a failed pass must look at again
        self.recorded = 0  # notices this watch recorded
        self.failures = 0
        self.problem = ""  # the last failure told (said once until it changes)

    # -- one pass -------------------------------------------------------------------------
    def start(self) -> int:
        """The first pass: every open incident. Returns how many notices it recorded."""
        self.version = self.store.data_version()
        self.seq = self.store.last_seq()
        return self._pass(self.store.incidents(ACTIVE_STATES))

    def step(self) -> int:
        """One pass: the incidents changed by others' commits and those whose next
        notice has come (and any a failed pass left). Returns the notices recorded."""
        version = self.store.data_version()
        wanted: set[int] = set(self.retry)
        if version != self.version:
            changed = self.store.changed_since(self.seq)
            self.version = version  # only once read: a failed read is read again
            if changed:
                self.seq = max(self.seq, *(item.changed_seq for item in changed))
                wanted.update(item.id for item in changed)
        now = self.clock.now()
        while self.heap and self.heap[0][0] <= now:
            at, incident_id = heapq.heappop(self.heap)
            if self.next_at.get(incident_id) == at:
                del self.next_at[incident_id]
                wanted.add(incident_id)
        if not wanted:
            return 0
        incidents = [i for i in map(self.store.incident, sorted(wanted)) if i is not None]
        return self._pass(incidents)

    def _pass(self, incidents: list[Incident]) -> int:
        ids = {i.id for i in incidents}
        recorded: list[tuple[Any, Any]] = []
        try:
            record_notices(self.desk, incidents, into=recorded)
        except (SladeckError, OSError, _store_errors(self.store)) as exc:
            # rolled back whole (what committed before is in `recorded`): look again later
            self.retry |= ids
            self.failures += 1
            self.recorded += len(recorded)
            deliver(self.desk, recorded, policy_file=self.policy_file, run_hooks=self.run_hooks)
            text = f"notices not recorded, trying again in {RETRY:g}s: {exc}"
            if text != self.problem:
                self.problem = text
                self.say(text)
            return len(recorded)
        if self.problem:
            self.say("notices recorded again")
            self.problem = ""
        self.retry -= ids
        self.recorded += len(recorded)
        now = self.clock.now()
        for incident in incidents:
            self._schedule(incident, now)
        deliver(self.desk, recorded, policy_file=self.policy_file, run_hooks=self.run_hooks)
        return len(recorded)

    def _schedule(self, incident: Incident, now: datetime) -> None:
        at = next_owed_at(incident, self.store.policy(incident.policy_id), now) \
            if incident.active else None
        if at is None:
            self.next_at.pop(incident.id, None)
            return
        if self.next_at.get(incident.id) != at:
            self.next_at[incident.id] = at
            heapq.heappush(self.heap, (at, incident.id))
            if len(self.heap) > 2 * len(self.next_at) + 1000:  # entries since replaced
                self.heap = [(t, i) for i, t in self.next_at.items()]
                heapq.heapify(self.heap)

    def wait(self, poll: float = POLL) -> float:
        """Seconds to sleep before the next pass: until the next notice or the next
        check of `data_version`, whichever is first (a failed pass: RETRY)."""
        if self.retry:
            return RETRY
        if not self.heap:
            return poll
        until = (self.heap[0][0] - self.clock.now()).total_seconds()
        return max(0.0, min(poll, until, RESOLUTION))


def _store_errors(store: Any) -> type[Exception]:
    """What a read of `store` may raise: its backend's own (`Store.errors`)."""
    import sqlite3

    return getattr(store, "errors", sqlite3.Error)  # type: ignore[no-any-return]


# -- the commands -----------------------------------------------------------------------------

AFTER_COMMAND_LIMIT = 1_000  # incidents a command looks after; a larger import leaves the
# rest to `sladeck watch` and the dashboards (an import of 100,000 stays an import)


def notices_after_command(session: Any) -> None:
    """After a command that acted: record the notices owed by the incidents changed
    since it began (an arrival, an escalation, an import of old alerts ...) and run the
    command's own notification command for them. Never fails the command: a problem is
    one warning line (the watch or a dashboard records them later)."""
    if not session.acted:
        return
    try:
        changed = [item.id for item in session.store.changed_since(session.acted_from)
                   if item.state in ACTIVE_STATES][:AFTER_COMMAND_LIMIT]
        if not changed:
            return
        incidents = [i for i in map(session.store.incident, changed) if i is not None]
        recorded: list[tuple[Any, Any]] = []
        try:
            record_notices(session.desk, incidents, into=recorded)
        finally:
            from sladeck.policy import default_policy_path

            deliver(session.desk, recorded,
                    policy_file=session.policy_file or default_policy_path())
    except (SladeckError, OSError, _store_errors(session.store)) as exc:
        from sladeck.session import say_warning

        say_warning(f"notices not recorded now (a dashboard or `sladeck watch` will): {exc}")


# -- `sladeck watch` --------------------------------------------------------------------------

def lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".watch.lock")


@contextlib.contextmanager
def single_copy(db_path: Path) -> Iterator[None]:
    """Hold the watch lock of `db_path` (next to it) while the block runs; refuse, naming
    the holder, when another watch holds it."""
    import fcntl

    path = lock_path(db_path)
    flags = os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | flags, 0o660)
    except PermissionError:  # another member's lock file: a read-only handle locks too
        fd = os.open(path, os.O_RDONLY | flags)
    except OSError as exc:
        raise SladeckError(f"cannot open the watch lock {path}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 500, 0).decode("utf-8", "replace").strip() or "another process"
            from sladeck.text import one_line

            raise SladeckError(f"sladeck watch is already running on {db_path} "
                               f"({one_line(holder, 200)}; lock {path})") from None
        from sladeck.identity import current_actor

        with contextlib.suppress(OSError):
            me = (f"pid {os.getpid()}, user {current_actor(None).account}, host "
                  f"{socket.gethostname()}, since {to_iso(datetime.now().astimezone())}")
            os.ftruncate(fd, 0)
            os.pwrite(fd, me.encode(), 0)
        yield
    finally:
        os.close(fd)  # the lock goes with it


class Stopper:
    """SIGTERM and SIGINT end the watch's sleep at once (a self-pipe, no busy loop)."""

    def __init__(self) -> None:
        self.read, self.write = os.pipe()
        os.set_blocking(self.write, False)
        self.signal: str | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> Stopper:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old[sig] = signal.signal(sig, self._caught)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        os.close(self.read)
        os.close(self.write)

    def _caught(self, signum: int, frame: object) -> None:
        self.signal = signal.Signals(signum).name
        with contextlib.suppress(OSError):
            os.write(self.write, b"x")

    def sleep(self, seconds: float) -> bool:
        """Sleep up to `seconds`; False once a stop signal came."""
        if self.signal is None and seconds > 0:
            select.select([self.read], [], [], seconds)
        return self.signal is None


def run_watch(desk: Desk, db_path: Path, *, policy_file: str | Path | None, once: bool,
              poll: float = POLL, out: Callable[[str], None] | None = None) -> int:
    """`sladeck watch`: the exit status (0; a second copy is refused by `single_copy`)."""
    def say(line: str) -> None:
        from sladeck.text import visible

        (out or _print)(visible(line))

    with single_copy(db_path):
        watch = NoticeWatch(desk, policy_file=policy_file, say=say)
        with Stopper() as stopper:
            try:
                first = watch.start()
            except (SladeckError, OSError, _store_errors(desk.store)) as exc:
                say(f"cannot read {db_path} yet, trying again in {RETRY:g}s: {exc}")
                watch.retry.add(-1)  # a whole first pass is still owed
                first = 0
            if once:
                say(f"{db_path}: {first} notice{'s' * (first != 1)} recorded")
                return 1 if watch.retry else 0
            say(f"watching {db_path}: {len(watch.next_at)} open incidents with notices to come, "
                f"{first} notice{'s' * (first != 1)} recorded now")
            while stopper.sleep(watch.wait(poll)):
                try:
                    if -1 in watch.retry:
                        watch.retry.discard(-1)
                        watch.start()
                    else:
                        watch.step()
                except (SladeckError, OSError, _store_errors(desk.store)) as exc:
                    text = f"cannot read {db_path}, trying again in {RETRY:g}s: {exc}"
                    if text != watch.problem:
                        watch.problem = text
                        say(text)
            say(f"watch stopped ({stopper.signal}): {watch.recorded} notice"
                f"{'s' * (watch.recorded != 1)} recorded")
    return 0


def _print(line: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        print(line, file=sys.stdout, flush=True)

