"""Every representation of the SLA rules agrees: `assess`, `headline`/`Schedule.at`, the
stored schedule columns, the store's SQL risk and headline expressions, the queue's order
(the dashboard's `Queue`, `sladeck list`, and the store's `ORDER BY` of the worst rows).

The rules live once, in `sladeck.domain.clocks`; these tests drive all the forms
generated from them on random incidents and instants and compare them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import T0, call_cli
from sladeck.domain.clocks import (
    HEAD_SQL,
    NEVER,
    RISK_RANK,
    RISK_SQL,
    RISKS,
    SLA_COLUMNS,
    Assessment,
    Schedule,
    assess,
    from_us,
    headline,
    order_key,
    schedule,
    to_us,
)
from sladeck.domain.model import ACTIVE_STATES, CLOSED, Incident
from sladeck.domain.queue import Queue
from sladeck.policy import Policy
from sladeck.store import Store

LOADED = ("open", "acknowledged", "resolved")  # what the dashboard's queue loads
US = timedelta(microseconds=1)


@st.composite
def incidents(draw: st.DrawFn, severities: tuple[str, ...], levels: tuple[str, ...],
              max_size: int = 24) -> list[Incident]:
    """Incidents in every state, level and severity, every event at or before T0 (at
    whole seconds, so deadlines often fall on the same instant)."""
    out = []
    for n in range(draw(st.integers(1, max_size))):
        secs = st.integers(0, 20 * 3600).map(lambda s: timedelta(seconds=s))
        opened = T0 - draw(secs)
        level = draw(st.sampled_from(levels))
        rank = levels.index(level)
        entered = min(T0, opened + (draw(secs) / 8 if rank else timedelta(0)))
        reached = {lv: min(entered, opened + draw(secs) / 16) for lv in levels[:rank]}
        reached[level] = entered
        state = draw(st.sampled_from(("open", "open", "acknowledged", "resolved", "closed")))
        resolved = min(T0, opened + draw(secs) / 4) if state in ("resolved", "closed") \
            else None
        acked = None
        if state != "open" or draw(st.booleans()):
            acked = min(T0, entered + draw(st.integers(-600, 7200)) * timedelta(seconds=1))
            if resolved is not None:
                acked = min(acked, resolved)
        out.append(Incident(
            id=n + 1, title=f"t{n}", severity=draw(st.sampled_from(severities)),
            level=level, state=state, opened_at=opened, opened_by="x", level_entered_at=entered,
            policy_id=1, version=1, acknowledged_at=acked,
            acknowledged_by="x" if acked else None, resolved_at=resolved, reached=reached,
            updated_at=T0, updated_by="x", last_change="opened"))
    return out


def _instants(draw: st.DrawFn, items: list[Incident], policy: Policy) -> list[datetime]:
    """Random instants from T0 on, and each schedule's own instants (exactly, and a
    microsecond before): where risk and the headline change."""
    nows = [T0 + timedelta(seconds=s)
            for s in draw(st.lists(st.integers(0, 3 * 86400), min_size=1, max_size=3))]
    for incident in items[:4]:
        s = schedule(incident, policy)
        for at in (s.breach_at, s.due_at, s.warn_at):
            if at is not None and at - 1 >= to_us(T0):
                nows += [from_us(at), from_us(at - 1)]
    return sorted(set(nows))


def _seen(incident: Incident, policy: Policy, now: datetime) -> tuple[Any, ...]:
    a = assess(incident, policy, now)
    return a.risk, a.nearest.kind if a.nearest else None, a.nearest.due_at if a.nearest \
        else None


def test_every_representation_of_the_sla_rules_agrees(policy: Policy) -> None:
    """On random incidents and instants: `assess` (what `show` and `list` tell) equals
    `headline` (the `Schedule`); the schedule survives the store's columns unchanged;
    the store's SQL risk and headline give the same; and the queue's order (the
    dashboard's `Queue`, loaded afresh or ticked on from an earlier instant), `list`'s
    order and the store's `ORDER BY` of the worst rows are one order, the one
    `order_key` packs; the store's counts are the queue's."""
    store = Store(":memory:")
    assert tuple(f"sla_{name}" for name in Schedule.__slots__) == SLA_COLUMNS
    with store.write() as tx:
        assert tx.policy_id(policy, T0) == 1
    ranks = {s: n for n, s in enumerate(policy.severities)}

    @settings(max_examples=60, deadline=None)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        items = data.draw(incidents(tuple(policy.severities), policy.levels))
        nows = _instants(data.draw, items, policy)
        with store.write() as tx:
            tx.conn.execute("DELETE FROM clock_cycles")
            tx.conn.execute("DELETE FROM incidents")
            tx.insert_incidents(items)
        by_id = {i.id: i for i in items}
        # The packed schedule: written to its columns and read back as the queue keeps it.
        stored = {item.id: item for item in store.queue_items(("open", "acknowledged",
                                                               "resolved", "closed"))}
        assert {i: Schedule.values(s) for i, s in stored.items()} == \
            {i.id: schedule(i, policy).values() for i in items}
        ticked = Queue(store.policy)
        ticked.load(store.queue_items(LOADED), nows[0])
        for now in nows:
            stamp = to_us(now)
            sql = {row[0]: row[1:] for row in store.conn.execute(
                f"SELECT id, {RISK_SQL}, {HEAD_SQL} FROM incidents",
                {"now": stamp, "never": NEVER})}
            assessed = {i.id: assess(i, policy, now) for i in items}
            for incident in items:
                risk, kind, due, changes = headline(incident, policy, now)
                a = assessed[incident.id]
                assert (risk, kind, due) == (a.risk, a.nearest.kind if a.nearest else None,
                                             a.nearest.due_at if a.nearest else None), \
                    (incident, now)
                assert stored[incident.id].at(stamp) == \
                    schedule(incident, policy).at(stamp)
                assert sql[incident.id] == (RISK_RANK[risk],
                                            to_us(due) if due is not None else NEVER)
                if changes is not None:  # nothing changes before `changes`
                    assert changes > now
                    assert _seen(incident, policy, changes - US) == (risk, kind, due)
                else:
                    assert _seen(incident, policy, now + timedelta(days=30)) == \
                        (risk, kind, due)
            # One order: `list` (by assessment), the queue, the store's ORDER BY.
            loaded = [i for i in items if i.state in LOADED]
            listed = sorted(loaded, key=lambda i: assessed[i.id].sort_key(i, policy))
            assert [i.id for i in listed] == [i.id for i in sorted(loaded, key=lambda i: (
                RISK_RANK[assessed[i.id].risk], ranks[i.severity], _due(assessed[i.id]),
                i.id))]  # `order_key` sorts like the tuple it packs
            queue = Queue(store.policy)
            queue.load(store.queue_items(LOADED), now)
            ticked.tick(now)
            assert [r.incident.id for r in queue.order] == [i.id for i in listed]
            assert [r.incident.id for r in ticked.order] == [i.id for i in listed]
            for worst in (1, 5, len(items)):
                rows = store.queue_items(LOADED, worst=worst, now=stamp,
                                         severities=tuple(policy.severities))
                assert [i.id for i in rows] == [i.id for i in listed[:worst]]
            by_severity, by_risk = store.queue_counts(ACTIVE_STATES, stamp)
            assert (by_severity, by_risk) == (+queue.by_severity, +queue.by_risk)
            assert set(by_risk) <= set(RISKS)
        assert all(by_id[r.incident.id].state != CLOSED for r in ticked.order)

    try:
        check()
    finally:
        store.close()


def _due(a: Assessment) -> float:
    return a.nearest.due_at.timestamp() if a.nearest else float("inf")


def test_order_key_packs_any_instant_in_order() -> None:
    """From the first representable instant to the last, and no deadline after them all."""
    first, last = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    dues = [to_us(first), to_us(first) + 1, -1, 0, 1, to_us(T0), to_us(last), None]
    keys = [order_key("ok", due, 0, 1) for due in dues]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert order_key("breached", None, 63, 2**40 - 1) < order_key("due", to_us(first), 0, 1)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_list_and_the_dashboard_queue_show_the_same_order(
        data: st.DataObject, policy: Policy, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`sladeck list` (every state but closed with --all; open and acknowledged by
    default) lists incidents in the order the dashboard's queue shows them."""
    items = data.draw(incidents(tuple(policy.severities), policy.levels, max_size=16))
    now = data.draw(st.sampled_from(_instants(data.draw, items, policy)))
    db = tmp_path_factory.mktemp("list") / "desk.db"
    store = Store(db)
    try:
        with store.write() as tx:
            policy_id = tx.policy_id(policy, T0)
            tx.insert_incidents([_with_policy(i, policy_id) for i in items])
        queue = Queue(store.policy)
        queue.load(store.queue_items(LOADED), now)
    finally:
        store.close()
    monkeypatch.setattr("sladeck.clock.SystemClock.now", lambda self: now)
    listed = {}
    for args in (("--all",), ()):
        code, out, err = call_cli("--db", str(db), "list", *args, "--json")
        assert code == 0, err
        listed[args] = [row["id"] for row in json.loads(out)]
    assert [i for i in listed[("--all",)] if _state(items, i) != CLOSED] == \
        [r.incident.id for r in queue.order]
    assert listed[()] == [r.incident.id for r in queue.visible]  # the default filter


def _with_policy(incident: Incident, policy_id: int) -> Incident:
    from dataclasses import replace

    return replace(incident, policy_id=policy_id)


def _state(items: list[Incident], incident_id: int) -> str:
    return next(i.state for i in items if i.id == incident_id)


def test_the_stored_schedule_agrees_with_assess(policy) -> None:
    """The queue's schedule (risk and headline as step functions of time) gives what
    `assess` gives at any instant after the incident's last event, and nothing changes
    before its next-change instant."""
    import dataclasses
    import random
    from datetime import UTC, datetime, timedelta

    from sladeck.domain.clocks import assess, headline
    from sladeck.domain.model import Incident

    rng = random.Random(7)
    t0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    levels = policy.levels
    checked = 0

    def seen(incident: Incident, now: datetime) -> tuple:
        a = assess(incident, policy, now)
        return a.risk, a.nearest.kind if a.nearest else None, a.nearest.due_at if a.nearest \
            else None

    for n in range(300):
        opened = t0 - timedelta(minutes=rng.uniform(0, 600))
        level = rng.choice(levels)
        entered = opened if level == levels[0] else opened + timedelta(minutes=rng.uniform(0, 90))
        state = rng.choice(("open", "acknowledged", "resolved", "closed"))
        acked = entered + timedelta(minutes=rng.uniform(-5, 60)) \
            if state != "open" or rng.random() < 0.2 else None
        resolved = opened + timedelta(minutes=rng.uniform(1, 700)) \
            if state in ("resolved", "closed") else None
        reached = {lv: entered for lv in levels[: levels.index(level) + 1]}
        incident = Incident(id=n + 1, title="t", severity=rng.choice(list(policy.severities)),
                            level=level, state=state, opened_at=opened, opened_by="x",
                            level_entered_at=entered, policy_id=1, version=1,
                            acknowledged_at=acked, resolved_at=resolved, reached=reached)
        last_event = max(t for t in (opened, entered, acked, resolved) if t is not None)
        for minutes in range(-30, 1500, 37):
            now = t0 + timedelta(minutes=minutes)
            if now < last_event:
                continue
            risk, kind, due, changes = headline(incident, policy, now)
            assert (risk, kind, due) == seen(incident, now), (dataclasses.asdict(incident), now)
            if changes is not None:
                assert changes > now
                assert seen(incident, changes - timedelta(microseconds=1)) == (risk, kind, due)
            else:
                assert seen(incident, now + timedelta(days=30)) == (risk, kind, due)
            checked += 1
    assert checked > 5000


def test_the_sql_is_generated_from_the_schedule_and_the_ranks() -> None:
    """A Schedule field renamed, a risk reordered or the sentinel changed reaches the
    store's SQL: the store holds no copy of its own."""
    import sladeck.store as store_module
    import sladeck.store.sqlite as sqlite_store

    assert store_module.SLA_COLUMNS == SLA_COLUMNS
    assert (sqlite_store._RISK_SQL, sqlite_store._HEAD_SQL, sqlite_store._NEVER) == \
        (RISK_SQL, HEAD_SQL, NEVER)
    for column in SLA_COLUMNS:
        if column not in ("sla_breach_kind", "sla_due_kind"):  # kinds are not ordered on
            assert column in RISK_SQL + HEAD_SQL
    assert all(f"THEN {RISK_RANK[risk]}" in RISK_SQL or f"ELSE {RISK_RANK[risk]}" in RISK_SQL
               for risk in RISKS)


# -- the clock history, from real timelines, agrees everywhere ---------------------------

_STEPS = ("ack", "escalate", "resolve", "reopen", "severity", "policy", "wait")


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_clock_history_agrees_everywhere(
        data: st.DataObject, policy: Policy, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Random timelines made by the real actions on a fixed clock: the stored history is
    `clock_history` of the events, and `show --json`, the Markdown export, the detail
    screen's table, `list --json` (clock statuses, `breached`, first acknowledgement),
    the stored schedule and the queue's headline all say what it says."""
    from sladeck.clock import FixedClock
    from sladeck.domain import actions
    from sladeck.domain.actions import Desk
    from sladeck.domain.history import BREACHED, clock_history, latest, status
    from sladeck.domain.model import Actor
    from sladeck.domain.queue import QueueItem
    from sladeck.errors import SladeckError
    from sladeck.report import history_rows, incident_markdown
    from sladeck.tui.detail import history_table

    db = tmp_path_factory.mktemp("history") / "desk.db"
    store = Store(db)
    clock = FixedClock(T0)
    desk = Desk(store, policy, clock, Actor("tester"))
    ids = [actions.open_incident(desk, title=f"t{n}", severity=data.draw(
        st.sampled_from(tuple(policy.severities)))).incident.id for n in range(3)]
    for _ in range(data.draw(st.integers(0, 14))):
        clock.advance(timedelta(seconds=data.draw(st.integers(0, 3 * 3600))))
        step, inc = data.draw(st.sampled_from(_STEPS)), data.draw(st.sampled_from(ids))
        current = store.incident(inc)
        assert current is not None
        try:
            if step == "ack":
                actions.acknowledge(desk, inc)
            elif step == "escalate" and policy.next_level(current.level):
                to = data.draw(st.sampled_from(
                    policy.levels[policy.level_rank(current.level) + 1:]))
                actions.escalate(desk, inc, to=to, trigger="other", reason="r", fields={
                    f.key: "x" for f in policy.escalation[to].handoff})
            elif step == "resolve":
                actions.resolve(desk, inc, summary="s", checks="all")
            elif step == "reopen":
                actions.reopen(desk, inc, reason="again")
            elif step == "severity":
                actions.change_severity(desk, inc, data.draw(st.sampled_from(
                    tuple(policy.severities))), reason="r")
            elif step == "policy":
                actions.apply_policy(desk)
        except SladeckError:
            pass  # refused (already acknowledged, resolved ...): nothing written
    clock.advance(timedelta(seconds=data.draw(st.integers(0, 6 * 3600))))
    now = clock.now()
    try:
        details = {i: store.detail(i) for i in ids}
        items = {i.id: i for i in store.queue_items(("open", "acknowledged", "resolved",
                                                     "closed"))}
        for inc in ids:
            detail = details[inc]
            assert detail is not None
            history = clock_history(store.events(inc), store.policy)
            assert store.clock_history(inc) == detail.clock_history == history
            incident = detail.incident
            item = QueueItem.of(incident, policy, history)
            assert items[inc] == item  # the stored schedule is the history's
            a = assess(incident, policy, now, history)
            risk, kind, due, _ = items[inc].at(to_us(now))
            assert (risk, kind, due) == (a.risk, a.nearest.kind if a.nearest else None,
                                         to_us(a.nearest.due_at) if a.nearest else None)
            rows = history_rows(history, now, policy, incident.severity)
            markdown = incident_markdown(detail, policy, now)
            for row in rows:
                assert "| " + " | ".join(row) + " |" in markdown
            table = history_table(detail, policy, now)
            assert table.row_count == len(history)
            assert [str(c) for c in table.columns[4].cells] == [r[4] for r in rows]
        monkeypatch.setattr("sladeck.clock.SystemClock.now", lambda self: now)
        listed = {}
        code, out, err = call_cli("--db", str(db), "list", "--all", "--json")
        assert code == 0, err
        listed = {row["id"]: row for row in json.loads(out)}
        for inc in ids:
            history = details[inc].clock_history
            incident = details[inc].incident
            code, out, err = call_cli("--db", str(db), "show", str(inc), "--json")
            assert code == 0, err
            shown = json.loads(out)["clock_history"]
            assert [{k: c[k] for k in ("kind", "level", "started_at", "due_at", "stopped_at",
                                       "outcome", "late_by_s")} for c in shown] == \
                [c.as_json() for c in history]
            assert [c["status"] for c in shown] == \
                [status(c, now, policy, incident.severity) for c in history]
            if incident.state == CLOSED:
                continue
            row = listed[inc]
            assert [(c["kind"], c["status"]) for c in row["clocks"]] == \
                [(k, status(c, now, policy, incident.severity))
                 for k, c in latest(history).items()
                 if k not in ("response", "level") or c.level == incident.level]
            assert row["breached"] == any(
                status(c, now, policy, incident.severity) == BREACHED for c in history)
            acks = [e.at for e in details[inc].events if e.kind == "acknowledged"]
            assert row["first_acknowledged_at"] == (
                acks[0].strftime("%Y-%m-%dT%H:%M:%SZ") if acks else None)
    finally:
        store.close()
