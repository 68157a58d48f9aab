"""The load `sladeck receive` is built for (slow): 2,000 alerts in 40 concurrent posts of
50, while a dashboard polls the same file and 4 CLI writers act on it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import make_app, settle, sync, view
from receiving import receiving
from sladeck.policy import Policy
from sladeck.store import Store
from test_cli import SLADECK, base_env
from test_intake import am_alert, am_payload

# A CLI writer: opens an incident, notes and acknowledges it, N times; any refusal or
# "locked" ends it with the error.
WRITER = """
import subprocess, sys
sladeck, db, me, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def run(*args):
    p = subprocess.run([sladeck, "--db", db, "--as", me, *args], capture_output=True, text=True)
    if p.returncode or "locked" in p.stderr:
        sys.exit(f"{args}: {p.stderr}")
    return p.stdout
for n in range(count):
    ref = run("open", "--severity", "P3", "--title", f"{me} {n}").strip()
    run("note", ref, "looking")
    run("ack", ref)
"""


@pytest.mark.slow
@pytest.mark.usefixtures("utc_and_still")
@sync
async def test_2000_alerts_in_40_concurrent_posts_beside_a_dashboard_and_4_writers(
        tmp_path: Path, policy: Policy) -> None:
    with receiving(tmp_path) as r:
        Store(r.db).close()
        app = make_app(r.db, policy, poll_interval=0.1)
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot)
            writers = [subprocess.Popen(
                [sys.executable, "-c", WRITER, str(SLADECK), str(r.db), f"writer{w}", "5"],
                env=base_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for w in range(4)]

            def post(n: int) -> tuple[int, dict]:
                return r.post("/alertmanager", am_payload(
                    *(am_alert(f"load-{n}-{k}", severity=("critical", "warning")[k % 2])
                      for k in range(50))), timeout=300)

            def burst() -> list[tuple[int, dict]]:
                with ThreadPoolExecutor(40) as pool:
                    return list(pool.map(post, range(40)))

            seen_during: list[int] = []
            task = asyncio.get_running_loop().run_in_executor(None, burst)
            while not task.done():  # the dashboard keeps polling and drawing meanwhile
                await pilot.pause(0.2)
                seen_during.append(len(app.queue.visible))
            answers = await task
            results = [await asyncio.get_running_loop().run_in_executor(None, w.communicate)
                       for w in writers]
            assert all(w.returncode == 0 for w in writers), [e for _, e in results]
            assert all(status == 200 and a["opened"] == 50 for status, a in answers), answers
            # the dashboard shows every incident within a second or two, and still moves
            for _ in range(100):
                await pilot.pause(0.1)
                if len(app.queue.visible) == 2020:
                    break
            assert len(app.queue.visible) == 2020
            assert seen_during and min(seen_during) < 2020  # it saw them arrive
            before = view(app).cursor
            await pilot.press("down")
            await pilot.pause()
            assert view(app).cursor == before + 1
    store = Store(r.db)
    try:
        keys = [i.dedup_key for i in store.incidents(None) if i.dedup_key]
    finally:
        store.close()
    assert len(keys) == len(set(keys)) == 2000  # every alert once
    errors = r.log.read_text() + "".join(e.decode() for _, e in results)
    assert "locked" not in errors and " 503" not in errors
