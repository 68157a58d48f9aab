"""CPU seconds and terminal bytes over an idle stretch, against a bare ticking Textual app.

Each program runs on a pseudo-terminal (120x36). After its first frame and a settle
period, user+system CPU (/proc/<pid>/stat) and the bytes it writes to the terminal
are counted over `--idle` seconds while nobody touches it. The dashboard's countdowns
and summary clock tick every second; the baseline is a bare Textual app whose one
label shows the time, updated every second. Runs alternate between the programs.
"""

from __future__ import annotations

import _harness as h


def measure(argv: list[str], needle: bytes, idle: float, settle: float
            ) -> tuple[float, int, int]:
    """(CPU seconds, bytes written) over `idle` seconds, and the first frame's bytes."""
    with h.PtyApp(argv) as app:
        app.wait_for(needle, 60)
        app.pump(settle)
        first_frame = app.total
        app.keep = False
        cpu, written = app.cpu_seconds(), app.total
        app.pump(idle)
        return app.cpu_seconds() - cpu, app.total - written, first_frame


def main() -> None:
    parser = h.common_args(__doc__.splitlines()[0], runs=3)
    parser.add_argument("--idle", type=float, default=60.0, help="idle seconds per run")
    parser.add_argument("--small", type=int, default=1_000, help="open incidents, small case")
    parser.add_argument("--huge", type=int, default=100_000,
                        help="open incidents, large case (0: skip it)")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds after the first frame before counting")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.open_count, args.closed_count, args.small = 1, 200, 500, 50
        args.huge = min(args.huge, 300)
        args.idle, args.settle = min(args.idle, 3.0), 0.5
    work = h.workdir(args)
    horizon = (args.idle + args.settle + 10) * 3 * args.runs / 60 + 5
    big = h.build_db(work / "idle-big.db", args.open_count, args.closed_count,
                     horizon_minutes=horizon)
    small = h.build_db(work / "idle-small.db", args.small, 0, horizon_minutes=horizon)
    progs = {"bare": (h.bare_argv("bare_ticker.py"), b"BARE-READY"),
             "big": (h.sladeck_argv(big.path), b"INC-"),
             "small": (h.sladeck_argv(small.path), b"INC-")}
    if args.huge:  # issue 12: every one of 100,000 incidents open
        huge = h.build_db(work / "idle-huge.db", args.huge, 0, horizon_minutes=horizon)
        progs["huge"] = (h.sladeck_argv(huge.path), b"INC-")
    cpu: dict[str, list[float]] = {k: [] for k in progs}
    written: dict[str, list[int]] = {k: [] for k in progs}
    frame: dict[str, int] = {}
    for _ in range(args.runs):
        for who, (argv, needle) in progs.items():
            c, b, f = measure(argv, needle, args.idle, args.settle)
            cpu[who].append(c)
            written[who].append(b)
            frame[who] = f
    per = args.idle
    bare = h.median(cpu["bare"])
    figures = []
    cases = [("big", args.open_count, "≤ 1.5×", 1.5), ("small", args.small, "≤ 1.2×", 1.2)]
    if args.huge:
        cases.append(("huge", args.huge, "≤ 1.5×", 1.5))
    for who, n, target, limit in cases:
        value = h.median(cpu[who])
        figures.append(h.Figure(
            f"CPU over {per:g} s idle, {n:,} open", value, "s", bare, target,
            value / bare <= limit if bare else None,
            f"runs {', '.join(f'{v:.2f}' for v in cpu[who])} s; baseline runs "
            f"{', '.join(f'{v:.2f}' for v in cpu['bare'])} s"))
    minute = 60 / per
    big_bytes = h.median(written["big"]) * minute
    figures.append(h.Figure(
        f"bytes to the terminal per idle minute, {args.open_count:,} open", big_bytes, "B",
        h.median(written["bare"]) * minute, "only changed cells", None,
        f"= {big_bytes / frame['big']:.1f} first frames' worth (first frame "
        f"{frame['big'] / 1024:.1f} KiB); {args.small:,} open: "
        f"{h.median(written['small']) * minute / 1024:.1f} KiB/min"))
    h.report(figures, args)


if __name__ == "__main__":
    main()
