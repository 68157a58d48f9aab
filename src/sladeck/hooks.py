"""The policy's notification command: the incident as JSON on stdin, never a shell."""

from __future__ import annotations

import json
import logging
import subprocess
from typing import Any

from sladeck.policy import Notifications

log = logging.getLogger("sladeck.hooks")


def run_hook(settings: Notifications, payload: dict[str, Any]) -> str | None:
    """Run the command once; return None on success or a one-line reason it failed.

    The argument list is executed directly (no shell), so nothing in an incident's
    title can run; a hook still running at the timeout is killed.
    """
    if not settings.command:
        return None
    data = json.dumps(payload, ensure_ascii=True).encode()
    try:
        done = subprocess.run(list(settings.command), input=data, capture_output=True,
                              timeout=settings.timeout.total_seconds(), check=False)
    except subprocess.TimeoutExpired:
        reason = f"{settings.command[0]} timed out after {settings.timeout} and was killed"
    except OSError as exc:
        reason = f"{settings.command[0]} could not run: {exc.strerror}"
    else:
        if done.returncode == 0:
            return None
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        reason = f"{settings.command[0]} exited with status {done.returncode} {tail[0][:200]}"
    log.warning("notification hook failed: %s", reason)
    return reason
