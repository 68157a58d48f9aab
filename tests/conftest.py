"""Shared fixtures: a fixed clock, the shipped policy, a temporary database, a desk, and
the dashboard helpers (an app on the fixed clock, the demo database, the screen as drawn)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from sladeck.cli import main as cli_main
from sladeck.clock import FixedClock
from sladeck.demo import fill_demo
from sladeck.domain.actions import Desk
from sladeck.domain.model import Actor
from sladeck.policy import Policy, load_policy
from sladeck.store import Store, open_store
from sladeck.tui.app import SladeckApp
from sladeck.tui.queue import QueueView

# Thursday 2026-11-26 15:00 UTC = 10:00 in New York: inside the policy's business hours.
T0 = datetime(2026, 11, 26, 15, 0, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parent.parent
# A notification command must be a file nobody but its owner or root can change, in
# folders likewise (SPEC §6): the checkout's `.venv/bin/python` may sit in a folder such
# as a `mktemp -d` under /tmp, so hooks in tests run the real interpreter behind it.
HOOK_PYTHON = os.path.realpath(sys.executable)

os.environ.setdefault("TZ", "UTC")
# The parsed-policy cache (and anything else platformdirs places) stays out of the
# home of whoever runs the tests; subprocesses inherit it.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="sladeck-tests-cache-")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy(REPO / "policy.yaml")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "sladeck.db"


# -- the backend: SQLite everywhere; a module parametrises `backend` to run on both ----

BACKENDS = ("sqlite", "postgres")
_cluster: Any = None  # the tests' PostgreSQL cluster (tests/pg.py), started on first use


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL cluster for the session (skipped, or failed under CI, when
    it cannot start)."""
    global _cluster
    from pg import PgCluster, unavailable

    if _cluster is None:
        cluster = PgCluster()
        try:
            cluster.start()
        except Exception as exc:
            cluster.stop()
            unavailable(str(exc))
        _cluster = cluster
    yield _cluster


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _cluster is not None:
        _cluster.stop()


@pytest.fixture
def backend() -> str:
    """Which store the test's `db_url` and `store` use; a module sets `pytestmark =
    both_backends` to run its tests on each (SQLite-only tests mark `sqlite_only`)."""
    return "sqlite"


@pytest.fixture
def db_url(backend: str, db_path: Path, request: pytest.FixtureRequest):
    """What `--db` names: the SQLite file's path, or a fresh PostgreSQL database's URL."""
    if backend == "sqlite":
        yield str(db_path)
        return
    cluster = request.getfixturevalue("pg_cluster")
    name = cluster.fresh_database()
    yield cluster.url(name)
    cluster.drop(name)


@pytest.fixture
def store(db_url: str):
    s = open_store(db_url)
    yield s
    s.close()


def transaction_class(store: Any) -> type:
    """The class of `store`'s write transactions (for a test that breaks one on purpose)."""
    if type(store).__name__ == "PgStore":
        from sladeck.store.postgres import PgTransaction

        return PgTransaction
    from sladeck.store import Transaction

    return Transaction


def in_transaction(store: Any) -> bool:
    """Whether `store`'s connection has a transaction open (on either backend)."""
    info = getattr(store.conn, "info", None)
    if info is not None and hasattr(info, "transaction_status"):
        from psycopg.pq import TransactionStatus

        return info.transaction_status != TransactionStatus.IDLE
    return store.conn.in_transaction


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`backend` over both stores for a test marked `both_backends` (SQLite only for one
    also marked `sqlite_only`)."""
    if "backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
            "both_backends"):
        only = metafunc.definition.get_closest_marker("sqlite_only")
        metafunc.parametrize("backend", ["sqlite"] if only else list(BACKENDS), indirect=False)


@pytest.fixture
def desk(store: Store, policy: Policy, clock: FixedClock) -> Desk:
    return Desk(store, policy, clock, Actor("tester", "Tess"))


@pytest.fixture
def make_desk(store: Store, policy: Policy, clock: FixedClock):
    """A desk for another person on the same database and clock."""
    def make(name: str) -> Desk:
        return Desk(store, policy, clock, Actor(name))
    return make


def call_cli(*argv: str) -> tuple[int, str, str]:
    """`sladeck.cli.main(argv)` in this process: (exit status, stdout, stderr), never a traceback."""
    out, err = io.StringIO(), io.StringIO()
    code: Any = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli_main(list(argv))
        except SystemExit as exc:
            code = exc.code
    assert "Traceback" not in err.getvalue()
    return (0 if code is None else code), out.getvalue(), err.getvalue()


_AT = """
import sys
from datetime import datetime
import sladeck.clock
at = datetime.fromisoformat(sys.argv[1])
sladeck.clock.SystemClock.now = lambda self: at
from sladeck.cli import main
main(sys.argv[2:])
"""


def cli_at(when: datetime, db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`sladeck ARGS` in a process of its own (another host) whose clock reads `when`:
    commands at exact instants (the CLI has no option to fake its clock, on purpose)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLADECK_")}
    env |= {"SLADECK_DB": str(db), "TZ": "UTC"}
    return subprocess.run([sys.executable, "-c", _AT, when.isoformat(), *args],
                          capture_output=True, text=True, env=env, timeout=60)


# -- the dashboard: a real app on a fixed clock, with no poll, tick timer or hooks ------

ME = Actor("tester", "Tess")


def sync(test: Callable[..., Coroutine[None, None, None]]) -> Callable[..., None]:
    """Run an async test on its own event loop (no asyncio plugin needed)."""
    @functools.wraps(test)
    def run(*args: object, **kwargs: object) -> None:
        asyncio.run(test(*args, **kwargs))
    return run


@pytest.fixture
def utc_and_still() -> None:
    """UTC and no animations, for the dashboard's tests (`usefixtures`)."""
    os.environ["TZ"] = "UTC"
    time.tzset()
    os.environ["TEXTUAL_ANIMATIONS"] = "none"


class BellApp(SladeckApp):
    """The real app, counting the bells it rings."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.bells = 0
        self.animation_level = "none"

    def bell(self) -> None:
        self.bells += 1


def make_app(db_path: Path, policy: Policy, clock: FixedClock | None = None,
             **kwargs: object) -> BellApp:
    options: dict[str, object] = {"clock": clock or FixedClock(T0), "poll_interval": None,
                                  "tick_interval": None, "bell": True, "run_hooks": False,
                                  "cursor_blink": False}
    options.update(kwargs)
    return BellApp(db_path, policy, ME, **options)


@pytest.fixture
def demo_db(db_path: Path, policy: Policy) -> Path:
    store = Store(db_path)
    fill_demo(store, policy, ME, T0)
    store.close()
    return db_path


@pytest.fixture
def other(db_path: Path, policy: Policy):
    """A second connection: another person's Store and Desk on the same file."""
    store = Store(db_path)
    clock = FixedClock(T0)
    yield Desk(store, policy, clock, Actor("alice"))
    store.close()


@pytest.fixture
def reader(db_path: Path):
    store = Store(db_path)
    yield store
    store.close()


async def settle(pilot: Pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def view(app: SladeckApp) -> QueueView:
    return app.screen_stack[0].query_one(QueueView)


async def select(pilot: Pilot, incident_id: int) -> None:
    view(pilot.app).select_id(incident_id)  # type: ignore[arg-type]
    await pilot.pause()
    assert view(pilot.app).selected_id == incident_id  # type: ignore[arg-type]


def first_with(app: SladeckApp, state: str) -> int:
    return next(r.incident.id for r in app.queue.visible if r.incident.state == state)


def kinds(store: Store, incident_id: int) -> list[str]:
    return [e.kind for e in store.events(incident_id)]


def screen_lines(app: SladeckApp) -> list[str]:
    return ["".join(seg.text for seg in strip)
            for strip in app.screen._compositor.render_strips()]


def error_text(app: SladeckApp) -> str:
    return str(app.screen.query_one("#form-error", Static).content)


def record_writes(app: SladeckApp) -> list[str]:
    """Record the terminal data of every screen update from now on (a headless app
    writes none: this is what it would write)."""
    from textual._compositor import CompositorUpdate

    written: list[str] = []
    display = app._display

    def recording(screen, renderable):  # type: ignore[no-untyped-def]
        if isinstance(renderable, CompositorUpdate):
            written.append(renderable.render_segments(app.console))
        return display(screen, renderable)
    app._display = recording  # type: ignore[method-assign]
    return written


async def quiet(pilot: Pilot) -> None:
    """Let start-up's last repaints (the rest of the rows, the scroll bar) go out, and
    what waits for them (`call_after_refresh`: the first frame's `_drawn`, the summary
    after a resize) run."""
    app = pilot.app
    for _ in range(50):
        await settle(pilot)
        screen = app.screen
        pumps = [app, screen, *screen.walk_children()]
        if not (screen._dirty_widgets or screen._compositor._dirty_regions
                or screen._layout_required or screen._repaint_required
                or any(w._repaint_required for w in screen._compositor.visible_widgets)
                or any(p._next_callbacks or not p._message_queue.empty() for p in pumps)):
            return
    raise AssertionError("the screen kept repainting")


def terminal(app: SladeckApp) -> dict[tuple[int, int], tuple[str, str]]:
    """Every cell of the screen, with its SGR codes, as a full repaint writes it."""
    cells: dict[tuple[int, int], tuple[str, str]] = {}
    paint(app.screen._compositor.render_update(full=True).render_segments(app.console),
          cells)
    return cells


def repainted(before: dict[tuple[int, int], tuple[str, str]], written: list[str]
              ) -> tuple[dict[tuple[int, int], tuple[str, str]], set[tuple[int, int]]]:
    """The terminal `before` with `written` painted over it, and the cells written
    ((y, x), 0-based)."""
    cells = dict(before)
    touched: set[tuple[int, int]] = set()
    for data in written:
        paint(data, cells, touched)
    return cells, {(y - 1, x - 1) for y, x in touched}


def more_incidents(app: SladeckApp, count: int, first_id: int = 1000) -> None:
    """`count` copies of the queue's last row, sorted after every demo row (off screen)."""
    import dataclasses

    last = app.queue.visible[-1].incident
    app.queue.merge([dataclasses.replace(last, id=first_id + n) for n in range(count)],
                    app.clock.now())
    app._rows_changed()


def paint(data: str, screen: dict[tuple[int, int], tuple[str, str]],
          touched: set[tuple[int, int]] | None = None) -> int:
    """Apply terminal output (cursor moves, SGR, text) to a cell map; cells written
    (and where, into `touched`)."""
    from rich.cells import cell_len

    y = x = 1  # 1-based, as the terminal counts
    written = 0
    style = ""
    for m in re.finditer(r"\x1b\[(\d+);(\d+)H|\x1b\[([\d;]*)m|\n|([^\x1b\n])", data):
        if m.group(1):
            y, x = int(m.group(1)), int(m.group(2))
        elif m.group(3) is not None:
            style = "" if m.group(3) == "0" else m.group(3)
        elif m.group(4):
            screen[y, x] = (m.group(4), style)
            if touched is not None:
                touched.add((y, x))
            x += cell_len(m.group(4))
            written += 1
    return written


@pytest.fixture
def dashboard(policy: Policy) -> Callable[..., BellApp]:
    """`dashboard(db_path, **options)`: the real app for `tester` (Tess) on the shipped
    policy, a FixedClock at T0, no poll, no tick timer, no hooks, no cursor blink."""
    def make(db_path: Path, **options: object) -> BellApp:
        return make_app(db_path, policy, **options)  # type: ignore[arg-type]
    return make


# -- a second real Unix user running this checkout -------------------------------------


def can_run(user: str, python: str, pythonpath: str) -> bool:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": pythonpath, "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run(
        ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--", python,
         "-c", "import sladeck.cli, textual, yaml"],
        capture_output=True, text=True, env=env, timeout=60, cwd="/", check=False)
    return out.returncode == 0


def reachable_runtime(base: Path, user: str) -> tuple[str, str]:
    """A Python and PYTHONPATH that `user` can run sladeck with.

    This venv, if the user can reach it; else (a checkout in a private `mktemp -d`)
    a copy of sladeck and of the venv's libraries in the test's own shared folder, run
    by the first Python the user can reach. Skipped when there is none (never in CI).
    """
    if can_run(user, sys.executable, ""):
        return sys.executable, ""
    import sysconfig

    import sladeck

    runtime = base / "runtime"
    shutil.copytree(Path(sladeck.__file__).parent, runtime / "src" / "sladeck",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(sysconfig.get_paths()["purelib"], runtime / "site", symlinks=True,
                    ignore=shutil.ignore_patterns("sladeck", "__editable__*", "pip", "_pytest",
                                                  "pytest*", "setuptools*"))
    for path in [runtime, *runtime.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    pythonpath = f"{runtime / 'src'}:{runtime / 'site'}"
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for python in dict.fromkeys([sys.executable, getattr(sys, "_base_executable", ""),
                                 shutil.which(version) or "", f"/usr/bin/{version}",
                                 f"/usr/local/bin/{version}"]):
        if python and can_run(user, python, pythonpath):
            return python, pythonpath
    reason = (f"the test users cannot run {sys.executable} (a checkout in a private folder?) "
              f"and no {version} they can reach runs a copy of sladeck")
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    print(f"SKIPPED: {reason}", file=sys.stderr)
    pytest.skip(reason)
