"""`sladeck demo`: realistic sample incidents across every severity, level, state and risk.

Each incident is built by replaying real actions at past instants (a FixedClock
moved along), so the demo data is exactly what people would have produced.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sladeck.clock import FixedClock
from sladeck.domain import actions
from sladeck.domain.model import Actor
from sladeck.policy import Policy
from sladeck.store import Store

PEOPLE = ("alice", "bob", "chen", "dana", "emeka", "farah", "goran", "hana")

# (severity, title, service, opened minutes ago, steps); a step is
# (minutes after opening, action, argument).
SCENARIOS: tuple[tuple[str, str, str, int, tuple[tuple[int, str, str], ...]], ...] = (
    ("P0", "Checkout API returning 503 in every region", "checkout", 3, ()),
    ("P0", "Production orders table lost writes after failover", "orders-db", 40,
     ((2, "ack", ""), (6, "escalate", "L4"), (9, "ack", ""))),
    ("P0", "Suspected credential leak in CI secrets", "ci", 250,
     ((3, "ack", ""), (5, "escalate", "L3"), (20, "note", "Rotating all deploy keys now."))),
    ("P1", "Heartbeat monitoring stopped reporting", "heartbeat", 12, ()),
    ("P1", "MCP Evidence uploads failing with 500", "mcp-evidence", 50,
     ((10, "ack", ""), (25, "assign", "chen"))),
    ("P1", "CI guards not blocking unsigned merges", "ci-guards", 95,
     ((12, "ack", ""), (40, "escalate", "L2"), (52, "ack", ""))),
    ("P1", "Dev MCP ban list not applied to new hosts", "mcp-ban", 150,
     ((8, "ack", ""), (30, "escalate", "L3"))),
    ("P1", "Growth Engine scheduler stuck on phase 10", "growth-engine", 600,
     ((5, "ack", ""), (45, "escalate", "L3"), (50, "ack", ""), (200, "resolve", ""),
      (210, "follow_up", "monitoring:-1"))),
    ("P2", "Search latency p95 above 2 s", "search", 20, ()),
    ("P2", "Nightly export job skipped two tenants", "exports", 70,
     ((30, "ack", ""), (35, "assign", "dana"))),
    ("P2", "Config drift between staging and prod", "config", 160,
     ((40, "ack", ""), (110, "escalate", "L2"))),
    ("P2", "Webhook retries piling up for one partner", "webhooks", 46, ()),
    ("P2", "Dashboard widgets slow to load for EU users", "dashboard", 300,
     ((20, "ack", ""), (100, "escalate", "L2"), (115, "ack", ""), (250, "note",
      "CDN cache hit rate back to 92%."))),
    ("P2", "Email digests sent twice", "notifications", 900,
     ((15, "ack", ""), (200, "resolve", ""))),
    ("P3", "Typo in onboarding docs for phase 11", "docs", 30, ()),
    ("P3", "Request: export incidents as CSV", "desk", 200, ((60, "ack", ""),)),
    ("P3", "Old runbook links point to the wiki", "docs", 230, ()),
    ("P3", "Training request for new L1 staff", "support", 1300,
     ((100, "ack", ""), (120, "assign", "farah"))),
    ("P3", "Tooltip overlaps button on small screens", "dashboard", 3000,
     ((30, "ack", ""), (500, "resolve", ""))),
    ("P1", "Payment provider timeouts for card payments", "payments", 28,
     ((4, "ack", ""), (10, "severity", "P0"))),
    ("P2", "Invalid NDJSON in evidence bundle from agent 7", "mcp-evidence", 14,
     ((5, "ack", ""),)),
    ("P0", "All CI/CD pipelines down", "ci", 1500,
     ((1, "ack", ""), (3, "escalate", "L4"), (5, "ack", ""), (100, "resolve", ""),
      (300, "review", ""), (310, "follow_up", "preventive_measures:7"))),
    ("P3", "Missing evidence files in phase 9 audit", "audit", 500,
     ((40, "ack", ""), (260, "escalate", "L2"))),
    ("P2", "Cross-system dependency check flapping", "deps", 118, ((50, "ack", ""),)),
    ("P1", "Status page not updating", "status-page", 6, ((2, "ack", ""),)),
    ("P2", "Disk usage at 85% on log cluster", "logging", 100,
     ((10, "ack", ""), (50, "assign", "goran"))),
    ("P3", "Slack integration posts to the wrong channel", "integrations", 40,
     ((20, "ack", ""),)),
    ("P1", "Data integrity check failed for invoices", "billing", 230,
     ((10, "ack", ""), (40, "escalate", "L3"), (48, "ack", ""))),
    ("P2", "Performance degradation on report builder", "reports", 420,
     ((30, "ack", ""), (125, "escalate", "L2"), (140, "ack", ""))),
    ("P3", "Enhancement: dark mode for status emails", "notifications", 5000, ()),
)


def _handoff(policy: Policy, level: str, title: str) -> dict[str, str]:
    samples = {
        "issue_summary": title, "actions_taken": "Restarted workers; checked recent deploys.",
        "current_status": "Degraded; errors continue at a lower rate.",
        "logs_and_evidence": "Grafana panel 'errors by region', logs from 09:12 UTC.",
        "business_impact": "Customers cannot complete orders in the affected region.",
        "technical_details": "Connection pool exhausted after the failover; retries amplify.",
        "system_architecture": "Primary/replica Postgres behind pgbouncer; 3 API pods.",
        "security_assessment": "No sign of intrusion; keys rotated as a precaution.",
        "recovery_procedures": "Failed back to the old primary; replaying the WAL.",
        "executive_summary": f"{title}. Revenue-impacting; recovery in progress.",
        "financial_impact": "Roughly $12k/hour of delayed orders.",
        "timeline": "Mitigation within 1h, full recovery within 4h.",
        "recommendations": "Approve the vendor escalation and a customer notice.",
    }
    return {f.key: samples.get(f.key, f"{f.label}: see timeline")
            for f in policy.escalation[level].handoff}


FOLLOW_UPS = {"monitoring": "Alert on scheduler queue age, not only on failures",
              "preventive_measures": "Canary every pipeline change on one runner first"}


def rng_owner(incident_id: int) -> str:
    """A follow-up's owner: one of the demo's people, fixed per incident."""
    return PEOPLE[incident_id % len(PEOPLE)]


def _step(desk: actions.Desk, policy: Policy, incident_id: int, title: str, action: str,
          arg: str) -> None:
    if action == "ack":
        actions.acknowledge(desk, incident_id)
    elif action == "escalate":
        # A trigger that names a time (not resolved within 30m) waits for it: take the
        # first that names none.
        triggers = policy.escalation[arg].triggers
        trigger = next((t.key for t in triggers if t.after is None), "other")
        actions.escalate(desk, incident_id, to=arg, trigger=trigger,
                         reason="demo" if trigger == "other" else "",
                         fields=_handoff(policy, arg, title))
    elif action == "assign":
        actions.assign(desk, incident_id, arg)
    elif action == "note":
        actions.add_note(desk, incident_id, arg)
    elif action == "severity":
        actions.change_severity(desk, incident_id, arg, reason="Impact wider than first seen")
    elif action == "resolve":
        actions.resolve(desk, incident_id, summary="Rolled back the faulty release; "
                        "monitored for 30 minutes.", checks="all")
    elif action == "follow_up":  # KIND:DAYS, due that many days from then
        kind, days = arg.split(":")
        if kind in {k.key for k in policy.follow_up_kinds}:
            due = (desk.clock.now() + timedelta(days=int(days))).date().isoformat()
            actions.add_follow_up(desk, incident_id, kind=kind, owner=rng_owner(incident_id),
                                  description=FOLLOW_UPS[kind], due=due)
    elif action == "review":
        actions.file_review(desk, incident_id, {
            f.key: f"{f.label}: written up in the review meeting." for f in policy.review_fields})


def fill_demo(store: Store, policy: Policy, actor: Actor, now: datetime, *, count: int = 30,
              seed: int = 7) -> int:
    """Add `count` incidents whose histories end at `now`; returns how many."""
    rng = random.Random(seed)
    clock = FixedClock(now)
    made = 0
    for n in range(count):
        severity, title, service, ago, steps = SCENARIOS[n % len(SCENARIOS)]
        if n >= len(SCENARIOS):
            ago = rng.randint(1, 600)
            steps = steps if all(m < ago for m, _, _ in steps) else ()
        if severity not in policy.severities:
            severity = next(iter(policy.severities))
        opened = now - timedelta(minutes=ago)
        person = lambda: Actor(actor.account, rng.choice(PEOPLE))  # noqa: E731
        clock.set(opened)
        desk = actions.Desk(store, policy, clock, person())
        incident = actions.open_incident(desk, title=title, severity=severity, service=service,
                                         external_ref=f"OPS-{1000 + n}").incident
        for minutes, action, arg in steps:
            clock.set(opened + timedelta(minutes=minutes))
            desk.actor = person()
            _step(desk, policy, incident.id, title, action, arg)
        made += 1
    return made
