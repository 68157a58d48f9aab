"""SladeckApp: wiring between the store, the queue, the screens and the actions.

Start-up shows the worst rows first: the store orders incidents by their stored SLA
schedules, so the first frame needs one screenful, and every other row loads just
after it. Then two loops, never overlapping: a one-second tick that does no I/O (it
re-assesses only rows whose risk may have moved and repaints what is on screen), and
a check of `PRAGMA data_version` that loads only incidents changed since the last
event it saw. On Linux the check runs when an inotify watch reports a write to the
database (`LiveUpdates`, live.py), and once a tick as a safety net; elsewhere it
is a poll. Keys, the palette and forms ask for actions through one registry
(keys.py) and typed requests (requests.py, messages.py); the app runs each in a
thread worker on its own connection and answers the form that asked.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import logging
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input
from textual.worker import Worker, WorkerState

from sladeck.clock import Clock, SystemClock
from sladeck.domain.clocks import ID_LIMIT, KIND_TITLE, from_us, to_us
from sladeck.domain.lean_queue import LeanQueue
from sladeck.domain.model import ACTIVE_STATES, RESOLVED, Actor, Incident
from sladeck.domain.notices import next_repage_us
from sladeck.domain.queue import Filter, Queue, QueueItem, Transition
from sladeck.errors import Conflict, MissingFields, SladeckError, StoreError
from sladeck.policy import Policy
from sladeck.runtime import collector_back, freeze_heap
from sladeck.store import BackendError, Store, is_server_url, open_store
from sladeck.text import one_line, visible
from sladeck.tui import compat
from sladeck.tui.compat import display as display_cells
from sladeck.tui.cursors import steady_cursors
from sladeck.tui.detail import local
from sladeck.tui.hangup import hung_up, terminal_fd
from sladeck.tui.keys import ACTIONS, INCIDENT_BINDINGS, QUEUE_BINDINGS, VIEW_BINDINGS
from sladeck.tui.live import LiveUpdates
from sladeck.tui.messages import ActionRefused, ActionRequested, StoreChanged
from sladeck.tui.palette import CommandPalette
from sladeck.tui.queue import QueueHeader, QueueView
from sladeck.tui.reads import SafeReads
from sladeck.tui.summary import SummaryLine, summary_text

if TYPE_CHECKING:
    from textual.actions import ActionParseResult
    from textual.dom import DOMNode

    from sladeck.domain.actions import Desk, Outcome
    from sladeck.tui.forms import ActionForm
    from sladeck.tui.requests import Request

# The detail screen, the forms and the help screen load when first opened: the
# queue's first frame needs none of them. Until a module is loaded no screen of it
# can exist, so the checks below look it up without importing it.


def _loaded(module: str, name: str) -> type | None:
    found = sys.modules.get(f"sladeck.tui.{module}")
    return getattr(found, name, None) if found is not None else None


def _is(screen: object, module: str, name: str) -> bool:
    cls = _loaded(module, name)
    return cls is not None and isinstance(screen, cls)

log = logging.getLogger("sladeck.tui")
LOADED_STATES = (*ACTIVE_STATES, RESOLVED)  # closed incidents never enter memory
FIRST_ROWS = 100  # read before the first frame: more than a tall terminal shows
LOAD_BATCH = 500  # rows read at a time by the full load after the first frame
LOAD_STEP = 0.03  # seconds of loading before keys and ticks get their turn
LOAD_PAUSE = 0.002  # seconds given to them (each key passes several message queues)
# Above this many open incidents the queue keeps each row's place, not the row
# (`LeanQueue`): 100,000 whole rows would hold 66 MiB; their places hold about 11.
LEAN_ABOVE = 20_000


class QueueScreen(Screen[None]):
    """The open-incident queue with a summary line and a text filter."""

    BINDINGS = [*INCIDENT_BINDINGS, *QUEUE_BINDINGS, *VIEW_BINDINGS,
                Binding("escape", "app.clear_search", "Clear filter", show=False,
                        id="queue.clear")]
    view: QueueView | None = None  # found once, for the tick
    summary: SummaryLine | None = None

    def compose(self) -> ComposeResult:
        app: SladeckApp = self.app  # type: ignore[assignment]
        yield SummaryLine(id="summary")
        yield QueueHeader(id="queue-header")
        yield QueueView(app.queue, app.clock, id="queue")
        yield Footer(compact=True)  # the filter's field joins on the first `/`

    def on_resize(self) -> None:
        app: SladeckApp = self.app  # type: ignore[assignment]
        self.call_after_refresh(app._update_summary, app.clock.now())

    def on_mount(self) -> None:
        self.query_one(QueueView).focus()
        steady_cursors(self)
        app: SladeckApp = self.app  # type: ignore[assignment]
        if app.loaded:
            app._rows_changed()  # the summary and rows now that the widgets exist


def transition_text(t: Transition) -> str:
    """`INC-1 Checkout API — Response (acknowledge) SLA breached (response clock, due Mon
    09:15:00 UTC +00:00)`: which clock crossed, and when it fell due."""
    item = t.incident
    title = one_line(item.title, 40)
    breached = t.after == "breached"
    kind, at = (item.breach_kind, item.breach_at) if breached else (item.due_kind, item.due_at)
    if breached and kind is None:
        return f"{item.ref} {title} — an SLA is breached"
    name = KIND_TITLE.get(kind or "", visible(kind or "SLA"))
    when = f", due {local(from_us(at))}" if at is not None else ""
    if breached:
        return f"{item.ref} {title} — {name} SLA breached ({name.split(' (')[0].lower()} " \
            f"clock{when})"
    return f"{item.ref} {title} — due for escalation ({name}{when})"


NOTICE_LIMIT = 1_000  # incidents a refresh records notices for (sladeck watch does the rest)


class SladeckApp(App[int]):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses keep it
    TITLE = "sladeck"
    # Below 100 columns the footer's right-docked "^p palette" hint covered the last
    # keys and left stray characters beside it: it is hidden there (app.tcss), ctrl+p
    # still opens the palette and `?` lists it.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    # With a poll interval, watch the database's folder instead of polling where the
    # platform allows (live.py, watch.py). After a write event the store is checked
    # every WATCH_STEP s until the commit shows, then every poll interval until
    # writes have stopped for WATCH_QUIET s.
    WATCH_FILES = True
    WATCH_STEP = 0.02
    WATCH_QUIET = 0.5
    live: LiveUpdates | None = None  # when to check the store: from the first frame on
    _heap_frozen = False
    _terminal: int | None = None  # the real terminal, watched for a hang-up
    BINDINGS = [
        Binding("q", "quit", "Quit", id="app.quit", tooltip="Leave the dashboard"),
        Binding("question_mark", "help", "Help", id="app.help", tooltip="Every key"),
    ]

    def __init__(self, db_path: str | Path, policy: Policy, actor: Actor, *,
                 clock: Clock | None = None, poll_interval: float | None = 0.1,
                 tick_interval: float | None = 1.0, bell: bool = True,
                 log_file: Path | None = None, run_hooks: bool = True,
                 cursor_blink: bool = True, reader: Store | None = None,
                 policy_file: str | Path | None = None, fast_paths: bool = True) -> None:
        super().__init__()
        # Textual's private API for the fast paths (tui/compat.py), for this process;
        # `fast_paths=False`: public Textual only.
        if fast_paths:
            compat.install()
        else:
            compat.uninstall()
        self.cursor_blink = cursor_blink  # off for snapshots and screenshots
        self.db_path: Any = db_path if is_server_url(db_path) else Path(db_path)
        self.policy = policy
        self.actor = actor
        self.clock: Clock = clock or SystemClock()
        self.poll_interval = poll_interval
        self.tick_interval = tick_interval
        self.ring_bell = bell and policy.notifications.bell
        self.log_file = log_file
        self.run_hooks = run_hooks
        self.policy_file = policy_file  # where `policy` was read: checked before a hook runs
        self.reader = reader or open_store(self.db_path)  # main thread: polls and reads
        self.reader.adopt(policy)
        self.reader.small_cache()
        self.write_lock = threading.Lock()  # held by whoever uses `desk`
        self._desk: Desk | None = None
        me = tuple(n for n in (actor.account, actor.name) if n)
        self.queue: Queue | LeanQueue = Queue(self.reader.policy, me=me)
        self._repages: list[int] = []  # (at * ID_LIMIT + id): the next re-page of a row
        self.seq = 0
        self.data_version = -1
        self.loaded = False
        self._keys_for: object = None  # what the footer's keys were last checked for
        self.closing = False  # set on unmount: a late poll or tick must not touch the store

    @property
    def desk(self) -> Desk:
        """The actions' own connection, opened by the first action (under `write_lock`):
        the first frame needs no second connection."""
        if self._desk is None:
            from sladeck.domain.actions import Desk

            writer = open_store(self.db_path, migrate=False, expect=self.reader.identity)
            writer.adopt(self.policy)
            self._desk = Desk(writer, self.policy, self.clock, self.actor)
        return self._desk

    @property
    def writer(self) -> Store:
        return self.desk.store

    # -- start-up and the two loops --------------------------------------------

    def get_default_screen(self) -> Screen[Any]:
        return QueueScreen()

    def on_mount(self) -> None:
        self.load_queue()
        # Only a real terminal can hang up; the Pilot's headless app has none.
        self._terminal = None if self.is_headless else terminal_fd()
        if self.tick_interval:
            self.set_interval(self.tick_interval, self.tick, name="tick")

    def load_queue(self) -> None:
        """The worst rows first, for the first frame; every open and resolved incident
        (closed ones never load) just after it has been drawn."""
        self.data_version = self.reader.data_version()
        self.seq = self.reader.last_seq()
        now = self.clock.now()
        first = self.reader.queue_items(LOADED_STATES, worst=FIRST_ROWS, now=to_us(now),
                                        severities=tuple(self.policy.severities))
        complete = len(first) < FIRST_ROWS
        self.queue.load(first, now, complete=complete)
        self._note_repages(first, now)
        if not complete:
            self.queue.counts_from(self.reader.queue_counts(ACTIVE_STATES, to_us(now)))
        self.loaded = True
        self._rows_changed()
        self.call_after_refresh(self._drawn, complete)

    def _drawn(self, complete: bool) -> None:
        """After the first frame: the cycle collector back on (`sladeck.launch` keeps it
        off for start-up), the rest of the rows, then watching for changes (and one
        check then, for a commit made before the watch began)."""
        collector_back()
        if complete:
            self._start_watching()
        else:
            self.load_rest()

    def load_rest(self) -> None:
        """Every row, once the first frame is out, in steps of about LOAD_STEP seconds
        that let keys and ticks through (100,000 rows take seconds); the queue shows the
        worst rows and the store's counts until every row is in, then all of them, the
        selection where it was."""
        if self.closing:
            return
        batches = getattr(self.reader, "queue_item_batches", None)
        source = iter(batches(LOADED_STATES, LOAD_BATCH) if batches is not None
                      else [self.reader.queue_items(LOADED_STATES)])
        self.run_worker(self._load_steps(self.reader, source), name="load the queue",
                        group="load", exclusive=True)

    async def _load_steps(self, reader: Store, source: Iterator[list[QueueItem]]) -> None:
        """The full load's steps, each giving the event loop back (keys, ticks, the
        screen) after LOAD_STEP seconds; given up if another file is shown meanwhile."""
        staged: Queue | LeanQueue = Queue(reader.policy, me=self.queue.me)
        if sum(self.queue.by_severity.values()) > LEAN_ABOVE:  # the store's counts
            reads = SafeReads(reader, self._tell_store_problem)
            staged = LeanQueue(reader.policy, reads, tuple(self.policy.severities),
                               me=self.queue.me)
        started = perf_counter()
        for batch in source:
            staged.merge(batch, self.clock.now(), ordered=False)
            self._note_repages(batch, self.clock.now())
            if perf_counter() - started >= LOAD_STEP:
                await asyncio.sleep(LOAD_PAUSE)
                started = perf_counter()
            if self.closing or reader is not self.reader:
                return
        if isinstance(staged, LeanQueue):
            staged.settle(self.queue.filter, self.clock.now())
            self.queue = staged
            view = self._queue_view()
            if view is not None:
                view.queue = staged
        else:
            self.queue.take(staged)
        self._rows_changed()
        self._start_watching(force=True)  # and anything committed since the first rows

    def _start_watching(self, force: bool = False) -> None:
        """Watch (or poll) from now on, then check once: a commit made before the watch
        began raised no event."""
        if self.live is None and self.poll_interval and not self.closing:
            self.live = LiveUpdates(self.db_path, self.poll, interval=self.poll_interval,
                                    on_error=self.unexpected,
                                    watch_files=self.WATCH_FILES, step=self.WATCH_STEP,
                                    quiet=self.WATCH_QUIET,
                                    opener=getattr(self.reader, "listen", None))
            self.live.start()
        self.refresh_from_store(force=force)

    def poll(self) -> bool:
        """Notice other processes' commits (about 4 µs when nothing changed); True if
        one was seen."""
        if self.closing:
            return False
        version = self.data_version
        self.refresh_from_store()
        return self.data_version != version

    _store_problem = ""  # the last SQLite error the poll told, said once

    def refresh_from_store(self, force: bool = False) -> None:
        if self.closing or not self._same_file():
            return
        try:
            self._refresh(force)
        except (BackendError, self.reader.errors, StoreError) as exc:  # damaged, full disk ...
            # (a server that is restarting: its store says so; the next check retries)
            error = exc if isinstance(exc, StoreError) else self.reader.refusal(exc)
            if error is None:  # and writers refuse a damaged file from now on
                raise
            self._tell_store_problem(error)

    def _tell_store_problem(self, error: StoreError) -> None:
        """Say why the store refused a read, once for each different reason."""
        if str(error) != self._store_problem:
            self._store_problem = str(error)
            self.notify(str(error), severity="error", timeout=30, markup=False)

    def _refresh(self, force: bool) -> None:
        version = self.reader.data_version()
        if version == self.data_version and not force:
            return
        self.data_version = version
        changed = self.reader.changed_since(self.seq)
        if not changed:
            return
        self.seq = max(self.seq, *(i.changed_seq for i in changed))
        now = self.clock.now()
        arrivals = self._arrivals(changed, now)
        transitions = self.queue.merge(changed, now)
        self._note_repages(changed, now)
        self._rows_changed()
        # every change may owe a notice (an arrival, an escalation): record it if first
        self._alert(transitions, arrivals, [i.id for i in changed if i.state in ACTIVE_STATES])
        if len(self.screen_stack) > 1:  # details and forms over the queue read what they show
            ids = frozenset(i.id for i in changed)
            for screen in self.screen_stack[1:]:
                screen.post_message(StoreChanged(ids, self.reader))

    # -- the file shown: replaced or removed under the dashboard ----------------------

    _file_gone = False  # the path names no usable file: every action is refused
    _refused_file: tuple[int, int] | None = None  # a replacement that could not be opened

    def _same_file(self) -> bool:
        """Whether the database path still names the file shown (a `stat`, about 1 µs).

        A file replaced (a backup restored with `mv`) is opened and shown instead, with
        one line saying so. A file removed or moved away stays shown (still read: its
        folder may have moved with it), said to be gone, and every action is refused
        until a file is back at the path: nothing ever acts on a file not shown, nor
        on one the team no longer finds there.
        """
        found = self.reader.file_identity()
        if found == self.reader.identity:
            if self._file_gone:  # the same file back (moved away and back again)
                self._file_gone = False
                self.notify(f"{self.db_path} is back", markup=False)
            return True
        if found is None or found == self._refused_file:
            if not self._file_gone:
                self._file_gone = True
                self._drop_writer()
                self.notify(f"{self.db_path} was removed or moved away: still showing what "
                            "it held; every action is refused until the file is back",
                            severity="error", timeout=30, markup=False)
            return True  # go on reading the file shown
        try:
            reader = Store(self.db_path)
        except SladeckError as exc:
            self._refused_file, self._file_gone = found, True
            self._drop_writer()
            self.notify(f"{self.db_path} was replaced and the new file cannot be used, so every "
                        f"action is refused: {exc}", severity="error", timeout=30, markup=False)
            return True  # go on reading the file shown
        self._show_file(reader)
        return False

    def _show_file(self, reader: Store) -> None:
        """Show the file `reader` opened instead of the one shown so far."""
        old, self.reader = self.reader, reader
        reader.adopt(self.policy)
        reader.small_cache()
        self._drop_writer()
        old.close()
        self._file_gone, self._refused_file = False, None
        while len(self.screen_stack) > 1:  # details and forms of the old file's incidents
            self.pop_screen()
        self.queue = Queue(reader.policy, me=self.queue.me, filter=self.queue.filter)
        view = self._queue_view()
        if view is not None:
            view.queue = self.queue
        self.load_queue()  # the worst rows, then the rest in steps (lean if there are many)
        # The watch is on the folder, by name: it goes on seeing the new file's writes.
        self.notify(f"{self.db_path} was replaced by another file (a backup restored?): now "
                    "showing the new file", severity="warning", timeout=15, markup=False)

    def _drop_writer(self) -> None:
        """Forget the actions' connection: the next action opens one on the file shown
        (or is refused, with the file gone). One in use is left to its action, which its
        own check refuses."""
        desk, self._desk = self._desk, None
        if desk is not None and self.write_lock.acquire(blocking=False):
            try:
                desk.store.close()
            finally:
                self.write_lock.release()

    def tick(self) -> None:
        """Once a second: no I/O, only rows whose risk may have moved, then repaint
        only the cells on screen whose text changed (the countdowns and the clock)."""
        if self.closing:
            return
        if self._terminal is not None and hung_up(self._terminal):
            log.warning("the terminal hung up; the dashboard ends")
            self.exit(return_code=1)
            return
        if self.tick_interval and not self._heap_frozen:
            self._freeze_heap()
        if self.live is not None and self.live.watching:
            self.poll()  # the watch's safety net: about 4 µs, and no wake-up of its own
        now = self.clock.now()
        transitions = self.queue.tick(now)
        if self._repages and self._repages[0] // ID_LIMIT <= to_us(now):
            self._repage(now)
        out: list[str] = []  # cells written straight, in one write (compat.write_cells)
        if transitions:
            self._rows_changed()
            self._alert(transitions)
        else:
            view = self._queue_view()
            if view is not None:
                view.rows_changed(out)  # a moved row or a new countdown: only changed cells
        self._update_summary(now, out)
        if out:
            display_cells(self, out)
        detail_screen = _loaded("detail", "DetailScreen")
        if detail_screen is not None:
            for s in self.screen_stack:
                if isinstance(s, detail_screen):
                    s.tick(now)

    def _freeze_heap(self) -> None:
        """Once, at the first tick: leave what start-up built out of full collections.

        Each tick's strips live a second, long enough to reach the oldest garbage
        collector generation, so every minute or so a full collection walked every
        object start-up made (all the open incidents): 40 ms at 10,000 open, a fifth
        of an idle minute's CPU. Frozen objects are still freed by reference counting;
        only cycles among them are never collected (start-up's were, just before).
        """
        self._heap_frozen = True
        freeze_heap()

    def _queue_view(self) -> QueueView | None:
        if not self.screen_stack:
            return None
        screen = self.screen_stack[0]
        if not isinstance(screen, QueueScreen):
            return None
        if screen.view is None:
            found = screen.query(QueueView)
            screen.view = found.first() if found else None
        return screen.view

    def _rows_changed(self) -> None:
        view = self._queue_view()
        if view is not None:
            view.rows_changed()
        self._update_summary(self.clock.now())
        self._follow_keys()

    def _update_summary(self, now: datetime, out: list[str] | None = None) -> None:
        if not self.screen_stack or not isinstance(self.screen_stack[0], QueueScreen):
            return
        screen = self.screen_stack[0]
        if screen.summary is None:
            found = screen.query("#summary")
            if not found:
                return
            screen.summary = found.first(SummaryLine)
        summary = screen.summary
        summary.show(summary_text(self.queue, self.policy, now, summary.size.width or 80,
                                  summary.risk_styles()), out)

    def _arrivals(self, changed: list[QueueItem], now: datetime) -> list[tuple[QueueItem, str]]:
        """The new incidents among `changed` whose severity their policy announces
        (P0, P1), with their risk as they arrive."""
        found = []
        for item in changed:
            if item.id <= self.queue.max_id or item.state not in ACTIVE_STATES:
                continue  # known already (or back from closed): not an arrival
            if item.severity in self.reader.policy(item.policy_id).notifications.announce:
                found.append((item, item.at(to_us(now))[0]))
        return found

    def _alert(self, transitions: list[Transition],
               arrivals: list[tuple[QueueItem, str]] | None = None,
               changed: Iterable[int] = ()) -> None:
        """New P0/P1 incidents, or incidents crossed into due or breached: a toast each,
        the bell once for them all (an arrival already breached rings once), and the
        notices recorded once, whichever process sees them first."""
        arrivals = arrivals or []
        for item, risk in arrivals[:5]:
            late = f", already {risk}" if risk in ("due", "breached") else ""
            self.notify(f"{item.ref} {one_line(item.title, 40)} — {item.severity} arrived at "
                        f"{item.level}{late}", severity="error", title=f"NEW {item.severity}",
                        markup=False)
        for t in transitions[:5]:
            self.notify(transition_text(t),
                        severity="error" if t.after == "breached" else "warning",
                        title=t.after.upper(), markup=False)
        more = max(0, len(arrivals) - 5) + max(0, len(transitions) - 5)
        if more:
            self.notify(f"and {more} more", markup=False)
        if (arrivals or transitions) and self.ring_bell:
            self.bell()
        ids = list(dict.fromkeys([*(t.incident.id for t in transitions), *changed]))
        if ids:
            self.record_notices(ids[:NOTICE_LIMIT])

    # -- re-pages: paged again while nobody acknowledges, with or without `sladeck watch`

    def _note_repages(self, items: Iterable[QueueItem], now: datetime) -> None:
        """Keep when each row still unacknowledged at its level is next paged again
        (an instant each, not the row); entries a later change made stale do nothing."""
        stamp, settings = to_us(now), {}
        for item in items:
            if item.ack_at is None or not item.active:
                continue
            found = settings.get(item.policy_id)
            if found is None:
                found = settings[item.policy_id] = self.reader.policy(
                    item.policy_id).notifications
            at = next_repage_us(item.ack_at, found, stamp)
            if at is not None:
                heapq.heappush(self._repages, at * ID_LIMIT + item.id)

    def _repage(self, now: datetime) -> None:
        """Record the re-pages that fell due (once, whoever sees them first), then wait
        for each row's next one."""
        stamp, due = to_us(now), {}
        while self._repages and self._repages[0] // ID_LIMIT <= stamp:
            due[heapq.heappop(self._repages) % ID_LIMIT] = None
        ids = list(due)
        for later in ids[NOTICE_LIMIT:]:  # more at once (a clock jump): the next second
            heapq.heappush(self._repages, (stamp + 1_000_000) * ID_LIMIT + later)
        self.record_notices(ids[:NOTICE_LIMIT], repages=True)

    @work(thread=True, exit_on_error=False, group="notices")
    def record_notices(self, incident_ids: list[int], repages: bool = False) -> None:
        """Record the notices; then run this process's own notification command (never
        one from a policy stored in the database: SPEC §6), failures on the timeline.
        `repages`: then wait for each incident's next re-page."""
        with self.write_lock:
            from sladeck.domain.actions import record_notices

            try:
                incidents = [i for i in map(self.writer.incident, incident_ids) if i is not None]
                recorded = record_notices(self.desk, incidents)
                if repages:
                    items = self.writer.queue_items_by_id(incident_ids)
                    self.call_from_thread(self._note_repages, items, self.clock.now())
            except SladeckError as exc:  # the file is gone or replaced: said once already
                log.warning("notices not recorded: %s", exc)
                return
        if not self.run_hooks or not recorded:
            return
        from sladeck.hooks import deliver_notices

        deliver_notices(self.desk, recorded, self.policy.notifications,
                        policy_file=self.policy_file, lock=self.write_lock)

    # -- the current incident and what applies to it ---------------------------

    def current_incident(self, screen: Screen[Any] | None = None
                         ) -> Incident | QueueItem | None:
        """The incident the keys act on: the detail shown, or the queue's selection (as
        the queue keeps it: enough to say which keys apply)."""
        screen = screen or self.screen
        if _is(screen, "detail", "DetailScreen"):
            return screen.incident  # type: ignore[attr-defined,no-any-return]
        if isinstance(screen, QueueScreen):
            view = self._queue_view()
            row = view.selected_row if view else None
            return row.incident if row else None
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "search" and isinstance(self.screen, QueueScreen) \
                and isinstance(self.focused, Input):
            return False  # a "/" typed into the filter's own text
        return self._applies(action, self.screen)

    def _applies(self, action: str, screen: Screen[Any]) -> bool | None:
        """True if `action` applies on `screen`; None shows its key dimmed (and pressing
        it says why, see `run_action`)."""
        entry = ACTIONS.get(action)
        if entry is None or not entry.needs_incident:
            return True
        if isinstance(screen, ModalScreen):
            return False
        incident = self.current_incident(screen)
        if incident is None:
            return None  # shown dimmed: nothing selected
        return True if entry.is_available(incident, self.reader.policy(incident.policy_id)) \
            else None

    def _why_not(self, action: str) -> str | None:
        """One line saying why the key of `action` does nothing here; None if it acts
        (or is not one of the registry's, or a form covers it)."""
        entry = ACTIONS.get(action)
        if entry is None or not entry.needs_incident or isinstance(self.screen, ModalScreen):
            return None
        incident = self.current_incident()
        if incident is None:
            return "Select an incident first"
        return entry.why_not(incident, self.reader.policy(incident.policy_id))

    def _follow_keys(self) -> None:
        """Re-check the footer's keys when what applies changed: the screen, or the
        actions that apply to the current incident (re-checking recomposes the footer,
        so a cursor moving between rows alike costs nothing)."""
        incident = self.current_incident()
        if incident is None:
            applies: frozenset[str] | None = None
        else:
            policy = self.reader.policy(incident.policy_id)
            applies = frozenset(a.name for a in ACTIONS.values() if a.is_available(incident,
                                                                                   policy))
        keys = (id(self.screen), applies)
        if keys != self._keys_for:
            first = self._keys_for is None
            self._keys_for = keys
            if not first:  # the footer's first compose checks them anyway
                self.refresh_bindings()

    def on_queue_view_selected(self, event: QueueView.Selected) -> None:
        """The highlighted row changed: the footer follows it."""
        self._follow_keys()

    # -- actions: keys, palette and forms all end here --------------------------

    def _incident_and_policy(self) -> tuple[Incident, Policy, int] | None:
        """The whole incident the keys act on, as stored now, and the version the person
        saw (acting on it is refused with what changed if someone changed it since)."""
        current = self.current_incident()
        incident = current if isinstance(current, Incident) or current is None \
            else self.reader.incident(current.id)
        if incident is None or current is None:
            self.notify("Select an incident first", severity="warning")
            return None
        return incident, self.reader.policy(incident.policy_id), current.version

    def _open_form(self, make: Callable[[Incident, Policy], ActionForm]) -> None:
        """The form `make` builds for the current incident, aimed at the version seen."""
        found = self._incident_and_policy()
        if found:
            incident, policy, seen_version = found
            form = make(incident, policy)
            form.expected_version = seen_version
            self.push_screen(form)

    def action_acknowledge(self) -> None:
        found = self._incident_and_policy()
        if found:
            from sladeck.tui.requests import AcknowledgeRequest

            self.perform(AcknowledgeRequest(found[0].id, expected_version=found[2]))

    def action_escalate(self) -> None:
        from sladeck.tui.forms import EscalateForm

        self._open_form(lambda incident, policy: EscalateForm(
            incident, policy, self.clock.now(), clock=self.clock))

    def action_resolve(self) -> None:
        from sladeck.tui.forms import ResolveForm

        self._open_form(lambda incident, policy: ResolveForm(incident, policy, self.clock.now()))

    def action_review(self) -> None:
        from sladeck.tui.forms import ReviewForm

        self._open_form(lambda incident, policy: ReviewForm(incident, policy, self.clock.now()))

    def action_comment(self) -> None:
        from sladeck.tui.forms import NoteForm

        self._open_form(NoteForm)

    def action_severity(self) -> None:
        from sladeck.tui.forms import SeverityForm

        self._open_form(SeverityForm)

    def action_assign(self) -> None:
        from sladeck.tui.forms import AssignForm

        self._open_form(lambda incident, _: AssignForm(incident,
                                                      self.actor.name or self.actor.account))

    def action_reopen(self) -> None:
        from sladeck.tui.closed import ReopenForm

        self._open_form(ReopenForm)

    def action_follow_up(self) -> None:
        from sladeck.tui.followups import FollowUpForm

        self._open_form(lambda incident, policy: FollowUpForm(incident, policy, self.me_name))

    def action_follow_ups(self) -> None:
        from sladeck.tui.followups import FollowUpsScreen

        if not isinstance(self.screen, FollowUpsScreen):
            self.push_screen(FollowUpsScreen())

    def action_finished(self) -> None:
        from sladeck.tui.closed import ClosedScreen

        if not isinstance(self.screen, ClosedScreen):
            self.push_screen(ClosedScreen())

    @property
    def me_name(self) -> str:
        """The name this person goes by: `--as`, or else the account."""
        return self.actor.name or self.actor.account

    def action_new(self) -> None:
        from sladeck.tui.forms import NewIncidentForm

        self.push_screen(NewIncidentForm(None, self.policy))

    def action_details(self) -> None:
        incident = self.current_incident()
        if incident is None:
            return
        detail = self.reader.detail(incident.id)
        if detail is not None:
            from sladeck.tui.detail import DetailScreen

            self.push_screen(DetailScreen(detail, self.reader.policy(incident.policy_id)))

    async def action_search(self) -> None:
        screen = self.screen
        if not isinstance(screen, QueueScreen):
            return
        found = screen.query("#search")
        if found:
            search = found.first()
        else:  # mounted when first wanted: a start need not style an unused field
            search = Input(placeholder="Filter: text in id, title, service, assignee — "
                                       "enter keeps, esc clears", id="search")
            await screen.mount(search, before=screen.query_one(Footer))
        search.display = True
        # Focus now, not after this message (as `focus()` would): the keys queued behind
        # "/" (a burst from a laggy link) are handed to the field, never to the queue.
        screen.set_focus(search)
        self.queue.prepare_search()  # between this key and the first typed one

    def action_clear_search(self) -> None:
        search = self.screen.query("#search")
        if search:
            field = search.first(Input)
            field.value = ""
            field.display = False
            self._apply_filter(Filter(**{**self.queue.filter.__dict__, "text": ""}))
            view = self._queue_view()
            if view is not None:
                view.focus()

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        if event.value != event.input.value:
            return  # keys typed since (a burst): filter once, by the change of the last
        self._apply_filter(Filter(**{**self.queue.filter.__dict__, "text": event.value.strip()}))

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        view = self._queue_view()
        if view is not None:
            view.focus()
        if not event.value:
            event.input.display = False

    def action_filter(self) -> None:
        from sladeck.tui.forms import FilterForm

        def chosen(result: Filter | None) -> None:
            if result is not None:
                self._apply_filter(result)
        self.push_screen(FilterForm(self.queue.filter, self.policy), chosen)

    def action_mine(self) -> None:
        f = self.queue.filter
        self._apply_filter(Filter(**{**f.__dict__, "mine": not f.mine}))
        self.notify("Showing only incidents assigned to me" if not f.mine
                    else "Showing everyone's incidents", markup=False)

    def _apply_filter(self, new: Filter) -> None:
        self.queue.set_filter(new)
        self._rows_changed()

    def action_help(self) -> None:
        from sladeck.tui.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.policy))

    def action_reports(self) -> None:
        """The reports screen (tui/reports.py, imported only now)."""
        from sladeck.tui.reports import ReportsScreen

        if not isinstance(self.screen, ReportsScreen):
            self.push_screen(ReportsScreen())

    def action_digest(self) -> None:
        from sladeck.tui.reports import DigestScreen

        if not isinstance(self.screen, DigestScreen):
            self.push_screen(DigestScreen())

    def on_action_requested(self, event: ActionRequested) -> None:
        """A form (or the detail screen's checklist) asks for an action."""
        self.perform(event.request, event.form)

    @work(thread=True, exit_on_error=False, group="actions")
    def perform(self, request: Request, form: Screen[Any] | None = None) -> None:
        """Run one action off the event loop; answer `form` (or tell) on the main thread."""
        try:
            with self.write_lock:
                outcome = request.run(self.desk)
        except MissingFields as exc:
            self.call_from_thread(self._refused, str(exc), form, exc.missing)
        except Conflict as exc:
            self.call_from_thread(self._conflicted, str(exc), form)
        except SladeckError as exc:
            self.call_from_thread(self._refused, str(exc), form, None)
        else:
            self.call_from_thread(self._performed, outcome, form)

    def _refused(self, message: str, form: Screen[Any] | None, missing: list[str] | None,
                 newer: Incident | None = None) -> None:
        if form is not None and form.is_attached:
            form.post_message(ActionRefused(message, missing, newer))
        else:
            self.notify(visible(message), severity="error", markup=False)

    def _conflicted(self, message: str, form: Screen[Any] | None) -> None:
        """Someone else changed the incident: show the newer state and say what changed.

        A form stays open with everything typed, now aimed at the incident as it is,
        so a second submit is a decision taken knowing the change.
        """
        self.refresh_from_store()
        newer = None
        incident = getattr(form, "incident", None)
        if form is not None and form.is_attached and isinstance(incident, Incident):
            newer = self.reader.incident(incident.id)
            if newer is not None:
                message += " (submit again to act on it as it is now, or esc to leave)"
        self._refused(message, form, None, newer)

    def _performed(self, outcome: Outcome, form: Screen[Any] | None) -> None:
        if form is not None and form.is_attached:
            form.dismiss(outcome)
        self.notify(visible(outcome.message), markup=False,
                    severity="information" if outcome.changed else "warning")
        self.refresh_from_store()
        if outcome.incident.state != "closed":
            view = self._queue_view()
            if view is not None and isinstance(self.screen_stack[-1], QueueScreen) \
                    and outcome.event is not None and outcome.event.kind == "opened":
                view.select_id(outcome.incident.id)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            log.error("worker %s failed", event.worker.name, exc_info=error)
            where = f" (details in {self.log_file})" if self.log_file else ""
            self.notify(f"Unexpected {type(error).__name__}: {error}{where}"[:300],
                        severity="error", markup=False, timeout=10)

    # -- the command palette -----------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            yield command._replace(callback=self._contained(command.callback))
        for entry in ACTIONS.values():
            if self._applies(entry.name, screen) is True:  # `screen` is under the palette
                yield SystemCommand(f"{entry.label} ({entry.key})", entry.tooltip or entry.label,
                                    self._contained(getattr(self, f"action_{entry.name}")))

    def action_command_palette(self) -> None:
        """Textual's palette, with its page keys guarded (palette.py)."""
        if self.use_command_palette and not CommandPalette.is_open(self):
            self.push_screen(CommandPalette(id="--command-palette"))

    def search_themes(self) -> None:
        """The palette of themes, guarded as the command palette is."""
        from textual.theme import ThemeProvider

        self.push_screen(CommandPalette(providers=[ThemeProvider],
                                        placeholder="Search for themes…"))

    # -- never a traceback -------------------------------------------------------

    async def run_action(self, action: str | ActionParseResult,
                         default_namespace: DOMNode | None = None,
                         namespaces: Mapping[str, DOMNode] | None = None) -> bool:
        """Every key binding (of any screen or widget) and every click on an action
        ends here: an action that fails is logged and told in one line, and the
        dashboard goes on (Textual would end the app). A key that does not apply here
        (dimmed in the footer) says why in one line instead of doing nothing."""
        try:
            if isinstance(action, str) and action.startswith("app."):
                why = self._why_not(action[4:])
                if why is not None:
                    self.notify(visible(why), severity="warning", markup=False)
                    return True
            return await super().run_action(action, default_namespace, namespaces)
        except Exception as error:
            self.unexpected(error)
            return True

    def _contained(self, callback: Callable[[], Any]) -> Callable[[], Any]:
        """`callback` (a palette command, which Textual calls directly), with a failure
        told as `run_action` tells it."""
        async def run() -> None:
            try:
                result = callback()
                if inspect.isawaitable(result):
                    await result
            except Exception as error:
                self.unexpected(error)
        return run

    def unexpected(self, error: BaseException) -> None:
        """Log `error` with its traceback and show it as one line."""
        log.error("unexpected error", exc_info=error)
        where = f" (details in {self.log_file})" if self.log_file else ""
        self.notify(visible(f"Unexpected {type(error).__name__}: {error}{where}")[:300],
                    severity="error", markup=False, timeout=10)

    def _fatal_error(self) -> None:
        error = self._exception
        log.error("unexpected error", exc_info=error)
        where = f" (details in {self.log_file})" if self.log_file else ""
        self.bell()
        self._exit_renderables.append(Text(
            f"sladeck: error: unexpected {type(error).__name__}: {error}{where}"))
        self._close_messages_no_wait()

    def on_unmount(self) -> None:
        self.closing = True  # a poll or tick already scheduled now returns at once
        if self.live is not None:
            self.live.stop()
        self.reader.close()
        with self.write_lock:
            if self._desk is not None:
                self._desk.store.close()


def run_dashboard(store: Store, policy: Policy, actor: Actor, *, db_path: Path,
                  log_file: Path, policy_file: Path | None = None, board: bool = False) -> None:
    """Open the dashboard on `db_path`, reading through the CLI's store (`board`: the
    read-only stand-up board, board.py)."""
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        logging.basicConfig(filename=log_file, level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s %(message)s")
    except OSError:
        pass
    kind: type[SladeckApp] = SladeckApp
    if board:
        from sladeck.tui.board import BoardApp

        kind = BoardApp
    app = kind(db_path, policy, actor, log_file=log_file, reader=store, policy_file=policy_file)
    app.run()
    if app.return_code:
        raise SystemExit(app.return_code)
