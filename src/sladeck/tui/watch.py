"""Notice writes to the database without waking up: Linux inotify, through ctypes.

The dashboard must show another process's commit within a second (SPEC §5). Asking
SQLite (`PRAGMA data_version`) ten times a second costs a wake-up each time, idle or
not; an inotify watch on the database's folder wakes the dashboard only when the
database, its WAL or its rollback journal is written, created, moved or deleted, so
an idle dashboard does not wake at all. Noticing costs the same whatever the size of
the database: the kernel reports the write, and `data_version` says whether a commit
completed.

The folder is watched, not the files, so a database replaced by a rename or a WAL
deleted and created again is still seen. Writes to the shared-memory index (`-shm`)
are memory-mapped and raise no events; a commit always writes the WAL or the
database itself. A write event arrives before the commit is visible (the writer
still has to sync and update the index), so the app checks a few times after each
event, not once.

Where inotify is unavailable (not Linux, no watches left, no read access to the
folder) `open_watch` returns None and the app keeps polling.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys
from pathlib import Path

IN_MODIFY = 0x002
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_UNMOUNT = 0x2000
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = getattr(os, "O_CLOEXEC", 0o2000000)

MASK = (IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
        | IN_DELETE_SELF | IN_MOVE_SELF)
GONE = IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_IGNORED  # the folder's watch ended
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then `len` bytes of name


class DatabaseWatch:
    """An inotify descriptor watching one database's folder; see `open_watch`."""

    def __init__(self, fd: int, names: frozenset[bytes]) -> None:
        self.fd = fd
        self.names = names  # the database, its WAL and its journal, as the kernel names them
        self.broken = False  # the folder went away, moved or was unmounted: poll instead

    def fileno(self) -> int:
        return self.fd

    def read(self) -> bool:
        """Take every pending event; True if one concerns the database (or some were lost)."""
        touched = False
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return touched
            except OSError:
                self.broken = True
                return True
            if not data:
                return touched
            offset = 0
            while offset + _EVENT.size <= len(data):
                _wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
                name = data[offset + _EVENT.size: offset + _EVENT.size + length].rstrip(b"\0")
                offset += _EVENT.size + length
                if mask & GONE:
                    self.broken = True
                    touched = True
                elif mask & IN_Q_OVERFLOW or name in self.names:
                    touched = True

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def open_watch(db_path: Path) -> DatabaseWatch | None:
    """A watch on `db_path`'s folder, or None where inotify cannot be used."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        init, add = libc.inotify_init1, libc.inotify_add_watch
    except (OSError, AttributeError):
        return None
    init.argtypes, init.restype = [ctypes.c_int], ctypes.c_int
    add.argtypes, add.restype = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32], ctypes.c_int
    fd = init(IN_NONBLOCK | IN_CLOEXEC)
    if fd < 0:
        return None  # EMFILE: the user's inotify instances are used up
    folder = os.fsencode(db_path.resolve().parent)
    if add(fd, folder, MASK) < 0:
        os.close(fd)  # EACCES, ENOSPC (no watches left), ENOENT ...
        return None
    name = os.fsencode(db_path.resolve().name)
    return DatabaseWatch(fd, frozenset({name, name + b"-wal", name + b"-journal"}))

