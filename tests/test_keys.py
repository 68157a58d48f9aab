"""The keys as a person meets them: the footer follows the selected row, and a key that
does not apply says why in one line (issue 11).

Pilot tests on the real app, a FixedClock and a temporary database (see
test_dashboard.py; helpers in conftest.py).
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from textual.widgets._footer import FooterKey

from conftest import make_app, select, settle, sync
from sladeck.policy import Policy
from sladeck.tui.app import SladeckApp


def footer(app: SladeckApp) -> dict[str, bool]:
    """The footer as drawn: each key's label, and whether it is lit (not dimmed)."""
    return {k.description: not k.has_class("-disabled") for k in app.screen.query(FooterKey)}


def open_above_acknowledged(app: SladeckApp) -> tuple[int, int]:
    """Two neighbouring rows: an open incident, then an acknowledged one."""
    rows = app.queue.visible
    for upper, lower in pairwise(rows):
        if upper.incident.state == "open" and lower.incident.state == "acknowledged":
            return upper.incident.id, lower.incident.id
    raise AssertionError("the demo has no open row above an acknowledged one")


def told(app: SladeckApp) -> list[str]:
    return [n.message for n in app._notifications]


@sync
async def test_the_footer_follows_the_selected_row(demo_db: Path, policy: Policy) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(120, 36)) as pilot:
        opened, acked = open_above_acknowledged(app)
        await select(pilot, opened)
        assert footer(app)["Ack"] is True
        await pilot.press("down")  # onto the acknowledged row
        await pilot.pause()
        assert app.queue.visible[app.screen_stack[0].query_one("QueueView").cursor] \
            .incident.id == acked  # type: ignore[attr-defined]
        assert footer(app)["Ack"] is False  # dimmed: it does not apply here
        assert footer(app)["Resolve"] is True
        await pilot.press("up")
        await pilot.pause()
        assert footer(app)["Ack"] is True


@sync
async def test_a_key_that_does_not_apply_says_why_in_one_line(
        demo_db: Path, policy: Policy) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(120, 36)) as pilot:
        _, acked = open_above_acknowledged(app)
        await select(pilot, acked)
        before = app.queue.rows[acked].incident.version
        await pilot.press("a")
        await settle(pilot)
        ref = app.queue.rows[acked].incident.ref
        assert told(app) == [f"{ref} is already acknowledged"]
        assert app.queue.rows[acked].incident.version == before  # nothing written
        await pilot.press("v")
        await settle(pilot)
        assert told(app)[-1] == f"{ref} is acknowledged: a review is filed once the " \
            "incident is resolved"
        assert len(told(app)) == 2  # one line a key


@sync
async def test_the_footer_is_rechecked_only_when_what_applies_changes(
        demo_db: Path, policy: Policy) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(120, 36)) as pilot:
        rows = app.queue.visible
        pair = next((a.incident.id, b.incident.id) for a, b in pairwise(rows)
                    if a.incident.state == b.incident.state == "open"
                    and a.incident.level == b.incident.level
                    and a.incident.policy_id == b.incident.policy_id)
        await select(pilot, pair[0])
        rechecks = 0
        refresh = app.refresh_bindings

        def counted() -> None:
            nonlocal rechecks
            rechecks += 1
            refresh()
        app.refresh_bindings = counted  # type: ignore[method-assign]
        await select(pilot, pair[1])  # a row alike: the same keys apply
        assert rechecks == 0
        acked = next(r.incident.id for r in rows if r.incident.state == "acknowledged")
        await select(pilot, acked)
        assert rechecks == 1


def test_bindings_palette_and_help_come_from_one_registry() -> None:
    from sladeck.tui.help import help_table
    from sladeck.tui.keys import ACTIONS, INCIDENT_BINDINGS, QUEUE_BINDINGS, VIEW_BINDINGS

    bound = {b.action.removeprefix("app."): b
             for b in (*INCIDENT_BINDINGS, *QUEUE_BINDINGS, *VIEW_BINDINGS)}
    assert set(bound) == set(ACTIONS)
    for name, action in ACTIONS.items():
        assert (bound[name].key, bound[name].description, bound[name].id) == \
            (action.key, action.label, action.id)
    from rich.console import Console

    console = Console(width=120, record=True, color_system=None)
    console.print(help_table())
    text = console.export_text()
    assert all(action.tooltip in text for action in ACTIONS.values())
