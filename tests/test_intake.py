"""Alert payloads (Alertmanager v4, Grafana) as incidents: the policy's `intake` mapping,
repeats, `source_cleared`, and `sladeck import --format`."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import T0, make_app, select, settle, sync
from sladeck.domain.actions import Desk
from sladeck.domain.ingest import ImportRefused
from sladeck.domain.intake import PayloadError, import_payloads, records
from sladeck.domain.timeline import describe
from sladeck.errors import PolicyError
from sladeck.policy import Policy, parse_policy
from sladeck.store import Store
from test_cli import Cli

STARTS = (T0 - timedelta(minutes=10)).isoformat().replace("+00:00", "Z")


def am_alert(fingerprint: str, severity: str = "critical", status: str = "firing",
             **labels: str) -> dict[str, Any]:
    """One alert as Alertmanager's webhook (version 4) sends it."""
    return {"status": status,
            "labels": {"alertname": "DiskFull", "severity": severity, "service": "db",
                       "instance": "db-1", **labels},
            "annotations": {"summary": f"Disk full ({fingerprint})",
                            "description": "97% of /var used"},
            "startsAt": STARTS.replace("Z", ".123456789Z"),  # Go writes nanoseconds
            "endsAt": "0001-01-01T00:00:00Z" if status == "firing"
            else T0.isoformat().replace("+00:00", "Z"),
            "generatorURL": f"http://prometheus:9090/graph?g0.expr=disk_{fingerprint}",
            "fingerprint": fingerprint}


def am_payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return {"version": "4", "groupKey": '{}:{alertname="DiskFull"}', "truncatedAlerts": 0,
            "status": status, "receiver": "sladeck", "groupLabels": {"alertname": "DiskFull"},
            "commonLabels": {"alertname": "DiskFull"}, "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093", "alerts": list(alerts)}


# Grafana's documented webhook example (Grafana 9.3 docs, "Configure the webhook
# notifier"), its startsAt moved to our clock's day.
GRAFANA_EXAMPLE = {
    "receiver": "My Super Webhook", "status": "firing", "orgId": 1,
    "alerts": [
        {"status": "firing",
         "labels": {"alertname": "High memory usage", "team": "blue", "zone": "us-1"},
         "annotations": {"description": "The system has high memory usage",
                         "runbook_url": "https://myrunbook.com/runbook/1234",
                         "summary": "This alert was triggered for zone us-1"},
         "startsAt": "2026-11-26T09:51:03.157076+02:00", "endsAt": "0001-01-01T00:00:00Z",
         "generatorURL": "https://play.grafana.org/alerting/1afz29v7z/edit",
         "fingerprint": "c6eadffa33fcdf37",
         "silenceURL": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana"
                       "&matchers=alertname%3DT2%2Cteam%3Dblue%2Czone%3Dus-1",
         "dashboardURL": "", "panelURL": "",
         "valueString": "[ metric='' labels={} value=14151.331895396988 ]"},
        {"status": "firing",
         "labels": {"alertname": "High CPU usage", "team": "blue", "zone": "eu-1"},
         "annotations": {"description": "The system has high CPU usage",
                         "runbook_url": "https://myrunbook.com/runbook/1234",
                         "summary": "This alert was triggered for zone eu-1"},
         "startsAt": "2026-11-26T09:56:03.157076+02:00", "endsAt": "0001-01-01T00:00:00Z",
         "generatorURL": "https://play.grafana.org/alerting/d1rdpdv7k/edit",
         "fingerprint": "bc97ff14869b13e3",
         "silenceURL": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana"
                       "&matchers=alertname%3DT1%2Cteam%3Dblue%2Czone%3Deu-1",
         "dashboardURL": "https://play.grafana.org/d/cpu", "panelURL": "",
         "valueString": "[ metric='' labels={} value=47043.51971758385 ]"}],
    "groupLabels": {}, "commonLabels": {"team": "blue"}, "commonAnnotations": {},
    "externalURL": "https://play.grafana.org/", "version": "1", "groupKey": "{}:{}",
    "truncatedAlerts": 0, "title": "[FIRING:2]  (blue)", "state": "alerting",
    "message": "**Firing**\n\nLabels:\n - alertname = T2\n..."}


def post(desk: Desk, fmt: str, payload: dict[str, Any], name: str = "test") -> Any:
    return import_payloads(desk, json.dumps(payload).encode(), name, fmt)


def test_an_alertmanager_alert_becomes_an_incident_as_the_policy_maps_it(
        desk: Desk, store: Store) -> None:
    report = post(desk, "alertmanager", am_payload(
        am_alert("f1"), am_alert("f2", severity="warning"), am_alert("f3", severity="bogus")))
    assert report.opened == 3
    one, two, three = (store.incident(n) for n in (1, 2, 3))
    assert (one.severity, two.severity, three.severity) == ("P0", "P2", "P2")  # default P2
    assert one.title == "Disk full (f1)" and one.service == "db"
    assert one.description == "97% of /var used"
    assert one.dedup_key == "f1"  # the fingerprint
    assert one.external_ref == "http://prometheus:9090/graph?g0.expr=disk_f1"
    assert one.opened_at == T0 - timedelta(minutes=10, microseconds=-123456)  # startsAt


def test_a_repeat_is_a_repeated_event_and_a_worse_severity_is_shown_not_applied(
        desk: Desk, store: Store) -> None:
    post(desk, "alertmanager", am_payload(am_alert("f1", severity="warning")))
    report = post(desk, "alertmanager", am_payload(am_alert("f1", severity="critical")))
    assert (report.opened, report.repeated) == (0, 1)
    incident = store.incident(1)
    assert incident.severity == "P2" and incident.repeats == 1  # a person changes severity
    repeat = store.events(1)[-1]
    assert repeat.kind == "repeated"
    assert repeat.payload["upgrade"] == {"from": "P2", "to": "P0"}
    assert describe(repeat.kind, repeat.payload) == \
        "repeated by an alert that now says P0 (the incident is P2)"


def test_a_resolved_alert_clears_its_source_and_never_resolves(desk: Desk,
                                                               store: Store) -> None:
    post(desk, "alertmanager", am_payload(am_alert("f1"), am_alert("f2")))
    report = post(desk, "alertmanager", am_payload(am_alert("f1", status="resolved")))
    assert (report.opened, report.repeated, report.cleared) == (0, 0, 1)
    one = store.incident(1)
    assert one.state == "open" and one.source_cleared_at == T0
    assert [e.kind for e in store.events(1)] == ["opened", "source_cleared"]
    assert store.incident(2).source_cleared_at is None
    # told again (Alertmanager resends): nothing more; fired again: the mark goes
    post(desk, "alertmanager", am_payload(am_alert("f1", status="resolved")))
    assert [e.kind for e in store.events(1)] == ["opened", "source_cleared"]
    post(desk, "alertmanager", am_payload(am_alert("f1")))
    assert store.incident(1).source_cleared_at is None
    # a resolved alert sladeck never saw fire opens nothing
    report = post(desk, "alertmanager", am_payload(am_alert("f9", status="resolved")))
    assert (report.opened, report.cleared, report.unmatched) == (0, 0, 1)
    assert store.incident(3) is None


def test_grafanas_documented_example(desk: Desk, store: Store) -> None:
    report = post(desk, "grafana", GRAFANA_EXAMPLE)
    assert report.opened == 2
    memory, cpu = store.incident(1), store.incident(2)
    assert memory.title == "This alert was triggered for zone us-1"
    assert memory.dedup_key == "c6eadffa33fcdf37"
    assert memory.severity == "P2"  # no severity label: the policy's default
    assert memory.external_ref == "https://play.grafana.org/alerting/1afz29v7z/edit"
    assert cpu.external_ref == "https://play.grafana.org/d/cpu"  # its dashboard first
    assert "Value: [ metric='' labels={} value=14151.331895396988 ]" in memory.description
    assert "Silence: https://play.grafana.org/alerting/silence/new" in memory.description
    assert memory.opened_at.isoformat() == "2026-11-26T07:51:03.157076+00:00"


@pytest.mark.parametrize(("fmt", "payload", "reason"), [
    ("alertmanager", GRAFANA_EXAMPLE, "a Grafana payload? post it to /grafana"),
    ("grafana", am_payload(am_alert("f1")), "an Alertmanager payload? post it to /alertmanager"),
    ("alertmanager", {**am_payload(am_alert("f1")), "version": "3"}, "version '3'"),
    ("alertmanager", {**am_payload(), "alerts": {}}, "alerts must be a list"),
    ("alertmanager", am_payload({**am_alert("f1"), "status": "pending"}),
     "alerts[0]: status 'pending' is not firing or resolved"),
    ("alertmanager", am_payload({**am_alert("f1"), "labels": {"a": 1}}),
     "alerts[0]: labels must be an object of texts"),
    ("alertmanager", am_payload({**am_alert("f1"), "startsAt": "yesterday"}),
     "alerts[0]: startsAt 'yesterday' is not an RFC 3339 time"),
])
def test_a_payload_of_another_shape_is_refused_with_its_reason(
        policy: Policy, fmt: str, payload: dict[str, Any], reason: str) -> None:
    with pytest.raises(PayloadError) as caught:
        records(fmt, payload, policy, T0)
    assert reason in str(caught.value) and "\n" not in str(caught.value)


def test_a_bad_payload_refuses_the_whole_file(desk: Desk, store: Store) -> None:
    lines = [json.dumps(am_payload(am_alert("f1"))), "{oops", json.dumps(GRAFANA_EXAMPLE)]
    with pytest.raises(ImportRefused) as caught:
        import_payloads(desk, "\n".join(lines).encode(), "alerts.ndjson", "alertmanager")
    assert [p.split(": ")[0] for p in caught.value.problems] == \
        ["alerts.ndjson:2", "alerts.ndjson:3"]
    assert store.incident(1) is None


def test_import_format_reads_a_file_of_payloads_or_one_document(tmp_path: Path) -> None:
    run = Cli(tmp_path)
    lines = tmp_path / "am.ndjson"
    lines.write_text(json.dumps(am_payload(am_alert("f1"), am_alert("f2"))) + "\n"
                     + json.dumps(am_payload(am_alert("f1", status="resolved"))) + "\n")
    out = run.ok("import", "--format", "alertmanager", str(lines))
    assert out.stdout == "imported 2 new, 0 repeated, 1 cleared at source\n"
    doc = tmp_path / "grafana.json"
    doc.write_text(json.dumps(GRAFANA_EXAMPLE, indent=2))
    assert run.ok("import", "--format", "grafana", str(doc)).stdout == \
        "imported 2 new, 0 repeated\n"
    listed = run.ok("list").stdout.splitlines()
    assert [line for line in listed if "(source cleared)" in line] == \
        [line for line in listed if line.startswith("INC-1 ")]
    shown = run.ok("show", "1").stdout
    assert "| Source cleared |" in shown and "cleared at its source" in shown
    assert run.json("show", "1")["source_cleared_at"] is not None
    before = run.dump()
    err = run.refused("import", "--format", "grafana", str(lines))
    assert re.fullmatch(rf"sladeck: error: {re.escape(str(lines))}:1: not a Grafana .*\n"
                        rf"sladeck: error: {re.escape(str(lines))}:2: .*\n", err), err
    assert run.dump() == before
    assert "ok" in run.ok("verify").stdout


INTAKE = """
intake:
  severity:
    label: severity
    values: {critical: P0, warning: P9}
    default: P2
  service: "service name"
  dedup_labels: []
"""


def test_policy_check_names_each_intake_problem_by_line(policy: Policy) -> None:
    text = policy.source.split("\nintake:")[0] + INTAKE + \
        "\nnotifications:" + policy.source.split("\nnotifications:")[1]
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "policy.yaml")
    lines = text.split("\n")
    values, service = (lines.index(x) + 1 for x in (
        "    values: {critical: P0, warning: P9}", '  service: "service name"'))
    dedup = lines.index("  dedup_labels: []") + 1
    assert caught.value.problems == [
        f"policy.yaml:{values}: "
        'intake.severity.values.warning: severity "P9" is not defined in severities',
        f"policy.yaml:{service}: intake.service: "
        '"service name" is not a label name (letters, digits and _, not starting with a digit)',
        f"policy.yaml:{dedup}: intake.dedup_labels: "
        "must name at least one"]


@pytest.mark.usefixtures("utc_and_still")
@sync
async def test_the_dashboard_marks_a_row_whose_source_cleared(
        db_path: Path, policy: Policy, desk: Desk) -> None:
    post(desk, "alertmanager", am_payload(am_alert("f1"), am_alert("f2")))
    app = make_app(db_path, policy, poll_interval=0.05)
    async with app.run_test(size=(120, 20)) as pilot:
        await settle(pilot)
        assert not any("source cleared" in line for line in _lines(app))
        post(desk, "alertmanager", am_payload(am_alert("f2", status="resolved")))
        for _ in range(100):  # the poll sees the other process's change
            await pilot.pause(0.05)
            if any("source cleared" in line for line in _lines(app)):
                break
        marked = [line for line in _lines(app) if "source cleared" in line]
        assert len(marked) == 1 and "INC-2" in marked[0], _lines(app)
        await select(pilot, 2)
        await pilot.press("enter")
        await settle(pilot)
        assert any("Source cleared" in line and "resolve the incident when it is" in line
                   for line in _lines(app)), _lines(app)


def _lines(app: Any) -> list[str]:
    from conftest import screen_lines

    return screen_lines(app)


def test_policy_show_tells_how_alerts_become_incidents(tmp_path: Path) -> None:
    out = Cli(tmp_path).ok("policy", "show").stdout
    intake = out[out.index("ALERT INTAKE"):].splitlines()
    assert all(len(line) <= 80 for line in intake)
    text = " ".join(" ".join(intake).split())
    for said in ("Severity: label severity: critical -> P0,", "anything else P2",
                 "Service: label service", "Title: annotation summary, else title, else the "
                 "alertname label", "Dedup key: the alert's fingerprint, else labels alertname, "
                 "service, instance", 'marks its incident "source cleared"; people resolve it'):
        assert said in text, said
