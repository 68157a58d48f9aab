"""Honest audit (issue 10, items 8 and parts of 6 and 9): what `verify` proves and
says, hostile NDJSON files, and display names that cannot hide the real account."""

from __future__ import annotations

import io
import json
import os
import pwd
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import call_cli
from sladeck.domain.chain import GENESIS, event_hash

SLADECK = Path(sys.executable).with_name("sladeck")
ME = pwd.getpwuid(os.getuid()).pw_name
HEAD_LINE = re.compile(r"^head (\d+):([0-9a-f]{64})$", re.MULTILINE)


def sladeck(db: Path, *args: str, stdin: bytes | None = None, timeout: float = 60,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real console script on `db`, as a user runs it."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SLADECK_")}
    base |= {"TZ": "UTC", "PYTHONIOENCODING": "utf-8", "XDG_STATE_HOME": str(db.parent / "st"),
             "SLADECK_DB": str(db)} | (env or {})
    return subprocess.run([str(SLADECK), *args], input=stdin, capture_output=True,
                          timeout=timeout, env=base, check=False,
                          **({} if stdin is not None else {"text": True}))


def one_error(err: str) -> str:
    """The single `sladeck: error:` line of a refusal."""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sladeck: error: "), err
    assert "unexpected" not in err and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def desk_db(tmp_path: Path) -> Path:
    """A database with a little history: INC-1 noted and acknowledged, INC-2 open."""
    db = tmp_path / "desk" / "desk.db"
    for args in (("open", "--severity", "P2", "--title", "Checkout slow"),
                 ("note", "1", "looking at the pool"), ("ack", "1"),
                 ("open", "--severity", "P3", "--title", "Disk at 80 %")):
        code, _, err = call_cli("--db", str(db), *args)
        assert code == 0, err
    return db


def head_of(db: Path) -> tuple[int, str]:
    code, out, err = call_cli("--db", str(db), "verify")
    assert code == 0, err
    [(event_id, digest)] = HEAD_LINE.findall(out)
    return int(event_id), digest


def rewrite_history(db: Path, event_id: int, text: str) -> None:
    """What anyone who can write the file can do: drop the trigger, edit an event's
    payload and recompute every hash from it on, so the chain is intact again."""
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER IF EXISTS events_no_update")
    con.execute("UPDATE events SET payload = json_set(payload, '$.text', ?) WHERE id = ?",
                (text, event_id))
    prev = GENESIS
    rows = con.execute("SELECT id, incident_id, version, at, account, name, kind, payload "
                       "FROM events ORDER BY id").fetchall()
    for row in rows:
        digest = event_hash(prev, *row)
        con.execute("UPDATE events SET prev_hash = ?, hash = ? WHERE id = ?",
                    (prev, digest, row[0]))
        prev = digest
    con.commit()
    con.close()


# --- verify: the head and --expect ------------------------------------------------------------

def test_verify_prints_the_chain_head(desk_db: Path) -> None:
    out = sladeck(desk_db, "verify")
    assert out.returncode == 0, out.stderr
    [(event_id, digest)] = HEAD_LINE.findall(out.stdout)
    con = sqlite3.connect(desk_db)
    last = con.execute("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1").fetchone()
    con.close()
    assert (int(event_id), digest) == last
    assert "4 events, chain intact" in out.stdout


def test_a_recomputed_chain_passes_verify_but_not_the_recorded_head(desk_db: Path) -> None:
    """The chain alone proves nothing against someone who can write the file (SPEC §9);
    a head recorded before the rewrite does."""
    event_id, digest = head_of(desk_db)
    rewrite_history(desk_db, 2, "nothing to see")
    code, out, _ = call_cli("--db", str(desk_db), "verify")
    assert code == 0 and "chain intact" in out  # what the chain cannot catch
    for expect in (f"{event_id}:{digest}", digest, digest.upper()):
        code, out, err = call_cli("--db", str(desk_db), "verify", "--expect", expect)
        assert code == 1 and out == ""
        line = one_error(err)
        assert digest in line and "not in the chain" in line and "rewritten or removed" in line


def test_an_expected_head_survives_later_events(desk_db: Path) -> None:
    event_id, digest = head_of(desk_db)
    code, _, err = call_cli("--db", str(desk_db), "note", "2", "later")
    assert code == 0, err
    for expect in (f"{event_id}:{digest}", digest):
        code, out, err = call_cli("--db", str(desk_db), "verify", "--expect", expect)
        assert code == 0, err
        assert f"expected head found as event {event_id}" in out
        assert f"head {event_id + 1}:" in out


def test_removed_history_fails_the_expected_head(desk_db: Path) -> None:
    """The last events deleted (the trigger dropped): the rest of the chain is intact."""
    event_id, digest = head_of(desk_db)
    con = sqlite3.connect(desk_db)
    con.execute("DROP TRIGGER events_no_delete")
    con.execute("DELETE FROM events WHERE id >= 3")
    con.execute("UPDATE incidents SET state = 'open', acknowledged_at = NULL WHERE id = 1")
    con.commit()
    con.close()
    code, _, err = call_cli("--db", str(desk_db), "verify", "--expect", f"{event_id}:{digest}")
    assert code == 1
    assert "not in the chain" in err.splitlines()[0]


def test_an_expected_head_at_another_id_is_named(desk_db: Path) -> None:
    event_id, digest = head_of(desk_db)
    code, _, err = call_cli("--db", str(desk_db), "verify", "--expect", f"2:{digest}")
    assert code == 1
    assert f"event {event_id}'s hash, not event 2's" in one_error(err)


@pytest.mark.parametrize("expect", ["abc", "12:xyz", "1:" + "0" * 63, "-1:" + "a" * 64,
                                    "a" * 65, ""])
def test_a_malformed_head_is_a_usage_error(desk_db: Path, expect: str) -> None:
    code, _, err = call_cli("--db", str(desk_db), "verify", "--expect", expect)
    assert code == 2
    assert "is not a chain head" in one_error(err)


def test_an_empty_database_has_the_genesis_head(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    code, out, err = call_cli("--db", str(db), "verify")
    assert code == 0, err
    assert HEAD_LINE.findall(out) == [("0", GENESIS)]


# --- verify: a damaged file -------------------------------------------------------------------

def _scribble(source: Path, dest: Path, page: int) -> None:
    data = bytearray(source.read_bytes())
    start = 4096 * page
    for i in range(start + 8, min(start + 4000, len(data)), 7):
        data[i] = (data[i] * 31 + 7) & 0xFF
    dest.write_bytes(bytes(data))


def test_a_damaged_file_is_verifys_finding_with_the_next_step(desk_db: Path,
                                                              tmp_path: Path) -> None:
    """Every page of the file scribbled on in turn: verify passes, lists chain problems,
    or says the file is damaged and what to do, in one line; never "unexpected"."""
    con = sqlite3.connect(desk_db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    pages = desk_db.stat().st_size // 4096
    assert pages > 10
    damaged = 0
    for page in range(pages):
        copy = tmp_path / f"page{page}.db"
        _scribble(desk_db, copy, page)
        code, out, err = call_cli("--db", str(copy), "verify")
        assert "unexpected" not in err and "Traceback" not in err, (page, err)
        if code == 0:
            continue
        assert code == 1 and out == "", (page, out)
        assert all(line.startswith("sladeck: error: ") for line in err.splitlines()), err
        if "damaged" in err:
            line = one_error(err)
            assert f"{copy}: the database file is damaged (" in line
            assert "restore the latest backup" in line and f"sqlite3 {copy} .recover" in line
            damaged += 1
    assert damaged >= 3


def test_a_file_that_is_not_a_database_is_damaged(tmp_path: Path) -> None:
    db = tmp_path / "junk.db"
    db.write_bytes(b"not a database at all" * 300)
    os.chmod(db, 0o600)
    code, _, err = call_cli("--db", str(db), "verify")
    assert code == 1
    assert "the database file is damaged (file is not a database)" in one_error(err)


# --- import: hostile files --------------------------------------------------------------------

def _limited_memory() -> None:
    """The child may not grow past 1 GiB: an unbounded read fails there, not on the host."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_import_of_dev_zero_is_refused_at_once(tmp_path: Path, how: str) -> None:
    """An endless line is refused after 1 MiB, in well under a second of its own."""
    db = tmp_path / "desk.db"
    base = {k: v for k, v in os.environ.items() if not k.startswith("SLADECK_")}
    argv = [str(SLADECK), "--db", str(db), "import", "/dev/zero" if how == "file" else "-"]
    with open("/dev/zero", "rb") as zero:
        started = time.monotonic()
        out = subprocess.run(argv, stdin=zero if how == "stdin" else subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=60, check=False,
                             env=base | {"XDG_STATE_HOME": str(tmp_path)},
                             preexec_fn=_limited_memory)
        took = time.monotonic() - started
    assert out.returncode == 1
    name = "/dev/zero" if how == "file" else "-"
    assert one_error(out.stderr) == f"sladeck: error: {name}:1: line longer than 1 MiB"
    assert took < 10  # about 0.4 s, most of it start-up; the unbounded read never ended


def _padded(size: int) -> bytes:
    """A valid alert line of exactly `size` bytes (JSON allows the spaces)."""
    head, tail = b'{"title": "padded", "severity": "P3"', b"}"
    return head + b" " * (size - len(head) - len(tail)) + tail


def test_a_line_over_1_mib_refuses_the_file_even_when_skipping(desk: Any, store: Any) -> None:
    from sladeck.domain.ingest import MAX_LINE, ImportRefused, import_ndjson

    good = b'{"title": "ok", "severity": "P2"}\n'
    fits = good + _padded(MAX_LINE) + b"\n"
    assert import_ndjson(desk, io.BytesIO(fits), "a.ndjson").opened == 2
    assert import_ndjson(desk, fits, "a.ndjson").opened == 2
    seq = store.last_seq()
    too_long = good + b"not json\n" + _padded(MAX_LINE + 1) + b"\n" + good
    for source in (io.BytesIO(too_long), too_long):
        for skip in (False, True):
            if isinstance(source, io.BytesIO):
                source.seek(0)
            with pytest.raises(ImportRefused) as caught:
                import_ndjson(desk, source, "b.ndjson", skip_invalid=skip)
            assert caught.value.problems[-1] == "b.ndjson:3: line longer than 1 MiB"
    assert store.last_seq() == seq  # nothing written


def test_an_endless_file_of_bad_lines_stops_after_100(tmp_path: Path) -> None:
    out = sladeck(tmp_path / "desk.db", "import", "/dev/urandom", timeout=60)
    assert out.returncode == 1
    lines = out.stderr.splitlines()
    assert len(lines) <= 101
    assert lines[-1] == ("sladeck: error: /dev/urandom: stopped reading after 100 bad lines; "
                         "nothing imported")


def test_a_byte_order_mark_is_skipped_at_the_start_and_named_elsewhere(tmp_path: Path) -> None:
    db = tmp_path / "desk.db"
    data = tmp_path / "alerts.ndjson"
    line = b'{"title": "from PowerShell", "severity": "P3"}\r\n'
    data.write_bytes(b"\xef\xbb\xbf" + line + line)
    out = sladeck(db, "import", str(data))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("imported 2 new")
    data.write_bytes(line + b"\xef\xbb\xbf" + line)  # two files joined with cat
    out = sladeck(db, "import", str(data))
    assert f"{data}:2: starts with a byte order mark (U+FEFF)" in one_error(out.stderr)
    data.write_bytes(b"\xff\xfe" + line.decode().encode("utf-16-le"))
    out = sladeck(db, "import", str(data))
    assert f"{data}:1: UTF-16 text" in out.stderr.splitlines()[0]
    assert "save the file as UTF-8" in out.stderr.splitlines()[0]


@pytest.mark.parametrize("opened", ["2026-11-26T10:00:00", "2026-11-26 10:00", "2026-11-26"])
def test_opened_at_without_an_offset_is_refused(desk: Any, store: Any, opened: str) -> None:
    from sladeck.domain.ingest import ImportRefused, import_ndjson

    line = json.dumps({"title": "t", "severity": "P1", "opened_at": opened}).encode()
    with pytest.raises(ImportRefused) as caught:
        import_ndjson(desk, line, "a.ndjson")
    assert caught.value.problems == [
        f"a.ndjson:1: opened_at {opened!r} has no time zone offset (end it with Z for UTC, "
        "or an offset such as +01:00)"]
    assert store.last_seq() == 0


def test_opened_at_with_an_offset_is_kept_in_utc(desk: Any) -> None:
    from sladeck.domain.ingest import import_ndjson
    from sladeck.domain.model import to_iso

    lines = b"\n".join(json.dumps({"title": "t", "severity": "P1", "opened_at": at}).encode()
                       for at in ("2026-11-26T10:00:00Z", "2026-11-26T11:00:00+01:00"))
    report = import_ndjson(desk, lines, "a.ndjson")
    assert [to_iso(o.incident.opened_at) for o in report.outcomes] == \
        ["2026-11-26T10:00:00.000000Z"] * 2


# --- display names ----------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "kept"), [
    ("Ann", "Ann"), ("  Ann \n\t Lee  ", "Ann Lee"), ("Ann\u2028Lee", "Ann Lee"),
    ("x" * 40, "x" * 40), ("Zoë 佐藤", "Zoë 佐藤"), (" \n ", None), ("", None), (None, None),
])
def test_a_display_name_is_one_line_of_plain_text(given: str | None, kept: str | None) -> None:
    from sladeck.identity import current_actor

    actor = current_actor(given)
    assert actor.account == ME and actor.name == kept


@pytest.mark.parametrize(("given", "reason"), [
    ("x" * 41, "is 41 characters long; the limit is 40"),
    ("Ann" + " " * 500 + "Lee" + "x" * 40, "is 47 characters long"),
    ("Ann\x1b]0;root\x07", "control or format character U+001B"),
    ("Ann\u202eLee", "control or format character U+202E"),
    ("\u200b" * 30 + "root", "control or format character U+200B"),
    ("Ann\udcff", "is not valid UTF-8"),
])
def test_a_display_name_that_could_hide_the_account_is_refused(
        desk_db: Path, given: str, reason: str, monkeypatch: pytest.MonkeyPatch) -> None:
    before = sqlite3.connect(desk_db).execute("SELECT count(*) FROM events").fetchone()
    for how in (["--as", given], []):
        if not how:
            monkeypatch.setenv("SLADECK_USER", given)
        code, _, err = call_cli("--db", str(desk_db), *how, "note", "1", "hello")
        assert code == 1
        line = one_error(err)
        assert line.startswith("sladeck: error: display name (--as or SLADECK_USER) ")
        assert reason in line
    after = sqlite3.connect(desk_db).execute("SELECT count(*) FROM events").fetchone()
    assert after == before


def test_the_account_is_shown_beside_a_display_name(desk_db: Path) -> None:
    name = "  On call\n  (rotation   B) "
    out = sladeck(desk_db, "--as", name, "ack", "2")
    assert out.returncode == 0, out.stderr
    shown = sladeck(desk_db, "show", "2").stdout
    assert f"On call (rotation B) ({ME}) | acknowledged" in shown


def test_the_dashboard_refuses_a_long_display_name_in_one_line(desk_db: Path) -> None:
    out = sladeck(desk_db, env={"SLADECK_USER": "x" * 200}, stdin=b"", timeout=30)
    assert out.returncode == 1
    one_error(out.stderr.decode())


def test_a_stored_hostile_name_is_still_shown_inert(desk: Any) -> None:
    """Names recorded before they were checked are escaped when shown."""
    from sladeck.domain import actions
    from sladeck.domain.model import Actor

    old = actions.Desk(desk.store, desk.policy, desk.clock, Actor("mallory", "\x1b]2;X\x07"))
    actions.open_incident(old, title="t", severity="P3")
    db = desk.store.path
    for args in (("show", "1"), ("export", "1", "--format", "md"), ("show", "1", "--json")):
        code, out, err = call_cli("--db", str(db), *args)
        assert code == 0, err
        assert "\x1b" not in out and "\x07" not in out
