"""A real Alertmanager (Debian's `prometheus-alertmanager`) notifying `sladeck receive`
through its webhook receiver: alerts posted to Alertmanager's own API become incidents.

`.ci/run` installs the package; where CI could not get it, these tests fail (a skip
would hide that the intake was never tried against the real sender)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from receiving import Receiver, receiving
from sladeck.domain.model import Incident
from sladeck.store import Store

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


@pytest.fixture(scope="module")
def alertmanager_binary() -> str:
    if BINARY is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus-alertmanager is not installed (.ci/run installs it: "
                        "apt-get install -y prometheus-alertmanager)")
        pytest.skip("prometheus-alertmanager is not installed")
    return BINARY


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CONFIG = """
route:
  receiver: sladeck
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - receiver: stranger
      matchers: ['team="stranger"']
receivers:
  - name: sladeck
    webhook_configs:
      - url: {url}/alertmanager
        send_resolved: true
        http_config:
          authorization: {{type: Bearer, credentials_file: {token}}}
  - name: stranger
    webhook_configs:
      - url: {url}/alertmanager
        send_resolved: true
        http_config:
          authorization: {{type: Bearer, credentials: not-the-token-at-all}}
"""


class Alertmanager:
    def __init__(self, port: int) -> None:
        self.api = f"http://127.0.0.1:{port}/api/v2"

    def fire(self, *alerts: dict[str, Any], ended: bool = False) -> None:
        """POST /api/v2/alerts, as Prometheus does; `ended`: with endsAt now (resolved)."""
        now = datetime.now(UTC)
        body = [{"labels": a["labels"], "annotations": a.get("annotations", {}),
                 "generatorURL": "http://prometheus.example:9090/graph",
                 "startsAt": a.get("startsAt", (now - timedelta(minutes=2)).isoformat()),
                 **({"endsAt": now.isoformat()} if ended else {})} for a in alerts]
        request = urllib.request.Request(f"{self.api}/alerts", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"},
                                         method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200

    def fingerprints(self) -> dict[str, str]:
        """alertname/instance → Alertmanager's fingerprint of each alert it holds."""
        with urllib.request.urlopen(f"{self.api}/alerts", timeout=30) as answer:
            held = json.loads(answer.read())
        return {f"{a['labels']['alertname']}/{a['labels'].get('instance')}": a["fingerprint"]
                for a in held}


@contextmanager
def alertmanager(binary: str, tmp: Path, receiver: Receiver) -> Iterator[Alertmanager]:
    port = free_port()
    token = tmp / "am.token"
    token.write_text(receiver.token or "")
    token.chmod(0o600)
    config = tmp / "alertmanager.yml"
    config.write_text(CONFIG.format(url=receiver.url, token=token))
    storage = tmp / "am-data"
    storage.mkdir()
    log = (tmp / "alertmanager.log").open("wb")
    proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.path={storage}",
                             f"--web.listen-address=127.0.0.1:{port}",
                             "--cluster.listen-address=", "--log.level=debug"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("alertmanager did not start: "
                                         + (tmp / "alertmanager.log").read_text()) from None
                time.sleep(0.2)
        yield Alertmanager(port)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def wait_for(db: Path, check: Callable[[list[Incident]], bool], what: str,
             timeout: float = 60) -> list[Incident]:
    """The incidents once `check` holds for them (Alertmanager notifies on its own time)."""
    deadline = time.monotonic() + timeout
    while True:
        store = Store(db)
        try:
            found = store.incidents(None)
        finally:
            store.close()
        if check(found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: {found}")
        time.sleep(0.3)


def disk(instance: str, severity: str = "critical", **labels: str) -> dict[str, Any]:
    return {"labels": {"alertname": "DiskFull", "instance": instance, "severity": severity,
                       "service": "storage", **labels},
            "annotations": {"summary": f"Disk full on {instance}",
                            "description": "97% of /var used"}}


def test_alerts_through_a_real_alertmanager(alertmanager_binary: str, tmp_path: Path) -> None:
    with receiving(tmp_path) as r, alertmanager(alertmanager_binary, tmp_path, r) as am:
        # three alerts of one group, one notification
        am.fire(disk("db-1"), disk("db-2"), disk("db-3", severity="warning"))
        found = wait_for(r.db, lambda i: len(i) == 3, "three incidents")
        fingerprints = am.fingerprints()
        by_key = {i.dedup_key: i for i in found}
        assert set(by_key) == {fingerprints[f"DiskFull/db-{n}"] for n in (1, 2, 3)}
        one = by_key[fingerprints["DiskFull/db-1"]]
        assert (one.title, one.service, one.severity) == ("Disk full on db-1", "storage", "P0")
        assert by_key[fingerprints["DiskFull/db-3"]].severity == "P2"
        assert one.external_ref == "http://prometheus.example:9090/graph"
        # the same alerts again, and a new one in the group: one new incident, no duplicate
        am.fire(disk("db-1"), disk("db-2"), disk("db-3", severity="warning"), disk("db-4"))
        found = wait_for(r.db, lambda i: len(i) == 4, "a fourth incident")
        assert len({i.dedup_key for i in found}) == 4
        assert all(by_key[i.dedup_key].repeats < i.repeats for i in found if i.dedup_key in by_key)
        # db-2 resolved at its source: recorded, never resolved
        am.fire(disk("db-2"), ended=True)
        two = fingerprints["DiskFull/db-2"]
        found = wait_for(r.db, lambda i: any(x.dedup_key == two and x.source_cleared_at
                                             for x in i), "db-2 cleared at its source")
        cleared = next(i for i in found if i.dedup_key == two)
        assert cleared.state == "open"
        assert [i.dedup_key for i in found if i.source_cleared_at] == [two]
        # a sender with the wrong token is refused, and nothing of it is written
        am.fire(disk("db-9", team="stranger"))
        deadline = time.monotonic() + 60
        while "401: wrong bearer token" not in r.log.read_text():
            assert time.monotonic() < deadline, r.log.read_text()
            time.sleep(0.3)
        found = wait_for(r.db, lambda i: len(i) == 4, "still four incidents")
        assert not any("db-9" in i.title for i in found)
