"""Child processes for tests/test_concurrency.py: `python stress_worker.py MODE JSON`.

Each mode is one kind of person (or dashboard, or importer) working on the shared
database file. Children report what they did on standard output, one JSON object a
line, written with os.write right after the action returned (so a line is only ever
there for an action that committed). Barriers are files: a child waits for `go` to
appear so the parent can release many at once.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import traceback
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def report(**fields: Any) -> None:
    os.write(1, (json.dumps(fields) + "\n").encode())


def wait_for(path: str | Path, timeout: float = 60.0) -> None:
    """Poll for a file (the barrier); a deadline, not a sleep, decides."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise SystemExit(f"barrier {path} never appeared")
        time.sleep(0.0005)


def touch(path: str | Path) -> None:
    Path(path).touch()


def desk_for(db: str, name: str, policy_path: str | None = None, at: str | None = None):
    from sladeck.clock import FixedClock, SystemClock
    from sladeck.domain.actions import Desk
    from sladeck.domain.model import Actor
    from sladeck.policy import load_policy
    from sladeck.store import open_store

    policy = load_policy(policy_path or REPO / "policy.yaml")
    store = open_store(db)
    store.adopt(policy)
    clock = FixedClock(datetime.fromisoformat(at)) if at else SystemClock()
    return Desk(store, policy, clock, Actor(name))


def handoff(policy, level: str) -> dict[str, str]:
    return {item.key: f"{item.label} for {level}" for item in policy.escalation[level].handoff}


def trigger(policy, level: str) -> str:
    return next(t.key for t in policy.escalation[level].triggers if t.after is None)


def ndjson(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


# -- 1. chaos: real actions until the parent kills us ------------------------------------

def chaos(db: str, seed: int) -> None:
    """Open, acknowledge, escalate with handoff, resolve and import batches, forever.

    After each action returns, report the kind and the event ids it wrote.
    """
    from sladeck.domain import actions
    from sladeck.domain.ingest import import_ndjson

    rng = random.Random(seed)
    desk = desk_for(db, f"chaos{seed}")
    policy = desk.policy
    report(ready=True)
    while True:
        active = desk.store.incidents()
        roll = rng.random()
        if roll < 0.2 or not active:
            report(start="open")
            out = actions.open_incident(desk, title=f"chaos {seed}",
                                        severity=f"P{rng.randrange(4)}",
                                        dedup_key=f"k{rng.randrange(30)}")
            report(action="open", events=[out.event.id], incident=out.incident.id,
                   kind=out.event.kind)
            continue
        inc = rng.choice(active)
        report(start=True)
        if roll < 0.3:
            lines = [{"title": f"alert {i}", "severity": "P3",
                      "dedup_key": f"k{rng.randrange(30)}"} for i in range(rng.randint(2, 6))]
            rep = import_ndjson(desk, ndjson(lines), f"batch{seed}")
            report(action="import", events=[o.event.id for o in rep.outcomes],
                   kinds=[o.event.kind for o in rep.outcomes])
        elif roll < 0.45:
            out = actions.acknowledge(desk, inc.id, expected_version=inc.version)
            report(action="ack", events=[out.event.id] if out.event else [], incident=inc.id)
        elif roll < 0.75:
            above = policy.next_level(inc.level)
            if above is None:
                report(skipped=True)
                continue
            out = actions.escalate(desk, inc.id, to=above, trigger=trigger(policy, above),
                                   fields=handoff(policy, above), expected_version=inc.version)
            report(action="escalate", events=[out.event.id], incident=inc.id, to=above)
        else:
            before = desk.store.last_seq()
            out = actions.resolve(desk, inc.id, summary="fixed", checks="all",
                                  expected_version=inc.version)
            report(action="resolve", events=list(range(before + 1, out.event.id + 1)),
                   incident=inc.id, state=out.incident.state)


# -- 2. eight people, one incident ----------------------------------------------------------

def race(db: str, worker: int, rounds: list[dict[str, Any]], barrier: str) -> None:
    """Per round: look at the incident, say ready, wait for go, act on what we saw."""
    from sladeck.domain import actions
    from sladeck.errors import SladeckError

    desk = desk_for(db, f"w{worker}")
    for number, round_ in enumerate(rounds):
        seen = desk.store.incident(round_["incident"])
        touch(f"{barrier}/ready-{number}-{worker}")
        wait_for(f"{barrier}/go-{number}")
        try:
            if round_["action"] == "ack":
                out = actions.acknowledge(desk, seen.id, expected_version=seen.version)
            else:
                out = actions.escalate(desk, seen.id, to="L2", trigger=trigger(desk.policy, "L2"),
                                       fields=handoff(desk.policy, "L2"),
                                       expected_version=seen.version)
        except SladeckError as exc:
            report(round=number, changed=False, error=type(exc).__name__, message=str(exc))
        except Exception as exc:
            report(round=number, changed=False, error="unexpected " + type(exc).__name__,
                   message=traceback.format_exc())
        else:
            report(round=number, changed=out.changed, message=out.message)


# -- 4 and 7. many people, mixed read-then-write ---------------------------------------------

def mixed(db: str, worker: int, actions_count: int, barrier: str) -> None:
    """Read the queue, pick an incident, act on the version just read (as a person does)."""
    from sladeck.domain import actions
    from sladeck.domain.ingest import import_ndjson
    from sladeck.errors import Conflict, SladeckError

    rng = random.Random(worker)
    desk = desk_for(db, f"m{worker}")
    policy = desk.policy
    counts = {"done": 0, "changed": 0, "conflicts": 0, "refused": 0, "locked": 0,
              "unexpected": []}
    wait_for(f"{barrier}/go")
    for _ in range(actions_count):
        try:
            active = desk.store.incidents()
            if not active or rng.random() < 0.1:
                out = actions.open_incident(desk, title=f"from m{worker}",
                                            severity=rng.choice(("P1", "P2", "P3")),
                                            dedup_key=f"key{rng.randrange(20)}")
            else:
                inc = rng.choice(active)
                desk.store.detail(inc.id)  # what the detail screen reads
                roll = rng.random()
                above = policy.next_level(inc.level)
                if roll < 0.2:
                    out = actions.acknowledge(desk, inc.id, expected_version=inc.version)
                elif roll < 0.4 and above:
                    out = actions.escalate(desk, inc.id, to=above, trigger=trigger(policy, above),
                                           fields=handoff(policy, above),
                                           expected_version=inc.version)
                elif roll < 0.55:
                    out = actions.add_note(desk, inc.id, f"note from m{worker}")
                elif roll < 0.65:
                    out = actions.assign(desk, inc.id, f"m{worker}", expected_version=inc.version)
                elif roll < 0.75:
                    out = actions.tick(desk, inc.id, "triage",
                                       rng.choice(policy.checklists["triage"]).key)
                elif roll < 0.85:
                    rep = import_ndjson(desk, ndjson([
                        {"title": "alert", "severity": "P3", "dedup_key": f"key{rng.randrange(20)}"}
                        for _ in range(3)]), f"m{worker}")
                    out = rep.outcomes[-1]
                else:
                    out = actions.resolve(desk, inc.id, summary="done", checks="all",
                                          expected_version=inc.version)
            counts["done"] += 1
            counts["changed"] += out.changed
        except Conflict:
            counts["conflicts"] += 1
        except SladeckError as exc:
            if "locked" in str(exc).lower() or "busy" in str(exc).lower():
                counts["locked"] += 1
                counts["unexpected"].append(str(exc))
            else:
                counts["refused"] += 1
        except Exception as exc:
            if "locked" in str(exc).lower():
                counts["locked"] += 1
            counts["unexpected"].append(traceback.format_exc())
    report(**counts)


def appender(db: str, worker: int, count: int, incident: int, barrier: str) -> None:
    """Notes only: the purest contest for the next event id."""
    from sladeck.domain import actions

    desk = desk_for(db, f"a{worker}")
    wait_for(f"{barrier}/go")
    ids = [actions.add_note(desk, incident, f"a{worker} #{i}").event.id for i in range(count)]
    report(worker=worker, ids=ids)


# -- 5. importers released together ------------------------------------------------------------

def importer(db: str, file: str, barrier: str) -> None:
    wait_for(f"{barrier}/go")
    from sladeck.cli import main

    main(["--db", db, "import", file])


# -- 6. three dashboards see the same deadline pass ----------------------------------------

def notices(db: str, worker: int, policy_path: str, at: str, barrier: str) -> None:
    """What a dashboard does when an incident turns due: record once, run the hook if ours."""
    from sladeck.domain import actions
    from sladeck.hooks import run_hook
    from sladeck.report import incident_json

    desk = desk_for(db, f"dash{worker}", policy_path, at)
    incidents = desk.store.incidents()
    wait_for(f"{barrier}/go")
    recorded = actions.record_notices(desk, incidents)
    for incident, event in recorded:
        policy = desk.store.policy(incident.policy_id)
        run_hook(policy.notifications, {
            "event": event.kind, "clock": event.payload.get("clock"),
            "incident": incident_json(incident, policy, desk.clock.now())})
    report(worker=worker, recorded=[[e.id, e.kind, e.payload.get("clock")] for _, e in recorded])


# -- 8. writers that keep going until told to stop ----------------------------------------------

def writer(db: str, worker: int, stop: str) -> None:
    from sladeck.domain import actions
    from sladeck.errors import SladeckError

    rng = random.Random(worker)
    desk = desk_for(db, f"wr{worker}")
    policy = desk.policy
    done = 0
    report(ready=True)
    while not os.path.exists(stop):
        try:
            active = desk.store.incidents()
            if len(active) < 5 or rng.random() < 0.3:
                actions.open_incident(desk, title=f"wr{worker}", severity="P2")
            else:
                inc = rng.choice(active)
                above = policy.next_level(inc.level)
                if above and rng.random() < 0.5:
                    actions.escalate(desk, inc.id, to=above, trigger=trigger(policy, above),
                                     fields=handoff(policy, above), expected_version=inc.version)
                else:
                    actions.resolve(desk, inc.id, summary="ok", checks="all",
                                    expected_version=inc.version)
            done += 1
        except SladeckError as exc:
            if "locked" in str(exc):
                raise
    report(worker=worker, done=done)


def steady(db: str, worker: int, stop: str) -> None:
    """`writer`, reporting each action's events once committed, and going on after a
    refusal (a server restarting): what it reported done must be in the database."""
    import time as _time

    from sladeck.domain import actions
    from sladeck.errors import Conflict, SladeckError

    rng = random.Random(worker)
    desk = desk_for(db, f"st{worker}")
    policy = desk.policy
    report(ready=True)
    while not os.path.exists(stop):
        try:
            active = desk.store.incidents()
            if len(active) < 5 or rng.random() < 0.3:
                out = actions.open_incident(desk, title=f"st{worker}", severity="P2")
            else:
                inc = rng.choice(active)
                above = policy.next_level(inc.level)
                if above and rng.random() < 0.5:
                    out = actions.escalate(desk, inc.id, to=above, trigger=trigger(policy, above),
                                           fields=handoff(policy, above),
                                           expected_version=inc.version)
                else:
                    out = actions.resolve(desk, inc.id, summary="ok", checks="all",
                                          expected_version=inc.version)
            report(done=out.event.id if out.event else None)
        except Conflict:
            pass
        except SladeckError as exc:
            if "locked" in str(exc):
                raise
            report(refused=str(exc))
            _time.sleep(0.05)


# -- 9. migrations ---------------------------------------------------------------------------

def migrate(db: str, log: str, barrier: str, hang: str | None) -> None:
    """Open a v1 database (the migration runs); log when this process runs step 2.

    With `hang`, step 2 does its work, signals by creating that file, and sleeps until
    killed: a process dying in the middle of a migration.
    """
    from sladeck.store import schema as store_module

    real = store_module.MIGRATIONS[1]

    def step2(db_) -> None:
        real(db_)
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        if hang:
            touch(hang)
            time.sleep(600)

    store_module.MIGRATIONS = (*store_module.MIGRATIONS[:1], step2, *store_module.MIGRATIONS[2:])
    if barrier:
        wait_for(f"{barrier}/go")
    from sladeck.domain import actions

    desk = desk_for(db, f"mig{os.getpid()}")
    out = actions.open_incident(desk, title="after migration", severity="P3")
    report(version=desk.store.schema_version(), incident=out.incident.id)


MODES = {"chaos": chaos, "race": race, "mixed": mixed, "appender": appender,
         "importer": importer, "notices": notices, "writer": writer, "migrate": migrate,
         "steady": steady}

if __name__ == "__main__":
    os.environ.setdefault("TZ", "UTC")
    MODES[sys.argv[1]](**json.loads(sys.argv[2]))
