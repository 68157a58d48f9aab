"""`sladeck watch` CPU over an idle stretch, against the dashboard on the same database.

A database of `--open` open incidents (and `--closed` closed ones) is built, and one
`sladeck watch --once` records the notices it already owes (not measured: that is the
first start's work, once). Then, alternately, the dashboard (on a pty, 120x36) and
`sladeck watch` run; after each is ready (its first frame; the watch's `watching` line)
and a settle period, user+system CPU (/proc/<pid>/stat) is counted over `--idle`
seconds while nothing changes. Target: the watch ≤ the dashboard.
"""

from __future__ import annotations

import subprocess

import _harness as h


def measure(argv: list[str], needle: bytes, idle: float, settle: float) -> float:
    """CPU seconds over `idle` seconds once `needle` was printed."""
    with h.PtyApp(argv) as app:
        app.wait_for(needle, 600)
        app.pump(settle)
        app.keep = False
        cpu = app.cpu_seconds()
        app.pump(idle)
        return app.cpu_seconds() - cpu


def main() -> None:
    parser = h.common_args(__doc__.splitlines()[0], runs=3)
    parser.add_argument("--idle", type=float, default=60.0, help="idle seconds per run")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds after start-up before counting")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.open_count, args.closed_count = 1, 200, 500
        args.idle, args.settle = min(args.idle, 3.0), 0.5
    work = h.workdir(args)
    horizon = (args.idle + args.settle + 10) * 2 * args.runs / 60 + 5
    db = h.build_db(work / "watch.db", args.open_count, args.closed_count,
                    horizon_minutes=horizon)
    dashboard = h.sladeck_argv(db.path)
    watch = [*dashboard, "watch"]
    subprocess.run([*watch, "--once"], check=True, capture_output=True, env=h.clean_env())
    cpu: dict[str, list[float]] = {"dashboard": [], "watch": []}
    for _ in range(args.runs):
        cpu["dashboard"].append(measure(dashboard, b"INC-", args.idle, args.settle))
        cpu["watch"].append(measure(watch, b"watching", args.idle, args.settle))
    dash, value = h.median(cpu["dashboard"]), h.median(cpu["watch"])
    h.report([h.Figure(
        f"CPU of sladeck watch over {args.idle:g} s idle, {args.open_count:,} open", value, "s",
        dash, "≤ 1× the dashboard", value <= dash if dash else None,
        f"runs {', '.join(f'{v:.3f}' for v in cpu['watch'])} s; dashboard runs "
        f"{', '.join(f'{v:.3f}' for v in cpu['dashboard'])} s")], args)


if __name__ == "__main__":
    main()
