"""A throwaway PostgreSQL 15 cluster for the tests, and a fresh database per test.

`PgCluster.start` runs the system's `initdb` and `pg_ctl` (as the `postgres` account
when the tests run as root: the data folder is owned by it) on a private socket folder
and a free port; the tests connect over that socket as the cluster's superuser, with
`trust` for the socket alone (no TCP listener). Each test gets a database copied from a
migrated template (`CREATE DATABASE … TEMPLATE`: a few milliseconds), dropped after it.
When the server cannot start the tests that need it skip, or fail when `CI` is set.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from contextlib import suppress
from pathlib import Path

import pytest

BIN = Path(os.environ.get("SLADECK_PG_BIN", "/usr/lib/postgresql/15/bin"))
SUPERUSER = "sladeck_tests"
TEMPLATE = "sladeck_template"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    """One running cluster: `url(db)` names a database on it, over its socket."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="sladeck-pg-"))
        self.data = self.base / "data"
        self.sockets = self.base / "run"
        self.port = _free_port()
        self.log = self.base / "server.log"
        self.user: str | None = None
        self._names = itertools.count(1)

    def _as_owner(self, *argv: str) -> list[str]:
        if self.user is None:
            return list(argv)
        return ["setpriv", f"--reuid={self.user}", f"--regid={pwd.getpwnam(self.user).pw_gid}",
                "--init-groups", "--", *argv]

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self._as_owner(*argv), capture_output=True, text=True,
                              check=check, timeout=120, cwd=self.base)

    def start(self) -> None:
        if not (BIN / "initdb").exists():
            raise RuntimeError(f"no PostgreSQL binaries in {BIN} (apt-get install postgresql-15)")
        if os.geteuid() == 0:
            self.user = "postgres"
            try:
                owner = pwd.getpwnam(self.user)
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                                "/usr/sbin/nologin", self.user], check=True)
                owner = pwd.getpwnam(self.user)
            self.base.chmod(0o755)
            for folder in (self.data, self.sockets):
                folder.mkdir(mode=0o700)
                os.chown(folder, owner.pw_uid, owner.pw_gid)
            os.chown(self.base, owner.pw_uid, owner.pw_gid)
        else:
            self.data.mkdir(mode=0o700)
            self.sockets.mkdir(mode=0o700)
        self.run(str(BIN / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
                 "--no-sync", "-E", "UTF8", "--locale=C")
        options = (f"-k {self.sockets} -p {self.port} -c listen_addresses='' -c fsync=off "
                   f"-c full_page_writes=off -c max_connections=200 -c shared_buffers=32MB")
        out = self.run(str(BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                       "-t", "60", "-o", options, "start", check=False)
        if out.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {out.stderr.strip()} {log[-500:]}")
        self.sql(f"CREATE DATABASE {TEMPLATE}")
        from sladeck.store.postgres import PgStore

        PgStore(self.url(TEMPLATE)).close()  # migrated once; every test's copy starts here

    def url(self, db: str = "postgres", user: str = SUPERUSER) -> str:
        return f"postgresql://{user}@/{db}?host={self.sockets}&port={self.port}"

    def sql(self, statement: str, db: str = "postgres") -> list[tuple[object, ...]]:
        import psycopg

        with psycopg.connect(self.url(db), autocommit=True) as conn:
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def fresh_database(self) -> str:
        """A new, migrated, empty database's URL."""
        name = f"t{os.getpid()}_{next(self._names)}"
        self.sql(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        return name

    def drop(self, name: str) -> None:
        with suppress(Exception):
            self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every connection is ended, the server comes back."""
        self.run(str(BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-m",
                 "fast", "restart")

    def stop(self) -> None:
        if self.data.exists():
            self.run(str(BIN / "pg_ctl"), "-D", str(self.data), "-w", "-m", "immediate", "stop",
                     check=False)
        shutil.rmtree(self.base, ignore_errors=True)


def unavailable(why: str) -> None:
    """No server: a failure in CI (it must run there), a skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL could not start for the tests: {why}", pytrace=False)
    pytest.skip(f"PostgreSQL could not start: {why}")
