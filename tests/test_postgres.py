"""What only the PostgreSQL backend has: choosing it, its roles and grants, its write
lock, LISTEN/NOTIFY, reconnecting, and the SQLite path that never loads it.

The behaviour both backends share is proven by the store's, the actions', the CLI's and
the concurrency tests, which run on each (`pytestmark = pytest.mark.both_backends`).
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import ME, make_app, sync
from sladeck.domain import actions
from sladeck.domain.actions import Desk
from sladeck.domain.model import Actor
from sladeck.errors import StoreError
from sladeck.store import open_store

SLADECK = Path(sys.executable).with_name("sladeck")
REPO = Path(__file__).resolve().parent.parent


def readme_grants(role: str) -> str:
    """The README's grants (no superuser, not the owner), for `role`: the event log can
    be read and appended to, never changed. CONNECT is granted on the test's database."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text[text.index("CREATE ROLE sladeck_team"):]
    block = block[:block.index("```")]
    return "\n".join(line.split("--")[0].replace("sladeck_team", role)
                     for line in block.splitlines()
                     if line.startswith("GRANT") and "ON DATABASE" not in line)


def sladeck(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SLADECK_")}
    return subprocess.run([str(SLADECK), *args], capture_output=True, text=True, timeout=60,
                          env=base | (env or {}))


def one_error(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    [line] = out.stderr.splitlines()
    assert line.startswith("sladeck: error: ") and "Traceback" not in out.stderr
    return line


def test_the_sqlite_path_never_imports_psycopg(tmp_path: Path) -> None:
    code = ("import sys\nfrom sladeck.cli import main\n"
            "try:\n    main(['--db', sys.argv[1], 'open', '--severity', 'P2', '--title', 't'])\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('psycopg')))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.db")],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.splitlines()[-1] == "[]", out.stderr


PSYCOPG_VERSIONS = """
import json, sys
{before}
from sladeck.store.postgres import PgStore
skipped = "importlib.metadata" not in sys.modules
{after}
import psycopg, psycopg_binary
from importlib import metadata
print(json.dumps([skipped, psycopg.pq.__impl__, psycopg.version.__version__,
                  psycopg_binary.version.__version__, metadata.version("psycopg"),
                  metadata.version("psycopg-binary")]))
"""


@pytest.mark.parametrize("layout", ["wheels", "unknown"])
def test_psycopg_keeps_its_versions_read_without_importlib_metadata(layout: str) -> None:
    """store/pg_import.py: psycopg and psycopg-binary get the versions pip installed
    (as importlib.metadata reads them) without importing it; where the dist-info folders
    are not found, psycopg reads them itself (the plain import)."""
    before, after = ("", "") if layout == "wheels" else (
        "import importlib.util as u; real, u.find_spec = u.find_spec, lambda *a, **k: None",
        "u.find_spec = real")
    out = subprocess.run([sys.executable, "-c", PSYCOPG_VERSIONS.format(before=before,
                                                                       after=after)],
                         capture_output=True, text=True, timeout=60, check=True)
    skipped, impl, psycopg_version, binary_version, *installed = json.loads(out.stdout)
    assert skipped is (layout == "wheels")
    assert impl == "binary"
    assert [psycopg_version, binary_version] == installed


def test_the_postgresql_schema_keeps_pace_with_sqlite_s() -> None:
    """A migration added on SQLite must be ported (pg_schema.STEPS, same number)."""
    from sladeck.store import SCHEMA_VERSION, pg_schema

    assert pg_schema.SCHEMA_VERSION == SCHEMA_VERSION


def test_a_url_with_a_password_is_refused_before_connecting(tmp_path: Path) -> None:
    for url in ("postgresql://alice:hunter2@db.example/desk",
                "postgresql://db.example/desk?password=hunter2"):
        line = one_error(sladeck("--db", url, "list"))
        assert "hunter2" not in line and "~/.pgpass" in line
        line = one_error(sladeck("list", env={"SLADECK_DB": url}))
        assert "hunter2" not in line


def test_an_unreachable_server_is_one_line(tmp_path: Path) -> None:
    line = one_error(sladeck("--db", f"postgresql://nobody@/x?host={tmp_path}&port=1", "list"))
    assert "cannot connect to postgresql://" in line


pg = pytest.mark.usefixtures("pg_cluster")


@pytest.fixture
def backend() -> str:
    """This module's `store` and `desk` are on PostgreSQL."""
    return "postgres"


@pytest.fixture
def url(db_url: str) -> str:
    return db_url


@pg
def test_backup_on_a_server_points_to_pg_dump(url: str, tmp_path: Path) -> None:
    line = one_error(sladeck("--db", url, "backup", str(tmp_path / "copy")))
    assert "pg_dump" in line
    assert not (tmp_path / "copy").exists()


@pg
def test_a_login_role_per_person_is_the_recorded_actor_with_only_the_readme_grants(
        pg_cluster, url: str) -> None:
    """No superuser, not the owner: the README's grants are enough to act, the event log
    can only be appended to, and the account recorded is the role the server
    authenticated (the OS account does not matter); --as names a person behind it."""
    db = url.split("/")[3].split("?")[0]
    pg_cluster.sql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'alice') "
                   "THEN CREATE ROLE alice LOGIN; END IF; END $$")
    pg_cluster.sql(f"GRANT CONNECT ON DATABASE {db} TO alice")
    pg_cluster.sql(readme_grants("alice"), db=db)
    alice = pg_cluster.url(db, user="alice")
    out = sladeck("--db", alice, "open", "--severity", "P2", "--title", "Disk full")
    assert out.returncode == 0, out.stderr
    assert sladeck("--db", alice, "--as", "Alice Liddell", "ack", "1").returncode == 0
    store = open_store(url)
    try:
        assert [(e.account, e.name) for e in store.events(1)] == [
            ("alice", None), ("alice", "Alice Liddell")]
        assert ME not in {e.account for e in store.events(1)}
    finally:
        store.close()
    import psycopg

    with psycopg.connect(alice, autocommit=True) as conn:
        for statement in ("UPDATE events SET kind = 'note'", "DELETE FROM events",
                          "DROP TRIGGER events_no_update ON events", "TRUNCATE events"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    assert sladeck("--db", alice, "verify").returncode == 0


@pg
def test_writers_take_the_write_lock_one_at_a_time(url: str, policy, clock) -> None:
    """A second writer waits for the first one's commit, then sees it: the next ids and
    the chain's head are never read by two transactions at once."""
    first, second = open_store(url), open_store(url)
    seen: list[int] = []
    try:
        with first.write() as tx:
            incident_id = tx.next_incident_id()
            thread = threading.Thread(target=lambda: seen.append(
                actions.open_incident(Desk(second, policy, clock, Actor("bob")),
                                      title="Second", severity="P3").incident.id))
            thread.start()
            time.sleep(0.3)
            assert seen == []  # still waiting for the lock
            tx.policy_id(policy, clock.now())
        thread.join(10)
        assert seen == [incident_id]  # nothing was inserted by the first: it got the id
    finally:
        first.close()
        second.close()


@pg
def test_a_writer_gives_up_on_a_held_write_lock_after_the_lock_timeout(
        pg_cluster, url: str, policy, clock, monkeypatch) -> None:
    """Another process holding the write lock makes a writer wait `LOCK_TIMEOUT_MS`,
    then say in one line that it was kept locked, with nothing written: on its first
    connection and on one it reopened after the server dropped it."""
    from sladeck.store import pg_schema

    monkeypatch.setattr(pg_schema, "LOCK_TIMEOUT_MS", 300)
    holder, waiter = open_store(url), open_store(url)
    waiter.on_reconnect = None
    told: list[str] = []

    def act() -> None:
        try:
            actions.open_incident(Desk(waiter, policy, clock, Actor("bob")), title="Late",
                                  severity="P3")
        except StoreError as exc:
            told.append(str(exc))

    try:
        with holder.write():
            for _ in ("first connection", "reopened connection"):
                started = time.monotonic()
                thread = threading.Thread(target=act)
                thread.start()
                thread.join(10)
                assert not thread.is_alive(), "the writer waited for ever"
                assert 0.25 < time.monotonic() - started < 5
                pg_cluster.sql(f"SELECT pg_terminate_backend({waiter.conn.info.backend_pid})")
        assert len(told) == 2 and all("another process kept it locked" in t for t in told)
        assert waiter.incidents() == []
    finally:
        holder.close()
        waiter.close()


@pg
def test_a_dropped_connection_reconnects_and_says_so_once(pg_cluster, url: str, desk: Desk,
                                                          store) -> None:
    said: list[str] = []
    store.on_reconnect = said.append
    actions.open_incident(desk, title="Before", severity="P2")
    pid = store.conn.info.backend_pid
    pg_cluster.sql(f"SELECT pg_terminate_backend({pid})")
    assert [i.title for i in store.incidents()] == ["Before"]  # a read reconnects
    assert len(said) == 1 and "reconnected" in said[0]
    pg_cluster.sql(f"SELECT pg_terminate_backend({store.conn.info.backend_pid})")
    actions.open_incident(desk, title="After", severity="P2")  # so does a write's BEGIN
    assert len(said) == 2
    assert [i.title for i in store.incidents()] == ["Before", "After"]


@pg
def test_a_connection_lost_inside_a_write_writes_nothing(pg_cluster, url: str, desk: Desk,
                                                         store) -> None:
    actions.open_incident(desk, title="Before", severity="P2")
    with pytest.raises(StoreError, match=r"nothing was written|lost"), store.write() as tx:
        tx.append_event(1, 1, desk.clock.now(), desk.actor, "note", {"text": "half"})
        pg_cluster.sql(f"SELECT pg_terminate_backend({store.conn.info.backend_pid})")
        tx.set_tick(1, "triage", "x", 2)
    assert [e.kind for e in store.events(1)] == ["opened"]


@pg
def test_a_commit_notifies_the_listeners_at_once(url: str, desk: Desk, store) -> None:
    watch = store.listen()
    try:
        assert not select.select([watch.fd], [], [], 0.05)[0]
        assert watch.read() is False
        actions.open_incident(desk, title="Heard", severity="P1")
        assert select.select([watch.fd], [], [], 2)[0]
        assert watch.read() is True
        assert watch.read() is False and not watch.broken
    finally:
        watch.close()


@pg
@sync
async def test_the_dashboard_shows_another_host_s_commit_through_listen(
        url: str, policy, other_store_desk) -> None:
    app = make_app(url, policy, poll_interval=30.0)  # a poll would come far too late
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert type(app.live.watch).__name__ == "PgWatch"
        new = actions.open_incident(other_store_desk, title="From elsewhere",
                                    severity="P0").incident
        start = time.monotonic()
        while new.id not in app.queue.rows and time.monotonic() - start < 2:
            await asyncio.sleep(0.01)
        assert new.id in app.queue.rows
        assert time.monotonic() - start < 0.25


@pytest.fixture
def other_store_desk(url: str, policy, clock):
    store = open_store(url)
    yield Desk(store, policy, clock, Actor("alice"))
    store.close()


@pg
def test_migrate_copies_a_sqlite_database_whole_and_verifies_it(url: str, tmp_path: Path
                                                                 ) -> None:
    db = str(tmp_path / "team.db")
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    assert sladeck("--db", db, "demo", env=env).returncode == 0
    head = sladeck("--db", db, "verify", env=env).stdout.splitlines()[-1]
    out = sladeck("--db", db, "migrate", "--to", url, env=env)
    assert out.returncode == 0, out.stderr
    assert "chain intact" in out.stdout and out.stdout.splitlines()[-1] == head
    for args in (("export", "--format", "json"), ("list", "--all", "--json"),
                 ("show", "3", "--json")):
        on_file = sladeck("--db", db, *args, env=env)
        on_server = sladeck("--db", url, *args, env=env)
        assert on_server.returncode == 0, on_server.stderr
        assert on_server.stdout == on_file.stdout, args
    assert sladeck("--db", url, "verify", env=env).stdout.splitlines()[-1] == head
    # the copy is a working desk: new ids continue after the copied ones
    count = len(json.loads(sladeck("--db", url, "list", "--all", "--json", env=env).stdout))
    assert sladeck("--db", url, "open", "--severity", "P3", "--title", "after", env=env
                   ).stdout.strip() == f"INC-{count + 1}"
    line = one_error(sladeck("--db", db, "migrate", "--to", url, env=env))
    assert "empty" in line


WORKER = Path(__file__).with_name("stress_worker.py")


def _spawn(mode: str, **kwargs: object) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TZ": "UTC"}
    return subprocess.Popen([sys.executable, str(WORKER), mode, json.dumps(kwargs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


@pg
@pytest.mark.slow
@sync
async def test_a_server_restart_under_eight_writers_and_a_dashboard_loses_nothing_done(
        pg_cluster, url: str, policy, tmp_path: Path) -> None:
    """`pg_ctl restart -m fast` mid-work: every client reconnects and says so in one
    line, every action a writer reported done is in the database, whole, and the
    dashboard shows the database as it is afterwards."""
    from test_concurrency import whole

    stop = tmp_path / "stop"
    procs = [_spawn("steady", db=url, worker=w, stop=str(stop)) for w in range(8)]
    app = make_app(url, policy, poll_interval=0.2)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        for proc in procs:  # every writer at work before the restart
            assert b"ready" in await asyncio.to_thread(proc.stdout.readline)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(pg_cluster.restart)
        await asyncio.sleep(2.0)
        stop.touch()
        outs = [await asyncio.to_thread(p.communicate, timeout=120) for p in procs]
        store = open_store(url)
        try:
            expected = {i.id for i in store.incidents()}
            deadline = time.monotonic() + 5
            while {i for i, row in app.queue.rows.items()
                   if row.incident.state in ("open", "acknowledged")} != expected:
                assert time.monotonic() < deadline, "the dashboard did not catch up"
                await asyncio.sleep(0.05)
        finally:
            store.close()
    done, reconnects = [], 0
    for proc, (out, err) in zip(procs, outs, strict=True):
        text = err.decode()
        assert proc.returncode == 0 and "Traceback" not in text, text
        reconnects += text.count("reconnected")
        done += [r["done"] for r in map(json.loads, out.splitlines()) if r.get("done")]
    assert reconnects >= 1, [o[1].decode()[-300:] for o in outs]  # said once per lost connection
    assert all(line.startswith("sladeck: ") for p_err in outs
               for line in p_err[1].decode().splitlines())
    store = open_store(url)
    try:
        events = {e.id for e in store.events()}
        assert len(done) > 50 and set(done) <= events  # nothing reported done was lost
        whole(store, policy)
    finally:
        store.close()


@pg
@pytest.mark.slow
def test_two_hosts_with_skewed_clocks_tell_each_notice_once_and_keep_time_forward(
        url: str, policy, tmp_path: Path) -> None:
    """Host A's clock runs two minutes ahead of host B's: three processes on each see
    the same incidents turn due; each notice is recorded once, and a timeline never runs
    back in time whichever host acts last."""
    from datetime import timedelta

    from conftest import T0
    from sladeck.clock import FixedClock
    from sladeck.verify import verify

    store = open_store(url)
    desk = Desk(store, policy, FixedClock(T0), Actor("opener"))
    ids = [actions.open_incident(desk, title=f"Slow {n}", severity="P3").incident.id
           for n in range(3)]
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [_spawn("notices", db=url, worker=w, policy_path=str(REPO / "policy.yaml"),
                    at=(T0 + timedelta(minutes=33 if w % 2 else 31)).isoformat(),
                    barrier=str(barrier)) for w in range(6)]
    time.sleep(1.0)
    (barrier / "go").touch()
    recorded = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        recorded += json.loads(out.decode().splitlines()[-1])["recorded"]
    assert sorted((kind, clock) for _, kind, clock in recorded) == [("sla_due", "level")] * 3
    ahead = Desk(store, policy, FixedClock(T0 + timedelta(minutes=40)), Actor("host-a"))
    behind = Desk(open_store(url), policy, FixedClock(T0 + timedelta(minutes=38)),
                  Actor("host-b"))
    try:
        actions.add_note(ahead, ids[0], "from the host ahead")
        actions.acknowledge(behind, ids[0])
        times = [e.at for e in store.events(ids[0])]
        assert times == sorted(times)
        assert verify(store) == []
    finally:
        behind.store.close()
        store.close()


@pg
def test_the_postgresql_store_is_the_domain_s_storage_port(store) -> None:
    from sladeck.domain.ports import ImportTransaction, Storage

    assert isinstance(store, Storage)
    with store.write() as tx:
        assert isinstance(tx, ImportTransaction)


@pytest.mark.parametrize("pair", ["Storage", "WriteTransaction", "ImportTransaction"])
def test_the_postgresql_store_declares_every_method_of_the_port_as_sqlite_does(pair: str
                                                                               ) -> None:
    """Same names, and every parameter the port declares, of the same kind, in order."""
    import inspect

    from sladeck.domain import ports
    from sladeck.store.postgres import PgStore, PgTransaction
    from test_ports import _methods

    implementation = PgStore if pair == "Storage" else PgTransaction
    for name, declared in _methods(getattr(ports, pair)).items():
        assert hasattr(implementation, name), f"{implementation.__name__} lacks {name}"
        actual = list(inspect.signature(getattr(implementation, name)).parameters.values())
        for want, have in zip(declared.parameters.values(), actual, strict=False):
            assert (want.name, want.kind) == (have.name, have.kind), (name, want, have)


@pg
def test_a_database_of_schema_4_migrates_its_notices_columns_and_indexes(
        url: str, desk: Desk, store, clock) -> None:
    """A server database made before the SQLite steps were ported (version 4: claims by
    clock, due_at, status) reaches SQLite's version: old claims become names, incidents
    open at the upgrade count as announced and paged, and the new column and index exist."""
    from sladeck.store import SCHEMA_VERSION
    from sladeck.verify import verify

    inc = actions.open_incident(desk, title="Old", severity="P3").incident
    clock.advance(minutes=31)
    [(_, told)] = actions.record_notices(desk, [inc])
    p1 = actions.open_incident(desk, title="Old P1", severity="P1").incident
    with store.conn.transaction():  # back to what `_v4_initial` made, with an old claim
        conn = store.conn
        conn.execute("DROP TABLE notices")
        conn.execute("ALTER TABLE incidents DROP COLUMN source_cleared_at")
        conn.execute("DROP INDEX events_time")
        conn.execute("DROP TABLE clock_cycles")
        conn.execute("ALTER TABLE incidents DROP COLUMN first_acknowledged_at, "
                     "DROP COLUMN sla_ack_at")  # and the queue index that covered it
        conn.execute("CREATE INDEX incidents_queue ON incidents(state, severity, "
                     "sla_breached, sla_active, sla_breach_at, sla_due_at, sla_warn_at)")
        conn.execute("UPDATE sladeck_schema SET version = 4")
        conn.execute("CREATE TABLE notices (incident_id BIGINT REFERENCES incidents(id), "
                     "clock TEXT, due_at TEXT, status TEXT, event_id BIGINT, "
                     "PRIMARY KEY (incident_id, clock, due_at, status))")
        conn.execute("INSERT INTO notices VALUES (%s, 'level', %s, 'due', %s)",
                     (inc.id, told.payload["due_at"], told.id))
    store.close()
    migrated = open_store(url)
    try:
        assert migrated.schema_version() == SCHEMA_VERSION
        rows = set(migrated.conn.execute(
            "SELECT incident_id, kind, key, event_id FROM notices").fetchall())
        assert (inc.id, "sla_due", f"level@{told.payload['due_at']}", told.id) in rows
        assert (p1.id, "announced", "", None) in rows
        again = Desk(migrated, desk.policy, clock, Actor("later"))
        assert [e.kind for _, e in actions.record_notices(again, migrated.incidents())] == []
        assert [i.source_cleared_at for i in migrated.incidents()] == [None, None]
        assert migrated.conn.execute(
            "SELECT to_regclass('events_time') IS NOT NULL").fetchone()[0]
        assert migrated.clock_history(inc.id)[0].kind == "response"  # rebuilt from the log
        assert verify(migrated) == []
    finally:
        migrated.close()


@pg
def test_the_day_s_activity_reads_the_events_time_index(store) -> None:
    with store.conn.transaction():
        store.conn.execute("SET LOCAL enable_seqscan = off")
        plan = " ".join(r[0] for r in store.conn.execute(
            "EXPLAIN SELECT kind, count(DISTINCT incident_id) FROM events "
            "WHERE at >= '2026' AND at < '2027' GROUP BY kind").fetchall())
    assert "events_time" in plan


@pg
def test_report_and_digest_read_the_same_on_the_server_as_on_the_file(
        url: str, tmp_path: Path, policy, monkeypatch: pytest.MonkeyPatch) -> None:
    """store/reports.py's SQL in PostgreSQL's spellings: the hand-checked scenario of
    test_reports, copied to the server, reports and digests exactly as on SQLite."""
    import report_scenario as sc
    from conftest import call_cli

    db = str(tmp_path / "team.db")
    sc.build(Path(db), policy)
    monkeypatch.setattr("sladeck.clock.SystemClock.now", lambda self: sc.NOW)
    code, _, err = call_cli("--db", db, "migrate", "--to", url)
    assert code == 0, err
    span = ("--since", sc.REPORT_SINCE, "--until", sc.REPORT_UNTIL)
    for args in [("report", *span, "--format", "json", "--by", by)
                 for by in ("severity", "level", "service", "assignee")] + [
            ("report", *span, "--format", "csv"), ("report", *span),
            ("digest",), ("digest", "--since", "7d")]:
        on_file, on_server = call_cli("--db", db, *args), call_cli("--db", url, *args)
        assert on_server[0] == 0, on_server[2]
        assert on_server == on_file, args
    assert "Breached (2)" in call_cli("--db", url, "digest")[1]
    counts = json.loads(call_cli("--db", url, "report", *span, "--format", "json")[1])
    assert counts["total"]["counts"]["opened"] == 11


def test_a_server_error_after_a_command_is_a_warning_never_a_traceback(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The command acted; recording its notices then meets a dropped server: one warning
    line (a dashboard or the watch records them later), the command still succeeds."""
    import psycopg

    from sladeck.service import notices_after_command

    class Dropped:
        errors = psycopg.Error

        def changed_since(self, seq: int) -> list:
            raise psycopg.OperationalError("server closed the connection unexpectedly")

    class Acted:
        acted, acted_from, store = True, 0, Dropped()

    notices_after_command(Acted())
    err = capsys.readouterr().err
    assert err.startswith("sladeck: warning: notices not recorded now") and \
        "server closed the connection" in err and "Traceback" not in err
