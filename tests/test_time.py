"""Time (SPEC §3): SLA deadlines across DST changes, a wall clock that jumps, zones shown.

SLA durations are absolute: a 2h deadline is two real hours even when the local clock
skips or repeats an hour. Business hours (America/New_York) are wall-clock hours and
follow New York's own DST. Every expected value below was worked out by hand.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from conftest import T0
from sladeck.clock import FixedClock
from sladeck.domain import actions
from sladeck.domain.actions import Desk, local_time
from sladeck.domain.clocks import assess, compute_clocks
from sladeck.domain.model import Actor
from sladeck.domain.stamps import CLOCK_TOLERANCE
from sladeck.policy import Policy
from sladeck.store import Store
from sladeck.verify import verify


@pytest.fixture
def zone() -> Iterator[Callable[[str], None]]:
    """Switch this process's local zone (TZ + tzset); back to UTC afterwards."""
    def use(name: str) -> None:
        os.environ["TZ"] = name
        time.tzset()
    yield use
    use("UTC")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# (zone, severity, opened at (UTC), clock kind → due, in that zone's local time with its zone)
DST_TABLE = [
    # Berlin springs forward on Sun 2026-03-29: 02:00 CET becomes 03:00 CEST.
    ("Europe/Berlin", "P2", utc(2026, 3, 29, 0, 30), {  # 01:30 CET
        "response": "2026-03-29 03:30:00 CEST +02:00",     # 1h later; 02:30 never happened
        "level": "2026-03-29 03:00:00 CEST +02:00",        # 30m
        "severity_level": "2026-03-29 04:30:00 CEST +02:00",  # 2h, not 03:30
        "resolution_target": "2026-03-29 10:30:00 CEST +02:00",  # 8h
        "resolution_maximum": "2026-03-30 02:30:00 CEST +02:00",  # 24h: 25 h later on the wall
    }),
    # Berlin falls back on Sun 2026-10-25: 03:00 CEST becomes 02:00 CET.
    ("Europe/Berlin", "P1", utc(2026, 10, 24, 23, 45), {  # 01:45 CEST
        "response": "2026-10-25 02:00:00 CEST +02:00",     # 15m
        "level": "2026-10-25 02:15:00 CEST +02:00",        # 30m
        "severity_level": "2026-10-25 02:45:00 CEST +02:00",  # 1h: the first 02:45
        "resolution_target": "2026-10-25 04:45:00 CET +01:00",  # 4h real = 3h on the wall
        "resolution_maximum": "2026-10-25 08:45:00 CET +01:00",  # 8h
    }),
    ("Europe/Berlin", "P0", utc(2026, 10, 25, 1, 30), {  # 02:30 CET, the second 02:30
        "response": "2026-10-25 02:35:00 CET +01:00",      # 5m at L1
        "level": "2026-10-25 03:00:00 CET +01:00",         # 30m
        "severity_level": "2026-10-25 02:30:00 CET +01:00",  # P0: due at once
        "resolution_target": "2026-10-25 04:30:00 CET +01:00",
        "resolution_maximum": "2026-10-25 06:30:00 CET +01:00",
    }),
    # New York springs forward on Sun 2026-03-08 (02:00 EST -> 03:00 EDT).
    ("America/New_York", "P3", utc(2026, 3, 8, 4, 0), {  # Sat 23:00 EST
        "response": "2026-03-08 04:00:00 EDT -04:00",      # 4h real, 5h on the wall
        "level": "2026-03-07 23:30:00 EST -05:00",
        "severity_level": "2026-03-08 04:00:00 EDT -04:00",
        "resolution_target": "2026-03-09 00:00:00 EDT -04:00",  # 24h, not Sun 23:00
        "resolution_maximum": "2026-03-10 00:00:00 EDT -04:00",
    }),
    # ... and falls back on Sun 2026-11-01 (02:00 EDT -> 01:00 EST): 01:30 happens twice.
    ("America/New_York", "P2", utc(2026, 11, 1, 4, 30), {  # 00:30 EDT
        "response": "2026-11-01 01:30:00 EDT -04:00",      # the first 01:30
        "level": "2026-11-01 01:00:00 EDT -04:00",
        "severity_level": "2026-11-01 01:30:00 EST -05:00",  # the second 01:30
        "resolution_target": "2026-11-01 07:30:00 EST -05:00",
        "resolution_maximum": "2026-11-01 23:30:00 EST -05:00",  # 24h: 23 h later on the wall
    }),
]


@pytest.mark.parametrize(("tz", "severity", "opened", "expected"), DST_TABLE,
                         ids=[f"{t[0]}-{t[1]}-{t[2]:%m%d}" for t in DST_TABLE])
def test_deadlines_across_dst_match_the_hand_checked_table(
        tz: str, severity: str, opened: datetime, expected: dict[str, str], zone: Callable[[str], None],
        desk: Desk, clock: FixedClock, policy: Policy) -> None:
    zone(tz)
    clock.set(opened)
    incident = actions.open_incident(desk, title="Across DST", severity=severity).incident
    assert incident.opened_at == opened
    clocks = {c.kind: c for c in compute_clocks(incident, policy, opened)}
    assert {kind: local_time(c.due_at) for kind, c in clocks.items()} == expected
    # and in UTC, every deadline is its plain duration after its start
    sev = policy.severities[severity]
    assert clocks["resolution_maximum"].due_at - opened == sev.resolution_maximum
    assert clocks["response"].due_at - opened == policy.response_time(severity, "L1")


def test_the_detail_screen_shows_times_with_their_zone(zone: Callable[[str], None]) -> None:
    from sladeck.tui.detail import local

    zone("Europe/Berlin")
    assert local(utc(2026, 3, 29, 0, 59)) == "Sun 01:59:00 CET +01:00"
    assert local(utc(2026, 3, 29, 1, 0)) == "Sun 03:00:00 CEST +02:00"
    assert local(utc(2026, 10, 25, 0, 30)) == "Sun 02:30:00 CEST +02:00"
    assert local(utc(2026, 10, 25, 1, 30)) == "Sun 02:30:00 CET +01:00"  # same wall time, told apart
    zone("America/New_York")
    assert local(utc(2026, 11, 1, 5, 30)) == "Sun 01:30:00 EDT -04:00"
    assert local(utc(2026, 11, 1, 6, 30)) == "Sun 01:30:00 EST -05:00"


def test_messages_with_a_time_carry_its_zone(zone: Callable[[str], None], desk: Desk,
                                             clock: FixedClock) -> None:
    zone("Europe/Berlin")
    clock.set(utc(2026, 10, 25, 1, 30))
    incident = actions.open_incident(desk, title="t", severity="P2").incident
    actions.acknowledge(desk, incident.id)
    clock.advance(hours=1)
    again = actions.acknowledge(desk, incident.id)
    assert again.event is None
    assert again.message.endswith("at 2026-10-25 02:30:00 CET +01:00"), again.message


# -- management availability: New York business hours, Mon-Fri 09:00-17:30 ------------------

def names(policy: Policy, severity: str, at: datetime) -> set[str]:
    return {m.name for m in policy.management_available(severity, at)}


ALWAYS_P1 = {"Support Manager"}
HOURS_P1 = {"Support Manager", "Technical Director", "CEO"}

AVAILABILITY = [
    # Fri 2026-03-06, still EST (UTC-5)
    (utc(2026, 3, 6, 13, 59), ALWAYS_P1),   # 08:59 EST
    (utc(2026, 3, 6, 14, 0), HOURS_P1),     # 09:00 EST
    (utc(2026, 3, 6, 22, 29), HOURS_P1),    # 17:29 EST
    (utc(2026, 3, 6, 22, 30), ALWAYS_P1),   # 17:30 EST: closed
    # Sun 2026-03-08, the change itself: a weekend
    (utc(2026, 3, 8, 15, 0), ALWAYS_P1),
    # Mon 2026-03-09, EDT (UTC-4): the same UTC instants mean other wall times
    (utc(2026, 3, 9, 12, 59), ALWAYS_P1),   # 08:59 EDT
    (utc(2026, 3, 9, 13, 0), HOURS_P1),     # 09:00 EDT (would be 08:00 under EST)
    (utc(2026, 3, 9, 21, 29), HOURS_P1),    # 17:29 EDT
    (utc(2026, 3, 9, 21, 30), ALWAYS_P1),   # 17:30 EDT (would be 16:30 under EST)
    # Mon 2026-03-30, the day after Berlin changed: New York is unaffected
    (utc(2026, 3, 30, 13, 0), HOURS_P1),
    # Fri 2026-10-30, EDT; Sun 2026-11-01 the change; Mon 2026-11-02, EST again
    (utc(2026, 10, 30, 13, 0), HOURS_P1),   # 09:00 EDT
    (utc(2026, 11, 1, 14, 0), ALWAYS_P1),   # Sunday
    (utc(2026, 11, 2, 13, 30), ALWAYS_P1),  # 08:30 EST (would be 09:30 under EDT)
    (utc(2026, 11, 2, 14, 0), HOURS_P1),    # 09:00 EST
    (utc(2026, 11, 2, 22, 29), HOURS_P1),   # 17:29 EST
]


@pytest.mark.parametrize(("at", "expected"), AVAILABILITY,
                         ids=[f"{a:%m%d-%H%M}Z" for a, _ in AVAILABILITY])
@pytest.mark.parametrize("viewer", ["UTC", "Europe/Berlin", "America/New_York",
                                    "Pacific/Kiritimati"])
def test_management_availability_follows_new_york_hours_across_dst(
        at: datetime, expected: set[str], viewer: str, zone: Callable[[str], None], policy: Policy) -> None:
    zone(viewer)  # the viewer's own zone never changes who is available
    assert names(policy, "P1", at) == expected
    assert names(policy, "P0", at) == {"Support Manager", "Technical Director", "CEO"}
    assert names(policy, "P3", at) == set()


# -- the wall clock jumps ----------------------------------------------------------------------

def timeline_is_sane(store: Store, incident_id: int) -> None:
    events = store.events(incident_id)
    ids = [e.id for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # Time runs forward, or back by more than the tolerance: a jump, stamped with the
    # writer's own clock, never dragged to the event before it (`stamps.stamp`).
    for a, b in pairwise(events):
        assert b.at >= a.at or a.at - b.at > CLOCK_TOLERANCE, \
            [f"{e.kind}@{e.at}" for e in events]
    notices = [(e.kind, e.payload["clock"], e.payload["due_at"]) for e in events
               if e.kind in ("sla_due", "sla_breached")]
    assert len(notices) == len(set(notices)), notices


@pytest.mark.parametrize("jumps", [
    [timedelta(minutes=10), timedelta(hours=-1), timedelta(hours=2), timedelta(hours=-1)],
    [timedelta(hours=2), timedelta(hours=-1), timedelta(hours=-1), timedelta(minutes=1)],
    [timedelta(hours=-1), timedelta(hours=2), timedelta(hours=2), timedelta(hours=-3)],
])
def test_a_jumping_wall_clock_never_duplicates_reorders_or_crashes(
        jumps: list[timedelta], desk: Desk, clock: FixedClock, store: Store,
        policy: Policy) -> None:
    p1 = actions.open_incident(desk, title="Jumpy", severity="P1").incident
    p3 = actions.open_incident(desk, title="Slow", severity="P3").incident
    for jump in jumps:
        clock.advance(jump)
        for incident_id in (p1.id, p3.id):
            actions.add_note(desk, incident_id, f"after a jump of {jump}")
            current = store.incident(incident_id)
            for _ in range(2):  # two dashboards seeing the same deadlines
                actions.record_notices(desk, [store.incident(incident_id)])
            assess(current, policy, clock.now())  # a "now" before opening is fine too
    actions.acknowledge(desk, p1.id)
    clock.advance(hours=-1)
    actions.escalate(desk, p1.id, to="L2", trigger="other", reason="jumped",
                     fields={k.key: "x" for k in policy.escalation["L2"].handoff})
    clock.advance(hours=2)
    actions.resolve(desk, p1.id, summary="done", checks="all")
    for incident_id in (p1.id, p3.id):
        timeline_is_sane(store, incident_id)
    resolved = store.incident(p1.id)
    # Each change carries the time its writer's clock gave it (no clock reads further).
    assert resolved.level_entered_at == store.events(p1.id)[-2].at
    assert resolved.resolved_at == clock.now()
    assess(resolved, policy, clock.now())
    assert verify(store) == []


def test_a_clock_that_goes_back_does_not_ring_again_in_the_dashboard(
        db_path: Path, policy: Policy) -> None:
    import asyncio

    from sladeck.tui.app import SladeckApp

    other_store = Store(db_path)
    other = Desk(other_store, policy, FixedClock(T0), Actor("alice"))
    incident = actions.open_incident(other, title="Slow burn", severity="P3").incident
    clock = FixedClock(T0)

    class Counting(SladeckApp):
        bells = 0

        def bell(self) -> None:
            Counting.bells += 1

    app = Counting(db_path, policy, Actor("tester"), clock=clock, poll_interval=None,
                   tick_interval=None, bell=True, run_hooks=False, cursor_blink=False)

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            for jump in (timedelta(minutes=31), timedelta(hours=-1), timedelta(hours=2),
                         timedelta(hours=-1), timedelta(hours=2)):
                clock.advance(jump)
                app.tick()
                await app.workers.wait_for_complete()
                app.refresh_from_store()
                await pilot.pause()
                assert app.is_running
    asyncio.run(scenario())
    assert Counting.bells == 1  # one deadline, one bell, however the clock jumps
    kinds = [(e.kind, e.payload.get("clock")) for e in other_store.events(incident.id)]
    assert kinds.count(("sla_due", "level")) == 1, kinds
    timeline_is_sane(other_store, incident.id)
    other_store.close()


def test_times_are_stored_in_utc_whatever_the_local_zone(zone: Callable[[str], None], desk: Desk,
                                                         clock: FixedClock, store: Store) -> None:
    zone("America/New_York")
    clock.set(utc(2026, 11, 1, 5, 30))  # 01:30 EDT
    a = actions.open_incident(desk, title="first 01:30", severity="P2").incident
    clock.set(utc(2026, 11, 1, 6, 30))  # 01:30 EST: same wall time, an hour later
    b = actions.open_incident(desk, title="second 01:30", severity="P2").incident
    raw = store.conn.execute("SELECT opened_at FROM incidents ORDER BY id").fetchall()
    assert [r[0] for r in raw] == ["2026-11-01T05:30:00.000000Z", "2026-11-01T06:30:00.000000Z"]
    assert b.opened_at - a.opened_at == timedelta(hours=1)
    assert T0.tzinfo is UTC


# -- the zone shown beside a time can be trusted ------------------------------------------------

# (TZ, 2026-11-30 10:00 UTC as `local_time` shows it)
ZONE_LABELS = [
    ("UTC", "2026-11-30 10:00:00 UTC"),
    ("UTC+14", "2026-11-29 20:00:00 UTC-14:00"),      # POSIX: 14 h *behind*, yet named "UTC"
    ("GMT-3", "2026-11-30 13:00:00 UTC+03:00"),
    ("<+14>-14", "2026-12-01 00:00:00 UTC+14:00"),    # a numeric name: the offset says it
    ("Pacific/Kiritimati", "2026-12-01 00:00:00 UTC+14:00"),
    ("Europe/Berlin", "2026-11-30 11:00:00 CET +01:00"),
    ("Europe/London", "2026-11-30 10:00:00 GMT"),
    ("Asia/Kolkata", "2026-11-30 15:30:00 IST +05:30"),
    ("America/St_Johns", "2026-11-30 06:30:00 NST -03:30"),
    ("EST5", "2026-11-30 05:00:00 EST -05:00"),
]


@pytest.mark.parametrize(("tz", "expected"), ZONE_LABELS, ids=[z for z, _ in ZONE_LABELS])
def test_every_local_time_carries_a_zone_that_cannot_mislead(
        tz: str, expected: str, zone: Callable[[str], None]) -> None:
    from sladeck.tui.detail import local

    zone(tz)
    at = utc(2026, 11, 30, 10, 0)
    assert local_time(at) == expected
    day = datetime.strptime(expected[:10], "%Y-%m-%d").strftime("%a")
    assert local(at) == f"{day} {expected[11:]}"  # the detail screen's form


def test_the_cli_labels_times_with_their_offset(zone: Callable[[str], None], desk: Desk,
                                               db_path: Path) -> None:
    from conftest import call_cli

    actions.open_incident(desk, title="Far west", severity="P2")  # at T0, 15:00 UTC
    zone("UTC+14")
    for args in (("show", "1"), ("export", "--format", "md")):
        code, out, err = call_cli("--db", str(db_path), *args)
        assert code == 0, err
        assert "2026-11-26 01:00:00 UTC-14:00" in out
        assert "01:00:00 UTC " not in out and "01:00:00 UTC |" not in out
    zone("Europe/Berlin")
    code, out, _ = call_cli("--db", str(db_path), "show", "1")
    assert "| Opened | 2026-11-26 16:00:00 CET +01:00 by" in out


def _dashboard(db_path: Path, policy: Policy, at: datetime) -> tuple[Any, FixedClock]:
    from conftest import make_app
    from sladeck.demo import fill_demo

    store = Store(db_path)
    fill_demo(store, policy, Actor("tester"), at)
    store.close()
    clock = FixedClock(at)
    return make_app(db_path, policy, clock=clock), clock


@pytest.mark.parametrize(("tz", "clock_text"), [
    ("UTC", "15:00:00 UTC"), ("UTC+14", "01:00:00 UTC-14:00"),
    ("Europe/Berlin", "16:00:00 CET +01:00")])
def test_the_dashboard_clock_shows_the_offset(tz: str, clock_text: str,
                                              zone: Callable[[str], None], db_path: Path,
                                              policy: Policy) -> None:
    import asyncio

    from conftest import quiet, screen_lines

    zone(tz)
    app, _ = _dashboard(db_path, policy, T0)

    async def scenario() -> None:
        async with app.run_test(size=(100, 24)) as pilot:
            await quiet(pilot)
            assert screen_lines(app)[0].rstrip().endswith(f" │ {clock_text}")
    asyncio.run(scenario())


@pytest.mark.parametrize(("at", "before", "after"), [
    (utc(2026, 3, 29, 0, 59, 59), "01:59:59 CET +01:00", "03:00:00 CEST +02:00"),  # wider
    (utc(2026, 10, 25, 0, 59, 59), "02:59:59 CEST +02:00", "02:00:00 CET +01:00"),  # narrower
], ids=["spring", "autumn"])
def test_the_dashboard_clock_changing_width_is_repainted_exactly(
        at: datetime, before: str, after: str, zone: Callable[[str], None], db_path: Path,
        policy: Policy) -> None:
    """Across a DST change the clock text grows or shrinks by a cell: the summary line's
    partial write must leave the terminal exactly as a full repaint would."""
    import asyncio

    from conftest import quiet, record_writes, repainted, screen_lines, terminal

    zone("Europe/Berlin")
    app, clock = _dashboard(db_path, policy, at)

    async def scenario() -> None:
        async with app.run_test(size=(100, 24)) as pilot:
            await quiet(pilot)
            assert screen_lines(app)[0].rstrip().endswith(f" │ {before}")
            cells_before = terminal(app)
            written = record_writes(app)
            clock.advance(seconds=1)
            app.tick()
            await pilot.pause()
            cells_after, touched = repainted(cells_before, written)
            assert cells_after == terminal(app)
            assert screen_lines(app)[0].rstrip().endswith(f" │ {after}")
            assert {x for y, x in touched if y == 0}  # the clock went out, written straight
    asyncio.run(scenario())


@pytest.mark.parametrize(("old", "new", "span"), [
    ("12:00:00 CET +01:00", "12:00:01 CET +01:00", (7, 8)),     # one digit
    ("01:59:59 CET +01:00", "03:00:00 CEST +02:00", (1, 20)),   # wider: to the new end
    ("02:59:59 CEST +02:00", "02:00:00 CET +01:00", (3, 20)),   # narrower: to the old end
    ("ab", "aab", (1, 3)),
])
def test_a_changed_span_covers_every_cell_that_differs(old: str, new: str,
                                                       span: tuple[int, int]) -> None:
    from sladeck.tui.queue import changed_span

    for narrow in (False, True):
        assert changed_span(old, new, narrow) == span
        start, end = span
        width = max(len(old), len(new))
        # outside the span, the cells are the same
        assert old.ljust(width)[:start] == new.ljust(width)[:start]
        assert old.ljust(width)[end:] == new.ljust(width)[end:]
