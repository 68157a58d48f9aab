"""`/` filter keystroke → filtered rows on screen, at 10,000 open incidents.

The dashboard runs on a pseudo-terminal. Each run presses `/`, then types one
character that only five "needle" incidents contain (they sort to the bottom of the
queue, so they are off screen until the filter shows them), and times from writing
that keystroke until a needle row reaches the terminal; `esc` then clears the filter.
"""

from __future__ import annotations

import time

import _harness as h


def main() -> None:
    parser = h.common_args(__doc__.splitlines()[0], runs=24)
    args = parser.parse_args()
    if args.quick:
        args.runs, args.open_count, args.closed_count = 2, 200, 500
    fx = h.build_db(h.workdir(args) / "filter.db", args.open_count, args.closed_count)
    times = []
    with h.PtyApp(h.sladeck_argv(fx.path)) as app:
        app.wait_for(b"INC-", 60)
        app.pump(1.0)
        for n in range(args.runs):
            needle = h.NEEDLES[n % len(h.NEEDLES)]
            app.send(b"/")
            app.pump(0.3)
            since = app.mark()
            started = time.perf_counter()
            app.send(needle.encode())
            times.append(app.wait_for(f"Needle{needle}".encode(), 10, since) - started)
            app.pump(0.2)
            app.send(b"\x1b")  # esc: clear the filter (after Textual's escape timeout)
            app.pump(0.7)
    value = h.median(times)
    h.report([h.Figure(f"`/` keystroke → filtered rows, {args.open_count:,} open", value, "s",
                       None, "median ≤ 50 ms", value <= 0.05,
                       f"p95 {h.percentile(times, 0.95) * 1000:.0f} ms, max "
                       f"{max(times) * 1000:.0f} ms over {len(times)} keystrokes")], args)


if __name__ == "__main__":
    main()
