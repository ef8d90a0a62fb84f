"""The event store's recorders, with two additions to the library's.

1. A batch commits only if nothing it read has changed. The ledger passes the version at which
   it read each aggregate (`read_versions`); inside the insert transaction, once the events
   table is locked against other writers, the recorder compares them with the store and
   refuses (IntegrityError, so the batch is run again on fresh state) if any moved. This covers
   decisions that write nothing to what they read: a rejection for a quota that another process
   had just raised must not be kept.
2. PostgreSQL: a batch's events go as four binary arrays in one `INSERT … SELECT unnest(…)`;
   the library sends one array of a composite type as text, which psycopg escapes byte by byte.

3. PostgreSQL: a failure renews the pool's connections (see below).
4. The events table is append-only: triggers made with it refuse every UPDATE and DELETE (and
   TRUNCATE on PostgreSQL), whoever asks. Only someone who may alter the table can get past them,
   and the audit chain (`yaosu audit verify`) shows what they changed.

Everything else (table lock, NOTIFY, tracking in the same transaction, notification ids in
order) is the library's own.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Sequence
from uuid import UUID

from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresProcessRecorder
from eventsourcing.sqlite import SQLiteCursor, SQLiteProcessRecorder, SQLiteTransaction
from psycopg.sql import SQL, Identifier

from infra.events_table import sqlite_select_in


def _refuse_if_moved(read: Mapping[UUID, int], stored: Mapping[UUID, int]) -> None:
    moved = [i for i, version in read.items() if stored.get(i, 0) != version]
    if moved:
        raise IntegrityError(f"{len(moved)} aggregate(s) changed since the batch read them, e.g. {moved[0]}")


def _renew_connections_after_failures(datastore: Any) -> None:
    """After a server restart every pooled connection is broken. The library retries a failed
    statement a few times, each on another pooled (broken) connection; checking the pool on the
    first failure replaces them all at once, so the retry finds a working one."""
    get_connection = datastore.get_connection

    @contextmanager
    def checked() -> Iterator[Any]:
        try:
            with get_connection() as conn:
                yield conn
        except (OperationalError, InterfaceError):
            datastore.pool.check()
            raise

    datastore.get_connection = checked


class EventsRecorder(PostgresProcessRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _renew_connections_after_failures(self.datastore)
        table = SQL("{}.{}").format(Identifier(self.datastore.schema), Identifier(self.events_table_name))
        id_type = SQL("uuid" if self.datastore.originator_id_type == "uuid" else "text")
        self.insert_events_statement = SQL(
            "INSERT INTO {} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::{}[], %b::bigint[], %b::text[], %b::bytea[]) RETURNING notification_id"
        ).format(table, id_type)
        self.versions_statement = SQL(
            "SELECT originator_id, MAX(originator_version) AS v FROM {} WHERE originator_id = ANY(%s) "
            "GROUP BY originator_id").format(table)
        refuse = SQL("{}.{}").format(Identifier(self.datastore.schema),
                                     Identifier(f"{self.events_table_name}_append_only"))
        self.sql_create_statements += [
            SQL("CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION 'the event store is append-only: % refused on %', TG_OP, TG_TABLE_NAME; "
                "END $$").format(refuse),
            SQL("CREATE OR REPLACE TRIGGER append_only BEFORE UPDATE OR DELETE ON {} "
                "FOR EACH ROW EXECUTE FUNCTION {}()").format(table, refuse),
            SQL("CREATE OR REPLACE TRIGGER append_only_truncate BEFORE TRUNCATE ON {} "
                "FOR EACH STATEMENT EXECUTE FUNCTION {}()").format(table, refuse)]

    def _insert_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        read: Mapping[UUID, int] | None = kwargs.get("read_versions")
        if read:
            self._lock_table(curs)  # from here until commit, no other writer can move anything
            curs.execute(self.versions_statement, (list(read),))
            _refuse_if_moved(read, {r["originator_id"]: r["v"] for r in curs.fetchall()})
        super()._insert_events(curs, stored_events, **kwargs)

    def _insert_stored_events(self, curs: Any, stored_events: Sequence[StoredEvent], **_: Any) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(self.insert_events_statement, (
            [e.originator_id for e in stored_events], [e.originator_version for e in stored_events],
            [e.topic for e in stored_events], [e.state for e in stored_events]))


_WRITERS: dict[str, threading.RLock] = {}


def sqlite_writer(path: str) -> threading.RLock:
    """The lock this process's writers of one SQLite file take before asking SQLite for its write lock.

    SQLite makes a waiting writer poll, sleeping longer each time, while newcomers may take the lock
    between its polls: with a dozen request threads and the read models' runner writing in turn, one
    writer could wait out its whole timeout. Waiting here instead, they take turns."""
    return _WRITERS.setdefault(path, threading.RLock())


class _ImmediateTransaction(SQLiteTransaction):
    """A write transaction that takes SQLite's write lock when it begins, not at its first write."""

    def __enter__(self) -> SQLiteCursor:
        cursor = self.connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        return cursor


class SQLiteEventsRecorder(SQLiteProcessRecorder):
    def construct_create_table_statements(self) -> list[str]:
        table = self.events_table_name
        return [*super().construct_create_table_statements(), *(
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, 'the event store is append-only: {operation} refused on {table}'); END"
            for operation in ("UPDATE", "DELETE"))]

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        # The versions read inside the transaction must still hold when it writes: with a plain
        # BEGIN another process could commit in between, and SQLite would refuse the write.
        with sqlite_writer(self.datastore.pool.db_name), self.datastore.get_connection(commit=True) as conn, \
                _ImmediateTransaction(conn, commit=True) as curs:
            return self._insert_events(curs, stored_events, **kwargs)

    def _insert_events(self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        read: Mapping[UUID, int] | None = kwargs.get("read_versions")
        if read:
            rows = sqlite_select_in(c, f"SELECT originator_id, MAX(originator_version) FROM {self.events_table_name} "
                                       "WHERE originator_id IN ({}) GROUP BY originator_id", list(read))
            _refuse_if_moved(read, {UUID(r[0]): r[1] for r in rows})
        return super()._insert_events(c, stored_events, **kwargs)
