"""Is this database safe to share, and can everyone who shares it write it?

A team shares one file through a group (README, "Sharing with a team"): a setgid
folder of mode 2770 owned by the team's group, files of mode 0660 in that group,
everybody's umask 007. SQLite gives `-wal` and `-shm` the main file's mode, so one
file created wrong (0644 under umask 022, a `cp` that kept someone's private group,
a leftover `-wal` of mode 0600) locks the rest of the team out, usually in the
middle of an incident. `sharing_problems` finds each such case at start and says
the one command that fixes it; `check_sharing` refuses to go on.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from pathlib import Path

from sladeck.errors import StoreError

README = "see README, Sharing with a team"


def user_name(uid: int) -> str:
    """The account name of `uid` (its number if it has none)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid: int) -> str:
    """The group name of `gid` (its number if it has none)."""
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _describe(info: os.stat_result) -> str:
    return (f"owner {user_name(info.st_uid)}, group {group_name(info.st_gid)}, "
            f"mode {stat.S_IMODE(info.st_mode):04o}")


def is_shared_folder(info: os.stat_result) -> bool:
    """A setgid, group-writable folder: the team setup of the README."""
    return bool(info.st_mode & stat.S_ISGID and info.st_mode & stat.S_IWGRP)


def database_files(path: Path) -> tuple[Path, Path, Path]:
    return path, Path(f"{path}-wal"), Path(f"{path}-shm")


def sharing_problems(path: Path) -> list[str]:
    """Every reason, one line each with its fix, why `path` is unsafe or unshareable."""
    problems: list[str] = []
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder_info = folder.stat()
    except OSError as exc:
        return [f"cannot use folder {folder}: {exc.strerror}"]
    mode = folder_info.st_mode
    if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
        problems.append(f"{folder} can be written by anyone on this host, so anyone can replace "
                        f"the database ({_describe(folder_info)}); fix: chmod o-w {folder}, or "
                        f"for a team chgrp <team> {folder} && chmod 2770 {folder} ({README})")
    shared = is_shared_folder(folder_info)
    team = group_name(folder_info.st_gid)
    existing = []
    for file in database_files(path):
        try:
            existing.append((file, file.stat()))
        except FileNotFoundError:
            continue
        except OSError as exc:
            problems.append(f"cannot use {file}: {exc.strerror}; fix: ask the owner of "
                            f"{folder} to let you in ({README})")
    missing = len(existing) < 3
    if missing and not os.access(folder, os.W_OK | os.X_OK):
        problems.append(f"cannot create files in {folder} ({_describe(folder_info)}); fix: "
                        + (f"join group {team} (usermod -aG {team} {user_name(os.getuid())}, then "
                           f"log in again)" if shared else
                           f"chgrp <team> {folder} && chmod 2770 {folder} and join <team>")
                        + f" ({README})")
    for file, info in existing:
        perms = stat.S_IMODE(info.st_mode)
        owner = user_name(info.st_uid)
        who = "run" if info.st_uid == os.getuid() else f"{owner} (or root) runs"
        if info.st_mode & stat.S_IWOTH:
            problems.append(f"{file} can be written by anyone on this host; "
                            f"fix: chmod o-rwx {file}")
            continue
        if not os.access(file, os.R_OK | os.W_OK):
            fix = (f"chgrp {team} {file} && chmod 0660 {file}" if shared
                   else f"chmod 0600 {file}, or share it through a group ({README})")
            leftover = " (left over from an earlier session)" if file != path else ""
            problems.append(f"cannot write {file}{leftover} ({_describe(info)}); fix: {who}: {fix}")
            continue
        if shared and info.st_gid != folder_info.st_gid:
            problems.append(f"{file} belongs to group {group_name(info.st_gid)}, not {team} like "
                            f"its folder, so the rest of {team} cannot write it; fix: {who}: "
                            f"chgrp {team} {file}")
        elif shared and perms & 0o060 != 0o060:
            problems.append(f"{file} has mode {perms:04o}, so the rest of {team} cannot write it "
                            f"(made under umask 022?); fix: {who}: chmod 0660 {file}, and "
                            f"everyone sets umask 007 ({README})")
    return problems


def check_sharing(path: Path) -> None:
    """Refuse a database that anyone can write, or that its team cannot (first problem)."""
    problems = sharing_problems(path)
    if problems:
        raise StoreError(problems[0])


def _trusted(uid: int) -> bool:
    return uid in (os.getuid(), 0)


def resolve_links(path: Path) -> Path:
    """`path` itself, or the file its symbolic link names; refuse a link that someone
    else planted (its owner is neither you nor root) or that names nothing (sladeck
    never creates a database or a backup through a link: it would end up wherever the
    link's maker chose, with whatever mode that place gives it)."""
    try:
        info = path.lstat()
    except (FileNotFoundError, NotADirectoryError):  # its folder's problem, told there
        return path
    except OSError as exc:
        raise StoreError(f"cannot use {path}: {exc.strerror}") from None
    if not stat.S_ISLNK(info.st_mode):
        return path
    target = os.readlink(path)
    if not _trusted(info.st_uid):
        raise StoreError(f"{path} is a symbolic link made by {user_name(info.st_uid)} (to {target}); "
                         f"sladeck does not follow links others planted: give the real path")
    real = path.resolve()
    if not real.exists():
        raise StoreError(f"{path} is a symbolic link to {target}, which does not exist; "
                         f"sladeck never creates a database through a link: remove the link, "
                         f"or give the path of a real file")
    return real


def check_planted(path: Path) -> None:
    """Refuse a database, `-wal` or `-shm` that is a symbolic link, or that belongs to
    another user in a folder that is not a team folder (someone could have put it
    there to read what you write: /tmp is sticky, not private)."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        shared = is_shared_folder(folder.stat())
    except OSError:
        return  # sharing_problems says why the folder cannot be used
    for file in database_files(path):
        try:
            info = file.lstat()
        except OSError:
            continue
        if file != path and stat.S_ISLNK(info.st_mode):
            raise StoreError(f"{file} is a symbolic link (to {os.readlink(file)}); SQLite would "
                             f"write through it: remove it (rm {file}) and run again")
        if not shared and not _trusted(info.st_uid):
            raise StoreError(f"{file} belongs to {user_name(info.st_uid)}, not to you, and {folder} "
                             f"is not a team folder, so anyone could have put it there; use a "
                             f"database of your own, or share one through a team folder "
                             f"({README})")
