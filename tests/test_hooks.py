"""The notification command (SPEC §6): JSON on stdin, no shell, killed at its timeout."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import T0
from sladeck.clock import FixedClock
from sladeck.domain import actions
from sladeck.domain.actions import Desk
from sladeck.domain.model import Actor
from sladeck.hooks import run_hook
from sladeck.policy import Notifications, Policy
from sladeck.store import Store

SHELLY = "$(touch {mark}); `touch {mark}`; id > {mark} | sh -c 'touch {mark}' && echo $HOME"


def settings(*command: str, timeout: float = 5) -> Notifications:
    return Notifications(True, tuple(command), timedelta(seconds=timeout))


def capture_script(tmp_path: Path) -> tuple[list[str], Path]:
    """A hook that copies its stdin and argv into a file."""
    out = tmp_path / "got.json"
    code = ("import json, sys; data = sys.stdin.buffer.read(); "
            f"open({str(out)!r}, 'wb').write(data)")
    return [sys.executable, "-c", code], out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_the_incident_arrives_as_json_on_stdin_and_no_shell_runs(tmp_path: Path) -> None:
    mark = tmp_path / "pwned"
    title = SHELLY.format(mark=mark)
    command, out = capture_script(tmp_path)
    payload = {"event": "sla_due", "incident": {"id": 7, "title": title,
                                                 "service": "\x1b]52;c;ZXZpbA==\x07"}}
    assert run_hook(settings(*command), payload) is None
    assert json.loads(out.read_bytes()) == payload
    assert out.read_bytes().isascii()  # escapes travel as \u001b, never raw
    assert not mark.exists()


def test_shell_metacharacters_in_the_arguments_stay_arguments(tmp_path: Path) -> None:
    mark = tmp_path / "pwned"
    args_file = tmp_path / "args.json"
    code = f"import json, sys; open({str(args_file)!r}, 'w').write(json.dumps(sys.argv[1:]))"
    weird = [f"$(touch {mark})", f"; touch {mark}", "*", "~", "$HOME"]
    assert run_hook(settings(sys.executable, "-c", code, *weird), {"x": 1}) is None
    assert json.loads(args_file.read_text()) == weird
    assert not mark.exists()


def test_a_hung_hook_and_its_children_are_killed_at_the_timeout(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pids = tmp_path / "pids"
    # the hook starts a grandchild that holds its stdout/stderr open, then hangs
    code = ("import os, subprocess, sys, time; "
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}'); "
            "time.sleep(60)")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="sladeck.hooks"):
        reason = run_hook(settings(sys.executable, "-c", code, timeout=1.0), {"x": 1})
    took = time.monotonic() - started
    assert reason is not None and "timed out after 0:00:01" in reason and "killed" in reason
    assert took < 10, took
    assert any("timed out" in r.getMessage() for r in caplog.records)
    for pid in map(int, pids.read_text().split()):
        deadline = time.monotonic() + 5
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(pid), f"process {pid} outlived the timeout"


def test_a_hook_that_ignores_stdin_and_a_large_payload_does_not_block(tmp_path: Path) -> None:
    payload = {"incident": {"description": "x" * 1_000_000}}  # far more than a pipe holds
    started = time.monotonic()
    assert run_hook(settings(sys.executable, "-c", "pass"), payload) is None
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(("command", "expected"), [
    (["/nonexistent/page-oncall", "--json"], "could not run"),
    ([sys.executable, "-c", "import sys; print('x' * 10**6); "
      "sys.stderr.write('noise\\npaging API said 503\\x1b]2;PWNED\\x07\\n'); sys.exit(3)"],
     "exited with status 3: paging API said 503\\x1b]2;PWNED\\x07"),
    ([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"],
     "killed by signal 15"),
])
def test_a_failing_hook_is_one_inert_log_line(command: list[str], expected: str,
                                              caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sladeck.hooks"):
        reason = run_hook(settings(*command), {"x": 1})
    assert reason is not None and expected in reason, reason
    assert "\n" not in reason and "\x1b" not in reason and "\x07" not in reason
    assert [r.getMessage() for r in caplog.records] == [f"notification hook failed: {reason}"]


def test_no_command_means_nothing_runs() -> None:
    assert run_hook(settings(), {"x": 1}) is None


# -- in the dashboard: the action the hook followed stands ----------------------------------

def test_a_hung_hook_leaves_the_recorded_notice_and_the_dashboard_alone(
        db_path: Path, policy: Policy, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    from sladeck.tui.app import SladeckApp

    mark = tmp_path / "pwned"
    started = tmp_path / "started"
    code = f"import sys, time; open({str(started)!r}, 'wb').write(sys.stdin.buffer.read()); " \
           "time.sleep(60)"
    hooked = replace(policy, notifications=settings(sys.executable, "-c", code, timeout=1.0))
    store = Store(db_path)
    other = Desk(store, hooked, FixedClock(T0), Actor("alice"))
    incident = actions.open_incident(other, title=SHELLY.format(mark=mark),
                                     severity="P3").incident
    clock = FixedClock(T0)
    app = SladeckApp(db_path, hooked, Actor("tester"), clock=clock, poll_interval=None,
                     tick_interval=None, bell=False, run_hooks=True, cursor_blink=False)

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            clock.advance(minutes=31)  # L1's "escalate after" passes
            t = time.monotonic()
            app.tick()
            await pilot.pause()
            assert time.monotonic() - t < 1  # the hook runs off the event loop
            await app.workers.wait_for_complete()
            await pilot.press("down", "up")  # still answering keys
            assert app.is_running

    with caplog.at_level(logging.WARNING, logger="sladeck.hooks"):
        asyncio.run(scenario())
    sent = json.loads(started.read_bytes())
    assert sent["event"] == "sla_due" and sent["incident"]["id"] == incident.id
    assert sent["incident"]["title"] == SHELLY.format(mark=mark)
    assert not mark.exists()
    assert [e.kind for e in store.events(incident.id)] == ["opened", "sla_due"]
    assert any("timed out" in r.getMessage() for r in caplog.records)
    store.close()
