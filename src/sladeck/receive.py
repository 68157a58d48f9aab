"""`sladeck receive`: the HTTP intake for Alertmanager and Grafana webhooks (SPEC §10).

An aiohttp server (only this module imports aiohttp; the dashboard never loads it).
POST /alertmanager takes Alertmanager's webhook (version 4), POST /grafana Grafana's
alerting webhook; `domain.intake` maps their alerts by the policy's `intake` section.

A request needs `Authorization: Bearer TOKEN` (compared in constant time) unless the
service was started with `--no-token` on a loopback address. A missing or wrong token
gets 401 before the body is read; a body over the limit 413; bad JSON or a payload of
another shape 400 with a one-line reason; nothing is written for any of them.

Every write goes through one writer thread, which takes whatever posts are waiting and
writes them in one `BEGIN IMMEDIATE` transaction (one commit for a burst). A request is
answered only after its alerts are committed, so a sender retries whatever was not.
SIGTERM or SIGINT stops accepting, answers the requests in flight, and exits 0.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import os
import queue
import signal
import stat
import sys
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from sladeck.domain.actions import Desk
from sladeck.domain.ingest import ImportReport, write_batch
from sladeck.domain.intake import PayloadError, decode, records
from sladeck.errors import SladeckError

DEFAULT_LISTEN = "127.0.0.1:9095"
MAX_BODY = 4 << 20  # bytes: a 1,000-alert Alertmanager group is about 1 MiB
MAX_BATCH = 200  # posts written in one transaction at most
MAX_TOKEN = 4096
PATHS = {"/alertmanager": "alertmanager", "/grafana": "grafana"}


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` or `[IPv6]:PORT` → (host, port); SladeckError otherwise."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]") if host.startswith("[") else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise SladeckError(f"--listen {text!r} is not HOST:PORT (e.g. {DEFAULT_LISTEN})")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may well resolve to a public address


def read_token(path: str) -> str:
    """The bearer token in `path`: its one line. The file must be a regular file that
    only its owner can read (the token is the service's only lock)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise SladeckError(f"{path}: cannot read the token file: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SladeckError(f"{path}: the token file is not a regular file")
        if info.st_mode & 0o077:
            raise SladeckError(f"{path}: the token file can be read by others (mode "
                               f"{stat.S_IMODE(info.st_mode):04o}); run chmod 600 {path}")
        data = os.read(fd, MAX_TOKEN + 1)
    finally:
        os.close(fd)
    try:
        token = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SladeckError(f"{path}: the token is not UTF-8 text") from None
    if len(data) > MAX_TOKEN or not token or any(c.isspace() for c in token):
        raise SladeckError(f"{path}: the token file must hold one token (one word, at most "
                           f"{MAX_TOKEN} bytes)")
    if len(token) < 16:
        raise SladeckError(f"{path}: the token is too short (at least 16 characters; "
                           "e.g. `openssl rand -hex 32`)")
    return token


@dataclass
class _Job:
    records: list[tuple[int, dict[str, Any]]]
    name: str
    future: Future[ImportReport] = field(default_factory=Future)


class Writer:
    """The one thread that writes: posts waiting together are committed together."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="sladeck-writer", daemon=True)
        self.thread.start()

    def submit(self, job_records: list[tuple[int, dict[str, Any]]], name: str
               ) -> Future[ImportReport]:
        job = _Job(job_records, name)
        self.jobs.put(job)
        return job.future

    def stop(self) -> None:
        """Write what is queued, then end the thread."""
        self.jobs.put(None)
        self.thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self.jobs.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    job = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                batch.append(job)
            self._write(batch)

    def _write(self, batch: list[_Job]) -> None:
        try:
            reports = write_batch(self.desk, [(j.records, j.name) for j in batch])
        except BaseException as exc:
            if len(batch) > 1:  # one post's failure must not fail the others: one at a time
                for job in batch:
                    self._write([job])
                return
            batch[0].future.set_exception(exc)
            return
        for job, report in zip(batch, reports, strict=True):
            job.future.set_result(report)


def _reply(status: int, message: str, **extra: Any) -> web.Response:
    """A one-line JSON answer (`{"error": …}` or what was recorded)."""
    body = {"error": message} if status >= 400 else {"result": message, **extra}
    return web.json_response(body, status=status,
                             headers={"WWW-Authenticate": 'Bearer realm="sladeck"'}
                             if status == 401 else None)


def make_app(desk: Desk, token: str | None, *, max_body: int = MAX_BODY,
             writer: Writer | None = None, log: Any = None) -> web.Application:
    """The aiohttp application (tests run it on a free port)."""
    writer = writer or Writer(desk)
    expected = token.encode() if token is not None else None
    say = log or (lambda line: print(line, file=sys.stderr, flush=True))

    async def receive(request: web.Request) -> web.Response:
        fmt = PATHS[request.path]
        if expected is not None:
            given = request.headers.get("Authorization", "")
            scheme, _, value = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                    value.strip().encode("utf-8", "surrogateescape"), expected):
                say(f"{request.remote} POST {request.path} 401: "
                    f"{'no' if not given else 'wrong'} bearer token")
                return _reply(401, "a bearer token is needed (Authorization: Bearer TOKEN)"
                              if not given else "wrong bearer token")
        if request.content_length is not None and request.content_length > max_body:
            return _reply(413, f"the body is over {max_body} bytes")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _reply(413, f"the body is over {max_body} bytes")
        try:
            found = records(fmt, decode(body), desk.policy, desk.clock.now())
        except PayloadError as exc:
            say(f"{request.remote} POST {request.path} 400: {exc}")
            return _reply(400, str(exc))
        numbered = [(n, r) for n, r in enumerate(found, start=1)]
        name = f"{fmt} webhook from {request.remote or 'unknown'}"
        try:
            report = await asyncio.wrap_future(writer.submit(numbered, name)) if numbered \
                else ImportReport()
        except Exception as exc:  # e.g. the database was replaced: the sender retries
            reason = str(exc) if isinstance(exc, SladeckError) else \
                f"unexpected {type(exc).__name__}: {exc}"
            say(f"{request.remote} POST {request.path} 503: {reason}")
            return _reply(503, f"not recorded: {reason}")
        summary = (f"{report.opened} new, {report.repeated} repeated, {report.cleared} "
                   f"cleared at source")
        say(f"{request.remote} POST {request.path} 200: {len(found)} alerts: {summary}")
        return _reply(200, summary, alerts=len(found), opened=report.opened,
                      repeated=report.repeated, cleared=report.cleared,
                      unmatched=report.unmatched)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"result": "ok"})

    app = web.Application(client_max_size=max_body)
    for path in PATHS:
        app.router.add_post(path, receive)
    app.router.add_get("/healthz", health)
    app["writer"] = writer
    return app


def serve(desk: Desk, listen: str, token: str | None, *, max_body: int = MAX_BODY) -> None:
    """Run until SIGTERM or SIGINT; then answer what is in flight, write what is
    queued, and return."""
    host, port = parse_listen(listen)
    writer = Writer(desk)
    app = make_app(desk, token, max_body=max_body, writer=writer)

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port, shutdown_timeout=10)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise SladeckError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
        bound = runner.addresses[0][:2] if runner.addresses else (host, port)
        where = f"[{bound[0]}]:{bound[1]}" if ":" in str(bound[0]) else f"{bound[0]}:{bound[1]}"
        print(f"sladeck receive: listening on http://{where} (/alertmanager, /grafana)"
              + ("" if token else " with no token: loopback only"), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()  # stops listening, lets the requests in flight finish

    try:
        asyncio.run(main())
    finally:
        writer.stop()
    print("sladeck receive: stopped", flush=True)


def token_or_refusal(listen: str, token_file: str | None, no_token: bool) -> str | None:
    """The token to require, or None for `--no-token` on a loopback address."""
    host, _ = parse_listen(listen)
    if token_file and no_token:
        raise SladeckError("give --token-file or --no-token, not both")
    if token_file:
        return read_token(str(Path(token_file)))
    if not no_token:
        raise SladeckError("give --token-file PATH (a file only you can read, holding the "
                           "bearer token senders must present), or --no-token on a "
                           "loopback address")
    if not is_loopback(host):
        raise SladeckError(f"--no-token is allowed on a loopback address only, not {host}; "
                           "give --token-file PATH")
    return None
