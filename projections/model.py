"""Read-model tables and the write-through row cache that makes batches cheap.

A projection changes rows in memory while it applies a batch; `flush` writes each changed row
once, so a batch of 10,000 events on 500 projects costs 500 row writes, not 10,000. The cache
stays valid across batches because one runner alone writes a projection's tables (advisory lock
on PostgreSQL, compare-and-set on the tracking row everywhere); after a failed transaction it is
dropped and rows are read again.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Callable, ClassVar, Iterable

from projections.db import Db

sqlite3.register_adapter(Decimal, str)
sqlite3.register_adapter(date, date.isoformat)

_PG_ARRAY = {"TEXT": "text[]", "NUMERIC": "numeric[]", "DATE": "date[]", "INTEGER": "integer[]", "BIGINT": "bigint[]"}

MAX_CACHED_ROWS = 100_000  # per table; past it the cache starts again (rows are read back as needed)
_PLACES = Decimal("0.000001")

Key = tuple[Any, ...]
Row = dict[str, Any]


def amount(value: Any) -> Decimal:
    """A sum from SQL as an exact Decimal (SQLite adds NUMERIC columns as binary floats)."""
    return Decimal(str(value or 0)).quantize(_PLACES).normalize()


@dataclass(frozen=True)
class Table:
    """A read-model table: its columns (name → SQL type), primary key and indexes."""

    name: str
    columns: dict[str, str]
    key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()

    def create(self, physical: str) -> list[str]:
        columns = ", ".join(f"{c} {t}" for c, t in self.columns.items())
        statements = [f"CREATE TABLE IF NOT EXISTS {physical} ({columns}, PRIMARY KEY ({', '.join(self.key)}))"]
        for n, index in enumerate(self.indexes):
            statements.append(f"CREATE INDEX IF NOT EXISTS {physical}_i{n} ON {physical} ({', '.join(index)})")
        return statements

    def decode(self, values: Iterable[Any]) -> Row:
        row = dict(zip(self.columns, values))
        for column, kind in self.columns.items():
            value = row[column]
            if value is None:
                continue
            if kind == "DATE" and isinstance(value, str):
                row[column] = date.fromisoformat(value)
            elif kind == "NUMERIC" and not isinstance(value, Decimal):
                row[column] = Decimal(str(value))
        return row


class Rows:
    """The rows of one table, cached, with the changes of the current batch."""

    def __init__(self, table: Table, physical: str, db: Db, *, complete: bool) -> None:
        self.table, self.physical, self.db = table, physical, db
        self.cache: dict[Key, Row | None] = {}
        self.changed: set[Key] = set()
        #: True while the cache holds every row of the table (it started empty): a miss is absent.
        self.complete = complete
        columns = list(table.columns)
        self._select = (f"SELECT {', '.join(columns)} FROM {physical} WHERE "
                        + " AND ".join(f"{k} = ?" for k in table.key))
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in table.key) or None
        self._upsert = (f"INSERT INTO {physical} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
                        f"ON CONFLICT ({', '.join(table.key)}) "
                        + (f"DO UPDATE SET {updates}" if updates else "DO NOTHING"))
        self._delete = f"DELETE FROM {physical} WHERE " + " AND ".join(f"{k} = ?" for k in table.key)
        if db.dialect == "postgres":
            # One statement per table and batch: rows travel as arrays (in binary: no quoting) and
            # are unnested server-side.
            arrays = ", ".join(f"%b::{_PG_ARRAY[t]}" for t in table.columns.values())
            self._upsert = self._upsert.replace(
                f"VALUES ({', '.join('?' * len(columns))})", f"SELECT * FROM unnest({arrays})")
            keys = ", ".join(f"%b::{_PG_ARRAY[table.columns[k]]}" for k in table.key)
            self._delete = (f"DELETE FROM {physical} WHERE ({', '.join(table.key)}) IN "
                            f"(SELECT * FROM unnest({keys}))")

    def get(self, *key: Any) -> Row | None:
        if key not in self.cache:
            if self.complete:
                return None
            found = self.db.query(self._select, key)
            self.cache[key] = self.table.decode(found[0]) if found else None
        return self.cache[key]

    def put(self, row: Row) -> None:
        key = tuple(row[k] for k in self.table.key)
        self.cache[key] = row
        self.changed.add(key)

    def update(self, *key: Any, **changes: Any) -> Row | None:
        row = self.get(*key)
        if row is not None:
            self.put({**row, **changes})
        return row

    def delete(self, *key: Any) -> None:
        self.cache[key] = None
        self.changed.add(key)

    def flush(self) -> int:
        upserts, deletes = [], []
        for key in self.changed:
            row = self.cache[key]
            if row is None:
                deletes.append(key)
            else:
                upserts.append(tuple(row[c] for c in self.table.columns))
        if self.db.dialect == "postgres":
            if deletes:
                self.db.execute(self._delete, [list(column) for column in zip(*deletes)])
            if upserts:
                self.db.execute(self._upsert, [list(column) for column in zip(*upserts)])
        else:
            self.db.executemany(self._delete, deletes)
            self.db.executemany(self._upsert, upserts)
        written = len(self.changed)
        self.changed.clear()
        if len(self.cache) > MAX_CACHED_ROWS:
            self.forget()
        return written

    def forget(self) -> None:
        self.cache.clear()
        self.changed.clear()
        self.complete = False


class Projection:
    """A read model: its tables, and one method per event class it cares about.

    Subclasses list `handlers` (event class → method name); `apply` ignores other events.
    When the tables change (their `shape`), or `version` is raised because the meaning of a row
    changed, the runner builds a new generation beside the serving one and swaps it in when caught
    up: adding a factor or a column needs no version of its own.
    """

    name: ClassVar[str]
    version: ClassVar[int]
    tables: ClassVar[tuple[Table, ...]]
    handlers: ClassVar[dict[type, str]]
    #: Position of the event being applied (set by the runner before each `apply`).
    position: int = 0

    @classmethod
    def shape(cls) -> str:
        """A fingerprint of the tables: names, columns and their types, keys, indexes."""
        text = "|".join(f"{t.name}:{sorted(t.columns.items())}:{t.key}:{t.indexes}" for t in cls.tables)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def __init__(self, rows: dict[str, Rows]) -> None:
        self.rows = rows
        self._dispatch: dict[type, Callable[[Any], None]] = {
            cls: getattr(self, method) for cls, method in self.handlers.items()}

    def apply(self, event: Any) -> None:
        handler = self._dispatch.get(type(event))
        if handler is not None:
            handler(event)
