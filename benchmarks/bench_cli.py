"""The command line: `import` against sqlite-utils, `ack` start-up, `list --json` at 10,000 open.

- `sladeck import` of N NDJSON alert lines into a new database, against
  `sqlite-utils insert DB alerts FILE --nl` of the same file into a new database.
- `sladeck ack ID` (a different open incident each run), against
  `python -c "import sqlite_utils, yaml"`: what any Python CLI on these libraries pays.
  One extra run under `-X importtime` checks that Textual is never imported.
- `sladeck list --json` on the 10,000 open + 100,000 closed database (absolute).
Runs alternate between the program and its baseline; medians are reported.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import _harness as h


def write_ndjson(path: Path, lines: int) -> None:
    rng = random.Random(5)
    with path.open("w") as out:
        for n in range(lines):
            out.write(json.dumps({
                "title": " ".join(rng.choice(h.WORDS) for _ in range(5)).capitalize(),
                "severity": rng.choice(("P0", "P1", "P2", "P3")),
                "service": rng.choice(h.SERVICES), "dedup_key": f"alert-{n}",
                "description": "Raised by the benchmark alert pipeline."}) + "\n")


def main() -> None:
    parser = h.common_args(__doc__.splitlines()[0], runs=5)
    parser.add_argument("--lines", type=int, default=100_000, help="NDJSON lines to import")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.open_count, args.closed_count, args.lines = 1, 200, 500, 300
    work = h.workdir(args)
    env = h.clean_env()
    ndjson = work / "alerts.ndjson"
    write_ndjson(ndjson, args.lines)
    imports: dict[str, list[float]] = {"sladeck": [], "sqlite-utils": []}
    for n in range(args.runs):
        for who in imports:
            db = work / f"import-{who}-{n}.db"
            h._remove_db(db)
            argv = ([*h.sladeck_argv(db), "import", str(ndjson)] if who == "sladeck"
                    else [h.sqlite_utils_exe(), "insert", str(db), "alerts", str(ndjson), "--nl"])
            imports[who].append(h.timed_run(argv, env))
            h._remove_db(db)

    fx = h.build_db(work / "cli.db", args.open_count, args.closed_count)
    from sladeck.store import Store

    store = Store(fx.path)
    open_ids = [r[0] for r in store.conn.execute(
        "SELECT id FROM incidents WHERE state = 'open' ORDER BY id DESC LIMIT ?",
        (args.runs * 3 + 1,)).fetchall()]
    store.close()
    acks: dict[str, list[float]] = {"sladeck": [], "python": []}
    ack_runs = max(args.runs, 1) * 3
    for n in range(ack_runs):
        acks["sladeck"].append(h.timed_run([*h.sladeck_argv(fx.path), "ack", str(open_ids[n])],
                                           env))
        acks["python"].append(h.timed_run([sys.executable, "-c", "import sqlite_utils, yaml"],
                                          env))
    probe = subprocess.run([sys.executable, "-X", "importtime", "-m", "sladeck", "--db",
                            str(fx.path), "ack", str(open_ids[ack_runs])], env=env,
                           capture_output=True, text=True, check=True)
    textual = any(line.split("|")[-1].strip().startswith(("textual", "rich"))
                  for line in probe.stderr.splitlines() if "|" in line)
    lists = [h.timed_run([*h.sladeck_argv(fx.path), "list", "--json"], env)
             for _ in range(args.runs)]

    imp, ack, lst = (h.median(imports["sladeck"]), h.median(acks["sladeck"]), h.median(lists))
    figures = [
        h.Figure(f"`sladeck import` of {args.lines:,} NDJSON lines", imp, "s",
                 h.median(imports["sqlite-utils"]), "≤ 2×",
                 imp / h.median(imports["sqlite-utils"]) <= 2),
        h.Figure("`sladeck ack ID` wall time", ack, "s", h.median(acks["python"]), "≤ 1.5×",
                 ack / h.median(acks["python"]) <= 1.5 and not textual,
                 f"Textual or Rich imported by `ack`: {'YES' if textual else 'no'}"),
        h.Figure(f"`sladeck list --json`, {args.open_count:,} open", lst, "s", None, "≤ 1 s",
                 lst <= 1.0),
    ]
    h.report(figures, args)


if __name__ == "__main__":
    main()
