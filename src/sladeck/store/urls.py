"""Which backend a `--db` value names, and the checks a server URL passes first.

Imports nothing heavy: the SQLite path never loads psycopg (a guard test says so).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit, urlunsplit

from sladeck.errors import Refused

SCHEMES = ("postgresql://", "postgres://")


def is_server_url(db: object) -> bool:
    """Whether `--db`/SLADECK_DB names a PostgreSQL server rather than a SQLite file."""
    return isinstance(db, str) and db.lower().startswith(SCHEMES)


def check_url(url: str) -> str:
    """The URL, refused (one line) when it carries a password: a command line is visible
    to everyone on the host in `ps`, and SLADECK_DB lands in shell histories. Passwords
    come from libpq's own sources: PGPASSFILE (~/.pgpass), a service file, a client
    certificate, or PGPASSWORD in the environment of a service."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError as exc:
        raise Refused(f"--db: {display_url(url)} is not a PostgreSQL URL ({exc})") from None
    if password is not None or "password" in {k.lower() for k in parse_qs(parts.query)}:
        raise Refused("--db: the PostgreSQL URL holds a password, which everyone on this host "
                      "can read in `ps`; remove it and put it in ~/.pgpass (PGPASSFILE) or a "
                      "service file (PGSERVICEFILE) instead")
    return url


def display_url(url: str) -> str:
    """The URL as messages show it: without any password, should one be in it."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        netloc = f"{parts.username}@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return "the PostgreSQL server"
