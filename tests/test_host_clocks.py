"""Clocks from another host (issue 12): a writer far ahead of the file is refused, and an
event from a clock ahead never drags the later events of its incident forward.

Two "hosts" are two desks on one file, each with its own FixedClock, at exact instants;
one real `sladeck` process runs with its own clock set ten years ahead.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import T0, cli_at
from sladeck.clock import FixedClock
from sladeck.domain import actions
from sladeck.domain.actions import Desk
from sladeck.domain.clocks import assess
from sladeck.domain.ingest import import_ndjson
from sladeck.domain.model import Actor
from sladeck.domain.notices import NOTICE_KINDS
from sladeck.domain.stamps import CLOCK_OK_VARIABLE, CLOCK_TOLERANCE, MAX_AHEAD, ClockSkew
from sladeck.policy import Policy
from sladeck.store import Store
from sladeck.verify import verify

TEN_YEARS = timedelta(days=3652)
YEAR = timedelta(days=365)


@pytest.fixture
def hosts(store: Store, policy: Policy):
    """Two hosts on one file: `here` (right) and `there`, each with its own clock at T0."""
    here = Desk(store, policy, FixedClock(T0), Actor("ana"))
    there = Desk(store, policy, FixedClock(T0), Actor("bo"))
    return here, there


@pytest.fixture(autouse=True)
def _no_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CLOCK_OK_VARIABLE, raising=False)


def nothing_written(store: Store, before: int) -> bool:
    return store.last_seq() == before and verify(store) == []


def test_a_host_ten_years_ahead_is_refused_before_it_writes(hosts, store: Store) -> None:
    here, there = hosts
    inc = actions.open_incident(here, title="Checkout down", severity="P1").incident
    there.clock.set(T0 + TEN_YEARS)
    before = store.last_seq()
    with pytest.raises(ClockSkew) as refused:
        actions.open_incident(there, title="Credential leak", severity="P0")
    message = str(refused.value)
    assert message.startswith("this host's clock is 10 years ahead of the newest event in "
                              "the file (INC-1 opened by ana at 2026-11-26 15:00:00 UTC); "
                              "fix the clock before acting")
    assert "\n" not in message
    for act in (lambda: actions.add_note(there, inc.id, "hello from the future"),
                lambda: actions.acknowledge(there, inc.id),
                lambda: actions.assign(there, inc.id, "bo")):
        with pytest.raises(ClockSkew):
            act()
    assert nothing_written(store, before)
    assert store.incident(inc.id).state == "open"


def test_the_limit_is_exact_and_measured_from_the_newest_event(hosts, store: Store) -> None:
    here, there = hosts
    actions.open_incident(here, title="A", severity="P3")
    here.clock.advance(hours=1)
    actions.open_incident(here, title="B", severity="P3")  # the newest event: T0+1h
    there.clock.set(T0 + timedelta(hours=1) + MAX_AHEAD)
    actions.add_note(there, 1, "right at the limit")  # accepted
    # The note is now the newest event: the next step is measured from it.
    there.clock.set(T0 + timedelta(hours=1) + MAX_AHEAD * 2 + timedelta(microseconds=1))
    with pytest.raises(ClockSkew, match=r"is 30 days ahead of the newest event in the file "
                                        r"\(INC-1 note by bo at 2026-12-26 16:00:00 UTC\)"):
        actions.add_note(there, 2, "one microsecond too far")


def test_a_person_whose_clock_is_right_may_go_on_after_a_long_rest(
        hosts, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    here, _ = hosts
    actions.open_incident(here, title="Last one before the holidays", severity="P3")
    here.clock.advance(MAX_AHEAD + timedelta(days=1))
    with pytest.raises(ClockSkew, match=f"set {CLOCK_OK_VARIABLE}=1"):
        actions.open_incident(here, title="First one after", severity="P2")
    monkeypatch.setenv(CLOCK_OK_VARIABLE, "1")
    assert actions.open_incident(here, title="First one after", severity="P2").incident.id == 2


def test_an_empty_file_takes_any_clock(store: Store, policy: Policy) -> None:
    desk = Desk(store, policy, FixedClock(T0 + TEN_YEARS), Actor("bo"))
    assert actions.open_incident(desk, title="First", severity="P3").changed


def test_an_import_from_a_host_ahead_is_refused_whole(hosts, store: Store) -> None:
    here, there = hosts
    actions.open_incident(here, title="A", severity="P3")
    there.clock.set(T0 + YEAR)
    before = store.last_seq()
    lines = b'{"title": "one", "severity": "P2"}\n{"title": "two", "severity": "P3"}\n'
    with pytest.raises(ClockSkew, match="is 365 days ahead"):
        import_ndjson(there, lines, "alerts.ndjson")
    assert nothing_written(store, before)


def test_one_event_from_a_host_ahead_never_drags_the_later_ones(hosts, store: Store,
                                                                 policy: Policy) -> None:
    """The issue's year-ahead host, within what is let through: its note is stamped with
    its own clock; every later event of the incident keeps the right host's time."""
    here, there = hosts
    inc = actions.open_incident(here, title="Checkout slow", severity="P2").incident
    there.clock.set(T0 + timedelta(days=20))  # far ahead, yet under MAX_AHEAD
    actions.add_note(there, inc.id, "from the host ahead")
    here.clock.set(T0 + timedelta(minutes=3))
    actions.acknowledge(here, inc.id)
    here.clock.set(T0 + timedelta(minutes=20))
    actions.escalate(here, inc.id, to="L2", trigger="performance",
                     fields={f.key: "x" for f in policy.escalation["L2"].handoff})
    events = store.events(inc.id)
    assert [(e.kind, e.at - T0) for e in events] == [
        ("opened", timedelta(0)), ("note", timedelta(days=20)),
        ("acknowledged", timedelta(minutes=3)), ("escalated", timedelta(minutes=20))]
    stored = store.incident(inc.id)
    assert stored.acknowledged_at is None  # escalated: L2 must respond
    assert stored.level_entered_at == T0 + timedelta(minutes=20)
    response = {c.kind: c for c in assess(stored, policy, here.clock.now()).clocks}["response"]
    assert response.due_at == T0 + timedelta(minutes=20) + policy.response_time("P2", "L2")
    assert verify(store) == []  # the replay is in id order, whatever the times


def test_a_host_a_little_ahead_keeps_the_timeline_in_order(hosts, store: Store) -> None:
    here, there = hosts
    inc = actions.open_incident(here, title="Checkout slow", severity="P2").incident
    there.clock.set(T0 + CLOCK_TOLERANCE)
    actions.add_note(there, inc.id, "two minutes ahead")
    actions.acknowledge(here, inc.id)  # here is still at T0
    assert [e.at for e in store.events(inc.id)] == [T0, T0 + CLOCK_TOLERANCE,
                                                    T0 + CLOCK_TOLERANCE]


# -- a real process whose clock is ten years ahead ---------------------------------------------

def test_a_real_command_from_a_host_ten_years_ahead(db_path: Path, hosts, store: Store) -> None:
    here, _ = hosts
    actions.open_incident(here, title="Checkout down", severity="P1")
    before = store.last_seq()
    future = cli_at(T0 + TEN_YEARS, db_path, "open", "--severity", "P0", "--title", "Leak")
    assert future.returncode == 1 and future.stdout == ""
    assert future.stderr.splitlines() == [
        "sladeck: error: this host's clock is 10 years ahead of the newest event in the file "
        "(INC-1 opened by ana at 2026-11-26 15:00:00 UTC); fix the clock before acting (if "
        f"it is right and the file has rested that long, set {CLOCK_OK_VARIABLE}=1)"]
    assert nothing_written(store, before)
    right = cli_at(T0 + timedelta(minutes=1), db_path, "note", "1", "from a right clock")
    assert right.returncode == 0, right.stderr
    shown = json.loads(cli_at(T0 + timedelta(minutes=1), db_path, "show", "1", "--json").stdout)
    # (the notices the command recorded for what it did may follow)
    assert [e["kind"] for e in shown["events"] if e["kind"] not in NOTICE_KINDS] == [
        "opened", "note"]
