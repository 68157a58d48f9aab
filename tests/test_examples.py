"""The files under examples/ work through the real CLI, as their comments say; in a
handoff or review file a YAML `~`, `null` or nothing is a missing field."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest

from sladeck.policy import Policy
from test_cli import L2_FIELDS, REVIEW_FIELDS, Cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def run(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def commands_in(path: Path) -> list[list[str]]:
    """The `sladeck …` commands a file's comments give, as argument lists."""
    return [shlex.split(line.removeprefix("#").strip())[1:]
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.startswith("#") and line.removeprefix("#").strip().startswith("sladeck ")]


def test_every_example_file_runs_through_the_cli_as_its_comment_says(
        run: Cli, policy: Policy) -> None:
    shutil.copytree(EXAMPLES, run.tmp / "examples")  # the commands name examples/…
    out = run.ok("import", "examples/alerts.ndjson").stdout
    assert "imported 3 new, 1 repeated" in out
    [checkout] = [i for i in run.incidents() if i["dedup_key"] == "checkout-5xx"]
    assert (checkout["id"], checkout["repeats"]) == (1, 1)
    for level in ("L2", "L3", "L4"):
        [command] = commands_in(EXAMPLES / f"handoff-{level}.yaml")
        assert command[:4] == ["escalate", "1", "--to", level]
        assert "escalated to " + level in run.ok(*command).stdout
    shown = run.show(1)
    assert shown["level"] == "L4"
    assert [h["to"] for h in shown["handoffs"]] == ["L2", "L3", "L4"]
    for h in shown["handoffs"]:  # every field of each level, none empty
        assert set(h["fields"]) == {f.key for f in policy.escalation[h["to"]].handoff}
        assert all(v.strip() for v in h["fields"].values())
    assert "18,000 USD" in shown["handoffs"][2]["fields"]["financial_impact"]
    resolve, review = commands_in(EXAMPLES / "review.yaml")
    run.ok(*resolve)
    assert "reviewed and closed" in run.ok(*review).stdout
    shown = run.show(1)
    assert shown["state"] == "closed"
    assert set(shown["review"]["fields"]) == set(REVIEW_FIELDS)
    # the README of examples/ gives the same commands
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for name in ("handoff-L2.yaml", "handoff-L3.yaml", "handoff-L4.yaml", "review.yaml"):
        assert shlex.join(["sladeck", *commands_in(EXAMPLES / name)[-1]]) in readme


def test_a_null_or_empty_field_in_a_handoff_file_is_missing(run: Cli) -> None:
    i = str(run.open("P1"))
    handoff = run.tmp / "handoff.yaml"
    handoff.write_text("issue_summary: checkout down\nactions_taken: ~\ncurrent_status: null\n"
                       "logs_and_evidence:\nbusiness_impact: 'null'\n", encoding="utf-8")
    before = run.dump()
    err = run.refused("escalate", i, "--to", "L2", "--trigger", "performance",
                      "--handoff-file", str(handoff))
    [line] = err.splitlines()
    assert line.startswith("sladeck: error: escalating INC-1 to L2 needs: ")
    for key in ("actions_taken", "current_status", "logs_and_evidence"):
        assert f"({key})" in line
    assert "issue_summary" not in line and "business_impact" not in line  # quoted: text
    assert run.dump() == before
    # filled, the same file escalates, and a quoted 'null' stays the text it is
    handoff.write_text("".join(f"{k}: x\n" for k in L2_FIELDS[:-1])
                       + "business_impact: 'null'\n", encoding="utf-8")
    run.ok("escalate", i, "--to", "L2", "--trigger", "performance", "--handoff-file",
           str(handoff))
    assert run.show(int(i))["handoffs"][0]["fields"]["business_impact"] == "null"


def test_a_null_field_in_a_review_file_is_missing(run: Cli) -> None:
    i = str(run.open("P1"))
    run.ok("resolve", i, "--summary", "fixed", "--check", "all")
    review = run.tmp / "review.yaml"
    review.write_text("incident_analysis: ~\nroot_cause_analysis: pool\nlessons_learned: NULL\n"
                      "process_improvement: x\n", encoding="utf-8")
    err = run.refused("review", i, "--file", str(review))
    assert "incident_analysis" in err and "lessons_learned" in err
    assert "root_cause_analysis" not in err
    assert run.show(int(i))["state"] == "resolved"
