"""What every command starts from, without click: settings, the session they resolve
into, where files live, and how a failure is told (one line each, and an exit status).

`cli` parses the command line into `Settings`; `launch` does too when the line only
opens the dashboard, so the dashboard's start needs no click.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sladeck.errors import MissingFields, PolicyError, SladeckError
from sladeck.runtime import collector_back_after

ENV_DB, ENV_POLICY, ENV_USER = "SLADECK_DB", "SLADECK_POLICY", "SLADECK_USER"
COLLECTOR_GRACE = 5.0  # seconds the dashboard's start may keep the cycle collector off
_opened: Path | str | None = None  # the database this process opened: named in SQLite's errors


def default_db_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("sladeck")) / "sladeck.db"


def log_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_log_dir("sladeck")) / "sladeck.log"


@dataclass
class Settings:
    """--db, --policy and --as, given on the group or on any sub-command."""

    db: str | None = None
    policy: str | None = None
    name: str | None = None


class Session:
    """What a command works with: settings resolved into a policy, store and desk."""

    def __init__(self, settings: Settings) -> None:
        from sladeck.clock import SystemClock
        from sladeck.identity import current_actor
        from sladeck.policy import load_policy
        from sladeck.store import is_server_url, open_store

        self.policy = load_policy(settings.policy)
        # a file's path, or a PostgreSQL server's URL (kept as given: a Path would mangle it)
        self.db_path: Any = settings.db if is_server_url(settings.db) else \
            Path(settings.db) if settings.db else default_db_path()
        global _opened
        _opened = self.db_path
        self.store = open_store(self.db_path)
        self.store.adopt(self.policy)
        self.clock = SystemClock()
        # On a server the recorded account is the role it authenticated (a login role per
        # person), as the uid is on SQLite; `--as` names a person behind a shared role.
        account = getattr(self.store, "account", None)
        self.actor = current_actor(settings.name, account() if account else None)
        self.policy_file = Path(settings.policy).absolute() if settings.policy else None
        self.acted_from = 0
        self._desk: Any = None

    @property
    def desk(self) -> Any:
        """The actions' entry point (imported when a command acts: the dashboard's
        start-up does not need it)."""
        if self._desk is None:
            from sladeck.domain.actions import Desk

            self.acted_from = self.store.last_seq()  # what a command's notices look after
            self._desk = Desk(self.store, self.policy, self.clock, self.actor)
        return self._desk

    @property
    def acted(self) -> bool:
        """True once the command asked for the desk (it acts, and may have written)."""
        return self._desk is not None

    def policy_of(self, incident: Any) -> Any:
        return self.store.policy(incident.policy_id)


def open_dashboard(settings: Settings, *, board: bool = False) -> None:
    """Open the dashboard (`board`: the read-only stand-up board), or refuse at once
    (nothing opened or created) where it could not be drawn."""
    problem = terminal_problem()
    if problem:
        raise SladeckError(f"{problem}: the dashboard cannot draw here; "
                           "use `sladeck list` and `sladeck show ID` instead")
    # `launch` keeps the collector off until the first frame: should that never settle,
    # it comes back anyway (the first frame takes ~0.4 s at 10,000 open)
    collector_back_after(COLLECTOR_GRACE)
    s = Session(settings)
    from sladeck.policy import default_policy_path
    from sladeck.tui.app import run_dashboard

    # where its own notification command comes from, checked before the command runs
    own = Path(settings.policy).absolute() if settings.policy else default_policy_path()
    run_dashboard(s.store, s.policy, s.actor, db_path=s.db_path, log_file=log_path(),
                  policy_file=own, board=board)


def terminal_problem() -> str | None:
    """Why the dashboard cannot draw on this terminal, or None if it can.

    Textual reads keys from stdin, draws on stderr and takes the screen's size from
    both stdout and stdin (through Rich, which says 80x25 for a dumb terminal and for a
    missing dimension). Where these disagree its first layouts answer each other for
    ever: ~300 repaints a second, memory growing, `q` and ctrl+c unheard.
    """
    term = os.environ.get("TERM", "")
    if term.lower() in ("dumb", "unknown"):
        return f"TERM={term}"
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        if not os.isatty(fd):
            return f"{name} is not a terminal"
    import shutil

    cols, rows = shutil.get_terminal_size((0, 0))  # COLUMNS/LINES first, as Textual's
    if cols <= 0 or rows <= 0:
        return f"the terminal's size is {cols}x{rows}"
    return None


def say_error(message: str) -> None:
    """One line on stderr, with nothing in it that a terminal would act on."""
    from sladeck.text import visible

    with suppress(OSError, ValueError):  # no stderr left to tell
        print(f"sladeck: error: {visible(message)}", file=sys.stderr, flush=True)


def say_warning(message: str) -> None:
    """One warning line on stderr (the command still succeeds)."""
    from sladeck.text import visible

    with suppress(OSError, ValueError):
        print(f"sladeck: warning: {visible(message)}", file=sys.stderr, flush=True)


def failure(exc: BaseException) -> int:
    """Tell a failure that is not the command line's own, one line per problem, and
    return its exit status."""
    if isinstance(exc, PolicyError):
        for problem in exc.problems:
            say_error(problem)
        return 1
    if isinstance(exc, MissingFields):
        say_error(str(exc))
        return 1
    if isinstance(exc, SladeckError):
        # A refused import carries one `FILE:LINE: reason` per bad line: one line each.
        for problem in getattr(exc, "problems", None) or [str(exc)]:
            say_error(problem)
        return 1
    if isinstance(exc, KeyboardInterrupt):
        say_error("interrupted")
        return 130
    if isinstance(exc, BrokenPipeError):
        return 0
    if not isinstance(exc, Exception):
        raise exc  # SystemExit and the like are not failures to tell
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is not None and isinstance(exc, sqlite3.Error):  # a read the store let through
        from sladeck.store import plain_error

        plain = plain_error(exc, _opened or "the database")
        if plain is not None:
            say_error(str(plain))
            return 1
    say_error(f"unexpected {type(exc).__name__}: {exc} (details in {_log_unexpected(exc)})")
    return 1


def _log_unexpected(exc: BaseException) -> str:
    """Write the traceback to the log file; return where it went."""
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        logging.basicConfig(filename=path, level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(message)s")
        logging.getLogger("sladeck").error("unexpected error", exc_info=exc)
        return str(path)
    except OSError:
        return "stderr unavailable"
