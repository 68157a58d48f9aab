"""`sladeck board`: the read-only stand-up board, driven with the Pilot."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Digits

from conftest import ME, T0, call_cli, settle, sync
from sladeck.clock import FixedClock
from sladeck.domain import actions
from sladeck.domain.actions import Desk
from sladeck.policy import Policy
from sladeck.store import Store
from sladeck.tui.board import READ_ONLY, BoardApp, BoardScreen, DaySummary, RiskCount

pytestmark = pytest.mark.usefixtures("utc_and_still")


def board(db_path: Path, policy: Policy, **options: object) -> BoardApp:
    settings: dict[str, object] = {"clock": FixedClock(T0), "poll_interval": None,
                                   "tick_interval": None, "bell": False, "run_hooks": False,
                                   "cursor_blink": False}
    settings.update(options)
    app = BoardApp(db_path, policy, ME, **settings)  # type: ignore[arg-type]
    app.animation_level = "none"
    return app


def counts(app: BoardApp) -> dict[str, str]:
    return {w.risk: w.query_one(Digits).value for w in app.screen.query(RiskCount)}


def day(app: BoardApp) -> str:
    return app.screen.query_one(DaySummary).render().plain  # type: ignore[union-attr]


@sync
async def test_every_action_key_says_the_board_is_read_only_and_writes_nothing(
        demo_db: Path, policy: Policy) -> None:
    app = board(demo_db, policy)
    store = Store(demo_db)
    events = len(store.events())
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        for key in ("a", "e", "r", "c", "s", "i", "v", "n", "enter"):
            await pilot.press(key)
            await settle(pilot)
            assert isinstance(app.screen, BoardScreen), key  # no form, no detail opened
        told = [n.message for n in app._notifications]
        assert told.count(READ_ONLY) == 9 and len(told) == 9
        assert app._desk is None  # no writer was ever opened
        footer = " ".join(b.binding.description for b in app.active_bindings.values()
                          if b.binding.show)
        assert "Ack" not in footer and "Escalate" not in footer and "Quit" in footer
        # the palette offers no action either
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert not any(t.startswith(("Ack", "Escalate", "Resolve", "New")) for t in titles)
    assert len(store.events()) == events
    store.close()


@sync
async def test_large_risk_counts_and_the_last_day_update_live(
        demo_db: Path, policy: Policy) -> None:
    app = board(demo_db, policy)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        by_risk = app.queue.by_risk
        assert counts(app) == {r: str(by_risk.get(r, 0)) for r in
                               ("breached", "due", "warning", "ok")}
        assert app.screen.query_one("#risk-breached").has_class("-active")
        before = day(app)
        assert "Last 24 hours" in before and "opened" in before
        opened = int(before.split("opened")[1].split()[0])
        # someone else opens and acknowledges a P0 from their own dashboard
        other = Store(demo_db)
        desk = Desk(other, policy, FixedClock(T0), ME)
        new = actions.open_incident(desk, title="Board sees this", severity="P0").incident
        other.close()
        app.refresh_from_store()  # what the live watch calls on the commit
        await settle(pilot)
        assert new.id in app.queue.rows
        assert int(day(app).split("opened")[1].split()[0]) == opened + 1
        assert counts(app)["due"] == str(by_risk["due"])  # a P0 is due at once: counted


@sync
async def test_a_narrow_board_puts_the_day_below_the_queue_and_cuts_no_word(
        demo_db: Path, policy: Policy) -> None:
    for size, beside in (((120, 36), True), ((80, 24), False)):
        app = board(demo_db, policy)
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            queue = app.screen.query_one("#queue").region
            summary = app.screen.query_one(DaySummary).region
            if beside:
                assert summary.x >= queue.right and summary.y <= queue.y
            else:
                assert summary.y >= queue.bottom and summary.width == size[0]
            lines = ["".join(s.text for s in strip)
                     for strip in app.screen._compositor.render_strips()]
            shown = " ".join(lines)
            for word in ("BREACHED", "DUE", "WARNING", "OK", "opened", "escalated",
                         "breached", "resolved", "closed"):
                assert f"{word}" in shown, (size, word)
            if not beside:  # each count stays with its word on the line
                text = "\n".join(lines[summary.y:summary.bottom])
                for word in ("opened", "acked", "escalated", "breached", "resolved",
                             "closed"):
                    assert any(line.split(word)[0].rstrip().split(" ")[-1].isdigit()
                               for line in text.splitlines() if word in line), word


def test_the_board_command_opens_no_board_where_it_cannot_draw(db_path: Path) -> None:
    code, out, err = call_cli("board", "--db", str(db_path))
    assert code == 1 and out == ""
    assert err.startswith("sladeck: error: ") and "cannot draw" in err
    assert len(err.strip().splitlines()) == 1
