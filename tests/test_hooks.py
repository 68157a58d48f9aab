"""The notification command (SPEC §6): JSON on stdin, no shell, killed at its timeout."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import HOOK_PYTHON, REPO, T0, call_cli, reachable_runtime
from sladeck.clock import FixedClock
from sladeck.domain import actions
from sladeck.domain.actions import Desk
from sladeck.domain.model import Actor
from sladeck.hooks import run_hook
from sladeck.policy import Notifications, Policy, parse_policy
from sladeck.store import Store

SHELLY = "$(touch {mark}); `touch {mark}`; id > {mark} | sh -c 'touch {mark}' && echo $HOME"


def settings(*command: str, timeout: float = 5) -> Notifications:
    return Notifications(True, tuple(command), timedelta(seconds=timeout))


def capture_script(tmp_path: Path) -> tuple[list[str], Path]:
    """A hook that copies its stdin and argv into a file."""
    out = tmp_path / "got.json"
    code = ("import json, sys; data = sys.stdin.buffer.read(); "
            f"open({str(out)!r}, 'wb').write(data)")
    return [HOOK_PYTHON, "-c", code], out


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
    assert run_hook(settings(HOOK_PYTHON, "-c", code, *weird), {"x": 1}) is None
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
        reason = run_hook(settings(HOOK_PYTHON, "-c", code, timeout=1.0), {"x": 1})
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
    assert run_hook(settings(HOOK_PYTHON, "-c", "pass"), payload) is None
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(("command", "expected"), [
    (["/nonexistent/page-oncall", "--json"], "was not run: /nonexistent does not exist"),
    ([HOOK_PYTHON, "-c", "import sys; print('x' * 10**6); "
      "sys.stderr.write('noise\\npaging API said 503\\x1b]2;PWNED\\x07\\n'); sys.exit(3)"],
     "exited with status 3: paging API said 503\\x1b]2;PWNED\\x07"),
    ([HOOK_PYTHON, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"],
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
    hooked = replace(policy, notifications=settings(HOOK_PYTHON, "-c", code, timeout=1.0))
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
    events = store.events(incident.id)
    assert [e.kind for e in events] == ["opened", "sla_due", "hook_failed"]
    assert events[2].payload["notice"] == events[1].id
    assert "timed out after 0:00:01" in events[2].payload["reason"]
    assert any("timed out" in r.getMessage() for r in caplog.records)
    store.close()


# -- only the process's own command, and only one nobody else can change (issue 10.1) --------

def script_hook(out: Path, extra: str = "") -> list[str]:
    """A hook writing its environment, cwd, session and stdin into `out`."""
    code = ("import json, os, sys; data = sys.stdin.read(); "
            f"{extra}"
            f"open({str(out)!r}, 'w').write(json.dumps({{'env': dict(os.environ), "
            "'cwd': os.getcwd(), 'own_session': os.getsid(0) == os.getpid(), "
            "'stdin': json.loads(data)}))")
    return [HOOK_PYTHON, "-c", code]


def with_command(policy: Policy, command: list[str]) -> Policy:
    """The policy, as a file naming `command` would give it (stored with its text)."""
    assert "  command: []" in policy.source
    return parse_policy(policy.source.replace("  command: []", f"  command: {json.dumps(command)}",
                                              1), "evil.yaml")


def due_incident(desk: Desk, clock: FixedClock, title: str = "Disk full") -> int:
    incident = actions.open_incident(desk, title=title, severity="P3").incident
    clock.advance(minutes=31)  # L1's "escalate after" passes
    return incident.id


def run_dashboard_tick(db_path: Path, own: Policy, clock: FixedClock, *,
                       policy_file: Path | None = None) -> None:
    """The dashboard as a user runs it: loaded, the clock passes a deadline, one tick."""
    from sladeck.tui.app import SladeckApp

    app = SladeckApp(db_path, own, Actor("tester"), clock=clock, poll_interval=None,
                     tick_interval=None, bell=False, run_hooks=True, cursor_blink=False,
                     **({"policy_file": policy_file} if policy_file else {}))

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            clock.advance(minutes=31)
            app.tick()
            await pilot.pause()
            await app.workers.wait_for_complete()
            assert app.is_running

    asyncio.run(scenario())


def test_the_dashboard_runs_its_own_command_never_the_one_stored_with_the_incident(
        db_path: Path, policy: Policy, tmp_path: Path) -> None:
    pwned, mine = tmp_path / "pwned.json", tmp_path / "mine.json"
    evil = with_command(policy, script_hook(pwned))
    own = replace(policy, notifications=settings(*script_hook(mine)))
    store = Store(db_path)
    clock = FixedClock(T0)
    incident = actions.open_incident(Desk(store, evil, clock, Actor("mallory")),
                                     title="Routine", severity="P3").incident
    assert store.policy(incident.policy_id).notifications.command  # stored with it
    run_dashboard_tick(db_path, own, clock)
    assert not pwned.exists()
    got = json.loads(mine.read_text())
    assert got["stdin"]["incident"]["id"] == incident.id and got["stdin"]["event"] == "sla_due"
    assert [e.kind for e in store.events(incident.id)] == ["opened", "sla_due"]
    store.close()


def test_the_hook_sees_a_minimal_environment_in_its_own_session(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pwd

    monkeypatch.setenv("SLADECK_SECRET", "hunter2")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "also-secret")
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "env.json"
    assert run_hook(settings(*script_hook(out)), {"x": 1}) is None
    got = json.loads(out.read_text())
    me = pwd.getpwuid(os.geteuid())
    env = {k: v for k, v in got["env"].items() if k != "LC_CTYPE"}  # Python may add it
    assert env == {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": me.pw_dir,
                   "USER": me.pw_name}
    assert got["cwd"] == "/" and got["own_session"] and got["stdin"] == {"x": 1}


@pytest.fixture
def safe_dir() -> Iterator[Path]:
    """A folder only the running user or root can change (tmp_path is under sticky /tmp,
    which a hook may not live under)."""
    home = Path.home().resolve()
    for folder in (home, *home.parents):
        info = folder.stat()
        if info.st_uid not in (0, os.geteuid()) or info.st_mode & 0o022:
            pytest.skip(f"no folder only you can change: {folder} is not one")
    folder = Path(tempfile.mkdtemp(prefix=".sladeck-hooks-test-", dir=home))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def make_script(path: Path, marker: Path, mode: int = 0o755) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho ran > {marker}\n")
    path.chmod(mode)
    return path


@pytest.mark.parametrize(("where", "expected"), [
    ("group_folder", "is writable by group"),
    ("world_folder", "is writable by anyone"),
    ("sticky_folder", "sticky, like /tmp: not safe enough"),
    ("group_file", "is writable by group"),
    ("other_owner", "belongs to nobody, not to you or root"),
    ("link_to_unsafe", "is writable by group"),
    ("relative", "is not an absolute path"),
    ("not_executable", "is not executable by you"),
    ("a_folder", "is not a regular file"),
])
def test_a_command_others_could_change_is_refused_and_told(
        safe_dir: Path, where: str, expected: str,
        caplog: pytest.LogCaptureFixture) -> None:
    marker = safe_dir / "ran"
    script = make_script(safe_dir / "bin" / "page", marker)
    command = str(script)
    if where.endswith("_folder") and where != "a_folder":
        script.parent.chmod({"group_folder": 0o775, "world_folder": 0o777,
                             "sticky_folder": 0o1777}[where])
    elif where == "group_file":
        script.chmod(0o775)
    elif where == "other_owner":
        os.chown(script, 65534, -1)
    elif where == "link_to_unsafe":
        unsafe = make_script(safe_dir / "shared" / "page", marker)
        unsafe.parent.chmod(0o2775)
        script.unlink()
        script.symlink_to(unsafe)  # the link is ours, what it points to is not
    elif where == "relative":
        command = "bin/page"
    elif where == "not_executable":
        script.chmod(0o644)
    elif where == "a_folder":
        command = str(safe_dir / "bin")
    with caplog.at_level(logging.WARNING, logger="sladeck.hooks"):
        reason = run_hook(settings(command), {"x": 1})
    assert reason is not None and "was not run" in reason and expected in reason, reason
    assert not marker.exists()
    assert [r.getMessage() for r in caplog.records] == [f"notification hook failed: {reason}"]
    make_script(safe_dir / "ok" / "page", marker)  # and the same script, kept safe, runs
    assert run_hook(settings(str(safe_dir / "ok" / "page")), {"x": 1}) is None
    assert marker.read_text() == "ran\n"


def test_a_command_from_a_policy_file_others_can_change_is_refused(safe_dir: Path) -> None:
    marker = safe_dir / "ran"
    script = make_script(safe_dir / "bin" / "page", marker)
    policy_file = safe_dir / "team.yaml"
    policy_file.write_text("notifications: {command: [" + str(script) + "]}\n")
    policy_file.chmod(0o644)
    assert run_hook(settings(str(script)), {"x": 1}, policy_file=policy_file) is None
    marker.unlink()
    policy_file.chmod(0o664)  # anyone in the group could point it at anything
    reason = run_hook(settings(str(script)), {"x": 1}, policy_file=policy_file)
    assert reason is not None and "the policy file naming it can be changed by others" in reason
    assert f"{policy_file} is writable by group" in reason
    assert not marker.exists()


def test_a_chatty_hook_writes_nothing_to_disk_and_keeps_the_tail(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import resource

    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)
    # 50 MB on each stream, then what its stdout and stderr are, as its last words
    code = ("import os, stat, sys; block = b'x' * 1_000_000 + b'\\n'\n"
            "for _ in range(50):\n"
            "    sys.stdout.buffer.write(block); sys.stderr.buffer.write(block)\n"
            "kinds = ['pipe' if stat.S_ISFIFO(os.fstat(fd).st_mode) else 'file' for fd in (1, 2)]\n"
            "sys.stdout.flush(); sys.stderr.write('out %s err %s\\n' % tuple(kinds)); sys.exit(4)")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    reason = run_hook(settings(HOOK_PYTHON, "-c", code, timeout=60), {"x": 1})
    assert time.monotonic() - started < 30
    grew_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert reason is not None and reason.endswith("exited with status 4: out pipe err pipe")
    assert grew_mib < 20, grew_mib  # the tail is kept, not the 100 MB
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("holds_pipes", [False, True])
def test_children_a_hook_leaves_behind_are_killed_when_it_exits(
        tmp_path: Path, holds_pipes: bool) -> None:
    pids = tmp_path / "pids"
    streams = "" if holds_pipes else ", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL"
    code = ("import os, subprocess, sys; "
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']"
            f"{streams}); "
            f"open({str(pids)!r}, 'w').write(str(child.pid))")
    started = time.monotonic()
    assert run_hook(settings(HOOK_PYTHON, "-c", code, timeout=30), {"x": 1}) is None
    assert time.monotonic() - started < 10  # it returned when the hook exited, not at 30 s
    child = int(pids.read_text())
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child), "the hook's child outlived it"


def test_a_failed_hook_lands_on_the_timeline_and_the_chain_still_verifies(
        db_path: Path, policy: Policy, safe_dir: Path) -> None:
    from sladeck.domain.actions import record_notices
    from sladeck.hooks import deliver_notices
    from sladeck.report import incident_markdown
    from sladeck.verify import verify

    store = Store(db_path)
    clock = FixedClock(T0)
    desk = Desk(store, policy, clock, Actor("tester"))
    failing = settings(HOOK_PYTHON, "-c", "import sys; sys.exit('paging API said 503')")
    first = due_incident(desk, clock)
    recorded = record_notices(desk, [store.incident(first)])
    assert deliver_notices(desk, recorded, failing) == [
        f"{failing.command[0]} exited with status 1: paging API said 503"]
    unsafe = make_script(safe_dir / "shared" / "page", safe_dir / "ran")
    unsafe.parent.chmod(0o777)
    second = due_incident(desk, clock, "Queue stuck")
    recorded = record_notices(desk, [store.incident(second)])
    (reason,) = deliver_notices(desk, recorded, settings(str(unsafe)))
    assert "was not run" in reason and "writable by anyone" in reason
    for incident_id, expected in ((first, "paging API said 503"), (second, "was not run")):
        events = store.events(incident_id)
        assert [e.kind for e in events][-2:] == ["sla_due", "hook_failed"]
        assert events[-1].payload["notice"] == events[-2].id
        assert expected in events[-1].payload["reason"]
        detail = store.detail(incident_id)
        assert detail is not None
        doc = incident_markdown(detail, policy, clock.now())
        assert "not delivered to the notification command: " in doc and expected in doc
    assert verify(store) == []
    assert store.incident(first).version == 1  # a failed hook makes no form stale
    store.close()


# -- `sladeck policy check` says all of it ---------------------------------------------------

def policy_with(folder: Path, command: list[str] | None, mode: int = 0o644) -> Path:
    text = (REPO / "policy.yaml").read_text(encoding="utf-8")
    if command is not None:
        text = text.replace("  command: []", f"  command: {json.dumps(command)}", 1)
    path = folder / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def command_line_no(path: Path) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1)
                if line.startswith("  command:"))


def test_policy_check_walks_a_good_command_folder_by_folder(safe_dir: Path) -> None:
    import pwd

    script = make_script(safe_dir / "bin" / "page", safe_dir / "ran")
    path = policy_with(safe_dir, [str(script), "--json"])
    code, out, err = call_cli("policy", "check", str(path))
    assert (code, err) == (0, ""), err
    lines = out.splitlines()
    assert lines[0].startswith(f"{path}: ok (")
    assert "version 1.0.0 · owner Support Team" in lines[1]  # then the notification command
    assert lines[2] == f"notifications.command: {script} --json"
    walked = [line.split()[0] for line in lines[3:-1]]
    assert walked == ["/", *map(str, reversed(script.parents[:-1])), str(script)]
    assert all(line.endswith("  ok") for line in lines[3:-1])
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert f"{script}  {me}:" in out and "-rwxr-xr-x" in out
    assert lines[-1].startswith(f"  runs as {me}: no shell, in /, environment "
                                "PATH=/usr/bin:/bin, LANG=C.UTF-8, HOME=")
    assert "its process group killed when it exits or after 10s" in lines[-1]


@pytest.mark.parametrize(("case", "shown", "error"), [
    ("group_folder", "writable by group", "writable by group"),
    ("missing", None, "does not exist"),
    ("relative", None, "page is not an absolute path"),
    ("followed_link", "-> ", "writable by anyone"),
])
def test_policy_check_refuses_a_command_that_would_not_run(
        safe_dir: Path, case: str, shown: str | None, error: str) -> None:
    script = make_script(safe_dir / "bin" / "page", safe_dir / "ran")
    command = str(script)
    if case == "group_folder":
        script.parent.chmod(0o2775)
    elif case == "missing":
        command = str(safe_dir / "bin" / "gone")
    elif case == "relative":
        command = "page"
    elif case == "followed_link":
        target = make_script(safe_dir / "open" / "page", safe_dir / "ran")
        target.parent.chmod(0o777)
        script.unlink()
        script.symlink_to(target)
    path = policy_with(safe_dir, [command])
    code, out, err = call_cli("policy", "check", str(path))
    assert code == 1 and out.startswith(f"{path}: refused ("), (code, out, err)
    if shown:
        assert shown in out
    assert "  will not run: " in out
    lines = err.splitlines()
    assert lines and all(line.startswith(
        f"sladeck: error: {path}:{command_line_no(path)}: notifications.command: "
        "will not run: ") for line in lines), err
    assert error in err


def test_policy_check_warns_about_a_policy_file_others_can_change(safe_dir: Path) -> None:
    team = safe_dir / "team"
    team.mkdir()
    team.chmod(0o2775)  # a group folder: anyone in the group can replace the file
    path = policy_with(team, None, 0o664)
    code, out, err = call_cli("policy", "check", str(path))
    assert code == 0 and out.startswith(f"{path}: ok (")
    assert "notifications.command: none" in out
    warnings = err.splitlines()
    assert warnings == [f"sladeck: warning: {path}: others can change this policy: {team} is "
                        f"writable by group {grp_name(team)} (fix: chmod g-w {team})",
                        f"sladeck: warning: {path}: others can change this policy: {path} is "
                        f"writable by group {grp_name(path)} (fix: chmod g-w {path})"]
    # with a command in it, the command would run as whoever uses this file: refused
    script = make_script(safe_dir / "bin" / "page", safe_dir / "ran")
    path = policy_with(team, [str(script)], 0o664)
    code, out, err = call_cli("policy", "check", str(path))
    assert code == 1 and "will not run" in out
    assert f"the policy file naming it can be changed by others: {team} is writable" in err
    # an argument others can change is worth a warning, not a refusal
    team.chmod(0o755)
    shared = make_script(team / "shared" / "page.py", safe_dir / "ran", 0o666)
    path = policy_with(safe_dir, [str(script), str(shared)])
    code, out, err = call_cli("policy", "check", str(path))
    assert code == 0, err
    assert err == (f"sladeck: warning: {path}:{command_line_no(path)}: notifications.command: "
                   f"argument {shared} can be changed by others: {shared} is writable by "
                   f"anyone (fix: chmod o-w {shared})\n")


def grp_name(path: Path) -> str:
    import grp

    return grp.getgrgid(path.stat().st_gid).gr_name


# -- two real Unix users: a teammate's stored policy never runs as you -----------------------

VICTIM, MALLORY, CREW = "sladeckhookann", "sladeckhookbob", "sladeckhookcrew"
SLADECK = Path(sys.executable).with_name("sladeck")

# The victim's dashboard, as `sladeck` runs it, with the victim's own policy: the built-in
# one with a command that records what it was given. The clock passes every deadline.
DASHBOARD = """
import asyncio, sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from sladeck.clock import FixedClock
from sladeck.domain.model import Actor
from sladeck.policy import Notifications, load_policy
from sladeck.tui.app import SladeckApp

db, command = sys.argv[1], sys.argv[2:]
own = load_policy(None)
own = replace(own, notifications=Notifications(True, tuple(command), timedelta(seconds=20)))
clock = FixedClock(datetime.now(UTC))
app = SladeckApp(db, own, Actor("ann"), clock=clock, poll_interval=None, tick_interval=None,
                 bell=False, run_hooks=True, cursor_blink=False)

async def main():
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        clock.advance(hours=48)
        app.tick()
        await pilot.pause()
        await app.workers.wait_for_complete()

asyncio.run(main())
print("dashboard done")
"""


def _sh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def crew(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Two users in one group, a setgid team folder and a private home each (names of
    their own: other test files make and remove theirs at the same time)."""
    import pwd

    tools = ("useradd", "userdel", "groupadd", "groupdel", "setpriv")
    if os.getuid() != 0 or not all(shutil.which(t) for t in tools):
        pytest.skip("needs root and useradd/groupadd/setpriv to create two real users")

    def cleanup() -> None:
        for user in (VICTIM, MALLORY):
            _sh("userdel", user)
        _sh("groupdel", CREW)

    cleanup()
    made = _sh("groupadd", CREW)
    if made.returncode != 0:
        pytest.skip(f"groupadd failed: {made.stderr.strip()}")
    base = Path(tempfile.mkdtemp(prefix="sladeck-hooks-crew-"))
    try:
        for user in (VICTIM, MALLORY):
            out = _sh("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin",
                      "--groups", CREW, user)
            assert out.returncode == 0, out.stderr
        base.chmod(0o755)
        python, pythonpath = reachable_runtime(base, VICTIM)  # fails, never skips, in CI
        RUNTIME.update(python=python, pythonpath=pythonpath)
        places = {"team": base / "team"}
        places["team"].mkdir()
        os.chown(places["team"], 0, grp_gid(CREW))
        places["team"].chmod(0o2770)
        for user in (VICTIM, MALLORY):
            home = base / user
            home.mkdir(mode=0o700)
            os.chown(home, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)
            places[user] = home
        yield places
    finally:
        shutil.rmtree(base, ignore_errors=True)
        cleanup()


RUNTIME: dict[str, str] = {}  # the Python (and PYTHONPATH) the crew runs sladeck with


def member_sladeck() -> list[str]:
    """The real `sladeck` as a crew member runs it."""
    if RUNTIME.get("pythonpath"):
        return [RUNTIME["python"], "-m", "sladeck"]
    return [str(SLADECK)]


def grp_gid(name: str) -> int:
    import grp

    return grp.getgrnam(name).gr_gid


def as_member(places: dict[str, Path], user: str, *args: str,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    home = places[user]
    base = {"PATH": "/usr/bin:/bin", "HOME": str(home), "XDG_DATA_HOME": str(home / "data"),
            "XDG_STATE_HOME": str(home / "state"), "XDG_CACHE_HOME": str(home / "cache"),
            "TZ": "UTC", "PYTHONDONTWRITEBYTECODE": "1",
            "SLADECK_DB": str(places["team"] / "desk.db")}
    if RUNTIME.get("pythonpath"):  # a copy the test users can reach (a private checkout)
        base["PYTHONPATH"] = RUNTIME["pythonpath"]
    elif "PYTHONPATH" in os.environ:  # e.g. to run this test against another checkout's code
        base["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run(
        ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--", *args],
        capture_output=True, text=True, env={**base, **(env or {})}, timeout=120,
        cwd=str(home), preexec_fn=lambda: os.umask(0o007), check=False)


def shell_hook(out: Path) -> list[str]:
    """A hook (plain /bin/sh: the victim need not reach this checkout) that records its
    account, environment and stdin."""
    return ["/bin/sh", "-c", f"id -un > {out}; env >> {out}; echo >> {out}; cat >> {out}"]


def test_a_teammates_stored_policy_never_runs_its_command_as_you(
        crew: dict[str, Path]) -> None:
    import pwd

    victim_home = crew[VICTIM]
    pwned, mine = victim_home / "pwned.txt", victim_home / "mine.txt"
    # Mallory's own policy names a command that would tell her the victim's secrets.
    evil = crew[MALLORY] / "evil.yaml"
    text = (REPO / "policy.yaml").read_text(encoding="utf-8")
    evil.write_text(text.replace("  command: []", "  command: " + json.dumps(
        shell_hook(pwned)), 1), encoding="utf-8")
    os.chown(evil, pwd.getpwnam(MALLORY).pw_uid, -1)
    opened = as_member(crew, MALLORY, *member_sladeck(), "--policy", str(evil), "open",
                       "--severity", "P1", "--title", "Routine check")
    assert opened.returncode == 0 and opened.stdout == "INC-1\n", opened.stderr
    # The victim's dashboard sees it become due and breached: her own command runs,
    # with a minimal environment; Mallory's never does.
    dashboard = as_member(crew, VICTIM, RUNTIME["python"], "-c", DASHBOARD,
                          str(crew["team"] / "desk.db"), *shell_hook(mine),
                          env={"SLADECK_SECRET": "hunter2"})
    assert dashboard.returncode == 0 and "dashboard done" in dashboard.stdout, \
        dashboard.stderr[-2000:]
    assert not pwned.exists(), "the teammate's command ran as the victim"
    head, stdin = mine.read_text().split("\n\n", 1)
    account, *env = head.splitlines()
    assert account == VICTIM
    variables = dict(line.split("=", 1) for line in env)
    assert "SLADECK_SECRET" not in variables
    assert set(variables) - {"PWD", "SHLVL", "_"} == {"PATH", "LANG", "HOME", "USER"}
    assert variables["PATH"] == "/usr/bin:/bin" and variables["USER"] == VICTIM
    assert json.loads(stdin)["incident"]["id"] == 1
    shown = as_member(crew, VICTIM, *member_sladeck(), "show", "1", "--json")
    assert shown.returncode == 0, shown.stderr
    events = json.loads(shown.stdout)["events"]
    kinds = [e["kind"] for e in events]
    # (Mallory's own `open` announced the P1 and ran her command, as herself: it could
    # not write into the victim's home, and said so on the timeline, as Mallory)
    assert kinds[0] == "opened"
    assert [e["account"] for e in events if e["kind"] == "hook_failed"] in ([], [MALLORY])
    assert {"sla_due", "sla_breached"} & set(kinds)
    verified = as_member(crew, VICTIM, *member_sladeck(), "verify")
    assert verified.returncode == 0, verified.stderr
