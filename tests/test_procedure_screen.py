"""The procedure on the dashboard's screens, and small things a user notices (issue 13).

Pilot tests on the real app, a FixedClock and a temporary database (helpers in
conftest.py, as test_dashboard.py uses them).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import T0, make_app, screen_lines, settle, sync
from sladeck.clock import FixedClock
from sladeck.domain import actions
from sladeck.domain.actions import Desk
from sladeck.domain.queue import Filter
from sladeck.policy import Policy

pytestmark = pytest.mark.usefixtures("utc_and_still")


# -- 5. small things -------------------------------------------------------------------


@sync
async def test_a_filter_that_matches_nothing_says_so_and_how_to_clear_it(
        demo_db: Path, policy: Policy) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(100, 24)) as pilot:
        await settle(pilot)
        total = sum(app.queue.by_severity.values())
        assert total > 0
        app._apply_filter(Filter(text="zzz-nothing"))
        await pilot.pause()
        shown = "\n".join(screen_lines(app))
        assert (f"No incidents match the filter ({total} open). Press esc to clear it."
                in shown)
        assert "No open incidents" not in shown
        app._apply_filter(Filter())
        await pilot.pause()
        assert "No incidents match" not in "\n".join(screen_lines(app))


@sync
async def test_a_toast_names_the_clock_that_breached_and_when_it_was_due(
        db_path: Path, policy: Policy, desk: Desk) -> None:
    incident = actions.open_incident(desk, title="Checkout API down", severity="P3").incident
    clock = FixedClock(T0)
    app = make_app(db_path, policy, clock=clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.tick()
        clock.advance(hours=30)  # past every clock of a P3 left open
        app.tick()
        await settle(pilot)
        notes = [n.message for n in app._notifications if n.title == "BREACHED"]
        assert len(notes) == 1, [n.message for n in app._notifications]
        note = notes[0]
        assert note.startswith(f"{incident.ref} Checkout API down — ")
        assert "SLA breached" in note and "is BREACHED its SLA" not in note
        assert "Response (acknowledge) SLA breached" in note or "Resolution" in note
        assert ", due " in note


@pytest.mark.parametrize("width", [60, 20])
@sync
async def test_the_footer_ends_cleanly_at_narrow_widths(db_path: Path, policy: Policy,
                                                         width: int) -> None:
    app = make_app(db_path, policy)
    async with app.run_test(size=(120, 24)) as pilot:
        await pilot.pause()
        wide = screen_lines(app)[-1].split("▏")[0].rstrip()
    app = make_app(db_path, policy)
    async with app.run_test(size=(width, 24)) as pilot:
        await pilot.pause()
        last = screen_lines(app)[-1]
        assert len(last) == width
        assert "palette" not in last and "▏" not in last
        assert wide.startswith(last.rstrip()), (last, wide)


# -- 1. severities: the new-incident form and help ---------------------------------


def text_of(widget: object) -> str:
    from textual.widgets import Static

    assert isinstance(widget, Static)
    return str(widget.render())


@sync
async def test_the_new_incident_form_explains_the_chosen_severity(
        demo_db: Path, policy: Policy) -> None:
    from textual.widgets import Select

    from sladeck.tui.forms import NewIncidentForm

    app = make_app(demo_db, policy)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, NewIncidentForm)
        for key in ("P0", "P2"):
            s = policy.severities[key]
            form.query_one("#severity", Select).value = key
            await pilot.pause()
            info = text_of(form.query_one("#severity-info"))
            assert s.business_impact and s.business_impact in info
            assert s.definition in info
            assert all(example in info for example in s.examples) and s.examples
        assert policy.severities["P0"].business_impact not in info


@sync
async def test_help_shows_a_severity_table(demo_db: Path, policy: Policy) -> None:
    from sladeck.tui.help import HelpScreen

    app = make_app(demo_db, policy)
    async with app.run_test(size=(120, 60)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        lines = screen_lines(app)
        p1 = next(line for line in lines if " P1 " in f" {line} " and
                  policy.severities["P1"].name in line)
        s = policy.severities["P1"]
        from sladeck.policy import format_duration
        assert format_duration(policy.response_time("P1", policy.levels[0])) in p1
        assert format_duration(s.resolution_target) in p1
        assert format_duration(s.resolution_maximum) in p1
        about = next(line for line in lines if "next review" in line)  # the policy's own
        assert policy.version in about and policy.owner in about and policy.next_review in about


# -- 2. the escalate form: the target level's tier, steps and outside help -----------


async def escalate_form(pilot, level: str, policy: Policy):
    from textual.widgets import Select

    from conftest import select
    from sladeck.tui.forms import EscalateForm

    # An open incident at the first level: every other level is a target.
    await select(pilot, next(r.incident.id for r in pilot.app.queue.visible
                             if r.incident.state == "open" and r.incident.level == "L1"))
    await pilot.press("e")
    await pilot.pause()
    form = pilot.app.screen
    assert isinstance(form, EscalateForm)
    form.query_one("#target", Select).value = level
    await pilot.pause()
    assert form.target == level
    return form


@sync
async def test_the_escalate_form_shows_the_target_tier_and_its_steps(
        demo_db: Path, policy: Policy) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(120, 36)) as pilot:
        for level in ("L3", "L4", "L2"):
            form = await escalate_form(pilot, level, policy)
            tier = policy.tiers[level]
            info = text_of(form.query_one("#tier-info"))
            assert tier.scope in info
            for entry in (*tier.responsibilities, *tier.common_issues,
                          *tier.escalation_criteria):
                assert entry in info
            steps = text_of(form.query_one("#steps")).splitlines()
            process = policy.escalation[level].process
            assert [line.split(". ", 1)[1] for line in steps[1:]] == list(process)
            assert steps[1].strip().startswith("1. ")
            await pilot.press("escape")
            await pilot.pause()


@sync
async def test_the_l4_form_shows_vendors_when_vendor_support_is_the_trigger(
        demo_db: Path, policy: Policy) -> None:
    from textual.widgets import Select

    app = make_app(demo_db, policy)
    async with app.run_test(size=(120, 36)) as pilot:
        form = await escalate_form(pilot, "L4", policy)
        keys = [t.key for t in policy.escalation["L4"].triggers]
        assert "vendor_support" in keys
        outside = form.query_one("#outside-help")
        assert not outside.display
        form.query_one("#trigger", Select).value = "vendor_support"
        await pilot.pause()
        assert outside.display
        shown = text_of(outside)
        for named in (*policy.vendors, *policy.professional_services):
            assert named.name in shown and named.contact in shown
        assert any("Legal" in n.name for n in policy.professional_services)
        assert "Legal counsel" in "\n".join(screen_lines(app)) or outside.region.height
        form.query_one("#trigger", Select).value = keys[0]
        await pilot.pause()
        assert not outside.display


# -- 3. the detail screen: the level, outside help, every level's checklists ---------


@sync
async def test_details_show_the_level_outside_help_and_earlier_levels_ticks(
        db_path: Path, policy: Policy, desk: Desk) -> None:
    from textual.widgets import OptionList

    from conftest import select
    from sladeck.tui.detail import DetailScreen

    incident = actions.open_incident(desk, title="Checkout API down", severity="P2").incident
    first = policy.internal_communication["L1"][0]
    actions.tick(desk, incident.id, "internal.L1", first.key)
    target = policy.escalation["L2"]
    untimed = next(t.key for t in target.triggers if t.after is None)
    actions.escalate(desk, incident.id, to="L2", trigger=untimed,
                     fields={item.key: "filled" for item in target.handoff})
    app = make_app(db_path, policy)
    async with app.run_test(size=(120, 36)) as pilot:
        await select(pilot, incident.id)
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        tier = policy.tiers["L2"]
        level = text_of(screen.query_one("#tier"))
        assert tier.scope in level
        assert all(entry in level for entry in tier.escalation_criteria)
        contacts = text_of(screen.query_one("#contacts"))
        for named in (*policy.vendors, *policy.professional_services):
            assert f"{named.name} {named.contact}" in contacts
        options = screen.query_one("#checklists", OptionList)
        texts = [str(options.get_option_at_index(i).prompt)
                 for i in range(options.option_count)]
        assert f"[x] Internal L1 (earlier level): {first.label}" in texts
        l2 = policy.internal_communication["L2"][0]
        assert f"[ ] Internal L2: {l2.label}" in texts


# -- 4. the review form: the knowledge-sharing checklist ----------------------------


@sync
async def test_the_review_form_lists_the_knowledge_sharing_checklist(
        demo_db: Path, policy: Policy) -> None:
    from sladeck.tui.forms import ReviewForm

    items = policy.checklists["knowledge_sharing"]
    assert items
    app = make_app(demo_db, policy)
    async with app.run_test(size=(120, 36)) as pilot:
        incident = next(r.incident for r in app.queue.visible)
        app.push_screen(ReviewForm(app.desk.store.incident(incident.id), policy, app.clock.now()))
        await pilot.pause()
        shown = text_of(app.screen.query_one("#knowledge"))
        assert "Knowledge sharing" in shown
        assert all(item.label in shown for item in items)
