"""After a reopen, the earlier cycle's resolution ticks and review are shown as past and
are needed again (issue 13)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from conftest import make_app, select, sync
from sladeck.domain import actions
from sladeck.domain.actions import Desk
from sladeck.errors import MissingFields, Refused
from sladeck.policy import Policy
from sladeck.report import incident_markdown
from sladeck.store import Store


def test_a_reopened_incident_needs_its_resolution_checklist_and_review_again(
        desk: Desk, store: Store, policy: Policy, clock) -> None:
    inc = actions.open_incident(desk, title="Checkout down", severity="P1").incident
    actions.resolve(desk, inc.id, summary="restarted", checks="all")
    actions.file_review(desk, inc.id, {f.key: f"old {f.key}" for f in policy.review_fields})
    actions.reopen(desk, inc.id, reason="came back")
    detail = store.detail(inc.id)
    assert detail is not None
    assert detail.review is None and detail.earlier_review is not None
    assert not [t for t in detail.ticks if t.checklist == "resolution"]
    assert {t.item for t in detail.earlier_ticks} == \
        {i.key for i in policy.checklists["resolution"]}
    shown = incident_markdown(detail, policy, clock.now())
    checklist = shown.split("## Resolution checklist")[1].split("##")[0]
    assert "- [x]" not in checklist and checklist.count("- [ ]") == 4
    assert "the earlier cycle's resolution checklist and review" in checklist
    assert "Not filed yet." in shown and "old incident_analysis" not in shown.split(
        "## Post-incident review")[1]
    # resolving again needs the checklist again, and closing needs a new review
    with pytest.raises(MissingFields):
        actions.resolve(desk, inc.id, summary="pool fixed", checks=[])
    actions.resolve(desk, inc.id, summary="pool fixed", checks="all")
    detail = store.detail(inc.id)
    assert detail is not None and detail.incident.state == "resolved"  # not closed
    assert len([t for t in detail.ticks if t.checklist == "resolution"]) == 4
    assert detail.review is None
    with pytest.raises(MissingFields):
        actions.file_review(desk, inc.id, {})
    actions.file_review(desk, inc.id, {f.key: f"new {f.key}" for f in policy.review_fields})
    detail = store.detail(inc.id)
    assert detail is not None and detail.incident.state == "closed"
    assert detail.review is not None and detail.earlier_review is None
    assert detail.review.fields["lessons_learned"] == "new lessons_learned"
    with pytest.raises(Refused):  # closed again: nothing more to review
        actions.file_review(desk, inc.id, {f.key: "x" for f in policy.review_fields})


@sync
async def test_the_detail_screen_shows_a_reopened_incidents_review_as_the_earlier_cycles(
        db_path: Path, policy: Policy, other: Desk) -> None:
    inc = actions.open_incident(other, title="Checkout down", severity="P1").incident
    actions.resolve(other, inc.id, summary="restarted", checks="all")
    actions.file_review(other, inc.id, {f.key: f"old {f.key}" for f in policy.review_fields})
    actions.reopen(other, inc.id, reason="came back")
    app = make_app(db_path, policy)
    async with app.run_test(size=(100, 60)) as pilot:
        await select(pilot, inc.id)
        await pilot.press("enter")
        await pilot.pause()
        review = str(app.screen.query_one("#review", Static).content)
        assert "old incident_analysis" not in review
        assert "A review is required before this incident closes" in review
        assert "Earlier cycle: a review filed" in review and "before the reopen" in review
