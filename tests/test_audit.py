"""Honest audit (issue 10, items 8 and parts of 6 and 9): what `verify` proves and
says, hostile NDJSON files, and display names that cannot hide the real account."""

from __future__ import annotations

import os
import pwd
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import call_cli
from sladeck.store import GENESIS, event_hash

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
