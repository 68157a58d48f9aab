"""Hostile text (SPEC §9): stored as given or refused in one line; inert wherever shown.

The dashboard test runs the real `sladeck` on a pseudo-terminal and reads every byte
it writes: Textual's own escape sequences are allowed, the payloads in user text are
not, and their escaped, visible form (`\\x1b]2;PWNED`) must be what appears instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import fcntl
import io
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import T0
from conftest import call_cli as call
from sladeck.clock import FixedClock
from sladeck.domain import actions
from sladeck.domain.actions import Desk
from sladeck.domain.model import Actor
from sladeck.policy import Policy
from sladeck.report import md, spreadsheet_safe
from sladeck.store import Store
from sladeck.text import one_line, visible

SLADECK = Path(sys.executable).with_name("sladeck")
L2_FIELDS = ("issue_summary", "actions_taken", "current_status", "logs_and_evidence",
             "business_impact")

# Characters no user text may put on a terminal: C0 (but newline), DEL, C1, bidi
# controls, invisible format characters, lone surrogates.
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\xad\u061c\u180e\u200b-\u200f\u2028-\u202e"
                    "\u2060-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff\U000e0000-\U000e007f]")

# The payloads, and the form each must be shown in.
PAYLOADS = {
    "osc52": ("\x1b]52;c;cHduZWQ=\x07", "\\x1b]52;c;cHduZWQ=\\x07"),   # clipboard write
    "osc0": ("\x1b]0;PWNED0\x07", "\\x1b]0;PWNED0\\x07"),             # window title
    "osc2": ("\x1b]2;PWNED\x07", "\\x1b]2;PWNED\\x07"),               # tmux pane title
    "clear": ("\x1b[2J\x1b[Hwipe", "\\x1b[2J\\x1b[Hwipe"),
    "osc8": ("\x1b]8;;https://evil.example/\x1b\\here", "\\x1b]8;;https://evil.example/"),
    "c1": ("\x9b31mC1\x85NEL\x90DCS", "\\x9b31mC1\\x85NEL\\x90DCS"),
    "bidi": ("\u202eevil\u202c", "\\u202eevil\\u202c"),
    "bell": ("ding\x07\x07", "ding\\x07\\x07"),
    "nul": ("nul\x00here", "nul\\x00here"),
    "click": ("[@click=app.quit]quit[/]", "[@click=app.quit]quit[/]"),
    "link": ("[link=https://evil.example/]x[/link]", "[link=https://evil.example/]x[/link]"),
}
# Byte patterns that must never reach the terminal from the dashboard.
FORBIDDEN = [
    b"\x1b]52;", b"\x1b]0;PWNED0", b"\x1b]2;PWNED", b"\x1b[2J\x1b[Hwipe",
    b"\x1b]8;;https://evil", b"\xe2\x80\xae", b"\xe2\x80\xac", b"ding\x07", b"nul\x00",
    b"\x1b[31m",
]
C1_BYTES = re.compile(rb"\xc2[\x80-\x9f]")
OSC8_EVIL = re.compile(rb"\x1b\]8;[^\x1b\x07]*evil")


def env_for(tmp: Path, db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLADECK_")}
    env.update({"SLADECK_DB": str(db), "TZ": "UTC", "TERM": "xterm-256color",
                "XDG_DATA_HOME": str(tmp / "data"), "XDG_STATE_HOME": str(tmp / "state"),
                "PYTHONIOENCODING": "utf-8", "TEXTUAL_ANIMATIONS": "none"})
    return env


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sladeck: error: "), err
    assert not UNSAFE.search(lines[0]), lines[0]
    return lines[0]


# -- the sanitiser ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_each_payload_is_shown_escaped(name: str) -> None:
    raw, shown = PAYLOADS[name]
    assert shown in visible(raw)
    assert not UNSAFE.search(visible(raw))
    assert not UNSAFE.search(one_line(raw + "\n" + raw, 20))


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(codec=None, exclude_categories=()), max_size=60))
def test_visible_leaves_nothing_a_terminal_obeys(text: str) -> None:
    shown = visible(text)
    assert not UNSAFE.search(shown)
    assert "\n" not in shown and "\t" not in shown
    multi = visible(text, multiline=True)
    assert not UNSAFE.search(multi)
    if not UNSAFE.search(text) and "\n" not in text:
        assert shown == text  # ordinary text, accents, CJK and emoji are left alone


# -- the command line: stored as given, or refused in one line -----------------------------

@dataclass
class Desks:
    tmp: Path
    db: Path

    def run(self, *args: str | bytes, input: bytes | None = None
            ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([str(SLADECK), *args], input=input, capture_output=True,
                              env=env_for(self.tmp, self.db), timeout=60, check=False)


@pytest.fixture
def desks(tmp_path: Path) -> Desks:
    return Desks(tmp_path, tmp_path / "desk.db")


def show(desks: Desks, incident: int) -> dict[str, Any]:
    out = desks.run("show", str(incident), "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def assert_inert_bytes(data: bytes) -> None:
    text = data.decode("utf-8")  # every output is valid UTF-8
    assert not UNSAFE.search(text), [m.group() for m in UNSAFE.finditer(text)][:5]


def test_hostile_import_lines_are_stored_as_given_or_refused_in_one_line(desks: Desks) -> None:
    good = [{"title": f"{name}: {raw}", "severity": "P3", "service": raw,
             "description": f"line1 {raw}\nline2 {raw}", "external_ref": raw,
             "dedup_key": f"k-{name}"} for name, (raw, _) in PAYLOADS.items()]
    data = b"\n".join(json.dumps(g).encode() for g in good)
    out = desks.run("import", "-", input=data)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"imported {len(good)} new, 0 repeated\n".encode()
    for number, record in enumerate(good, start=1):
        got = show(desks, number)
        for key in ("title", "service", "description", "external_ref", "dedup_key"):
            assert got[key] == record[key]
    for args in (("list",), ("list", "--all"), ("show", "1"), ("export", "--format", "md"),
                 ("export", "--format", "csv"), ("export", "3", "--format", "md")):
        result = desks.run(*args)
        assert result.returncode == 0
        assert_inert_bytes(result.stdout)
    listing = desks.run("list").stdout.decode()
    for _raw, shown in PAYLOADS.values():
        assert shown[:18] in listing

    bad = {
        b'{"title": "nan", "severity": "P1", "description": NaN}': "NaN",
        b'{"title": "inf", "severity": "P1", "service": Infinity}': "Infinity",
        b'{"title": "-inf", "severity": "P1", "service": -Infinity}': "Infinity",
        b'{"title": ' + b"[" * 100_000 + b"]" * 100_000 + b', "severity": "P1"}': "nested",
        b'{"title": "' + b"x" * 200_001 + b'", "severity": "P1"}': "limit",
        b'{"title": "t", "severity": "P1", "description": "' + b"y" * 200_001 + b'"}':
            "limit",
        b'{"title": "t", "severity": "P1", "description": "' + b"y" * 1_048_576 + b'"}':
            "line longer than 1 MiB",
        b'{"title": "bad \xff\xfe utf8", "severity": "P1"}': "UTF-8",
        b'{"title": "\\ud800 lone", "severity": "P1"}': "UTF-8",
        b'{"title": "\x1b]2;RAW\x07", "severity": "P1"}': "JSON",  # raw control in a string
    }
    before = desks.run("export").stdout
    for line, reason in bad.items():
        result = desks.run("import", "-", input=line)
        assert result.returncode == 1, (line[:60], result.stdout)
        err = one_error_line(result.stderr.decode("utf-8"))
        assert err.startswith("sladeck: error: -:1: ") and reason in err, err
        assert len(err) < 400
    assert desks.run("export").stdout == before  # nothing written


def test_hostile_arguments_are_stored_as_given_or_refused_in_one_line(desks: Desks) -> None:
    raw = "".join(r for r, _ in PAYLOADS.values() if "\x00" not in r)  # argv has no NUL
    assert desks.run("open", "--severity", "P1", "--title", raw[:1000]).returncode == 0
    named = desks.run("--as", "\x1b]2;NAME\x07", "note", "1", raw)  # a name is plain text
    assert named.returncode == 1 and b"U+001B" in named.stderr
    assert desks.run("--as", "Ann", "note", "1", raw).returncode == 0
    assert desks.run("assign", "1", "\x1b]2;ASSIGNEE\x07").returncode == 0
    handoff = desks.tmp / "handoff.yaml"
    handoff.write_text("".join(f'{k}: "\\e]52;c;eA==\\a {k} \\u202e"\n' for k in L2_FIELDS))
    out = desks.run("escalate", "1", "--to", "L2", "--trigger", "other", "--reason",
                    "\x1b[2J", "--handoff-file", str(handoff),
                    "--assign", "\x1b]2;ASSIGNEE\x07")  # the owner moves with it
    assert out.returncode == 0, out.stderr
    assert_inert_bytes(out.stdout)
    got = show(desks, 1)
    assert got["title"] == raw[:1000] and got["assignee"] == "\x1b]2;ASSIGNEE\x07"
    note = next(e for e in got["events"] if e["kind"] == "note")
    assert note["payload"]["text"] == raw and note["name"] == "Ann"
    assert got["handoffs"][0]["fields"]["issue_summary"] == \
        "\x1b]52;c;eA==\x07 issue_summary \u202e"
    for args in (("show", "1"), ("export", "1", "--format", "md"), ("list",),
                 ("export", "--format", "csv")):
        assert_inert_bytes(desks.run(*args).stdout)
    shown = desks.run("show", "1").stdout.decode()
    assert "\\\\x1b\\]2;ASSIGNEE\\\\x07" in shown or "\\x1b]2;ASSIGNEE\\x07" in shown

    refusals = [
        (("note", "1", b"bad \xff\xfe bytes"), "UTF-8"),
        (("open", "--severity", "P1", "--title", b"\xc3\x28"), "UTF-8"),
        (("open", "--severity", "P1", "--title", "x" * 100_000), "limit"),
        (("open", "--severity", "P1", "--title", " \t "), "blank"),
        (("ack", "\x1b]2;PWNED\x07"), "not an incident id"),
    ]
    raw_yaml = desks.tmp / "raw.yaml"
    raw_yaml.write_bytes(b'issue_summary: "\x1b]52;c;eA==\x07"\n')
    refusals.append((("escalate", "1", "--to", "L3", "--trigger", "other", "--reason", "r",
                      "--handoff-file", str(raw_yaml)), "YAML"))
    deep_yaml = desks.tmp / "deep.yaml"
    deep_yaml.write_text("issue_summary: " + "[" * 100_000 + "]" * 100_000 + "\n")
    refusals.append((("escalate", "1", "--to", "L3", "--trigger", "other", "--reason", "r",
                      "--handoff-file", str(deep_yaml)), "nested too deeply"))
    for args, reason in refusals:
        result = desks.run(*args)
        assert result.returncode in (1, 2), (args, result.stderr)
        err = one_error_line(result.stderr.decode("utf-8"))
        assert reason in err, err
    # a megabyte note (too long for one argv string, so in-process)
    code, _out, err = call("--db", str(desks.db), "note", "1", "n" * 1_048_576)
    assert code == 1 and "limit" in one_error_line(err)
    assert len(show(desks, 1)["events"]) == len(got["events"])


# -- exports -----------------------------------------------------------------------------------

FORMULAS = ["=1+1", "+1", "-1", "@SUM(A1)", "=HYPERLINK(\"http://evil\")", "\t=1", "\r=1",
            "=cmd|' /C calc'!A0", "-", "@", "+", "="]


@pytest.mark.parametrize("value", FORMULAS)
def test_a_csv_cell_is_never_a_formula(value: str) -> None:
    cell = spreadsheet_safe(value)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert not UNSAFE.search(cell)


def test_every_csv_column_is_neutralised(desk: Desk, store: Store, policy: Policy) -> None:
    from sladeck.report import CSV_COLUMNS, incident_json, incidents_csv

    for value in FORMULAS:
        i = actions.open_incident(desk, title=value, severity="P2", service=value,
                                  external_ref=value).incident
        actions.assign(desk, i.id, value)
    rows = [incident_json(i, policy, T0) for i in store.incidents(None)]
    parsed = list(csv.reader(io.StringIO(incidents_csv(rows))))
    assert parsed[0] == list(CSV_COLUMNS) and len(parsed) == len(FORMULAS) + 1
    for row in parsed[1:]:
        assert len(row) == len(CSV_COLUMNS)
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row
            assert not UNSAFE.search(cell)


def unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)(?:\\\\)*\|", line))


def test_markdown_escapes_pipes_everywhere(desk: Desk, store: Store, policy: Policy) -> None:
    from sladeck.report import incident_json, incident_markdown, incidents_markdown

    nasty = "a|b \\| c\n| d |\r\n`x`|<b>|[l](u)"
    i = actions.open_incident(desk, title=nasty, severity="P2", service=nasty,
                              external_ref=nasty).incident
    actions.assign(desk, i.id, nasty)
    actions.add_note(desk, i.id, nasty)
    actions.escalate(desk, i.id, to="L2", trigger="other", reason=nasty,
                     fields={k: nasty for k in L2_FIELDS})
    assert "\\|" in md("a|b") and "|" not in md("a|b").replace("\\|", "")
    table = incidents_markdown([incident_json(store.incident(i.id), policy, T0)])
    doc = incident_markdown(store.detail(i.id), policy, T0)
    for text in (table, doc):
        assert not UNSAFE.search(text)
        widths: dict[int, int] = {}
        block = 0
        for line in text.splitlines():
            if not line.startswith("|"):
                block += 1
                continue
            widths.setdefault(block, unescaped_pipes(line))
            assert unescaped_pipes(line) == widths[block], line
    assert "<b>" not in doc and "\\<b\\>" in doc


# -- hypothesis: random strings through the CLI and the dashboard -------------------------------

FRAGMENTS = [r for r, _ in PAYLOADS.values()] + [
    "\x1b", "\x07", "\x9b", "\u202e", "\u2066", "\u200b", "\ufeff", "[", "]", "[/]", "\\",
    "|", "=", "@", "\n", "\r", "\t", "é", "漢字", "👩\u200d💻", "\u0301", " "]
hostile_text = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=6), min_size=1,
                        max_size=8).map("".join)


@pytest.fixture(scope="module")
def prop_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("hostile-props")
    saved = {k: os.environ.get(k) for k in ("XDG_STATE_HOME", "XDG_DATA_HOME")}
    os.environ["XDG_STATE_HOME"] = str(folder / "state")
    os.environ["XDG_DATA_HOME"] = str(folder / "data")
    yield folder / "props.db"
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=hostile_text, note=hostile_text, name=hostile_text)
def test_random_text_through_the_cli(prop_db: Path, title: str, note: str, name: str) -> None:
    db = str(prop_db)
    code, out, err = call("--db", db, "open", "--severity", "P3", "--title", title)
    if code != 0:
        assert code == 1, err  # e.g. a blank title
        one_error_line(err)
        return
    ref = out.strip()
    incident = ref.removeprefix("INC-")
    for args in (("--as", name, "note", "--", incident, note), ("assign", "--", incident, name)):
        code, _out, err = call("--db", db, *args)
        assert code == 0 or (code == 1 and one_error_line(err))
    code, out, _ = call("--db", db, "show", incident, "--json")
    got = json.loads(out)
    assert got["title"] == title  # stored exactly as given
    for args in (("list",), ("show", incident), ("export", incident, "--format", "md"),
                 ("export", incident, "--format", "csv")):
        code, out, err = call("--db", db, *args)
        assert code == 0, err
        assert not UNSAFE.search(out), (args, out)
    code, out, _ = call("--db", db, "export", incident, "--format", "csv")
    for row in list(csv.reader(io.StringIO(out)))[1:]:
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row)


def screen_text(app: Any) -> list[str]:
    return ["".join(seg.text for seg in strip)
            for strip in app.screen._compositor.render_strips()]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(titles=st.lists(hostile_text, min_size=1, max_size=4), note=hostile_text)
@example(titles=["osc52"], note=PAYLOADS["osc52"][0])  # an assignee in the timeline
def test_random_text_through_the_dashboard(tmp_path_factory: pytest.TempPathFactory,
                                           policy: Policy, titles: list[str], note: str) -> None:
    from textual.widgets import Static

    from sladeck.tui.app import QueueScreen, SladeckApp
    from sladeck.tui.detail import DetailScreen

    db = tmp_path_factory.mktemp("dash") / "d.db"
    store = Store(db)
    other = Desk(store, policy, FixedClock(T0), Actor("alice", note if note.strip() else None))
    opened = 0
    for title in titles:
        with contextlib.suppress(Exception):
            i = actions.open_incident(other, title=title, severity="P2", service=note).incident
            actions.add_note(other, i.id, note) if note.strip() else None
            actions.assign(other, i.id, note)
            opened += 1
    app = SladeckApp(db, policy, Actor("tester"), clock=FixedClock(T0), poll_interval=None,
                     tick_interval=None, bell=False, run_hooks=False, cursor_blink=False)

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            assert not any(UNSAFE.search(line) for line in screen_text(app))
            for y in range(opened):
                await pilot.click("QueueView", offset=(70, y))
                await pilot.pause()
                assert app.is_running and isinstance(app.screen, QueueScreen)
            if opened:
                await pilot.press("enter")
                await pilot.pause()
                assert isinstance(app.screen, DetailScreen)
                assert not any(UNSAFE.search(line) for line in screen_text(app))
                for widget in app.screen.query(Static):
                    assert not UNSAFE.search(str(widget.content))
                await pilot.click("#detail-header", offset=(10, 0))
                await pilot.press("escape")
                await pilot.pause()
            assert app.is_running
    try:
        asyncio.run(scenario())
    finally:
        store.close()


# -- the real dashboard on a pseudo-terminal: every byte it writes ------------------------------

def run_on_pty(env: dict[str, str], script: list[tuple[bytes, float]], cols: int = 120,
               rows: int = 36) -> tuple[bytes, list[bool], int | None]:
    """Run `sladeck` on a pty; send each key string then read for its seconds.

    Returns everything it wrote, whether it was still running after each step, and
    its exit status (None if it had to be killed).
    """
    pid, fd = pty.fork()
    if pid == 0:  # the child: size the terminal, then become sladeck
        try:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            os.execve(str(SLADECK), [str(SLADECK)], env)
        finally:
            os._exit(127)
    out = bytearray()
    status: int | None = None

    def pump(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    return
                if not data:
                    return
                out.extend(data)

    def reap() -> None:
        nonlocal status
        if status is None:
            done, code = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(code)

    alive = []
    try:
        for keys, seconds in script:
            if keys and status is None:
                os.write(fd, keys)
            pump(seconds)
            reap()
            alive.append(status is None)
        end = time.monotonic() + 10
        while status is None and time.monotonic() < end:
            pump(0.1)
            reap()
    finally:
        if status is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    return bytes(out), alive, status


def click(x: int, y: int) -> bytes:
    """An SGR mouse press and release at 1-based column x, row y."""
    return f"\x1b[<0;{x};{y}M\x1b[<0;{x};{y}m".encode()


@pytest.fixture
def hostile_db(tmp_path: Path, policy: Policy) -> Path:
    db = tmp_path / "hostile.db"
    store = Store(db)
    desk = Desk(store, policy, FixedClock(T0), Actor("mallory", "\x1b]2;PWNED\x07"))
    for name, (raw, _) in PAYLOADS.items():
        # the payload first, so it is on screen whatever the title column's width
        i = actions.open_incident(desk, title=f"{raw} {name}", severity="P3",
                                  service=raw, description=f"{raw}\n{raw}").incident
        actions.add_note(desk, i.id, f"note {raw}")
    store.close()
    return db


def assert_nothing_hostile(out: bytes) -> None:
    for pattern in FORBIDDEN:
        assert pattern not in out, pattern
    assert not C1_BYTES.search(out), C1_BYTES.search(out)
    assert not OSC8_EVIL.search(out)


@pytest.mark.skipif(not hasattr(pty, "fork"), reason="needs a pseudo-terminal")
def test_the_real_dashboard_writes_no_hostile_byte(tmp_path: Path, hostile_db: Path) -> None:
    env = env_for(tmp_path, hostile_db)
    script = [(b"", 2.5)]
    script += [(click(80, y), 0.15) for y in range(3, 3 + len(PAYLOADS))]  # clicks on titles
    script += [(b"\r", 1.5), (click(20, 2), 0.3), (b"\x1b", 1.0),  # details, and back
               (b"e", 1.5), (b"\x1b", 1.0),                          # the escalation form
               (b"G", 0.5), (b"\r", 1.5), (b"\x1b", 1.0),            # another incident
               (b"q", 0.5)]
    out, alive, status = run_on_pty(env, script)
    assert all(alive[:-1]), alive  # no click or key quit it: only q did
    assert status == 0
    assert_nothing_hostile(out)
    for name in ("osc52", "osc0", "osc2", "clear", "c1", "bidi", "click", "link"):
        assert PAYLOADS[name][1][:16].encode() in out, name  # shown as text
    assert b"Traceback" not in out


@pytest.mark.skipif(not hasattr(pty, "fork"), reason="needs a pseudo-terminal")
def test_the_assign_form_writes_no_hostile_byte(tmp_path: Path, policy: Policy) -> None:
    db = tmp_path / "assign.db"
    store = Store(db)
    desk = Desk(store, policy, FixedClock(T0), Actor("mallory"))
    i = actions.open_incident(desk, title="Victim", severity="P3").incident
    actions.assign(desk, i.id, "\x1b]2;PWNED\x07")
    store.close()
    out, _alive, status = run_on_pty(env_for(tmp_path, db),
                                    [(b"", 2.5), (b"i", 1.5), (b"\x1b", 1.0), (b"q", 0.5)])
    assert status == 0
    assert b"\\x1b]2;PWNED" in out  # the queue shows it escaped ...
    assert_nothing_hostile(out)     # ... and so does the form's input (never prefilled raw)


def test_invisible_format_characters_are_made_visible() -> None:
    """Soft hyphens, Mongolian vowel separators and tag characters hide text in plain sight."""
    from sladeck.text import visible

    assert visible("a\xadb\u180ec\U000e0041d") == "a\\xadb\\u180ec\\U000e0041d"


# -- policy text: a stored policy (an old release's, a teammate's) may hold anything ------------

POLICY_TAIL = " \x1b]0;PWNED\x07\x1b[2J[b]bold[/b]\x9b31m\u202e"
POLICY_KEYS = {"P1": "P1\x1b]0;KEY\x07", "L1": "L1\x1b[2J", "L2": "L2\x1b]2;LVL\x07",
               "not_resolved_30m": "t\x1b]52;c;eA==\x07", "issue_summary": "is\x1b[31m",
               "assess_severity": "as\x90", "training": "tr\u202e"}
POLICY_LABELS = {"label", "help", "name", "definition", "business_impact", "scope", "primary",
                 "phone", "chat", "escalation", "email", "contact"}


def hostile_policy(policy: Policy, *, keys: bool) -> Policy:
    """`policy` with every label, name, help and contact text ending in escape sequences
    and markup and, with `keys`, some keys renamed to hostile ones everywhere they occur:
    built directly, as no validation of today's would let such a file through."""
    import dataclasses
    from collections.abc import Mapping
    from types import MappingProxyType

    renamed = POLICY_KEYS if keys else {}

    def walk(value: Any, field: str = "") -> Any:
        if isinstance(value, str):
            value = renamed.get(value, value)
            return value + POLICY_TAIL if field in POLICY_LABELS else value
        if isinstance(value, tuple):
            return tuple(walk(v) for v in value)
        if isinstance(value, Mapping):
            return MappingProxyType({walk(k): walk(v) for k, v in value.items()})
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.replace(value, **{
                f.name: walk(getattr(value, f.name), f.name) for f in dataclasses.fields(value)
                if f.name not in ("source", "digest")})
        return value

    tag = "keys" if keys else "labels"
    return dataclasses.replace(walk(policy), source=f"{policy.source}\n# hostile {tag}\n",
                               digest=f"hostile-{tag}-{policy.digest}")


@pytest.fixture
def hostile_policy_db(db_path: Path, policy: Policy, monkeypatch: pytest.MonkeyPatch
                      ) -> tuple[Path, Policy]:
    """INC-1 closed and INC-2 open under a stored hostile policy; every store reading that
    policy's row gets the hostile objects back (as if the parser had let it through)."""
    from sladeck.domain.actions import checklist_items

    stored = hostile_policy(policy, keys=True)
    original = Store.policy

    def stored_policy(self: Store, policy_id: int) -> Policy:
        found = original(self, policy_id)
        return stored if found.source == stored.source else found
    monkeypatch.setattr(Store, "policy", stored_policy)

    store = Store(db_path)
    desk = Desk(store, stored, FixedClock(T0), Actor("mallory"))
    p1, l2 = POLICY_KEYS["P1"], POLICY_KEYS["L2"]
    first = actions.open_incident(desk, title="Closed one", severity=p1,
                                  description="under a hostile policy").incident
    triage = next(iter(checklist_items(stored, first).items()))
    actions.tick(desk, first.id, triage[0], triage[1][0].key)
    actions.acknowledge(desk, first.id)
    desk.clock.advance(minutes=30)  # type: ignore[attr-defined]  # the trigger's own time
    actions.escalate(desk, first.id, to=l2, trigger=POLICY_KEYS["not_resolved_30m"],
                     fields={i.key: "handed over" for i in stored.escalation[l2].handoff})
    actions.resolve(desk, first.id, summary="fixed", checks="all")
    actions.add_follow_up(desk, first.id, kind=POLICY_KEYS["training"], description="learn",
                          owner="bob", due="2026-12-01")
    actions.file_review(desk, first.id, {f.key: "reviewed" for f in stored.review_fields})
    actions.open_incident(desk, title="Open one", severity=p1)
    store.close()
    return db_path, stored


def test_policy_text_never_reaches_a_terminal_from_the_cli(
        hostile_policy_db: tuple[Path, Policy]) -> None:
    db = str(hostile_policy_db[0])
    outputs = {}
    for args in (("list",), ("list", "--all"), ("show", "1"), ("show", "2"),
                 ("export", "--format", "md"), ("export", "1", "--format", "md"),
                 ("export", "--format", "csv"), ("export", "1", "--format", "csv"),
                 ("list", "--json"), ("export", "1")):
        code, out, err = call("--db", db, *args)
        assert code == 0, (args, err)
        assert not UNSAFE.search(out), (args, [m.group() for m in UNSAFE.finditer(out)][:5])
        assert not UNSAFE.search(err), (args, err)
        outputs[args] = out
    # shown as text a person can read, not dropped
    assert "P1\\x1b]0;KEY\\x07" in outputs[("list",)]
    assert "L1\\x1b[2J" in outputs[("list",)]
    show = outputs[("show", "1")]  # Markdown: its own escapes on top (`\\x1b\\]0;KEY`)
    for raw in (POLICY_KEYS["P1"], POLICY_KEYS["L2"], POLICY_KEYS["training"], POLICY_TAIL):
        assert md(raw) in show, md(raw)
    code, out, err = call("--db", db, "policy", "apply")  # refused: P1… is not today's
    assert code == 1 and "P1\\x1b]0;KEY\\x07" in one_error_line(err)


def test_policy_text_is_shown_as_text_in_the_dashboard(
        hostile_policy_db: tuple[Path, Policy], policy: Policy) -> None:
    """Escapes made visible, markup shown as written: in the queue, the detail screen and
    every form that shows policy text (the running policy's labels are hostile too)."""
    from sladeck.tui.app import SladeckApp
    from sladeck.tui.detail import DetailScreen

    db, _stored = hostile_policy_db
    app = SladeckApp(db, hostile_policy(policy, keys=False), Actor("tester"),
                     clock=FixedClock(T0), poll_interval=None, tick_interval=None, bell=False,
                     run_hooks=False, cursor_blink=False)
    seen: dict[str, str] = {}

    async def look(name: str) -> None:
        await app.workers.wait_for_complete()
        lines = screen_text(app)
        bad = [line for line in lines if UNSAFE.search(line)]
        assert not bad, (name, bad[:3])
        seen[name] = "\n".join(lines)

    async def scenario() -> None:
        async with app.run_test(size=(160, 50)) as pilot:
            await pilot.pause()
            await look("queue")
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, DetailScreen)
            await look("detail")
            for key, form in (("e", "escalate"), ("r", "resolve"), ("s", "severity"),
                              ("n", "new"), ("c", "note")):
                await pilot.press(key)
                await pilot.pause()
                await look(form)
                if form == "escalate":  # the triggers, listed
                    await pilot.click("#trigger")
                    await pilot.pause()
                    await look("triggers")
                    await pilot.press("escape")
                await pilot.press("escape")
                await pilot.pause()
            await pilot.press("escape")
            await pilot.press("f")
            await pilot.pause()
            await look("filter")
            assert app.is_running
    asyncio.run(scenario())
    assert "not resolved within 30 minutes \\x1b]0;PWNED" in seen["triggers"]
    for name in ("detail", "escalate", "triggers", "resolve"):
        assert "\\x1b]0;PWNED\\x07" in seen[name], name
        assert "[b]bold[/b]" in seen[name], name  # markup shown, not applied


# -- exports that stay inert in every locale ----------------------------------------------------

SEMICOLON_FORMULAS = ["ok;=1+1", "a, +1", "x; @SUM(A1)", 'q;"=HYPERLINK("http://evil")',
                      "a;-2", "a;;=b", "  =1", "x;|cmd", "fine; then =cmd|' /C calc'!A0"]


def pieces_a_spreadsheet_sees(raw_line: str, separator: str) -> list[str]:
    """The cells a spreadsheet splitting on `separator` makes of one line, with the quotes
    and spaces it would skip before deciding that a cell is a formula."""
    return [piece.lstrip(' "') for piece in raw_line.split(separator)]


@pytest.mark.parametrize("value", SEMICOLON_FORMULAS)
def test_a_formula_after_a_separator_inside_a_cell_is_neutralised(value: str) -> None:
    cell = spreadsheet_safe(value)
    for separator in (";", ","):
        for piece in pieces_a_spreadsheet_sees(cell, separator):
            assert not piece.startswith(("=", "+", "-", "@", "|")), (value, cell)
    assert cell.replace("'", "") == value.replace("'", "")  # nothing else changed


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from(list("=+-@|;,\"' a1\t\u3000\xa0")), max_size=12))
def test_no_piece_of_a_cell_starts_a_formula(text: str) -> None:
    cell = spreadsheet_safe(text)
    for separator in (";", ","):
        for piece in cell.split(separator):
            assert not re.sub(r'^[\s"]*', "", piece).startswith(("=", "+", "-", "@", "|")), cell
    assert cell.replace("'", "") == visible(text).replace("'", "")


def test_csv_quotes_every_cell_and_is_inert_split_on_semicolons(desk: Desk, store: Store,
                                                                 policy: Policy) -> None:
    from sladeck.report import CSV_COLUMNS, incident_json, incidents_csv

    for value in SEMICOLON_FORMULAS + FORMULAS:
        i = actions.open_incident(desk, title=value, severity="P2", service=value,
                                  external_ref=value).incident
        actions.assign(desk, i.id, value)
    rows = [incident_json(i, policy, T0) for i in store.incidents(None)]
    text = incidents_csv(rows)
    quoted = re.compile(r'^"(?:[^"]|"")*"(?:,"(?:[^"]|"")*")*$')
    lines = text.splitlines()
    assert len(lines) == len(rows) + 1
    for line in lines:
        assert quoted.match(line), line  # every cell quoted, the header's too
        for piece in pieces_a_spreadsheet_sees(line, ";"):  # a `;` locale opening it
            assert not piece.startswith(("=", "+", "-", "@", "|")), (piece, line)
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == list(CSV_COLUMNS)
    titles = sorted(row[2].replace("'", "") for row in parsed[1:])
    assert titles == sorted(visible(v).replace("'", "") for v in SEMICOLON_FORMULAS + FORMULAS)


# Lines that Markdown would otherwise turn into a heading, a rule, a list, a checkbox, a quote
# or code, each after a paragraph line and on its own.
BLOCK_LINES = ["===", "---", "- [ ] task", "- [x] done", "1. first", "1) first", "2026. year",
               "# heading", "> quoted", "* star", "+ plus", "    code", "\tcode", "```", "~~~",
               "```python", "***", "___", "- - -", "   - indented", "  ===", "<div>", "-"]


@pytest.mark.parametrize("line", BLOCK_LINES)
@pytest.mark.parametrize("before", ["", "a paragraph\n"])
def test_a_description_line_stays_text_in_markdown(line: str, before: str) -> None:
    from markdown_it import MarkdownIt

    from sladeck.report import md_block

    tokens = MarkdownIt("commonmark").parse(md_block(before + line + "\nafter"))
    assert [t.type for t in tokens] == ["blockquote_open", "paragraph_open", "inline",
                                        "paragraph_close", "blockquote_close"], line
    text = "".join(c.content for c in tokens[2].children or [] if c.type == "text")
    assert line.strip() in text.replace("\u00a0", " "), text  # shown as it was written


def test_the_markdown_export_has_only_its_own_headings(desk: Desk, store: Store,
                                                       policy: Policy) -> None:
    from markdown_it import MarkdownIt

    from sladeck.report import incident_markdown

    plain = actions.open_incident(desk, title="plain", severity="P2", description="x").incident
    tricky = actions.open_incident(desk, title="tricky", severity="P2",
                                   description="\n".join(["Intro", *BLOCK_LINES])).incident

    def blocks(incident_id: int) -> list[str]:
        doc = incident_markdown(store.detail(incident_id), policy, T0)
        return [t.type for t in MarkdownIt("commonmark").parse(doc) if t.block]
    # the description is one quoted paragraph either way: the same blocks around it
    assert blocks(tricky.id) == blocks(plain.id)
