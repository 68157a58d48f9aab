"""Forms that keep every keystroke, and the detail screen's checklists (issue 13).

Pilot tests on the real app, a FixedClock and a temporary database (see
test_dashboard.py; helpers in conftest.py).
"""

from __future__ import annotations

from pathlib import Path

from textual import events
from textual.keys import _character_to_key
from textual.pilot import Pilot
from textual.widgets import Input, Select, Static, TextArea

from conftest import first_with, kinds, make_app, screen_lines, select, settle, sync
from sladeck.policy import Policy
from sladeck.store import Store
from sladeck.tui.app import QueueScreen
from sladeck.tui.detail import DetailScreen
from sladeck.tui.forms import EscalateForm, NewIncidentForm, NoteForm, SeverityForm


async def burst(pilot: Pilot, *keys: str) -> None:
    """Keys arriving in one burst, as a laggy link or an unbracketed paste delivers them:
    every key is queued before the app handles the first (`pilot.press` waits for the
    app to go idle between keys, which hides the race)."""
    for key in keys:
        char = key if len(key) == 1 else None
        name = _character_to_key(key) if char and not key.isalnum() else key
        pilot.app.post_message(events.Key(name, char))
    await settle(pilot)


def areas(form: EscalateForm) -> dict[str, TextArea]:
    return {a.name: a for a in form.query(".handoff") if isinstance(a, TextArea) and a.name}


async def open_escalation_to(pilot: Pilot, incident_id: int, level: str,
                             policy: Policy) -> EscalateForm:
    await select(pilot, incident_id)
    await pilot.press("e")
    await pilot.pause()
    form = pilot.app.screen
    assert isinstance(form, EscalateForm)
    form.query_one("#target", Select).value = level
    await pilot.pause()
    assert form.target == level
    form.query_one("#trigger", Select).value = next(
        t.key for t in policy.escalation[level].triggers if t.after is None)  # a timed one waits
    return form


# -- 1. text typed after a refusal shows ---------------------------------------------


@sync
async def test_text_typed_after_a_refusal_shows_in_the_marked_one_line_field(
        demo_db: Path, policy: Policy, reader: Store) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, NewIncidentForm)
        await pilot.press("ctrl+s")
        await settle(pilot)
        title = form.query_one("#title", Input)
        assert app.focused is title and title.has_class("missing")
        await pilot.press(*"Queue stuck")
        await pilot.pause()
        lines = screen_lines(app)
        rows = [i for i, line in enumerate(lines) if "Queue stuck" in line]
        assert rows, "the typed title is not on screen"
        assert "✖ required" in lines[rows[0] - 1]  # inside the marked field, still marked
        assert title.content_region.height == 1

        # the severity change's reason, the other one-line required field
        await pilot.press("escape")
        await pilot.pause()
        target = next(r.incident.id for r in app.queue.visible if r.incident.severity == "P2")
        await select(pilot, target)
        await pilot.press("s")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, SeverityForm)
        form.query_one("#severity", Select).value = "P1"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.focused is form.query_one("#reason", Input)
        await pilot.press(*"wider impact")
        await pilot.pause()
        lines = screen_lines(app)
        rows = [i for i, line in enumerate(lines) if "wider impact" in line]
        assert rows, "the typed reason is not on screen"
        assert "✖ required" in lines[rows[0] - 1]
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert reader.incident(target).severity == "P1"  # type: ignore[union-attr]


# -- 1b. "/" and the filter's text in one burst ------------------------------------------


@sync
async def test_a_burst_of_slash_and_text_filters_and_never_acts_on_an_incident(
        demo_db: Path, policy: Policy) -> None:
    """"/memory" typed fast over SSH: the letters are the filter's, never the queue's
    keys (before, "r" opened the Resolve form on the selected P0 and "m" toggled Mine),
    the first time the field opens and after; a "/" in the text is the text's."""
    app = make_app(demo_db, policy)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        for text in ("memory/x", "dns"):
            await burst(pilot, "/", *text)
            assert isinstance(app.screen, QueueScreen)
            assert app.screen.query_one("#search", Input).value == text
            assert app.queue.filter.text == text and not app.queue.filter.mine
            await burst(pilot, "escape")
            assert app.queue.filter.text == ""


# -- 2. a burst of keys across a tab ---------------------------------------------------


@sync
async def test_a_burst_across_tab_lands_each_part_in_its_own_field(
        demo_db: Path, policy: Policy) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_escalation_to(pilot, first_with(app, "acknowledged"), "L4", policy)
        fields = areas(form)
        fields["business_impact"].focus()
        await pilot.pause()
        await burst(pilot, *"abc", "tab", *"def")
        assert fields["business_impact"].text == "abc"
        assert fields["financial_impact"].text == "def"
        assert app.focused is fields["financial_impact"]
        assert any("def" in line for line in screen_lines(app))  # scrolled to, at 80×24
        await burst(pilot, "shift+tab", *"g")  # and back
        assert fields["business_impact"].text == "abcg"


@sync
async def test_an_l4_handoff_typed_in_one_burst_escalates(demo_db: Path, policy: Policy,
                                                          reader: Store) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        target = first_with(app, "acknowledged")
        form = await open_escalation_to(pilot, target, "L4", policy)
        keys = [item.key for item in policy.escalation["L4"].handoff]
        areas(form)[keys[0]].focus()
        await pilot.pause()
        typed: list[str] = []
        for n, key in enumerate(keys):
            typed += [*f"{key} {n}", "tab"]
        await burst(pilot, *typed[:-1], "ctrl+s")
        assert isinstance(app.screen, QueueScreen), str(
            app.screen.query_one("#form-error", Static).content)
        handoff = reader.detail(target).handoffs[-1]  # type: ignore[union-attr]
        assert handoff.to_level == "L4"
        assert handoff.fields == {key: f"{key} {n}" for n, key in enumerate(keys)}


# -- 3. esc keeps a draft ---------------------------------------------------------------


@sync
async def test_esc_keeps_what_was_typed_as_a_draft_for_the_same_incident_and_form(
        demo_db: Path, policy: Policy, reader: Store) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        target, elsewhere = app.queue.visible[2].incident.id, app.queue.visible[3].incident.id
        await select(pilot, target)
        await pilot.press("c", *"half a thought", "escape")
        await pilot.pause()
        assert isinstance(app.screen, QueueScreen)
        assert "note" not in kinds(reader, target)  # esc acts on nothing
        # another incident's note starts empty
        await select(pilot, elsewhere)
        await pilot.press("c")
        await pilot.pause()
        assert app.screen.query_one("#note", TextArea).text == ""
        assert not app.screen.query("#form-draft")
        await pilot.press("escape")
        # the same incident's note comes back, and says so
        await select(pilot, target)
        await pilot.press("c")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, NoteForm)
        assert form.query_one("#note", TextArea).text == "half a thought"
        assert "Draft restored" in "\n".join(screen_lines(app))
        await pilot.press(*" more", "ctrl+s")
        await settle(pilot)
        notes = [e.payload["text"] for e in reader.events(target) if e.kind == "note"]
        assert notes[-1] == "half a thought more"
        # submitted: the draft is spent
        await pilot.press("c")
        await pilot.pause()
        assert app.screen.query_one("#note", TextArea).text == ""
        await pilot.press("escape")


@sync
async def test_an_escalation_draft_keeps_target_trigger_and_every_field(
        demo_db: Path, policy: Policy) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        target = first_with(app, "acknowledged")
        form = await open_escalation_to(pilot, target, "L4", policy)
        trigger = form.query_one("#trigger", Select).value
        areas(form)["business_impact"].focus()
        await pilot.press(*"orders lost", "tab", *"18k an hour", "escape")
        await pilot.pause()
        assert isinstance(app.screen, QueueScreen)
        await pilot.press("e")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, EscalateForm)
        assert form.target == "L4" and form.query_one("#target", Select).value == "L4"
        assert form.query_one("#trigger", Select).value == trigger
        fields = areas(form)
        assert fields["business_impact"].text == "orders lost"
        assert fields["financial_impact"].text == "18k an hour"
        assert "Draft restored" in "\n".join(screen_lines(app))


@sync
async def test_esc_on_an_untouched_form_keeps_no_draft(demo_db: Path, policy: Policy) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        await select(pilot, first_with(app, "acknowledged"))
        for key in ("e", "i", "c"):  # `i` opens prefilled with a name: not typed
            await pilot.press(key)
            await pilot.pause()
            await pilot.press("escape")
            await pilot.pause()
            await pilot.press(key)
            await pilot.pause()
            assert not app.screen.query("#form-draft"), key
            await pilot.press("escape")
            await pilot.pause()


# -- 4. the detail screen's checklists tick at once -------------------------------------


@sync
async def test_enter_and_space_tick_the_checklist_as_soon_as_details_open(
        demo_db: Path, policy: Policy, reader: Store) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        target = first_with(app, "open")
        await select(pilot, target)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        assert "SLA clocks" in "\n".join(screen_lines(app))  # the page opens at its top
        await pilot.press("enter")  # no tab first
        await settle(pilot)
        ticked = [(e.payload["checklist"], e.payload["item"]) for e in reader.events(target)
                  if e.kind == "checklist_ticked"]
        assert ticked == [("triage", "assess_severity")]
        await pilot.press("down", "space")
        await settle(pilot)
        ticked = [(e.payload["checklist"], e.payload["item"]) for e in reader.events(target)
                  if e.kind == "checklist_ticked"]
        assert ticked == [("triage", "assess_severity"), ("triage", "gather_information")]
        assert "[x] Triage: gather relevant details" in "\n".join(screen_lines(app))
