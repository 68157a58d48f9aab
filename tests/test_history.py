"""The clock history (SPEC §3): every cycle of every clock with its outcome, derived from
the timeline at exact instants on a fixed clock."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import T0
from sladeck.clock import FixedClock
from sladeck.domain import actions
from sladeck.domain.actions import Desk
from sladeck.domain.clocks import assess
from sladeck.domain.history import (
    BREACHED,
    DUE,
    LATE,
    LEVEL,
    MET,
    RESOLUTION_MAXIMUM,
    RESOLUTION_TARGET,
    RESPONSE,
    RUNNING,
    SEVERITY_LEVEL,
    ClockCycle,
    clock_history,
    status,
)
from sladeck.errors import PolicyError
from sladeck.policy import Policy, parse_policy
from sladeck.store import SCHEMA_VERSION, Store
from sladeck.verify import verify

S = timedelta(seconds=1)


def m(n: float) -> timedelta:
    return timedelta(minutes=n)


def escalate(desk: Desk, incident_id: int, to: str, policy: Policy) -> None:
    fields = {f.key: f"{f.key} text" for f in policy.escalation[to].handoff}
    actions.escalate(desk, incident_id, to=to, trigger="other", reason="test", fields=fields)


def history(store: Store, incident_id: int) -> tuple[ClockCycle, ...]:
    return clock_history(store.events(incident_id), store.policy)


def cycles(h: tuple[ClockCycle, ...], kind: str) -> list[ClockCycle]:
    return [c for c in h if c.kind == kind]


def test_a_response_met_and_one_late_by_one_second(desk: Desk, store: Store,
                                                   clock: FixedClock) -> None:
    met = actions.open_incident(desk, title="a", severity="P1").incident.id
    late = actions.open_incident(desk, title="b", severity="P2").incident.id
    clock.advance(m(15))  # P1 L1 response: 15m, on the dot
    actions.acknowledge(desk, met)
    (r,) = cycles(history(store, met), RESPONSE)
    assert (r.level, r.started_at, r.due_at, r.stopped_at, r.outcome, r.late_by_s) == \
        ("L1", T0, T0 + m(15), T0 + m(15), MET, None)
    # P2's level clock at L1 (30m) is an escalation made 1 s late: `late`, never `due`.
    clock.set(T0 + m(30) + S)
    escalate(desk, late, "L2", desk.policy)
    lv = cycles(history(store, late), LEVEL)
    assert (lv[0].outcome, lv[0].late_by_s, lv[0].stopped_at) == (LATE, 1, T0 + m(30) + S)
    assert (lv[1].level, lv[1].started_at, lv[1].outcome) == ("L2", T0 + m(30) + S, None)
    clocks = {c.kind: c for c in assess(store.incident(late), desk.policy, clock.now(),
                                        history(store, late)).clocks}
    assert clocks[LEVEL].status == RUNNING  # the new level's cycle


def test_a_response_passed_before_acknowledgement_is_breached_and_stays(
        desk: Desk, store: Store, clock: FixedClock, policy: Policy) -> None:
    inc = actions.open_incident(desk, title="a", severity="P1").incident.id
    clock.advance(m(15) + S)  # one second past the 15 min response at L1
    h = history(store, inc)
    assert status(h[0], clock.now(), policy, "P1") == BREACHED
    clock.advance(m(1))
    escalate(desk, inc, "L2", policy)  # escalating away from a breached response
    h = history(store, inc)
    first, second = cycles(h, RESPONSE)
    assert (first.outcome, first.late_by_s) == (BREACHED, 61)
    assert (second.level, second.outcome) == ("L2", None)
    a = assess(store.incident(inc), policy, clock.now(), h)
    assert a.risk == BREACHED  # the breach at L1 is a fact that stays
    assert {c.kind: c.status for c in a.clocks}[RESPONSE] == RUNNING  # L2's cycle


def test_a_resolution_maximum_passed_is_breached(desk: Desk, store: Store,
                                                 clock: FixedClock, policy: Policy) -> None:
    inc = actions.open_incident(desk, title="a", severity="P3").incident.id
    actions.acknowledge(desk, inc)
    clock.advance(timedelta(hours=48) + 2 * S)  # P3: target 24h, maximum 48h
    actions.resolve(desk, inc, summary="done", checks="all")
    h = history(store, inc)
    (target,), (maximum,) = cycles(h, RESOLUTION_TARGET), cycles(h, RESOLUTION_MAXIMUM)
    assert (target.outcome, target.late_by_s) == (LATE, 24 * 3600 + 2)
    assert (maximum.outcome, maximum.late_by_s) == (BREACHED, 2)
    assert all(c.stopped_at is not None for c in h)  # resolving stops every clock
    a = assess(store.incident(inc), policy, clock.now(), h)
    assert a.risk == BREACHED and DUE not in {c.status for c in a.clocks}


def test_a_reopen_starts_new_cycles_of_every_clock(desk: Desk, store: Store,
                                                    clock: FixedClock, policy: Policy) -> None:
    inc = actions.open_incident(desk, title="a", severity="P2").incident.id
    clock.advance(m(10))
    actions.acknowledge(desk, inc)
    actions.resolve(desk, inc, summary="done", checks="all")
    clock.advance(m(50))
    actions.reopen(desk, inc, reason="came back")
    h = history(store, inc)
    reopened = T0 + m(60)
    for kind in (RESPONSE, LEVEL, SEVERITY_LEVEL, RESOLUTION_TARGET, RESOLUTION_MAXIMUM):
        old, new = cycles(h, kind)
        assert old.outcome == MET and old.stopped_at == T0 + m(10) and old.started_at == T0
        assert (new.started_at, new.stopped_at, new.outcome) == (reopened, None, None)
    assert cycles(h, RESPONSE)[1].due_at == reopened + m(60)  # P2 at L1: 1h
    assert cycles(h, RESOLUTION_TARGET)[1].due_at == reopened + timedelta(hours=8)
    a = assess(store.incident(inc), policy, clock.now(), h)
    assert a.risk == "ok"  # the new cycle has just begun


def test_p0_is_met_within_its_grace_and_late_beyond_it(desk: Desk, store: Store,
                                                       clock: FixedClock,
                                                       policy: Policy) -> None:
    within = actions.open_incident(desk, title="in time", severity="P0").incident.id
    beyond = actions.open_incident(desk, title="too late", severity="P0").incident.id
    h = history(store, within)
    (sev,) = cycles(h, SEVERITY_LEVEL)
    assert (sev.level, sev.due_at) == ("L4", T0 + m(5))  # grace: P0's response time
    assert status(sev, T0, policy, "P0") == DUE  # "immediately": due the moment it opens
    clock.advance(m(5))
    escalate(desk, within, "L4", policy)
    clock.advance(S)
    escalate(desk, beyond, "L4", policy)
    (met,) = cycles(history(store, within), SEVERITY_LEVEL)
    (late,) = cycles(history(store, beyond), SEVERITY_LEVEL)
    assert (met.outcome, met.stopped_at) == (MET, T0 + m(5))
    assert (late.outcome, late.late_by_s, late.stopped_at) == (LATE, 1, T0 + m(5) + S)
    for inc in (within, beyond):  # stopped: never `due` again, resolved or not
        a = assess(store.incident(inc), policy, clock.now(), history(store, inc))
        assert {c.kind: c.status for c in a.clocks}[SEVERITY_LEVEL] in (MET, LATE)
        assert a.risk != DUE


def test_the_grace_is_a_policy_key(policy: Policy) -> None:
    text = policy.source.replace("escalation: {to: L4, within: 0m}",
                                 "escalation: {to: L4, within: 0m, grace: 10m}")
    assert text != policy.source
    assert parse_policy(text, "p.yaml").severities["P0"].grace == m(10)
    assert policy.severities["P0"].grace == m(5)  # by default, P0's response time
    bad = policy.source.replace("escalation: {to: L4, within: 0m}",
                                "escalation: {to: L4, within: 0m, grace: soon}")
    with pytest.raises(PolicyError) as info:
        parse_policy(bad, "p.yaml")
    line = bad[:bad.index("grace: soon")].count("\n") + 1
    assert f'p.yaml:{line}: severities.P0.escalation.grace: "soon" is not a duration' in \
        str(info.value)
    wrong = policy.source.replace("escalation: {to: L3, within: 1h}",
                                  "escalation: {to: L3, within: 1h, grace: 5m}")
    with pytest.raises(PolicyError, match=r"severities.P1.escalation.grace: applies only to "
                                          "an immediate escalation"):
        parse_policy(wrong, "p.yaml")


# -- the stored record: migrated from today's release, kept by every write, verified ------

FIXTURE = Path(__file__).parent / "fixtures" / "v4-demo.db"


def test_a_database_from_the_last_release_migrates_its_history_and_verifies(
        tmp_path: Path) -> None:
    """tests/fixtures/v4-demo.db was made by the release before clock histories (schema
    4: `sladeck demo`, then INC-8 reopened): migrated, nothing is lost and every P0
    reads as it happened."""
    db = tmp_path / "old.db"
    shutil.copy(FIXTURE, db)
    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA user_version").fetchone() == (4,)
    before = {t: raw.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("incidents", "events", "handoffs", "policies")}
    raw.close()
    store = Store(db)
    try:
        assert store.schema_version() == SCHEMA_VERSION
        assert verify(store) == []
        assert {t: store.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in before} == before
        by_title = {i.title: i for i in store.incidents(None)}

        def sev(title: str) -> list[ClockCycle]:
            return cycles(store.clock_history(by_title[title].id), SEVERITY_LEVEL)

        # Escalated to L4 six minutes after opening: one minute beyond P0's 5m grace.
        (late,) = sev("Production orders table lost writes after failover")
        assert (late.outcome, late.late_by_s) == (LATE, 60)
        # Three minutes: met, and it stays met, resolved and closed.
        (met,) = sev("All CI/CD pipelines down")
        assert met.outcome == MET
        # Still at L3, never at L4: the escalation is still due.
        (due,) = sev("Suspected credential leak in CI secrets")
        assert due.outcome is None
        # The first acknowledgement beside the latest (acknowledged at L1, again at L4).
        closed = by_title["All CI/CD pipelines down"]
        assert closed.first_acknowledged_at == closed.opened_at + m(1)
        assert closed.acknowledged_at == closed.opened_at + m(5)
        # The reopened one: a second cycle of every clock.
        reopened = store.clock_history(by_title["Growth Engine scheduler stuck on phase 10"].id)
        assert len(cycles(reopened, RESOLUTION_MAXIMUM)) == 2
        # The derived record is checked: an outcome edited by hand is found.
        store.conn.execute("UPDATE clock_cycles SET outcome = 'met', late_by_s = NULL "
                           "WHERE outcome = 'late'")
        assert any("stored clock history differs from its timeline" in p
                   for p in verify(store))
    finally:
        store.close()


def test_every_write_keeps_the_history_beside_the_events(desk: Desk, store: Store,
                                                         clock: FixedClock,
                                                         policy: Policy) -> None:
    inc = actions.open_incident(desk, title="a", severity="P1").incident.id
    assert store.clock_history(inc) == history(store, inc)
    clock.advance(m(20))
    escalate(desk, inc, "L2", policy)
    actions.change_severity(desk, inc, "P0", reason="worse")
    actions.acknowledge(desk, inc)
    actions.resolve(desk, inc, summary="done", checks="all")
    stored = store.clock_history(inc)
    assert stored == history(store, inc)
    assert cycles(stored, RESPONSE)[0].outcome == BREACHED  # 15m at L1, escalated at 20m
    assert store.detail(inc).clock_history == stored
    assert verify(store) == []


def test_the_demos_p0s_read_met_and_late_and_sort_on_top(demo_db: Path,
                                                         policy: Policy) -> None:
    """`sladeck demo` data, read as `list --json` and `show --json` read it."""
    import json

    from conftest import call_cli

    code, out, err = call_cli("--db", str(demo_db), "list", "--all", "--json")
    assert code == 0, err
    rows = json.loads(out)
    by_title = {r["title"]: r for r in rows}

    def severity_clock(title: str) -> dict:
        return next(c for c in by_title[title]["clocks"] if c["kind"] == SEVERITY_LEVEL)

    # L4 six minutes after opening: late (the 5m grace passed), never `due` again.
    assert severity_clock("Production orders table lost writes after failover")["status"] \
        == LATE
    # L4 three minutes after opening, then resolved and closed: met for ever.
    assert severity_clock("All CI/CD pipelines down")["status"] == MET
    assert by_title["All CI/CD pipelines down"]["risk"] == "ok"
    # Not at L4 yet: due.
    assert severity_clock("Checkout API returning 503 in every region")["status"] == DUE
    assert severity_clock("Payment provider timeouts for card payments")["status"] == DUE
    closed = by_title["All CI/CD pipelines down"]
    assert closed["first_acknowledged_at"] < closed["acknowledged_at"]
    code, out, err = call_cli("--db", str(demo_db), "show",
                              str(by_title["Production orders table lost writes after "
                                           "failover"]["id"]), "--json")
    (late,) = [c for c in json.loads(out)["clock_history"] if c["kind"] == SEVERITY_LEVEL]
    assert (late["outcome"], late["late_by_s"]) == (LATE, 60)
    # The order: a fresh P0 breach above a three-day-old P3 breach; the new P0 in the top
    # rows, its headline the acknowledge countdown.
    code, out, err = call_cli("--db", str(demo_db), "list")
    lines = out.splitlines()
    leak = next(n for n, line in enumerate(lines) if "credential leak" in line)
    dark = next(n for n, line in enumerate(lines) if "dark mode" in line)
    assert "breached" in lines[leak] and "breached" in lines[dark] and leak < dark
    new = next(n for n, line in enumerate(lines) if "Checkout API" in line)
    assert new < 6 and " ACK " in lines[new]


def test_export_keeps_a_breach_that_escalation_left_behind(
        desk: Desk, store: Store, clock: FixedClock, policy: Policy, db_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`export` (JSON and CSV) says breached for an incident whose L1 response breached
    before it was escalated, as `list` does."""
    import json

    from conftest import call_cli

    inc = actions.open_incident(desk, title="a", severity="P1").incident.id
    clock.advance(m(16))
    escalate(desk, inc, "L2", policy)
    clock.advance(m(1))
    actions.acknowledge(desk, inc)  # nothing running is late now: only the L1 breach
    monkeypatch.setattr("sladeck.clock.SystemClock.now", lambda self: T0 + m(18))
    for command in (("list", "--json"), ("export", "--format", "json")):
        code, out, err = call_cli("--db", str(db_path), *command)
        assert code == 0, err
        (row,) = json.loads(out)
        assert (row["risk"], row["breached"]) == ("breached", True), command
    code, out, err = call_cli("--db", str(db_path), "export", "--format", "csv")
    assert '"breached"' in out.splitlines()[1]
