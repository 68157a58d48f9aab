"""A database on a jump host (SPEC §5, §9): never world-writable, shareable through a group.

The README's "Sharing with a team" setup is run for real with two Unix users created
for the session (root only, skipped elsewhere), each running the real `sladeck` under
its own uid via setpriv.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import reachable_runtime
from sladeck.errors import StoreError
from sladeck.permissions import check_sharing, sharing_problems
from sladeck.store import Store

SLADECK = Path(sys.executable).with_name("sladeck")
README = Path(__file__).resolve().parent.parent / "README.md"
TEAM = "sladeckteam"
ALICE, BOB = "sladeckalice", "sladeckbob"
TOOLS = ("useradd", "userdel", "groupadd", "groupdel", "setpriv", "install")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- without other users ---------------------------------------------------------------------

def test_a_new_private_database_and_its_wal_and_shm_are_0600(tmp_path: Path) -> None:
    old = os.umask(0o000)  # even a careless umask must not widen anything
    try:
        path = tmp_path / "home" / "desk.db"
        store = Store(path)
        with store.write() as tx:
            tx.conn.execute("INSERT INTO policies (digest, source, added_at) VALUES ('d', 's', 't')")
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert all(f.exists() for f in files)
        assert [mode(f) for f in files] == [0o600] * 3
        assert mode(path.parent) == 0o700
        store.close()
    finally:
        os.umask(old)


def test_a_new_database_in_a_team_folder_is_0660_even_under_umask_022(tmp_path: Path) -> None:
    team = tmp_path / "team"
    team.mkdir()
    team.chmod(0o2770)
    old = os.umask(0o022)
    try:
        path = team / "desk.db"
        store = Store(path)
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert [mode(f) for f in files if f.exists()] == [0o660] * sum(f.exists() for f in files)
        assert sharing_problems(path) == []
        store.close()
    finally:
        os.umask(old)


@pytest.mark.parametrize("which", ["", "-wal", "-shm"])
def test_any_world_writable_file_is_refused_with_the_fix(tmp_path: Path, which: str) -> None:
    path = tmp_path / "desk.db"
    Store(path).close()
    target = Path(f"{path}{which}")
    target.touch()
    target.chmod(0o666)
    with pytest.raises(StoreError, match=re.escape(f"fix: chmod o-rwx {target}")):
        Store(path)
    with pytest.raises(StoreError, match="anyone"):
        check_sharing(path)


def test_a_world_writable_folder_is_refused_a_sticky_one_is_not(tmp_path: Path) -> None:
    folder = tmp_path / "open"
    folder.mkdir()
    path = folder / "desk.db"
    Store(path).close()
    folder.chmod(0o777)
    problems = sharing_problems(path)
    assert len(problems) == 1 and "anyone can replace the database" in problems[0]
    assert f"fix: chmod o-w {folder}" in problems[0]
    folder.chmod(0o1777)  # like /tmp: nobody can replace another's file
    assert sharing_problems(path) == []


def test_team_folder_problems_found_for_the_owner_too(tmp_path: Path) -> None:
    """Files the owner can write but the rest of the team cannot: found before they are."""
    team = tmp_path / "team"
    team.mkdir()
    team.chmod(0o2770)
    path = team / "desk.db"
    Store(path).close()
    assert sharing_problems(path) == []
    folder_group = grp.getgrgid(team.stat().st_gid).gr_name
    os.chown(path, -1, 54_321)  # a group that is not the folder's (e.g. kept by `cp -p`)
    problems = sharing_problems(path)
    assert len(problems) == 1
    assert "belongs to group 54321" in problems[0]
    assert f"fix: you runs: chgrp {folder_group} {path}" not in problems[0]  # grammar check
    assert f"chgrp {folder_group} {path}" in problems[0]
    os.chown(path, -1, team.stat().st_gid)
    path.chmod(0o644)  # made by something else under umask 022
    problems = sharing_problems(path)
    assert len(problems) == 1 and f"chmod 0660 {path}" in problems[0]
    assert "umask 007" in problems[0]


# -- two real users ----------------------------------------------------------------------------

@dataclass
class Team:
    base: Path
    folder: Path
    homes: dict[str, Path]
    python: str = sys.executable  # a Python the test users can run
    pythonpath: str = ""  # where it finds sladeck and its libraries, if not in its venv

    def program(self, *args: str) -> list[str]:
        """The real `sladeck` with `args` (or, with args[0] == 'python', this Python)."""
        if args and args[0] == "python":
            return [self.python, *args[1:]]
        if self.pythonpath:
            return [self.python, "-m", "sladeck", *args]
        return [str(SLADECK), *args]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def _cleanup() -> None:
    for user in (ALICE, BOB):
        _run("userdel", user)
    _run("groupdel", TEAM)


@pytest.fixture(scope="session")
def team() -> Iterator[Team]:
    if os.getuid() != 0 or not all(shutil.which(t) for t in TOOLS):
        pytest.skip("needs root and useradd/groupadd/setpriv to create two real users")
    _cleanup()  # leftovers of an interrupted run
    made = _run("groupadd", TEAM)
    if made.returncode != 0:
        pytest.skip(f"groupadd failed: {made.stderr.strip()}")
    try:
        for user in (ALICE, BOB):
            out = _run("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin",
                       "--groups", TEAM, user)
            assert out.returncode == 0, out.stderr
        base = Path(tempfile.mkdtemp(prefix="sladeck-team-"))
        base.chmod(0o755)
        homes = {}
        for user in (ALICE, BOB):
            home = base / f"home-{user}"
            home.mkdir(mode=0o700)
            os.chown(home, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)
            homes[user] = home
        # The README's own command, with our group and folder.
        line = next(ln for ln in README.read_text().splitlines() if "install -d" in ln)
        args = shlex.split(line.split("#")[0])
        args = [a for a in args if a != "sudo"]
        folder = base / "srv"
        args = [TEAM if a == "oncall" else str(folder) if a.startswith("/srv/") else a
                for a in args]
        out = _run(*args)
        assert out.returncode == 0, out.stderr
        assert mode(folder) == 0o2770 and grp.getgrgid(folder.stat().st_gid).gr_name == TEAM
        python, pythonpath = reachable_runtime(base, ALICE)
        yield Team(base, folder, homes, python, pythonpath)
        shutil.rmtree(base, ignore_errors=True)
    finally:
        _cleanup()


def as_user(team: Team, user: str, *args: str, umask: int = 0o007,
            db: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real `sladeck` (or, with args[0] == 'python', this Python) as `user`."""
    home = team.homes[user]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "XDG_DATA_HOME": str(home / "data"), "XDG_STATE_HOME": str(home / "state"),
           "TZ": "UTC", "PYTHONDONTWRITEBYTECODE": "1", "USER": "mallory", "LOGNAME": "mallory",
           "SLADECK_DB": str(db or team.folder / "desk.db"), "PYTHONPATH": team.pythonpath}
    return subprocess.run(
        ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--",
         *team.program(*args)],
        capture_output=True, text=True, env=env, timeout=60, cwd=str(home),
        preexec_fn=lambda: os.umask(umask), check=False)


def ok(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 0, (out.returncode, out.stdout, out.stderr)
    return out.stdout


def refused(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sladeck: error: "), out.stderr
    assert "Traceback" not in out.stderr
    return lines[0]


def fresh(team: Team, name: str) -> Path:
    db = team.folder / name
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return db


def test_the_readme_setup_lets_two_real_users_share_one_database(team: Team) -> None:
    db = fresh(team, "desk.db")
    assert "umask 007" in README.read_text()
    assert ok(as_user(team, ALICE, "open", "--severity", "P2", "--title", "Disk full",
                      db=db)) == "INC-1\n"
    assert mode(db) == 0o660 and grp.getgrgid(db.stat().st_gid).gr_name == TEAM
    # Keep a reader open as alice so the -wal and -shm stay while bob writes.
    holder = subprocess.Popen(
        ["setpriv", f"--reuid={ALICE}", f"--regid={ALICE}", "--init-groups", "--",
         team.python, "-c",
         "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1]); "
         "c.execute('SELECT count(*) FROM incidents').fetchall(); print('ready', flush=True); "
         "time.sleep(30)", str(db)],
        stdout=subprocess.PIPE, text=True, preexec_fn=lambda: os.umask(0o007))
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
        ok(as_user(team, BOB, "ack", "1", db=db))
        ok(as_user(team, BOB, "note", "1", "bob was here", umask=0o022, db=db))  # careless bob
        for f in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            assert f.exists(), f
            assert mode(f) == 0o660, (f, oct(mode(f)))
            assert grp.getgrgid(f.stat().st_gid).gr_name == TEAM, f
            assert not f.stat().st_mode & stat.S_IWOTH
    finally:
        holder.kill()
        holder.wait()
    ok(as_user(team, ALICE, "note", "1", "alice again", db=db))
    events = [(e["account"], e["kind"]) for e in json.loads(
        ok(as_user(team, BOB, "show", "1", "--json", db=db)))["events"]]
    assert events == [(ALICE, "opened"), (BOB, "acknowledged"), (BOB, "note"),
                      (ALICE, "note")]  # USER=mallory changed nothing
    ok(as_user(team, ALICE, "verify", db=db))


def test_a_database_in_the_wrong_group_is_found_with_its_fix(team: Team) -> None:
    db = fresh(team, "wronggroup.db")
    ok(as_user(team, ALICE, "open", "--severity", "P3", "--title", "t", db=db))
    alice_group = grp.getgrgid(pwd.getpwnam(ALICE).pw_gid).gr_name
    os.chown(db, -1, pwd.getpwnam(ALICE).pw_gid)  # as if copied in with `cp -p`
    message = refused(as_user(team, BOB, "list", db=db))
    assert str(db) in message and "fix:" in message and "chgrp" in message
    # the owner is told before anyone else trips over it
    out = ok(as_user(team, ALICE, "python", "-c",
                     "import sys; from sladeck.permissions import sharing_problems; "
                     "print('\\n'.join(sharing_problems(__import__('pathlib').Path(sys.argv[1]))))",
                     str(db), db=db))
    assert f"belongs to group {alice_group}, not {TEAM}" in out
    assert f"fix: you runs: chgrp {TEAM} {db}" not in out
    assert f"chgrp {TEAM} {db}" in out
    # the fix it gives works
    ok(as_user(team, ALICE, "python", "-c", "import os, sys; os.chown(sys.argv[1], -1, "
               f"{grp.getgrnam(TEAM).gr_gid})", str(db), db=db))
    ok(as_user(team, BOB, "ack", "1", db=db))


def test_a_leftover_wal_owned_by_someone_else_is_found_with_its_fix(team: Team) -> None:
    db = fresh(team, "leftover.db")
    ok(as_user(team, ALICE, "open", "--severity", "P3", "--title", "t", db=db))
    wal = Path(f"{db}-wal")
    wal.touch()
    os.chown(wal, pwd.getpwnam(ALICE).pw_uid, pwd.getpwnam(ALICE).pw_gid)
    wal.chmod(0o600)  # left by a session that ran with a private mode
    message = refused(as_user(team, BOB, "ack", "1", db=db))
    assert str(wal) in message and "fix:" in message and "chmod 0660" in message
    out = ok(as_user(team, BOB, "python", "-c",
                     "import sys; from sladeck.permissions import sharing_problems; "
                     "print('\\n'.join(sharing_problems(__import__('pathlib').Path(sys.argv[1]))))",
                     str(db), db=db))
    assert f"owner {ALICE}" in out and f"fix: {ALICE} (or root) runs: chgrp {TEAM}" in out
    ok(as_user(team, ALICE, "python", "-c", "import os, sys; os.chown(sys.argv[1], -1, "
               f"{grp.getgrnam(TEAM).gr_gid}); os.chmod(sys.argv[1], 0o660)", str(wal), db=db))
    ok(as_user(team, BOB, "ack", "1", db=db))


def test_a_database_made_under_umask_022_is_found_with_its_fix(team: Team) -> None:
    db = fresh(team, "umask.db")
    # alice makes the file with another tool under umask 022: 0644
    ok(as_user(team, ALICE, "python", "-c",
               "import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("
               "'PRAGMA journal_mode=WAL').fetchall()", str(db), umask=0o022, db=db))
    assert mode(db) == 0o644
    message = refused(as_user(team, BOB, "list", db=db))
    assert str(db) in message and "fix:" in message and "chmod 0660" in message
    out = ok(as_user(team, ALICE, "python", "-c",
                     "import sys; from sladeck.permissions import sharing_problems; "
                     "print('\\n'.join(sharing_problems(__import__('pathlib').Path(sys.argv[1]))))",
                     str(db), db=db))
    assert "mode 0644" in out and "umask 007" in out
    ok(as_user(team, ALICE, "python", "-c", "import os, sys; os.chmod(sys.argv[1], 0o660)",
               str(db), db=db))
    ok(as_user(team, BOB, "open", "--severity", "P3", "--title", "t", db=db))


def test_someone_outside_the_team_cannot_get_in(team: Team, tmp_path: Path) -> None:
    """A user whose groups do not include the team cannot even reach the folder."""
    db = fresh(team, "closed.db")
    ok(as_user(team, ALICE, "open", "--severity", "P3", "--title", "t", db=db))
    out = subprocess.run(
        ["setpriv", f"--reuid={BOB}", f"--regid={BOB}", "--clear-groups", "--",
         *team.program("--db", str(db), "list")],
        capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(team.homes[BOB]),
             "PYTHONPATH": team.pythonpath,
             "XDG_DATA_HOME": str(team.homes[BOB] / "d"),
             "XDG_STATE_HOME": str(team.homes[BOB] / "s")})
    message = refused(out)
    assert str(db.parent) in message or str(db) in message


def _sticky(team: Team, name: str) -> Path:
    """A fresh folder like /tmp: everyone writes, nobody replaces another's files."""
    folder = team.base / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    folder.chmod(0o1777)
    return folder


def test_a_database_planted_by_someone_else_in_a_sticky_folder_is_refused(team: Team) -> None:
    tmp = _sticky(team, "sticky-planted")
    db = tmp / "desk.db"
    # bob makes alice's usual file first, in a group they share: she could write it
    ok(as_user(team, BOB, "python", "-c", "import os, sys; os.close(os.open(sys.argv[1], "
               "os.O_CREAT | os.O_WRONLY, 0o660)); os.chown(sys.argv[1], -1, int(sys.argv[2])); "
               "os.chmod(sys.argv[1], 0o660)", str(db), str(grp.getgrnam(TEAM).gr_gid), db=db))
    message = refused(as_user(team, ALICE, "open", "--severity", "P1", "--title", "secret",
                              db=db))
    assert str(db) in message and BOB in message and "not a team folder" in message
    assert db.stat().st_size == 0  # nothing of alice's went into bob's file


def test_a_dangling_link_planted_for_a_database_or_a_backup_is_never_followed(
        team: Team) -> None:
    tmp = _sticky(team, "sticky-links")
    bob_reads = team.base / "bob-reads"
    shutil.rmtree(bob_reads, ignore_errors=True)
    bob_reads.mkdir(mode=0o777)
    bob_reads.chmod(0o777)
    for name in ("desk.db", "backup.db"):
        ok(as_user(team, BOB, "python", "-c", "import os, sys; os.symlink(sys.argv[1], "
                   "sys.argv[2])", str(bob_reads / name), str(tmp / name)))
    message = refused(as_user(team, ALICE, "list", db=tmp / "desk.db"))
    assert "symbolic link" in message and BOB in message
    own = team.homes[ALICE] / "own.db"
    ok(as_user(team, ALICE, "open", "--severity", "P1", "--title", "secret", db=own))
    refused(as_user(team, ALICE, "backup", str(tmp / "backup.db"), db=own))
    assert list(bob_reads.iterdir()) == []  # nothing was written where bob can read it
    ok(as_user(team, ALICE, "backup", str(tmp / "mine.db"), db=own))
    assert mode(tmp / "mine.db") == 0o600
    assert refused(as_user(team, ALICE, "backup", str(tmp / "no" / "b.db"), db=own))
    assert not (tmp / "no").exists()


def test_a_read_only_archive_can_be_listed_shown_exported_and_verified(team: Team) -> None:
    archive = team.base / "archive"
    shutil.rmtree(archive, ignore_errors=True)
    archive.mkdir()
    own = team.homes[ALICE] / "live.db"
    ok(as_user(team, ALICE, "open", "--severity", "P2", "--title", "Archived", db=own))
    ok(as_user(team, ALICE, "backup", str(team.homes[ALICE] / "copy.db"), db=own))
    db = archive / "2026-11.db"
    shutil.copy(team.homes[ALICE] / "copy.db", db)
    alice = pwd.getpwnam(ALICE)
    for path in (archive, db):
        os.chown(path, alice.pw_uid, alice.pw_gid)
    db.chmod(0o444)
    archive.chmod(0o555)  # no -wal or -shm can be made beside it
    try:
        assert "Archived" in ok(as_user(team, ALICE, "list", db=db))
        assert "Archived" in ok(as_user(team, ALICE, "show", "1", db=db))
        assert "Archived" in ok(as_user(team, ALICE, "export", "--format", "csv", db=db))
        assert "ok" in ok(as_user(team, ALICE, "verify", db=db))
        message = refused(as_user(team, ALICE, "ack", "1", db=db))
        assert "read-only" in message and str(db) in message and "unexpected" not in message
        assert sorted(p.name for p in archive.iterdir()) == [db.name]
    finally:
        archive.chmod(0o755)


# -- identity on a jump host: the uid, whatever the environment or terminal says ---------------

LIARS = {"USER": "mallory", "LOGNAME": "mallory", "USERNAME": "mallory", "SUDO_USER": "mallory",
         "SUDO_UID": "0", "LOGIN": "mallory"}


def test_the_account_comes_from_the_uid(monkeypatch: pytest.MonkeyPatch) -> None:
    from sladeck import identity

    for key, value in LIARS.items():
        monkeypatch.setenv(key, value)
    real = pwd.getpwuid(os.getuid()).pw_name
    assert identity.os_account() == real
    assert identity.current_actor("  Alice ").account == real
    assert identity.current_actor("  Alice ").name == "Alice"
    assert identity.current_actor("   ").name is None

    def unknown(uid: int) -> pwd.struct_passwd:
        raise KeyError(uid)
    monkeypatch.setattr(pwd, "getpwuid", unknown)  # a uid with no passwd entry (containers)
    assert identity.os_account() == f"uid{os.getuid()}"


def test_the_account_is_real_with_no_tty_and_inside_tmux(tmp_path: Path) -> None:
    real = pwd.getpwuid(os.getuid()).pw_name
    db = tmp_path / "desk.db"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "TZ": "UTC", "SLADECK_DB": str(db), **LIARS}
    # No terminal at all: a new session (no controlling tty), stdin from /dev/null.
    for args in (("open", "--severity", "P3", "--title", "from cron"),
                 ("note", "1", "no tty", "--as", "Mallory")):
        out = subprocess.run([str(SLADECK), *args], stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, env=env, timeout=60,
                             start_new_session=True, check=False)
        assert out.returncode == 0, out.stderr
    expected = [(real, None), (real, "Mallory")]
    if shutil.which("tmux"):
        sock = tmp_path / "tmux.sock"
        inner = " ".join(shlex.quote(a) for a in (str(SLADECK), "note", "1", "in tmux"))
        done = f"{inner} > {shlex.quote(str(tmp_path / 'tmux.out'))} 2>&1; " \
               f"tmux -S {shlex.quote(str(sock))} wait-for -S sladeck-done"
        tmux = ["tmux", "-S", str(sock), "-f", "/dev/null"]
        started = subprocess.run(
            [*tmux, "new-session", "-d", "-x", "80", "-y", "24",
             *[a for k, v in env.items() for a in ("-e", f"{k}={v}")], done],
            env=env, capture_output=True, text=True, timeout=30, check=False)
        assert started.returncode == 0, started.stderr
        try:
            subprocess.run([*tmux, "wait-for", "sladeck-done"], env=env, timeout=60,
                           check=True)
        finally:
            subprocess.run([*tmux, "kill-server"], env=env, capture_output=True,
                           timeout=30, check=False)
        assert (tmp_path / "tmux.out").read_text() == "note added to INC-1\n"
        expected.append((real, None))
    got = json.loads(subprocess.run([str(SLADECK), "show", "1", "--json"], env=env,
                                    capture_output=True, text=True, timeout=60,
                                    check=True).stdout)
    assert [(e["account"], e["name"]) for e in got["events"]] == expected
