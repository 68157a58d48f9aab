"""Run every benchmark and print one table (and, with --markdown, a README-ready one).

    .venv/bin/python benchmarks/run_all.py            # the full suite (~20 min)
    .venv/bin/python benchmarks/run_all.py --quick    # seconds: proves every script runs
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _harness as h

SCRIPTS = ("bench_startup.py", "bench_idle.py", "bench_latency.py", "bench_filter.py",
           "bench_cli.py", "bench_receive.py", "bench_watch.py", "bench_postgres.py",
           "bench_reports.py")


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    import os

    import textual

    mem = h.proc_status_kib(os.getpid(), "VmRSS") and next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal"))
    return (f"{cpu}, {os.cpu_count()} cores, {mem / 1024 / 1024:.1f} GiB, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
            f"Textual {textual.__version__}, SQLite {__import__('sqlite3').sqlite_version}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run each")
    parser.add_argument("--idle", type=float, default=None, help="idle seconds per run")
    parser.add_argument("--only", nargs="*", default=None, help="scripts to run")
    parser.add_argument("--json", default=None, help="write every figure to this file")
    args = parser.parse_args()
    here = Path(__file__).resolve().parent
    figures: list[h.Figure] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sladeck-bench-") as tmp:
        for script in args.only or SCRIPTS:
            out = Path(tmp) / f"{script}.json"
            argv = [sys.executable, str(here / script), "--json", str(out),
                    "--workdir", str(Path(tmp) / script)]
            if args.quick:
                argv.append("--quick")
            if args.idle is not None and script in ("bench_idle.py", "bench_watch.py"):
                argv += ["--idle", str(args.idle)]
            print(f"== {script}", flush=True)
            subprocess.run(argv, check=True)
            for item in json.loads(out.read_text()):
                item.pop("ratio")
                figures.append(h.Figure(**item))
    print(f"\n== all figures ({time.perf_counter() - started:.0f} s)\nmachine: {machine()}\n")
    print(h.table(figures))
    if args.json:
        Path(args.json).write_text(json.dumps([f.__dict__ for f in figures], indent=2))


if __name__ == "__main__":
    main()
