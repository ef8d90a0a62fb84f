"""The audit chain kept beside the log (审计链), its daily checkpoints, and its verification.

`HashChain` is a tracked projection like the others (exactly once: links commit with the position
they reach), but of the log as stored: every stored event, receipts too, linked by
`infra.chain.link`. It keeps each position's link and, per day (city time), the last position
recorded that day and whether that day's head was checkpointed.

`record_checkpoints` records an `AuditCheckpoint` for each closed day not yet recorded (the relay
publishes it to `yaosu.audit.v1`). `verify` recomputes the chain from the store and compares it
with the links kept and with every checkpoint recorded, naming the first position that differs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Callable

from eventsourcing.persistence import IntegrityError

from domain.checkpoint import CHECKPOINTED, AuditCheckpoint
from domain.reference import CITY_TZ
from infra.chain import GENESIS, link
from infra.transcoder import recorded_at
from projections.db import Db
from projections.model import Projection, Table
from service.ledger import Ledger

log = logging.getLogger("yaosu.audit")

LINKS = Table("links", {"position": "BIGINT", "hash": "TEXT"}, key=("position",), appends=True)
DAYS = Table("days", {"day": "DATE", "position": "BIGINT", "hash": "TEXT", "checkpointed_at": "BIGINT"},
             key=("day",))
HEAD = Table("head", {"name": "TEXT", "position": "BIGINT", "hash": "TEXT", "day": "DATE"}, key=("name",))
#: Where each `yaosu audit verify` leaves its verdict (the console's health page shows the last).
VERIFIED = "yaosu_audit_verified"


class HashChain(Projection):
    name = "chain"
    version = 1
    tables = (LINKS, DAYS, HEAD)
    handlers = {AuditCheckpoint.Recorded: "checkpointed"}
    records = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The last link, its day and position; `_moved`: not yet written to `days` and `head`.
        self._head: tuple[bytes, date | None, int] | None = None
        self._moved = False

    def record(self, stored: Any) -> None:
        if self._head is None:
            head = self.rows["head"].get("head")
            self._head = (bytes.fromhex(head["hash"]), head["day"], head["position"]) if head else (GENESIS, None, 0)
        previous, last_day, _ = self._head
        digest = link(previous, stored.id, stored.originator_id, stored.originator_version, stored.topic, stored.state)
        when = recorded_at(stored.state)
        day = when.astimezone(CITY_TZ).date() if when is not None else last_day or date.min
        if day != last_day:
            self._close_day()
        self.rows["links"].put({"position": stored.id, "hash": digest.hex()})
        self._head, self._moved = (digest, day, stored.id), True

    def _close_day(self) -> None:
        """Write the day's last position and link, and the head: once per day and batch, not per event."""
        if not self._moved or self._head is None:
            return
        digest, day, position = self._head
        text = digest.hex()
        self.rows["days"].put({**(self.rows["days"].get(day) or {"checkpointed_at": None}),
                               "day": day, "position": position, "hash": text})
        self.rows["head"].put({"name": "head", "position": position, "hash": text, "day": day})
        self._moved = False

    def checkpointed(self, e: AuditCheckpoint.Recorded) -> None:
        self._close_day()
        self.rows["days"].update(e.day, checkpointed_at=self.position)

    def settle(self, caught_up: bool) -> bool:
        self._close_day()
        return False


def record_checkpoints(ledger: Ledger, db: Db, tables: dict[str, str], today: date) -> list[date]:
    """Record the head of every closed day (before `today`) not yet checkpointed; the days recorded.
    A day another process recorded meanwhile is left to it (the checkpoint's id is the day's)."""
    due = db.query(f"SELECT day, position, hash FROM {tables['days']} WHERE day < ? AND checkpointed_at IS NULL "
                   "ORDER BY day", [today])
    recorded = []
    for day, position, head in due:
        day = day if isinstance(day, date) else date.fromisoformat(day)
        try:
            ledger.save(AuditCheckpoint(day=day, position=position, head=head))
        except IntegrityError:
            continue
        recorded.append(day)
        log.info("checkpoint of %s: position %d, head %s", day, position, head)
    return recorded


def last_checkpoint(db: Db, tables: dict[str, str]) -> dict[str, Any] | None:
    rows = db.query(f"SELECT day, position, hash FROM {tables['days']} WHERE checkpointed_at IS NOT NULL "
                    "ORDER BY day DESC LIMIT 1")
    return dict(zip(("day", "position", "hash"), rows[0])) if rows else None


@dataclass(frozen=True)
class Checkpoint:
    day: date
    position: int
    head: str
    recorded_at: int  # the position of the checkpoint event itself


@dataclass(frozen=True)
class Verdict:
    """What `verify` found: the chain confirmed up to `head_position`, or the first position that differs."""

    start: int
    checked: int
    head_position: int
    head_hash: str
    seconds: float
    checkpoints: int = 0
    first_bad: int | None = None
    why: str | None = None
    contradicts: Checkpoint | None = None
    links_compared: bool = False

    @property
    def ok(self) -> bool:
        return self.first_bad is None

    @property
    def events_per_second(self) -> float:
        return self.checked / self.seconds if self.seconds else 0.0


def checkpoints(ledger: Ledger) -> list[Checkpoint]:
    """Every checkpoint recorded, in the order recorded."""
    found, after = [], 0
    while batch := ledger.notifications_after(after, 5000, [CHECKPOINTED]):
        for n in batch:
            e: Any = ledger.decode(n)
            found.append(Checkpoint(e.day, e.position, e.head, n.id))
        after = batch[-1].id
    return found


def verify(ledger: Ledger, db: Db | None, tables: dict[str, str] | None, start: int = 0,
           progress: Callable[[int], None] | None = None, batch: int = 20_000) -> Verdict:
    """Recompute the chain from position `start` (0: from the first event) to the store's head and
    compare each link with the one kept (`tables`: the chain read model, if built) and with every
    checkpoint recorded. Stops at the first position that differs."""
    started = time.perf_counter()
    by_position = {c.position: c for c in checkpoints(ledger)}
    previous = GENESIS
    if start > 0:
        if db is None or tables is None:
            raise ValueError("--from needs the chain read model (the link before it): run the projections first")
        kept = db.query(f"SELECT hash FROM {tables['links']} WHERE position = ?", [start])
        if not kept:
            raise ValueError(f"no link is kept at position {start}: the chain read model has not reached it")
        previous = bytes.fromhex(kept[0][0])
    position, checked = start, 0

    def verdict(**found: Any) -> Verdict:
        return Verdict(start, checked, position, previous.hex(), time.perf_counter() - started,
                       checkpoints=len(by_position), links_compared=tables is not None, **found)

    while rows := ledger.stored_after(position, batch):
        links: dict[int, str] = {}
        if db is not None and tables is not None:
            links = dict(db.query(f"SELECT position, hash FROM {tables['links']} WHERE position > ? AND position <= ?",
                                  [position, rows[-1][0]]))
        for n, originator_id, version, topic, state in rows:
            digest = link(previous, n, originator_id, version, topic, state)
            kept_link = links.get(n)
            checkpoint = by_position.get(n)
            if (kept_link is not None and kept_link != digest.hex()) or (
                    checkpoint is not None and checkpoint.head != digest.hex()):
                later = [c for c in sorted(by_position.values(), key=lambda c: c.position) if c.position >= n]
                why = (f"position {n} hashes to {digest.hex()}, but "
                       + (f"the chain kept {kept_link}" if kept_link is not None and kept_link != digest.hex()
                          else f"the checkpoint of {checkpoint.day} says {checkpoint.head}"))  # type: ignore[union-attr]
                return verdict(first_bad=n, why=why, contradicts=later[0] if later else None)
            previous, position = digest, n
            checked += 1
        if progress is not None:
            progress(len(rows))
    return verdict()


def remember(db: Db, result: Verdict) -> None:
    """Keep the verdict (the console shows the last one)."""
    with db.transaction():
        db.execute(f"CREATE TABLE IF NOT EXISTS {VERIFIED} (at TEXT, start BIGINT, head_position BIGINT, "
                   "head_hash TEXT, first_bad BIGINT, why TEXT, checkpoint_day TEXT, events_per_second NUMERIC)")
        db.execute(f"INSERT INTO {VERIFIED} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [
            datetime.now(timezone.utc).isoformat(), result.start, result.head_position, result.head_hash,
            result.first_bad, result.why, result.contradicts.day.isoformat() if result.contradicts else None,
            round(result.events_per_second)])


def last_verified(db: Db) -> dict[str, Any] | None:
    if not db.columns(VERIFIED):
        return None
    rows = db.query(f"SELECT at, start, head_position, head_hash, first_bad, why, checkpoint_day, events_per_second "
                    f"FROM {VERIFIED} ORDER BY at DESC LIMIT 1")
    keys = ("at", "start", "head_position", "head_hash", "first_bad", "why", "checkpoint_day", "events_per_second")
    return dict(zip(keys, rows[0])) if rows else None
