"""Shared fixtures: a fixed clock, the shipped policy, a temporary database, a desk."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sladeck.cli import main as cli_main
from sladeck.clock import FixedClock
from sladeck.domain.actions import Desk
from sladeck.domain.model import Actor
from sladeck.policy import Policy, load_policy
from sladeck.store import Store

# Thursday 2026-11-26 15:00 UTC = 10:00 in New York: inside the policy's business hours.
T0 = datetime(2026, 11, 26, 15, 0, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parent.parent

os.environ.setdefault("TZ", "UTC")
# The parsed-policy cache (and anything else platformdirs places) stays out of the
# home of whoever runs the tests; subprocesses inherit it.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="sladeck-tests-cache-")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy(REPO / "policy.yaml")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "sladeck.db"


@pytest.fixture
def store(db_path: Path):
    s = Store(db_path)
    yield s
    s.close()


@pytest.fixture
def desk(store: Store, policy: Policy, clock: FixedClock) -> Desk:
    return Desk(store, policy, clock, Actor("tester", "Tess"))


@pytest.fixture
def make_desk(store: Store, policy: Policy, clock: FixedClock):
    """A desk for another person on the same database and clock."""
    def make(name: str) -> Desk:
        return Desk(store, policy, clock, Actor(name))
    return make


def call_cli(*argv: str) -> tuple[int, str, str]:
    """`sladeck.cli.main(argv)` in this process: (exit status, stdout, stderr), never a traceback."""
    out, err = io.StringIO(), io.StringIO()
    code: Any = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli_main(list(argv))
        except SystemExit as exc:
            code = exc.code
    assert "Traceback" not in err.getvalue()
    return (0 if code is None else code), out.getvalue(), err.getvalue()
