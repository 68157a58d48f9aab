"""Noticing that the terminal has gone, when no SIGHUP says so.

A dashboard started under `su`, `sudo` or `setpriv` is not the session leader: when
its tmux pane or SSH link dies, the kernel hangs up the session leader (which does
not pass it on) and the dashboard never hears of it. Its terminal then reads as
end-of-file for ever, and Textual's input thread spins on it (about 20-60 % of a core,
found on a shared jump host). A hung-up terminal reports POLLHUP, so one `poll` a
second is enough to notice and leave.
"""

from __future__ import annotations

import os
import select
import sys


def terminal_fd() -> int | None:
    """The dashboard's terminal (its standard input), or None when it has none."""
    stream = sys.__stdin__
    if stream is None:
        return None
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        return None
    return fd if os.isatty(fd) else None


def hung_up(fd: int) -> bool:
    """True once the terminal on `fd` has hung up (or been closed): one `poll`, no wait."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    try:
        events = poller.poll(0)
    except OSError:
        return True
    return any(mask & (select.POLLHUP | select.POLLNVAL | select.POLLERR) for _fd, mask in events)

