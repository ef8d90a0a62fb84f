"""One connection to the read-model database: the event store's own SQLite file or PostgreSQL schema.

Read models live beside the events so that a batch's changes and its tracking position commit in
one transaction. SQL is written once with `?` placeholders; PostgreSQL gets `%s`.

Many values go to PostgreSQL as one JSON parameter (`packed`), unpacked server-side (`unpacked`):
psycopg dumps an array element by element in Python, orjson dumps the whole in C, about twice as cheap.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from decimal import Decimal
from itertools import chain, islice
from typing import Any, Iterable, Iterator, Mapping, Sequence

import orjson
import psycopg
from psycopg.sql import SQL, Identifier

from infra.recorder import sqlite_writer
from infra.settings import Settings


class NotBuilt(Exception):
    """A read model cannot answer yet: no generation serves, or one with other columns is being built."""


#: Rows added at once from which `Db.copy` uses `COPY`.
COPY_FROM = 64


def packed(rows: Iterable[Any]) -> str:
    """Rows (or values) as one JSON parameter: a decimal as its exact text, a date as ISO 8601."""
    return orjson.dumps(list(rows), default=_exact).decode()


def _exact(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"a {type(value).__name__} cannot be written to a read model")


def unpacked(columns: Mapping[str, str]) -> str:
    """PostgreSQL: the rows of a `packed` parameter (each an array of these columns' values, name → SQL
    type) as a relation of typed columns."""
    typed = ", ".join(f"(r->>{n})::{kind.lower()} AS {name}" for n, (name, kind) in enumerate(columns.items()))
    return f"SELECT {typed} FROM jsonb_array_elements(?::jsonb) AS r"


class Db:
    def __init__(self, settings: Settings) -> None:
        where = settings.location
        if where.kind == "memory":
            raise ValueError("read models need a real store: sqlite:/// or postgresql://")
        self.dialect = where.kind
        self.where = where
        self.schema = where.schema
        self._lock = threading.RLock()
        self._in_transaction = False
        self._pipelined = False
        self.conn: Any = self._connect()

    def _connect(self) -> Any:
        if self.dialect == "sqlite":
            conn = sqlite3.connect(self.where.sqlite_path, isolation_level=None, timeout=60, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            return conn
        conn = psycopg.connect(**self.conninfo(), autocommit=True)
        conn.execute(SQL("SET search_path TO {}").format(Identifier(self.schema)))
        return conn

    def conninfo(self) -> dict[str, Any]:
        return dict(self.where.conninfo)

    def reconnect(self) -> None:
        with self._lock:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 - it is broken already
                pass
            self.conn = self._connect()

    def _fresh(self) -> None:
        # After the server restarted, a connection is closed or broken: open a new one before use.
        if self.dialect == "postgres" and (self.conn.closed or self.conn.broken):
            self.conn = self._connect()

    def sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.dialect == "postgres" else statement

    @contextmanager
    def transaction(self) -> Iterator[Db]:
        with self._lock:
            self._fresh()
            if self.dialect == "sqlite":
                with sqlite_writer(self.where.sqlite_path or ""):  # in turn with this process's other writers
                    self.conn.execute("BEGIN IMMEDIATE")
                    try:
                        yield self
                        self.conn.execute("COMMIT")
                    except BaseException:
                        if self.conn.in_transaction:  # also when COMMIT itself failed
                            self.conn.execute("ROLLBACK")
                        raise
            else:
                self._in_transaction = True
                try:
                    with self.conn.transaction():
                        yield self
                finally:
                    self._in_transaction = False

    @contextmanager
    def reading(self) -> Iterator[Db]:
        """One read-only snapshot: every query inside sees the same committed state.

        Holds no lock: the caller has this connection to itself (a request may enter and leave
        on different threads).
        """
        self._fresh()
        self.conn.execute("BEGIN" if self.dialect == "sqlite" else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        self._in_transaction = True
        try:
            yield self
        finally:
            self._in_transaction = False
            if self.dialect == "sqlite":
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")  # nothing was written: ending it either way is the same
            elif not self.conn.broken and self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                self.conn.execute("ROLLBACK")

    def among(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """A condition `column` (of text) is one of `values`, and its parameters."""
        if self.dialect == "postgres":
            return f"{column} = ANY(ARRAY(SELECT jsonb_array_elements_text(?::jsonb)))", [packed(values)]
        return f"{column} IN ({', '.join('?' * len(values))})" if values else "1 = 0", list(values)

    @contextmanager
    def pipeline(self) -> Iterator[None]:
        """Statements sent without waiting for each answer, all answered at the end of the block (PostgreSQL's
        pipeline mode): a batch's writes cost one round trip, not one each. What fails is raised at the end.
        A pipeline cannot carry a `COPY`."""
        with self._lock:
            if self.dialect == "sqlite":
                yield
                return
            self._fresh()
            with self.conn.pipeline():
                self._pipelined = True
                try:
                    yield
                finally:
                    self._pipelined = False

    def queries(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple[Any, ...]]]:
        """The rows of each of these queries, asked at once (in one pipeline)."""
        with self._lock:
            if self.dialect == "sqlite":
                return [self.query(statement, params) for statement, params in statements]
            with _built(), self.pipeline():
                cursors = [self.conn.execute(self.sql(statement), params) for statement, params in statements]
            return [cursor.fetchall() for cursor in cursors]

    def in_order(self, columns: Sequence[str]) -> str:
        """An ORDER BY list sorting as Python sorts text (by code point), a null as the empty text."""
        collated = ' COLLATE "C"' if self.dialect == "postgres" else ""  # SQLite compares UTF-8 bytes: the same
        return ", ".join(f"COALESCE({column}, ''){collated}" for column in columns)

    def execute(self, statement: str, params: Sequence[Any] = ()) -> int:
        with self._lock:
            cursor = self._run(lambda: self.conn.execute(self.sql(statement), params))
            return int(cursor.rowcount)

    def executemany(self, statement: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if not rows:
            return
        with self._lock:
            if self.dialect == "sqlite":
                self.conn.executemany(statement, rows)
            else:
                with self.conn.cursor() as cursor:
                    cursor.executemany(self.sql(statement), rows)

    def copy(self, table: str, columns: dict[str, str], rows: Iterable[Sequence[Any]]) -> None:
        """Add rows to a table (`columns`: name → SQL type). On PostgreSQL `COPY`, in binary; fewer than
        `COPY_FROM` rows in one `INSERT` of a `packed` parameter instead, since a `COPY` costs more round trips."""
        with self._lock:
            if self.dialect == "sqlite":
                self.conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) "
                                      f"VALUES ({', '.join('?' * len(columns))})", rows)
                return
            rows = iter(rows)
            first = list(islice(rows, COPY_FROM))
            if len(first) < COPY_FROM:
                if first:
                    self.conn.execute(self.sql(f"INSERT INTO {table} ({', '.join(columns)}) {unpacked(columns)}"),
                                      [packed(first)])
                return
            if self._pipelined:
                raise RuntimeError(f"{len(first)} rows or more for {table} in a pipeline, which cannot carry a COPY")
            with self.conn.cursor() as cursor, cursor.copy(
                    f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types([kind.lower() for kind in columns.values()])
                for row in chain(first, rows):
                    copy.write_row(row)

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, _built():
            return list(self._run(lambda: self.conn.execute(self.sql(statement), params).fetchall()))

    def _run(self, work: Any) -> Any:
        """Run a statement; outside a transaction, once more on a new connection if the server restarted."""
        self._fresh()
        try:
            return work()
        except psycopg.OperationalError:
            if self._in_transaction or not (self.conn.broken or self.conn.closed):
                raise
            self.conn = self._connect()
            return work()

    def columns(self, table: str) -> set[str]:
        if self.dialect == "sqlite":
            return {row[1] for row in self.query(f"PRAGMA table_info({table})")}
        return {row[0] for row in self.query("SELECT column_name FROM information_schema.columns "
                                             "WHERE table_schema = ? AND table_name = ?", [self.schema, table])}

    def close(self) -> None:
        self.conn.close()


@contextmanager
def _built() -> Iterator[None]:
    """A query of a table or column not there (`NotBuilt`): a new version of a read model with other
    columns is being built, and the serving one cannot answer this code's query until it is swapped in."""
    try:
        yield
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as error:
        raise NotBuilt(f"this read model is being rebuilt; try again shortly ({error.diag.message_primary})") from None
    except sqlite3.OperationalError as error:
        if not str(error).startswith(("no such column", "no such table")):
            raise
        raise NotBuilt(f"this read model is being rebuilt; try again shortly ({error})") from None
