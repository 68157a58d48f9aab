"""Shared pieces of the benchmarks: fixture databases, a pty runner, /proc readings, tables.

Nothing here is imported by sladeck itself; the benchmark scripts put this folder on
`sys.path` (Python does that for a script's own folder).

Fixture databases are written straight into the schema `Store` creates (building
110,000 incidents through the domain actions takes minutes). The rows are valid
incidents; what is *not* kept is the event history: there is one genuine
`opened` event (a correct first link of the hash chain) and every row carries
`changed_seq = 1`, so the dashboard's "changed since" poll works, but
`sladeck verify` would report the missing timelines. See README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pty
import random
import select
import shutil
import signal
import statistics
import struct
import sys
import termios
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
COLS, ROWS = 120, 36  # wide enough for the queue's ASSIGNEE and SERVICE columns

# Characters no generated title, service or assignee contains: typing one in the
# `/` filter leaves only the "needle" incidents on screen.
NEEDLES = "@#%+=&"
WORDS = ("api", "latency", "errors", "timeout", "disk", "usage", "high", "on", "for", "in",
         "replica", "lag", "failed", "deploy", "queue", "backlog", "growing", "certificate",
         "expiry", "pods", "restarting", "memory", "pressure", "cache", "misses", "login",
         "slow", "webhook", "retries", "batch", "job", "stuck", "dns", "resolution", "flapping")
SERVICES = ("checkout", "orders-db", "search", "auth", "payments", "billing", "exports",
            "webhooks", "logging", "ci", "status-page", "reports", "notifications", "cdn")
PEOPLE = ("alice", "bob", "chen", "dana", "emeka", "farah", "goran", "hana")


# -- fixture databases ----------------------------------------------------------------


@dataclass
class Fixture:
    path: Path
    open_count: int
    closed_count: int
    needle_ids: dict[str, list[int]] = field(default_factory=dict)
    build_seconds: float = 0.0


def _remove_db(path: Path) -> None:
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        p.unlink(missing_ok=True)


def build_db(path: Path, open_count: int, closed_count: int, *, horizon_minutes: float = 20,
             max_age_minutes: float = 40, seed: int = 1) -> Fixture:
    """A database with `closed_count` closed and `open_count` open incidents.

    Open incidents are spread over the last `max_age_minutes` across severities, levels,
    open/acknowledged and assignees, so the queue shows breached, due, warning and
    ok rows with countdowns ticking every second (under an hour a countdown shows
    seconds). Each one is chosen so that its
    risk does not change for `horizon_minutes`: an idle minute measured now and one
    measured ten minutes later see the same screen, and no SLA alert (a toast, a bell
    and a write) fires during a measurement; nor does a re-page (the stored policy has
    none, see below).
    """
    from sladeck.domain.clocks import assess
    from sladeck.domain.model import ACKNOWLEDGED, CLOSED, OPEN, Actor, Incident, to_iso
    from sladeck.policy import load_policy, parse_policy
    from sladeck.store import INCIDENT_COLUMNS, WRITTEN_COLUMNS, Store
    from sladeck.store.rows import incident_from_row, sla_values

    started = time.perf_counter()
    rng = random.Random(seed)
    _remove_db(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The shipped policy with re-pages off: a breached incident nobody acknowledges is
    # paged again every 15 minutes, each page a write, a hook and the bell at its own
    # instant (at 100,000 open, dozens a second): work, not idling. Every other rule,
    # and so every row, countdown and risk, is the shipped policy's.
    # The dashboard runs on the same text (`--policy`, `policy_file`), as a team's does.
    text = load_policy(None).source.replace("repage_limit: 3", "repage_limit: 0")
    policy = parse_policy(text)
    policy_file(path).write_text(text, encoding="utf-8")
    levels = policy.levels
    severities = tuple(policy.severities)
    now = datetime.now(UTC)
    later = now + timedelta(minutes=horizon_minutes)
    store = Store(path)
    fixture = Fixture(path, open_count, closed_count)

    def reached(upto: str, opened: datetime, entered: datetime) -> str:
        out = {lv: (opened if i == 0 else entered) for i, lv in
               enumerate(levels[: levels.index(upto) + 1])}
        return json.dumps({k: to_iso(v) for k, v in out.items()})

    def with_schedule(row: dict[str, Any]) -> tuple[Any, ...]:
        """The row in WRITTEN_COLUMNS' order: its columns, then its stored SLA schedule."""
        values = tuple(row.get(c) for c in INCIDENT_COLUMNS)
        return (*values, *sla_values(incident_from_row(values), policy))

    def title() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 7))).capitalize()

    rows: list[tuple[Any, ...]] = []
    next_id = 1
    with store.write() as tx:
        policy_id = tx.policy_id(policy, now)
        for _ in range(closed_count):
            opened = now - timedelta(days=rng.uniform(2, 400))
            resolved = opened + timedelta(minutes=rng.uniform(5, 600))
            closed = resolved + timedelta(minutes=rng.uniform(0, 2000))
            acked = opened + timedelta(minutes=rng.uniform(0, 5))
            who = rng.choice(PEOPLE)
            row = dict(
                id=next_id, title=title(), description="", service=rng.choice(SERVICES),
                severity=rng.choice(severities), level=levels[0], state=CLOSED, assignee=who,
                external_ref=None, dedup_key=None, opened_at=to_iso(opened), opened_by=who,
                level_entered_at=to_iso(opened), acknowledged_at=to_iso(acked),
                acknowledged_by=who, resolved_at=to_iso(resolved), closed_at=to_iso(closed),
                reached=reached(levels[0], opened, opened), repeats=0, policy_id=policy_id,
                version=4, changed_seq=1, updated_at=to_iso(closed), updated_by=who,
                last_change="closed")
            rows.append(with_schedule(row))
            next_id += 1

        def open_row(incident_id: int, name: str, severity: str, ago: float, level: str,
                     ack: bool, assignee: str | None) -> dict[str, Any]:
            opened = now - timedelta(minutes=ago)
            entered = opened if level == levels[0] else opened + timedelta(minutes=ago / 3)
            acked = entered + (now - entered) * 0.1 if ack else None
            return dict(
                id=incident_id, title=name, description="", service=rng.choice(SERVICES),
                severity=severity, level=level, state=ACKNOWLEDGED if ack else OPEN,
                assignee=assignee, external_ref=None, dedup_key=None, opened_at=opened,
                opened_by="bench", level_entered_at=entered, acknowledged_at=acked,
                acknowledged_by="bench" if ack else None, resolved_at=None, closed_at=None,
                reached=reached(level, opened, entered), repeats=0, policy_id=policy_id,
                version=1 + (level != levels[0]) + ack + (assignee is not None), changed_seq=1,
                updated_at=max(opened, entered, acked or opened), updated_by="bench",
                last_change="opened")

        def stable(row: dict[str, Any]) -> bool:
            values = dict(row)
            values["reached"] = {k: datetime.fromisoformat(v.replace("Z", "+00:00"))
                                 for k, v in json.loads(values["reached"]).items()}
            incident = Incident(**values)
            return assess(incident, policy, now).risk == assess(incident, policy, later).risk

        needles = {c: [] for c in NEEDLES} if open_count >= 100 else {}
        needle_slots = [c for c in needles for _ in range(5)]
        for n in range(open_count):
            if n < len(needle_slots):  # acknowledged P3s opened just now: the queue's bottom
                c = needle_slots[n]
                row = open_row(next_id, f"Needle{c} {title()}", severities[-1], 0.5, levels[0],
                               True, None)
                needles[c].append(next_id)
            else:  # draw again until the risk holds still over the horizon
                for _attempt in range(1000):
                    severity = rng.choices(severities,
                                           weights=(5, 20, 35, 40)[: len(severities)])[0]
                    level = levels[0] if rng.random() < 0.8 else levels[1]
                    ack = rng.random() < 0.4
                    who = rng.choice(PEOPLE) if rng.random() < 0.3 else None
                    row = open_row(next_id, title(), severity, rng.uniform(1, max_age_minutes),
                                   level, ack, who)
                    if stable(row):
                        break
            for key in ("opened_at", "level_entered_at", "acknowledged_at", "updated_at"):
                if row[key] is not None:
                    row[key] = to_iso(row[key])
            rows.append(with_schedule(row))
            next_id += 1
        store.conn.executemany(
            f"INSERT INTO incidents ({', '.join(WRITTEN_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(WRITTEN_COLUMNS))})", rows)
        if rows:  # one genuine event, the first link of the chain: changed_seq 1 is real
            tx.append_event(1, 1, now, Actor("bench", "bench"), "opened",
                            {"note": "benchmark fixture; rows written directly"})
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    fixture.needle_ids = needles
    fixture.build_seconds = time.perf_counter() - started
    return fixture


# -- running programs -----------------------------------------------------------------


def compile_sladeck() -> None:
    """Byte-compile sladeck as `pip install` does (and as Python does on a first run
    unless PYTHONDONTWRITEBYTECODE is set): the baseline's Textual is compiled, so an
    editable checkout must not pay for compiling its sources on every measured start."""
    import compileall

    import sladeck

    compileall.compile_dir(str(Path(sladeck.__file__).parent), quiet=2)


def policy_file(db: Path) -> Path:
    """The policy a fixture's incidents were opened under (`build_db` writes it)."""
    return db.with_name(db.name + ".policy.yaml")


def sladeck_argv(db: Path | str, policy: Path | None = None) -> list[str]:
    """`sladeck --db DB`, with the fixture's policy (`policy`, or the one beside a
    fixture file) so the incidents' stored policy is the one in use."""
    compile_sladeck()
    exe = Path(sys.executable).with_name("sladeck")
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "sladeck"]
    if policy is None and "://" not in str(db) and policy_file(Path(db)).exists():
        policy = policy_file(Path(db))
    return [*base, "--db", str(db), *(["--policy", str(policy)] if policy else [])]


def bare_argv(name: str) -> list[str]:
    return [sys.executable, str(HERE / name)]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTUAL")}
    env.update(TERM="xterm-256color", COLUMNS=str(COLS), LINES=str(ROWS), **extra)
    env.pop("NO_COLOR", None)
    return env


class PtyApp:
    """A program on the slave side of a pseudo-terminal; we are the terminal."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None,
                 cols: int = COLS, rows: int = ROWS) -> None:
        self.started = time.perf_counter()
        pid, fd = pty.fork()
        if pid == 0:  # the child: size the terminal, then become the program
            try:
                import fcntl

                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
                os.execvpe(argv[0], list(argv), env or clean_env())
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.out = bytearray()
        self.total = 0
        self.keep = True  # False: count bytes only (idle minutes)
        self.rusage: Any = None

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return False
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            raise EOFError("the program closed the terminal")
        self.total += len(chunk)
        if self.keep:
            self.out += chunk
        return True

    def pump(self, seconds: float) -> None:
        """Read (and so never block) the program for `seconds`."""
        end = time.perf_counter() + seconds
        while (left := end - time.perf_counter()) > 0:
            self._read(left)

    def mark(self) -> int:
        return len(self.out)

    def wait_for(self, needle: bytes, timeout: float, since: int = 0) -> float:
        """perf_counter() when `needle` first appears after offset `since`."""
        end = time.perf_counter() + timeout
        start = since
        while True:
            if self.out.find(needle, start) >= 0:
                return time.perf_counter()
            start = max(since, len(self.out) - len(needle) + 1)
            left = end - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"{needle!r} did not appear within {timeout} s")
            self._read(min(left, 0.05))

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.pid)

    def peak_rss_kib(self) -> int:
        return proc_status_kib(self.pid, "VmHWM")

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            _, _, self.rusage = os.wait4(self.pid, 0)
        os.close(self.fd)

    def __enter__(self) -> PtyApp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) from /proc/<pid>/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def proc_status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def timed_run(argv: Sequence[str], env: dict[str, str] | None = None,
              stdin: Any = None) -> float:
    """Wall seconds of one command (output discarded); raises if it fails."""
    import subprocess

    started = time.perf_counter()
    result = subprocess.run(argv, env=env, stdin=stdin, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} failed: {result.stderr.decode()[-500:]}")
    return elapsed


def sqlite_utils_exe() -> str:
    exe = Path(sys.executable).with_name("sqlite-utils")
    return str(exe) if exe.exists() else (shutil.which("sqlite-utils") or "sqlite-utils")


# -- results --------------------------------------------------------------------------


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    baseline: float | None = None  # same unit, measured in the same run
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline if self.baseline else None


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "s" and value < 1:
        return f"{value * 1000:.1f} ms"
    if unit == "KiB":
        return f"{value / 1024:.1f} MiB"
    if unit == "B":
        return f"{value / 1024:.1f} KiB" if value >= 1024 else f"{value:.0f} B"
    return f"{value:.3f} {unit}".strip()


def table(figures: Sequence[Figure]) -> str:
    head = ("figure", "sladeck", "baseline", "ratio", "target", "met")
    body = [(f.name, fmt(f.value, f.unit), fmt(f.baseline, f.unit),
             f"{f.ratio:.2f}×" if f.ratio is not None else "—", f.target,
             {True: "yes", False: "NO", None: "—"}[f.met]) for f in figures]
    widths = [max(len(r[i]) for r in (head, *body)) for i in range(len(head))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(head, widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
              for r in body]
    notes = [f"- {f.name}: {f.note}" for f in figures if f.note]
    return "\n".join(lines + notes)


def report(figures: Sequence[Figure], args: argparse.Namespace) -> None:
    print(table(figures), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(
            [{**f.__dict__, "ratio": f.ratio} for f in figures], indent=2))


def common_args(description: str, **defaults: Any) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and one run: proves the script works, measures nothing")
    parser.add_argument("--runs", type=int, default=defaults.get("runs", 5),
                        help="runs per measurement (the median is reported)")
    parser.add_argument("--open", dest="open_count", type=int,
                        default=defaults.get("open_count", 10_000), help="open incidents")
    parser.add_argument("--closed", dest="closed_count", type=int,
                        default=defaults.get("closed_count", 100_000), help="closed incidents")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the fixture databases go (default: a temporary folder)")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    return parser


def workdir(args: argparse.Namespace) -> Path:
    import tempfile

    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        return args.workdir
    return Path(tempfile.mkdtemp(prefix="sladeck-bench-"))
