"""Every benchmark runs at a tiny size, so none of them rots. Nothing here is timed:
the figures a quick run prints mean nothing and are not checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = sorted(p.name for p in BENCH.glob("bench_*.py"))


def test_every_benchmark_is_listed_in_run_all() -> None:
    text = (BENCH / "run_all.py").read_text()
    assert SCRIPTS and all(name in text for name in SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_runs_quick(script: str, tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    extra = ["--idle", "1"] if script in ("bench_idle.py", "bench_watch.py") else []
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", "--workdir", str(tmp_path),
         "--json", str(out), *extra],
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(out.read_text())
    # CPU is read from /proc in 10 ms ticks: one idle second of the dashboard can read 0.
    assert figures and all(f["value"] > 0 for f in figures
                           if f["unit"] != "B" and not f["name"].startswith("CPU"))
    assert all(f["value"] >= 0 for f in figures)
    assert "| figure" in result.stdout


def test_fixture_rows_are_valid_incidents(tmp_path: Path) -> None:
    sys.path.insert(0, str(BENCH))
    try:
        import _harness
    finally:
        sys.path.remove(str(BENCH))
    from sladeck.store import Store

    fx = _harness.build_db(tmp_path / "f.db", 120, 30)
    store = Store(fx.path)
    try:
        assert store.counts() == {"closed": 30, "open": store.counts()["open"],
                                  "acknowledged": store.counts()["acknowledged"]}
        assert sum(store.counts().values()) == 150
        assert store.last_seq() == 1
        assert max(i.changed_seq for i in store.incidents(None)) <= store.last_seq()
        assert store.integrity_check() == "ok"
        assert all(len(ids) == 5 for ids in fx.needle_ids.values())
    finally:
        store.close()
