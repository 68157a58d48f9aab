"""Time to the first frame showing the queue, and peak memory, against a bare Textual app.

Both programs run on a pseudo-terminal (120x36) we read as the terminal would. First
frame = process start until the queue's first row text ("INC-") reaches the terminal;
for the baseline, until its one Static's text does. Peak memory = VmHWM from
/proc/<pid>/status once the first frame is out and the app has settled.
Runs alternate between the two programs; medians are reported.
"""

from __future__ import annotations

import _harness as h


def main() -> None:
    parser = h.common_args(__doc__.splitlines()[0], runs=7)
    parser.add_argument("--settle", type=float, default=2.0,
                        help="seconds after the first frame before reading peak memory")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.open_count, args.closed_count, args.settle = 1, 200, 500, 0.3
    fx = h.build_db(h.workdir(args) / "startup.db", args.open_count, args.closed_count)
    # The same open incidents with no closed one: closed incidents must cost the first
    # frame nothing (the queue never reads them; the closed view reads them on demand).
    none = h.build_db(h.workdir(args) / "startup-no-closed.db", args.open_count, 0)
    frames: dict[str, list[float]] = {"bare": [], "sladeck": [], "no closed": []}
    peaks: dict[str, list[float]] = {"bare": [], "sladeck": [], "no closed": []}
    for _ in range(args.runs):
        for who, argv, needle in (("bare", h.bare_argv("bare_static.py"), b"BARE-READY"),
                                  ("sladeck", h.sladeck_argv(fx.path), b"INC-"),
                                  ("no closed", h.sladeck_argv(none.path), b"INC-")):
            with h.PtyApp(argv) as app:
                frames[who].append(app.wait_for(needle, 60) - app.started)
                app.pump(args.settle)
                peaks[who].append(app.peak_rss_kib())
    first = h.median(frames["sladeck"])
    peak = h.median(peaks["sladeck"])
    size = f"{args.open_count:,} open + {args.closed_count:,} closed"
    figures = [
        h.Figure(f"time to first frame, {size}", first, "s", h.median(frames["bare"]),
                 "≤ 1.3×", first / h.median(frames["bare"]) <= 1.3,
                 f"runs {', '.join(f'{v * 1000:.0f}' for v in frames['sladeck'])} ms"),
        h.Figure(f"peak RSS, {size}", peak, "KiB", h.median(peaks["bare"]), "≤ 1.5×",
                 peak / h.median(peaks["bare"]) <= 1.5),
        h.Figure(f"dashboard first frame with {args.closed_count:,} closed incidents "
                 f"({args.open_count:,} open; baseline: none closed)", first, "s",
                 h.median(frames["no closed"]), "≤ 1.1×",
                 first / h.median(frames["no closed"]) <= 1.1,
                 f"runs without closed {', '.join(f'{v * 1000:.0f}' for v in frames['no closed'])}"
                 " ms"),
    ]
    h.report(figures, args)


if __name__ == "__main__":
    main()
