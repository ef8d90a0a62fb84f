"""The `Ledger` application: the one message pipeline and the queries on the event store.

`submit` runs a batch of raw message bodies through envelope → may-send → payload → command
→ aggregates, and saves every effect and every receipt of the batch in one transaction.
Redelivery is detected by the store: a receipt's id is derived from its message_id, so a
second receipt for the same id collides on its first version. The first attempt of a batch
assumes every message is new (the common case, and no look-up per message); if the store
reports a collision, the batch is retried with each receipt looked up, which also re-reads
every aggregate, so concurrent writers to the same project or quota pool retry rather than
overwrite each other.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from dataclasses import dataclass
from datetime import date
from typing import Any, Iterator, Sequence
from uuid import UUID

import orjson
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.persistence import IntegrityError, Notification, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from eventsourcing.utils import get_topic
from psycopg.sql import SQL, Identifier

from domain.handlers import handle
from domain.messages import Envelope, message_id_of, parse_envelope
from domain.project import Project, project_as_of, project_id
from domain.quota import QuotaPool, quota_pool_id
from domain.receipt import MessageReceipt, conflict_receipt_id, receipt_id
from domain.reduction import EmissionReduction, reduction_id_of
from domain.rejections import Rejection
from infra.settings import Principal

log = logging.getLogger("yaosu.ledger")

MAX_ATTEMPTS = 8
REJECTED_TOPIC = get_topic(MessageReceipt.Rejected)


@dataclass(frozen=True)
class Result:
    """What became of one message, in the contract's words."""

    message_id: str | None
    status: str  # accepted | duplicate | rejected
    position: int | None = None
    code: str | None = None
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None or k == "message_id"}


@dataclass(frozen=True)
class StoredItem:
    """An event as the audit trail shows it, with its position in the store."""

    position: int
    event: CanMutateAggregate[UUID]


def body_hash(body: Any) -> str:
    """A hash of the body that ignores key order and white space."""
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS) if not isinstance(body, bytes) else body
    return hashlib.sha256(canonical).hexdigest()


def body_text(body: Any) -> str:
    if isinstance(body, bytes):
        return body.decode("utf-8", errors="replace")
    return orjson.dumps(body).decode()


class _Batch:
    """The unit of work of one attempt at a batch; implements `domain.handlers.Workspace`."""

    def __init__(self, ledger: Ledger, *, look_up_receipts: bool) -> None:
        self.ledger = ledger
        self.look_up_receipts = look_up_receipts
        self.loaded: dict[UUID, Aggregate | None] = {}
        self.touched: dict[UUID, Aggregate] = {}
        self.events: list[CanMutateAggregate[UUID]] = []

    def _get(self, aggregate_id: UUID) -> Any:
        if aggregate_id not in self.loaded:
            try:
                self.loaded[aggregate_id] = self.ledger.repository.get(aggregate_id)
            except AggregateNotFoundError:
                self.loaded[aggregate_id] = None
        aggregate = self.loaded[aggregate_id]
        if aggregate is not None:
            self.touched[aggregate_id] = aggregate
        return aggregate

    def find_project(self, code: str) -> Project | None:
        return self._get(project_id(code))

    def find_pool(self, district: str, year: int, factor: str) -> QuotaPool | None:
        return self._get(quota_pool_id(district, year, factor))

    def find_reduction(self, reduction_id: str) -> EmissionReduction | None:
        return self._get(reduction_id_of(reduction_id))

    def find_receipt(self, receipt: UUID) -> MessageReceipt | None:
        if receipt in self.loaded or self.look_up_receipts:
            return self._get(receipt)
        return None

    def add(self, aggregate: Aggregate) -> None:
        self.loaded[aggregate.id] = aggregate
        self.touched[aggregate.id] = aggregate

    def end_message(self) -> int:
        """Move this message's events into the batch, in message order; index of its last."""
        for aggregate in self.touched.values():
            self.events.extend(aggregate.collect_events())
        self.touched.clear()
        return len(self.events) - 1

    def abandon_message(self) -> None:
        # Handlers check before they change anything; a rejection after a change is a bug
        # that would otherwise leave half a message in the batch.
        for aggregate in self.touched.values():
            if aggregate.pending_events:
                raise RuntimeError(f"a rule was checked after {type(aggregate).__name__} changed")
        self.touched.clear()


class Ledger(Application[UUID]):
    """The ledger of projects, quota pools, emission reductions and message receipts."""

    name = "yaosu"

    def submit(self, bodies: Sequence[Any], *, principal: Principal, channel: str) -> list[Result]:
        """Process a batch atomically; one result per body, in order."""
        prepared = [(body, body_hash(body), message_id_of(body)) for body in bodies]
        for attempt in range(MAX_ATTEMPTS):
            try:
                return self._attempt(prepared, principal, channel, look_up_receipts=attempt > 0)
            except IntegrityError:
                if attempt == MAX_ATTEMPTS - 1:
                    raise
                log.debug("batch of %d collided with another writer; retrying", len(prepared))
                time.sleep(random.uniform(0, 0.005 * 2**attempt))
        raise AssertionError("unreachable")

    def _attempt(
        self,
        prepared: list[tuple[Any, str, str | None]],
        principal: Principal,
        channel: str,
        *,
        look_up_receipts: bool,
    ) -> list[Result]:
        batch = _Batch(self, look_up_receipts=look_up_receipts)
        submitted_by = f"{principal.role}:{principal.name}"
        outcomes: list[tuple[Result, int | None]] = []
        for body, digest, message_id in prepared:
            receipt = receipt_id(message_id, digest)
            earlier = batch.find_receipt(receipt)
            if earlier is not None:
                batch.touched.clear()
                if earlier.body_hash == digest:
                    outcomes.append((Result(message_id, "duplicate"), None))
                    continue
                outcomes.append(self._conflict(batch, body, digest, message_id, submitted_by, channel))
                continue
            envelope: Envelope | None = None
            try:
                envelope = parse_envelope(body, submitted_by=submitted_by)
                if principal.role == "portal" and envelope.audit.department != principal.department:
                    raise Rejection(
                        "forbidden", f"this token may submit only as {principal.department}, not as "
                        f"{envelope.audit.department}"
                    )
                if principal.role == "supervisor":
                    raise Rejection("forbidden", "a supervisor's token reads; it does not submit messages")
                handle(envelope, batch)
            except Rejection as rejection:
                batch.abandon_message()
                batch.add(MessageReceipt.reject(
                    receipt,
                    message_id=message_id,
                    message_type=body.get("type") if isinstance(body, dict) and isinstance(body.get("type"), str) else None,
                    body_hash=digest,
                    subject=envelope.key if envelope else None,
                    submitted_by=submitted_by,
                    channel=channel,
                    code=rejection.code,
                    reason=rejection.reason,
                    body=body_text(body),
                ))
                outcomes.append((Result(message_id, "rejected", code=rejection.code, reason=rejection.reason),
                                 batch.end_message()))
                continue
            batch.add(MessageReceipt.accept(
                receipt,
                message_id=envelope.audit.message_id,
                message_type=envelope.audit.message_type,
                body_hash=digest,
                subject=envelope.key,
                submitted_by=submitted_by,
                channel=channel,
            ))
            outcomes.append((Result(message_id, "accepted"), batch.end_message()))
        recordings = self.save(*batch.events) if batch.events else []
        positions = [r.notification.id for r in recordings]
        return [
            Result(**{**result.__dict__, "position": positions[last] if last is not None and positions else None})
            for result, last in outcomes
        ]

    def _conflict(
        self, batch: _Batch, body: Any, digest: str, message_id: str | None, submitted_by: str, channel: str
    ) -> tuple[Result, int | None]:
        reason = f"message_id {message_id} was already used for a different body"
        result = Result(message_id, "rejected", code="conflict", reason=reason)
        receipt = conflict_receipt_id(message_id or "", digest)
        if batch.find_receipt(receipt) is not None:
            batch.touched.clear()
            return result, None  # this very conflicting body was already kept
        batch.add(MessageReceipt.reject(
            receipt, message_id=message_id, message_type=body.get("type") if isinstance(body, dict) else None,
            body_hash=digest, subject=None, submitted_by=submitted_by, channel=channel,
            code="conflict", reason=reason, body=body_text(body),
        ))
        return result, batch.end_message()

    # --- queries ---------------------------------------------------------------------------

    def project(self, code: str, as_of: date | None = None) -> Project | None:
        if as_of is None:
            try:
                return self.repository.get(project_id(code))
            except AggregateNotFoundError:
                return None
        return project_as_of(self.events.get(project_id(code)), as_of)

    def history(self, code: str) -> list[StoredItem]:
        """Every event of a project in order, each with its position in the store."""
        return [
            StoredItem(position, self.mapper.to_domain_event(stored))
            for position, stored in self._select_with_positions(project_id(code))
        ]

    def rejections(self, after: int = 0, limit: int = 100) -> list[StoredItem]:
        notifications = self.recorder.select_notifications(
            start=after, limit=limit, topics=[REJECTED_TOPIC], inclusive_of_start=False
        )
        return [self._item(n) for n in notifications]

    def feed(self, after: int = 0, limit: int = 100) -> list[StoredItem]:
        notifications = self.recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False)
        return [self._item(n) for n in notifications]

    def head(self) -> int:
        return self.recorder.max_notification_id() or 0

    def _item(self, notification: Notification) -> StoredItem:
        return StoredItem(notification.id, self.mapper.to_domain_event(notification))

    def _select_with_positions(self, originator_id: UUID) -> Iterator[tuple[int, StoredEvent]]:
        # The recorders select an aggregate's events without their notification ids; the
        # audit trail needs both, so read the library's own table directly.
        recorder: Any = self.recorder
        if isinstance(recorder, PostgresApplicationRecorder):
            statement = SQL(
                "SELECT notification_id, originator_version, topic, state FROM {}.{} "
                "WHERE originator_id = %s ORDER BY originator_version"
            ).format(Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name))
            with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(statement, (originator_id,))
                rows = [(r["notification_id"], r["originator_version"], r["topic"], bytes(r["state"]))
                        for r in curs.fetchall()]
        elif isinstance(recorder, SQLiteApplicationRecorder):
            with recorder.datastore.transaction(commit=False) as curs:
                curs.execute(
                    f"SELECT rowid, originator_version, topic, state FROM {recorder.events_table_name} "
                    "WHERE originator_id = ? ORDER BY originator_version",
                    (originator_id.hex,),
                )
                rows = [(r[0], r[1], r[2], r[3]) for r in curs.fetchall()]
        else:  # the in-memory store of fast unit tests: small enough to scan
            rows = [(n.id, n.originator_version, n.topic, n.state)
                    for n in recorder.select_notifications(start=None, limit=10**9)
                    if n.originator_id == originator_id]
        for position, version, topic, state in rows:
            yield position, StoredEvent(originator_id=originator_id, originator_version=version, topic=topic, state=state)
