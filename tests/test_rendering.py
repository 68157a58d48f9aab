"""The dashboard's rendering internals: a tick writes only the cells that changed,
the summary line repaints only its clock, lines are built cheaper with the same cells,
and start-up stays out of the cycle collector's way.

What a person sees and does is in test_dashboard.py; the helpers (terminal(),
repainted(), quiet() …) are in conftest.py.
"""


from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from textual.widgets import Static

from conftest import (
    T0,
    make_app,
    more_incidents,
    quiet,
    record_writes,
    repainted,
    screen_lines,
    sync,
    terminal,
    view,
)
from sladeck.clock import FixedClock
from sladeck.domain import actions
from sladeck.domain.actions import Desk
from sladeck.domain.queue import Filter
from sladeck.policy import Policy
from sladeck.store import Store
from sladeck.tui.app import QueueScreen
from sladeck.tui.queue import QueueView, row_cells

pytestmark = pytest.mark.usefixtures("utc_and_still")


# -- what a tick costs ----------------------------------------------------------------


def count_render_lines(widget: QueueView) -> list[int]:
    """Record the y of every line the view renders from now on (for Textual's repaint
    or for writing its cells straight to the terminal)."""
    calls: list[int] = []
    line = widget._line

    def counting(y: int, *args: object):  # type: ignore[no-untyped-def]
        calls.append(y)
        return line(y, *args)  # type: ignore[arg-type]
    widget._line = counting  # type: ignore[method-assign]
    return calls


@pytest.mark.parametrize("extra", [0, 2000])
@sync
async def test_a_tick_repaints_only_changed_countdowns_whatever_the_queue_size(
        demo_db: Path, policy: Policy, extra: int) -> None:
    clock = FixedClock(T0)
    app = make_app(demo_db, policy, clock=clock)
    async with app.run_test(size=(100, 24)) as pilot:
        await pilot.pause()
        more_incidents(app, extra)
        await pilot.pause()
        queue_view = view(app)
        calls = count_render_lines(queue_view)
        app.tick()  # the clock has not moved: nothing on screen changes
        await pilot.pause()
        assert calls == [] and queue_view.refresh_changed() == 0
        before = clock.now()
        clock.advance(seconds=1)
        app.tick()
        await pilot.pause()
        height = queue_view.scrollable_content_region.height
        ticking = [y for y, r in enumerate(app.queue.visible[:height])
                   if row_cells(r, before, 100) != row_cells(r, clock.now(), 100)]
        assert 0 < len(ticking) < height  # countdowns of an hour or more show no seconds
        assert sorted(calls) == ticking  # never a row off screen, nor one that did not change
        assert len(calls) == len(set(calls))
        assert queue_view.refresh_changed() == 0  # what is drawn is what a tick would draw


@pytest.mark.parametrize("no_color", [False, True])
@sync
async def test_a_tick_rewrites_only_the_countdown_cells(demo_db: Path, policy: Policy,
                                                        no_color: bool,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    if no_color:  # Textual's monochrome line filter applies to the written cells too
        monkeypatch.setenv("NO_COLOR", "1")
    clock = FixedClock(T0)
    app = make_app(demo_db, policy, clock=clock)
    async with app.run_test(size=(100, 24)) as pilot:
        await quiet(pilot)
        top = view(app).region.y
        before = terminal(app)
        written = record_writes(app)
        clock.advance(seconds=1)
        app.tick()
        await pilot.pause()
        after, cells = repainted(before, written)
        assert after == terminal(app)  # the terminal shows what Textual would draw
        queue_cells = {(y, x) for y, x in cells if y >= top}
        assert queue_cells and all(8 < x < 8 + 1 + 11 for _, x in queue_cells)  # NEXT only
        assert {y for y, _ in cells} - {0} == {
            top + y for y, r in enumerate(app.queue.visible[:view(app).size.height])
            if row_cells(r, clock.now() - timedelta(seconds=1), 100)
            != row_cells(r, clock.now(), 100)}


@sync
async def test_the_summary_repaints_only_the_clock_each_second(demo_db: Path,
                                                               policy: Policy) -> None:
    clock = FixedClock(T0)
    app = make_app(demo_db, policy, clock=clock)
    async with app.run_test(size=(100, 24)) as pilot:
        await quiet(pilot)
        before = terminal(app)
        written = record_writes(app)
        clock.advance(seconds=1)
        app.tick()
        await pilot.pause()
        after, cells = repainted(before, written)
        assert after == terminal(app)
        changed = {x - 1 for y, x in after if y == 1 and after[y, x] != before[y, x]}
        assert {x for y, x in cells if y == 0} == changed and len(changed) == 1  # one digit
        assert screen_lines(app)[0].rstrip().endswith("15:00:01 UTC")


@sync
async def test_the_summary_follows_the_counts_filter_and_width(demo_db: Path,
                                                              policy: Policy) -> None:
    from sladeck.tui.app import summary_text

    app = make_app(demo_db, policy)
    async with app.run_test(size=(100, 24)) as pilot:
        await quiet(pilot)
        now = app.clock.now()
        total = len(app.queue.visible)
        wide = summary_text(app.queue, policy, now, 200).plain
        assert f" {total} open P0:" in wide and wide.endswith(" │ 15:00:00 UTC")
        assert summary_text(app.queue, policy, now, 200).plain == wide  # kept, same text
        more_incidents(app, 3)
        assert f" {total + 3} open P0:" in summary_text(app.queue, policy, now, 200).plain
        app._apply_filter(Filter(text="zzz-nothing"))
        shown = summary_text(app.queue, policy, now, 200).plain
        assert "/zzz-nothing: 0 shown │ 15:00:00 UTC" in shown
        narrow = summary_text(app.queue, policy, now, len(shown) - 1).plain
        assert " P0:" not in narrow and narrow.endswith(" │ 15:00:00 UTC")
        assert summary_text(app.queue, policy, now, 20).plain.endswith(" │ 15:00:00")
        assert summary_text(app.queue, policy, now + timedelta(seconds=1), 200).plain \
            .endswith(" │ 15:00:01 UTC")


@sync
async def test_a_tick_writes_countdowns_straight_unless_something_covers_them(
        demo_db: Path, policy: Policy) -> None:
    """The countdowns and the clock go to the terminal in one write, without Textual's
    repaint; a widget in front of them, or another screen, takes Textual's way, and the
    screen is the same either way."""
    clock = FixedClock(T0)
    app = make_app(demo_db, policy, clock=clock)
    async with app.run_test(size=(100, 24)) as pilot:
        await quiet(pilot)
        queue_view = view(app)
        before = terminal(app)
        written = record_writes(app)
        regions = []
        refresh = queue_view.refresh

        def recording(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
            regions.extend(args)
            return refresh(*args, **kwargs)  # type: ignore[arg-type]
        queue_view.refresh = recording  # type: ignore[method-assign]
        clock.advance(seconds=1)
        app.tick()
        assert len(written) == 1 and not regions  # one write, straight from the tick
        await pilot.pause()
        assert repainted(before, written)[0] == terminal(app)

        now, later = clock.now(), clock.now() + timedelta(seconds=1)
        y = queue_view.region.y + next(  # the first line whose countdown ticks
            y for y, r in enumerate(app.queue.visible)
            if row_cells(r, now, 100) != row_cells(r, later, 100))
        cover = Static("COVER " * 5, id="cover")  # in front of that countdown
        cover.styles.overlay = "screen"
        cover.styles.position = "absolute"
        cover.styles.offset = (0, y)
        await app.screen.mount(cover)
        await quiet(pilot)
        before, written[:] = terminal(app), []
        assert screen_lines(app)[y].startswith("COVER " * 5)
        clock.advance(seconds=1)
        app.tick()
        await pilot.pause()
        assert regions  # refreshed through Textual, which keeps the cover in front
        assert repainted(before, written)[0] == terminal(app)
        assert screen_lines(app)[y].startswith("COVER " * 5)
        await cover.remove()

        await pilot.press("question_mark")  # another screen over the queue
        await pilot.pause()
        regions.clear()
        clock.advance(seconds=1)
        app.tick()
        await pilot.pause()
        assert regions
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, QueueScreen)
        assert any(line.rstrip().endswith("15:00:03 UTC") for line in screen_lines(app))


def test_the_search_text_is_made_when_a_filter_first_needs_it(demo_db: Path) -> None:
    """Nobody filtering, no search text kept (1 MiB at 10,000 open); once made, a changed
    incident is searched by what it says now."""
    import dataclasses

    from sladeck.domain.queue import Filter, Queue

    store = Store(demo_db)
    queue = Queue(store.policy)
    queue.load(store.queue_items(("open", "acknowledged", "resolved")), T0)
    store.close()
    assert all(r.haystack is None for r in queue.rows.values())
    queue.tick(T0 + timedelta(hours=2))
    assert all(r.haystack is None for r in queue.rows.values())
    queue.set_filter(Filter(text="Zebra-Owner"))
    assert queue.visible == []
    some = queue.order[3].incident
    queue.merge([dataclasses.replace(some, assignee="zebra-owner", version=some.version + 1)],
                T0 + timedelta(hours=2))
    assert [r.incident.id for r in queue.visible] == [some.id]
    queue.set_filter(Filter(text=some.title[:12].upper()))
    assert some.id in [r.incident.id for r in queue.visible]


# -- the first frame ----------------------------------------------------------------


@sync
async def test_the_first_frame_shows_the_worst_rows_then_every_row_loads(
        demo_db: Path, policy: Policy, monkeypatch: pytest.MonkeyPatch) -> None:
    """Start-up reads one screenful, worst first, with the whole queue's counts; the rest
    loads after that frame is drawn, and the selection stays on the top row."""
    import sladeck.tui.app as app_module

    full = make_app(demo_db, policy)
    async with full.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        everything = [r.incident.id for r in full.queue.visible]
        summary = full.screen.query_one("#summary", Static).content
        assert full.queue.complete and len(everything) > 10

    monkeypatch.setattr(app_module, "FIRST_ROWS", 5)
    app = make_app(demo_db, policy)
    rest: list[bool] = []
    monkeypatch.setattr(app, "load_rest", lambda: rest.append(True))
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        assert rest == [True] and not app.queue.complete
        assert [r.incident.id for r in app.queue.visible] == everything[:5]
        assert app.screen.query_one("#summary", Static).content == summary  # every row counted
        view(app).action_cursor(1)  # someone moved already
        await pilot.pause()
        monkeypatch.undo()  # the real load_rest
        app.load_rest()
        await pilot.pause()
        assert app.queue.complete
        assert [r.incident.id for r in app.queue.visible] == everything
        assert view(app).selected_id == everything[1]
        assert str(app.screen.query_one("#summary", Static).content) == str(summary)


@sync
async def test_the_cycle_collector_is_back_on_once_the_first_frame_is_drawn(
        demo_db: Path, policy: Policy) -> None:
    """`sladeck` starts with the collector off (launch.py); a dashboard left open all
    night must not keep it off, or every cycle it makes would stay in memory."""
    import gc

    app = make_app(demo_db, policy)
    gc.disable()
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.pause()
            assert app.queue.complete and gc.isenabled()
    finally:
        gc.enable()


# -- what a line costs: the same cells, built cheaper ----------------------------------


@pytest.mark.parametrize("width", [120, 100, 80, 60, 52, 30, 21, 15])
@sync
async def test_each_line_shows_its_cells_cut_to_the_width(demo_db: Path, policy: Policy,
                                                          other: Desk, width: int) -> None:
    from rich.segment import Segment
    from textual.strip import Strip

    from sladeck.tui.queue import head_cells, head_text

    wide = actions.open_incident(other, title="日本語のタイトル" * 8, severity="P1",
                                 service="サービス名前").incident
    actions.assign(other, wide.id, "名前名前名前")
    clock = FixedClock(T0)
    app = make_app(demo_db, policy, clock=clock)
    async with app.run_test(size=(width, 30)) as pilot:
        for step in (0, 59, 3600, 86400 * 3):
            clock.advance(seconds=step)
            app.tick()
            await pilot.pause()
            queue_view = view(app)
            w = queue_view.scrollable_content_region.width
            for y, row in enumerate(app.queue.visible[:queue_view.size.height]):
                assert head_text(row, clock.now()) == " ".join(
                    t for _, t in head_cells(row, clock.now()))
                expected = Strip([Segment(t + " ") for _, t in
                                  row_cells(row, clock.now(), w, queue_view.ref)])
                expected = expected.crop(0, w).extend_cell_length(w)
                line = queue_view.render_line(y)
                assert line.cell_length == w and line.text == expected.text


@sync
async def test_a_ticking_dashboard_leaves_start_up_out_of_full_collections(
        demo_db: Path, policy: Policy) -> None:
    import gc

    # ticking, but the timer's first tick (an hour off) never comes before the test's own:
    # a 1 s timer fired first on a busy machine and froze the heap before the first check
    app = make_app(demo_db, policy, tick_interval=3600.0)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            queue_object = app.queue.visible[0].incident
            assert any(o is queue_object for o in gc.get_objects())  # walked by a full one
            app.tick()
            assert gc.get_freeze_count() > 0
            assert not any(o is queue_object for o in gc.get_objects())  # frozen
            app.tick()  # once only
            await pilot.pause()
    finally:
        gc.unfreeze()  # this test process keeps collecting everything
