"""The procedure from the command line (issue 13): `policy show`, `contacts`, `tick`,
the checklists in `show`, the policy's review date and its cross-checked keys."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

import sladeck.cli
from conftest import REPO, T0, call_cli
from sladeck.clock import FixedClock
from sladeck.errors import PolicyError
from sladeck.policy import parse_policy

SHIPPED = (REPO / "policy.yaml").read_text(encoding="utf-8")
L2_HANDOFF = ("issue_summary=a", "actions_taken=b", "current_status=c",
              "logs_and_evidence=d", "business_impact=e")


@pytest.fixture
def at(monkeypatch: pytest.MonkeyPatch):
    """Set the commands' wall clock: `at(datetime)`."""
    def set_clock(when: datetime) -> None:
        monkeypatch.setattr(sladeck.cli, "wall_clock", lambda: FixedClock(when))
    set_clock(T0)
    return set_clock


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "sladeck.db")


def ok(*argv: str) -> str:
    code, out, err = call_cli(*argv)
    assert code == 0, err
    return out


def refused(*argv: str) -> str:
    code, out, err = call_cli(*argv)
    assert code == 1, (out, err)
    lines = [line for line in err.splitlines()  # a policy under /tmp: a warning too
             if not line.startswith("sladeck: warning: ")]
    assert len(lines) == 1 and lines[0].startswith("sladeck: error: "), err
    return lines[0]


# -- policy show ----------------------------------------------------------------------


def test_policy_show_tells_the_whole_procedure_at_80_columns(at) -> None:
    out = ok("policy", "show")
    assert all(len(line) <= 80 for line in out.splitlines()), \
        [line for line in out.splitlines() if len(line) > 80]
    for text in (
        "version 1.0.0 · owner Support Team · next review 2025-11-22 (PASSED",
        "System down, business operations halted",          # severity definition
        "Business impact: Medium-High",                     # P1's business impact
        "- Production data loss",                           # an example
        "Resolution: target 2h, maximum 4h",
        "Escalation: reach L4 immediately on opening",
        "Scope: Critical system failures",                  # tier scope
        "- Executive decision making",                      # responsibilities
        "- Invalid JSONL/NDJSON format",                    # common issues
        "- External vendor support needed",                 # escalation criteria
        "- Contact Level 3 - notify expert support team",   # process step
        "- vendor_support: External vendor support needed",  # trigger
        "- financial_impact: Financial impact (Cost implications)",  # handoff field
        "- assess_severity: Triage: assess severity",       # triage checklist
        "- executive_briefing: Executive briefing",         # internal communication
        "- regulatory_reporting: Regulatory reporting",     # external communication
        "- verify_resolution: Verify resolution",           # resolution checklist
        "- continuous_improvement: Implement continuous improvement",  # knowledge sharing
        "- root_cause_analysis: Root cause analysis",       # review field
        "Required for: P0, P1",
        "- Legal counsel: legal@hotdash.com",
        "- AWS: support@amazon.com",
        "issue_tracking: primary Jira",                     # tools
        "Business hours: Mon, Tue, Wed, Thu, Fri 09:00-17:30 America/New_York",
    ):
        assert text in out, text
    matrix = out[out.index("RESPONSE MATRIX"):].splitlines()
    assert matrix[2].split() == ["L1", "L2", "L3", "L4"]
    assert matrix[3].split() == ["P0", "5m", "15m", "30m", "1h"]
    assert matrix[6].split() == ["P3", "4h", "8h", "1d", "2d"]


def test_policy_show_one_severity_and_level_in_any_case(at) -> None:
    out = ok("policy", "show", "--severity", "p1", "--level", "l3")
    assert "P1 High" in out and "L3 Expert Support" in out
    assert "P0 Critical" not in out and "L2 Advanced Support" not in out
    matrix = out[out.index("RESPONSE MATRIX"):].splitlines()
    assert matrix[2].split() == ["L3"] and matrix[3].split() == ["P1", "1h"]
    assert "unknown severity 'P7' (choose P0, P1, P2, P3)" in refused(
        "policy", "show", "--severity", "P7")


def test_policy_show_makes_policy_text_visible(tmp_path: Path, at) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(SHIPPED.replace("definition: System down, business operations halted",
                                    'definition: "System down\\e]52;c;cHduZWQ=\\a"'),
                    encoding="utf-8")
    out = ok("--policy", str(path), "policy", "show")
    assert "\x1b" not in out and "\x07" not in out
    assert "System down\\x1b]52;c;cHduZWQ=\\x07" in out


# -- the policy's review date, and keys that repeat another ---------------------------


def test_policy_check_warns_when_the_review_date_has_passed(at) -> None:
    lines = ok("policy", "check").splitlines()
    assert lines[1] == ("warning: next review 2025-11-22 has passed (369 days ago): review the "
                        "procedure with its owner, then set next_review · version 1.0.0 · "
                        "owner Support Team")
    at(datetime(2025, 11, 22, 23, 0, tzinfo=UTC))  # the day itself: not passed yet
    lines = ok("policy", "check").splitlines()
    assert lines[1] == "version 1.0.0 · owner Support Team · next review 2025-11-22"
    assert "warning" not in "".join(lines)


def test_next_review_must_be_a_date() -> None:
    text = SHIPPED.replace("next_review: 2025-11-22", "next_review: 22/11/2025")
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    line = text[:text.index("next_review:")].count("\n") + 1
    assert caught.value.problems == [f'policy.yaml:{line}: next_review: "22/11/2025" is not '
                                     "a date (write 2026-05-22)"]
    assert parse_policy(SHIPPED).next_review_date().isoformat() == "2025-11-22"


def test_severity_response_must_agree_with_the_matrix(tmp_path: Path) -> None:
    text = SHIPPED.replace("    response: 15m\n", "    response: 10m\n", 1)
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    line = text[:text.index("response: 10m")].count("\n") + 1
    assert refused("policy", "check", str(path)) == (
        f"sladeck: error: {path}:{line}: severities.P1.response: 10m disagrees with "
        "response_matrix.P1.L1 (15m), which the clocks use")
    # refused by `policy check`, not at load: an edit of the matrix alone still opens
    # incidents (on the matrix's figure) while the check says what to fix
    assert parse_policy(text).response_time("P1", "L1").seconds == 900


def test_tier_resolution_must_agree_with_escalate_after(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(SHIPPED.replace("    escalate_after: 2h\n",
                                    "    resolution: 2h\n    escalate_after: 2h\n", 1),
                    encoding="utf-8")
    assert "ok (" in ok("policy", "check", str(path))  # agreeing: fine
    path.write_text(SHIPPED.replace("    escalate_after: 2h\n",
                                    "    resolution: 3h\n    escalate_after: 2h\n", 1),
                    encoding="utf-8")
    assert refused("policy", "check", str(path)).split(": ", 3)[3] == (
        "tiers.L2.resolution: 3h disagrees with tiers.L2.escalate_after (2h), which the "
        "clocks use")


def test_shipped_policy_says_what_each_repeated_key_is_for() -> None:
    for said in ("severities.*.response is the reference's response time", "tiers.*.resolution is not kept",
                 "tiers.*.response is NOT kept",
                 "tools is shown by `sladeck policy show`", "A LOCAL CHOICE TO CONFIRM"):
        assert said in SHIPPED, said
    tiers = SHIPPED.split("\ntiers:")[1].split("\nresponse_matrix:")[0]
    assert "\n    response: " not in tiers and "\n    resolution: " not in tiers



# -- contacts -------------------------------------------------------------------------


def test_contacts_follow_business_hours(at) -> None:
    at(T0)  # Thursday 10:00 in New York
    out = ok("contacts", "--severity", "p1")
    assert "inside business hours" in out
    now = out[out.index("Management to call now for P1:"):out.index("Vendors:")]
    assert "Support Manager" in now and "Technical Director" in now and "CEO" in now
    assert "Not now" not in now
    assert "- Shopify: support@shopify.com" in out
    assert "- Security consultants: security@hotdash.com" in out
    assert "- Legal counsel: legal@hotdash.com" in out
    assert all(f"L{n} " in out for n in range(1, 5))
    at(datetime(2026, 11, 28, 15, 0, tzinfo=UTC))  # Saturday
    out = ok("contacts", "--severity", "P1", "--level", "L4")
    assert "outside business hours" in out
    now = out[out.index("Management to call now for P1:"):out.index("Vendors:")]
    assert "Support Manager" in now
    assert "Not now (business hours only): Technical Director" in now
    assert "L4 Executive Escalation: executive@hotdash.com" in out and "L1 " not in out
    assert all(len(line) <= 80 for line in out.splitlines())
    assert "unknown level 'L5'" in refused("contacts", "--level", "L5")


# -- tick, and the checklists in show ---------------------------------------------------


def test_tick_from_the_command_line_and_show_lists_every_level(db: str) -> None:
    assert ok("--db", db, "open", "--severity", "P1", "--title", "db down").strip() == "INC-1"
    assert ok("--db", db, "tick", "1", "triage", "assess_severity") == \
        "ticked assess_severity on INC-1\n"
    ok("--db", db, "tick", "INC-1", "internal", "team_chat")        # the current level, L1
    ok("--db", db, "tick", "1", "external.customer", "status_updates")
    ok("--db", db, "escalate", "1", "--to", "L2", "--trigger", "performance",
       *(arg for pair in L2_HANDOFF for arg in ("--field", pair)))
    ok("--db", db, "tick", "1", "internal", "technical_discussion")  # now at L2
    ok("--db", db, "tick", "1", "Internal.l1", "issue_tracking")     # a level it was at
    assert ok("--db", db, "tick", "1", "triage", "assess_severity", "--undo") == \
        "unticked assess_severity on INC-1\n"
    for out in (ok("--db", db, "show", "1"), ok("--db", db, "export", "1", "--format", "md")):
        lists = out[out.index("## Checklists"):out.index("## Resolution checklist")]
        assert "### Internal communication at L1 (2/4, internal.L1)" in lists
        assert "### Internal communication at L2 (current level) (1/4, internal.L2)" in lists
        assert "- [x] Team chat - immediate notification to support team (team\\_chat) (" \
            in lists
        assert "- [x] Technical discussion" in lists
        assert "- [ ] Triage: assess severity (P0-P3) (assess\\_severity)" in lists
        assert "- [x] Status updates - regular updates on issue status" in lists


def test_tick_refuses_what_is_not_a_checklist_item(db: str) -> None:
    ok("--db", db, "open", "--severity", "P2", "--title", "slow")
    assert refused("--db", db, "tick", "1", "bogus", "x") == (
        "sladeck: error: unknown checklist 'bogus' (choose triage, internal, internal.L1, "
        "internal.L2, internal.L3, internal.L4, external.customer, external.vendor, "
        "external.public)")
    assert refused("--db", db, "tick", "1", "tri\x1b[2Jage", "x").startswith(
        "sladeck: error: unknown checklist 'tri\\x1b[2Jage' (choose triage, ")
    assert "triage has no item 'nope' (choose assess_severity, " in refused(
        "--db", db, "tick", "1", "triage", "nope")
    assert "sladeck resolve INC-1 --check KEY" in refused(
        "--db", db, "tick", "1", "resolution", "verify_resolution")
    assert "INC-9 does not exist" in refused("--db", db, "tick", "9", "triage", "log_issue")
    assert "already ticked" not in ok("--db", db, "tick", "1", "triage", "log_issue")
    assert "log_issue is already ticked" in ok("--db", db, "tick", "1", "triage", "log_issue")


# -- list filters ---------------------------------------------------------------------


def test_list_refuses_a_severity_or_level_no_policy_knows(db: str) -> None:
    ok("--db", db, "open", "--severity", "P1", "--title", "db down")
    assert refused("--db", db, "list", "--severity", "P9") == \
        "sladeck: error: unknown severity 'P9' (choose P0, P1, P2, P3)"
    assert refused("--db", db, "list", "--level", "L9") == \
        "sladeck: error: unknown level 'L9' (choose L1, L2, L3, L4)"
    assert "INC-1" in ok("--db", db, "list", "--severity", "p1", "--level", "l1")


def test_list_keeps_keys_of_incidents_opened_under_another_policy(db: str,
                                                                  tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(SHIPPED.replace("P3", "SEV3"), encoding="utf-8")
    ok("--db", db, "--policy", str(other), "open", "--severity", "SEV3", "--title", "old")
    assert "INC-1" in ok("--db", db, "list", "--severity", "SEV3")
