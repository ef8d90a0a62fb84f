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
from functools import cached_property
from operator import attrgetter, itemgetter
from typing import Any, Callable, ClassVar, Collection, Iterable

from eventsourcing.domain import CanMutateAggregate

from infra.settings import Settings
from projections.db import COPY_FROM, Db, packed, unpacked

sqlite3.register_adapter(Decimal, str)
sqlite3.register_adapter(date, date.isoformat)

#: Keys looked up in one statement by `Rows.prefetch` (SQLite's variables are limited).
_PREFETCH_CHUNK = 400

#: Rows kept per table between batches; past it, those the last batch did not touch are let go (and
#: read back if needed), so a rebuild's memory stays flat in the size of the store. What a batch looks up
#: is read at once (`Projection.lookups`), so a small bound costs a few queries a batch, not one per
#: event: 5,000 holds a city of 3,000 projects whole, and keeps a rebuild of 30,000 (two processes
#: side by side) within a few hundred MB (20,000 rows: 228 MB a process there; 2,000: 124-149 MB).
MAX_CACHED_ROWS = 5_000
_PLACES = Decimal("0.000001")

Key = tuple[Any, ...]
Row = dict[str, Any]


def key_of(*paths: str) -> Callable[[Any], Key | None]:
    """An event's key into a table: its attributes at these dotted paths (None where it has not them all)."""
    get = attrgetter(*paths)
    single = len(paths) == 1  # attrgetter of one path gives the value, of more a tuple

    def key(event: Any) -> Key | None:
        try:
            found = get(event)
        except AttributeError:
            return None
        values = (found,) if single else found
        return None if None in values else values

    return key


#: The project (or other subject) a message was about.
SUBJECT = key_of("audit.subject")


def amount(value: Any) -> Decimal:
    """A sum from SQL as an exact Decimal (SQLite adds NUMERIC columns as binary floats)."""
    return Decimal(str(value or 0)).quantize(_PLACES).normalize()


@dataclass(frozen=True)
class Table:
    """A read-model table: its columns (name → SQL type), primary key and indexes.

    `appends`: rows are only ever added, each under a key no row had (a log kept beside the log,
    keyed by position): a runner keeps them as `Appended`, not `Rows`.
    """

    name: str
    columns: dict[str, str]
    key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()
    appends: bool = False

    def create(self, physical: str, *, indexed: bool = True) -> list[str]:
        columns = ", ".join(f"{c} {t}" for c, t in self.columns.items())
        table = f"CREATE TABLE IF NOT EXISTS {physical} ({columns}, PRIMARY KEY ({', '.join(self.key)}))"
        return [table, *(self.index(physical) if indexed else [])]

    def index(self, physical: str) -> list[str]:
        return [f"CREATE INDEX IF NOT EXISTS {physical}_i{n} ON {physical} ({', '.join(index)})"
                for n, index in enumerate(self.indexes)]

    def decode(self, values: Iterable[Any]) -> Row:
        row = dict(zip(self.columns, values))
        # PostgreSQL gives dates and decimals already; SQLite gives text and binary floats.
        for column in self._dates:
            value = row[column]
            if value.__class__ is str:
                row[column] = date.fromisoformat(value)
        for column in self._numbers:
            value = row[column]
            if value is not None and value.__class__ is not Decimal:
                row[column] = Decimal(str(value))
        return row

    @cached_property
    def _dates(self) -> tuple[str, ...]:
        return tuple(column for column, kind in self.columns.items() if kind == "DATE")

    @cached_property
    def _numbers(self) -> tuple[str, ...]:
        return tuple(column for column, kind in self.columns.items() if kind == "NUMERIC")


class Written:
    """The keys ever written to a table, as a Bloom filter: `in` says no only for a key never added
    (and yes, wrongly, for under one in a hundred of the others). Grows by layers, each 4× larger."""

    BITS_PER_KEY = 14  # three probes: about 0.7 % false yes

    def __init__(self, capacity: int = 1 << 14) -> None:
        self.layers: list[tuple[bytearray, int]] = []
        self.next_capacity, self.room = capacity, 0

    def add(self, key: Key) -> None:
        if self.room == 0:  # the last layer is full: a larger one takes the keys from here on
            size = self.next_capacity * self.BITS_PER_KEY
            self.layers.append((bytearray(size // 8 + 1), size))
            self.room, self.next_capacity = self.next_capacity, self.next_capacity * 4
        bits, size = self.layers[-1]
        h = hash(key)
        for bit in (h % size, (h >> 21) % size, (h >> 42 ^ h) % size):
            bits[bit >> 3] |= 1 << (bit & 7)
        self.room -= 1

    def __contains__(self, key: Key) -> bool:
        h = hash(key)
        for bits, size in self.layers:
            a, b, c = h % size, (h >> 21) % size, (h >> 42 ^ h) % size
            if bits[a >> 3] >> (a & 7) & 1 and bits[b >> 3] >> (b & 7) & 1 and bits[c >> 3] >> (c & 7) & 1:
                return True
        return False


class Rows:
    """The rows of one table, cached, with the changes of the current batch."""

    def __init__(self, table: Table, physical: str, db: Db, *, empty: bool) -> None:
        self.table, self.physical, self.db = table, physical, db
        self.cache: dict[Key, Row | None] = {}
        self.changed: set[Key] = set()
        #: Keys read or written since the last flush: the rows kept when the cache is trimmed.
        self.touched: set[Key] = set()
        #: When the table was empty as this runner began (a generation being built): every key it
        #: wrote since. A key not among them has no row, so a miss needs no query, and a new row is
        #: written with `COPY` rather than an upsert.
        self.written: Written | None = Written() if empty else None
        #: Keys of this batch's rows new to the table.
        self.fresh: set[Key] = set()
        columns = list(table.columns)
        self._key_of = _getter(table.key)
        self._values_of = _getter(tuple(columns))
        self._select = (f"SELECT {', '.join(columns)} FROM {physical} WHERE "
                        + " AND ".join(f"{k} = ?" for k in table.key))
        keys = ", ".join(table.key)
        key_columns = {k: table.columns[k] for k in table.key}
        self._select_many = (f"SELECT {', '.join(columns)} FROM {physical} WHERE ({keys}) IN "
                             + (f"({unpacked(key_columns)})" if db.dialect == "postgres" else "(VALUES {})"))
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in table.key) or None
        self._upsert = (f"INSERT INTO {physical} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
                        f"ON CONFLICT ({keys}) " + (f"DO UPDATE SET {updates}" if updates else "DO NOTHING"))
        self._delete = f"DELETE FROM {physical} WHERE " + " AND ".join(f"{k} = ?" for k in table.key)
        if db.dialect == "postgres":
            # One statement per table and batch: the rows travel as one packed parameter.
            self._upsert = self._upsert.replace(f"VALUES ({', '.join('?' * len(columns))})", unpacked(table.columns))
            self._delete = f"DELETE FROM {physical} WHERE ({keys}) IN ({unpacked(key_columns)})"

    def get(self, *key: Any) -> Row | None:
        self.touched.add(key)
        if key not in self.cache:
            if self.written is not None and key not in self.written:
                return None
            found = self.db.query(self._select, key)
            self.cache[key] = self.table.decode(found[0]) if found else None
        return self.cache[key]

    def prefetch(self, keys: Collection[Key]) -> None:
        """Read the rows of these keys not cached yet, in one statement per chunk (a batch asks for
        them one by one; each miss would be a round trip)."""
        self.touched.update(keys)
        written = self.written
        missing = list({key for key in keys if key not in self.cache and (written is None or key in written)})
        if missing:
            for start in range(0, len(missing), _PREFETCH_CHUNK):
                chunk = missing[start:start + _PREFETCH_CHUNK]
                if self.db.dialect == "postgres":
                    found = self.db.query(self._select_many, [packed(chunk)])
                else:
                    places = ", ".join(f"({', '.join('?' * len(self.table.key))})" for _ in chunk)
                    found = self.db.query(self._select_many.format(places), [v for key in chunk for v in key])
                for values in found:
                    row = self.table.decode(values)
                    self.cache[self._key_of(row)] = row
            for key in missing:
                self.cache.setdefault(key, None)

    def put(self, row: Row) -> None:
        key = self._key_of(row)
        # A row cached is in the table or fresh already: only a miss or an absence asks the filter.
        if self.written is not None and self.cache.get(key) is None and key not in self.written:
            self.written.add(key)
            self.fresh.add(key)
        self.cache[key] = row
        self.changed.add(key)
        self.touched.add(key)

    def update(self, *key: Any, **changes: Any) -> Row | None:
        row = self.get(*key)
        if row is not None:
            self.put({**row, **changes})
        return row

    def delete(self, *key: Any) -> None:
        self.cache[key] = None
        self.fresh.discard(key)
        self.changed.add(key)
        self.touched.add(key)

    @property
    def pending(self) -> bool:
        """Is anything left to write?"""
        return bool(self.changed)

    def copy_many(self) -> int:
        """Write this batch's rows new to the table by `COPY`, if they are many (see `flush`)."""
        copied = len(self.fresh)
        if copied < COPY_FROM:
            return 0
        self.db.copy(self.physical, self.table.columns, [self._values_of(self.cache[key]) for key in self.fresh])
        self.changed -= self.fresh
        self.fresh.clear()
        return copied

    def flush(self) -> int:
        """Write this batch's changes: many new rows by `COPY` (`copy_many`: a pipeline cannot carry it, so
        the runner calls it first), the rest in at most two statements."""
        written = self.copy_many() + len(self.changed)
        upserts, deletes = [], []
        for key in self.changed:  # a few new rows go with the upserts: no conflict can arise
            row = self.cache[key]
            if row is None:
                deletes.append(key)
            else:
                upserts.append(self._values_of(row))
        if self.db.dialect == "postgres":
            if deletes:
                self.db.execute(self._delete, [packed(deletes)])
            if upserts:
                self.db.execute(self._upsert, [packed(upserts)])
        else:
            self.db.executemany(self._delete, deletes)
            self.db.executemany(self._upsert, upserts)
        self.changed.clear()
        self.fresh.clear()
        if len(self.cache) > MAX_CACHED_ROWS:
            self._trim()
        self.touched.clear()
        return written

    def _trim(self) -> None:
        self.cache = {key: self.cache[key] for key in self.touched if key in self.cache}

    def forget(self) -> None:
        """After a rollback: what was cached may be undone (the keys written stay a superset)."""
        self.cache.clear()
        self.changed.clear()
        self.touched.clear()
        self.fresh.clear()


class Appended:
    """The rows added to an `appends` table by the current batch: written with `COPY` at the flush,
    never cached nor read back."""

    def __init__(self, table: Table, physical: str, db: Db) -> None:
        self.table, self.physical, self.db = table, physical, db
        self.added: list[Row] = []
        self._values_of = _getter(tuple(table.columns))

    def put(self, row: Row) -> None:
        self.added.append(row)

    @property
    def pending(self) -> bool:
        """Is anything left to write?"""
        return bool(self.added)

    def copy_many(self) -> int:
        """Write the rows added by `COPY`, if they are many (see `Rows.flush`)."""
        return self.flush() if len(self.added) >= COPY_FROM else 0

    def flush(self) -> int:
        written = len(self.added)
        if written:
            self.db.copy(self.physical, self.table.columns, map(self._values_of, self.added))
        self.added = []
        return written

    def forget(self) -> None:
        self.added = []


def _getter(names: tuple[str, ...]) -> Callable[[Row], Key]:
    """The values of these columns of a row, as a tuple (even of one)."""
    if len(names) == 1:
        name = names[0]
        return lambda row: (row[name],)
    return itemgetter(*names)


def domain_events(*aggregates: type) -> list[type]:
    """The event classes the aggregates define (what their methods record; `Event` is only their base)."""
    return [cls for aggregate in aggregates for name, cls in vars(aggregate).items() if isinstance(cls, type)
            and issubclass(cls, CanMutateAggregate) and name != "Event"]


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
    #: True when only readers use the secondary indexes: a generation's tables get them once it has
    #: caught up, so a rebuild inserts into bare tables and each index is built once, sorted.
    defer_indexes: ClassVar[bool] = False
    #: True for a projection of the log as stored (the audit chain): `record` sees every stored
    #: event, receipts too, undecoded.
    records: ClassVar[bool] = False
    #: What the handlers look up, per table: the key each event of a batch asks of it (`key_of`), read at
    #: once before the batch (`prefetch`). Past the row cache's bound (a city's projects outnumber it),
    #: each miss would be a round trip of its own.
    lookups: ClassVar[dict[str, Callable[[Any], Key | None]]] = {}

    @classmethod
    def shape(cls) -> str:
        """A fingerprint of the tables: names, columns and their types, keys, indexes."""
        text = "|".join(f"{t.name}:{sorted(t.columns.items())}:{t.key}:{t.indexes}" for t in cls.tables)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def __init__(self, rows: dict[str, Rows | Appended], settings: Settings) -> None:
        self.rows, self.settings = rows, settings
        self._dispatch: dict[type, Callable[[Any], None]] = {
            cls: getattr(self, method) for cls, method in self.handlers.items()}

    def apply(self, event: Any) -> None:
        handler = self._dispatch.get(type(event))
        if handler is not None:
            handler(event)

    def prefetch(self, events: Iterable[Any]) -> None:
        """Before a batch is applied: read at once the rows its handlers will look up (`lookups`)."""
        if not self.lookups:
            return
        handled = [e for e in events if type(e) in self._dispatch]
        keys: dict[Callable[[Any], Key | None], set[Key]] = {}  # tables looked up by one key (SUBJECT) share it
        for table, key in self.lookups.items():
            rows = self.rows[table]
            assert isinstance(rows, Rows), f"{self.name}.{table}: looked up, so not append-only"
            if key not in keys:
                keys[key] = {found for e in handled if (found := key(e)) is not None}
            rows.prefetch(keys[key])

    def record(self, stored: Any) -> None:
        """Each stored event, in order, as the store keeps it (for projections with `records`)."""

    def settle(self, caught_up: bool) -> bool:
        """Derive what is worth deriving once per batch rather than per event, its rows written with the
        batch's (called after they were flushed, so queries see them). Returns True if some is left
        for later batches; when `caught_up`, the runner calls again, with no events, until none is."""
        return False
