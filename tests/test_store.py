"""The SQLite store: schema, permissions, append-only log, change detection, transactions."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
from pathlib import Path

import pytest

from conftest import T0, in_transaction
from sladeck.clock import FixedClock
from sladeck.domain import actions
from sladeck.domain.actions import Desk
from sladeck.domain.model import Actor
from sladeck.errors import Refused, StoreError
from sladeck.store import SCHEMA_VERSION, Store, open_store
from sladeck.store.rows import WRITTEN_COLUMNS
from sladeck.verify import verify

pytestmark = pytest.mark.both_backends

L2_FIELDS = {"issue_summary": "db down", "actions_taken": "restarted",
             "current_status": "degraded", "logs_and_evidence": "see log",
             "business_impact": "checkout slow"}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(path), isolation_level=None)


# -- schema and pragmas ---------------------------------------------------------

@pytest.mark.sqlite_only  # SQLite's pragmas, plans, file or raw edits
def test_new_database_has_current_schema_and_safe_pragmas(store: Store) -> None:
    conn = store.conn
    assert SCHEMA_VERSION >= 1
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.schema_version() == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"policies", "incidents", "events", "handoffs", "checklist_ticks", "reviews",
            "follow_ups", "notices"} <= tables


def test_newer_schema_is_refused(db_path: Path) -> None:
    Store(db_path).close()
    raw = _raw(db_path)
    raw.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(StoreError, match="newer sladeck"):
        Store(db_path)


@pytest.mark.sqlite_only  # SQLite's pragmas, plans, file or raw edits
def test_second_store_migrates_nothing_and_works(desk: Desk, db_path: Path, policy, clock
                                                 ) -> None:
    first = actions.open_incident(desk, title="Checkout down", severity="P1").incident
    statements: list[str] = []
    original = sqlite3.connect

    def traced(*args, **kwargs):
        conn = original(*args, **kwargs)
        conn.set_trace_callback(statements.append)
        return conn

    sqlite3.connect = traced
    try:
        second = Store(db_path)
    finally:
        sqlite3.connect = original
    try:
        assert not any(s.lstrip().upper().startswith(("CREATE", "BEGIN")) for s in statements)
        assert second.schema_version() == SCHEMA_VERSION
        assert second.incident(first.id) == first
        other = Desk(second, policy, clock, Actor("bob"))
        outcome = actions.acknowledge(other, first.id)
        assert outcome.incident.state == "acknowledged"
        assert desk.store.incident(first.id).state == "acknowledged"
        assert verify(second) == []
    finally:
        second.close()


# -- file permissions -----------------------------------------------------------

def test_new_database_file_is_private(tmp_path: Path) -> None:
    old = os.umask(0o000)  # even a careless umask must not widen it
    try:
        path = tmp_path / "private" / "sladeck.db"
        Store(path).close()
    finally:
        os.umask(old)
    assert _mode(path) == 0o600
    assert not path.stat().st_mode & stat.S_IWOTH


def test_new_database_in_setgid_group_folder_is_group_shared(tmp_path: Path) -> None:
    shared = tmp_path / "team"
    shared.mkdir()
    shared.chmod(0o2770)
    if not shared.stat().st_mode & stat.S_ISGID:
        pytest.skip("this filesystem does not keep the setgid bit")
    path = shared / "sladeck.db"
    Store(path).close()
    assert _mode(path) == 0o660


def test_world_writable_database_is_refused_with_the_fix(db_path: Path) -> None:
    Store(db_path).close()
    db_path.chmod(0o666)
    with pytest.raises(StoreError) as caught:
        Store(db_path)
    message = str(caught.value)
    assert str(db_path) in message
    assert "chmod o-rwx" in message


# -- the append-only event log ----------------------------------------------------

def test_events_cannot_be_updated_or_deleted(desk: Desk, store: Store) -> None:
    actions.open_incident(desk, title="Checkout down", severity="P2")
    with pytest.raises(store.errors, match="append-only"):
        store.conn.execute("UPDATE events SET kind = 'note'")
    with pytest.raises(store.errors, match="append-only"):
        store.conn.execute("DELETE FROM events")
    assert [e.kind for e in store.events()] == ["opened"]
    assert not in_transaction(store)


def test_dedup_index_refuses_second_open_incident_at_sql_level(desk: Desk, store: Store
                                                               ) -> None:
    first = actions.open_incident(desk, title="Disk full", severity="P2",
                                  dedup_key="disk-full").incident
    columns = ", ".join(c for c in WRITTEN_COLUMNS if c != "id")
    with pytest.raises(store.errors, match="dedup"):  # the partial unique index, by name
        store.conn.execute(f"INSERT INTO incidents (id, {columns}) SELECT id + 1, {columns} "
                           f"FROM incidents WHERE id = {int(first.id)}")
    # once resolved, the key is free again for a new incident
    actions.resolve(desk, first.id, summary="cleaned up", checks="all")
    second = actions.open_incident(desk, title="Disk full", severity="P2", dedup_key="disk-full")
    assert second.incident.id != first.id



# -- change detection -------------------------------------------------------------

def test_changed_since_returns_only_incidents_changed_after_seq(desk: Desk, store: Store
                                                                ) -> None:
    one = actions.open_incident(desk, title="One", severity="P2").incident
    two = actions.open_incident(desk, title="Two", severity="P3").incident
    seq = store.last_seq()
    assert store.changed_since(seq) == []
    actions.acknowledge(desk, two.id)
    changed = store.changed_since(seq)
    assert [i.id for i in changed] == [two.id]
    assert changed[0].state == "acknowledged"
    assert {i.id for i in store.changed_since(0)} == {one.id, two.id}
    seq = store.last_seq()
    actions.add_note(desk, one.id, "looking")  # a note changes no state, but is news
    assert [i.id for i in store.changed_since(seq)] == [one.id]


def test_data_version_moves_only_when_another_connection_commits(desk: Desk, db_url: str,
                                                                 policy, clock) -> None:
    watcher = open_store(db_url)
    try:
        before = watcher.data_version()
        assert watcher.data_version() == before  # nothing happened
        watcher.incidents()
        assert watcher.data_version() == before  # reading is not a change
        actions.open_incident(desk, title="Checkout down", severity="P1")
        after = watcher.data_version()
        assert after != before
        assert watcher.data_version() == after
        assert [i.title for i in watcher.changed_since(0)] == ["Checkout down"]
    finally:
        watcher.close()


def test_reads_leave_no_open_transaction(desk: Desk, store: Store, policy) -> None:
    inc = actions.open_incident(desk, title="Checkout down", severity="P1").incident
    actions.escalate(desk, inc.id, to="L2", trigger="performance", fields=L2_FIELDS)
    reads = [
        lambda: store.schema_version(), lambda: store.data_version(), lambda: store.last_seq(),
        lambda: store.incident(inc.id), lambda: store.incidents(),
        lambda: store.incidents(None, severity="P1", level="L2"),
        lambda: store.changed_since(0), lambda: store.events(),
        lambda: store.events(inc.id, after=1), lambda: list(store.iter_events(batch=1)),
        lambda: store.detail(inc.id), lambda: store.policy(inc.policy_id),
        lambda: store.adopt(policy), lambda: store.counts(), lambda: store.integrity_check(),
    ]
    for read in reads:
        read()
        assert not in_transaction(store)
    # a half-consumed iterator holds no transaction either
    events = store.iter_events(batch=1)
    next(events)
    assert not in_transaction(store)
    events.close()


# -- every write begins with BEGIN IMMEDIATE ---------------------------------------

_WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER)\b", re.IGNORECASE)


def _check_transactions(statements: list[str]) -> int:
    """Every write sits inside a transaction opened by BEGIN IMMEDIATE; returns their count."""
    inside, opened = False, 0
    for sql in statements:
        text = sql.strip().upper()
        if text.startswith("--"):  # statements run by triggers
            continue
        if text.startswith("BEGIN"):
            assert text == "BEGIN IMMEDIATE", f"not an immediate transaction: {sql!r}"
            assert not inside, "nested BEGIN"
            inside, opened = True, opened + 1
        elif text.startswith(("COMMIT", "ROLLBACK", "END")):
            inside = False
        elif _WRITE.match(sql):
            assert inside, f"write outside BEGIN IMMEDIATE: {sql!r}"
    assert not inside, "a transaction was left open"
    return opened


@pytest.mark.sqlite_only  # SQLite's pragmas, plans, file or raw edits
def test_every_action_opens_with_begin_immediate(desk: Desk, store: Store, clock) -> None:
    from sladeck.domain.ingest import import_ndjson

    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    calls = []

    def run(name, fn):
        before = len(statements)
        fn()
        calls.append(name)
        batch = statements[before:]
        assert _check_transactions(batch) >= 1, f"{name} did not open a transaction"
        first = next(s for s in batch if s.strip().upper().startswith(("BEGIN", "INSERT",
                                                                       "UPDATE", "DELETE")))
        assert first.strip().upper() == "BEGIN IMMEDIATE", name

    run("open", lambda: actions.open_incident(desk, title="A", severity="P1", dedup_key="a"))
    run("repeat", lambda: actions.open_incident(desk, title="A", severity="P1", dedup_key="a"))
    run("ack", lambda: actions.acknowledge(desk, 1))
    run("note", lambda: actions.add_note(desk, 1, "hi"))
    run("assign", lambda: actions.assign(desk, 1, "bob"))
    run("severity", lambda: actions.change_severity(desk, 1, "P2", reason="smaller"))
    run("tick", lambda: actions.tick(desk, 1, "triage", "assess_severity"))
    run("untick", lambda: actions.tick(desk, 1, "triage", "assess_severity", done=False))
    run("escalate", lambda: actions.escalate(desk, 1, to="L2", trigger="performance",
                                             fields=L2_FIELDS))
    clock.advance(hours=3)
    run("notices", lambda: actions.record_notices(desk, store.incidents()))
    run("resolve", lambda: actions.resolve(desk, 1, summary="fixed", checks="all"))
    run("follow-up", lambda: actions.add_follow_up(desk, 1, kind="monitoring",
                                                   description="alert", owner="bob"))
    run("follow-up done", lambda: actions.complete_follow_up(desk, 1))
    run("reopen", lambda: actions.reopen(desk, 1, reason="back"))
    run("sev P1", lambda: actions.change_severity(desk, 1, "P1", reason="bigger"))
    run("resolve P1", lambda: actions.resolve(desk, 1, summary="fixed", checks="all"))
    run("review", lambda: actions.file_review(desk, 1, {
        "incident_analysis": "a", "root_cause_analysis": "b", "lessons_learned": "c",
        "process_improvement": "d"}))
    run("apply", lambda: actions.apply_policy(desk))
    run("import", lambda: import_ndjson(desk, b'{"title": "B", "severity": "P3"}\n', "x"))

    def refused():
        with pytest.raises(Refused, match="closed"):
            actions.acknowledge(desk, 1)
    run("refused", refused)
    store.conn.set_trace_callback(None)
    assert not any(re.fullmatch(r"\s*BEGIN\s*(DEFERRED)?\s*(TRANSACTION)?\s*;?\s*", s,
                                re.IGNORECASE) for s in statements)
    assert len(calls) == 20
    assert verify(store) == []


# -- backup and verify ---------------------------------------------------------------

@pytest.mark.sqlite_only  # SQLite's pragmas, plans, file or raw edits
def test_backup_is_a_consistent_copy(desk: Desk, store: Store, tmp_path: Path) -> None:
    actions.open_incident(desk, title="One", severity="P1")
    actions.open_incident(desk, title="Two", severity="P3")
    actions.acknowledge(desk, 2)
    dest = tmp_path / "copy.db"
    store.backup(str(dest))
    raw = _raw(dest)
    try:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        raw.close()
    copy = Store(dest)
    try:
        assert copy.incidents(None) == store.incidents(None)
        assert [e.hash for e in copy.events()] == [e.hash for e in store.events()]
        assert verify(copy) == []
    finally:
        copy.close()


def _busy_history(desk: Desk) -> None:
    inc = actions.open_incident(desk, title="Checkout down", severity="P2").incident
    actions.add_note(desk, inc.id, "looking")
    actions.acknowledge(desk, inc.id)
    actions.open_incident(desk, title="Other", severity="P3")
    actions.escalate(desk, inc.id, to="L2", trigger="performance", fields=L2_FIELDS)


def test_verify_passes_on_a_healthy_database(desk: Desk, store: Store) -> None:
    assert verify(store) == []
    _busy_history(desk)
    assert verify(store) == []


@pytest.mark.sqlite_only  # SQLite's pragmas, plans, file or raw edits
def test_verify_names_the_first_edited_event(desk: Desk, store: Store, db_path: Path) -> None:
    _busy_history(desk)
    raw = _raw(db_path)
    raw.execute("DROP TRIGGER events_no_update")
    raw.execute("""UPDATE events SET payload = '{"text":"nothing to see"}' WHERE id = 2""")
    raw.close()
    problems = verify(store)
    assert problems
    assert problems[0].startswith("event 2 (INC-1, note)")
    assert "edited" in problems[0]


@pytest.mark.sqlite_only  # SQLite's pragmas, plans, file or raw edits
def test_verify_names_a_state_edit_of_an_event(desk: Desk, store: Store, db_path: Path) -> None:
    _busy_history(desk)
    raw = _raw(db_path)
    raw.execute("DROP TRIGGER events_no_update")
    raw.execute("UPDATE events SET kind = 'note' WHERE id = 3")  # the acknowledgement
    raw.close()
    problems = verify(store)
    assert problems[0].startswith("event 3 (INC-1, note)")


@pytest.mark.sqlite_only  # SQLite's pragmas, plans, file or raw edits
def test_verify_reports_a_deleted_event(desk: Desk, store: Store, db_path: Path) -> None:
    _busy_history(desk)
    raw = _raw(db_path)
    raw.execute("DROP TRIGGER events_no_delete")
    raw.execute("DELETE FROM events WHERE id = 2")
    raw.close()
    problems = verify(store)
    assert problems
    assert "2..2 are missing (deleted)" in problems[0]


@pytest.mark.sqlite_only  # SQLite's pragmas, plans, file or raw edits
def test_verify_reports_an_edited_incident_row(desk: Desk, store: Store, db_path: Path) -> None:
    _busy_history(desk)
    raw = _raw(db_path)
    raw.execute("UPDATE incidents SET level = 'L4' WHERE id = 1")
    raw.close()
    problems = verify(store)
    assert problems == ["INC-1: stored level 'L4' differs from its timeline ('L2')"]


@pytest.mark.sqlite_only  # SQLite's pragmas, plans, file or raw edits
def test_verify_reports_an_edited_or_stale_sla_schedule(desk: Desk, store: Store,
                                                        db_path: Path) -> None:
    """The stored schedule orders the dashboard's queue: a hand edit, or one left behind
    by a change to the clock rules, is found like any other edited row."""
    _busy_history(desk)
    raw = _raw(db_path)
    raw.execute("UPDATE incidents SET sla_due_at = sla_due_at + 3600000000 WHERE id = 2")
    raw.close()
    assert verify(store) == ["INC-2: stored SLA schedule differs from its timeline "
                             "(the dashboard would order it wrongly)"]


@pytest.mark.sqlite_only  # SQLite's pragmas, plans, file or raw edits
def test_dedup_lookups_use_an_index_not_a_table_scan(store) -> None:
    """Importing N alerts must not cost N table scans (10,000 lines took 10 s that way)."""
    from sladeck.store.rows import SELECT_INCIDENT as _SELECT_INCIDENT
    from sladeck.store.sqlite import _OPEN_STATES

    for sql in (f"{_SELECT_INCIDENT} WHERE dedup_key = ? AND {_OPEN_STATES}",
                f"{_SELECT_INCIDENT} WHERE dedup_key = ? AND dedup_key IS NOT NULL "
                "ORDER BY id DESC LIMIT 1"):
        plan = " ".join(str(row[-1]) for row in
                        store.conn.execute(f"EXPLAIN QUERY PLAN {sql}", ("k",)).fetchall())
        assert "USING" in plan and "INDEX" in plan and "SCAN incidents" not in plan, plan


@pytest.mark.sqlite_only  # SQLite's pragmas, plans, file or raw edits
def test_noticing_a_change_reads_by_index_whatever_the_table_size(desk: Desk, store: Store
                                                                  ) -> None:
    """What the dashboard reads after another process's commit: an index range, never a
    walk of every incident ever kept (36 ms a commit at 110,000 incidents that way)."""
    statements: list[str] = []
    actions.open_incident(desk, title="A", severity="P2")
    store.conn.set_trace_callback(statements.append)
    store.changed_since(0)
    store.conn.set_trace_callback(None)
    assert len(statements) == 1
    for sql in statements:
        plan = " ".join(str(row[-1]) for row in
                        store.conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall())
        assert "incidents_changed" in plan and "SCAN incidents" not in plan, plan


# -- bulk writes (the import's path) ------------------------------------------------------

def test_bulk_rows_equal_single_rows(desk: Desk, store: Store, clock) -> None:
    from sladeck.store.rows import WRITTEN_COLUMNS
    from sladeck.store.rows import incident_row as _incident_row
    from sladeck.store.rows import incident_rows as _incident_rows

    actions.open_incident(desk, title="A", severity="P1", service="web", dedup_key="a")
    actions.open_incident(desk, title="B", severity="P2")
    actions.acknowledge(desk, 1)
    clock.advance(minutes=3)
    actions.resolve(desk, 2, summary="done", checks="all")
    incidents = store.incidents(None)
    assert _incident_rows(incidents, store.policy) == [
        tuple(_incident_row(i, store.policy(i.policy_id))[c] for c in WRITTEN_COLUMNS)
        for i in incidents]


@pytest.mark.sqlite_only  # SQLite's pragmas, plans, file or raw edits
def test_a_bulk_write_has_a_larger_cache_for_its_transaction_only(store: Store) -> None:
    from sladeck.store import BULK_CACHE_KIB

    def cache() -> int:
        return store.conn.execute("PRAGMA cache_size").fetchone()[0]

    before = cache()
    with store.write(bulk=True):
        assert cache() == -BULK_CACHE_KIB
        assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # still FULL
    assert cache() == before
    with pytest.raises(RuntimeError), store.write(bulk=True):
        raise RuntimeError("refused")
    assert cache() == before and not store.conn.in_transaction


def test_incident_rows_are_inserted_many_to_a_statement_all_or_nothing(
        desk: Desk, store: Store, policy) -> None:
    from dataclasses import replace

    from sladeck.store import MULTI_ROW, incident_values

    actions.open_incident(desk, title="A", severity="P1", dedup_key="a")
    first = store.incident(1)
    rows = [incident_values(replace(first, id=n, dedup_key=f"k{n}"), policy)
            for n in range(2, 2 * MULTI_ROW + 5)]  # two whole statements and a rest
    with store.write() as tx:
        tx.insert_incident_rows(rows)
    from sladeck.store.rows import WRITTEN_COLUMNS

    assert store.conn.execute(f"SELECT {', '.join(WRITTEN_COLUMNS)} FROM incidents "
                              "WHERE id > 1 ORDER BY id").fetchall() == rows
    more = [incident_values(replace(first, id=n, dedup_key=f"m{n}"), policy)
            for n in range(len(rows) + 2, len(rows) + 2 + MULTI_ROW + 1)]
    for bad, error in ((replace(first, id=99_999), "one of these"),  # open key "a" again
                       (replace(first, id=99_999, dedup_key=None, state="lost"), "CHECK")):
        for at in (0, MULTI_ROW - 1, MULTI_ROW):  # first, last of a statement, the rest
            with pytest.raises((Refused, store.errors), match=re.compile(error, re.I)), \
                    store.write() as tx:
                tx.insert_incident_rows([*more[:at], incident_values(bad, policy), *more[at:]])
            assert store.conn.execute("SELECT count(*) FROM incidents").fetchone()[0] == \
                len(rows) + 1


def test_append_events_continues_the_chain_or_refuses(desk: Desk, store: Store) -> None:
    from sladeck.domain.chain import GENESIS, event_hash

    actions.open_incident(desk, title="A", severity="P1")
    last = store.events()[-1]
    with pytest.raises(StoreError, match="does not continue the chain"), store.write() as tx:
        tx.append_events(desk.actor, [(last.id + 2, 1, 1, "2026-11-26T15:00:00.000000Z",
                                       "note", {"text": "gap"})])
    with store.write() as tx:
        links = tx.append_events(desk.actor, [
            (last.id + 1, 1, 1, "2026-11-26T15:00:00.000000Z", "note", {"text": "one"}),
            (last.id + 2, 1, 1, "2026-11-26T15:00:01.000000Z", "note", {"text": "two"})])
    events = store.events()
    assert [(e.prev_hash, e.hash) for e in events[-2:]] == links
    assert links[0][0] == last.hash and links[0][0] != GENESIS
    assert events[-1].hash == event_hash(events[-2].hash, events[-1].id, 1, 1,
                                         "2026-11-26T15:00:01.000000Z", "tester", "Tess",
                                         "note", '{"text":"two"}')
    # the chain is intact; only the row was not updated (a bare store-level test)
    assert verify(store) == ["INC-1: stored changed_seq 1 differs from its timeline (3)"]


def test_stored_times_read_back_exactly(store: Store) -> None:
    from datetime import UTC, datetime

    from sladeck.domain.model import to_iso
    from sladeck.store.rows import _time

    at = datetime(2026, 11, 26, 15, 0, 0, 123456, tzinfo=UTC)
    assert _time(to_iso(at)) == at and _time(to_iso(at)).tzinfo is UTC
    assert _time("2026-11-26T17:00:00.123456+02:00") == at  # any other form still parses
    assert _time("2026-11-26T15:00:00.123456").tzinfo is UTC


def test_event_hash_hashes_the_json_text_it_always_did() -> None:
    import hashlib
    import json

    from hypothesis import given
    from hypothesis import strategies as st

    from sladeck.domain.chain import event_hash

    def reference(*fields) -> str:
        return hashlib.sha256(json.dumps(list(fields), ensure_ascii=True,
                                         separators=(",", ":")).encode()).hexdigest()

    text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)))

    @given(st.tuples(text, st.integers(1, 2**63 - 1), st.integers(1, 2**63 - 1),
                     st.integers(0, 10**6), text, text, st.none() | text, text, text))
    def check(fields) -> None:
        assert event_hash(*fields) == reference(*fields)

    check()
    odd = ("0" * 64, True, 1, 1, "at", "acct", None, "note", "{}")  # not the usual types
    assert event_hash(*odd) == reference(*odd)


@pytest.mark.sqlite_only  # SQLite's pragmas, plans, file or raw edits
def test_batched_dedup_lookup_uses_the_dedup_index(store: Store) -> None:
    """With a long IN list SQLite would rather scan the queue index (every open incident,
    once per batch); the lookup pins the partial dedup index."""
    from sladeck.store import BATCH

    plans: list[str] = []
    store.conn.set_trace_callback(plans.append)
    with store.write() as tx:
        tx.open_by_dedup_keys([f"k{n}" for n in range(BATCH)])
    store.conn.set_trace_callback(None)
    sql = next(s for s in plans if "dedup_key IN" in s)
    plan = store.conn.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
    assert "incidents_open_dedup" in str(plan) and "incidents_queue" not in str(plan)


# -- the queue's reads: stored schedules ------------------------------------------------

def _random_incidents(store: Store, policy, count: int, seed: int) -> list:
    """`count` incidents in every state, level and severity, written in one transaction."""
    import random
    from datetime import timedelta

    from conftest import T0
    from sladeck.domain.model import Incident

    rng = random.Random(seed)
    levels = policy.levels
    incidents = []
    with store.write() as tx:
        policy_id = tx.policy_id(policy, T0)
        for n in range(count):
            opened = T0 - timedelta(minutes=rng.uniform(0, 900))
            level = rng.choice(levels)
            entered = opened if level == levels[0] else opened + timedelta(minutes=rng.uniform(0, 60))
            state = rng.choice(("open", "open", "acknowledged", "resolved", "closed"))
            acked = entered + timedelta(minutes=rng.uniform(-5, 40)) \
                if state != "open" or rng.random() < 0.2 else None
            resolved = entered + timedelta(minutes=rng.uniform(1, 60)) \
                if state in ("resolved", "closed") else None
            incidents.append(Incident(
                id=n + 1, title=f"t{n}", severity=rng.choice(list(policy.severities)),
                level=level, state=state, opened_at=opened, opened_by="x",
                level_entered_at=entered, policy_id=policy_id, version=1,
                acknowledged_at=acked, resolved_at=resolved,
                reached={lv: entered for lv in levels[: levels.index(level) + 1]},
                updated_at=T0, updated_by="x", last_change="opened"))
        tx.insert_incidents(incidents)
    return incidents


def test_the_worst_rows_read_from_the_store_are_the_queues_first_rows(store: Store, policy
                                                                       ) -> None:
    """The first frame's rows (SQLite ordering the stored schedules) and its counts are
    exactly what the queue shows once every row is loaded, at any instant."""
    from datetime import timedelta

    from conftest import T0
    from sladeck.domain.clocks import to_us
    from sladeck.domain.model import ACTIVE_STATES
    from sladeck.domain.queue import Queue

    _random_incidents(store, policy, 400, seed=3)
    states = ("open", "acknowledged", "resolved")
    for minutes in range(0, 24 * 60, 97):
        now = T0 + timedelta(minutes=minutes)
        queue = Queue(store.policy)
        queue.load(store.queue_items(states), now)
        worst = store.queue_items(states, worst=40, now=to_us(now),
                                  severities=tuple(policy.severities))
        assert [i.id for i in worst] == [r.incident.id for r in queue.order[:40]], minutes
        by_severity, by_risk = store.queue_counts(ACTIVE_STATES, to_us(now))
        assert (by_severity, by_risk) == (+queue.by_severity, +queue.by_risk), minutes


@pytest.mark.sqlite_only  # SQLite's pragmas, plans, file or raw edits
def test_the_first_frame_reads_the_queue_index_not_every_row(store: Store, policy) -> None:
    """The worst rows are ordered and the counts taken from the queue index alone: with
    10,000 open among 100,000 closed, reading each open row cost ~8 ms of start-up."""
    from conftest import T0
    from sladeck.domain.clocks import to_us
    from sladeck.domain.model import ACTIVE_STATES

    _random_incidents(store, policy, 50, seed=5)
    plans: list[str] = []
    store.conn.set_trace_callback(plans.append)
    store.queue_items(("open", "acknowledged", "resolved"), worst=10, now=to_us(T0),
                      severities=tuple(policy.severities))
    store.queue_counts(ACTIVE_STATES, to_us(T0))
    store.conn.set_trace_callback(None)
    assert len(plans) == 2
    for sql in plans:
        plan = [row[3] for row in store.conn.execute("EXPLAIN QUERY PLAN " + sql)]
        scans = [step for step in plan if step.startswith(("SCAN", "SEARCH"))]
        # every full-range read is the covering index; the table is read only by rowid
        assert all("COVERING INDEX incidents_queue" in step or "rowid=?" in step
                   for step in scans), plan


def test_every_write_keeps_the_stored_schedule(desk: Desk, store: Store, policy, clock
                                               ) -> None:
    from sladeck.domain.history import clock_history
    from sladeck.domain.queue import QueueItem

    _busy_history(desk)
    clock.advance(minutes=10)
    actions.resolve(desk, 2, summary="done", checks="all")
    actions.reopen(desk, 2, reason="back again")
    actions.change_severity(desk, 1, "P1", reason="worse")
    items = store.queue_items(("open", "acknowledged", "resolved", "closed"))
    assert len(items) == 2
    for item in items:
        incident = store.incident(item.id)
        assert incident is not None
        history = clock_history(store.events(item.id), store.policy)
        assert store.clock_history(item.id) == history
        assert item == QueueItem.of(incident, policy, history), item.id


@pytest.mark.sqlite_only  # SQLite's pragmas, plans, file or raw edits
def test_schema_2_databases_get_their_schedules(desk: Desk, store: Store, db_path: Path,
                                                policy) -> None:
    """An older database migrates: every incident's schedule is computed once."""
    from sladeck.domain.history import clock_history
    from sladeck.domain.queue import QueueItem
    from sladeck.store import SLA_COLUMNS

    _busy_history(desk)
    store.close()
    raw = _raw(db_path)
    raw.execute("DROP INDEX incidents_queue")  # schema 4's, as schema 2 had it
    raw.execute("CREATE INDEX incidents_state ON incidents(state)")
    from sladeck.store.schema import ADDED_BY

    for column in (*SLA_COLUMNS, "first_acknowledged_at", *ADDED_BY):  # not in schema 2
        raw.execute(f"ALTER TABLE incidents DROP COLUMN {column}")
    raw.execute("DROP TABLE clock_cycles")  # schema 5's
    raw.execute("DROP TABLE notices")  # schema 1's, as schema 2 had it
    raw.execute("CREATE TABLE notices (incident_id INTEGER, clock TEXT, due_at TEXT, "
                "status TEXT, event_id INTEGER, PRIMARY KEY (incident_id, clock, due_at, status))")
    raw.execute("PRAGMA user_version=2")
    raw.close()
    migrated = Store(db_path)
    assert migrated.schema_version() == SCHEMA_VERSION
    for item in migrated.queue_items(("open", "acknowledged", "resolved", "closed")):
        incident = migrated.incident(item.id)
        history = migrated.clock_history(item.id)
        assert history and history == clock_history(migrated.events(item.id), policy)
        assert incident is not None and item == QueueItem.of(incident, policy, history)
    assert verify(migrated) == []
    migrated.close()


def test_imported_incidents_get_their_stored_schedules(desk: Desk, store: Store, policy,
                                                       clock) -> None:
    """The bulk import builds schedules without `Incident`s: they equal the real ones,
    for lines with and without their own opening time, and for repeated ones."""
    import json
    from datetime import timedelta

    from sladeck.domain.ingest import import_ndjson
    from sladeck.domain.model import to_iso
    from sladeck.domain.queue import QueueItem

    lines = []
    for n in range(40):
        line = {"title": f"alert {n}", "severity": f"P{n % 4}", "dedup_key": f"k{n % 25}"}
        if n % 3:
            line["opened_at"] = to_iso(clock.now() - timedelta(minutes=n * 7, seconds=n))
        lines.append(json.dumps(line))
    import_ndjson(desk, "\n".join(lines).encode(), "alerts.ndjson")
    items = store.queue_items(("open", "acknowledged", "resolved", "closed"))
    assert len(items) == 25
    for item in items:
        incident = store.incident(item.id)
        assert incident is not None and item == QueueItem.of(incident, policy), item.id


# -- files: an orphaned -wal, planted links, backups, damage, a full disk (SPEC §9) ---------


def _sladeck(*argv: str) -> tuple[int, str, str]:
    from conftest import call_cli

    return call_cli(*argv)


def _one_line_error(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sladeck: error: "), err
    return lines[0]


def test_a_missing_database_beside_its_wal_is_refused_naming_the_wal(
        tmp_path: Path, policy) -> None:
    import shutil

    db, wal = tmp_path / "desk.db", tmp_path / "desk.db-wal"
    store = Store(db)
    desk = Desk(store, policy, FixedClock(T0), Actor("alice"))
    actions.open_incident(desk, title="Only in the WAL", severity="P1")
    shutil.copy(db, tmp_path / "saved.db")  # the file as it was, and its WAL
    shutil.copy(wal, tmp_path / "saved.db-wal")
    store.close()
    db.unlink()
    shutil.copy(tmp_path / "saved.db-wal", wal)  # desk.db moved away: its WAL stays
    code, out, err = _sladeck("--db", str(db), "list")
    line = _one_line_error(err)
    assert code == 1 and str(wal) in line and "put" in line and str(db) in line
    assert not db.exists()  # no empty database made over the data
    assert wal.stat().st_size > 0
    shutil.copy(tmp_path / "saved.db", db)  # put back, as the message says: nothing lost
    code, out, err = _sladeck("--db", str(db), "list")
    assert code == 0 and "Only in the WAL" in out


def test_a_database_is_never_created_through_a_dangling_link(tmp_path: Path) -> None:
    planted = tmp_path / "elsewhere.db"
    link = tmp_path / "desk.db"
    link.symlink_to(planted)
    code, _, err = _sladeck("--db", str(link), "list")
    assert code == 1 and "symbolic link" in _one_line_error(err)
    assert not planted.exists()
    real = tmp_path / "real.db"
    Store(real).close()
    mine = tmp_path / "mine.db"
    mine.symlink_to(real)  # your own link to an existing database is followed
    assert _sladeck("--db", str(mine), "list")[0] == 0


@pytest.mark.parametrize("sidecar", ["-wal", "-shm"])
def test_a_planted_wal_or_shm_link_is_refused(tmp_path: Path, sidecar: str) -> None:
    db = tmp_path / "desk.db"
    Store(db).close()
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    Path(f"{db}{sidecar}").symlink_to(victim)
    with pytest.raises(StoreError, match="symbolic link"):
        Store(db)
    assert victim.read_text() == "keep me"


@pytest.mark.sqlite_only  # SQLite's pragmas, plans, file or raw edits
def test_backup_is_private_never_through_a_link_never_into_a_missing_folder(
        tmp_path: Path, store: Store) -> None:
    old = os.umask(0o000)
    try:
        planted = tmp_path / "planted.db"
        (tmp_path / "b.db").symlink_to(planted)
        with pytest.raises(StoreError, match="already exists"):
            store.backup(tmp_path / "b.db")
        assert not planted.exists()
        with pytest.raises(StoreError, match="does not exist") as refused:
            store.backup(tmp_path / "no" / "such" / "b.db")
        assert "\n" not in str(refused.value) and not (tmp_path / "no").exists()
        store.backup(tmp_path / "ok.db")
        assert stat.S_IMODE((tmp_path / "ok.db").stat().st_mode) == 0o600
        assert sorted(p.name for p in tmp_path.iterdir()) == \
            sorted(["b.db", "ok.db", "sladeck.db", "sladeck.db-wal", "sladeck.db-shm"])
        team = tmp_path / "team"
        team.mkdir()
        team.chmod(0o2770)
        store.backup(team / "b.db")
        assert stat.S_IMODE((team / "b.db").stat().st_mode) == 0o660
        assert Store(tmp_path / "ok.db").counts() == store.counts()
    finally:
        os.umask(old)


def _damage(db: Path, *names: str) -> None:
    """Overwrite the root page of the incidents table (or of `names`) with garbage."""
    conn = sqlite3.connect(db)
    roots = [conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?",
                          (name,)).fetchone()[0] for name in names or ("incidents",)]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    with db.open("r+b") as f:
        for root in roots:
            f.seek((root - 1) * size)
            f.write(b"\xff" * size)


def test_a_damaged_file_is_one_plain_line_and_writers_refuse_after(
        tmp_path: Path, policy) -> None:
    db = tmp_path / "desk.db"
    store = Store(db)
    desk = Desk(store, policy, FixedClock(T0), Actor("alice"))
    actions.open_incident(desk, title="t", severity="P1")
    store.close()
    _damage(db)
    for argv in (("list",), ("ack", "1"), ("open", "--severity", "P2", "--title", "x")):
        code, _, err = _sladeck("--db", str(db), *argv)
        line = _one_line_error(err)
        assert code == 1 and "unexpected" not in line, line
        assert "sladeck verify" in line and "backup" in line and ".recover" in line, line
    store = Store(db)
    with pytest.raises(StoreError, match="malformed"), store.write() as tx:
        tx.conn.execute("UPDATE incidents SET title = 'x'")
    with pytest.raises(StoreError, match="will not write"), store.write() as tx:
        tx.conn.execute("INSERT INTO policies (digest, source, added_at) VALUES ('d', 's', 't')")
    store.close()


@pytest.mark.sqlite_only  # SQLite's pragmas, plans, file or raw edits
def test_a_full_disk_is_one_plain_line_and_nothing_is_written(store: Store, policy) -> None:
    desk = Desk(store, policy, FixedClock(T0), Actor("alice"))
    actions.open_incident(desk, title="before", severity="P3")
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    store.conn.execute(f"PRAGMA max_page_count={pages}")  # as if the disk were full
    with pytest.raises(StoreError) as refused:
        actions.open_incident(desk, title="x", description="y" * 60_000, severity="P3")
    message = str(refused.value)
    assert "disk is full" in message and "\n" not in message and "free space" in message
    assert [i.title for i in store.incidents()] == ["before"]


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 2 MiB file system of its own (root only: a tmpfs mount)."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs",
                           str(mount)], capture_output=True, text=True, check=False)
    if os.getuid() != 0 or made.returncode != 0:
        pytest.skip(f"needs root and tmpfs mounts: {made.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_database_on_a_read_only_mount_can_be_read_not_written(small_disk: Path,
                                                                 tmp_path: Path) -> None:
    import subprocess

    live = tmp_path / "live.db"
    assert _sladeck("--db", str(live), "open", "--severity", "P2", "--title", "Archived")[0] == 0
    assert _sladeck("--db", str(live), "backup", str(small_disk / "archive.db"))[0] == 0
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    db = str(small_disk / "archive.db")
    for argv, seen in ((("list",), "Archived"), (("show", "1"), "Archived"),
                       (("export", "--format", "md"), "Archived"), (("verify",), "ok")):
        code, out, err = _sladeck("--db", db, *argv)
        assert code == 0 and seen in out, (argv, err)
    code, _, err = _sladeck("--db", db, "ack", "1")
    line = _one_line_error(err)
    assert code == 1 and "read-only file system" in line and "unexpected" not in line


def test_a_full_disk_under_a_command_is_one_plain_line(small_disk: Path) -> None:
    db = str(small_disk / "desk.db")
    assert _sladeck("--db", db, "open", "--severity", "P3", "--title", "before")[0] == 0
    filler = small_disk / "filler"
    with filler.open("wb") as f:  # leave about 20 KiB free
        free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
        f.write(b"\0" * max(0, free - 20 * 1024))
    code, _, err = _sladeck("--db", db, "open", "--severity", "P3", "--title", "x",
                            "--description", "y" * 60_000)
    line = _one_line_error(err)
    assert code == 1 and "disk is full" in line and "unexpected" not in line, line
    filler.unlink()
    code, out, _ = _sladeck("--db", db, "list", "--json")
    assert code == 0 and [i["title"] for i in json.loads(out)] == ["before"]
