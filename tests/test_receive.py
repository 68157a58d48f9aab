"""`sladeck receive`: the real service on a free port, posted to as Alertmanager and
Grafana would, with its refusals (401, 413, 400) and its writes under concurrency."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from receiving import receiving, write_token
from sladeck.store import Store
from test_architecture import SRC, imports
from test_cli import SLADECK, Cli, base_env, dump
from test_intake import GRAFANA_EXAMPLE, am_alert, am_payload


def incidents(db: Path) -> list:
    store = Store(db)
    try:
        return store.incidents(None)
    finally:
        store.close()


def test_posts_are_answered_after_their_alerts_are_committed(tmp_path: Path) -> None:
    with receiving(tmp_path) as r:
        status, answer = r.post("/alertmanager", am_payload(am_alert("f1"), am_alert("f2")))
        assert (status, answer["opened"], answer["alerts"]) == (200, 2, 2)
        assert {i.dedup_key for i in incidents(r.db)} == {"f1", "f2"}  # already there
        status, answer = r.post("/grafana", GRAFANA_EXAMPLE)
        assert (status, answer["opened"]) == (200, 2)
        status, answer = r.post("/alertmanager", am_payload(am_alert("f1"),
                                                            am_alert("f2", status="resolved")))
        assert (status, answer["opened"], answer["repeated"], answer["cleared"]) == \
            (200, 0, 1, 1)
        code, out = r.stop()
    assert code == 0 and out.strip().endswith("sladeck receive: stopped")
    by_key = {i.dedup_key: i for i in incidents(r.db)}
    assert len(by_key) == 4
    assert by_key["f2"].state == "open" and by_key["f2"].source_cleared_at is not None
    assert by_key["f1"].repeats == 1 and by_key["f1"].source_cleared_at is None


def test_no_token_or_a_wrong_one_is_401_and_writes_nothing(tmp_path: Path) -> None:
    with receiving(tmp_path) as r:
        r.post("/alertmanager", am_payload(am_alert("f0")))
        before = dump(r.db)
        for token in (None, "wrong", r.token + "x", r.token[:-1], ""):
            status, answer = r.post("/alertmanager", am_payload(am_alert("f1")),
                                    token=token if token != "" else "Bearer")
            assert status == 401, (token, answer)
        assert dump(r.db) == before
        assert "401: wrong bearer token" in r.log.read_text()


def test_refusals_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    with receiving(tmp_path, "--max-body", "4096") as r:
        before = dump(r.db)
        status, answer = r.post("/alertmanager", b"x" * 5000)
        assert status == 413 and answer["error"] == "the body is over 4096 bytes"
        cases = [
            ("/alertmanager", b"{not json", "not JSON: Expecting property name enclosed "
                                            "in double quotes (line 1 column 2)"),
            ("/alertmanager", json.dumps(GRAFANA_EXAMPLE["alerts"][:1]).encode(),
             "must be a JSON object"),
            ("/alertmanager", json.dumps({**am_payload(am_alert("f1")),
                                          "version": "3"}).encode(),
             "not an Alertmanager webhook payload of version 4 (version '3')"),
            ("/grafana", json.dumps(am_payload(am_alert("f1"))).encode(),
             "not a Grafana alerting webhook payload (no orgId) (an Alertmanager payload? "
             "post it to /alertmanager)"),
            ("/alertmanager", json.dumps(am_payload(am_alert("f1"), {"status": "firing"})
                                         ).encode(),
             "alerts[1]: startsAt is missing"),
        ]
        for path, body, reason in cases:
            status, answer = r.post(path, body)
            assert (status, answer["error"]) == (400, reason)
        assert dump(r.db) == before


def test_the_token_file_must_be_private_and_a_token_is_needed_off_loopback(
        tmp_path: Path) -> None:
    run = Cli(tmp_path)
    path, _ = write_token(tmp_path)
    path.chmod(0o640)
    err = run.refused("receive", "--token-file", str(path))
    assert err == (f"sladeck: error: {path}: the token file can be read by others (mode "
                   f"0640); run chmod 600 {path}\n")
    err = run.refused("receive", "--listen", "0.0.0.0:0", "--no-token")
    assert err == ("sladeck: error: --no-token is allowed on a loopback address only, not "
                   "0.0.0.0; give --token-file PATH\n")
    err = run.refused("receive")
    assert "give --token-file PATH" in err and len(err.splitlines()) == 1
    assert not run.db.exists()  # refused before anything was opened


def test_loopback_without_a_token_only_when_asked(tmp_path: Path) -> None:
    with receiving(tmp_path, token=False) as r:
        status, answer = r.post("/alertmanager", am_payload(am_alert("f1")), token=None)
        assert (status, answer["opened"]) == (200, 1)


def test_a_burst_of_concurrent_posts_is_recorded_once_each(tmp_path: Path) -> None:
    """20 posts of 25 alerts at once, while a CLI writes to the same file: every alert
    once, no "database is locked"."""
    with receiving(tmp_path) as r:
        env = base_env(tmp_path)
        writer = subprocess.Popen(
            [sys.executable, "-c", _CLI_WRITER, str(SLADECK), str(r.db), "6"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def post(n: int) -> tuple[int, dict]:
            return r.post("/alertmanager", am_payload(
                *(am_alert(f"burst-{n}-{k}") for k in range(25))))

        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(post, range(20)))
        _, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
        assert all(status == 200 and a["opened"] == 25 for status, a in answers), answers
    keys = [i.dedup_key for i in incidents(r.db) if i.dedup_key]
    assert len(keys) == len(set(keys)) == 500
    assert "locked" not in r.log.read_text() + err.decode()


# A CLI writer: `sladeck open` N times, failing on any refusal or "locked".
_CLI_WRITER = """
import subprocess, sys
sladeck, db, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
for n in range(count):
    p = subprocess.run([sladeck, "--db", db, "open", "--severity", "P3", "--title",
                        f"by hand {n}"], capture_output=True, text=True)
    if p.returncode or "locked" in p.stderr:
        sys.exit(p.stderr or p.returncode)
"""


def test_only_receive_imports_aiohttp_and_the_dashboard_never_loads_it() -> None:
    users = sorted(str(p.relative_to(SRC)) for p in (SRC / "sladeck").rglob("*.py")
                   if any(m == "aiohttp" or m.startswith("aiohttp.") for m in imports(p)))
    assert users == ["sladeck/receive.py"]
    probe = ("import sys, sladeck.launch, sladeck.cli, sladeck.tui.app, "
             "sladeck.domain.intake; print('aiohttp' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_without_aiohttp_receive_says_how_to_install_it(tmp_path: Path) -> None:
    path, _ = write_token(tmp_path)
    probe = ("import sys; sys.modules['aiohttp'] = None; from sladeck.cli import main; "
             f"main(['--db', {str(tmp_path / 'x.db')!r}, 'receive', '--token-file', "
             f"{str(path)!r}])")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env=base_env(tmp_path))
    assert (out.returncode, out.stderr) == (1, "sladeck: error: sladeck receive needs "
                                               "aiohttp: pip install 'sladeck[receive]'\n")
