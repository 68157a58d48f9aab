"""Helpers for tests of `sladeck receive`: the real service on a free port, and posts."""

from __future__ import annotations

import json
import re
import secrets
import select
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from test_cli import SLADECK, base_env

START_TIMEOUT = 60.0  # seconds: a loaded 2-core machine starts Python slowly


@dataclass
class Receiver:
    """A running `sladeck receive`: its port, token, process and stderr log."""

    port: int
    token: str | None
    proc: subprocess.Popen[bytes]
    log: Path
    db: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def post(self, path: str, body: bytes | dict[str, Any] | list[Any], *,
             token: str | None = "", timeout: float = 60) -> tuple[int, dict[str, Any]]:
        """POST `body` (JSON unless bytes) with the service's token (or `token`, or
        none when None): (status, JSON answer)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method="POST",
                                         headers={"Content-Type": "application/json"})
        given = self.token if token == "" else token
        if given is not None:
            request.add_header("Authorization", f"Bearer {given}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def stop(self) -> tuple[int, str]:
        """SIGTERM; (exit status, stdout)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=60)
        return self.proc.returncode, out.decode()


def write_token(folder: Path, token: str | None = None) -> tuple[Path, str]:
    token = token or secrets.token_hex(24)
    path = folder / "receive.token"
    path.write_text(token + "\n")
    path.chmod(0o600)
    return path, token


@contextmanager
def receiving(tmp: Path, *extra: str, token: bool = True, db: Path | None = None,
              env: dict[str, str] | None = None) -> Iterator[Receiver]:
    """`sladeck receive` on a free loopback port, stopped (SIGTERM) afterwards."""
    db = db or tmp / "desk" / "sladeck.db"
    db.parent.mkdir(exist_ok=True)
    args = [str(SLADECK), "--db", str(db), "receive", "--listen", "127.0.0.1:0", *extra]
    secret = None
    if token:
        path, secret = write_token(tmp)
        args += ["--token-file", str(path)]
    else:
        args.append("--no-token")
    log = tmp / f"receive-{time.monotonic_ns()}.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err,
                                env=base_env(tmp) | (env or {}), cwd=tmp)
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT
    line = b""
    while time.monotonic() < deadline:  # never blocks past the deadline on a silent start
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        line = proc.stdout.readline()
        if not line or b"listening" in line:
            break
    match = re.search(rb"http://127\.0\.0\.1:(\d+)", line)
    if not match:
        proc.kill()
        proc.wait()
        raise AssertionError(f"sladeck receive did not start: {line!r} {log.read_text()}")
    receiver = Receiver(int(match.group(1)), secret, proc, log, db)
    try:
        yield receiver
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
