"""When to look for other processes' commits: an inotify watch (on PostgreSQL, its
LISTEN/NOTIFY: `opener`), or else a poll.

`LiveUpdates` decides only *when* to check; `check` (the app's) does the check and
says whether it saw a commit. With a watch on the database's folder (watch.py) an
idle dashboard never wakes: after a write event the store is checked every `step`
seconds until the commit shows, then every `interval` until writes have stopped for
`quiet` seconds. Without a watch (not Linux, no watches left, the folder gone) it
polls every `interval`. Checks never overlap: each is armed after the last one ends.

A LISTEN connection the server dropped (a restart, a failover, a network cut) is
opened again every REWATCH seconds while the dashboard polls meanwhile; once it is
back, one check catches the commits made while it was away.

Polls are plain event-loop callbacks: a Textual timer costs about 10× more per
wake-up. The folder is watched by name, so a file replaced under the dashboard is
still seen (the app's check notices the new file's identity).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sladeck.tui.watch import DatabaseWatch  # ctypes loads with the first watch


class LiveUpdates:
    """Calls `check()` (True if it saw a commit) when the database may have changed."""

    REWATCH = 5.0  # seconds between attempts to open a dropped LISTEN connection again

    def __init__(self, db_path: Path, check: Callable[[], bool], *, interval: float | None,
                 on_error: Callable[[Exception], None], watch_files: bool = True,
                 step: float = 0.02, quiet: float = 0.5,
                 opener: Callable[[], Any] | None = None) -> None:
        self.db_path = db_path
        self.check = check
        self.interval = interval  # None or 0: never check on its own
        self.on_error = on_error  # what a Textual timer would do with a failed check
        self.watch_files = watch_files
        # what tells of commits instead of the folder's watch: a PostgreSQL store's
        # LISTEN (`PgStore.listen`: the same fd/read/broken/close shape)
        self.opener = opener
        self.step = step
        self.quiet = quiet
        self.watch: DatabaseWatch | None = None
        self.handle: asyncio.TimerHandle | None = None  # the next check or poll, if armed
        self.stopped = False
        self._watch_tried = False
        self._rewatch_at: float | None = None  # when to open a dropped `opener` watch again
        self._quiet_at = 0.0  # event-loop time after which a check chain stops
        self._last_write = 0.0  # event-loop time of the last write event
        self._last_seen = 0.0  # ... and of the last check that saw a commit

    @property
    def watching(self) -> bool:
        """True while a watch (not a poll) tells when to check."""
        return self.watch is not None

    def start(self) -> None:
        """Start watching the database's folder, or else arm the next poll."""
        if not self.interval or self.stopped:
            return
        loop = asyncio.get_running_loop()
        again = self._rewatch_at is not None and loop.time() >= self._rewatch_at
        if self.watch_files and (not self._watch_tried or again):
            from sladeck.tui.watch import open_watch

            self._watch_tried = True
            watch = self._open(open_watch)
            if watch is not None:
                self.watch, self._rewatch_at = watch, None
                loop.add_reader(watch.fd, self._watched)
                if again:  # back after a break: what was committed meanwhile told nothing
                    self.handle = loop.call_soon(self._checked)
                    return
            elif again:
                self._rewatch_at = loop.time() + self.REWATCH
        if self.watch is None:
            self.handle = loop.call_later(self.interval, self._polled)

    def _open(self, open_watch: Callable[[Path], Any]) -> Any:
        if self.opener is None:
            return open_watch(self.db_path)
        try:
            return self.opener()
        except Exception:  # no LISTEN connection: poll instead
            return None

    def stop(self) -> None:
        """No more checks: the watch closed, the armed check cancelled."""
        self.stopped = True
        self._unwatch()

    def _unwatch(self) -> None:
        watch, self.watch = self.watch, None
        if watch is not None:
            with contextlib.suppress(Exception):  # the loop may already be closed
                asyncio.get_running_loop().remove_reader(watch.fd)
            watch.close()
        if self.handle is not None:
            self.handle.cancel()

    def _watched(self) -> None:
        """The database's folder changed: check the store soon, and again a few times."""
        watch = self.watch
        if watch is None:
            return
        touched = watch.read()
        if watch.broken:  # the folder went away or moved, the server dropped LISTEN: poll
            self._unwatch()
            if self.opener is not None:  # ... and open LISTEN again shortly
                self._rewatch_at = asyncio.get_running_loop().time() + self.REWATCH
            self._polled()
            return
        if not touched or self.stopped:
            return
        loop = asyncio.get_running_loop()
        now = self._last_write = loop.time()
        self._quiet_at = now + self.quiet
        soon = now + self.step / 4
        handle = self.handle
        if handle is None:  # no chain of checks running: start one
            self.handle = loop.call_later(soon - now, self._checked)
        elif handle.when() > soon and now - self._last_seen >= (self.interval or 0.1):
            # a new write in a slow chain, and no reload for a poll interval: check soon
            handle.cancel()
            self.handle = loop.call_later(soon - now, self._checked)

    def _checked(self) -> None:
        """One check of a chain; the chain goes on while writes keep coming.

        A write event comes before its commit is visible (the writer still syncs the
        WAL, which can take tens of milliseconds, and updates its index), so checks
        follow every `step` until one sees a commit; after that, while writes go on,
        every poll interval, as a poll would, so a long import is not reloaded fifty
        times a second.
        """
        self.handle = None
        try:
            seen = self.check()
        except Exception as error:
            self.on_error(error)
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if seen:
            self._last_seen = now
        if self.watch is None or self.stopped or now >= self._quiet_at:
            return
        waiting = self._last_write > self._last_seen  # a write not yet seen committed
        delay = self.step if waiting else self.interval or 0.1
        self.handle = loop.call_later(delay, self._checked)

    def _polled(self) -> None:
        try:
            self.check()
        except Exception as error:
            self.on_error(error)
            return
        self.start()
