"""Pilot tests of the dashboard as a person uses it: keys in, the database and the
screen out.

Every app runs on a FixedClock, with no poll and no tick timer (tests call
`refresh_from_store()` and `tick()` themselves), on a temporary database. How the
screen is written (partial writes, repaints, the collector) is in test_rendering.py.
"""


from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Select, Static, TextArea

from conftest import (
    ME,
    T0,
    error_text,
    first_with,
    kinds,
    make_app,
    more_incidents,
    screen_lines,
    select,
    settle,
    sync,
    view,
)
from sladeck.clock import FixedClock
from sladeck.demo import fill_demo
from sladeck.domain import actions
from sladeck.domain.actions import Desk
from sladeck.domain.model import Actor
from sladeck.domain.notices import NOTICE_KINDS as NOTICES
from sladeck.domain.queue import Filter
from sladeck.policy import Policy
from sladeck.store import Store
from sladeck.tui.app import QueueScreen, SladeckApp
from sladeck.tui.detail import DetailScreen
from sladeck.tui.forms import EscalateForm, FilterForm, NewIncidentForm, ResolveForm, Tick
from sladeck.tui.help import HelpScreen
from sladeck.tui.queue import QueueView

pytestmark = pytest.mark.usefixtures("utc_and_still")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # no ESC, BEL, C1 … on screen


def fill_handoff(form: EscalateForm, policy: Policy, *, skip: str | None = None) -> None:
    target = policy.escalation[form.target]
    form.query_one("#trigger", Select).value = next(
        t.key for t in target.triggers if t.after is None)  # a timed one waits
    for area in form.query(".handoff"):
        assert isinstance(area, TextArea)
        if area.name != skip:
            area.load_text(f"{area.name}: written for the test")


# -- the queue and its keys -----------------------------------------------------------


@sync
async def test_queue_loads_demo_worst_first(demo_db: Path, dashboard: Callable[..., SladeckApp]) -> None:
    app = dashboard(demo_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        rows = app.queue.visible
        assert len(rows) == 26  # 30 demo incidents, 4 resolved or closed
        assert rows[0].risk == "breached"
        assert [r.key for r in rows] == sorted(r.key for r in rows)
        assert isinstance(app.focused, QueueView)
        lines = screen_lines(app)
        assert lines[0].startswith(" sladeck  26 open")
        assert "15:00:00 UTC" in lines[0] or len(lines[0]) == 80
        assert lines[1].startswith("RISK     NEXT")
        assert rows[0].incident.ref in lines[2]


@sync
async def test_a_acknowledges_the_selected_incident(demo_db: Path, policy: Policy,
                                                    reader: Store) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        target = first_with(app, "open")
        acks = kinds(reader, target).count("acknowledged")  # (maybe at an earlier level)
        await select(pilot, target)
        await pilot.press("a")
        await settle(pilot)
        incident = reader.incident(target)
        assert incident is not None and incident.state == "acknowledged"
        # (the notices the demo's incident owed may follow: recorded once, by this dashboard)
        last = [e for e in reader.events(target) if e.kind not in NOTICES][-1]
        assert (last.kind, last.actor.account, last.actor.name) == ("acknowledged", "tester", "Tess")
        assert app.queue.rows[target].incident.state == "acknowledged"  # the queue followed
        assert view(app).selected_id == target  # and kept the selection
        # `a` again does not apply to an acknowledged incident: nothing more is written
        await pilot.press("a")
        await settle(pilot)
        assert kinds(reader, target).count("acknowledged") == acks + 1


@sync
async def test_a_on_a_stale_row_reports_the_conflict(demo_db: Path, policy: Policy,
                                                     reader: Store, other: Desk) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        target = first_with(app, "open")
        await select(pilot, target)
        actions.assign(other, target, "bob")  # the app has not polled yet
        await pilot.press("a")
        await settle(pilot)
        messages = [n.message for n in app._notifications]
        assert any("assigned" in m and "alice" in m and "reload" in m for m in messages)
        assert reader.incident(target).state == "open"  # type: ignore[union-attr]
        assert app.queue.rows[target].incident.assignee == "bob"  # refreshed after refusal


@sync
async def test_e_refuses_missing_fields_and_marks_them(demo_db: Path, policy: Policy,
                                                       reader: Store) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        target = first_with(app, "acknowledged")
        before = reader.incident(target)
        await select(pilot, target)
        await pilot.press("e")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, EscalateForm)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is form  # still open
        wanted = ["trigger", *(f.key for f in policy.escalation[form.target].handoff)]
        marked = sorted(w.name for w in form.query(".missing") if w.name)
        assert marked == sorted(wanted)
        assert all(w.border_title == "✖ required" for w in form.query(".missing"))
        assert "needs:" in error_text(app) and "choose a trigger" in error_text(app)
        assert app.focused is not None and app.focused.name == "trigger"
        after = reader.incident(target)
        assert after == before  # nothing written
        assert "escalated" not in kinds(reader, target)


@sync
async def test_e_keeps_typed_text_and_marks_only_what_is_missing(
        demo_db: Path, policy: Policy, reader: Store) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        target = first_with(app, "acknowledged")
        await select(pilot, target)
        await pilot.press("e")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, EscalateForm)
        skipped = policy.escalation[form.target].handoff[-1].key
        fill_handoff(form, policy, skip=skipped)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert [w.name for w in form.query(".missing")] == [skipped]
        texts = {a.name: a.text for a in form.query(".handoff") if isinstance(a, TextArea)}
        assert all(texts[k] for k in texts if k != skipped)  # nothing typed was lost
        assert "escalated" not in kinds(reader, target)


@sync
async def test_e_with_a_full_handoff_escalates(demo_db: Path, policy: Policy,
                                               reader: Store) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        target = first_with(app, "acknowledged")
        level = app.queue.rows[target].incident.level
        await select(pilot, target)
        await pilot.press("e")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, EscalateForm)
        to = form.target
        fill_handoff(form, policy)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, QueueScreen)
        incident = reader.incident(target)
        assert incident is not None and (incident.level, incident.state) == (to, "open")
        handoff = reader.detail(target).handoffs[-1]  # type: ignore[union-attr]
        assert (handoff.from_level, handoff.to_level) == (level, to)
        assert set(handoff.fields) == {f.key for f in policy.escalation[to].handoff}
        assert any(f"escalated to {to}" in n.message for n in app._notifications)


@sync
async def test_e_shows_a_conflict_and_writes_nothing(demo_db: Path, policy: Policy,
                                                     reader: Store, other: Desk) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        target = first_with(app, "open")
        escalations = kinds(reader, target).count("escalated")
        await select(pilot, target)
        await pilot.press("e")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, EscalateForm)
        fill_handoff(form, policy)
        actions.acknowledge(other, target)  # someone else acts while the form is open
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is form
        assert f"INC-{target} was acknowledged" in error_text(app)
        assert "by alice" in error_text(app) and "reload before acting" in error_text(app)
        assert kinds(reader, target).count("escalated") == escalations
        assert [e for e in reader.events(target) if e.kind not in NOTICES][-1].account == "alice"
        # the form kept every field and now aims at the incident as it is: a second
        # submit, made knowing the change, escalates
        assert form.expected_version == reader.incident(target).version  # type: ignore[union-attr]
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, QueueScreen)
        assert "escalated" in kinds(reader, target)


@sync
async def test_escape_closes_a_form_and_changes_nothing(demo_db: Path, policy: Policy,
                                                        reader: Store) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        target = first_with(app, "open")
        await select(pilot, target)
        events_before = len(reader.events())
        rows_before = [(r.incident.id, r.incident.version) for r in app.queue.visible]
        for key in ("e", "r", "c", "s", "i", "n"):
            await pilot.press(key)
            await pilot.pause()
            assert app.screen is not app.screen_stack[0], key
            await pilot.press("x", "y", "escape")
            await settle(pilot)
            assert isinstance(app.screen, QueueScreen), key
        assert len(reader.events()) == events_before
        assert [(r.incident.id, r.incident.version) for r in app.queue.visible] == rows_before
        assert view(app).selected_id == target


@sync
async def test_r_resolves_only_with_summary_and_checklist(demo_db: Path, policy: Policy,
                                                          reader: Store) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        target = next(r.incident.id for r in app.queue.visible if r.incident.severity == "P3")
        await select(pilot, target)
        await pilot.press("r")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, ResolveForm)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "summary" in [w.name for w in form.query(".missing")]
        await pilot.press(*"Rolled back")  # the summary has focus after the refusal
        for tick in form.query(Tick):
            tick.value = True
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, QueueScreen)
        incident = reader.incident(target)
        assert incident is not None and incident.state == "closed"  # P3 needs no review
        resolved = next(e for e in reader.events(target) if e.kind == "resolved")
        assert resolved.payload["summary"] == "Rolled back"
        assert target not in app.queue.rows  # closed incidents leave memory


@sync
async def test_c_adds_a_note_typed_at_the_keyboard(demo_db: Path, policy: Policy,
                                                   reader: Store) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        target = app.queue.visible[3].incident.id
        await select(pilot, target)
        await pilot.press("c")
        await pilot.pause()
        await pilot.press("ctrl+s")  # a blank note is refused
        await settle(pilot)
        assert "must not be blank" in error_text(app)
        await pilot.press(*"on it", "ctrl+s")
        await settle(pilot)
        notes = [e for e in reader.events(target) if e.kind == "note"]
        assert [n.payload["text"] for n in notes][-1] == "on it"


@sync
async def test_n_opens_a_new_incident_and_selects_it(demo_db: Path, policy: Policy,
                                                     reader: Store) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        count = len(reader.incidents(None))
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, NewIncidentForm)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert sorted(w.name for w in form.query(".missing")) == ["severity", "title"]
        assert len(reader.incidents(None)) == count
        form.query_one("#title", Input).focus()
        await pilot.press(*"Queue stuck", "ctrl+s")
        await settle(pilot)
        assert [w.name for w in form.query(".missing")] == ["severity"]
        form.query_one("#severity", Select).value = "P1"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, QueueScreen)
        new = max(reader.incidents(None), key=lambda i: i.id)
        assert (new.title, new.severity, new.level) == ("Queue stuck", "P1", "L1")
        assert reader.events(new.id)[0].account == "tester"
        assert view(app).selected_id == new.id


@sync
async def test_s_changes_severity_with_a_reason(demo_db: Path, policy: Policy,
                                                reader: Store) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        target = next(r.incident.id for r in app.queue.visible if r.incident.severity == "P2")
        await select(pilot, target)
        await pilot.press("s")
        await pilot.pause()
        form = app.screen
        form.query_one("#severity", Select).value = "P1"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert [w.name for w in form.query(".missing")] == ["reason"]
        assert reader.incident(target).severity == "P2"  # type: ignore[union-attr]
        form.query_one("#reason", Input).focus()
        await pilot.press(*"wider impact", "ctrl+s")
        await settle(pilot)
        assert reader.incident(target).severity == "P1"  # type: ignore[union-attr]
        assert app.queue.rows[target].incident.severity == "P1"


@sync
async def test_i_assigns_to_me_by_default(demo_db: Path, policy: Policy, reader: Store) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        target = next(r.incident.id for r in app.queue.visible if not r.incident.assignee)
        await select(pilot, target)
        await pilot.press("i")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert reader.incident(target).assignee == "Tess"  # type: ignore[union-attr]
        await pilot.press("m")  # only mine: the one just assigned
        await pilot.pause()
        assert [r.incident.id for r in app.queue.visible] == [target]
        assert "mine: 1 shown" in screen_lines(app)[0]
        await pilot.press("m")
        await pilot.pause()
        assert len(app.queue.visible) == 26


@sync
async def test_enter_shows_details_and_escape_returns(demo_db: Path, policy: Policy,
                                                      reader: Store) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        target = app.queue.visible[5].incident.id
        await select(pilot, target)
        await pilot.press("enter")
        await pilot.pause()
        detail = app.screen
        assert isinstance(detail, DetailScreen) and detail.incident.id == target
        header = str(detail.query_one("#detail-header", Static).content)
        assert header.startswith(f"INC-{target} ")
        assert "Response (acknowledge)" in "\n".join(screen_lines(app))
        # an action key on the detail screen acts on this incident
        await pilot.press("c", *"from details", "ctrl+s")
        await settle(pilot)
        assert [e for e in reader.events(target)
                if e.kind not in NOTICES][-1].payload.get("text") == "from details"
        assert "from details" in str(detail.query_one("#timeline", Static).content)
        # enter on the checklist ticks the highlighted item, in the database
        checklists = detail.query_one("#checklists")
        checklists.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert "checklist_ticked" in kinds(reader, target)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, QueueScreen)
        assert view(app).selected_id == target


@sync
async def test_slash_filters_by_text_and_escape_clears(
        demo_db: Path, dashboard: Callable[..., SladeckApp]) -> None:
    app = dashboard(demo_db)
    async with app.run_test(size=(80, 24)) as pilot:
        assert all(r.haystack is None for r in app.queue.rows.values())  # nobody filtered
        await pilot.press("slash")
        await pilot.pause()
        assert isinstance(app.focused, Input) and app.focused.id == "search"
        # made while the first character is being typed, not on it
        assert all(r.haystack is not None for r in app.queue.rows.values())
        await pilot.press(*"checkout")
        await pilot.pause()
        assert [r.incident.title for r in app.queue.visible] == [
            "Checkout API returning 503 in every region"]
        await pilot.press("enter")  # keeps the filter, back to the queue
        await pilot.pause()
        assert isinstance(app.focused, QueueView) and len(app.queue.visible) == 1
        assert "/checkout: 1 shown" in screen_lines(app)[0]
        await pilot.press("escape")
        await pilot.pause()
        assert len(app.queue.visible) == 26 and app.queue.filter.text == ""


@sync
async def test_f_filters_by_severity_and_reset(demo_db: Path, dashboard: Callable[..., SladeckApp]) -> None:
    app = dashboard(demo_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, FilterForm)
        form.query_one("#severities-P1", Tick).value = True
        form.query_one("#states-resolved", Tick).value = True
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, QueueScreen)
        shown = app.queue.visible
        assert shown and {r.incident.severity for r in shown} == {"P1"}
        assert "resolved" in {r.incident.state for r in shown}
        await pilot.press("f")
        await pilot.pause()
        assert app.screen.query_one("#severities-P1", Tick).value  # shows the current filter
        await pilot.click("#reset")
        await pilot.pause()
        assert len(app.queue.visible) == 26


@sync
async def test_v_files_the_review_of_a_resolved_incident(demo_db: Path, policy: Policy,
                                                         reader: Store) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f")
        await pilot.pause()
        app.screen.query_one("#states-resolved", Tick).value = True
        await pilot.press("ctrl+s")
        await pilot.pause()
        target = first_with(app, "resolved")
        await select(pilot, target)
        await pilot.press("v")
        await pilot.pause()
        form = app.screen
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert sorted(w.name for w in form.query(".missing")) == sorted(
            f.key for f in policy.review_fields)
        for area in form.query(".review"):
            assert isinstance(area, TextArea)
            area.load_text("written")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert reader.incident(target).state == "closed"  # type: ignore[union-attr]


@sync
async def test_help_opens_scrolls_and_closes(demo_db: Path, dashboard: Callable[..., SladeckApp]) -> None:
    app = dashboard(demo_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = "\n".join(screen_lines(app))
        assert "Incident (queue row or detail screen)" in text  # headings are not cut
        await pilot.press("end")
        await pilot.pause()
        assert "ctrl+p" in "\n".join(screen_lines(app))  # the last section is reachable
        await pilot.press("q")  # q closes help, it does not quit
        await pilot.pause()
        assert isinstance(app.screen, QueueScreen) and app.is_running
        await pilot.press("question_mark", "escape")
        await pilot.pause()
        assert isinstance(app.screen, QueueScreen)


@sync
async def test_q_quits(demo_db: Path, dashboard: Callable[..., SladeckApp]) -> None:
    app = dashboard(demo_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code in (0, None)
    assert not app.is_running


# -- many people, one file ----------------------------------------------------------------


@sync
async def test_another_connection_s_change_appears(demo_db: Path, policy: Policy,
                                                   other: Desk) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        new = actions.open_incident(other, title="Seen from elsewhere", severity="P0").incident
        assert new.id not in app.queue.rows
        app.refresh_from_store()
        await pilot.pause()
        assert app.queue.rows[new.id].incident.title == "Seen from elsewhere"
        assert any("Seen from elsewhere" in line for line in screen_lines(app))
        actions.acknowledge(other, new.id)
        app.refresh_from_store()
        assert app.queue.rows[new.id].incident.state == "acknowledged"


@sync
async def test_the_poll_picks_up_other_writers(demo_db: Path, policy: Policy,
                                               other: Desk) -> None:
    app = make_app(demo_db, policy, poll_interval=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        new = actions.open_incident(other, title="Polled in", severity="P2").incident
        for _ in range(40):
            await pilot.pause(0.05)
            if new.id in app.queue.rows:
                break
        assert new.id in app.queue.rows


@sync
async def test_the_selection_follows_its_incident_as_rows_re_sort(
        demo_db: Path, policy: Policy, other: Desk) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        target = app.queue.visible[10].incident.id
        await select(pilot, target)
        for n in range(3):  # three breached P0s from elsewhere sort above it
            actions.open_incident(other, title=f"New {n}", severity="P0",
                                  opened_at=T0 - timedelta(hours=3))
        app.refresh_from_store()
        await pilot.pause()
        assert view(app).selected_id == target
        assert view(app).cursor == 13
        assert app.current_incident().id == target  # type: ignore[union-attr]
        await pilot.press("down", "up")
        assert view(app).selected_id == target


@sync
async def test_resize_to_80x24_and_back(demo_db: Path, dashboard: Callable[..., SladeckApp]) -> None:
    app = dashboard(demo_db)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert "SERVICE" in screen_lines(app)[1]
        await pilot.press("end")
        last = view(app).selected_id
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        lines = screen_lines(app)
        assert len(lines) == 24 and all(len(line) == 80 for line in lines)
        assert "SERVICE" not in lines[1] and "ASSIGNEE" not in lines[1]
        assert any(f"INC-{last} " in line for line in lines)  # the selection stays in view
        await pilot.press("home", "e")
        await pilot.pause()
        assert isinstance(app.screen, EscalateForm)
        await pilot.press("escape")
        await pilot.resize_terminal(120, 36)
        await pilot.pause()
        assert "SERVICE" in screen_lines(app)[1]
        assert view(app).render_line(0).cell_length == 120
        assert "checkout" in view(app).render_line(0).text + "".join(
            view(app).render_line(y).text for y in range(1, 26))  # the service column is back


HOSTILE = ("A\x1b]2;PWNED\x07B", "[@click=app.quit]", "[link=http://x]y[/link]",
           "\u202eevil", "tab\there\x9bC1")


@sync
async def test_hostile_titles_render_as_plain_text(db_path: Path, policy: Policy,
                                                   other: Desk, reader: Store) -> None:
    for title in HOSTILE:
        incident = actions.open_incident(other, title=title, severity="P2",
                                         service="[b]svc\x1b[31m").incident
        actions.add_note(other, incident.id, f"note {title}")
    app = make_app(db_path, policy)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        rows = [view(app).render_line(y).text for y in range(len(HOSTILE))]
        assert not any(CONTROL.search(line) for line in rows)
        assert any("[@click=app.quit]" in line for line in rows)  # shown, not run
        assert any("[link=http://x]y[/link]" in line for line in rows)
        assert any("\\x1b]2;PWNED\\x07B" in line for line in rows)
        assert any("\\u202eevil" in line for line in rows)
        assert not any(CONTROL.search(line) for line in screen_lines(app))
        for y in range(len(HOSTILE)):  # clicking a title only selects its row
            await pilot.click(QueueView, offset=(60, y))
            await pilot.pause()
            assert app.is_running and isinstance(app.screen, QueueScreen)
            assert view(app).cursor == y
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        for widget in app.screen.query(Static):
            assert not CONTROL.search(str(widget.content)), widget
        assert not any(CONTROL.search(line) for line in screen_lines(app))
        await pilot.click("#detail-header", offset=(20, 0))
        await pilot.press("e")
        await pilot.pause()
        assert not any(CONTROL.search(line) for line in screen_lines(app))
        await pilot.press("escape", "escape")
        await pilot.pause()
        assert app.is_running
        assert len(reader.incidents(None)) == len(HOSTILE)


# -- the clock passes a deadline ------------------------------------------------------


@sync
async def test_a_passed_deadline_notifies_rings_once_and_records_once(
        db_path: Path, policy: Policy, other: Desk, reader: Store) -> None:
    incident = actions.open_incident(other, title="Slow burn", severity="P3").incident
    clock = FixedClock(T0)
    app = make_app(db_path, policy, clock=clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.queue.rows[incident.id].risk == "ok"
        app.tick()
        assert app.bells == 0
        clock.advance(minutes=31)  # past L1's 30 m "escalate after"
        app.tick()
        await settle(pilot)
        assert app.bells == 1
        assert app.queue.rows[incident.id].risk == "due"
        notes = [n for n in app._notifications if "INC-1" in n.message]
        assert len(notes) == 1 and "due for escalation" in notes[0].message
        assert notes[0].title == "DUE"
        sla = [e for e in reader.events(incident.id) if e.kind in ("sla_due", "sla_breached")]
        assert [(e.kind, e.payload["clock"]) for e in sla] == [("sla_due", "level")]
        # more ticks and the refresh that sees our own notice change nothing
        clock.advance(seconds=1)
        app.tick()
        app.refresh_from_store()
        app.tick()
        await settle(pilot)
        assert app.bells == 1
        assert [e.kind for e in reader.events(incident.id)].count("sla_due") == 1
        assert "▲ DUE" in screen_lines(app)[2]


@sync
async def test_no_bell_when_bell_is_off(db_path: Path, policy: Policy, other: Desk) -> None:
    actions.open_incident(other, title="Quiet", severity="P3")
    clock = FixedClock(T0)
    app = make_app(db_path, policy, clock=clock, bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        clock.advance(minutes=31)
        app.tick()
        await settle(pilot)
        assert app.bells == 0 and len(app._notifications) == 1


@sync
async def test_empty_queue_says_how_to_start(db_path: Path, policy: Policy) -> None:
    app = make_app(db_path, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "No open incidents. Press n to open one." in screen_lines(app)[2]
        await pilot.press("a", "e", "enter")  # nothing selected: nothing happens
        await pilot.pause()
        assert isinstance(app.screen, QueueScreen)


@sync
async def test_command_palette_offers_the_actions_that_apply_and_runs_them(
        demo_db: Path, policy: Policy, reader: Store) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(120, 36)) as pilot:
        target = first_with(app, "open")
        await select(pilot, target)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert any(t.startswith("Ack") for t in titles)
        assert any(t.startswith("Escalate") for t in titles)
        acked = first_with(app, "acknowledged")
        await select(pilot, acked)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert not any(t.startswith("Ack") for t in titles)  # does not apply: not offered
        await select(pilot, target)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Ack (a)")
        await pilot.pause(0.5)  # the palette gathers commands in the background
        await pilot.press("down", "enter")  # highlight the best match, run it
        await pilot.pause(0.2)
        await settle(pilot)
        incident = reader.incident(target)
        assert incident is not None and incident.state == "acknowledged"


@sync
async def test_ids_of_any_length_show_whole(demo_db: Path, dashboard: Callable[..., SladeckApp]) -> None:
    app = dashboard(demo_db)
    async with app.run_test(size=(100, 24)) as pilot:
        await pilot.pause()
        assert screen_lines(app)[1].startswith("RISK     NEXT        ID       SV")
        more_incidents(app, 1, first_id=104213)
        view(app).select_id(104213)
        await pilot.pause()
        lines = screen_lines(app)
        assert any("INC-104213 " in line for line in lines)
        assert lines[1].startswith("RISK     NEXT        ID         SV")
        assert not any("INC-104…" in line for line in lines)


@sync
async def test_a_poll_after_the_app_closed_does_nothing(demo_db: Path, policy: Policy) -> None:
    app = make_app(demo_db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
    app.poll()  # the connections are closed: no "Cannot operate on a closed database"
    app.tick()
    app.refresh_from_store()


def test_the_queue_keeps_order_filter_and_counts_as_rows_change(demo_db: Path,
                                                                policy: Policy) -> None:
    """Moves by bisect, narrowing filters and kept counts agree with recomputing."""
    import dataclasses
    import random
    from collections import Counter

    from sladeck.domain.queue import Queue

    store = Store(demo_db)
    incidents = store.incidents(("open", "acknowledged", "resolved"))
    queue = Queue(store.policy, me=("tess",))
    now = T0
    queue.load(incidents, now)
    rng = random.Random(5)

    def check() -> None:
        rows = list(queue.rows.values())
        assert queue.order == sorted(rows, key=lambda r: r.key)
        assert queue.visible == [r for r in queue.order if queue._matches(r)]
        active = [r for r in rows if r.incident.active]
        assert +queue.by_severity == Counter(r.incident.severity for r in active)
        assert +queue.by_risk == Counter(r.risk for r in active)
        for index, row in enumerate(queue.visible):
            assert queue.index_of(row.incident.id) == index

    check()
    for step in range(60):
        now += timedelta(minutes=rng.choice((1, 3, 7)))
        queue.tick(now)
        if step % 3 == 0:
            pick = rng.choice(incidents)
            state = rng.choice(("open", "acknowledged", "resolved", "closed"))
            queue.merge([dataclasses.replace(pick, state=state,
                                             severity=rng.choice(("P1", "P2", "P3")))], now)
        if step % 5 == 0:
            queue.set_filter(rng.choice((Filter(), Filter(text="d"), Filter(text="db"),
                                         Filter(risks=frozenset({"breached"})),
                                         Filter(states=frozenset()), Filter(mine=True))))
        check()
    store.close()


@sync
async def test_the_poll_notices_a_commit_and_stops_when_the_app_closes(
        demo_db: Path, policy: Policy, other: Desk) -> None:
    app = make_app(demo_db, policy, poll_interval=0.01)
    app.WATCH_FILES = False  # the poll itself, as where inotify is unavailable
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        target = app.queue.visible[0].incident.id
        actions.assign(other, target, "polled")
        for _ in range(200):
            await asyncio.sleep(0.01)
            if app.queue.rows[target].incident.assignee == "polled":
                break
        assert app.queue.rows[target].incident.assignee == "polled"
    assert app.closing and app.live.handle is not None and app.live.handle.cancelled()
    await asyncio.sleep(0.05)  # no late poll on the closed connections


# -- noticing other processes' commits without polling (Linux inotify) -----------------

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="inotify is Linux's; elsewhere the app polls")


async def in_another_process(db: Path, *argv: str) -> None:
    """`sladeck --db DB ARGV` run to completion by another process, as a colleague would."""
    import sladeck

    env = {**os.environ, "TZ": "UTC", "SLADECK_USER": "alice",
           "PYTHONPATH": str(Path(sladeck.__file__).resolve().parent.parent)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sladeck", "--db", str(db), *argv, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()


async def until(pilot: Pilot, condition: Callable[[], bool], what: str) -> None:
    """Let the app run until `condition` holds (a bounded wait, never a fixed sleep)."""
    for _ in range(500):
        if condition():
            return
        await pilot.pause(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@linux_only
@sync
async def test_the_watch_shows_another_process_commit_and_never_polls_while_idle(
        demo_db: Path, policy: Policy) -> None:
    app = make_app(demo_db, policy, poll_interval=0.1)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert app.live.watch is not None
        assert app.live.handle is None  # nothing written: no wake-up is even scheduled
        target = app.queue.visible[2].incident
        await in_another_process(demo_db, "assign", str(target.id), "watched")
        await until(pilot, lambda: any("watched" in line for line in screen_lines(app)),
                    "the new assignee on screen")
        assert app.queue.rows[target.id].incident.assignee == "watched"
        # once the writes stop, the checks that followed them stop too
        await until(pilot, lambda: app.live.handle is None, "the checks to stop")
    assert app.live.watch is None  # closed with the app


@linux_only
@sync
async def test_the_watch_keeps_checking_while_another_process_writes(
        demo_db: Path, policy: Policy) -> None:
    app = make_app(demo_db, policy, poll_interval=0.1)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        ids = [r.incident.id for r in app.queue.visible[:3]]
        for n, incident_id in enumerate(ids):
            await in_another_process(demo_db, "assign", str(incident_id), f"burst{n}")
        await until(pilot, lambda: all(app.queue.rows[i].incident.assignee == f"burst{n}"
                                       for n, i in enumerate(ids)), "every commit")


@sync
async def test_without_inotify_the_app_polls(demo_db: Path, policy: Policy, other: Desk,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import sladeck.tui.watch

    monkeypatch.setattr(sladeck.tui.watch, "open_watch", lambda path: None)
    app = make_app(demo_db, policy, poll_interval=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.live.watch is None and app.live.handle is not None  # polling
        target = app.queue.visible[0].incident.id
        actions.assign(other, target, "polled")
        await until(pilot, lambda: app.queue.rows[target].incident.assignee == "polled",
                    "the poll to see the commit")


@linux_only
@sync
async def test_when_the_watched_folder_moves_the_app_polls_instead(
        tmp_path: Path, policy: Policy) -> None:
    team = tmp_path / "team"
    team.mkdir()
    store = Store(team / "sladeck.db")
    fill_demo(store, policy, ME, T0)
    store.close()
    app = make_app(team / "sladeck.db", policy, poll_interval=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.live.watch is not None
        team.rename(tmp_path / "moved")  # the open connections follow the file
        await until(pilot, lambda: app.live.watch is None and app.live.handle is not None,
                    "the app to fall back to polling")
        other = Store(tmp_path / "moved" / "sladeck.db")
        target = app.queue.visible[0].incident.id
        actions.assign(Desk(other, policy, FixedClock(T0), Actor("alice")), target, "moved")
        other.close()
        await until(pilot, lambda: app.queue.rows[target].incident.assignee == "moved",
                    "the poll to see the commit")


@linux_only
def test_the_watch_reports_only_the_database_its_wal_and_its_journal(tmp_path: Path) -> None:
    from sladeck.tui.watch import open_watch

    folder = tmp_path / "team"
    folder.mkdir()
    db = folder / "team.db"
    db.write_bytes(b"")
    watch = open_watch(db)
    assert watch is not None
    try:
        assert watch.read() is False  # nothing happened yet
        (folder / "notes.txt").write_text("unrelated")
        (folder / "other.db-wal").write_text("another database")
        assert watch.read() is False
        for name in ("team.db-wal", "team.db-journal", "team.db"):
            with open(folder / name, "ab") as f:
                f.write(b"x")
            assert watch.read() is True, name
        assert watch.read() is False  # every event was taken
        (folder / "team.db-wal").unlink()  # a WAL removed (and later made again)
        assert watch.read() is True and not watch.broken
        folder.rename(tmp_path / "moved")
        assert watch.read() is True and watch.broken
    finally:
        watch.close()


def test_no_watch_where_the_folder_cannot_be_watched(tmp_path: Path) -> None:
    from sladeck.tui.watch import open_watch

    assert open_watch(tmp_path / "missing" / "team.db") is None
