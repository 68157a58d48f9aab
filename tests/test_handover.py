"""The handover (issue 12): timed triggers wait for their time at the level, and ownership
moves with an escalation — in the CLI (a real process at exact instants) and in the
escalation form (the Pilot, on a FixedClock), as the domain decides (test_actions.py).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from textual.widgets import Input, Select, Static, TextArea

from conftest import T0, cli_at, make_app, select, settle, sync
from sladeck.clock import FixedClock
from sladeck.domain import actions
from sladeck.domain.actions import Desk
from sladeck.domain.model import Actor
from sladeck.policy import Policy
from sladeck.store import Store
from sladeck.tui.forms import EscalateForm
from sladeck.verify import verify

pytestmark = pytest.mark.usefixtures("utc_and_still")  # times of day read in UTC

L2 = ("issue_summary", "actions_taken", "current_status", "logs_and_evidence",
      "business_impact")
L3 = ("technical_details", "system_architecture", "security_assessment", "business_impact",
      "recovery_procedures")


def handoff_args(keys: tuple[str, ...]) -> list[str]:
    return [arg for key in keys for arg in ("--field", f"{key}=text for {key}")]


@pytest.fixture
def p2(db_path: Path, policy: Policy) -> int:
    """A P2 opened at T0 at L1, assigned to ola."""
    store = Store(db_path)
    desk = Desk(store, policy, FixedClock(T0), Actor("ana"))
    incident = actions.open_incident(desk, title="Checkout slow", severity="P2").incident
    actions.assign(desk, incident.id, "ola")
    store.close()
    return incident.id


# -- the command line, in its own process at exact instants -----------------------------------

def test_cli_refuses_a_timed_trigger_until_its_time_and_says_how_long(
        db_path: Path, p2: int) -> None:
    args = ("escalate", str(p2), "--to", "L2", "--trigger", "not_resolved_30m",
            *handoff_args(L2))
    early = cli_at(T0 + timedelta(minutes=17, seconds=30), db_path, *args)
    assert (early.returncode, early.stdout) == (1, "")
    assert early.stderr.splitlines() == [
        "sladeck: error: trigger 'not_resolved_30m' can be chosen in 12m30s"]
    late = cli_at(T0 + timedelta(minutes=29, seconds=59, microseconds=1), db_path, *args)
    assert late.stderr.splitlines() == [
        "sladeck: error: trigger 'not_resolved_30m' can be chosen in 0m01s"]
    on_time = cli_at(T0 + timedelta(minutes=30), db_path, *args)
    assert on_time.returncode == 0, on_time.stderr
    assert on_time.stdout == "INC-1 escalated to L2, unassigned (was ola)\n"


def test_cli_escalate_moves_ownership_or_names_the_new_owner(db_path: Path, p2: int) -> None:
    at = T0 + timedelta(minutes=5)
    out = cli_at(at, db_path, "escalate", str(p2), "--to", "L2", "--trigger", "performance",
                 *handoff_args(L2))
    assert out.stdout == "INC-1 escalated to L2, unassigned (was ola)\n", out.stderr
    out = cli_at(at, db_path, "escalate", "INC-1", "--to", "L3", "--trigger",
                 "security_concerns", "--assign", "priya", *handoff_args(L3))
    assert out.stdout == "INC-1 escalated to L3, assigned to priya\n", out.stderr
    shown = json.loads(cli_at(at, db_path, "show", "1", "--json").stdout)
    assert shown["assignee"] == "priya"
    escalations = [e for e in shown["events"] if e["kind"] == "escalated"]
    assert [e["payload"]["assignee"] for e in escalations] == [None, "priya"]
    text = cli_at(at, db_path, "show", "1").stdout
    assert "escalated to L3, assigned to priya" in text
    checked = cli_at(at, db_path, "verify")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_cli_policy_show_tells_each_timed_trigger(db_path: Path) -> None:
    out = cli_at(T0, db_path, "policy", "show", "--level", "L3").stdout
    assert "- not_resolved_2h: Issue not resolved within 2 hours [after 2h at the\n" \
           "        current level]" in out


# -- the escalation form, on a FixedClock --------------------------------------------------------

async def open_form(pilot, incident_id: int) -> EscalateForm:
    await select(pilot, incident_id)
    await pilot.press("e")
    await pilot.pause()
    form = pilot.app.screen
    assert isinstance(form, EscalateForm)
    return form


async def choose_trigger(pilot, form: EscalateForm, position: int) -> None:
    """Open the trigger list and take its `position`th entry (1 = the first trigger), as
    a person does with the keys."""
    trigger = form.query_one("#trigger", Select)
    trigger.focus()
    await pilot.press("enter")
    await pilot.pause()
    for _ in range(position):
        await pilot.press("down")
    await pilot.press("enter")
    await settle(pilot)


def error(form: EscalateForm) -> str:
    return str(form.query_one("#form-error", Static).render())


@sync
async def test_the_form_shows_the_wait_and_refuses_a_timed_trigger_until_then(
        db_path: Path, policy: Policy, p2: int, reader: Store) -> None:
    clock = FixedClock(T0 + timedelta(minutes=17, seconds=30))
    app = make_app(db_path, policy, clock)
    async with app.run_test(size=(100, 40)) as pilot:
        form = await open_form(pilot, p2)
        assert form.target == "L2"
        trigger = form.query_one("#trigger", Select)
        labels = [str(prompt) for prompt, _ in trigger._options]
        # T0 is 15:00 UTC: the trigger can be chosen from 15:30 (the tests run in UTC).
        assert "Issue not resolved within 30 minutes (after 30m at L1; from 15:30:00)" in labels
        assert "Performance issues" in labels
        await choose_trigger(pilot, form, 1)
        assert trigger.value == "not_resolved_30m"
        assert error(form) == "trigger 'not_resolved_30m' can be chosen in 12m30s"
        assert trigger.has_class("missing")
        for area in form.query(".handoff"):
            assert isinstance(area, TextArea)
            area.load_text(f"{area.name}: written")
        clock.set(T0 + timedelta(minutes=29, seconds=59))
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is form  # refused at the instant of the submit, with the wait
        assert error(form) == "trigger 'not_resolved_30m' can be chosen in 0m01s"
        assert reader.incident(p2).level == "L1"  # type: ignore[union-attr]
        clock.set(T0 + timedelta(minutes=30))
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is not form
    stored = reader.incident(p2)
    assert stored is not None and (stored.level, stored.assignee) == ("L2", None)
    assert reader.detail(p2).handoffs[-1].trigger == "not_resolved_30m"


@sync
async def test_choosing_another_trigger_clears_the_wait(db_path: Path, policy: Policy,
                                                       p2: int) -> None:
    app = make_app(db_path, policy, FixedClock(T0 + timedelta(minutes=1)))
    async with app.run_test(size=(100, 40)) as pilot:
        form = await open_form(pilot, p2)
        await choose_trigger(pilot, form, 1)
        assert error(form) == "trigger 'not_resolved_30m' can be chosen in 29m00s"
        await choose_trigger(pilot, form, 3)  # the third trigger, which names no time
        assert form.query_one("#trigger", Select).value != "not_resolved_30m"
        assert error(form) == ""


@sync
async def test_the_form_names_the_new_owner_or_leaves_it_unassigned(
        db_path: Path, policy: Policy, p2: int, reader: Store) -> None:
    app = make_app(db_path, policy, FixedClock(T0 + timedelta(minutes=5)))
    async with app.run_test(size=(100, 40)) as pilot:
        form = await open_form(pilot, p2)
        await choose_trigger(pilot, form, 4)  # Performance issues
        assert form.query_one("#trigger", Select).value == "performance"
        for area in form.query(".handoff"):
            assert isinstance(area, TextArea)
            area.load_text(f"{area.name}: written")
        owner = form.query_one("#owner", Input)
        owner.focus()
        await pilot.press(*"priya")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is not form
        assert reader.incident(p2).assignee == "priya"  # type: ignore[union-attr]
        form = await open_form(pilot, p2)  # on to L3, naming nobody
        form.query_one("#trigger", Select).value = "security_concerns"
        for area in form.query(".handoff"):
            assert isinstance(area, TextArea)
            area.load_text(f"{area.name}: written")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is not form
    stored = reader.incident(p2)
    assert stored is not None and (stored.level, stored.assignee) == ("L3", None)
    assert verify(reader) == []
