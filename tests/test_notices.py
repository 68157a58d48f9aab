"""Notices without a viewer (SPEC §6, issue 12): each notice named, claimed once by the
database, recorded by whichever process sees it first; `sladeck watch` in-process on a
fixed clock (the real command's processes are in test_watch.py)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import REPO, T0, make_app, settle, sync
from sladeck.clock import FixedClock
from sladeck.domain import actions
from sladeck.domain.actions import Desk
from sladeck.domain.model import Actor
from sladeck.domain.notices import NOTICE_KINDS
from sladeck.errors import PolicyError, StoreError
from sladeck.policy import Policy, parse_policy
from sladeck.service import NoticeWatch
from sladeck.store import Store
from sladeck.store.schema import MIGRATIONS, _notice_keys

SHIPPED = (REPO / "policy.yaml").read_text(encoding="utf-8")


def notices(store: Store, incident_id: int) -> list[tuple[str, dict]]:
    return [(e.kind, e.payload) for e in store.events(incident_id) if e.kind in NOTICE_KINDS]


def handoff(policy: Policy, level: str) -> dict[str, str]:
    return {item.key: f"{item.label} text" for item in policy.escalation[level].handoff}


# -- what is owed, once ------------------------------------------------------------------------

def test_an_arrival_already_breached_is_announced_with_its_breaches_once(
        desk: Desk, store: Store, clock: FixedClock) -> None:
    """An alert imported with an old `opened_at` arrives breached: announced, and every
    passed deadline told, the moment a process sees it; never twice."""
    inc = actions.open_incident(desk, title="Old alert", severity="P1",
                                opened_at=T0 - timedelta(hours=3)).incident
    recorded = actions.record_notices(desk, [inc])
    kinds = [e.kind for _, e in recorded]
    assert kinds[0] == "announced" and recorded[0][1].payload["risk"] == "breached"
    assert "sla_breached" in kinds and "repaged" in kinds
    assert actions.record_notices(desk, store.incidents()) == []
    assert len(notices(store, inc.id)) == len(recorded)
    assert store.incident(inc.id).version == inc.version  # notices make no form stale


def test_p2_and_p3_are_not_announced(desk: Desk, store: Store) -> None:
    inc = actions.open_incident(desk, title="Slow page", severity="P3").incident
    assert actions.record_notices(desk, [inc]) == []


def test_an_escalation_pages_the_new_levels_contacts_once(
        desk: Desk, store: Store, policy: Policy, clock: FixedClock) -> None:
    inc = actions.open_incident(desk, title="Disk", severity="P2").incident
    clock.advance(minutes=1)
    actions.acknowledge(desk, inc.id)
    out = actions.escalate(desk, inc.id, to="L3", trigger="other", reason="needs experts",
                           fields=handoff(policy, "L3"))
    recorded = actions.record_notices(desk, [out.incident])
    assert [e.kind for _, e in recorded] == ["paged"]
    payload = recorded[0][1].payload
    assert payload["level"] == "L3" and policy.level_contacts["L3"].primary in payload["to"]
    assert actions.record_notices(desk, store.incidents()) == []
    detail = store.detail(inc.id)
    assert detail is not None
    from sladeck.report import incident_markdown

    text = incident_markdown(detail, policy, clock.now())
    assert f"paged L3: {policy.level_contacts['L3'].primary}" in text


def test_repages_fall_at_exact_instants_up_to_the_limit(
        desk: Desk, store: Store, policy: Policy, clock: FixedClock) -> None:
    """Unacknowledged past the response deadline: paged again every `repage_every`, to
    the level's escalation contact, `repage_limit` times; the watch wakes for each."""
    every, limit = policy.notifications.repage_every, policy.notifications.repage_limit
    assert limit == 3
    inc = actions.open_incident(desk, title="Nobody home", severity="P2").incident
    due = T0 + policy.response_time("P2", "L1")
    watch = NoticeWatch(desk, run_hooks=False)
    watch.start()

    def pages() -> list[int]:
        return [p["page"] for k, p in notices(store, inc.id) if k == "repaged"]

    for n in range(1, limit + 1):
        at = due + every * n
        clock.set(at - timedelta(microseconds=1))
        assert watch.wait() == pytest.approx(min(1.0, 1e-6), abs=1e-6)
        watch.step()
        assert pages() == list(range(1, n))
        clock.set(at)
        watch.step()
        assert pages() == list(range(1, n + 1))
    last = [p for k, p in notices(store, inc.id) if k == "repaged"][-1]
    assert last["to"] == [policy.level_contacts["L1"].escalation] and last["of"] == limit
    clock.set(due + every * (limit + 5))
    watch.step()
    assert pages() == [1, 2, 3]
    # acknowledged: no more pages at the next level's deadlines either, until it is due
    actions.acknowledge(desk, inc.id)
    watch.step()
    assert pages() == [1, 2, 3]


def test_pages_missed_while_nothing_ran_fold_into_the_latest(
        desk: Desk, store: Store, policy: Policy, clock: FixedClock) -> None:
    every = policy.notifications.repage_every
    inc = actions.open_incident(desk, title="Weekend", severity="P2").incident
    clock.set(T0 + policy.response_time("P2", "L1") + every * 2 + timedelta(seconds=1))
    recorded = actions.record_notices(desk, [inc])
    assert [e.payload["page"] for _, e in recorded if e.kind == "repaged"] == [2]


def test_the_watch_records_what_another_process_opened(
        desk: Desk, db_path: Path, policy: Policy, clock: FixedClock) -> None:
    store = Store(db_path)
    try:
        watch = NoticeWatch(Desk(store, policy, clock, Actor("watcher")), run_hooks=False)
        assert watch.start() == 0
        inc = actions.open_incident(desk, title="Total outage", severity="P0").incident
        assert watch.step() == 2  # announced, and due for L4 at once
        assert [k for k, _ in notices(store, inc.id)] == ["announced", "sla_due"]
        assert {e.account for e in store.events(inc.id)[1:]} == {"watcher"}
        assert watch.step() == 0
    finally:
        store.close()


def test_a_locked_or_full_database_loses_and_duplicates_nothing(
        desk: Desk, store: Store, policy: Policy, clock: FixedClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[str] = []
    watch = NoticeWatch(desk, run_hooks=False, say=said.append)
    watch.start()
    inc = actions.open_incident(desk, title="Outage", severity="P1").incident
    real_write = type(store).write
    failures = iter([StoreError("database is locked"), sqlite3.OperationalError(
        "database or disk is full"), sqlite3.OperationalError("database or disk is full")])

    def flaky(self: Store, **kwargs: object):  # type: ignore[no-untyped-def]
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return real_write(self, **kwargs)

    monkeypatch.setattr(type(store), "write", flaky)
    watch.version = -1  # as if another process had committed the opening
    assert watch.step() == 0
    assert watch.wait() == 5.0  # a retry, not a spin
    assert watch.step() == 0 and watch.step() == 0
    assert len(said) == 2  # one line per distinct problem, not one per try
    assert notices(store, inc.id) == []
    assert watch.step() == 1  # announced, once the database takes writes again
    assert said[-1] == "notices recorded again"
    assert watch.step() == 0 and len(notices(store, inc.id)) == 1


def test_a_batch_committed_before_a_failure_is_still_delivered(
        desk: Desk, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    incidents = [actions.open_incident(desk, title=f"Outage {n}", severity="P1").incident
                 for n in range(3)]
    monkeypatch.setattr(actions, "NOTICE_BATCH", 1)
    real_write = type(store).write
    calls = {"n": 0}

    def second_fails(self: Store, **kwargs: object):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise StoreError("database is locked")
        return real_write(self, **kwargs)

    monkeypatch.setattr(type(store), "write", second_fails)
    got: list = []
    with pytest.raises(StoreError):
        actions.record_notices(desk, incidents, into=got)
    assert [(i.id, e.kind) for i, e in got] == [(incidents[0].id, "announced")]


# -- the claim is the database's, by name --------------------------------------------------------

def test_the_claim_is_unique_in_the_database(desk: Desk, store: Store, db_path: Path) -> None:
    inc = actions.open_incident(desk, title="Outage", severity="P1").incident
    actions.record_notices(desk, [inc])
    raw = sqlite3.connect(db_path)
    try:
        with pytest.raises(sqlite3.IntegrityError):
            raw.execute("INSERT INTO notices (incident_id, kind, key) VALUES (?, 'announced', '')",
                        (inc.id,))
    finally:
        raw.close()


def test_notice_claims_of_a_database_before_named_notices_migrate(
        desk: Desk, store: Store, db_path: Path, clock: FixedClock) -> None:
    """The old claims (clock, due_at, status) become names; the incidents open at the
    upgrade count as announced and paged (they were, before notices were kept)."""
    inc = actions.open_incident(desk, title="Old", severity="P3").incident
    clock.advance(minutes=31)
    [(_, told)] = actions.record_notices(desk, [inc])
    p1 = actions.open_incident(desk, title="Old P1", severity="P1").incident
    store.close()
    raw = sqlite3.connect(db_path)
    raw.execute("DROP TABLE notices")
    raw.execute("CREATE TABLE notices (incident_id INTEGER, clock TEXT, due_at TEXT, "
                "status TEXT, event_id INTEGER, PRIMARY KEY (incident_id, clock, due_at, status))")
    raw.execute("INSERT INTO notices VALUES (?, 'level', ?, 'due', ?)",
                (inc.id, told.payload["due_at"], told.id))
    # A file just before the step that names notices (other steps may come before it).
    raw.execute(f"PRAGMA user_version={MIGRATIONS.index(_notice_keys)}")
    raw.commit()
    raw.close()
    migrated = Store(db_path)
    try:
        rows = set(migrated.conn.execute("SELECT incident_id, kind, key, event_id FROM notices"))
        assert (inc.id, "sla_due", f"level@{told.payload['due_at']}", told.id) in rows
        assert (p1.id, "announced", "", None) in rows
        again = Desk(migrated, desk.policy, clock, Actor("later"))
        assert [e.kind for _, e in actions.record_notices(again, migrated.incidents())] == []
    finally:
        migrated.close()


# -- the policy's keys ----------------------------------------------------------------------------

def test_the_repage_keys_are_required_and_checked_with_their_line() -> None:
    line = SHIPPED[:SHIPPED.index("  repage_every:")].count("\n") + 1
    with pytest.raises(PolicyError) as missing:
        parse_policy(SHIPPED.replace("  repage_every: 15m", "  #"), "policy.yaml")
    assert any(p.startswith("policy.yaml:") and "notifications.repage_every: missing" in p
               for p in missing.value.problems)
    with pytest.raises(PolicyError) as bad:
        parse_policy(SHIPPED.replace("repage_every: 15m", "repage_every: 15 minutes")
                     .replace("repage_limit: 3", "repage_limit: lots")
                     .replace("announce: [P0, P1]", "announce: [P0, P9]"), "policy.yaml")
    problems = bad.value.problems
    assert any(p.startswith(f"policy.yaml:{line}: notifications.repage_every:") for p in problems)
    assert any(f"policy.yaml:{line + 1}: notifications.repage_limit" in p for p in problems)
    assert any('notifications.announce: severity "P9" is not defined' in p for p in problems)


def test_a_stored_policy_from_before_the_keys_still_reads() -> None:
    old = SHIPPED.replace("  announce: [P0, P1]", "#").replace("  repage_every: 15m", "#") \
        .replace("  repage_limit: 3", "#")
    stored = parse_policy(old, "stored policy 1", stored=True)
    assert stored.notifications.repage_every == timedelta(minutes=15)
    assert stored.notifications.announce == ("P0", "P1")


# -- the dashboard ----------------------------------------------------------------------------------

@sync
async def test_a_new_p1_already_breached_shows_a_toast_and_rings_once(
        db_path: Path, policy: Policy, other: Desk, reader: Store) -> None:
    clock = FixedClock(T0)
    app = make_app(db_path, policy, clock=clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        inc = actions.open_incident(other, title="Checkout down", severity="P1",
                                    opened_at=T0 - timedelta(hours=2)).incident
        app.refresh_from_store()
        await settle(pilot)
        assert app.bells == 1
        toasts = [n for n in app._notifications if n.title == "NEW P1"]
        assert len(toasts) == 1 and "already breached" in toasts[0].message
        kinds = [k for k, _ in notices(reader, inc.id)]
        assert kinds[0] == "announced" and kinds.count("announced") == 1
        # the refresh that sees its own notices, and the ticks after, ring no more
        for _ in range(3):
            clock.advance(seconds=1)
            app.refresh_from_store()
            app.tick()
            await settle(pilot)
        assert app.bells == 1
        assert [k for k, _ in notices(reader, inc.id)] == kinds


@sync
async def test_a_new_p3_rings_nothing(db_path: Path, policy: Policy, other: Desk) -> None:
    app = make_app(db_path, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        actions.open_incident(other, title="Typo on a page", severity="P3")
        app.refresh_from_store()
        await settle(pilot)
        assert app.bells == 0 and not [n for n in app._notifications if n.title]




def test_hosts_with_different_clocks_name_a_notice_alike(
        desk: Desk, db_path: Path, policy: Policy, clock: FixedClock) -> None:
    """A host ten minutes ahead tells the breach first; the host behind, reaching the
    same deadline later, finds it told: the name comes from the timeline, not a clock."""
    inc = actions.open_incident(desk, title="Outage", severity="P2").incident
    ahead_store = Store(db_path)
    try:
        ahead = Desk(ahead_store, policy, FixedClock(clock.now() + timedelta(hours=2)),
                     Actor("ahead"))
        told = {e.kind for _, e in actions.record_notices(ahead, [inc])}
        assert "sla_breached" in told
        clock.advance(hours=2, seconds=30)  # this host gets there later
        again = {e.kind for _, e in actions.record_notices(desk, [desk.store.incident(inc.id)])}
        assert "sla_breached" not in again and "announced" not in again
    finally:
        ahead_store.close()


def test_the_watch_runs_its_own_command_once_per_notice_it_recorded(
        store: Store, db_path: Path, policy: Policy, clock: FixedClock, tmp_path: Path) -> None:
    from conftest import HOOK_PYTHON

    log = tmp_path / "paged.ndjson"
    code = ("import json, sys; n = json.load(sys.stdin); "
            f"open({str(log)!r}, 'a').write(json.dumps([n['event'], n['notice'], "
            "n['incident']['id']]) + '\\n')")
    own = replace(policy, notifications=replace(policy.notifications,
                                                command=(HOOK_PYTHON, "-c", code)))
    watcher = Desk(store, own, clock, Actor("watcher"))
    watch = NoticeWatch(watcher)
    watch.start()
    other = Store(db_path)
    try:
        inc = actions.open_incident(Desk(other, policy, clock, Actor("bob")), title="Outage",
                                    severity="P1").incident
    finally:
        other.close()
    assert watch.step() == 1
    assert watch.step() == 0
    import json

    [(event, notice, incident_id)] = [json.loads(line) for line in log.read_text().splitlines()]
    assert (event, incident_id, notice["severity"]) == ("announced", inc.id, "P1")


@sync
async def test_a_dashboard_alone_pages_again_while_nobody_acknowledges(
        db_path: Path, policy: Policy, clock: FixedClock) -> None:
    """No `sladeck watch` runs, only a dashboard left open all night: it records each
    re-page at its instant (and runs the hook), once whoever else sees it too."""
    store = Store(db_path)
    desk = Desk(store, policy, clock, Actor("opener"))
    inc = actions.open_incident(desk, title="Nobody home", severity="P2").incident
    every, limit = policy.notifications.repage_every, policy.notifications.repage_limit
    due = T0 + policy.response_time("P2", "L1")

    def pages() -> list[int]:
        return [p["page"] for k, p in notices(store, inc.id) if k == "repaged"]

    app = make_app(db_path, policy, clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        for n in range(1, limit + 1):
            clock.set(due + every * n - timedelta(microseconds=1))
            app.tick()
            await settle(pilot)
            assert pages() == list(range(1, n))
            clock.set(due + every * n)
            app.tick()
            await settle(pilot)
            assert pages() == list(range(1, n + 1))
            others = actions.record_notices(Desk(store, policy, clock, Actor("cli")), [inc])
            assert [e for _, e in others if e.kind == "repaged"] == []  # told once
        clock.set(due + every * (limit + 3))
        app.tick()
        await settle(pilot)
        assert pages() == list(range(1, limit + 1))
    store.close()


@sync
async def test_re_pages_beyond_one_tick_s_limit_wait_a_second_not_for_ever(
        db_path: Path, policy: Policy, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
        ) -> None:
    """More re-pages due at once than a tick records (a clock jump after a suspend):
    the rest are recorded a second later, none forgotten."""
    from sladeck.tui import app as app_module

    monkeypatch.setattr(app_module, "NOTICE_LIMIT", 1)
    store = Store(db_path)
    desk = Desk(store, policy, clock, Actor("opener"))
    ids = [actions.open_incident(desk, title=f"Nobody home {n}", severity="P2").incident.id
           for n in range(3)]
    first_page = T0 + policy.response_time("P2", "L1") + policy.notifications.repage_every

    def paged() -> list[int]:
        return [i for i in ids if any(k == "repaged" for k, _ in notices(store, i))]

    app = make_app(db_path, policy, clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        clock.set(first_page)
        for seconds in range(3):
            app.tick()
            await settle(pilot)
            assert len(paged()) == seconds + 1
            clock.advance(seconds=1)
    store.close()
