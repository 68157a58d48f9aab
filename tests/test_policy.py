"""policy.yaml: the shipped procedure, and every way a broken policy is refused."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sladeck.errors import PolicyError
from sladeck.policy import Policy, load_policy, parse_duration, parse_policy

REPO = Path(__file__).resolve().parent.parent
SHIPPED = (REPO / "policy.yaml").read_text(encoding="utf-8")
T0 = datetime(2026, 11, 26, 15, 0, 0, tzinfo=UTC)  # Thursday 10:00 in New York

m, h = (lambda n: timedelta(minutes=n)), (lambda n: timedelta(hours=n))


# -- helpers ------------------------------------------------------------------------


def edit(old: str, new: str, text: str = SHIPPED) -> str:
    """Replace exactly one occurrence of `old` (so an edit can never silently miss)."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def line_of(text: str, fragment: str, nth: int = 0) -> int:
    """1-based line number of the `nth` line containing `fragment`."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if fragment in line]
    assert len(hits) > nth, f"{fragment!r} not found"
    return hits[nth]


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyError) as err:
        parse_policy(text, "policy.yaml")
    assert str(err.value) == "\n".join(err.value.problems)
    return err.value.problems


# -- the shipped policy ---------------------------------------------------------------


def test_top_level_policy_is_the_packaged_default(policy: Policy) -> None:
    packaged = REPO / "src" / "sladeck" / "policy.yaml"
    assert (REPO / "policy.yaml").read_bytes() == packaged.read_bytes()
    default = load_policy(None)
    assert default.digest == policy.digest
    assert default.source == SHIPPED
    assert default == policy


def test_severities(policy: Policy) -> None:
    assert list(policy.severities) == ["P0", "P1", "P2", "P3"]
    expected = {
        # response, resolution target, maximum, escalate to, within, review
        "P0": ("Critical", m(5), h(2), h(4), "L4", m(0), True),
        "P1": ("High", m(15), h(4), h(8), "L3", h(1), True),
        "P2": ("Medium", h(1), h(8), h(24), "L2", h(2), False),
        "P3": ("Low", h(4), h(24), h(48), "L1", h(4), False),
    }
    for key, (name, resp, target, maximum, to, within, review) in expected.items():
        s = policy.severities[key]
        assert (s.name, s.response, s.resolution_target, s.resolution_maximum,
                s.escalate_to, s.escalate_within, s.review_required) == \
            (name, resp, target, maximum, to, within, review), key
        assert s.definition and len(s.examples) == 4
    assert policy.severities["P0"].definition == "System down, business operations halted"
    assert "Security breach" in policy.severities["P0"].examples


def test_tiers(policy: Policy) -> None:
    assert policy.levels == ("L1", "L2", "L3", "L4")
    after = {k: t.escalate_after for k, t in policy.tiers.items()}
    assert after == {"L1": m(30), "L2": h(2), "L3": h(8), "L4": None}
    assert policy.tiers["L1"].name == "Basic Support"
    assert policy.tiers["L4"].name == "Executive Escalation"
    for tier in policy.tiers.values():
        assert tier.scope and len(tier.responsibilities) == 4 and len(tier.common_issues) == 4
    assert policy.tiers["L4"].escalation_criteria == ()
    assert "Security concerns" in policy.tiers["L2"].escalation_criteria
    assert policy.next_level("L1") == "L2" and policy.next_level("L4") is None


def test_response_matrix(policy: Policy) -> None:
    expected = {
        "P0": (m(5), m(15), m(30), h(1)),
        "P1": (m(15), m(30), h(1), h(2)),
        "P2": (h(1), h(2), h(4), h(8)),
        "P3": (h(4), h(8), h(24), h(48)),
    }
    for sev, row in expected.items():
        assert tuple(policy.response_time(sev, lvl) for lvl in policy.levels) == row, sev


def test_escalation_triggers_and_handoff_fields(policy: Policy) -> None:
    assert set(policy.escalation) == {"L2", "L3", "L4"}
    handoff = {lvl: [i.key for i in target.handoff] for lvl, target in policy.escalation.items()}
    assert handoff == {
        "L2": ["issue_summary", "actions_taken", "current_status", "logs_and_evidence",
               "business_impact"],
        "L3": ["technical_details", "system_architecture", "security_assessment",
               "business_impact", "recovery_procedures"],
        "L4": ["executive_summary", "business_impact", "financial_impact", "timeline",
               "recommendations"],
    }
    for target in policy.escalation.values():
        assert all(i.label and i.help for i in target.handoff)
        assert len(target.triggers) == 4 and all(t.label for t in target.triggers)
        assert target.process
    assert policy.escalation["L2"].triggers[0].key == "not_resolved_30m"
    # A trigger that names a time carries it; the others carry none.
    timed = {lvl: [(t.key, t.after) for t in target.triggers if t.after is not None]
             for lvl, target in policy.escalation.items()}
    assert timed == {"L2": [("not_resolved_30m", m(30))], "L3": [("not_resolved_2h", h(2))],
                     "L4": [("not_resolved_8h", h(8))]}
    assert "other" not in {t.key for t in policy.escalation["L4"].triggers}


def test_checklists_communication_review_follow_ups(policy: Policy) -> None:
    assert [i.key for i in policy.checklists["resolution"]] == [
        "verify_resolution", "test_system", "monitor_stability", "document_resolution"]
    assert len(policy.checklists["triage"]) == 12
    assert set(policy.internal_communication) == {"L1", "L2", "L3", "L4"}
    assert set(policy.external_communication) == {"customer", "vendor", "public"}
    assert [i.key for i in policy.review_fields] == [
        "incident_analysis", "root_cause_analysis", "lessons_learned", "process_improvement"]
    assert policy.review_required_for == ("P0", "P1")
    assert [policy.needs_review(s) for s in policy.severities] == [True, True, False, False]
    assert {i.key for i in policy.follow_up_kinds} == {
        "preventive_measures", "process_updates", "training", "monitoring"}


def test_contacts_and_business_hours(policy: Policy) -> None:
    l1 = policy.level_contacts["L1"]
    assert (l1.primary, l1.phone, l1.chat, l1.escalation) == (
        "support@hotdash.com", "+1-555-SUPPORT", "#support-team", "manager@hotdash.com")
    assert set(policy.level_contacts) == {"L1", "L2", "L3", "L4"}
    assert [p.name for p in policy.management] == ["Support Manager", "Technical Director", "CEO"]
    assert [v.name for v in policy.vendors][:3] == ["Shopify", "GitHub", "AWS"]
    hours = policy.business_hours
    assert (hours.timezone, hours.days, hours.start, hours.end) == (
        "America/New_York", (0, 1, 2, 3, 4), time(9), time(17, 30))
    assert policy.notifications.bell is True and policy.notifications.command == ()
    assert policy.warn_at == 0.25


def names(policy: Policy, sev: str, at: datetime) -> list[str]:
    return [p.name for p in policy.management_available(sev, at)]


@pytest.mark.parametrize(("at", "in_hours"), [
    (T0, True),                                             # Thu 10:00 EST
    (datetime(2026, 11, 26, 14, 0, tzinfo=UTC), True),      # Thu 09:00 EST, opening minute
    (datetime(2026, 11, 26, 13, 59, 59, tzinfo=UTC), False),  # Thu 08:59:59 EST
    (datetime(2026, 11, 26, 22, 29, 59, tzinfo=UTC), True),  # Thu 17:29:59 EST
    (datetime(2026, 11, 26, 22, 30, tzinfo=UTC), False),     # Thu 17:30 EST, closed
    (datetime(2026, 11, 28, 15, 0, tzinfo=UTC), False),      # Saturday 10:00 EST
    (datetime(2026, 7, 1, 13, 0, tzinfo=UTC), True),         # summer: 09:00 EDT
    (datetime(2026, 1, 7, 13, 0, tzinfo=UTC), False),        # winter: 08:00 EST
])
def test_management_availability(policy: Policy, at: datetime, in_hours: bool) -> None:
    # The Technical Director: 24/7 for P0, business hours only for P1 and P2.
    assert "Technical Director" in names(policy, "P0", at)
    assert ("Technical Director" in names(policy, "P1", at)) is in_hours
    assert ("Technical Director" in names(policy, "P2", at)) is in_hours
    assert "Technical Director" not in names(policy, "P3", at)
    assert names(policy, "P0", at) == ["Support Manager", "Technical Director", "CEO"]
    assert names(policy, "P1", at) == (["Support Manager", "Technical Director", "CEO"]
                                       if in_hours else ["Support Manager"])
    assert names(policy, "P3", at) == []


def test_parse_duration() -> None:
    assert parse_duration("0m") == timedelta(0)
    assert parse_duration("2h30m") == h(2) + m(30)
    assert parse_duration("1d") == timedelta(days=1)
    assert parse_duration("3650d") == timedelta(days=3650)
    assert parse_duration("3650d1s") is None
    for bad in ("", "2 hours", "2", "h", "30 m", "-5m", "1.5h"):
        assert parse_duration(bad) is None, bad


# -- broken policies: one line per problem, right line, right key path -----------------


def test_invalid_yaml() -> None:
    text = edit("    name: High\n", "    name: [High\n")
    (only,) = problems(text)
    assert re.fullmatch(r"policy\.yaml:\d+: invalid YAML: .+", only)
    # The parser notices at the next key, a line or so later; never at line 1.
    assert line_of(text, "name: [High") <= int(only.split(":")[1]) <= line_of(text, "name: [High") + 1


def test_invalid_yaml_tab_indentation_names_its_line() -> None:
    text = edit("    escalate_after: 2h\n", "\tescalate_after: 2h\n")
    (only,) = problems(text)
    assert only.startswith(f"policy.yaml:{line_of(text, chr(9) + 'escalate_after')}: invalid YAML:")


def test_control_character_names_its_line() -> None:
    text = edit("owner: Support Team", "owner: Support\x00Team")
    (only,) = problems(text)
    assert only.startswith(f"policy.yaml:{line_of(text, 'owner:')}: invalid YAML: ")


def test_empty_policy() -> None:
    assert problems("") == ["policy.yaml:1: the policy is empty"]
    assert problems("# nothing here\n") == ["policy.yaml:1: the policy is empty"]


def test_missing_key() -> None:
    text = edit("    scope: Standard troubleshooting, documentation, basic configuration\n", "")
    assert problems(text) == [f"policy.yaml:{line_of(text, 'name: Basic Support')}: "
                              "tiers.L1.scope: missing"]


def test_missing_top_level_section() -> None:
    start = SHIPPED.index("notifications:\n")
    text = SHIPPED[:start]
    assert problems(text) == ["policy.yaml:7: notifications: missing"]


def test_unknown_key() -> None:
    text = edit("    name: Advanced Support\n", "    name: Advanced Support\n    colour: blue\n")
    assert problems(text) == [f"policy.yaml:{line_of(text, 'colour: blue')}: "
                              "tiers.L2.colour: unknown key"]


def test_misspelt_top_level_key_is_unknown_and_missing() -> None:
    text = edit("close_on_resolve: true", "close_on_resolv: true")
    assert problems(text) == [f"policy.yaml:{line_of(text, 'close_on_resolv:')}: "
                              "close_on_resolv: unknown key"]


def test_bad_duration_reads_like_the_spec() -> None:
    text = edit("    escalate_after: 2h\n", '    escalate_after: "2 hours"\n')
    line = line_of(text, 'escalate_after: "2 hours"')
    assert problems(text) == [
        f'policy.yaml:{line}: tiers.L2.escalate_after: "2 hours" is not a duration (write 2h)']


@pytest.mark.parametrize(("written", "hint"), [
    ("90 minutes", "write 90m"),
    ("1 hour 30 min", "write 1h30m"),
    ("soon", "write e.g. 30m, 2h or 2h30m"),
])
def test_bad_duration_hints(written: str, hint: str) -> None:
    text = edit("P1: {L1: 15m,", f"P1: {{L1: {written},")
    line = line_of(text, f"P1: {{L1: {written},")
    assert problems(text) == [
        f'policy.yaml:{line}: response_matrix.P1.L1: "{written}" is not a duration ({hint})']


def test_a_triggers_time_is_a_duration_with_its_line() -> None:
    label = "label: Issue not resolved within 2 hours, after: 2h}"
    text = edit(label, label.replace("after: 2h", 'after: "2 hours"'))
    text = edit("within 8 hours, after: 8h}", "within 8 hours, after: 0m}", text)
    bad = line_of(text, 'after: "2 hours"')
    assert problems(text) == [
        f"policy.yaml:{bad}: escalation.L3.triggers[0].after: "
        '"2 hours" is not a duration (write 2h)',
        f"policy.yaml:{line_of(text, 'after: 0m')}: escalation.L4.triggers[0].after: must be "
        "longer than 0m (leave it out for a trigger that names no time)"]


def test_after_belongs_to_triggers_only() -> None:
    text = edit("help: Steps already attempted}", "help: Steps already attempted, after: 1h}")
    assert problems(text) == [f"policy.yaml:{line_of(text, 'after: 1h}')}: "
                              "escalation.L2.handoff[1].after: unknown key"]


def test_undefined_level() -> None:
    text = edit("escalation: {to: L3, within: 1h}", "escalation: {to: L9, within: 1h}")
    assert problems(text) == [f"policy.yaml:{line_of(text, 'to: L9')}: "
                              'severities.P1.escalation.to: level "L9" is not defined in tiers']


def test_undefined_level_in_contacts() -> None:
    text = edit("    L4: {primary: executive@", "    L5: {primary: executive@")
    line = line_of(text, "L5: {primary")
    assert problems(text) == [
        f'policy.yaml:{line}: contacts.levels.L5: level "L5" is not defined in tiers',
        f"policy.yaml:{line_of(text, 'L1: {primary')}: contacts.levels.L4: missing",  # the mapping
    ]


def test_undefined_severity_in_review() -> None:
    text = edit("required_for: [P0, P1]", "required_for: [P0, P7]")
    found = problems(text)
    line = line_of(text, "required_for: [P0, P7]")
    assert found[0] == (f'policy.yaml:{line}: review.required_for: '
                        'severity "P7" is not defined in severities')
    assert all(p.startswith(f"policy.yaml:{line}: review.required_for: ") for p in found)


def test_undefined_severity_in_response_matrix() -> None:
    row = "  P3: {L1: 4h, L2: 8h, L3: 24h, L4: 48h}\n"
    text = edit(row, row + row.replace("P3", "P9"))
    assert problems(text) == [f"policy.yaml:{line_of(text, 'P9: {L1')}: "
                              'response_matrix.P9: severity "P9" is not defined in severities']


def test_hole_in_the_response_matrix() -> None:
    text = edit("P1: {L1: 15m, L2: 30m, L3: 1h, L4: 2h}", "P1: {L1: 15m, L2: 30m, L4: 2h}")
    assert problems(text) == [f"policy.yaml:{line_of(text, 'P1: {L1: 15m')}: "
                              "response_matrix.P1.L3: missing (a hole in the matrix)"]


def test_missing_matrix_row() -> None:
    text = edit("  P2: {L1: 1h, L2: 2h, L3: 4h, L4: 8h}\n", "")
    assert problems(text) == [f"policy.yaml:{line_of(text, 'P0: {L1: 5m')}: "
                              "response_matrix.P2: missing (a hole in the matrix)"]


def test_handoff_key_used_twice_in_one_level() -> None:
    text = edit("- {key: recommendations, label: Recommendations,",
                "- {key: timeline, label: Recommendations,")
    assert problems(text) == [
        f"policy.yaml:{line_of(text, 'label: Recommendations')}: escalation.L4.handoff[4].key: "
        '"timeline" is used twice in escalation.L4.handoff']


def test_same_handoff_key_in_different_levels_is_fine(policy: Policy) -> None:
    # business_impact is asked by L2, L3 and L4 alike: keys are unique per level only.
    assert all("business_impact" in [i.key for i in policy.escalation[lvl].handoff]
               for lvl in ("L2", "L3", "L4"))


def test_duplicate_yaml_key() -> None:
    text = edit("    escalate_after: 8h\n", "    escalate_after: 8h\n    escalate_after: 9h\n")
    assert problems(text) == [f"policy.yaml:{line_of(text, 'escalate_after: 9h')}: "
                              "tiers.L3.escalate_after: duplicate key"]


def test_duplicate_top_level_key() -> None:
    text = SHIPPED + "warn_at: 50%\n"
    assert problems(text) == [f"policy.yaml:{line_of(text, 'warn_at:', 1)}: warn_at: duplicate key"]


# -- YAML 1.1 surprises are not believed -----------------------------------------------


def test_unquoted_clock_time_stays_a_time() -> None:
    text = edit('  start: "09:00"\n  end: "17:30"', "  start: 09:00\n  end: 17:30")
    hours = parse_policy(text, "policy.yaml").business_hours
    assert (hours.start, hours.end) == (time(9), time(17, 30))  # never 540 / 1050


def test_start_1730_unquoted_is_text() -> None:
    text = edit('  start: "09:00"\n  end: "17:30"', "  start: 17:30\n  end: 18:00")
    hours = parse_policy(text, "policy.yaml").business_hours
    assert (hours.start, hours.end) == (time(17, 30), time(18))


def test_off_is_false_only_for_a_boolean_key() -> None:
    text = edit("  bell: true", "  bell: off")
    assert parse_policy(text, "policy.yaml").notifications.bell is False
    text = edit("  bell: true", "  bell: no")
    assert parse_policy(text, "policy.yaml").notifications.bell is False
    text = edit("name: Growth Engine escalation procedures", "name: off")
    assert parse_policy(text, "policy.yaml").name == "off"
    text = edit("    name: Low\n", "    name: no\n")
    assert parse_policy(text, "policy.yaml").severities["P3"].name == "no"


def test_numbers_and_versions_stay_text() -> None:
    text = edit('version: "1.0.0"', "version: 1.10")
    assert parse_policy(text, "policy.yaml").version == "1.10"  # never 1.1


def test_review_required_maybe_is_refused() -> None:
    text = edit("    review_required: false\n  P3:", "    review_required: maybe\n  P3:")
    line = line_of(text, "review_required: maybe")
    assert problems(text) == [
        f'policy.yaml:{line}: severities.P2.review_required: "maybe" is not true or false']


def test_review_required_disagreeing_with_required_for() -> None:
    text = edit("    review_required: false\n  P3:", "    review_required: yes\n  P3:")
    assert problems(text) == [f"policy.yaml:{line_of(text, 'required_for:')}: "
                              "review.required_for: disagrees with severities.P2.review_required"]


def test_explicit_tag_is_refused_and_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = edit("owner: Support Team", f'owner: !!python/object/apply:os.system ["touch {marker}"]')
    found = problems(text)
    assert len(found) == 1
    assert found[0].startswith(f"policy.yaml:{line_of(text, 'owner: !!python')}: owner: "
                               "YAML tags are not allowed")
    assert not marker.exists()


def test_local_tag_is_refused() -> None:
    text = edit("    escalate_after: 2h\n", "    escalate_after: !!int 7200\n")
    assert problems(text) == [
        f"policy.yaml:{line_of(text, '!!int')}: tiers.L2.escalate_after: "
        "YAML tags are not allowed (tag:yaml.org,2002:int)"]


def test_several_problems_reported_at_once() -> None:
    text = edit("    escalate_after: 2h\n", '    escalate_after: "2 hours"\n')
    text = edit("escalation: {to: L3, within: 1h}", "escalation: {to: L9, within: 1h}", text)
    text = edit("    name: Advanced Support\n", "    name: Advanced Support\n    colour: blue\n", text)
    text = edit("P1: {L1: 15m, L2: 30m, L3: 1h, L4: 2h}", "P1: {L1: 15m, L2: 30m, L4: 2h}", text)
    found = problems(text)
    assert sorted(found) == sorted([
        f"policy.yaml:{line_of(text, 'to: L9')}: "
        'severities.P1.escalation.to: level "L9" is not defined in tiers',
        f"policy.yaml:{line_of(text, 'colour: blue')}: tiers.L2.colour: unknown key",
        f'policy.yaml:{line_of(text, "2 hours")}: tiers.L2.escalate_after: '
        '"2 hours" is not a duration (write 2h)',
        f"policy.yaml:{line_of(text, 'P1: {L1: 15m')}: "
        "response_matrix.P1.L3: missing (a hole in the matrix)",
    ])


@pytest.mark.parametrize(("old", "new", "message"), [
    ("timezone: America/New_York", "timezone: Mars/Olympus", '"Mars/Olympus" is not a time zone'),
    ("timezone: America/New_York", "timezone: America", '"America" is not a time zone'),
    ("warn_at: 25%", "warn_at: 125%", '"125%" is not a share (write e.g. 25%)'),
    ("  command: []", "  command: page-oncall --json",
     "must be a list of arguments, never a shell string"),
    ("days: [mon, tue, wed, thu, fri]", "days: [mon, tue, wed, thu, fry]",
     '"fry" is not a day (mon..sun)'),
    ('end: "17:30"', 'end: "25:00"', '"25:00" is not a time (write 17:30)'),
    ("    resolution: {target: 2h, maximum: 4h}", "    resolution: {target: 2h, maximum: 1h}",
     "is shorter than the resolution target"),
    ("response: 5m\n    resolution: {target: 2h", "response: 99999999999d\n    resolution: {target: 2h",
     '"99999999999d" is too long (at most 3650d)'),
    ("    resolution: {target: 2h, maximum: 4h}", "    resolution: {target: 2h, maximum: 3651d}",
     '"3651d" is too long (at most 3650d)'),
])
def test_other_refusals_name_their_line(old: str, new: str, message: str) -> None:
    text = edit(old, new)
    (only,) = problems(text)
    line = line_of(text, new.strip().splitlines()[0])
    assert only.startswith(f"policy.yaml:{line}: ")
    assert message in only


def test_keys_that_are_not_plain_text() -> None:
    text = edit("  P3:\n    name: Low", "  [P3]:\n    name: Low")
    assert problems(text)[0] == f"policy.yaml:{line_of(text, '[P3]:')}: severities: keys must be plain text"
    text = edit("    review_required: true\n  P1:", "    review_required: true\n    [x]: 1\n  P1:")
    assert problems(text) == [
        f"policy.yaml:{line_of(text, '[x]: 1')}: severities.P0: keys must be plain text"]


def test_a_value_spanning_lines_is_reported_on_one_line() -> None:
    text = edit("    escalate_after: 30m\n", "    escalate_after: 30m\n\n      and then some\n")
    (only,) = problems(text)
    assert only == (f"policy.yaml:{line_of(text, 'escalate_after: 30m')}: tiers.L1.escalate_after: "
                    '"30m and then some" is not a duration (write e.g. 30m, 2h or 2h30m, or none)')


def test_load_policy_reports_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(edit("owner: Support Team", "owner: Support Team\nmascot: owl"))
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert err.value.problems == [f"{path}:{line_of(path.read_text(), 'mascot')}: mascot: unknown key"]
    with pytest.raises(PolicyError) as err:
        load_policy(tmp_path / "absent.yaml")
    assert err.value.problems == [f"{tmp_path / 'absent.yaml'}: no such file"]


# -- whatever the text, the answer is a Policy or FILE:LINE problems ------------------

LINES = SHIPPED.splitlines()
PROBLEM_LINE = re.compile(r"^policy\.yaml:\d+: ")
VALUE_TEXT = st.text(alphabet=st.sampled_from(
    list("abcLP0123456789 :-[]{}!&*#%@`'\",|>?~\t\x00\x07.")), max_size=12)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    lines = list(LINES)
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        kind = draw(st.sampled_from(["delete", "duplicate", "value", "key", "swap"]))
        i = draw(st.integers(0, len(lines) - 1))
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        else:
            line = lines[i]
            cut = line.find(": ")
            head = line[:cut + 2] if cut >= 0 else line[:len(line) - len(line.lstrip())]
            if kind == "key" and cut >= 0:
                indent = line[:len(line) - len(line.lstrip())]
                lines[i] = indent + draw(VALUE_TEXT) + line[cut:]
            else:
                lines[i] = head + draw(VALUE_TEXT)
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_policy_is_parsed_or_refused_line_by_line(text: str) -> None:
    try:
        result = parse_policy(text, "policy.yaml")
    except PolicyError as err:
        assert err.problems
        for problem in err.problems:
            assert PROBLEM_LINE.match(problem), problem
            assert "\n" not in problem
            assert int(problem.split(":")[1]) <= text.count("\n") + 1, problem
    else:
        assert isinstance(result, Policy)


# -- the parsed-policy cache ----------------------------------------------------------


def _load_in_a_new_process(path: Path) -> tuple[bool, str]:
    """(whether YAML was imported, the policy's name) for `load_policy(path)` in a fresh
    Python, as every sladeck command starts."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", "import sys; from sladeck.policy import load_policy; "
         f"p = load_policy({str(path)!r}); print('yaml' in sys.modules, p.name)"],
        capture_output=True, text=True, check=True).stdout.split(maxsplit=1)
    return out[0] == "True", out[1].strip()


def test_the_dashboard_start_loads_neither_yaml_nor_openssl(tmp_path: Path) -> None:
    """With the policy cached, the dashboard's start (policy, reader, queue) imports no
    PyYAML and no OpenSSL: only writers hash events (OpenSSL is 0.6 MiB of memory)."""
    import subprocess
    import sys

    from sladeck.store import Store

    path = tmp_path / "policy.yaml"
    path.write_text(SHIPPED, encoding="utf-8")
    Store(tmp_path / "db").close()
    load_policy(path)
    out = subprocess.run([sys.executable, "-c", f"""
import sys
from sladeck.policy import load_policy
from sladeck.store import Store
import sladeck.tui.app
store = Store({str(tmp_path / "db")!r})
store.adopt(load_policy({str(path)!r}))
store.queue_items(("open",))
print(sorted({{'yaml', '_hashlib'}} & set(sys.modules)))"""],
        capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_a_cache_kept_by_another_version_is_not_believed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even under the same file name (a CRC can collide): the stamp inside must match."""
    from dataclasses import replace

    import sladeck
    from sladeck.policy_cache import cache_file as _cache_file
    from sladeck.policy_cache import keep as _keep

    path = tmp_path / "policy.yaml"
    path.write_text(edit("\nname: ", "\nname: Versioned ", SHIPPED), encoding="utf-8")
    expected = load_policy(path)
    found = _cache_file(expected.source)
    assert found is not None and found[0].exists()
    with monkeypatch.context() as m:
        m.setattr(sladeck, "__version__", "0.0.1")
        old = _cache_file(expected.source)
        assert old is not None and old[0] != found[0]
        _keep(replace(expected, name="Old"))
    old[0].replace(found[0])
    assert load_policy(path) == expected  # another sladeck's parse: parsed again


def _cache_files() -> list[Path]:
    import platformdirs

    return sorted(Path(platformdirs.user_cache_dir("sladeck")).glob("policy-*.pickle"))


def test_a_policy_read_once_starts_the_next_command_without_yaml(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(edit("\nname: ", "\nname: Cached ", SHIPPED), encoding="utf-8")
    assert _load_in_a_new_process(path)[0] is True  # parsed, and kept
    assert _load_in_a_new_process(path) == (False, load_policy(path).name)
    assert load_policy(path) == parse_policy(path.read_text(encoding="utf-8"))
    path.write_text(edit("\nname: ", "\nname: Changed ", SHIPPED), encoding="utf-8")
    parsed, name = _load_in_a_new_process(path)  # a new text is parsed, never mistaken
    assert parsed and name.startswith("Changed")


def test_a_tampered_or_shared_cache_is_never_believed(tmp_path: Path) -> None:
    import os
    import pickle

    path = tmp_path / "policy.yaml"
    path.write_text(edit("\nname: ", "\nname: Tamper ", SHIPPED), encoding="utf-8")
    expected = load_policy(path)
    [cached] = [f for f in _cache_files() if f.read_bytes().find(b"Tamper") >= 0]
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return os.system, (f"touch {marker}",)

    cached.write_bytes(pickle.dumps(Evil()))
    assert load_policy(path) == expected and not marker.exists()  # refused, parsed again
    from dataclasses import replace

    from sladeck.policy_cache import keep as _keep

    _keep(replace(expected, name="Forged"))  # a well-formed cache with another name
    assert load_policy(path).name == "Forged"  # private and ours: believed
    cached.chmod(0o666)
    assert load_policy(path) == expected  # a cache others could write is not read


def test_without_an_absolute_cache_folder_nothing_is_written_where_you_stand(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No home to expand, or a relative XDG_CACHE_HOME: the policy is parsed, and no
    cache folder appears in the directory the command was started from."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative-cache")
    assert load_policy(REPO / "policy.yaml").name
    assert list(tmp_path.iterdir()) == []


# -- keys are names a command line can type and a terminal shows as they are ---------


def _key_problems(text: str) -> list[str]:
    found = problems(text)
    assert all("\x1b" not in p and "\x07" not in p for p in found), found
    return found


@pytest.mark.parametrize(("old", "new", "where"), [
    ("  P3:\n    name: Low", '  "P3\\e]0;PWNED\\a\\e[2J":\n    name: Low', "severities"),
    ("  L2:\n    name: Advanced Support", '  "L2 \\e[2J":\n    name: Advanced Support', "tiers"),
    ("  L2:\n    name: Advanced Support", "  " + "L" * 49 + ":\n    name: Advanced Support", "tiers"),
    ("  L2:\n    name: Advanced Support", "  -L2:\n    name: Advanced Support", "tiers"),
    ("  issue_tracking: {", '  "issue tracking": {', "tools"),
    ("{primary: Slack,", '{"pri\\u202emary": Slack,', "tools.communication"),
])
def test_a_key_that_is_not_a_name_is_refused_on_its_line(old: str, new: str, where: str) -> None:
    text = edit(old, new)
    found = _key_problems(text)
    line = line_of(text, new.strip().splitlines()[0][:8])
    assert any(p.startswith(f"policy.yaml:{line}: {where}: key ") and "is not allowed (letters, "
               "digits, _ and -, at most 48, starting with a letter or digit)" in p
               for p in found), found
    if "PWNED" in new:
        assert f'policy.yaml:{line}: severities: key "P3\\x1b]0;PWNED\\x07\\x1b[2J" is not ' \
            "allowed" in found[0]


def test_an_item_key_is_short_snake_case() -> None:
    text = edit("{key: performance, label:", "{key: " + "p" * 49 + ", label:")
    (only,) = _key_problems(text)
    assert only == (f"policy.yaml:{line_of(text, 'p' * 49)}: escalation.L2.triggers[3].key: "
                    f'"{"p" * 49}" is not a snake_case key (a-z, 0-9 and _, at most 48)')


def test_keys_that_differ_only_in_case_are_refused() -> None:
    text = edit("  P3:\n    name: Low", "  p2:\n    name: Low")
    assert f"policy.yaml:{line_of(text, '  p2:')}: severities.p2: differs from \"P2\" only in " \
        "case (commands read keys in any case)" in problems(text)
    text = edit("  L4:\n    name: ", "  l3:\n    name: ")
    assert f"policy.yaml:{line_of(text, '  l3:')}: tiers.l3: differs from \"L3\" only in " \
        "case (commands read keys in any case)" in problems(text)


def _lowercase_levels(text: str = SHIPPED) -> str:
    """The shipped policy with its levels called tier1..tier4."""
    return re.sub(r"\bL([1-4])\b", r"tier\1", text)


def test_the_policy_finds_a_key_in_any_case(policy: Policy) -> None:
    from sladeck.errors import Refused

    assert policy.severity_key("p1") == "P1" and policy.level_key(" l3 ") == "L3"
    lower = parse_policy(_lowercase_levels())
    assert lower.level_key("TIER2") == "tier2" and lower.level_key("tier2") == "tier2"
    with pytest.raises(Refused, match=r"^unknown level 'L2' \(choose tier1, tier2, tier3, "
                       r"tier4\)$"):
        lower.level_key("L2")


def test_every_level_a_policy_accepts_can_be_reached_from_the_command_line(
        tmp_path: Path) -> None:
    """`tier2` used to be accepted, then `--to tier2` was read as TIER2: unknown level."""
    from conftest import call_cli

    path = tmp_path / "lower.yaml"
    path.write_text(_lowercase_levels(), encoding="utf-8")
    base = ("--db", str(tmp_path / "desk.db"), "--policy", str(path))
    assert call_cli(*base, "open", "--severity", "p2", "--title", "Disk")[:2] == (0, "INC-1\n")
    fields = [f"--field={k}=x" for k in ("issue_summary", "actions_taken", "current_status",
                                         "logs_and_evidence", "business_impact")]
    code, out, err = call_cli(*base, "escalate", "1", "--to", "tier2",
                              "--trigger", "performance", *fields)
    assert (code, err) == (0, ""), err
    assert "tier2" in out
    code, out, err = call_cli(*base, "severity", "1", "p3", "--reason", "Less")
    assert (code, err) == (0, ""), err
    code, out, _ = call_cli(*base, "list", "--level", "TIER2", "--severity", "p3")
    assert "INC-1" in out and "tier2" in out
    # under the default policy, a level it does not name is filtered as typed
    assert "INC-1" in call_cli(*base[:2], "list", "--level", "tier2")[1]
    code, _, err = call_cli(*base, "escalate", "1", "--to", "L3", "--trigger", "performance")
    assert code == 1 and err == ("sladeck: error: unknown level 'L3' (choose tier1, tier2, "
                                 "tier3, tier4)\n")
    code, _, err = call_cli(*base, "open", "--severity", "P9", "--title", "x")
    assert code == 1 and "unknown severity 'P9' (choose P0, P1, P2, P3)" in err


# -- one person's policy never slows everyone ------------------------------------------

# A billion nodes once expanded: only refused quickly can this test ever finish.
LAUGHS = "\n".join(["laughs:", '  a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]'] + [
    f"  a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)])


def _bomb(values: str = "{k: v}", copies: int = 200) -> str:
    """The shipped policy whose tools are one anchored mapping and `copies` aliases."""
    tools = f"tools:\n  t0: &m {values}" + "".join(f"\n  t{n}: *m" for n in range(1, copies))
    start, end = SHIPPED.index("tools:"), SHIPPED.index("notifications:")
    return SHIPPED[:start] + tools + "\n\n" + SHIPPED[end:]


def test_aliases_are_refused_before_they_expand() -> None:
    text = edit("owner: Support Team\n", f"owner: Support Team\n{LAUGHS}\n")
    assert problems(text) == [f"policy.yaml:{line_of(text, 'a1: &a1')}: YAML anchors and "
                              "aliases are not allowed (*a0); write each value out"]
    text = _bomb()
    assert problems(text) == [f"policy.yaml:{line_of(text, 't1: *m')}: YAML anchors and "
                              "aliases are not allowed (*m); write each value out"]
    text = edit("  issue_tracking: {", "  issue_tracking: &loop {self: *loop, ")
    assert len(problems(text)) == 1  # a cycle too


def test_a_stored_policy_keeps_its_few_aliases_but_not_a_bomb() -> None:
    """A policy stored before aliases were refused still opens its incidents."""
    few = parse_policy(_bomb(), "stored policy 1", stored=True)
    assert few.tools["t199"] == {"k": "v"}
    text = edit("owner: Support Team\n", f"owner: Support Team\n{LAUGHS}\n")
    with pytest.raises(PolicyError) as err:
        parse_policy(text, "stored policy 2", stored=True)
    assert err.value.problems == [f"stored policy 2:{line_of(text, 'a1: &a1')}: its YAML "
                                  "aliases (*a0) expand to more than 50000 values"]
    wide = _bomb("{" + ", ".join(f"k{i}: v" for i in range(300)) + "}")
    for text in (wide, edit("  issue_tracking: {", "  issue_tracking: &loop {self: *loop, ")):
        with pytest.raises(PolicyError):
            parse_policy(text, "stored policy 3", stored=True)


def test_problems_told_are_capped() -> None:
    text = edit("owner: Support Team\n", "owner: Support Team\n" + "".join(
        f"extra{i}: x\n" for i in range(45)))
    found = problems(text)
    assert len(found) == 21
    assert found[:20] == [f"policy.yaml:{line_of(text, f'extra{i}:')}: extra{i}: unknown key"
                          for i in range(20)]
    assert found[20] == f"policy.yaml:{line_of(text, 'extra20:')}: and 25 more problems " \
        "(fix these first)"


def test_a_huge_endless_or_binary_file_is_refused_in_one_line(tmp_path: Path) -> None:
    from sladeck.policy import MAX_POLICY_BYTES

    def refused(path: Path | str) -> list[str]:
        with pytest.raises(PolicyError) as err:
            load_policy(path)
        return err.value.problems

    assert refused("/dev/zero") == ["/dev/zero: cannot read: a device, not a policy file"]
    huge = tmp_path / "huge.yaml"
    huge.write_text(SHIPPED + "#" * MAX_POLICY_BYTES, encoding="utf-8")
    assert refused(huge) == [f"{huge}: too large (a policy is at most 256 KiB)"]
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(SHIPPED.encode() + b"\xff\xfe\x00")
    assert refused(binary) == [f"{binary}:{SHIPPED.count(chr(10)) + 1}: not UTF-8 text "
                               "(byte 0xff); a policy is a YAML text file"]
    with pytest.raises(PolicyError, match="too large"):
        parse_policy(SHIPPED + "#" * MAX_POLICY_BYTES, "stored policy 1", stored=True)
    from conftest import call_cli

    for argv in (("policy", "check", "/dev/zero"), ("--policy", "/dev/urandom", "list")):
        code, out, err = call_cli("--db", str(tmp_path / "desk.db"), *argv)
        assert (code, out) == (1, "") and err.count("\n") == 1 and "a device" in err


def test_an_endless_pipe_is_read_no_further_than_the_cap(tmp_path: Path) -> None:
    import os
    import threading

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    written = [0]

    def endless() -> None:
        with open(fifo, "wb") as f:
            try:
                while written[0] < 64 << 20:
                    written[0] += f.write(b"x" * 65536)
            except BrokenPipeError:
                pass

    writer = threading.Thread(target=endless)
    writer.start()
    with pytest.raises(PolicyError, match="too large"):
        load_policy(fifo)
    writer.join(10)
    assert not writer.is_alive() and written[0] < 4 << 20


def test_a_stored_policy_is_parsed_once_per_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """However many stores (a dashboard, its refreshes, a report) hold its incidents."""
    import sladeck.policy_cache as policy_module
    import sladeck.policy_file
    from sladeck.store import Store

    text = edit("\nname: ", "\nname: Stored once ", SHIPPED)
    writer = Store(tmp_path / "desk.db")
    with writer.write() as tx:
        tx.policy_id(parse_policy(text), T0)
    writer.close()
    calls: list[str] = []
    real = sladeck.policy_file.parse_policy

    def counting(source: str, filename: str = "policy.yaml", **kw: bool) -> Policy:
        calls.append(filename)
        return real(source, filename, **kw)

    monkeypatch.setattr(sladeck.policy_file, "parse_policy", counting)
    monkeypatch.setattr(policy_module, "cached", lambda source: None)  # no cache on disk
    stores = [Store(tmp_path / "desk.db") for _ in range(3)]
    first = stores[0].policy(1)
    assert first.name.startswith("Stored once")
    assert all(store.policy(1) is first for store in stores)
    for store in stores:
        store.close()
    assert calls == ["stored policy 1"]


# -- the parsed-policy cache believes only what today's code would parse ---------------


def test_a_cache_is_not_believed_after_the_validator_changes(tmp_path: Path) -> None:
    import os

    import sladeck.policy_file

    path = tmp_path / "policy.yaml"
    path.write_text(edit("\nname: ", "\nname: Validated ", SHIPPED), encoding="utf-8")
    assert _load_in_a_new_process(path)[0] is True
    assert _load_in_a_new_process(path)[0] is False  # kept
    validator = Path(sladeck.policy_file.__file__)
    before = validator.stat()
    try:
        os.utime(validator, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
        assert _load_in_a_new_process(path)[0] is True  # a changed validator parses again
    finally:
        os.utime(validator, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_the_cache_builds_nothing_but_policy_classes_named_one_by_one(tmp_path: Path) -> None:
    """`os.system` reached as a dotted name under sladeck.policy (which imports os)."""
    path = tmp_path / "policy.yaml"
    path.write_text(edit("\nname: ", "\nname: Dotted ", SHIPPED), encoding="utf-8")
    expected = load_policy(path)
    [cached] = [f for f in _cache_files() if f.read_bytes().find(b"Dotted") >= 0]
    marker = tmp_path / "ran"

    def text(s: str) -> bytes:  # SHORT_BINUNICODE
        return b"\x8c" + bytes([len(s.encode())]) + s.encode()

    # protocol 4: module, name, STACK_GLOBAL, (command,), REDUCE, STOP
    cached.write_bytes(b"\x80\x04" + text("sladeck.policy") + text("os.system") + b"\x93"
                       + text(f"touch {marker}") + b"\x85R.")
    assert load_policy(path) == expected
    assert not marker.exists()


@pytest.mark.parametrize("module", ["policy", "policy_file", "policy_cache"])
def test_the_cache_stamp_covers_every_module_that_parses_validates_or_keeps(
        module: str) -> None:
    """Touching any of them files the same text under a new stamp (and a new name)."""
    import importlib
    import os

    from sladeck.policy_cache import cache_file

    file = Path(importlib.import_module(f"sladeck.{module}").__file__ or "")
    before_stat = file.stat()
    before = cache_file(SHIPPED)
    try:
        os.utime(file, ns=(before_stat.st_atime_ns, before_stat.st_mtime_ns + 10**9))
        after = cache_file(SHIPPED)
    finally:
        os.utime(file, ns=(before_stat.st_atime_ns, before_stat.st_mtime_ns))
    assert before is not None and after is not None
    assert after[1] != before[1] and after[0] != before[0]
    assert cache_file(SHIPPED) == before


def test_the_cache_admits_policy_classes_by_exact_name_only(tmp_path: Path) -> None:
    """A dotted name under the cache module itself is refused as well, and every name
    admitted is one a kept policy needs."""
    import pickle

    from sladeck.policy_cache import SAFE_GLOBALS

    assert all("." not in name for _, name in SAFE_GLOBALS)
    path = tmp_path / "policy.yaml"
    path.write_text(edit("\nname: ", "\nname: Admitted ", SHIPPED), encoding="utf-8")
    expected = load_policy(path)
    [cached] = [f for f in _cache_files() if f.read_bytes().find(b"Admitted") >= 0]
    needed: set[tuple[str, str]] = set()

    class Recording(pickle.Unpickler):
        def find_class(self, module: str, name: str):  # type: ignore[no-untyped-def]
            needed.add((module, name))
            return super().find_class(module, name)

    with cached.open("rb") as f:
        assert Recording(f).load()[1] == expected
    assert needed == SAFE_GLOBALS
    marker = tmp_path / "ran"

    def text(s: str) -> bytes:  # SHORT_BINUNICODE
        return b"\x8c" + bytes([len(s.encode())]) + s.encode()

    cached.write_bytes(b"\x80\x04" + text("sladeck.policy_cache") + text("os.system") + b"\x93"
                       + text(f"touch {marker}") + b"\x85R.")
    assert load_policy(path) == expected
    assert not marker.exists()
