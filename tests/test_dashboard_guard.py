"""The dashboard never dies of a key and never spins: a failing action is logged and told
in one line, Textual's palette survives a burst of keys, and a terminal the dashboard
cannot drive is refused before anything starts (SPEC §9)."""

from __future__ import annotations

import gc
import os
import sqlite3
import sys
import threading
from pathlib import Path

import pytest
from textual import events
from textual.command import CommandPalette

from conftest import ME, T0, sync
from sladeck.clock import FixedClock
from sladeck.policy import Policy
from sladeck.tui.app import QueueScreen, SladeckApp
from test_hostile import env_for, one_error_line, run_on_pty


@pytest.fixture(autouse=True)
def _still() -> None:
    os.environ["TEXTUAL_ANIMATIONS"] = "none"


def make_app(db: Path, policy: Policy, **kwargs: object) -> SladeckApp:
    return SladeckApp(db, policy, ME, clock=FixedClock(T0), poll_interval=None,
                      tick_interval=None, bell=False, run_hooks=False, cursor_blink=False,
                      **kwargs)  # type: ignore[arg-type]


def burst(app: SladeckApp, *keys: str) -> None:
    """Keys as a terminal delivers them in one read: all queued before any is handled
    (Pilot.press lets the app settle between keys)."""
    assert app._driver is not None
    for key in keys:
        event = events.Key(key, None)
        event.set_sender(app)
        app._driver.send_message(event)


def messages(app: SladeckApp) -> list[str]:
    return [n.message for n in app._notifications]


# -- the command palette ---------------------------------------------------------------


@pytest.mark.parametrize("page", ["pagedown", "pageup"])
@sync
async def test_ctrl_p_then_a_page_key_in_one_burst_keeps_the_dashboard(
        demo_db: Path, policy: Policy, page: str) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        burst(app, "ctrl+p", page)
        await pilot.pause(0.3)
        assert app.is_running and app._exception is None
        assert isinstance(app.screen, CommandPalette)
        assert not any("Unexpected" in m for m in messages(app))  # nothing went wrong
        await pilot.press(page)  # once drawn, the page key pages as Textual's does
        await pilot.press("escape")
        assert isinstance(app.screen, QueueScreen)
        await pilot.press("q")
    assert app.return_code == 0


# -- any action that fails ---------------------------------------------------------------


def failing_read(*_args: object) -> None:
    raise sqlite3.OperationalError("disk I/O error")


@sync
async def test_a_key_whose_action_fails_is_logged_told_in_one_line_and_the_app_goes_on(
        demo_db: Path, policy: Policy, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    log_file = tmp_path / "sladeck.log"
    app = make_app(demo_db, policy, log_file=log_file)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.reader.detail = failing_read  # type: ignore[method-assign]
        await pilot.press("enter")  # the details of the selected row: the read fails
        await pilot.pause()
        assert app.is_running and app._exception is None
        told = [m for m in messages(app) if "OperationalError" in m]
        assert told == [f"Unexpected OperationalError: disk I/O error (details in {log_file})"]
        assert "\n" not in told[0]
        assert any(r.exc_info and "disk I/O error" in str(r.exc_info[1])
                   for r in caplog.records)  # the traceback is in the log
        await pilot.press("m")  # the dashboard still answers keys
        assert any("assigned to me" in m for m in messages(app))
        await pilot.press("q")
    assert app.return_code == 0


@sync
async def test_a_palette_command_that_fails_is_told_and_the_app_goes_on(
        demo_db: Path, policy: Policy) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        app.reader.detail = failing_read  # type: ignore[method-assign]
        await pilot.press("ctrl+p")
        await pilot.press(*"Details (enter)")
        await pilot.pause(0.5)  # the palette gathers commands in the background
        await pilot.press("down", "enter")
        await pilot.pause(0.2)
        assert app.is_running and app._exception is None
        assert any(m.startswith("Unexpected OperationalError: disk I/O error")
                   for m in messages(app))
        await pilot.press("q")
    assert app.return_code == 0


@sync
async def test_a_failure_message_with_newlines_and_escapes_stays_one_plain_line(
        demo_db: Path, policy: Policy) -> None:
    app = make_app(demo_db, policy)

    def hostile(*_args: object) -> None:
        raise ValueError("two\nlines \x1b]2;PWNED\x07 [b]markup[/b]")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.reader.detail = hostile  # type: ignore[method-assign]
        await pilot.press("enter")
        await pilot.pause()
        told = [m for m in messages(app) if "ValueError" in m]
        assert told == ["Unexpected ValueError: two\\x0alines \\x1b]2;PWNED\\x07 [b]markup[/b]"]
        await pilot.press("q")
    assert app.return_code == 0


# -- terminals the dashboard cannot drive ------------------------------------------------


def refused_quickly(tmp_path: Path, env: dict[str, str], **size: int) -> str:
    db = Path(env["SLADECK_DB"])
    out, _alive, status = run_on_pty(env, [(b"", 5.0)], **size)
    assert status == 1  # on its own, within seconds (None: it had to be killed)
    line = one_error_line(out.decode("utf-8", "replace").replace("\r", "").strip())
    assert "sladeck list" in line and "sladeck show" in line
    assert not db.exists()  # nothing written, not even an empty database
    return line


@pytest.mark.parametrize("term", ["dumb", "unknown"])
def test_a_dumb_terminal_is_refused_with_one_line_pointing_to_the_cli(
        tmp_path: Path, term: str) -> None:
    env = env_for(tmp_path, tmp_path / "d.db")
    env["TERM"] = term
    assert f"TERM={term}" in refused_quickly(tmp_path, env)


@pytest.mark.parametrize(("cols", "rows"), [(0, 0), (0, 24), (80, 0)])
def test_a_terminal_of_no_size_is_refused_with_one_line_pointing_to_the_cli(
        tmp_path: Path, cols: int, rows: int) -> None:
    env = env_for(tmp_path, tmp_path / "d.db")
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    line = refused_quickly(tmp_path, env, cols=cols, rows=rows)
    assert f"{cols}x{rows}" in line


def test_output_that_is_not_a_terminal_is_refused(tmp_path: Path) -> None:
    """`sladeck | cat`: Textual would size the screen from two sources that disagree."""
    import subprocess

    from test_hostile import SLADECK

    env = env_for(tmp_path, tmp_path / "d.db")
    done = subprocess.run([str(SLADECK)], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=30)
    assert done.returncode == 1
    line = one_error_line(done.stderr)
    assert "not a terminal" in line and "sladeck list" in line
    assert not (tmp_path / "d.db").exists()


# -- the cycle collector ---------------------------------------------------------------


def test_the_collector_comes_back_even_if_the_first_frame_never_comes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """launch.py turns the collector off until the first frame; a dashboard whose first
    frame never settles gets it back after a grace period anyway."""
    import sladeck.session
    import sladeck.tui.app
    from sladeck import launch

    monkeypatch.setattr(sladeck.session, "COLLECTOR_GRACE", 0.0)
    monkeypatch.setattr(sladeck.session, "terminal_problem", lambda: None)  # as on a tty
    back = threading.Event()

    def stuck(*_args: object, **_kwargs: object) -> None:  # never reaches a first frame
        for _ in range(3000):
            if gc.isenabled():
                back.set()
                return
            threading.Event().wait(0.01)

    monkeypatch.setattr(sladeck.tui.app, "run_dashboard", stuck)
    monkeypatch.setattr(sys, "argv", ["sladeck", "--db", str(tmp_path / "x.db")])
    try:
        with pytest.raises(SystemExit):
            launch.main()
    finally:
        gc.enable()
    assert back.is_set()


def test_a_dashboard_that_never_hears_sighup_ends_when_its_terminal_hangs_up(
        demo_db: Path, tmp_path: Path) -> None:
    """Under `su` the dashboard is not the session leader and no SIGHUP reaches it when
    its tmux pane dies; it must notice the hang-up itself, not spin on end-of-file."""
    import fcntl
    import pty
    import signal
    import struct
    import termios
    import time

    from test_hostile import SLADECK

    env = env_for(tmp_path, demo_db)
    pid, fd = pty.fork()
    if pid == 0:  # as under su: a session leader that ignores the hang-up runs sladeck
        try:
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
            child = os.fork()
            if child == 0:
                signal.signal(signal.SIGHUP, signal.SIG_DFL)  # it would die of one, if sent
                os.execve(str(SLADECK), [str(SLADECK)], env)
            os._exit(os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) & 0xFF)
        finally:
            os._exit(127)
    done = 0
    try:
        seen = bytearray()
        end = time.monotonic() + 30
        while b"INC-" not in seen and time.monotonic() < end:  # the first frame
            try:
                seen.extend(os.read(fd, 65536))
            except OSError:
                break
        assert b"INC-" in seen
        os.close(fd)  # the terminal goes away
        end = time.monotonic() + 10
        while time.monotonic() < end and not done:
            done, _status = os.waitpid(pid, os.WNOHANG)
            time.sleep(0.1)
        assert done, "the dashboard went on running on a terminal that hung up"
    finally:
        if not done:  # the whole session: the spinning dashboard too
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
