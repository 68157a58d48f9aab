"""`sladeck migrate --to postgresql://…`: a SQLite database copied whole to an empty
PostgreSQL database, row for row, in one transaction under the write lock.

Every table SQLite has is copied by column name (the tables other steps add come
along without a change here); the ids are kept, so the hash chain's links, which cover
each event's id, read the same, and `verify` on the target proves it. A table the target
lacks, or a target that already holds anything, is refused before a row is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sladeck.errors import Refused
from sladeck.store.pg_schema import IDENTITY_TABLES, WRITE_LOCK, lock_statements

if TYPE_CHECKING:
    from sladeck.store.postgres import PgStore
    from sladeck.store.sqlite import Store

FIRST = ("policies", "incidents", "events")  # what the other tables refer to, in order
BATCH = 5000


def tables(source: Store) -> list[str]:
    """SQLite's tables, those others refer to first."""
    names = [r[0] for r in source.conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name")]
    return [t for t in FIRST if t in names] + [t for t in names if t not in FIRST]


def copy_database(source: Store, target: PgStore) -> dict[str, int]:
    """Copy every row of `source` into the empty `target`; rows copied per table."""
    if not target.is_empty():
        raise Refused(f"{target.path} already holds incidents or policies; migrate copies "
                      f"into an empty database only (create a new one)")
    names = tables(source)
    copied: dict[str, int] = {}
    conn = target.conn
    with conn.transaction():
        conn.execute(lock_statements(WRITE_LOCK))
        kinds: dict[str, dict[str, str]] = {}
        for table, column, kind in conn.execute(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema()").fetchall():
            kinds.setdefault(table, {})[column] = kind
        for table in names:
            if table not in kinds:
                raise Refused(f"{target.path} has no table {table}: its sladeck is older than "
                              f"this database's; upgrade it first")
            info = source.conn.execute(f'PRAGMA table_info("{table}")').fetchall()
            columns = [r[1] for r in info]
            flags = [n for n, c in enumerate(columns) if kinds[table].get(c) == "boolean"]
            quoted = ", ".join(f'"{c}"' for c in columns)
            copied[table] = 0
            with conn.cursor() as cursor, cursor.copy(
                    f'COPY "{table}" ({quoted}) FROM STDIN') as out:
                rows = source.conn.execute(
                    f'SELECT {quoted} FROM "{table}" ORDER BY {_order(source, table, info)}')
                while batch := rows.fetchmany(BATCH):
                    for row in batch:
                        out.write_row(_fixed(row, flags) if flags else row)
                    copied[table] += len(batch)
        for table in IDENTITY_TABLES:
            if table in copied:
                conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                             f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)")
    return copied


def _order(source: Store, table: str, info: list[tuple[Any, ...]]) -> str:
    """How a table's rows are read: by rowid, or by primary key in a WITHOUT ROWID table
    (clock_cycles), which has no rowid."""
    [sql] = source.conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND "
                                "name = ?", (table,)).fetchone()
    if "WITHOUT ROWID" not in sql.upper():
        return "rowid"
    return ", ".join(f'"{r[1]}"' for r in sorted((r for r in info if r[5]), key=lambda r: r[5]))


def _fixed(row: tuple[Any, ...], flags: list[int]) -> tuple[Any, ...]:
    values = list(row)
    for n in flags:
        if values[n] is not None:
            values[n] = bool(values[n])
    return tuple(values)
