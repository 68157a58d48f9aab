"""The database file itself: made safely, refused when unsafe, told when read-only, and
recognised (device and inode) so a Store notices when its path names another file.

Who may share the file and how (groups, modes, the team folder) is `sladeck.permissions`;
this module applies it to the database and its `-wal` / `-shm` companions.
"""

from __future__ import annotations

import os
from pathlib import Path

from sladeck.errors import StoreError
from sladeck.permissions import check_planted, check_sharing, is_shared_folder, resolve_links


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except FileNotFoundError:
        return None


def prepare_file(path: Path) -> bool:
    """Create the database file without world access, or refuse an unsafe one; True
    when it can only be read (a read-only mount, or a file or folder you cannot write
    outside a team folder: an archived backup).

    0660 when its folder is group-shared (setgid), else 0600. SQLite gives the
    `-wal` and `-shm` files the main file's permissions. A new file is created with
    O_EXCL|O_NOFOLLOW, never through a symbolic link; a link someone else made, a
    dangling one, and another user's file outside a team folder are refused. A
    missing database beside a `-wal` that holds data is refused too: starting afresh
    would throw that data away.
    """
    path = resolve_links(path)
    folder = path.parent
    if not folder.exists():
        try:
            folder.mkdir(parents=True, mode=0o700)
        except OSError as exc:
            raise StoreError(f"cannot create the folder {exc.filename or folder}: "
                             f"{exc.strerror}") from None
    check_planted(path)
    if _lstat(path) is None:
        wal = Path(f"{path}-wal")
        wal_info = _lstat(wal)
        if wal_info is not None and wal_info.st_size > 0:
            raise StoreError(f"{path} is missing but {wal} holds its last committed changes "
                             f"({wal_info.st_size} bytes); put {path} back (moved or deleted?) "
                             f"and run again, or move {wal} and {path}-shm away to start an "
                             f"empty database")
        mode = 0o660 if is_shared_folder(folder.stat()) else 0o600
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, mode)
        except FileExistsError:
            check_planted(resolve_links(path))  # someone made it meanwhile: look again
        except OSError as exc:
            raise StoreError(f"cannot create {path}: {exc.strerror}") from None
        else:
            os.fchmod(fd, mode)
            os.close(fd)
    if read_only_reason(path):
        return True
    check_sharing(path)  # world-writable, unwritable, wrong group, 0644 in a team folder
    return False


def read_only_reason(path: Path) -> str | None:
    """Why `path` can only be read, or None. In a team folder a file the team cannot
    write is a sharing problem with its fix (`check_sharing`), not a read-only file."""
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "on a read-only file system"
        folder = path.parent
        if is_shared_folder(folder.stat()):
            return None
        if not os.access(path, os.W_OK):
            return "the file is read-only to you"
        sidecars = [Path(f"{path}-wal"), Path(f"{path}-shm")]
        if not all(f.exists() for f in sidecars) and not os.access(folder, os.W_OK | os.X_OK):
            return f"its folder {folder} is read-only to you"
    except OSError:
        return None  # check_sharing names what cannot be used
    return None


def file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file `path` names now, or None if it names none."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino
