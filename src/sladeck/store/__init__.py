"""The only package that speaks SQL. Its modules, by job:

- `schema`: the migrations, in order, and SCHEMA_VERSION;
- `rows`: the incident and event columns, declared once, and the conversions between
  rows and domain objects (the only place that knows column order);
- `sqlite`: `Store` (one connection: reads, the queue's reads, change detection) and
  `Transaction` (one `BEGIN IMMEDIATE`);
- `files`: preparing the database file, its identity, when it is read-only;
- `bulk`: the import's write path (many rows and events to a statement);
- `postgres`, `pg_schema`: the same port on a PostgreSQL server (`--db postgresql://…`),
  loaded only when a URL names one (`open_store`); `urls` tells which is named.

`Store` implements the domain's `Storage` port and `Transaction` its
`ImportTransaction` (`sladeck.domain.ports`): the domain never imports this package.
"""

from sladeck.store.bulk import MULTI_ROW
from sladeck.store.files import file_identity, prepare_file, read_only_reason
from sladeck.store.rows import (
    EVENT_COLUMNS,
    INCIDENT_COLUMNS,
    SLA_COLUMNS,
    WRITTEN_COLUMNS,
    incident_values,
)
from sladeck.store.schema import HISTORY_SINCE, MIGRATIONS, SCHEDULES_SINCE, SCHEMA_VERSION
from sladeck.store.sqlite import (
    BATCH,
    BULK_CACHE_KIB,
    BUSY_TIMEOUT_MS,
    BackendError,
    Store,
    Transaction,
    damaged_text,
    plain_error,
)
from sladeck.store.urls import check_url, is_server_url


def open_store(db: object, **options: object) -> Store:
    """The store `--db` names: a PostgreSQL server for a `postgresql://` URL (psycopg is
    imported only then), else the SQLite file at that path."""
    if is_server_url(db):
        from sladeck.runtime import collector_paused

        # psycopg's import makes ~18k long-lived objects and no garbage; sladeck's own
        # imports ran with the collector off (launch.py), so does this one: 44 collections,
        # ~15 ms of `sladeck ack` on PostgreSQL otherwise
        with collector_paused():
            from sladeck.store.postgres import PgStore

        return PgStore(check_url(str(db)), **options)  # type: ignore[return-value, arg-type]
    return Store(db, **options)  # type: ignore[arg-type]


__all__ = [
    "BATCH",
    "BULK_CACHE_KIB",
    "BUSY_TIMEOUT_MS",
    "EVENT_COLUMNS",
    "HISTORY_SINCE",
    "INCIDENT_COLUMNS",
    "MIGRATIONS",
    "MULTI_ROW",
    "SCHEDULES_SINCE",
    "SCHEMA_VERSION",
    "SLA_COLUMNS",
    "WRITTEN_COLUMNS",
    "BackendError",
    "Store",
    "Transaction",
    "check_url",
    "damaged_text",
    "file_identity",
    "incident_values",
    "is_server_url",
    "open_store",
    "plain_error",
    "prepare_file",
    "read_only_reason",
]
