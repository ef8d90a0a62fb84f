"""The `Ledger` application: the one message pipeline and the queries on the event store.

`submit` runs a batch of raw message bodies through envelope → may-send → payload → command
→ aggregates, and saves every effect and every receipt of the batch in one transaction.
Redelivery is detected by the store: a receipt's id is derived from its message_id, so a
second receipt for the same id collides on its first version. The first attempt of a batch
assumes every message is new (the common case, and no look-up per message); if the store
reports a collision, the batch is retried with each receipt looked up.

Aggregates are kept in memory between batches and changed in place. A batch is saved only if
no other process has moved any aggregate it read (checked by the recorder inside the insert
transaction, since a rejection is a decision too although it writes nothing to the project);
if one has, or the save collides, everything the attempt touched is dropped from memory and the
batch is run again on fresh state. Optimistic concurrency on every aggregate written means two processes racing for the
last units of a quota cannot both win.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Iterable, Sequence
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent, project_aggregate
from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError, StoredEvent, Tracking
from eventsourcing.utils import get_topic

from domain.alerts import alerts_id
from domain.handlers import handle
from domain.messages import Envelope, parse_envelope
from domain.project import Project, project_as_of, project_id
from domain.quota import QuotaPool, quota_pool_id
from domain.receipt import MessageReceipt, conflict_receipt_id, receipt_id
from domain.reduction import EmissionReduction, reduction_id_of
from domain.rejections import Rejection
from infra.events_table import events_of, events_with_positions, tracked_positions
from infra.inbound import Inbound, inbound
from infra.presenter import StoredItem, original_body
from infra.settings import Principal

log = logging.getLogger("yaosu.ledger")

MAX_ATTEMPTS = 8
#: The reason of a message kept as `invalid` because the code failed on it (a bug, not bad input).
UNPROCESSABLE = "the message could not be processed"
REJECTIONS_SCANNED = 10_000
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
class Page:
    """Events of the log in order, and the position to read after for the next page."""

    items: list[StoredItem]
    next_after: int


def _sent_by(event: Any, principal: Principal) -> bool:
    if event is None:
        return False
    if event.submitted_by == f"{principal.role}:{principal.name}":
        return True
    return bool(event.channel == "kafka" and claimed_department(original_body(event.body)) == principal.department)


def claimed_department(body: Any) -> str | None:
    """The department a raw body says it comes from, read before the body is validated."""
    actor = body.get("actor") if isinstance(body, dict) else None
    department = actor.get("department") if isinstance(actor, dict) else None
    return department if isinstance(department, str) else None


def sender_of(principal: Principal, body: Any) -> str:
    """Whose message ids a message draws on: a portal's own; otherwise the department it names."""
    if principal.role == "portal":
        return str(principal.department)
    if principal.role == "supervisor":
        return f"supervisor:{principal.name}"
    return claimed_department(body) or "-"


def refuse_token(principal: Principal, body: Any) -> None:
    if principal.role == "supervisor":
        raise Rejection("forbidden", "a supervisor's token reads; it does not submit messages")
    if principal.role == "portal":
        department = claimed_department(body)
        if department != principal.department:
            raise Rejection("forbidden", f"this token may submit only as {principal.department}, not as {department}")


class AlreadyTracked(Exception):
    """Another process already recorded this position (e.g. a Kafka consumer before a rebalance)."""

    def __init__(self, name: str, stored: int) -> None:
        super().__init__(f"{name} is already at {stored}")
        self.stored = stored


class _Batch:
    """The unit of work of one attempt at a batch; implements `domain.handlers.Workspace`."""

    def __init__(self, ledger: Ledger, *, look_up_receipts: bool) -> None:
        self.ledger = ledger
        self.look_up_receipts = look_up_receipts
        self.loaded: dict[UUID, Aggregate | None] = {}
        self.read_versions: dict[UUID, int] = {}
        self.touched: dict[UUID, Aggregate] = {}
        self.events: list[CanMutateAggregate[UUID]] = []

    def prefetch(self, bodies: Iterable[Any]) -> None:
        """Load, in one query, the projects, reductions and pools these messages name."""
        wanted = set()
        for body in bodies:
            if not isinstance(body, dict):
                continue
            code, payload = body.get("project_code"), body.get("payload")
            if isinstance(code, str):
                wanted.add(project_id(code))
            if isinstance(payload, dict):
                if isinstance(payload.get("reduction_id"), str):
                    wanted.add(reduction_id_of(payload["reduction_id"]))
                if body.get("type") == "quota.set":
                    wanted.add(quota_pool_id(str(payload.get("district")), payload.get("year"), str(payload.get("factor"))))
        self._load(self.ledger.load_many(wanted - self.loaded.keys()))

    def _load(self, found: dict[UUID, Any]) -> None:
        for aggregate_id, aggregate in found.items():
            self.loaded[aggregate_id] = aggregate
            self.read_versions[aggregate_id] = aggregate.version if aggregate is not None else 0

    def _get(self, aggregate_id: UUID) -> Any:
        if aggregate_id not in self.loaded:
            self._load(self.ledger.load_many([aggregate_id]))
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

    def construct_recorder(self) -> Any:
        # A process recorder: it can record a position (a Kafka offset) with the events.
        return self.factory.process_recorder()

    def __init__(self, env: Any = None) -> None:
        super().__init__(env)
        self._memory: OrderedDict[UUID, Aggregate] = OrderedDict()
        self._memory_size = int(self.env.get("LEDGER_CACHE_SIZE") or 20000)
        # One batch at a time per process: aggregates in memory are changed in place.
        self._submitting = threading.Lock()

    def load_many(self, ids: Iterable[UUID]) -> dict[UUID, Any]:
        """Aggregates as this process last saw them (the recorder checks them against the store
        when the batch is saved), the rest from the store in one query (None: not stored)."""
        found: dict[UUID, Any] = {}
        missing = []
        for aggregate_id in ids:
            if aggregate_id in self._memory:
                self._memory.move_to_end(aggregate_id)
                found[aggregate_id] = self._memory[aggregate_id]
            else:
                missing.append(aggregate_id)
        stored = events_of(self.recorder, missing)
        for aggregate_id in missing:
            events = stored.get(aggregate_id)
            found[aggregate_id] = (project_aggregate(None, map(self.mapper.to_domain_event, events))
                                   if events else None)
        return found

    def _remember(self, aggregates: Iterable[Aggregate | None]) -> None:
        for aggregate in aggregates:
            if aggregate is not None and not isinstance(aggregate, MessageReceipt):
                self._memory[aggregate.id] = aggregate
                self._memory.move_to_end(aggregate.id)
        while len(self._memory) > self._memory_size:
            self._memory.popitem(last=False)

    def _forget(self, ids: Iterable[UUID]) -> None:
        for aggregate_id in ids:
            self._memory.pop(aggregate_id, None)

    def submit(self, bodies: Sequence[Any], *, principal: Principal, channel: str,
               tracking: Tracking | None = None) -> list[Result]:
        """Process a batch atomically; one result per body, in order.

        With `tracking` (e.g. a Kafka partition and the batch's last offset), that position is
        recorded in the same transaction as the batch's effects.
        """
        prepared = [inbound(body) for body in bodies]
        with self._submitting:
            for attempt in range(MAX_ATTEMPTS):
                if attempt and tracking is not None:
                    stored = self.recorder.max_tracking_id(tracking.application_name)
                    if stored is not None and stored >= tracking.notification_id:
                        raise AlreadyTracked(tracking.application_name, stored)
                batch = _Batch(self, look_up_receipts=attempt > 0)
                try:
                    results = self._attempt(batch, prepared, principal, channel, tracking)
                except (IntegrityError, OperationalError, InterfaceError) as collision:
                    # A collision (or a connection lost to a restart): nothing was stored; run
                    # the batch again on fresh state and fresh connections.
                    self._forget(batch.loaded)
                    if attempt == MAX_ATTEMPTS - 1:
                        raise
                    log.debug("batch of %d: %s; retrying on fresh state", len(prepared), collision)
                    time.sleep(random.uniform(0, 0.005 * 2**attempt))
                    continue
                except BaseException:
                    self._forget(batch.loaded)
                    raise
                self._remember(batch.loaded.values())
                return results
        raise AssertionError("unreachable")

    def _attempt(self, batch: _Batch, prepared: list[Inbound], principal: Principal, channel: str,
                 tracking: Tracking | None) -> list[Result]:
        batch.prefetch(item.body for item in prepared)
        submitted_by = f"{principal.role}:{principal.name}"
        outcomes: list[tuple[Result, int | None]] = []
        for item in prepared:
            message_id = item.message_id
            sender = sender_of(principal, item.body)
            receipt = receipt_id(sender, message_id, item.digest)
            earlier = batch.find_receipt(receipt)
            if earlier is not None:
                batch.touched.clear()
                if earlier.body_hash == item.digest:  # the original outcome, once more
                    outcomes.append((Result(message_id, "duplicate", code=earlier.code, reason=earlier.reason), None))
                    continue
                reason = f"message_id {message_id} was already used for a different body"
                conflict = conflict_receipt_id(sender, message_id or "", item.digest)
                if batch.find_receipt(conflict) is not None:
                    batch.touched.clear()  # this very conflicting body was kept already
                    outcomes.append((Result(message_id, "rejected", code="conflict", reason=reason), None))
                    continue
                outcomes.append(self._reject(batch, conflict, item, None, Rejection("conflict", reason),
                                             submitted_by, channel))
                continue
            envelope: Envelope | None = None
            try:
                if item.problem is not None:
                    raise Rejection("invalid", item.problem)
                refuse_token(principal, item.body)
                envelope = parse_envelope(item.body, submitted_by=submitted_by)
                handle(envelope, batch)
            except Rejection as rejection:
                batch.abandon_message()
                outcomes.append(self._reject(batch, receipt, item, envelope, rejection, submitted_by, channel))
                continue
            except Exception as error:  # noqa: BLE001
                # A message the code cannot handle must not stall every message after it (a Kafka
                # partition would retry it forever): keep it, rejected, with what went wrong.
                batch.abandon_message()
                log.exception("message %s could not be processed", message_id)
                rejection = Rejection("invalid", f"{UNPROCESSABLE} ({type(error).__name__}: {str(error)[:200]})")
                outcomes.append(self._reject(batch, receipt, item, envelope, rejection, submitted_by, channel))
                continue
            batch.add(MessageReceipt.accept(
                receipt, message_id=envelope.audit.message_id, message_type=envelope.audit.message_type,
                body_hash=item.digest, subject=envelope.key, submitted_by=submitted_by, channel=channel,
            ))
            outcomes.append((Result(message_id, "accepted"), batch.end_message()))
        recordings = self._store(batch, tracking) if batch.events or tracking else []
        positions = [r.notification.id for r in recordings]
        return [
            Result(**{**result.__dict__, "position": positions[last] if last is not None and positions else None})
            for result, last in outcomes
        ]

    @staticmethod
    def _reject(batch: _Batch, receipt: UUID, item: Inbound, envelope: Envelope | None, rejection: Rejection,
                submitted_by: str, channel: str) -> tuple[Result, int | None]:
        raw_type = item.body.get("type") if isinstance(item.body, dict) else None
        batch.add(MessageReceipt.reject(
            receipt, message_id=item.message_id, message_type=raw_type if isinstance(raw_type, str) else None,
            body_hash=item.digest, subject=envelope.key if envelope else None, submitted_by=submitted_by,
            channel=channel, code=rejection.code, reason=rejection.reason, body=item.text,
            body_length=item.size if item.truncated else None, body_sha256=item.digest if item.truncated else None,
        ))
        return Result(item.message_id, "rejected", code=rejection.code, reason=rejection.reason), batch.end_message()

    def _store(self, batch: _Batch, tracking: Tracking | None) -> list[Any]:
        # The events are already collected in message order: record them as they are, with the
        # position of what caused them (a Kafka offset), in one transaction in which the recorder
        # also checks that nothing this batch read has changed (see infra/recorder.py).
        processing = ProcessingEvent[UUID](tracking=tracking)
        processing.events = list(batch.events)
        processing.saved_kwargs["read_versions"] = batch.read_versions
        return self._record(processing)

    # --- queries ---------------------------------------------------------------------------

    def project(self, code: str, as_of: date | None = None) -> Project | None:
        if as_of is None:
            try:
                return self.repository.get(project_id(code))
            except AggregateNotFoundError:
                return None
        return project_as_of(self.events.get(project_id(code)), as_of)

    def history(self, code: str) -> list[StoredItem]:
        """Every event of a project in store order, with what supervision was told of it."""
        stored = [*events_with_positions(self.recorder, project_id(code)),
                  *events_with_positions(self.recorder, alerts_id(code))]
        return [self.stored_item(s, position) for position, s in sorted(stored, key=lambda p: p[0])]

    def rejections(self, after: int = 0, limit: int = 100, *, sent_by: Principal | None = None) -> Page:
        """Rejected messages after a position, in the order received; with `sent_by`, only those that
        principal sent (over HTTP with its token, or over Kafka as its department). A filtered page
        reads at most `REJECTIONS_SCANNED` rejections: `next_after` says where to go on."""
        found: list[StoredItem] = []
        scanned, position = 0, after
        while len(found) < limit and scanned < REJECTIONS_SCANNED:
            want = limit if sent_by is None else 1000
            notifications = self.recorder.select_notifications(
                start=position, limit=want, topics=[REJECTED_TOPIC], inclusive_of_start=False)
            for n in notifications:
                position = n.id
                item = self.stored_item(n)
                if sent_by is None or _sent_by(item.event, sent_by):
                    found.append(item)
                    if len(found) == limit:
                        break
            scanned += len(notifications)
            if len(notifications) < want:
                break
        return Page(found, position)

    def feed(self, after: int = 0, limit: int = 100) -> Page:
        notifications = self.recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False)
        return Page([self.stored_item(n) for n in notifications], notifications[-1].id if notifications else after)

    def head(self) -> int:
        return self.recorder.max_notification_id() or 0

    def tracked_positions(self) -> dict[str, int]:
        """Every position recorded with the events (Kafka partitions, the relay), by name."""
        return tracked_positions(self.recorder)

    def recorded_after(self, position: int) -> datetime | None:
        """When the first event after `position` was recorded (None: nothing after it)."""
        following = self.recorder.select_notifications(start=position, limit=1, inclusive_of_start=False)
        return self.mapper.to_domain_event(following[0]).timestamp if following else None

    def stored_item(self, stored: StoredEvent, position: int | None = None) -> StoredItem:
        """The stored event decoded for showing; `position` defaults to the notification's id."""
        position = stored.id if position is None else position  # type: ignore[attr-defined]
        try:
            event = self.mapper.to_domain_event(stored)
        except Exception as error:  # noqa: BLE001 - shown with its raw data, never fails the caller
            return StoredItem(position, None, stored.topic, stored.state, f"{type(error).__name__}: {error}")
        return StoredItem(position, event, stored.topic, stored.state)
