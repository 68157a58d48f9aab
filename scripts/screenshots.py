"""Regenerate screenshots/*.svg: the real dashboard on demo data, at a fixed instant.

    python scripts/screenshots.py [OUT_DIR]      # default: screenshots/ in the repository

The demo database lives in a temporary directory and the clock is frozen, so the
pictures only change when the dashboard does.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from textual.pilot import Pilot

from sladeck.clock import FixedClock
from sladeck.demo import fill_demo
from sladeck.domain.model import Actor
from sladeck.policy import load_policy
from sladeck.store import Store
from sladeck.tui.app import SladeckApp

REPO = Path(__file__).resolve().parent.parent
# Thursday 15:00 UTC: inside the shipped policy's business hours.
AT = datetime(2026, 11, 26, 15, 0, 0, tzinfo=UTC)
ACTOR = Actor("oncall", "Olu")

Step = Callable[[Pilot], Awaitable[None]]


async def _queue(pilot: Pilot) -> None:
    await pilot.press("down", "down")


async def _escalate_missing(pilot: Pilot) -> None:
    await pilot.press("down", "down", "e")
    await pilot.pause()
    await pilot.press("ctrl+s")


async def _detail(pilot: Pilot) -> None:
    await pilot.press("down", "enter")


async def _help(pilot: Pilot) -> None:
    await pilot.press("question_mark")


async def _reports(pilot: Pilot) -> None:
    await pilot.press("R")


async def _digest(pilot: Pilot) -> None:
    await pilot.press("D")


async def _follow_ups(pilot: Pilot) -> None:
    await pilot.press("F")


async def _still(pilot: Pilot) -> None:
    """As it opens."""


SHOTS: tuple[tuple[str, tuple[int, int], Step], ...] = (
    ("queue", (120, 36), _queue),
    ("queue-80x24", (80, 24), _queue),
    ("escalate-missing-fields", (120, 36), _escalate_missing),
    ("detail", (120, 36), _detail),
    ("help", (120, 36), _help),
    ("reports", (120, 36), _reports),
    ("digest", (120, 36), _digest),
    ("follow-ups", (120, 36), _follow_ups),
    ("board", (120, 36), _still),  # `sladeck board` (a name starting "board": BoardApp)
    ("board-80x24", (80, 24), _still),
)


async def _shoot(db: Path, out: Path, name: str, size: tuple[int, int], step: Step) -> Path:
    policy = load_policy(REPO / "policy.yaml")
    kind = SladeckApp
    if name.startswith("board"):
        from sladeck.tui.board import BoardApp

        kind = BoardApp
    app = kind(db, policy, ACTOR, clock=FixedClock(AT), poll_interval=None,
               tick_interval=None, bell=False, run_hooks=False, cursor_blink=False)
    app.animation_level = "none"
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await step(pilot)
        await app.workers.wait_for_complete()
        await pilot.pause()
        app.save_screenshot(f"{name}.svg", str(out))
    return out / f"{name}.svg"


def main(out_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Write every screenshot into `out_dir`; returns the files written."""
    os.environ["TZ"] = "UTC"  # the pictures show times in UTC wherever they are made
    time.tzset()
    out = Path(out_dir) if out_dir is not None else REPO / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "demo.db"
        store = Store(db)
        fill_demo(store, load_policy(REPO / "policy.yaml"), ACTOR, AT)
        store.close()
        for name, size, step in SHOTS:
            written.append(asyncio.run(_shoot(db, out, name, size, step)))
    return written


if __name__ == "__main__":
    for path in main(sys.argv[1] if len(sys.argv) > 1 else None):
        print(path)
