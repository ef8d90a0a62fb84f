"""Reads of the library's events table that its recorders do not offer.

- an aggregate's events *with* their notification ids (the audit trail shows positions);
- many aggregates' events in one query (a batch loads what its messages name at once);
- the positions recorded with the events (Kafka partitions, the relay), for the metrics;
- the log as stored, as plain tuples, for the audit chain.
"""

from __future__ import annotations

from typing import Any, Iterable
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

SQLITE_IN_CHUNK = 500


def _pg_table(recorder: PostgresApplicationRecorder) -> Any:
    return SQL("{}.{}").format(Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name))


def _pg_rows(recorder: PostgresApplicationRecorder, statement: Any, params: Any = ()) -> list[Any]:
    with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(statement, params)
        return list(curs.fetchall())


def events_with_positions(recorder: Any, *originator_ids: UUID) -> list[tuple[int, StoredEvent]]:
    """The events of these aggregates, each with its position, in store order (one query)."""
    if isinstance(recorder, PostgresApplicationRecorder):
        statement = SQL("SELECT notification_id, originator_id, originator_version, topic, state FROM {} "
                        "WHERE originator_id = ANY(%s) ORDER BY notification_id").format(_pg_table(recorder))
        rows = [(r["notification_id"], r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"]))
                for r in _pg_rows(recorder, statement, (list(originator_ids),))]
    elif isinstance(recorder, SQLiteApplicationRecorder):
        with recorder.datastore.transaction(commit=False) as curs:
            rows = sorted((r[0], UUID(r[1]), r[2], r[3], r[4]) for r in sqlite_select_in(
                curs, f"SELECT rowid, originator_id, originator_version, topic, state "
                      f"FROM {recorder.events_table_name} WHERE originator_id IN ({{}})", list(originator_ids)))
    else:  # the in-memory store of fast unit tests: small enough to scan
        wanted = set(originator_ids)
        rows = [(n.id, n.originator_id, n.originator_version, n.topic, n.state)
                for n in recorder.select_notifications(start=None, limit=10**9) if n.originator_id in wanted]
    return [(position, StoredEvent(originator_id=originator, originator_version=version, topic=topic, state=state))
            for position, originator, version, topic, state in rows]


def events_of(recorder: Any, ids: Iterable[UUID]) -> dict[UUID, list[StoredEvent]]:
    """The stored events of many aggregates in one query, by aggregate, in version order."""
    ids = list(ids)
    found: dict[UUID, list[StoredEvent]] = {}
    if not ids:
        return found
    if isinstance(recorder, PostgresApplicationRecorder):
        statement = SQL("SELECT originator_id, originator_version, topic, state FROM {} "
                        "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version").format(
            _pg_table(recorder))
        rows = [(r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"]))
                for r in _pg_rows(recorder, statement, (ids,))]
    elif isinstance(recorder, SQLiteApplicationRecorder):
        with recorder.datastore.transaction(commit=False) as curs:
            rows = [(UUID(r[0]), r[1], r[2], r[3]) for r in sqlite_select_in(
                curs, f"SELECT originator_id, originator_version, topic, state FROM {recorder.events_table_name} "
                      "WHERE originator_id IN ({}) ORDER BY originator_id, originator_version", ids)]
    else:
        rows = [(i, s.originator_version, s.topic, s.state) for i in ids for s in recorder.select_events(i)]
    for originator_id, version, topic, state in rows:
        found.setdefault(originator_id, []).append(
            StoredEvent(originator_id=originator_id, originator_version=version, topic=topic, state=state))
    return found


def sqlite_select_in(cursor: Any, statement: str, ids: list[UUID]) -> list[Any]:
    """Rows of `statement`, whose `IN ({})` takes the ids, in chunks SQLite's parameter limit allows."""
    rows: list[Any] = []
    for start in range(0, len(ids), SQLITE_IN_CHUNK):
        chunk = ids[start:start + SQLITE_IN_CHUNK]
        cursor.execute(statement.format(",".join("?" * len(chunk))), [i.hex for i in chunk])
        rows += cursor.fetchall()
    return rows


def tracked_positions(recorder: Any) -> dict[str, int]:
    """Every position recorded with the events (Kafka partitions, the relay), by name."""
    if isinstance(recorder, PostgresApplicationRecorder):
        statement = SQL("SELECT application_name, MAX(notification_id) AS n FROM {}.{} GROUP BY application_name").format(
            Identifier(recorder.datastore.schema), Identifier(recorder.tracking_table_name))
        found = {r["application_name"]: r["n"] for r in _pg_rows(recorder, statement)}
    elif isinstance(recorder, SQLiteApplicationRecorder):  # the library names its SQLite table `tracking`
        with recorder.datastore.transaction(commit=False) as curs:
            curs.execute("SELECT application_name, MAX(notification_id) FROM tracking GROUP BY application_name")
            found = {r[0]: r[1] for r in curs.fetchall()}
    else:
        found = {}
    found.pop("__migration__", None)  # the library's own marker row
    return found


def stored_after(recorder: Any, position: int, limit: int) -> list[tuple[int, UUID, int, str, bytes]]:
    """The stored events after `position` as they are stored: (position, originator id, version, topic,
    state), as plain tuples (the audit chain reads every one, and a million notifications cost)."""
    if isinstance(recorder, PostgresApplicationRecorder):
        statement = SQL("SELECT notification_id, originator_id, originator_version, topic, state FROM {} "
                        "WHERE notification_id > %s ORDER BY notification_id LIMIT %s").format(_pg_table(recorder))
        with recorder.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(statement, (position, limit), binary=True)
            return [(n, UUID(str(i)) if not isinstance(i, UUID) else i, v, t, bytes(s))
                    for n, i, v, t, s in curs.fetchall()]
    if isinstance(recorder, SQLiteApplicationRecorder):
        with recorder.datastore.transaction(commit=False) as curs:
            curs.execute(f"SELECT rowid, originator_id, originator_version, topic, state FROM "
                         f"{recorder.events_table_name} WHERE rowid > ? ORDER BY rowid LIMIT ?", (position, limit))
            return [(n, UUID(i), v, t, bytes(s)) for n, i, v, t, s in curs.fetchall()]
    return [(n.id, n.originator_id, n.originator_version, n.topic, n.state)
            for n in recorder.select_notifications(start=position, limit=limit, inclusive_of_start=False)]
