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
    parser.add_argument("--huge", type=int, default=100_000,
                        help="open incidents of the large case (0: skip it)")
    parser.add_argument("--huge-settle", type=float, default=10.0,
                        help="seconds after the first frame before reading the large case's "
                             "peak memory: its rows load in steps for a few seconds, and the "
                             "peak is the one after they are all in")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.open_count, args.closed_count, args.settle = 1, 200, 500, 0.3
        args.huge, args.huge_settle = min(args.huge, 300), 0.3
    work = h.workdir(args)
    # (name, fixture, first-frame limit, RSS limit, settle): the usual desk, and one with
    # every incident open (issue 12: 100,000 open).
    cases = [(f"{args.open_count:,} open + {args.closed_count:,} closed",
              h.build_db(work / "startup.db", args.open_count, args.closed_count), 1.3, 1.5,
              args.settle)]
    # The same open incidents with no closed one: closed incidents must cost the first
    # frame nothing (the queue never reads them; the closed view reads them on demand).
    cases.append(("no closed", h.build_db(work / "startup-no-closed.db", args.open_count, 0),
                  1.3, 1.5, args.settle))
    if args.huge:
        cases.append((f"{args.huge:,} open", h.build_db(work / "startup-huge.db", args.huge, 0),
                      1.5, 2.0, args.huge_settle))
    settle = {"bare": args.settle, **{c[0]: c[4] for c in cases}}
    frames: dict[str, list[float]] = {"bare": [], **{c[0]: [] for c in cases}}
    peaks: dict[str, list[float]] = {"bare": [], **{c[0]: [] for c in cases}}
    for _ in range(args.runs):
        for who, argv, needle in (("bare", h.bare_argv("bare_static.py"), b"BARE-READY"),
                                  *((c[0], h.sladeck_argv(c[1].path), b"INC-") for c in cases)):
            with h.PtyApp(argv) as app:
                frames[who].append(app.wait_for(needle, 120) - app.started)
                app.pump(settle[who])
                peaks[who].append(app.peak_rss_kib())
    bare_frame, bare_peak = h.median(frames["bare"]), h.median(peaks["bare"])
    figures = []
    for size, _fx, frame_limit, rss_limit, _settle in cases:
        if size == "no closed":
            continue
        first, peak = h.median(frames[size]), h.median(peaks[size])
        figures += [
            h.Figure(f"time to first frame, {size}", first, "s", bare_frame,
                     f"≤ {frame_limit}×", first / bare_frame <= frame_limit,
                     f"runs {', '.join(f'{v * 1000:.0f}' for v in frames[size])} ms"),
            h.Figure(f"peak RSS, {size}", peak, "KiB", bare_peak, f"≤ {rss_limit}×",
                     peak / bare_peak <= rss_limit),
        ]
    usual, none = h.median(frames[cases[0][0]]), h.median(frames["no closed"])
    figures.append(h.Figure(
        f"dashboard first frame with {args.closed_count:,} closed incidents "
        f"({args.open_count:,} open; baseline: none closed)", usual, "s", none, "≤ 1.1×",
        usual / none <= 1.1,
        f"runs without closed {', '.join(f'{v * 1000:.0f}' for v in frames['no closed'])} ms"))
    h.report(figures, args)


if __name__ == "__main__":
    main()
