"""The notification outbox (通知发件箱) of `yaosu notify`, in the store's database (its SQLite file or
PostgreSQL schema).

`yaosu notify` records, in one transaction, the Kafka offsets it has read up to and a row per delivery
to make (a change, i.e. a store position, and a target: unique). Its sender then delivers pending rows
in order per target and marks each delivered, or failed with when to try again, or undeliverable with
the reason. Read by the API (`GET /v1/notifications`), the console's health page and `/metrics`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import psycopg

from projections.db import Db

DELIVERIES = "notify_deliveries"
OFFSETS = "notify_offsets"
#: held: waiting for its target's daily digest; digested: told in a digest (the digest's own row is delivered).
STATES = ("pending", "held", "digested", "delivered", "undeliverable")
#: What a delivery row shows (the API's item), in order.
COLUMNS = ("sequence", "delivery_id", "change_id", "target", "kind", "change", "project_code", "rule", "level",
           "district", "department", "title", "state", "attempts", "recorded_at", "next_attempt_at", "delivered_at",
           "last_error")


@dataclass(frozen=True)
class Delivery:
    """One message to one target: `delivery_id` is stable across resends (the receiver's key to drop a repeat)."""

    delivery_id: str
    change_id: int
    target: str
    kind: str
    change: str
    project_code: str | None
    rule: str | None
    level: str | None
    district: str | None
    department: str | None
    #: What it says in one line (a digest lists them).
    title: str
    #: The request's JSON body, rendered once when recorded: every attempt sends the same.
    body: bytes
    #: pending, or held for the target's daily digest.
    state: str = "pending"


@dataclass(frozen=True)
class Pending:
    sequence: int
    delivery_id: str
    target: str
    body: bytes
    attempts: int
    recorded_at: float
    next_attempt_at: float


def delivery_id(change_id: int, target: str) -> str:
    return f"yaosu-{change_id}-{target}"


def create(db: Db) -> None:
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if db.dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
    blob = "BLOB" if db.dialect == "sqlite" else "BYTEA"
    statements = [
        f"CREATE TABLE IF NOT EXISTS {OFFSETS} (tracking TEXT PRIMARY KEY, position BIGINT NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {DELIVERIES} (sequence {serial}, delivery_id TEXT NOT NULL UNIQUE, "
        "change_id BIGINT NOT NULL, target TEXT NOT NULL, kind TEXT NOT NULL, change TEXT NOT NULL, "
        "project_code TEXT, rule TEXT, level TEXT, district TEXT, department TEXT, title TEXT NOT NULL, "
        f"body {blob} NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, "
        "recorded_at DOUBLE PRECISION NOT NULL, next_attempt_at DOUBLE PRECISION NOT NULL, "
        "delivered_at DOUBLE PRECISION, last_error TEXT, UNIQUE (change_id, target))",
        f"CREATE INDEX IF NOT EXISTS {DELIVERIES}_due ON {DELIVERIES} (target, state, sequence)",
    ]
    for statement in statements:
        try:
            db.execute(statement)
        except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
            db.execute(statement)  # another process made it at the same moment


def offsets(db: Db) -> dict[str, int]:
    """Tracking name (`kafka:<topic>:<partition>`) → the last offset whose deliveries are recorded."""
    return {name: int(position) for name, position in db.query(f"SELECT tracking, position FROM {OFFSETS}")}


def record(db: Db, read_up_to: dict[str, int], deliveries: Iterable[Delivery], now: float | None = None) -> int:
    """Record the offsets read and the deliveries they call for, in one transaction; a delivery recorded
    before (the same change and target) is left as it is. Returns how many were new."""
    at = time.time() if now is None else now
    new = 0
    with db.transaction():
        for d in deliveries:
            new += db.execute(
                f"INSERT INTO {DELIVERIES} (delivery_id, change_id, target, kind, change, project_code, rule, level, "
                "district, department, title, body, state, attempts, recorded_at, next_attempt_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?) ON CONFLICT DO NOTHING",
                [d.delivery_id, d.change_id, d.target, d.kind, d.change, d.project_code, d.rule, d.level, d.district,
                 d.department, d.title, d.body, d.state, at, at])
        for name, position in read_up_to.items():
            db.execute(f"INSERT INTO {OFFSETS} (tracking, position) VALUES (?, ?) "
                       "ON CONFLICT (tracking) DO UPDATE SET position = excluded.position", [name, position])
    return new


def digest(db: Db, target: str, day: str, change_id: int, until: float, make: Callable[[str, list[str]], bytes],
           now: float | None = None) -> int:
    """The target's digest of `day`: one pending delivery (`yaosu-digest-<day>-<target>`) that tells every
    delivery held for it recorded by `until` (the digest's moment), which are marked digested in the same
    transaction; made once a day at most, and not at all when nothing is held. `make(delivery_id, titles)`
    renders its body. Deliveries digested."""
    at = time.time() if now is None else now
    delivery = f"yaosu-digest-{day}-{target}"
    with db.transaction():
        if db.query(f"SELECT 1 FROM {DELIVERIES} WHERE delivery_id = ?", [delivery]):
            return 0
        held = db.query(f"SELECT sequence, title FROM {DELIVERIES} WHERE target = ? AND state = 'held' "
                        "AND recorded_at <= ? ORDER BY sequence", [target, until])
        if not held:
            return 0
        titles = [str(title) for _, title in held]
        db.execute(f"INSERT INTO {DELIVERIES} (delivery_id, change_id, target, kind, change, title, body, state, "
                   "attempts, recorded_at, next_attempt_at) VALUES (?, ?, ?, 'digest', 'daily', ?, ?, 'pending', 0, ?, ?)",
                   [delivery, change_id, target, f"{day}: {len(held)}", make(delivery, titles), at, at])
        db.execute(f"UPDATE {DELIVERIES} SET state = 'digested' WHERE target = ? AND state = 'held' "
                   "AND recorded_at <= ?", [target, until])
    return len(held)


def targets_pending(db: Db) -> list[str]:
    return [t for (t,) in db.query(f"SELECT DISTINCT target FROM {DELIVERIES} WHERE state = 'pending'")]


def next_of(db: Db, target: str, limit: int = 50) -> list[Pending]:
    """A target's oldest pending deliveries, in the order recorded (the order they are sent in)."""
    return [Pending(int(s), i, t, bytes(b), int(a), float(r), float(n)) for s, i, t, b, a, r, n in db.query(
        f"SELECT sequence, delivery_id, target, body, attempts, recorded_at, next_attempt_at FROM {DELIVERIES} "
        "WHERE target = ? AND state = 'pending' ORDER BY sequence LIMIT ?", [target, limit])]


def delivered(db: Db, sequence: int, now: float | None = None) -> None:
    with db.transaction():
        db.execute(f"UPDATE {DELIVERIES} SET state = 'delivered', attempts = attempts + 1, delivered_at = ?, "
                   "last_error = NULL WHERE sequence = ? AND state = 'pending'",
                   [time.time() if now is None else now, sequence])


def failed(db: Db, sequence: int, error: str, retry_at: float | None) -> None:
    """An attempt failed: try again at `retry_at`, or (None) give up: undeliverable, with the reason."""
    with db.transaction():
        if retry_at is None:
            db.execute(f"UPDATE {DELIVERIES} SET state = 'undeliverable', attempts = attempts + 1, last_error = ? "
                       "WHERE sequence = ? AND state = 'pending'", [error[:1000], sequence])
        else:
            db.execute(f"UPDATE {DELIVERIES} SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
                       "WHERE sequence = ? AND state = 'pending'", [error[:1000], retry_at, sequence])


def listed(db: Db, state: str | None = None, target: str | None = None, after: int = 0,
           limit: int = 100, latest: bool = False) -> list[dict[str, Any]]:
    """Deliveries in the order recorded, after the sequence number `after`, by state and target (`latest`:
    the last ones, newest first)."""
    where, params = ["sequence > ?"], [after]
    for column, value in (("state", state), ("target", target)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    rows = db.query(f"SELECT {', '.join(COLUMNS)} FROM {DELIVERIES} WHERE {' AND '.join(where)} "
                    f"ORDER BY sequence {'DESC' if latest else ''} LIMIT ?", [*params, limit])
    return [dict(zip(COLUMNS, row)) for row in rows]


def counts(db: Db) -> dict[tuple[str, str], int]:
    """(target, state) → deliveries."""
    return {(t, s): int(n) for t, s, n in db.query(
        f"SELECT target, state, COUNT(*) FROM {DELIVERIES} GROUP BY target, state")}


def exists(db: Db) -> bool:
    return bool(db.columns(DELIVERIES))

