"""The cycle collector's switches, in one place: nothing else in sladeck calls
`gc.disable`, `gc.enable` or `gc.freeze` (tests/test_fenced.py checks), and the
domain never touches the collector (its callers pause it).

Each switch is there for a saving measured on the benchmarks' databases (see
benchmarks/README.md). Reference counting frees everything as usual meanwhile: only
cycles wait for the collector.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def collector_off_for_startup() -> None:
    """Off from the very start of `sladeck` until the dashboard's first frame or a
    sub-command's start (`collector_back`).

    Start-up (importing Textual and sladeck, then the first frame) makes hundreds of
    thousands of long-lived objects and almost no cyclic garbage, yet the collector
    walked them again and again: ~35 ms of CPU before the first frame at 10,000 open,
    about a seventh of it (commit d974251); peak memory unchanged.
    """
    gc.disable()


def collector_back() -> None:
    """On again (after `collector_off_for_startup`): a dashboard left open all night
    or an import that runs for minutes must collect its cycles."""
    gc.enable()


def collector_back_after(seconds: float) -> None:
    """Where the collector is off, turn it back on after `seconds` whatever happens (a
    daemon timer): should the dashboard's first frame never settle, it must not stay
    off. A safety net, not a saving."""
    if not gc.isenabled():
        timer = threading.Timer(seconds, gc.enable)
        timer.daemon = True
        timer.start()


def freeze_heap() -> None:
    """Leave everything alive now out of every later full collection (the dashboard
    calls it once, at its first tick).

    Each tick's strips live a second, long enough to reach the oldest generation, so
    about once a minute a full collection walked every object start-up made (all the
    open incidents): 42 ms at 10,000 open. `bench_idle --idle 20 --runs 2`: 175 → 100 ms
    of CPU at 10,000 open (the whole gap to 1,000 open, commit ba089e0). Frozen objects
    are still freed by reference counting; cycles among them are collected just before.
    """
    gc.collect()
    gc.freeze()


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic collection inside, the collector left as found after.

    For a command that builds and keeps many acyclic objects: `sladeck import` (a
    file's lines become hundreds of thousands of objects: ~15 % of a 100,000-line
    import, commit 411296e) and `list --json`/`export` (~8 % of `list --json` at 10,000
    open, commit ccad3dd).
    """
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
