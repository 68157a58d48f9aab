"""The notification command (SPEC §6): the incident as JSON on stdin, never a shell.

Whoever can change the command, or the policy file that names it, can run code as
every user whose sladeck runs it. So:

- The command comes only from the running process's own policy (its `--policy`,
  `SLADECK_POLICY` or the built-in file), never from a policy stored in the
  database: anyone in the team can store one with a single `open`.
- It runs only if it is an absolute path to a regular, executable file that nobody
  but its owner or root can change: the file, the policy file naming it, and every
  folder the kernel goes through to reach them (symbolic links followed) belong to
  the running user or root and are not writable by group or others. A sticky
  world-writable folder (like /tmp) is refused too. The group bits are the mask of
  any POSIX ACL, so an ACL that grants write is refused as well.
- It runs with a minimal environment (`HOOK_PATH`, `LANG=C.UTF-8`, and `HOME` and
  `USER` of the running account from the password database), in `/`, in its own
  session and process group, with no terminal of ours.
- Its stdout and stderr are read through pipes and only the last `TAIL` bytes of each
  are kept: nothing goes to disk and memory stays bounded, however chatty it is.
- When it exits, or at its timeout, its whole process group is killed (SIGKILL), so a
  child it left behind does not outlive it. (A child that starts a session of its
  own leaves the group: sladeck does not promise to catch that one.)
- Any failure, a refusal included, is logged and returned as one inert line, which
  the caller records on the incident's timeline as `hook_failed`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pwd
import selectors
import signal
import stat
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sladeck.permissions import group_name, user_name
from sladeck.policy import Notifications, format_duration
from sladeck.text import one_line

log = logging.getLogger("sladeck.hooks")
TAIL = 4096  # bytes kept of each of a hook's stdout and stderr
HOOK_PATH = "/usr/bin:/bin"
MAX_LINKS = 40  # symbolic links followed while resolving a path, as the kernel does
DRAIN = 1.0  # seconds to read what is left in the pipes once the group is killed
CHUNK = 65536


# -- who can change a file ------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """One folder, file or symbolic link on the way to a path, and what is wrong with it."""

    path: str
    owner: str
    group: str
    mode: str  # as `ls -l` shows it
    problem: str | None = None
    target: str | None = None  # a symbolic link's target

    def line(self) -> str:
        what = f"-> {self.target}" if self.target is not None else (self.problem or "ok")
        return f"{self.path}  {self.owner}:{self.group} {self.mode}  {what}"


@dataclass(frozen=True)
class Examined:
    """A path walked from /, every step judged; `problems` empty means only its owner
    (the running user or root) can change it."""

    path: str
    steps: tuple[Step, ...]
    problems: tuple[str, ...]


def _judge(path: str, info: os.stat_result) -> str | None:
    """Why someone other than the running user or root can change `path`, or None."""
    if info.st_uid not in (0, os.geteuid()):
        return f"{path} belongs to {user_name(info.st_uid)}, not to you or root"
    if info.st_mode & stat.S_IWOTH:
        if stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX:
            return f"{path} is a folder anyone can write (sticky, like /tmp: not safe enough)"
        return f"{path} is writable by anyone (fix: chmod o-w {path})"
    if info.st_mode & stat.S_IWGRP:
        return (f"{path} is writable by group {group_name(info.st_gid)} "
                f"(fix: chmod g-w {path})")
    return None


def _step(path: str, info: os.stat_result, problem: str | None,
          target: str | None = None) -> Step:
    return Step(path, user_name(info.st_uid), group_name(info.st_gid), stat.filemode(info.st_mode),
                problem, target)


def examine(path: str | os.PathLike[str], *, program: bool = False) -> Examined:
    """Walk `path` from / as the kernel would (symbolic links followed, `..` taken
    physically) and judge every folder and the file at the end. With `program`, the
    file must also be a regular file the running user can execute."""
    text = os.fspath(path)
    if not os.path.isabs(text):
        if program:
            return Examined(text, (), (f"{text} is not an absolute path",))
        text = os.path.join(os.getcwd(), text)  # the physical folder, as the kernel has it
    steps: list[Step] = []
    problems: list[str] = []
    seen: set[str] = set()
    current, parts, links = "/", [p for p in text.split("/") if p], 0
    info = os.lstat("/")
    seen.add("/")
    steps.append(_step("/", info, _judge("/", info)))
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, part)
        try:
            info = os.lstat(candidate)
        except FileNotFoundError:
            problems.append(f"{candidate} does not exist")
            break
        except OSError as exc:
            problems.append(f"{candidate} cannot be examined: {exc.strerror}")
            break
        if stat.S_ISLNK(info.st_mode):
            links += 1
            try:
                target = os.readlink(candidate)
            except OSError as exc:  # replaced while we looked
                problems.append(f"{candidate} cannot be examined: {exc.strerror}")
                break
            steps.append(_step(candidate, info, None, target))
            if links > MAX_LINKS:
                problems.append(f"{text}: too many symbolic links")
                break
            if target.startswith("/"):
                current = "/"
            parts = [p for p in target.split("/") if p] + parts
            continue
        if candidate not in seen:
            seen.add(candidate)
            steps.append(_step(candidate, info, _judge(candidate, info)))
        if parts and not stat.S_ISDIR(info.st_mode):
            problems.append(f"{candidate} is not a folder")
            break
        current = candidate
    else:
        if program:
            problems += _not_runnable(current)
    judged = [s.problem for s in steps if s.problem]
    return Examined(text, tuple(steps), tuple(judged + problems))


def _not_runnable(path: str) -> list[str]:
    try:
        regular = stat.S_ISREG(os.stat(path).st_mode)
    except OSError as exc:
        return [f"{path} cannot be examined: {exc.strerror}"]
    if not regular:
        return [f"{path} is not a regular file"]
    return [] if os.access(path, os.X_OK) else [f"{path} is not executable by you"]


def refusal(settings: Notifications, policy_file: str | os.PathLike[str] | None = None
            ) -> str | None:
    """Why this process must not run the command, or None. `policy_file` is the file
    the command was read from (None: a policy built in memory, as tests do)."""
    if not settings.command:
        return None
    if policy_file is not None:
        found = examine(policy_file)
        if found.problems:
            return f"the policy file naming it can be changed by others: {found.problems[0]}"
    found = examine(settings.command[0], program=True)
    return found.problems[0] if found.problems else None


# -- running it -----------------------------------------------------------------------------

def hook_environment() -> dict[str, str]:
    """All a hook inherits: no secret of the running process's environment."""
    env = {"PATH": HOOK_PATH, "LANG": "C.UTF-8"}
    try:
        me = pwd.getpwuid(os.geteuid())
    except KeyError:
        return env
    env.update(HOME=me.pw_dir, USER=me.pw_name)
    return env


def _kill_group(pid: int) -> None:
    """Kill the hook's process group (while its leader is unreaped, the id is ours)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _exited(pid: int) -> bool:
    """Whether `pid` has ended, leaving it unreaped (so its group id stays ours)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


class _Pipes:
    """Feed the payload and keep the tail of stdout and stderr, without threads."""

    def __init__(self, process: subprocess.Popen[bytes], data: bytes) -> None:
        assert process.stdin and process.stdout and process.stderr
        self.process, self.data, self.sent = process, data, 0
        self.tails = {process.stdout.fileno(): bytearray(),
                      process.stderr.fileno(): bytearray()}
        self.selector = selectors.DefaultSelector()
        for fd in self.tails:
            os.set_blocking(fd, False)
            self.selector.register(fd, selectors.EVENT_READ)
        self.stdin: int | None = process.stdin.fileno()
        os.set_blocking(self.stdin, False)
        self.selector.register(self.stdin, selectors.EVENT_WRITE)
        self.pidfd: int | None = None
        with contextlib.suppress(AttributeError, OSError):  # Linux 5.3+
            self.pidfd = os.pidfd_open(process.pid)
            self.selector.register(self.pidfd, selectors.EVENT_READ)

    def wait(self, deadline: float) -> bool:
        """Exchange data until the hook exits (True) or `deadline` passes (False)."""
        while True:
            if self.pidfd is None and _exited(self.process.pid):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            for key, _ in self.selector.select(left if self.pidfd is not None
                                               else min(left, 0.05)):
                if key.fd == self.pidfd:
                    return True
                self._serve(key.fd)

    def drain(self, deadline: float) -> None:
        """Read what the killed group left in the pipes (until EOF or `deadline`)."""
        if self.pidfd is not None:
            self.selector.unregister(self.pidfd)
        self._close_stdin()
        while self.selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            for key, _ in self.selector.select(left):
                self._serve(key.fd)

    def _serve(self, fd: int) -> None:
        if fd == self.stdin:
            try:
                self.sent += os.write(fd, self.data[self.sent:self.sent + CHUNK])
            except BlockingIOError:
                return
            except OSError:  # it closed its stdin (EPIPE): it need not read it all
                self.sent = len(self.data)
            if self.sent >= len(self.data):
                self._close_stdin()
            return
        try:
            chunk = os.read(fd, CHUNK)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.selector.unregister(fd)
            return
        tail = self.tails[fd]
        tail += chunk
        del tail[:-TAIL]

    def _close_stdin(self) -> None:
        if self.stdin is not None:
            self.selector.unregister(self.stdin)
            self.stdin = None
            assert self.process.stdin
            with contextlib.suppress(OSError):
                self.process.stdin.close()

    def close(self) -> tuple[bytes, bytes]:
        """Close everything; the tails of stdout and stderr."""
        self.selector.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        out, err = self.tails.values()
        return bytes(out), bytes(err)


def _last_line(*tails: bytes) -> str | None:
    for tail in tails:
        lines = tail.decode(errors="replace").strip().splitlines()
        if lines:
            return lines[-1]
    return None


def run_hook(settings: Notifications, payload: dict[str, Any], *,
             policy_file: str | os.PathLike[str] | None = None) -> str | None:
    """Run this process's own notification command once; None on success, or a
    one-line, inert reason it failed (or was refused), which is also logged.

    `settings` must be the running process's own configuration, and `policy_file`
    the file it came from (checked like the command itself).
    """
    if not settings.command:
        return None
    name = one_line(settings.command[0], 80)
    refused = refusal(settings, policy_file)
    if refused is not None:
        return _failed(f"{name} was not run: {one_line(refused, 300)}")
    data = json.dumps(payload, ensure_ascii=True).encode()
    timeout = settings.timeout.total_seconds()
    try:
        process = subprocess.Popen(
            list(settings.command), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True, close_fds=True,
            env=hook_environment(), cwd="/")
    except (OSError, ValueError) as exc:
        return _failed(f"{name} could not run: {getattr(exc, 'strerror', None) or exc}")
    pipes = _Pipes(process, data)
    try:
        finished = pipes.wait(time.monotonic() + timeout)
        _kill_group(process.pid)  # what it left behind, or all of it at the timeout
        pipes.drain(time.monotonic() + DRAIN)
    finally:
        _kill_group(process.pid)
        out, err = pipes.close()
        process.wait()
    if not finished:
        return _failed(f"{name} timed out after {settings.timeout} and was killed")
    if process.returncode == 0:
        return None
    status = (f"was killed by signal {-process.returncode}" if process.returncode < 0
              else f"exited with status {process.returncode}")
    tail = _last_line(err, out)
    return _failed(f"{name} {status}" + (f": {one_line(tail, 200)}" if tail else ""))


def _failed(reason: str) -> str:
    log.warning("notification hook failed: %s", reason)
    return reason


# -- for each notice a process recorded -----------------------------------------------------

def deliver_notices(desk: Any, recorded: Iterable[tuple[Any, Any]], settings: Notifications,
                    *, policy_file: str | os.PathLike[str] | None = None,
                    lock: contextlib.AbstractContextManager[Any] | None = None) -> list[str]:
    """Run the process's own command for each notice it recorded (`record_notices`),
    and record each failure on the incident's timeline as `hook_failed`.

    `desk` is the process's Desk; `lock` is held around each use of it (the hooks
    themselves run outside it). Returns the failures; nothing here raises.
    """
    if not settings.command:
        return []
    from sladeck.domain.actions import record_hook_failure
    from sladeck.report import incident_json

    hold = lock if lock is not None else contextlib.nullcontext()
    failures = []
    for incident, event in recorded:
        try:
            with hold:
                # The stored policy only describes the incident; it never names a command.
                described = incident_json(incident, desk.store.policy(incident.policy_id),
                                          desk.clock.now())
            payload = {"event": event.kind, "clock": event.payload.get("clock"),
                       "notice": event.payload, "incident": described}
            reason = run_hook(settings, payload, policy_file=policy_file)
        except Exception as exc:  # a hook never stops anything else
            log.exception("notification hook for %s failed", incident.ref)
            reason = f"{one_line(settings.command[0], 80)} could not run: {exc}"
        if reason is None:
            continue
        failures.append(reason)
        try:
            with hold:
                record_hook_failure(desk, incident.id, event, reason)
        except Exception:
            log.exception("could not record the failed hook on %s", incident.ref)
    return failures



# -- `sladeck policy check` -----------------------------------------------------------------

@dataclass(frozen=True)
class Report:
    """What `policy check` says about a policy's command and file: lines for stdout,
    errors (the command will not run) and warnings (it may, but look)."""

    lines: tuple[str, ...]
    errors: tuple[str, ...]
    warnings: tuple[str, ...]


def _command_line(source: str) -> int | None:
    """The line of `notifications.command` in the policy text, for `FILE:LINE:`."""
    import yaml

    try:
        root = yaml.compose(source, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    found: Any = root
    for key in ("notifications", "command"):
        if not isinstance(found, yaml.MappingNode):
            return None
        found = next((v for k, v in found.value if getattr(k, "value", None) == key), None)
    return found.start_mark.line + 1 if found is not None else None


def check_report(settings: Notifications, policy_file: str | os.PathLike[str],
                 shown: str, source: str = "") -> Report:
    """Everything `policy check` says about the notification command in the policy at
    `policy_file` (`shown` as its name), as the running user would run it."""
    lines: list[str] = []
    errors: list[str] = []
    warnings: list[str] = []
    own = examine(policy_file)
    if not settings.command:
        lines.append("notifications.command: none (no hook runs)")
        warnings += [f"{shown}: others can change this policy: {p}" for p in own.problems]
        return Report(tuple(lines), (), tuple(warnings))
    line = _command_line(source)
    where = f"{shown}:{line}: " if line else f"{shown}: "
    program = examine(settings.command[0], program=True)
    lines.append(f"notifications.command: {one_line(' '.join(settings.command), 200)}")
    lines += [f"  {one_line(step.line(), 300)}" for step in program.steps]
    errors += [f"{where}notifications.command: will not run: {one_line(p, 300)}"
               for p in program.problems]
    errors += [f"{where}notifications.command: will not run: the policy file naming it can "
               f"be changed by others: {one_line(p, 300)}" for p in own.problems]
    for arg in settings.command[1:]:
        if os.path.isabs(arg) and os.path.exists(arg):
            warnings += [f"{where}notifications.command: argument {one_line(arg, 120)} can be "
                         f"changed by others: {one_line(p, 300)}"
                         for p in examine(arg).problems[:1]]
    env = ", ".join(f"{k}={v}" for k, v in hook_environment().items())
    lines.append(f"  {'will not run' if errors else 'runs as ' + user_name(os.geteuid())}: "
                 f"no shell, in /, environment {env}; the last {TAIL // 1024} KiB of its "
                 f"output kept; its process group killed when it exits or after "
                 f"{format_duration(settings.timeout)}")
    return Report(tuple(lines), tuple(errors), tuple(warnings))
