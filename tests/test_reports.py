"""`sladeck report` and `sladeck digest` against tables computed by hand on the fixed-clock
scenario of tests/report_scenario.py (each story's steps are written there, relative to
its opening time)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import report_scenario as sc
from conftest import REPO, call_cli
from sladeck.domain.reports import last_shift_start, parse_when, stats
from sladeck.errors import SladeckError
from sladeck.policy import Policy

RANGE = ("--since", sc.REPORT_SINCE, "--until", sc.REPORT_UNTIL)


@pytest.fixture
def scenario(db_path: Path, policy: Policy, monkeypatch: pytest.MonkeyPatch) -> Path:
    sc.build(db_path, policy)
    monkeypatch.setattr("sladeck.clock.SystemClock.now", lambda self: sc.NOW)
    return db_path


def report(db: Path, *args: str, policy: str | None = None) -> dict:
    extra = ("--policy", policy) if policy else ()
    code, out, err = call_cli("--db", str(db), *extra, "report", *RANGE, "--format", "json",
                              *args)
    assert code == 0, err
    return json.loads(out)


def by_group(doc: dict) -> dict[str, dict]:
    return {g["group"]: g for g in doc["groups"]} | {"all": doc["total"]}


def test_counts_per_severity_as_recorded_by_the_end_of_the_range(scenario: Path) -> None:
    g = by_group(report(scenario))
    # The cohort: stories 1-11 (12 opened before, 13 and 14 after the range).
    # opened/acknowledged/escalated/resolved/closed/reopened/open at the range's end:
    # P0 = met-p0, climb-p0, slow-p0: all acked; met and climb escalated; only met
    #      resolved (slow-p0 resolves after the range) and closed (its review); climb and
    #      slow still open.
    # P1 = late, away, followed: all acked, away escalated, all resolved, only followed
    #      closed (reviewed); late and away wait for their review.
    # P2 = breached, reopened, quick: all acked, resolved and closed (no review needed);
    #      reopened-p2 was reopened once and closed again.
    # P3 = met-p3, silent-p3: met acked, resolved, closed; silent still open.
    assert {k: [g[k]["counts"][c] for c in ("opened", "acknowledged", "escalated", "resolved",
                                            "closed", "reopened", "open")]
            for k in ("P0", "P1", "P2", "P3", "all")} == {
        "P0": [3, 3, 2, 1, 1, 0, 2],
        "P1": [3, 3, 1, 3, 1, 0, 0],
        "P2": [3, 3, 0, 3, 3, 1, 0],
        "P3": [2, 1, 0, 1, 1, 0, 1],
        "all": [11, 10, 3, 8, 6, 1, 3],
    }


def test_time_to_acknowledge_overall_and_per_level(scenario: Path) -> None:
    g = by_group(report(scenario))
    # TTA = first ack - opened: P0 met 3m=180, climb 16m=960, slow 4m=240 → sorted
    # 180, 240, 960: median 240, p90 the ⌈2.7⌉=3rd = 960, mean 1380/3 = 460.
    assert g["P0"]["tta"] == {"count": 3, "median_s": 240, "p90_s": 960, "mean_s": 460}
    # P1: late 20m=1200, away 30m=1800 (acked at L2), followed 5m=300 → 300,1200,1800.
    assert g["P1"]["tta"] == {"count": 3, "median_s": 1200, "p90_s": 1800, "mean_s": 1100}
    # P2: breached 30m=1800, reopened 10m=600 (the first ack), quick 5m=300.
    assert g["P2"]["tta"] == {"count": 3, "median_s": 600, "p90_s": 1800, "mean_s": 900}
    # All ten: 180 240 300 300 600 960 1200 1800 1800 3600: median (600+960)/2 = 780,
    # p90 the 9th = 1800, mean 10980/10 = 1098.
    assert g["all"]["tta"] == {"count": 10, "median_s": 780, "p90_s": 1800, "mean_s": 1098}
    # Per level, from entering it: L1 acks 180 (met), 1200 (late), 1800 (breached),
    # 3600 (met-p3), 600 and 600 (reopened-p2, each cycle), 300 (quick), 300 (followed),
    # 240 (slow): sorted 180 240 300 300 600 600 1200 1800 3600 → median 600, p90 the
    # ⌈8.1⌉=9th = 3600, mean 8820/9 = 980. L2: away acked 10m after entering. L3: climb
    # 10m after entering. L4: met-p0 6m after entering.
    assert g["all"]["tta_by_level"] == {
        "L1": {"count": 9, "median_s": 600, "p90_s": 3600, "mean_s": 980},
        "L2": {"count": 1, "median_s": 600, "p90_s": 600, "mean_s": 600},
        "L3": {"count": 1, "median_s": 600, "p90_s": 600, "mean_s": 600},
        "L4": {"count": 1, "median_s": 360, "p90_s": 360, "mean_s": 360},
    }
    # Entries never acknowledged: away at L1, climb at L1 and L2, silent at L1.
    assert g["all"]["unacknowledged_entries"] == 4


def test_time_to_resolve_counts_each_cycle_a_reopen_starts(scenario: Path) -> None:
    g = by_group(report(scenario))
    # P2: quick 30m=1800, reopened-p2 1h + 1h (its second cycle starts at the reopen),
    # breached 25h=90000 → 1800 3600 3600 90000: median 3600, p90 the 4th, mean 24750.
    assert g["P2"]["ttr"] == {"count": 4, "median_s": 3600, "p90_s": 90000, "mean_s": 24750}
    # P1: late 5h=18000, away 1h, followed 2h → median 7200, p90 18000, mean 9600.
    assert g["P1"]["ttr"] == {"count": 3, "median_s": 7200, "p90_s": 18000, "mean_s": 9600}
    # P0: only met-p0 (1h) by the end of the range; climb and slow unresolved.
    assert g["P0"]["ttr"]["count"] == 1 and g["P0"]["unresolved_cycles"] == 2
    assert g["all"]["unresolved_cycles"] == 3  # + silent-p3


def test_escalations_reviews_and_follow_ups(scenario: Path) -> None:
    g = by_group(report(scenario))
    assert g["P0"]["escalations"] == [
        {"to": "L2", "trigger": "advanced_knowledge", "count": 1},  # climb
        {"to": "L3", "trigger": "security_concerns", "count": 1},  # climb
        {"to": "L4", "trigger": "business_critical", "count": 1}]  # met-p0
    assert g["P1"]["escalations"] == [{"to": "L2", "trigger": "advanced_knowledge",
                                       "count": 1}]  # away
    # Reviews: P0 and P1 need one; late-p1 and away-p1 are resolved without.
    assert [g[k]["reviews_outstanding"] for k in ("P0", "P1", "P2", "P3")] == [0, 2, 0, 0]
    # followed-p1: three follow-ups, one done; the one due 2026-11-22 is overdue.
    assert g["P1"]["follow_ups"] == {"open": 2, "overdue": 1}


def test_grouping_by_service_and_assignee(scenario: Path) -> None:
    g = by_group(report(scenario, "--by", "service"))
    assert g["search"]["counts"]["opened"] == 1
    assert g["=cmd|' /C calc'!A0"]["counts"]["opened"] == 1
    assert g[""]["counts"]["opened"] == 9
    g = by_group(report(scenario, "--by", "assignee"))
    assert g["alice"]["tta"]["median_s"] == 300  # quick-p2


def test_a_report_of_last_month_reads_the_same_after_the_policy_changes(
        scenario: Path, tmp_path: Path) -> None:
    before = report(scenario)
    # Every severity needs a review now, and P0's response times above L1 are 1m:
    # the incidents keep the policy they were opened under.
    text = (REPO / "policy.yaml").read_text()
    text = text.replace("required_for: [P0, P1]", "required_for: [P0, P1, P2, P3]")
    text = text.replace("review_required: false", "review_required: true")
    text = text.replace("P0: {L1: 5m, L2: 15m, L3: 30m, L4: 1h}",
                        "P0: {L1: 5m, L2: 1m, L3: 1m, L4: 1m}")
    changed = tmp_path / "policy.yaml"
    changed.write_text(text)
    code, _, err = call_cli("policy", "check", str(changed))
    assert code == 0, err
    # A new incident under the new policy, opened after the range, changes nothing.
    code, _, err = call_cli("--db", str(scenario), "--policy", str(changed), "open",
                            "--severity", "P2", "--title", "later")
    assert code == 0, err
    assert report(scenario, policy=str(changed)) == before


def test_text_markdown_and_csv_formats(scenario: Path) -> None:
    code, out, err = call_cli("--db", str(scenario), "report", *RANGE, "--by", "service",
                              "--format", "csv")
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["section", "group", "item", "measure", "value"]
    groups = {r[1] for r in rows[1:]}
    assert "'=cmd|' /C calc'!A0" in groups  # a formula is never a formula
    assert not any(cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r)
    assert ["counts", "all", "", "opened", "11"] in rows
    code, out, _ = call_cli("--db", str(scenario), "report", *RANGE, "--format", "md")
    assert "| Severity | Opened | Acknowledged |" in out
    assert "| P0 | 3 | 3 | 2 | 1 | 1 | 0 | 2 |" in out
    code, out, _ = call_cli("--db", str(scenario), "report", *RANGE)
    assert "Time to acknowledge and resolve" in out
    assert "(all)        10  13m00s  30m00s  18m18s" in out


@pytest.mark.parametrize(("args", "said"), [
    (("--since", "yesterday"), "--since 'yesterday' is not a time"),
    (("--since", "2026-11-26", "--until", "2026-11-20"), "the range is empty"),
    (("--until", "2026-13-01"), "--until '2026-13-01' is not a time"),
    (("--since", "25:00"), "--since '25:00' is not a time"),
])
def test_a_bad_range_is_one_line_and_exit_1(scenario: Path, args: tuple[str, ...],
                                            said: str) -> None:
    code, out, err = call_cli("--db", str(scenario), "report", *args)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("sladeck: error: ") and said in err


def test_the_json_keys_are_stable(scenario: Path) -> None:
    doc = report(scenario)
    assert list(doc) == ["since", "until", "by", "groups", "total", "daily_opened"]
    assert list(doc["total"]) == [
        "group", "counts", "tta", "tta_by_level", "unacknowledged_entries", "ttr",
        "unresolved_cycles", "compliance", "escalations", "reviews_outstanding",
        "follow_ups"]
    assert doc["since"] == "2026-11-20T00:00:00Z" and doc["until"] == "2026-11-26T00:00:00Z"
    assert doc["daily_opened"] == [{"date": "2026-11-20", "opened": 8},
                                   {"date": "2026-11-21", "opened": 3}]


# -- the digest ------------------------------------------------------------------------------

def test_digest_since_the_last_shift_boundary(scenario: Path) -> None:
    # NOW is 10:00 in New York; shifts begin 08:00 and 20:00 there: since 13:00 UTC.
    code, out, err = call_cli("--db", str(scenario), "digest")
    assert code == 0, err
    assert out.startswith("## Shift digest: 2026-11-26 13:00:00 UTC to 2026-11-26 15:00:00 UTC")
    sections = _sections(out)
    # Ids follow the opening times: shift-away-p1 (13:05) is INC-14, shift-p1 (13:30) 15.
    assert _ids(sections["Opened (2)"]) == [14, 15]
    # shift-away-p1 at L2 13:30, after-p2 at 14:00
    assert _ids(sections["Acknowledged (2)"]) == [14, 13]
    # Both to L2: the trigger's label and the first line of the handoff.
    assert all("to L2, trigger: Requires advanced technical knowledge — Checkout down" in line
               for line in sections["Escalated (2)"])
    assert "second line" not in out
    # shift-away-p1's L1 response (15m from 13:05) breached at 13:20, before it was
    # escalated away at 13:25; shift-p1's L2 response (30m from 13:40) at 14:10.
    assert _ids(sections["Breached (2)"]) == [14, 15]
    assert "Response (acknowledge) at L1" in sections["Breached (2)"][0]
    assert "Response (acknowledge) at L2" in sections["Breached (2)"][1]
    assert _ids(sections["Resolved (1)"]) == [12]  # slow-p0 at 14:30 (review pending)
    assert sections["Closed (0)"] == ["- none"]
    # Still open: climb-p0, silent-p3, before-p3, after-p2, shift-p1, shift-away-p1, in
    # the queue's order.
    code, listed, _ = call_cli("--db", str(scenario), "list")
    order = [int(line.split()[0][4:]) for line in listed.splitlines()]
    assert _ids(sections["Still open, worst first (6)"]) == order
    # Follow-ups due by today (New York): the one due 2026-11-22.
    assert _ids(sections["Follow-ups due (1)"], "#") == [1]


def test_digest_since_a_given_time(scenario: Path) -> None:
    # 14:15 in New York (the policy's zone) is 19:15 UTC, after NOW: refused.
    code, out, err = call_cli("--db", str(scenario), "digest", "--since", "2026-11-26T14:15")
    assert code == 1 and out == "" and "not before now" in err
    code, out, _ = call_cli("--db", str(scenario), "digest", "--since", "2h")
    assert code == 0 and "Opened (2)" in out and "Resolved (1)" in out
    code, out, _ = call_cli("--db", str(scenario), "digest", "--since", "20m")
    assert "Opened (0)" in out and "Resolved (0)" in out


def test_digest_markdown_escapes_user_text(db_path: Path, policy: Policy,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sladeck.clock.SystemClock.now", lambda self: sc.NOW)
    code, _, _ = call_cli("--db", str(db_path), "open", "--severity", "P3", "--title",
                          "# heading *bold* [x](http://e) \x1b[31mred")
    assert code == 0
    code, out, _ = call_cli("--db", str(db_path), "digest", "--since", "1h")
    assert code == 0 and "\x1b" not in out and "\\# heading \\*bold\\* \\[x\\]" in out


def _sections(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("**") and line.endswith("**"):
            current = out.setdefault(line.strip("*"), [])
        elif line.startswith("- "):
            current.append(line)
    return out


def _ids(lines: list[str], prefix: str = "**INC-") -> list[int]:
    found = []
    for line in lines:
        if line == "- none":
            continue
        rest = line.split(prefix, 1)[1]
        digits = ""
        for ch in rest:
            if not ch.isdigit():
                break
            digits += ch
        found.append(int(digits))
    return found


# -- the pieces ------------------------------------------------------------------------------

def test_percentiles_by_hand() -> None:
    # median of an even count is the mean of the middle two; p90 is the nearest rank.
    assert stats([4, 1, 3, 2]) == stats([1, 2, 3, 4])
    s = stats([1, 2, 3, 4])
    assert (s.count, s.median, s.p90, s.mean) == (4, 2.5, 4, 2.5)
    s = stats([float(n) for n in range(1, 11)])
    assert (s.median, s.p90) == (5.5, 9.0)  # ⌈0.9·10⌉ = 9th
    assert stats([]).median is None


def test_when_texts() -> None:
    now = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
    ny = ZoneInfo("America/New_York")
    assert parse_when("7d", now, ny) == datetime(2026, 11, 19, 15, 0, tzinfo=UTC)
    assert parse_when("08:00", now, ny) == datetime(2026, 11, 26, 13, 0, tzinfo=UTC)
    assert parse_when("11:00", now, ny) == datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
    assert parse_when("2026-11-01", now, ny) == datetime(2026, 11, 1, 4, 0, tzinfo=UTC)
    with pytest.raises(SladeckError):
        parse_when("tomorrow", now, ny)
    # the shift that began at 20:00 the evening before, at 02:00 local
    assert last_shift_start(datetime(2026, 11, 26, 7, 0, tzinfo=UTC), (time(8), time(20)),
                            ny) == datetime(2026, 11, 26, 1, 0, tzinfo=UTC)


def test_reporting_shifts_are_validated_with_file_and_line(tmp_path: Path) -> None:
    text = (REPO / "policy.yaml").read_text().replace(
        'shifts: ["08:00", "20:00"]', 'shifts: ["08:00", "8pm", "08:00"]')
    bad = tmp_path / "policy.yaml"
    bad.write_text(text)
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "8pm" in t)
    code, _, err = call_cli("policy", "check", str(bad))
    assert code == 1
    assert f'{bad}:{line}: reporting.shifts[1]: "8pm" is not a time (write 08:00)' in err
    assert f'{bad}:{line}: reporting.shifts[2]: "08:00" is listed twice' in err


def test_sla_compliance_per_clock_kind_from_the_clock_history(scenario: Path) -> None:
    g = by_group(report(scenario))
    # Response: one cycle per level entered, stopped by an ack or an escalation.
    # P0: met-p0 ack 3m ≤ 5m, then at L4 6m ≤ 1h; climb-p0 escalated at 2m ≤ 5m, again
    # 4m after entering L2 (≤ 15m), acked 10m after entering L3 (≤ 30m); slow-p0 ack
    # 4m ≤ 5m → 6 met.
    assert g["P0"]["compliance"]["response"] == {
        "met": 6, "late": 0, "breached": 0, "running": 0, "stopped": 6, "rate": 1.0}
    # P1: late-p1 acked at 20m > 15m (breached); away-p1 escalated at 20m > 15m (the
    # breach stays), then acked 10m after entering L2 (met); followed-p1 5m (met).
    assert g["P1"]["compliance"]["response"] == {
        "met": 2, "late": 0, "breached": 2, "running": 0, "stopped": 4, "rate": 0.5}
    # P3: met-p3 1h ≤ 4h; silent-p3 never acked, 4h passed long before the range's end:
    # breached though still running.
    assert g["P3"]["compliance"]["response"]["breached"] == 1
    # Level (escalate after) for P1: late-p1 resolved 5h after entering L1 (30m): late;
    # away-p1 left L1 at 20m (met) and resolved 40m into L2's 2h (met); followed-p1
    # resolved at 2h > 30m: late.
    assert g["P1"]["compliance"]["level"] == {
        "met": 2, "late": 2, "breached": 0, "running": 0, "stopped": 4, "rate": 0.5}
    # Resolution maximum: P0 met-p0 1h ≤ 4h, climb-p0 and slow-p0 unresolved past 4h
    # (breached); P2 breached-p2 25h > 24h, reopened-p2 1h and 1h (two cycles), quick-p2
    # 30m; P1 all three within 8h; P3 met-p3 2h, silent-p3 past 48h.
    assert {k: (g[k]["compliance"]["resolution_maximum"]["met"],
                g[k]["compliance"]["resolution_maximum"]["breached"])
            for k in ("P0", "P1", "P2", "P3", "all")} == {
        "P0": (1, 2), "P1": (3, 0), "P2": (3, 1), "P3": (1, 1), "all": (8, 4)}
    # All response cycles: 6 + 2 + 4 + 1 met, 2 + 1 breached: 13 ÷ 16.
    assert g["all"]["compliance"]["response"]["rate"] == 0.8125


def test_compliance_in_sql_agrees_with_replaying_each_clock_history(scenario: Path) -> None:
    """The report counts the stored clock_cycles in SQL; replaying every incident's
    events through `history.clock_history` and `reports.cycle_outcome` gives the same
    table, at the range's end and at NOW."""
    from sladeck.domain.history import clock_history
    from sladeck.domain.reports import cycle_outcome
    from sladeck.store import Store

    store = Store(scenario)
    try:
        for until_text, until in ((sc.REPORT_UNTIL, datetime(2026, 11, 26, tzinfo=UTC)),
                                  (sc.NOW.isoformat(), sc.NOW)):
            expected: dict[str, dict[str, dict[str, int]]] = {}
            for incident in store.incidents(None):
                if not datetime(2026, 11, 20, tzinfo=UTC) <= incident.opened_at < until:
                    continue
                events = [e for e in store.events(incident.id) if e.at < until]
                for cycle in clock_history(events, store.policy):
                    if cycle.started_at >= until:
                        continue
                    kinds = expected.setdefault(incident.severity, {})
                    outcomes = kinds.setdefault(cycle.kind, {})
                    outcome = cycle_outcome(cycle, until)
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
            code, out, err = call_cli("--db", str(scenario), "report", "--since",
                                      sc.REPORT_SINCE, "--until", until_text, "--format",
                                      "json")
            assert code == 0, err
            got = {g["group"]: {k: {o: n for o, n in c.items()
                                    if o in ("met", "late", "breached", "running") and n}
                                for k, c in g["compliance"].items()}
                   for g in json.loads(out)["groups"]}
            assert got == expected
    finally:
        store.close()
