"""The policy's notification command: the incident as JSON on stdin, never a shell."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import tempfile
from typing import Any

from sladeck.policy import Notifications
from sladeck.text import one_line

log = logging.getLogger("sladeck.hooks")
STDERR_TAIL = 4096  # bytes of a failing hook's stderr kept for its one-line reason


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill the hook and everything it started (it leads its own process group)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()


def run_hook(settings: Notifications, payload: dict[str, Any]) -> str | None:
    """Run the command once; return None on success or a one-line reason it failed.

    The argument list is executed directly (no shell), so nothing in an incident's
    title can run. The hook gets its own session (no terminal of ours to write to,
    and one process group): a hook still running at the timeout is killed with
    everything it started. Its output is discarded; the end of its stderr goes to
    the log, so a chatty hook can neither fill memory nor the screen.
    """
    if not settings.command:
        return None
    data = json.dumps(payload, ensure_ascii=True).encode()
    name = one_line(settings.command[0], 80)
    timeout = settings.timeout.total_seconds()
    reason: str | None = None
    with tempfile.TemporaryFile() as errors:
        try:
            process = subprocess.Popen(list(settings.command), stdin=subprocess.PIPE,
                                       stdout=subprocess.DEVNULL, stderr=errors,
                                       start_new_session=True, close_fds=True)
        except (OSError, ValueError) as exc:
            reason = f"{name} could not run: {getattr(exc, 'strerror', None) or exc}"
        else:
            try:
                process.communicate(data, timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                process.wait()
                reason = f"{name} timed out after {settings.timeout} and was killed"
            else:
                if process.returncode != 0:
                    errors.seek(max(0, errors.seek(0, os.SEEK_END) - STDERR_TAIL))
                    tail = errors.read().decode(errors="replace").strip().splitlines()[-1:]
                    status = (f"was killed by signal {-process.returncode}"
                              if process.returncode < 0
                              else f"exited with status {process.returncode}")
                    reason = f"{name} {status}" + (f": {one_line(tail[0], 200)}" if tail else "")
    if reason is not None:
        log.warning("notification hook failed: %s", reason)
    return reason
