"""The `sladeck` command as scripts and alert pipelines use it (SPEC §7–§9).

Most tests run the real console script in a subprocess against a temporary
database; the property tests call `sladeck.cli.main` in-process for speed.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import pwd
import re
import sqlite3
import stat
import subprocess
import sys
from datetime import UTC, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import call_cli

SLADECK = Path(sys.executable).with_name("sladeck")
REPO = Path(__file__).resolve().parent.parent
POLICY = REPO / "policy.yaml"
ME = pwd.getpwuid(os.getuid()).pw_name

SEVERITIES = ("P0", "P1", "P2", "P3")
LEVELS = ("L1", "L2", "L3", "L4")
STATES = ("open", "acknowledged", "resolved", "closed")
RISKS = ("breached", "due", "warning", "ok")
CLOCK_KINDS = ("response", "level", "severity_level", "resolution_target",
               "resolution_maximum")
CLOCK_STATUSES = ("running", "met", "late", "due", "breached")  # SPEC §7
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
C1 = re.compile("[\x80-\x9f]")

L2_FIELDS = ("issue_summary", "actions_taken", "current_status", "logs_and_evidence",
             "business_impact")
L3_FIELDS = ("technical_details", "system_architecture", "security_assessment",
             "business_impact", "recovery_procedures")
REVIEW_FIELDS = ("incident_analysis", "root_cause_analysis", "lessons_learned",
                 "process_improvement")
RESOLUTION_CHECKS = ("verify_resolution", "test_system", "monitor_stability",
                     "document_resolution")
TABLES = ("policies", "incidents", "events", "handoffs", "checklist_ticks", "reviews",
          "follow_ups", "notices")


def base_env(tmp: Path) -> dict[str, str]:
    """The caller's environment without SLADECK_*, with private XDG folders and UTC."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLADECK_")}
    for var in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        env[var] = str(tmp / "xdg" / var.lower())
    env["TZ"] = "UTC"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def check_output(code: int, stdout: str, stderr: str) -> None:
    """What SPEC §7 and §9 promise of every run, whatever it was asked."""
    assert "Traceback" not in stderr and "Traceback" not in stdout, stderr
    assert "sladeck: error: unexpected" not in stderr, stderr
    assert code in (0, 1, 2), (code, stderr)
    if code == 2:
        lines = stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("sladeck: error: "), stderr
    elif code == 1:
        lines = stderr.splitlines()
        assert lines and all(line.startswith("sladeck: ") for line in lines), stderr
        assert any(line.startswith("sladeck: error: ") for line in lines), stderr


class PgDb:
    """A PostgreSQL database as `Cli.db`: `str` is its URL; it `exists` once sladeck wrote
    anything to it (each test's database is made, migrated and empty, beforehand)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __str__(self) -> str:
        return self.url

    def exists(self) -> bool:
        return any(dump(self)[t] for t in ("policies", "incidents"))


class Cli:
    """Runs the real `sladeck` console script against one temporary database (the
    file, or on PostgreSQL the test's database: `url`)."""

    def __init__(self, tmp: Path, url: str | None = None) -> None:
        self.tmp = tmp
        self.db: Any = PgDb(url) if url else tmp / "desk" / "sladeck.db"
        self.account = url.split("//")[1].split("@")[0] if url else ME  # the recorded actor
        self.env = base_env(tmp) | {"SLADECK_DB": str(self.db)}

    def __call__(self, *args: str, input: str | bytes | None = None,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        data = input.encode() if isinstance(input, str) else input
        proc = subprocess.run([str(SLADECK), *args], input=data, capture_output=True,
                              env=self.env | (env or {}), cwd=self.tmp, timeout=60)
        out = subprocess.CompletedProcess(proc.args, proc.returncode,
                                          proc.stdout.decode("utf-8", "surrogateescape"),
                                          proc.stderr.decode("utf-8", "surrogateescape"))
        out.raw_stdout = proc.stdout  # type: ignore[attr-defined]
        check_output(out.returncode, out.stdout, out.stderr)
        return out

    def ok(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        out = self(*args, **kwargs)
        assert out.returncode == 0, out.stderr
        return out

    def refused(self, *args: str, **kwargs: Any) -> str:
        """Exit 1; the error text (stderr)."""
        out = self(*args, **kwargs)
        assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
        return out.stderr

    def json(self, *args: str, **kwargs: Any) -> Any:
        return json.loads(self.ok(*args, "--json", **kwargs).stdout)

    def open(self, severity: str = "P2", title: str = "Search latency high",
             *extra: str) -> int:
        out = self.ok("open", "--severity", severity, "--title", title, *extra)
        match = re.fullmatch(r"INC-(\d+)\n", out.stdout)
        assert match, out.stdout
        return int(match.group(1))

    def show(self, incident: int) -> dict[str, Any]:
        return self.json("show", str(incident))

    def incidents(self) -> list[dict[str, Any]]:
        return self.json("list", "--all")

    def dump(self, db: Path | None = None) -> dict[str, list[tuple]]:
        return dump(db or self.db)


def dump(db: Path | PgDb) -> dict[str, list[tuple]]:
    if isinstance(db, PgDb):
        import psycopg

        with psycopg.connect(db.url) as pg:
            return {t: pg.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall()
                    for t in TABLES}
    con = sqlite3.connect(db)
    try:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in TABLES}
    finally:
        con.close()


def fields(*keys: str, value: str = "text") -> list[str]:
    return [arg for key in keys for arg in ("--field", f"{key}={value} {key}")]


pytestmark = pytest.mark.both_backends


@pytest.fixture
def run(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Cli:
    return Cli(tmp_path, request.getfixturevalue("db_url") if backend == "postgres" else None)


# --- open, ack and the id forms ---------------------------------------------------------------

def test_open_prints_the_new_id(run: Cli) -> None:
    assert run.ok("open", "--severity", "P1", "--title", "Checkout down").stdout == "INC-1\n"
    assert run.ok("open", "--severity", "P3", "--title", "Typo").stdout == "INC-2\n"
    assert [i["id"] for i in run.incidents()] == [1, 2]


def test_open_json_shape(run: Cli) -> None:
    data = run.json("open", "--severity", "P1", "--title", "Checkout down",
                    "--description", "503s", "--service", "checkout", "--dedup-key", "chk",
                    "--external-ref", "OPS-1")
    assert data["id"] == 1 and isinstance(data["id"], int)
    assert data["ref"] == "INC-1"
    assert (data["title"], data["severity"], data["level"], data["state"]) == \
        ("Checkout down", "P1", "L1", "open")
    assert (data["service"], data["dedup_key"], data["external_ref"]) == \
        ("checkout", "chk", "OPS-1")
    assert ISO_UTC.match(data["opened_at"])
    assert data["risk"] in RISKS
    assert {c["kind"] for c in data["clocks"]} == set(CLOCK_KINDS)


def test_open_with_a_known_dedup_key_repeats_the_open_incident(run: Cli) -> None:
    first = run.open("P2", "Disk full", "--dedup-key", "disk")
    again = run.ok("open", "--severity", "P2", "--title", "Disk full", "--dedup-key", "disk")
    assert again.stdout == f"INC-{first}\n"
    assert "repeat" in again.stderr
    [incident] = run.incidents()
    assert incident["repeats"] == 1


def test_open_refusals(run: Cli) -> None:
    assert "severity" in run.refused("open", "--severity", "P9", "--title", "x")
    assert "title" in run.refused("open", "--severity", "P1", "--title", "   ")
    assert not run.db.exists() or run.incidents() == []


def test_ack_accepts_both_id_forms_and_is_idempotent(run: Cli) -> None:
    a, b = run.open(), run.open()
    assert "INC-1 acknowledged" in run.ok("ack", str(a)).stdout
    run.ok("ack", f"INC-{b}")
    assert [i["state"] for i in run.incidents()] == ["acknowledged", "acknowledged"]
    version = run.show(a)["version"]
    assert "already acknowledged" in run.ok("ack", str(a)).stdout
    assert run.show(a)["version"] == version
    run.ok("resolve", str(a), "--summary", "s", "--check", "all")
    run.refused("ack", str(a))


# --- escalate ---------------------------------------------------------------------------------

def test_escalate_with_fields(run: Cli) -> None:
    i = run.open("P2")
    run.ok("ack", str(i))
    before = run.dump()
    err = run.refused("escalate", str(i), "--to", "L2", "--trigger", "performance",
                      *fields("issue_summary", "current_status"))
    [line] = err.splitlines()
    assert line.startswith("sladeck: error: ")
    for key in ("actions_taken", "logs_and_evidence", "business_impact"):
        assert key in line
    assert "issue_summary" not in line
    assert run.dump() == before  # nothing written

    out = run.ok("escalate", str(i), "--to", "l2", "--trigger", "performance",
                 *fields(*L2_FIELDS))
    assert "escalated to L2" in out.stdout
    shown = run.show(i)
    assert (shown["level"], shown["state"]) == ("L2", "open")
    [handoff] = shown["handoffs"]
    assert (handoff["from"], handoff["to"], handoff["trigger"]) == ("L1", "L2", "performance")
    assert set(handoff["fields"]) == set(L2_FIELDS)
    assert handoff["fields"]["issue_summary"] == "text issue_summary"
    # the escalating command itself pages the new level (SPEC §6), once
    assert [e["kind"] for e in shown["events"]] == ["opened", "acknowledged", "escalated",
                                                    "paged"]


def test_escalate_field_value_may_contain_equals(run: Cli) -> None:
    i = run.open()
    run.ok("escalate", str(i), "--to", "L2", "--trigger", "other", "--reason", "asked",
           *fields(*L2_FIELDS, value="a=b"))
    assert run.show(i)["handoffs"][0]["fields"]["actions_taken"] == "a=b actions_taken"


def test_escalate_with_handoff_file(run: Cli) -> None:
    i = run.open("P1")
    partial = run.tmp / "partial.yaml"
    partial.write_text("technical_details: pool exhausted\nsystem_architecture: |\n"
                       "  pgbouncer\n  3 pods\nsecurity_assessment: none\n"
                       "business_impact: '   '\n", encoding="utf-8")
    before = run.dump()
    err = run.refused("escalate", str(i), "--to", "L3", "--trigger", "data_integrity",
                      "--handoff-file", str(partial))
    [line] = err.splitlines()
    assert line.startswith("sladeck: error: ")
    assert "business_impact" in line and "recovery_procedures" in line
    assert "technical_details" not in line
    assert run.dump() == before

    full = run.tmp / "full.yaml"
    full.write_text("".join(f"{k}: 'on: yes, 17:30, no'\n" for k in L3_FIELDS),
                    encoding="utf-8")
    run.ok("escalate", str(i), "--to", "L3", "--trigger", "data_integrity",
           "--handoff-file", str(full))
    shown = run.show(i)
    assert shown["level"] == "L3"
    assert shown["handoffs"][0]["fields"] == {k: "on: yes, 17:30, no" for k in L3_FIELDS}


def test_escalate_handoff_file_problems(run: Cli) -> None:
    i = run.open()
    bad = run.tmp / "bad.yaml"
    bad.write_text("issue_summary: [unclosed\n", encoding="utf-8")
    assert "bad.yaml" in run.refused("escalate", str(i), "--to", "L2", "--trigger",
                                     "performance", "--handoff-file", str(bad))
    listy = run.tmp / "list.yaml"
    listy.write_text("- a\n- b\n", encoding="utf-8")
    run.refused("escalate", str(i), "--to", "L2", "--trigger", "performance",
                "--handoff-file", str(listy))
    run.refused("escalate", str(i), "--to", "L2", "--trigger", "performance",
                "--handoff-file", str(run.tmp / "missing.yaml"))
    binary = run.tmp / "binary.yaml"
    binary.write_bytes(b"issue_summary: \xff\xfe\n")
    run.refused("escalate", str(i), "--to", "L2", "--trigger", "performance",
                "--handoff-file", str(binary))
    tagged = run.tmp / "tagged.yaml"
    tagged.write_text("issue_summary: !!python/object/apply:os.system ['true']\n",
                      encoding="utf-8")
    run("escalate", str(i), "--to", "L2", "--trigger", "performance",
        "--handoff-file", str(tagged))
    assert run.show(i)["level"] == "L1"
    # --field and a file together is a usage error
    full = run.tmp / "full.yaml"
    full.write_text("".join(f"{k}: x\n" for k in L2_FIELDS), encoding="utf-8")
    out = run("escalate", str(i), "--to", "L2", "--trigger", "performance",
              "--field", "issue_summary=x", "--handoff-file", str(full))
    assert out.returncode == 2


def test_escalate_refusals(run: Cli) -> None:
    i = run.open()
    every = fields(*L2_FIELDS)
    assert "trigger" in run.refused("escalate", str(i), "--to", "L2", "--trigger", "nope",
                                    *every)
    assert "reason" in run.refused("escalate", str(i), "--to", "L2", "--trigger", "other",
                                   *every)
    assert "L9" in run.refused("escalate", str(i), "--to", "L9", "--trigger", "other",
                               "--reason", "r", *every)
    run.refused("escalate", str(i), "--to", "L1", "--trigger", "other", "--reason", "r")
    run.refused("escalate", str(i), "--to", "L2", "--trigger", "performance",
                *every, "--field", "bogus_field=x")
    assert run.show(i)["events"][-1]["kind"] == "opened"
    run.ok("escalate", str(i), "--to", "L4", "--trigger", "business_critical",
           *fields("executive_summary", "business_impact", "financial_impact", "timeline",
                   "recommendations"))
    assert "top" in run.refused("escalate", str(i), "--to", "L4", "--trigger", "other",
                                "--reason", "r")


# --- note, assign, severity -------------------------------------------------------------------

def test_note_assign_severity(run: Cli) -> None:
    i = run.open("P3")
    run.ok("note", str(i), "Looked at the graphs.\nSecond line.")
    run.ok("assign", str(i), "dana")
    before = run.show(i)["clocks"]
    run.ok("severity", str(i), "p1", "--reason", "Customers affected")
    shown = run.show(i)
    assert shown["assignee"] == "dana"
    assert shown["severity"] == "P1"
    assert shown["clocks"] != before  # every clock follows the severity
    kinds = [e["kind"] for e in shown["events"]]
    # raised to P1, it is announced (SPEC §6)
    assert kinds == ["opened", "note", "assigned", "severity_changed", "announced"]
    note = next(e for e in shown["events"] if e["kind"] == "note")
    assert note["payload"]["text"] == "Looked at the graphs.\nSecond line."
    assert "blank" in run.refused("note", str(i), "  ")
    assert "P1" in run.refused("severity", str(i), "P1", "--reason", "again")
    run.refused("severity", str(i), "P7", "--reason", "r")
    run.refused("severity", str(i), "P2", "--reason", " ")
    assert run("severity", str(i), "P2").returncode == 2  # --reason is required
    run.ok("assign", str(i), "")
    assert run.show(i)["assignee"] in (None, "")


# --- resolve, reopen, review, follow-ups --------------------------------------------------------

def test_resolve_check_all_closes_a_severity_without_review(run: Cli) -> None:
    i = run.open("P2")
    out = run.ok("resolve", str(i), "--summary", "Rolled back", "--check", "all")
    assert "closed" in out.stdout
    shown = run.show(i)
    assert shown["state"] == "closed"
    assert {(c["checklist"], c["item"]) for c in shown["checklists"]} == \
        {("resolution", k) for k in RESOLUTION_CHECKS}


def test_resolve_needs_every_check_and_a_summary(run: Cli) -> None:
    i = run.open("P1")
    before = run.dump()
    err = run.refused("resolve", str(i), "--summary", "fixed",
                      "--check", "verify_resolution", "--check", "test_system")
    [line] = err.splitlines()
    assert "monitor_stability" in line and "document_resolution" in line
    assert "verify_resolution" not in line
    run.refused("resolve", str(i), "--summary", "  ", "--check", "all")
    run.refused("resolve", str(i), "--summary", "fixed", "--check", "not_an_item")
    assert run.dump() == before
    checks = [a for k in RESOLUTION_CHECKS for a in ("--check", k)]
    out = run.ok("resolve", str(i), "--summary", "fixed", *checks)
    assert "review" in out.stdout
    assert run.show(i)["state"] == "resolved"  # P1 needs a review before closing
    run.refused("resolve", str(i), "--summary", "again", "--check", "all")
    run.refused("escalate", str(i), "--to", "L2", "--trigger", "performance",
                *fields(*L2_FIELDS))


def test_reopen(run: Cli) -> None:
    i = run.open("P3")
    run.refused("reopen", str(i), "--reason", "not resolved yet")
    run.ok("resolve", str(i), "--summary", "done", "--check", "all")
    run.refused("reopen", str(i), "--reason", " ")
    run.ok("reopen", str(i), "--reason", "came back")
    shown = run.show(i)
    assert (shown["state"], shown["level"]) == ("open", "L1")
    assert shown["events"][-1]["kind"] == "reopened"


def test_review_with_fields_closes(run: Cli) -> None:
    i = run.open("P1")
    run.refused("review", str(i), *fields(*REVIEW_FIELDS))  # not resolved yet
    run.ok("resolve", str(i), "--summary", "fixed", "--check", "all")
    before = run.dump()
    err = run.refused("review", str(i), *fields("incident_analysis", "lessons_learned"))
    assert "root_cause_analysis" in err and "process_improvement" in err
    run.refused("review", str(i), *fields(*REVIEW_FIELDS), "--field", "unknown=x")
    assert run.dump() == before
    run.ok("review", str(i), *fields(*REVIEW_FIELDS))
    shown = run.show(i)
    assert shown["state"] == "closed"
    assert shown["review"]["fields"]["lessons_learned"] == "text lessons_learned"


def test_review_with_file(run: Cli) -> None:
    i = run.open("P0")
    run.ok("resolve", str(i), "--summary", "fixed", "--check", "all")
    review = run.tmp / "review.yaml"
    review.write_text("".join(f"{k}: |\n  {k} line 1\n  line 2\n" for k in REVIEW_FIELDS),
                      encoding="utf-8")
    run.ok("review", str(i), "--file", str(review))
    shown = run.show(i)
    assert shown["state"] == "closed"
    assert shown["review"]["fields"]["root_cause_analysis"] == \
        "root_cause_analysis line 1\nline 2\n"


def test_follow_up_add_and_done(run: Cli) -> None:
    i = run.open("P2")
    args = ("--kind", "training", "--description", "Update the runbook",
            "--owner", "chen")
    run.refused("follow-up", "add", str(i), *args)  # only for resolved incidents
    run.ok("resolve", str(i), "--summary", "fixed", "--check", "all")
    run.refused("follow-up", "add", str(i), "--kind", "nope", "--description", "d",
                "--owner", "o")
    run.refused("follow-up", "add", str(i), *args, "--due", "next week")
    run.ok("follow-up", "add", str(i), *args, "--due", "2030-12-31")
    [follow_up] = run.show(i)["follow_ups"]
    assert (follow_up["kind"], follow_up["owner"], follow_up["due"]) == \
        ("training", "chen", "2030-12-31")
    assert follow_up["done_at"] is None
    run.ok("follow-up", "add", str(i), "--kind", "training", "--description", "Old debt",
           "--owner", "nobody", "--due", "2020-01-01")
    lines = run.ok("follow-up", "list").stdout.splitlines()  # across incidents
    assert len(lines) == 2
    assert "INC-" in lines[0] and "OVERDUE 2020-01-01" in lines[0] and "Old debt" in lines[0]
    assert "due 2030-12-31" in lines[1] and "Update the runbook" in lines[1]
    overdue = json.loads(run.ok("follow-up", "list", "--view", "overdue", "--json").stdout)
    assert [(f["description"], f["overdue"]) for f in overdue] == [("Old debt", True)]
    run.ok("follow-up", "done", str(follow_up["id"]))
    assert "Update the runbook" not in run.ok("follow-up", "list").stdout
    assert "done" in run.ok("follow-up", "list", "--view", "all").stdout
    [follow_up, _] = run.show(i)["follow_ups"]
    assert ISO_UTC.match(follow_up["done_at"])
    run.refused("follow-up", "done", "999")
    assert run("follow-up", "done", "abc").returncode == 2


# --- list and show ----------------------------------------------------------------------------

def fill_varied(run: Cli) -> None:
    """INC-1 P1 open, INC-2 P2 acknowledged, INC-3 P2 at L2, INC-4 P3 closed."""
    run.open("P1", "First")
    run.ok("ack", str(run.open("P2", "Second")))
    third = run.open("P2", "Third")
    run.ok("escalate", str(third), "--to", "L2", "--trigger", "performance",
           *fields(*L2_FIELDS))
    run.ok("resolve", str(run.open("P3", "Fourth")), "--summary", "s", "--check", "all")


@pytest.fixture(scope="module")
def varied_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = Cli(tmp_path_factory.mktemp("varied"))
    fill_varied(run)
    return run.db


_VARIED_PG: dict[str, str] = {}  # the cluster's varied database, built once


@pytest.fixture
def varied(run: Cli, backend: str, request: pytest.FixtureRequest) -> Cli:
    """A private copy of a varied database (built once: subprocesses are slow)."""
    if backend == "postgres":
        cluster = request.getfixturevalue("pg_cluster")
        if "name" not in _VARIED_PG:
            name = cluster.fresh_database()
            fill_varied(Cli(run.tmp, cluster.url(name)))
            _VARIED_PG["name"] = name
        mine = run.db.url.split("/")[3].split("?")[0]
        cluster.sql(f"DROP DATABASE {mine} WITH (FORCE)")
        cluster.sql(f"CREATE DATABASE {mine} TEMPLATE {_VARIED_PG['name']}")
        return run
    varied_db = request.getfixturevalue("varied_db")
    run.db.parent.mkdir(mode=0o700)
    src, dst = sqlite3.connect(varied_db), sqlite3.connect(run.db)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    os.chmod(run.db, 0o600)
    return run


def test_list_json_shape(varied: Cli) -> None:
    rows = varied.json("list", "--all")
    assert isinstance(rows, list) and len(rows) == 4
    for row in rows:
        assert isinstance(row["id"], int)
        assert isinstance(row["title"], str)
        assert row["severity"] in SEVERITIES and row["level"] in LEVELS
        assert row["state"] in STATES and row["risk"] in RISKS
        assert ISO_UTC.match(row["opened_at"]), row["opened_at"]
        assert row["clocks"]
        for c in row["clocks"]:
            assert c["kind"] in CLOCK_KINDS and c["status"] in CLOCK_STATUSES
            assert ISO_UTC.match(c["due_at"])
    first = next(r for r in rows if r["id"] == 1)
    assert [c["kind"] for c in first["clocks"]] == list(CLOCK_KINDS)
    assert all(c["status"] == "running" for c in first["clocks"])


def test_list_filters(varied: Cli) -> None:
    ids = lambda *a: sorted(r["id"] for r in varied.json("list", *a))  # noqa: E731
    assert ids() == [1, 2, 3]
    assert ids("--all") == [1, 2, 3, 4]
    assert ids("--state", "closed") == [4]
    assert ids("--state", "acknowledged") == [2]
    assert ids("--severity", "P2") == [2, 3]
    assert ids("--severity", "p2") == [2, 3]
    assert ids("--level", "L2") == [3]
    assert ids("--all", "--severity", "P3") == [4]
    assert ids("--severity", "P0") == []


def test_list_text(varied: Cli) -> None:
    out = varied.ok("list").stdout.splitlines()
    assert len(out) == 3
    assert all(re.match(r"INC-\d+\s+P\d\s+L\d\s+(open|acknowledged)\s", line) for line in out)
    assert "Fourth" in varied.ok("list", "--all").stdout
    empty = varied.ok("list", "--severity", "P0")
    assert empty.stdout == ""


def test_show_text_and_json(varied: Cli) -> None:
    text = varied.ok("show", "INC-3").stdout
    assert text.startswith("# INC-3: Third")
    for section in ("## SLA clocks", "## Handoffs", "## Timeline", "## Resolution checklist"):
        assert section in text
    data = varied.show(3)
    assert data["id"] == 3
    assert [e["kind"] for e in data["events"]] == ["opened", "escalated", "paged"]
    for e in data["events"]:
        assert ISO_UTC.match(e["at"]) and e["account"] == varied.account
    assert data["handoffs"][0]["to"] == "L2"
    assert "INC-99" in varied.refused("show", "99")


# --- import -----------------------------------------------------------------------------------

def ndjson(*records: Any) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


GOOD = [{"title": "CPU high on db-1", "severity": "P2", "dedup_key": "cpu-db-1",
         "service": "db", "opened_at": "2026-01-01T10:00:00Z"},
        {"title": "Checkout 5xx", "severity": "P1", "dedup_key": "checkout-5xx",
         "description": "from grafana", "external_ref": "OPS-9"},
        {"title": "Typo", "severity": "P3", "dedup_key": "typo"}]


def test_import_whole_file(run: Cli) -> None:
    alerts = run.tmp / "alerts.ndjson"
    alerts.write_text(ndjson(*GOOD) + "\n", encoding="utf-8")
    out = run.ok("import", str(alerts))
    assert "3 new" in out.stdout
    rows = {r["title"]: r for r in run.incidents()}
    assert set(rows) == {g["title"] for g in GOOD}
    cpu = rows["CPU high on db-1"]
    assert cpu["opened_at"] == "2026-01-01T10:00:00Z"
    assert cpu["risk"] == "breached"  # an old alert's clocks are already running
    # the same file again: no new incident, repeats counted
    again = run.ok("import", str(alerts))
    assert "0 new" in again.stdout and "3 repeated" in again.stdout
    rows = run.incidents()
    assert len(rows) == 3 and all(r["repeats"] == 1 for r in rows)


def test_import_bad_line_refuses_the_whole_file(run: Cli) -> None:
    run.open("P2", "Existing")
    alerts = run.tmp / "alerts.ndjson"
    alerts.write_text(ndjson(GOOD[0], "{not json", GOOD[1], {"title": "no severity"},
                             {"title": "x", "severity": "P9"}), encoding="utf-8")
    before = run.dump()
    err = run.refused("import", str(alerts))
    assert re.search(rf"^sladeck: error: {re.escape(str(alerts))}:2: ", err, re.M), err
    assert f"{alerts}:4: " in err and f"{alerts}:5: " in err
    assert f"{alerts}:1:" not in err and f"{alerts}:3:" not in err
    assert len(err.splitlines()) == 3  # one line per bad line
    assert run.dump() == before


def test_import_skip_invalid(run: Cli) -> None:
    alerts = run.tmp / "alerts.ndjson"
    alerts.write_text(ndjson(GOOD[0], "[1, 2]", GOOD[1], {"title": "t", "severity": "P1",
                                                           "extra": 1}), encoding="utf-8")
    out = run.ok("import", "--skip-invalid", str(alerts))
    assert "2 new" in out.stdout and "2 skipped" in out.stdout
    assert f"{alerts}:2:" in out.stderr and f"{alerts}:4:" in out.stderr
    assert sorted(r["title"] for r in run.incidents()) == sorted([GOOD[0]["title"],
                                                                  GOOD[1]["title"]])


def test_import_from_stdin(run: Cli) -> None:
    out = run.ok("import", "-", input=ndjson(*GOOD))
    assert "3 new" in out.stdout
    before = run.dump()
    err = run.refused("import", "-", input=b'{"title": "a", "severity": "P1"}\n\xff\xfe\n')
    assert "-:2:" in err and "UTF-8" in err
    err = run.refused("import", "-", input=ndjson('{"title": "a", "severity": "P1", '
                                                  '"description": NaN}'))
    assert "-:1:" in err
    err = run.refused("import", "-", input="[" * 100_000 + "\n")
    assert "-:1:" in err
    assert run.dump() == before
    assert "0 new" in run.ok("import", "-", input="").stdout
    run.refused("import", str(run.tmp / "does-not-exist.ndjson"))


def test_import_opened_at_problems(run: Cli) -> None:
    run.open()
    before = run.dump()
    for opened in ("yesterday", "2999-01-01T00:00:00Z", 17, "0001-01-01T00:00:00Z",
                   "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        err = run.refused("import", "-", input=ndjson({"title": "t", "severity": "P1",
                                                       "opened_at": opened}))
        assert "-:1:" in err and "opened_at" in err
    assert run.dump() == before


# --- export -----------------------------------------------------------------------------------

def test_export_json(varied: Cli) -> None:
    rows = json.loads(varied.ok("export").stdout)
    assert sorted(r["id"] for r in rows) == [1, 2, 3, 4]
    assert len(json.loads(varied.ok("export", "--open").stdout)) == 3
    one = json.loads(varied.ok("export", "3", "--format", "json").stdout)
    assert one["id"] == 3 and one["handoffs"] and one["events"]
    varied.refused("export", "42")


def test_export_csv_neutralises_formulas(run: Cli) -> None:
    run.open("P1", "=HYPERLINK(\"http://evil\",\"x\")", "--service", "+cmd|' /C calc'!A0",
             "--external-ref", "-2+3")
    i = run.open("P2", "@SUM(A1:A9)")
    run.ok("assign", str(i), "=1+1")
    run.open("P3", "Plain title, with comma \"and quotes\"", "--service", "db")
    text = run.ok("export", "--format", "csv").stdout
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    assert header[:3] == ["id", "ref", "title"] and len(body) == 3
    for row in body:
        assert len(row) == len(header)
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@")), cell
    by_title = {row[header.index("title")]: row for row in body}
    assert "'=HYPERLINK(\"http://evil\",\"x\")" in by_title
    assert "'@SUM(A1:A9)" in by_title
    assert "Plain title, with comma \"and quotes\"" in by_title  # plain text untouched
    assert by_title["'@SUM(A1:A9)"][header.index("assignee")] == "'=1+1"
    single = list(csv.reader(io.StringIO(run.ok("export", "1", "--format", "csv").stdout)))
    assert len(single) == 2 and single[1][header.index("service")].startswith("'+")


def test_export_markdown(varied: Cli) -> None:
    varied.open("P2", "a|b | c")
    table = varied.ok("export", "--format", "md").stdout
    row = next(line for line in table.splitlines() if "INC-5" in line)
    assert "a\\|b \\| c" in row
    assert len(re.findall(r"(?<!\\)\|", row)) == 8  # the title's pipes do not add cells
    doc = varied.ok("export", "3", "--format", "md").stdout
    assert doc.startswith("# INC-3: Third\n")
    for section in ("## Handoffs", "## Timeline", "## Resolution checklist"):
        assert f"\n{section}\n" in doc
    assert "L1 → L2" in doc
    labels = [doc.index(f"**{label}**") for label in (
        "Issue summary", "Actions taken", "Current status", "Logs and evidence",
        "Business impact")]
    assert labels == sorted(labels)  # handoff fields in the policy's order
    closed = varied.ok("export", "4", "--format", "md").stdout
    resolution = closed[closed.index("## Resolution checklist"):]  # triage is listed too
    assert "- [x] " in resolution and "- [ ] " not in resolution


# --- policy -----------------------------------------------------------------------------------

def test_policy_check_shipped(run: Cli) -> None:
    assert "ok" in run.ok("policy", "check").stdout
    assert "ok" in run.ok("policy", "check", str(POLICY)).stdout
    assert "ok" in run.ok("--policy", str(POLICY), "policy", "check").stdout


def test_policy_check_broken(run: Cli) -> None:
    text = POLICY.read_text(encoding="utf-8")
    broken = run.tmp / "broken.yaml"
    assert "escalate_after: 30m" in text
    broken.write_text(text.replace("escalate_after: 30m", 'escalate_after: "2 hours"', 1),
                      encoding="utf-8")
    err = run.refused("policy", "check", str(broken))
    assert re.search(r"^sladeck: error: .*broken\.yaml:\d+: .*escalate_after", err, re.M), err
    # refused before anything starts, whatever the command
    err = run.refused("--policy", str(broken), "list")
    assert "broken.yaml:" in err
    assert not run.db.exists()
    err = run.refused("list", env={"SLADECK_POLICY": str(broken)})
    assert "broken.yaml:" in err
    dup = run.tmp / "dup.yaml"
    dup.write_text(text.replace("warn_at:", "owner: again\nwarn_at:", 1), encoding="utf-8")
    assert re.search(r"dup\.yaml:\d+: ", run.refused("policy", "check", str(dup)))
    assert "none.yaml" in run.refused("policy", "check", str(run.tmp / "none.yaml"))


def test_policy_check_warns_of_a_trigger_that_names_a_time_but_never_waits(run: Cli) -> None:
    """"Issue not resolved within 2 hours" without `after` would be accepted one second
    after opening (issue 12): the check says where, and the `after` to add."""
    text = POLICY.read_text(encoding="utf-8")
    timed = "{key: not_resolved_2h, label: Issue not resolved within 2 hours, after: 2h}"
    assert timed in text
    loose = run.tmp / "loose.yaml"
    loose.write_text(text.replace(timed, timed.replace(", after: 2h", "")), encoding="utf-8")
    out = run.ok("policy", "check", str(loose))
    line = text[:text.index(timed)].count("\n") + 1
    assert f'loose.yaml:{line}: escalation.L3.triggers[0]: "Issue not resolved within 2 hours" ' \
        "names a time but has no `after`, so it can be chosen at once; add `after: 2h`" in out.stderr
    assert "triggers" not in run.ok("policy", "check", str(POLICY)).stderr  # the shipped one waits


def test_policy_apply_rebases_open_incidents(run: Cli) -> None:
    old = run.open("P2", "Under the old policy")
    closed = run.open("P3", "Closed")
    run.ok("resolve", str(closed), "--summary", "s", "--check", "all")
    text = POLICY.read_text(encoding="utf-8")
    newer = run.tmp / "newer.yaml"
    newer.write_text(text.replace("escalate_after: 30m", "escalate_after: 45m", 1),
                     encoding="utf-8")
    level_due = lambda i, *p: next(  # noqa: E731
        c["due_at"] for c in run.json(*p, "show", str(i))["clocks"] if c["kind"] == "level")
    due_before = level_due(old)
    new = run.open("P2", "Under the new policy", "--policy", str(newer))
    # an open incident keeps the policy it was opened under
    assert level_due(old, "--policy", str(newer)) == due_before
    out = run.ok("--policy", str(newer), "policy", "apply")
    assert "1 incident(s) re-based" in out.stdout and f"INC-{old}" in out.stdout
    assert level_due(old) != due_before
    assert run.show(old)["events"][-1]["kind"] == "policy_applied"
    assert run.show(new)["events"][-1]["kind"] == "opened"
    assert run.show(closed)["events"][-1]["kind"] == "closed"
    assert "0 incident(s)" in run.ok("--policy", str(newer), "policy", "apply").stdout
    run.ok("verify")


# --- verify and backup ------------------------------------------------------------------------

@pytest.mark.sqlite_only  # the SQLite file itself
def test_verify_healthy_and_tampered(varied: Cli) -> None:
    assert "ok" in varied.ok("verify").stdout
    con = sqlite3.connect(varied.db)
    with pytest.raises(sqlite3.DatabaseError):
        con.execute("UPDATE events SET account = 'mallory' WHERE id = 2")
    con.execute("DROP TRIGGER events_no_update")
    con.execute("UPDATE events SET payload = json_set(payload, '$.level', 'L3') WHERE id = 2")
    con.commit()
    con.close()
    err = varied.refused("verify")
    assert "event 2" in err
    assert all(line.startswith("sladeck: error: ") for line in err.splitlines())


@pytest.mark.sqlite_only  # the SQLite file itself
def test_verify_detects_a_rewritten_row(varied: Cli) -> None:
    con = sqlite3.connect(varied.db)
    con.execute("UPDATE incidents SET state = 'closed' WHERE id = 1")
    con.commit()
    con.close()
    assert "INC-1" in varied.refused("verify")


@pytest.mark.sqlite_only  # the SQLite file itself
def test_backup(varied: Cli) -> None:
    dest = varied.tmp / "copy.db"
    assert str(dest) in varied.ok("backup", str(dest)).stdout
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    varied.ok("verify", "--db", str(dest))
    assert varied.json("list", "--all", "--db", str(dest)) == varied.incidents()
    assert "exists" in varied.refused("backup", str(dest))
    team = varied.tmp / "team"
    team.mkdir()
    os.chmod(team, 0o2770)  # a group-shared folder, as the README sets it up
    varied.ok("backup", str(team / "copy.db"))
    assert stat.S_IMODE((team / "copy.db").stat().st_mode) == 0o660


# --- demo -------------------------------------------------------------------------------------

def test_demo_covers_everything(run: Cli) -> None:
    run.ok("demo")
    rows = run.incidents()
    assert 20 <= len(rows) <= 40
    assert {r["severity"] for r in rows} == set(SEVERITIES)
    assert {r["level"] for r in rows} == set(LEVELS)
    assert {r["state"] for r in rows} == set(STATES)
    assert {r["risk"] for r in rows} == set(RISKS)
    for row in rows:
        assert {c["kind"] for c in row["clocks"]} <= set(CLOCK_KINDS)
        assert {c["status"] for c in row["clocks"]} <= set(CLOCK_STATUSES)
    run.ok("verify")
    again = run.ok("demo")  # the README's first command, run a second time
    assert "nothing added" in again.stdout
    assert len(run.incidents()) == len(rows)


# --- usage errors and refusals ------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ("ack", "abc"),
    ("ack",),
    ("ack", "1", "2"),
    ("list", "--bogus"),
    ("no-such-command",),
    ("open", "--title", "x"),
    ("open", "--severity"),
    ("list", "--state", "sleeping"),
    ("export", "--format", "xml"),
    ("escalate", "1", "--to", "L2"),
    ("resolve", "1", "--summary", "x"),
    ("reopen", "1"),
    ("note", "1"),
    ("demo", "--count", "0"),
    ("follow-up", "add", "1"),
    ("policy", "frobnicate"),
    ("show", "INC-"),
    ("ack", "99999999999999999999999"),
    ("export", "INC-99999999999999999999"),
    ("follow-up", "done", "99999999999999999999999"),
])
def test_usage_errors(run: Cli, args: tuple[str, ...]) -> None:
    out = run(*args)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert out.stdout == ""
    [line] = out.stderr.splitlines()
    assert line.startswith("sladeck: error: ")


@pytest.mark.parametrize("args", [
    ("ack", "999"), ("ack", "INC-999"), ("note", "999", "hello"), ("assign", "999", "bob"),
    ("severity", "999", "P0", "--reason", "r"), ("resolve", "999", "--summary", "s",
                                                 "--check", "all"),
    ("reopen", "999", "--reason", "r"), ("show", "999"), ("export", "999"),
    ("escalate", "999", "--to", "L2", "--trigger", "performance", "--field", "a=b"),
    ("review", "999", "--field", "a=b"),
])
def test_unknown_incident(run: Cli, args: tuple[str, ...]) -> None:
    [line] = run.refused(*args).splitlines()
    assert line.startswith("sladeck: error: ") and "INC-999" in line


def test_help_and_version(run: Cli) -> None:
    assert "escalate" in run.ok("--help").stdout
    assert "--handoff-file" in run.ok("escalate", "--help").stdout
    assert run.ok("--version").stdout.startswith("sladeck")


# --- identity ---------------------------------------------------------------------------------

@pytest.mark.sqlite_only  # on a server the account is the role: test_postgres.py
def test_actor_is_the_real_account(run: Cli) -> None:
    liar = {"USER": "mallory", "LOGNAME": "mallory", "USERNAME": "mallory"}
    i = run.open()
    run.ok("note", str(i), "by env liar", env=liar)
    run.ok("note", str(i), "with a name", "--as", "Alice", env=liar)
    run.ok("note", str(i), "with env name", env=liar | {"SLADECK_USER": "Alice"})
    run.ok("--as", "Bob", "ack", str(i))
    events = run.show(i)["events"]
    assert [e["account"] for e in events] == [ME] * 5
    assert [e["name"] for e in events] == [None, None, "Alice", "Alice", "Bob"]
    assert run.show(i)["acknowledged_by"] in ("Bob", f"Bob ({ME})", ME)


# --- hostile text -----------------------------------------------------------------------------

HOSTILE = "A\x1b]2;PWNED\x07B\x9b2J\u202eC"
MARKUP = "[@click=app.quit]quit[/] [bold red]x"


def assert_inert(out: subprocess.CompletedProcess[str]) -> None:
    raw: bytes = out.raw_stdout  # type: ignore[attr-defined]
    assert b"\x1b" not in raw and b"\x07" not in raw
    assert not C1.search(out.stdout), out.stdout
    assert "\u202e" not in out.stdout


def test_hostile_text_is_stored_as_given_and_shown_inert(run: Cli) -> None:
    i = run.open("P1", HOSTILE, "--service", "svc\x1b[31m", "--description", "d\x1b[2J\nx")
    j = run.open("P2", MARKUP)
    run.ok("note", str(i), "note \x1b]52;c;ZXZpbA==\x07 " + MARKUP)
    run.ok("assign", str(i), "eve\x1b[8m")
    escalated = run.ok("escalate", str(i), "--to", "L2", "--trigger", "other", "--reason",
                       "r\x1b[A", "--assign", "eve\x1b[8m",  # the owner moves with it
                       *fields(*L2_FIELDS, value="\x1b[1;1H\x07"))
    assert_inert(escalated)
    shown = run.show(i)
    assert shown["title"] == HOSTILE
    assert shown["service"] == "svc\x1b[31m"
    assert shown["description"] == "d\x1b[2J\nx"
    assert shown["assignee"] == "eve\x1b[8m"
    assert run.show(j)["title"] == MARKUP
    assert any(e["payload"].get("text") == "note \x1b]52;c;ZXZpbA==\x07 " + MARKUP
               for e in shown["events"])
    # the JSON output itself carries no raw control byte
    assert b"\x1b" not in run.ok("show", str(i), "--json").raw_stdout  # type: ignore
    for args in (("list",), ("list", "--all"), ("show", str(i)), ("show", str(j)),
                 ("export", "--format", "md"), ("export", str(i), "--format", "md"),
                 ("export", "--format", "csv"), ("list", "--json"), ("export",)):
        assert_inert(run.ok(*args))
    # an error message naming hostile input is inert too
    err = run("ack", "\x1b[2J").stderr
    assert "\x1b" not in err and "\x07" not in err


# --- the database file ------------------------------------------------------------------------

@pytest.mark.sqlite_only  # the SQLite file itself
def test_db_in_a_new_folder_is_private(run: Cli) -> None:
    db = run.tmp / "new" / "deeper" / "desk.db"
    assert run.ok("--db", str(db), "open", "--severity", "P1", "--title", "t").stdout == \
        "INC-1\n"
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert not db.parent.stat().st_mode & stat.S_IWOTH
    for extra in db.parent.iterdir():
        assert not extra.stat().st_mode & (stat.S_IWOTH | stat.S_IROTH), extra
    assert len(run.json("list", "--db", str(db))) == 1
    assert not run.db.exists()  # --db wins over SLADECK_DB


@pytest.mark.sqlite_only  # the SQLite file itself
def test_world_writable_db_is_refused(run: Cli) -> None:
    run.open()
    os.chmod(run.db, 0o666)
    assert "chmod" in run.refused("list")


# --- properties (in-process) ------------------------------------------------------------------

def call(*argv: str) -> tuple[int, str, str]:
    """`sladeck.cli.main(argv)` in this process, held to the same output rules as the command."""
    code, out, err = call_cli(*argv)
    check_output(code, out, err)
    return code, out, err


@pytest.fixture(scope="module")
def prop_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("props")
    saved = {k: os.environ.get(k) for k in ("XDG_STATE_HOME", "XDG_DATA_HOME")}
    os.environ["XDG_STATE_HOME"] = str(folder / "state")
    os.environ["XDG_DATA_HOME"] = str(folder / "data")
    yield folder
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids,
                                                              max_size=4),
    max_leaves=12)
valid_alert = st.fixed_dictionaries(
    {"title": st.text(min_size=1, max_size=60), "severity": st.sampled_from(SEVERITIES)},
    optional={"description": st.text(max_size=60), "service": st.text(max_size=30),
              "dedup_key": st.sampled_from(["a", "b", "c", "", " "]) | st.text(max_size=10),
              "external_ref": st.none() | st.text(max_size=20),
              "opened_at": st.sampled_from([
                  "2026-01-01T00:00:00Z", "2020-02-29T12:00:00+02:00", "2026-03-01",
                  "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00",
                  "9999-12-31T23:59:59-01:00", "nonsense", "2999-01-01T00:00:00Z"])})
alert_like = st.dictionaries(
    st.sampled_from(["title", "severity", "description", "service", "dedup_key",
                     "external_ref", "opened_at"]),
    json_values | st.sampled_from(SEVERITIES), max_size=7)
special_lines = st.sampled_from([
    b'{"title": "x", "severity": "P1", "description": NaN}',
    b'{"title": "x", "severity": "P1", "service": Infinity}',
    b'{"title": "x", "severity": "P1", "description": 1e999}',
    b'{"title": "x", "severity": ' + b"9" * 5000 + b"}",
    b"[" * 50_000, b'{"a":' * 5000 + b"1" + b"}" * 5000,
    b'{"title": "' + b"t" * 1001 + b'", "severity": "P1"}',
    b'{"title": "x", "severity": "P1", "service": "' + b"s" * 1001 + b'"}',
    b'{"title": "x", "severity": "P1", "dedup_key": "' + b"k" * 1001 + b'"}',
    b'{"title": "\\ud800", "severity": "P1"}',
    b'{"title": "x", "severity": "P1", "title": "dup"}',
    b'\xef\xbb\xbf{"title": "bom", "severity": "P1"}',
    b"\xff\xfe\x00", b"\xc3\x28", b"\x00", b"\r", b"{}", b"null", b'"text"',
])


def encode(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


ndjson_line = st.one_of(
    valid_alert.map(encode), valid_alert.map(encode), alert_like.map(encode),
    json_values.map(encode), st.binary(max_size=40),
    st.binary(max_size=20).map(lambda b: b"\x80" + b), special_lines)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(lines=st.lists(ndjson_line, min_size=1, max_size=6), skip=st.booleans())
def test_import_never_crashes_and_refusal_writes_nothing(prop_dir: Path, lines: list[bytes],
                                                         skip: bool) -> None:
    db = prop_dir / "import.db"
    if not db.exists():
        call("--db", str(db), "open", "--severity", "P2", "--title", "seed",
             "--dedup-key", "a")
    data = prop_dir / "alerts.ndjson"
    data.write_bytes(b"\n".join(lines))
    before = dump(db)
    code, out, err = call("--db", str(db), "import", *(["--skip-invalid"] if skip else []),
                          str(data))
    assert code in (0, 1)
    if skip:
        assert code == 0, err  # --skip-invalid writes the good lines, reports the rest
    if code == 1:
        assert dump(db) == before
        assert all(line.startswith("sladeck: error: ") for line in err.splitlines())
        assert all(re.match(rf"sladeck: error: {re.escape(str(data))}:\d+: ", line)
                   for line in err.splitlines()), err
    else:
        assert out.startswith("imported ")
    assert call("--db", str(db), "verify")[0] == 0


def _mutations() -> st.SearchStrategy[tuple[str, int, str]]:
    junk = st.sampled_from(["", "5 minutes", "2h30", "-1h", "0m", "17:30", "off", "no", "yes",
                            "~", "null", "[]", "{}", "L9", "P7", "!!python/object:os.system",
                            "&a", "*a", "'", "\"", ":", "- x", "\t", "1e9", "999999999999h",
                            "25%", "125%", "x: y: z"])
    return st.tuples(st.sampled_from(["delete", "duplicate", "replace_value", "insert",
                                      "truncate", "indent", "bytes"]),
                     st.integers(min_value=0, max_value=10_000),
                     junk | st.text(max_size=12))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations=st.lists(_mutations(), min_size=1, max_size=3))
def test_policy_mutations_never_crash(prop_dir: Path,
                                      mutations: list[tuple[str, int, str]]) -> None:
    lines = POLICY.read_bytes().split(b"\n")
    for kind, at, junk in mutations:
        n = at % len(lines)
        jb = junk.encode("utf-8", "surrogatepass")
        if kind == "delete":
            del lines[n]
        elif kind == "duplicate":
            lines.insert(n, lines[n])
        elif kind == "replace_value" and b":" in lines[n]:
            head = lines[n].split(b":", 1)[0]
            lines[n] = head + b": " + jb
        elif kind == "insert":
            lines.insert(n, jb)
        elif kind == "truncate":
            lines = lines[:n]
        elif kind == "indent":
            lines[n] = b"  " + lines[n]
        elif kind == "bytes":
            lines[n] = lines[n][: len(lines[n]) // 2] + b"\xff\x00" + jb
        if not lines:
            lines = [b""]
    path = prop_dir / "mutant.yaml"
    path.write_bytes(b"\n".join(lines))
    code, out, err = call("policy", "check", str(path))
    assert code in (0, 1)
    if code == 1:
        try:
            path.read_bytes().decode("utf-8")
            where = re.compile(rf"sladeck: error: {re.escape(str(path))}:\d+: ")
        except UnicodeDecodeError:
            where = re.compile(rf"sladeck: error: {re.escape(str(path))}(:\d+)?: ")
        assert err and all(where.match(line) for line in err.splitlines()), err
    else:
        assert "ok" in out


# -- list --json's fast time formatting -----------------------------------------------------

@given(st.datetimes(timezones=st.sampled_from([
    UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=11))])))
@settings(max_examples=300)
def test_fast_json_time_equals_json_time(at) -> None:
    from sladeck.domain.model import json_time
    from sladeck.report import _json_time

    try:
        expected = json_time(at)
    except OverflowError:  # outside what UTC can show (year 1 or 9999 in a zone)
        return
    assert _json_time(at) == expected
    assert _json_time(None) is None


def test_list_json_leaves_the_collector_as_it_found_it(tmp_path: Path) -> None:
    import gc

    db = str(tmp_path / "gc.db")
    assert call("--db", db, "open", "--severity", "P2", "--title", "Disk full")[0] == 0
    code, out, _ = call("--db", db, "list", "--json")
    assert code == 0 and json.loads(out)[0]["title"] == "Disk full"
    assert gc.isenabled()


def test_commands_run_with_the_cycle_collector_on(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The `sladeck` command starts with the collector off (launch.py); a command (an
    import may run for minutes) turns it back on before it starts."""
    import gc

    import sladeck.cli
    from sladeck import launch
    from sladeck.errors import SladeckError

    seen: list[bool] = []

    def session() -> None:
        seen.append(gc.isenabled())
        raise SladeckError("seen")

    monkeypatch.setattr(sladeck.cli, "session", session)
    monkeypatch.setattr(sys, "argv", ["sladeck", "--db", str(tmp_path / "x.db"), "ack", "1"])
    try:
        with pytest.raises(SystemExit):
            launch.main()
    finally:
        enabled = gc.isenabled()
        gc.enable()
    assert seen == [True] and enabled


_DASHBOARD_WORDS = ["--db", "--policy", "--as", "--db=", "--as=", "--policy=x.yaml", "a.db",
                    "", "--", "-h", "--help", "--version", "list", "--db=b.db", "--ad", "--as=x",
                    "Tess", "-"]


@settings(max_examples=300, deadline=None)
@given(args=st.lists(st.sampled_from(_DASHBOARD_WORDS), max_size=5),
       env=st.dictionaries(st.sampled_from(["SLADECK_DB", "SLADECK_POLICY", "SLADECK_USER"]),
                           st.sampled_from(["", "env.db", "env.yaml", "Ann"])))
def test_the_quick_dashboard_start_reads_the_line_as_click_does(args: list[str],
                                                                env: dict[str, str]) -> None:
    """`sladeck` with only --db/--policy/--as opens the dashboard without click
    (launch.py); whatever it reads, click reads the same, and anything else is click's."""
    import sladeck.cli
    from sladeck.launch import dashboard_settings
    from sladeck.session import Settings

    quick = dashboard_settings(args, env)
    if quick is None:
        return  # click's own line: nothing to compare (and running it could write files)
    opened: list[Settings] = []
    saved = {k: os.environ.pop(k, None) for k in ("SLADECK_DB", "SLADECK_POLICY", "SLADECK_USER")}
    real, sladeck.cli.open_dashboard = sladeck.cli.open_dashboard, opened.append
    try:
        os.environ.update(env)
        with contextlib.suppress(Exception):  # usage errors and the like
            sladeck.cli.cli.main(args=list(args), prog_name="sladeck", standalone_mode=False)
    finally:
        sladeck.cli.open_dashboard = real
        for k, v in saved.items():
            os.environ.pop(k, None)
            if v is not None:
                os.environ[k] = v
    assert opened == [quick]


def test_the_usual_dashboard_lines_take_the_quick_start() -> None:
    from sladeck.launch import dashboard_settings
    from sladeck.session import Settings

    assert dashboard_settings([], {}) == Settings()
    assert dashboard_settings(["--db", "a.db"], {"SLADECK_USER": "Ann"}) == \
        Settings(db="a.db", name="Ann")
    assert dashboard_settings(["--db=a.db", "--as", "Tess", "--policy", "p.yaml"], {}) == \
        Settings(db="a.db", policy="p.yaml", name="Tess")
    assert dashboard_settings(["list"], {}) is None
    assert dashboard_settings(["--db"], {}) is None  # click says what is missing


def test_the_dashboard_starts_without_click(tmp_path: Path) -> None:
    """The quick start really skips click (1.3 MiB and ~8 ms of every dashboard)."""
    db = tmp_path / "q.db"
    code = ("import sys, sladeck.session as s\n"
            "s.open_dashboard = lambda settings: print(sorted(\n"
            "    {'click', 'textual'} & set(sys.modules)), settings.db)\n"
            "sys.argv = ['sladeck', '--db', sys.argv[1]]\n"
            "from sladeck.launch import main\n"
            "main()\n")
    out = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]", str(db)]


@pytest.mark.sqlite_only  # the SQLite file itself
@pytest.mark.parametrize("command", [(), ("list",)])
def test_a_database_folder_that_cannot_be_made_is_one_line(run: Cli, command: tuple[str, ...]
                                                            ) -> None:
    """The dashboard's quick start and a command alike: one line naming the folder."""
    blocker = run.tmp / "blocker"
    blocker.write_text("a file where the folder would go")
    db = blocker / "desk" / "x.db"
    if command:
        [line] = run.refused("--db", str(db), *command).splitlines()
    else:  # the dashboard, on a terminal (on none it refuses before opening anything)
        from test_hostile import run_on_pty

        env = run.env | {"SLADECK_DB": str(db), "TERM": "xterm-256color"}
        out, _alive, status = run_on_pty(env, [(b"", 5.0)])
        assert status == 1
        [line] = out.decode("utf-8", "replace").replace("\r", "").strip().splitlines()
    assert line.startswith("sladeck: error: cannot create the folder ") and "blocker" in line
    assert "unexpected" not in line


def test_show_tells_times_in_the_viewers_zone(varied: Cli) -> None:
    """SPEC §3: stored in UTC, shown in the viewer's local time zone (JSON stays UTC)."""
    from datetime import datetime, timedelta

    opened = datetime.fromisoformat(varied.show(3)["opened_at"].replace("Z", "+00:00"))
    text = varied.ok("show", "INC-3", env={"TZ": "Asia/Kolkata"}).stdout
    local = (opened + timedelta(hours=5, minutes=30)).strftime("%Y-%m-%d %H:%M:%S")
    assert f"| Opened | {local} IST +05:30 by " in text
    timeline = text.split("## Timeline")[1].split("##")[0]
    assert "| Time | Who | What |" in timeline and " IST +05:30 | " in timeline
    assert "UTC" not in text
