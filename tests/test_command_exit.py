"""How a sub-command ends: its store is closed by the command itself, not left to the
cycle collector at exit (which `runtime.freeze_command_start` keeps off the heap the
imports made)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SLADECK = Path(sys.executable).with_name("sladeck")


def sladeck(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLADECK_")}
    return subprocess.run([str(SLADECK), *args], capture_output=True, text=True, timeout=60,
                          env=env)


def test_a_command_closes_the_database_and_leaves_no_wal_behind(tmp_path: Path) -> None:
    """SQLite removes the -wal and -shm files when the last connection closes: after a
    write and after a read, the folder holds the database alone."""
    db = tmp_path / "desk.db"
    for args in (("open", "--severity", "P2", "--title", "Disk full"), ("ack", "1"),
                 ("list",)):
        out = sladeck("--db", str(db), *args)
        assert out.returncode == 0, out.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["desk.db"], args
