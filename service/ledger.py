"""The `Ledger` application (台账): the event store's one public face.

Commands: `submit` runs a batch of raw messages through the pipeline (`service.pipeline`) and saves
every effect and every receipt of the batch in one transaction, with a position (a Kafka offset)
if one is given. Redelivery is detected by the store: a receipt's id is derived from its
message_id, so a second receipt for the same id collides on its first version. The first attempt
of a batch assumes every message is new (the common case: no look-up per message); on any
collision nothing is stored, and the batch runs again with each receipt looked up, after a
growing, jittered pause; after `SERIALISE_AFTER` collisions it waits for its turn among the
contenders (an advisory lock on PostgreSQL) and runs again without pause. Past its time budget
it gives up with `Contended`, nothing stored: a message is decided, or left to be sent again.

Aggregates are kept in memory between batches and changed in place. A batch is saved only if no
other process has moved an aggregate it read (checked by the recorder inside the insert
transaction: a rejection is a decision too, though it writes nothing to the project); if one has,
everything the attempt touched is dropped from memory and the batch runs again on fresh state, so
two processes racing for the last units of a quota cannot both win.

Queries: a project now or on a date, its history, the feed, rejections, and what the
projections, the relay and the consumers read of the log: nobody outside `infra/` touches the
library's recorder or mapper.
"""

from __future__ import annotations

import base64
import logging
import random
import threading
import time
from collections import OrderedDict
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from typing import Any, Callable, Iterable, Iterator, Sequence
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent, project_aggregate
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    StoredEvent,
    Tracking,
)
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from eventsourcing.utils import get_topic

from domain.alerts import alerts_id
from domain.parking import ParkedMessage
from domain.policy import PolicySettings
from domain.project import Project, project_as_of, project_id
from domain.receipt import REJECTED_TOPIC, MessageReceipt
from domain.reference import CITY_CODE, is_project_code
from domain.skips import EventSkip, operator_audit, skip_id
from domain.supervision import Thresholds
from infra import metrics
from infra.events_table import events_of, events_with_positions, stored_after, tracked_positions
from infra.kafka import KafkaOrigin
from infra.presenter import StoredItem
from infra.recorder import sqlite_writer
from infra.tokens import Principal
from infra.turns import lock_key
from service.authorisation import sent_by as is_sent_by
from service.inbound import Inbound, inbound
from service.pipeline import Parking, Result, decide
from service.unit_of_work import Advisor, BatchUnitOfWork, no_advice

log = logging.getLogger("yaosu.ledger")

#: Collisions after which a batch waits for its turn among contenders instead of racing on.
SERIALISE_AFTER = 3
MAX_BACKOFF_SECONDS = 0.5
#: How long a batch may take to get decided under contention (`YAOSU_SUBMIT_BUDGET_SECONDS`).
SUBMIT_BUDGET_SECONDS = 10.0
REJECTIONS_SCANNED = 10_000
PARKING_TOPICS = [get_topic(ParkedMessage.Parked), get_topic(ParkedMessage.Released)]


#: By kind of aggregate: the fields that name the subject of its events on Kafka, and their names there.
_SUBJECTS: dict[str, dict[str, str]] = {
    "Project": {"code": "project_code"}, "SedimentationAlerts": {"code": "project_code"},
    "EmissionReduction": {"reduction_id": "reduction_id"}, "QuotaPool": {"year": "year", "factor": "factor"},
    "LandApproval": {"approval_id": "approval_id"}, "Allocation": {"allocation_id": "allocation_id"},
    "CaseNumber": {"case_id": "case_id", "project_code": "project_code"}}


@dataclass(frozen=True)
class Page:
    """Events of the log in order, and the position to read after for the next page."""

    items: list[StoredItem]
    next_after: int


class AlreadyTracked(Exception):
    """Another process already recorded this position (e.g. a Kafka consumer before a rebalance)."""

    def __init__(self, name: str, stored: int) -> None:
        super().__init__(f"{name} is already at {stored}")
        self.stored = stored


class Contended(Exception):
    """Others kept changing what a batch read, past its budget: nothing of it is stored, and it may be
    sent again as it is (HTTP: 503 with Retry-After; Kafka: the batch is read again at the next poll)."""

    retry_after = 1

    def __init__(self, messages: int, collisions: int) -> None:
        super().__init__(f"a batch of {messages} message(s) collided {collisions} times with others deciding "
                         "on the same projects or pools; nothing of it was stored: send it again")


class Ledger(Application[UUID]):
    """The ledger of projects, quota pools, emission reductions and message receipts."""

    name = "yaosu"

    def construct_recorder(self) -> Any:
        # A process recorder: it can record a position (a Kafka offset) with the events.
        return self.factory.process_recorder()

    def __init__(self, env: Any = None, policy: PolicySettings = PolicySettings(),
                 thresholds: Thresholds = Thresholds(), advisor: Advisor = no_advice) -> None:
        super().__init__(env)
        # The deployment's settings of the rules and the alerts, and the read side's allocation advice
        # (v1.2), carried by each unit of work.
        self.policy = policy
        self.thresholds = thresholds
        self.advisor = advisor
        self._memory: OrderedDict[UUID, Aggregate] = OrderedDict()
        self._about: OrderedDict[UUID, dict[str, Any]] = OrderedDict()
        self._memory_size = int(self.env.get("LEDGER_CACHE_SIZE") or 20000)
        self.submit_budget = float(self.env.get("SUBMIT_BUDGET_SECONDS") or SUBMIT_BUDGET_SECONDS)
        # One batch at a time per process: aggregates in memory are changed in place.
        self._submitting = threading.Lock()
        self._commit_listeners: list[Callable[[], None]] = []

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Call `listener` after each commit made through this process (the embedded runner wakes on it)."""
        self._commit_listeners.append(listener)

    def _record(self, processing_event: ProcessingEvent[UUID]) -> Any:
        recordings = super()._record(processing_event)
        for listener in self._commit_listeners:
            listener()
        return recordings

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

    def submit(self, bodies: Sequence[Any], *, principal: Principal, channel: str, tracking: Tracking | None = None,
               keys: Sequence[bytes | None] | None = None, origins: Sequence[KafkaOrigin] | None = None,
               parking: Parking | None = None, recorded_at: Sequence[datetime] | None = None) -> list[Result]:
        """Process a batch atomically; one result per body, in order.

        With `tracking` (e.g. a Kafka partition and the batch's last offset), that position is
        recorded in the same transaction as the batch's effects. From Kafka: each record's key and
        where it was read (`keys`, `origins`), and `parking` to park what waits for a prerequisite.
        `recorded_at`: when each message is recorded, for a loader replaying a past year (the demo);
        without it, now, as every portal's message is.
        """
        prepared = [inbound(body, key=keys[n] if keys else None, origin=origins[n] if origins else None)
                    for n, body in enumerate(bodies)]
        return self._submit(prepared, principal, channel, tracking, parking, recorded_at=recorded_at)

    def retry_parked(self, ids: Iterable[UUID], *, principal: Principal, parking: Parking) -> list[Result]:
        """Try parked messages again, in the order given: each is decided, or waits on (or, its window
        past, is rejected for good). One transaction, like any batch."""
        ids = list(ids)
        waiting = [p for p in self.load_many(ids).values() if p is not None and p.released is None]
        prepared = [inbound(p.body.encode(), key=base64.b64decode(p.kafka_key) if p.kafka_key else None,
                            origin=KafkaOrigin.parse(p.origin))
                    for p in sorted(waiting, key=lambda p: ids.index(p.id))]
        return self._submit(prepared, principal, "kafka", None, parking, preload=[p.id for p in waiting])

    def _submit(self, prepared: list[Inbound], principal: Principal, channel: str, tracking: Tracking | None,
                parking: Parking | None, preload: Sequence[UUID] = (),
                recorded_at: Sequence[datetime] | None = None) -> list[Result]:
        started = time.perf_counter()
        results = self._attempts(prepared, principal, channel, tracking, parking, preload, recorded_at)
        # A parked message counts once when parked and once when decided, not at each try in between.
        metrics.count_batch(channel, ((r.status, r.code) for r in results if r.status != "parked" or r.position),
                            time.perf_counter() - started)
        return results

    def _attempts(self, prepared: list[Inbound], principal: Principal, channel: str, tracking: Tracking | None,
                  parking: Parking | None, preload: Sequence[UUID],
                  recorded_at: Sequence[datetime] | None) -> list[Result]:
        """Decide and store the batch, again on fresh state after each collision (or lost connection),
        waiting a little longer each time; after a few collisions, in turn with other contenders.
        Within the budget it is decided; beyond it, `Contended` (or the lost connection's error)
        and nothing stored."""
        with self._submitting, ExitStack() as turn:
            deadline = time.monotonic() + self.submit_budget
            collisions = 0
            while True:
                if collisions and tracking is not None:
                    stored = self.position_of(tracking.application_name)
                    if stored is not None and stored >= tracking.notification_id:
                        raise AlreadyTracked(tracking.application_name, stored)
                try:
                    return self._attempt(prepared, principal, channel, tracking, parking, preload, recorded_at,
                                         look_up_receipts=collisions > 0)
                except (IntegrityError, OperationalError, InterfaceError) as collision:
                    # A collision (or a connection lost to a restart): nothing was stored; run the
                    # batch again on fresh state and fresh connections.
                    collisions += 1
                    left = deadline - time.monotonic()
                    if left <= 0:
                        if isinstance(collision, IntegrityError):
                            raise Contended(len(prepared), collisions) from collision
                        raise
                    log.debug("batch of %d: %s; retrying on fresh state", len(prepared), collision)
                    if isinstance(collision, IntegrityError) and collisions >= SERIALISE_AFTER:
                        if collisions == SERIALISE_AFTER:
                            turn.enter_context(self._turn(deadline, len(prepared), collisions))
                        continue  # in turn, only a batch that never collided can still get in between
                    time.sleep(random.uniform(0, min(left, MAX_BACKOFF_SECONDS, 0.005 * 2**collisions)))

    def _attempt(self, prepared: list[Inbound], principal: Principal, channel: str, tracking: Tracking | None,
                 parking: Parking | None, preload: Sequence[UUID], recorded_at: Sequence[datetime] | None, *,
                 look_up_receipts: bool) -> list[Result]:
        batch = BatchUnitOfWork(self.load_many, look_up_receipts=look_up_receipts, policy=self.policy,
                                thresholds=self.thresholds, advisor=self.advisor)
        try:
            batch.load(preload)
            outcomes = decide(batch, prepared, principal, channel, parking)
            if recorded_at is not None:
                batch.events[:] = stamped(batch.events, [last for _, last in outcomes], recorded_at)
            recordings = self._store(batch, tracking) if batch.events or tracking else []
        except BaseException:
            self._forget(batch.loaded)  # changed in memory, not stored
            raise
        self._remember(batch.loaded.values())
        positions = [r.notification.id for r in recordings]
        return [Result(**{**result.__dict__, "position": positions[last] if last is not None and positions else None})
                for result, last in outcomes]

    @contextmanager
    def _turn(self, deadline: float, messages: int, collisions: int) -> Iterator[None]:
        """Contenders' turn, held across load, decide and store: on PostgreSQL an advisory lock that
        every process's contenders take; on SQLite this process's writer lock, which every writer
        of the file in this process takes to store."""
        datastore = getattr(self.recorder, "datastore", None)
        if isinstance(self.recorder, PostgresApplicationRecorder):
            key = lock_key(f"yaosu-submit:{datastore.schema}")
            with datastore.get_connection() as conn:
                while not conn.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()["pg_try_advisory_lock"]:
                    if time.monotonic() >= deadline:
                        raise Contended(messages, collisions)
                    time.sleep(random.uniform(0.002, 0.02))
                try:
                    yield
                finally:
                    with suppress(Exception):  # a connection lost has released it anyway
                        conn.execute("SELECT pg_advisory_unlock(%s)", [key])
        elif isinstance(self.recorder, SQLiteApplicationRecorder):
            writer = sqlite_writer(datastore.pool.db_name)
            if not writer.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise Contended(messages, collisions)
            try:
                yield
            finally:
                writer.release()
        else:
            yield  # in memory: one process, its batches one at a time already

    def waiting(self, after: int = 0, known: dict[UUID, KafkaOrigin | None] | None = None
                ) -> tuple[dict[UUID, KafkaOrigin | None], int]:
        """Parked messages not yet released (by id, in the order parked, with where each was read),
        from those `known` at position `after` and what was parked and released since; and the
        position read up to, to follow on from."""
        waiting = dict(known or {})
        position = after
        while batch := self.notifications_after(position, 5000, PARKING_TOPICS):
            for n in batch:
                event = self.decode(n)
                if isinstance(event, ParkedMessage.Parked):
                    waiting[event.originator_id] = KafkaOrigin.parse(event.origin)
                else:
                    waiting.pop(event.originator_id, None)
            position = batch[-1].id
        return waiting, position

    def _store(self, batch: BatchUnitOfWork, tracking: Tracking | None) -> list[Any]:
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
            return self.get(project_id(code))  # type: ignore[no-any-return]
        return project_as_of(self.events.get(project_id(code)), as_of)

    def history(self, code: str) -> list[StoredItem]:
        """Every event of a project in store order, with what supervision was told of it."""
        stored = events_with_positions(self.recorder, project_id(code), alerts_id(code))
        return [self.stored_item(s, position) for position, s in stored]

    def rejections(self, after: int = 0, limit: int = 100, *, sent_by: Principal | None = None) -> Page:
        """Rejected messages after a position, in the order received; with `sent_by`, only those that
        principal sent (over HTTP with its token, or over Kafka as its department). A filtered page
        reads at most `REJECTIONS_SCANNED` rejections: `next_after` says where to go on."""
        found: list[StoredItem] = []
        scanned, position = 0, after
        while len(found) < limit and scanned < REJECTIONS_SCANNED:
            want = limit if sent_by is None else 1000
            notifications = self.notifications_after(position, want, [REJECTED_TOPIC])
            for n in notifications:
                position = n.id
                item = self.stored_item(n)
                if sent_by is None or (item.event is not None and is_sent_by(item.event, sent_by)):
                    found.append(item)
                    if len(found) == limit:
                        break
            scanned += len(notifications)
            if len(notifications) < want:
                break
        return Page(found, position)

    def feed(self, after: int = 0, limit: int = 100) -> Page:
        notifications = self.notifications_after(after, limit)
        return Page([self.stored_item(n) for n in notifications], notifications[-1].id if notifications else after)

    def head(self) -> int:
        return self.recorder.max_notification_id() or 0

    # --- what projections, the relay and the consumers read -----------------------------------

    def notifications_after(self, position: int, limit: int, topics: Sequence[str] = ()) -> list[Notification]:
        """The log after `position`, in store order (of these event topics only, if given)."""
        if not topics:  # as plain rows: the library's dict rows cost a runner reading a million
            return [Notification(id=n, originator_id=i, originator_version=v, topic=t, state=s)
                    for n, i, v, t, s in stored_after(self.recorder, position, limit)]
        return list(self.recorder.select_notifications(start=position, limit=limit, topics=topics,
                                                       inclusive_of_start=False))

    def stored_after(self, position: int, limit: int) -> list[tuple[int, UUID, int, str, bytes]]:
        """The log after `position` exactly as stored: (position, aggregate id, version, topic, state)."""
        return stored_after(self.recorder, position, limit)

    def decode(self, notification: StoredEvent) -> Any:
        """The domain event a stored event stands for."""
        return self.mapper.to_domain_event(notification)

    def get(self, aggregate_id: UUID) -> Any:
        """An aggregate as the store has it, or None."""
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def district_of(self, event: Any) -> str:
        """The district of an event's aggregate (a project's, a pool's, a reduction's): what keys it on
        Kafka, so that all events of one aggregate keep their order."""
        return str(self.about(event)["district"])

    def about(self, event: Any) -> dict[str, Any]:
        """What an event's record on Kafka names: `district`, the district of its aggregate (its key),
        and its subject: `project_code` (a project's events and its alerts), `approval_id` (an approval's,
        v1.2), `reduction_id`, or a quota pool's `year` and `factor`. Read once per aggregate, from its first event when that says it all."""
        aggregate_id = event.originator_id
        names = self._about.get(aggregate_id)
        if names is None:
            kind = type(event).__qualname__.partition(".")[0]
            fields = _SUBJECTS.get(kind, {})
            source = event if all(hasattr(event, f) for f in ("district", *fields)) else self.get(aggregate_id)
            names = {"district": str(getattr(source, "district", None) or CITY_CODE),
                     **{shown: getattr(source, field) for field, shown in fields.items() if hasattr(source, field)}}
            if kind == "SedimentationAlerts" and not is_project_code(str(names.get("project_code"))):
                names["approval_id"] = names.pop("project_code")  # an approval's alerts (v1.2)
        self._about[aggregate_id] = names
        self._about.move_to_end(aggregate_id)
        if len(self._about) > self._memory_size:
            self._about.popitem(last=False)
        return names

    def skip_decision(self, read_model: str, position: int) -> EventSkip | None:
        """The operator's decision that `read_model` goes on without the event at `position`, if taken."""
        return self.get(skip_id(read_model, position))  # type: ignore[no-any-return]

    def record_skip(self, read_model: str, position: int, *, event_type: str, error: str, reason: str,
                    operator: str) -> int:
        """Record the decision to skip one event for one read model; returns its position in the store."""
        if self.skip_decision(read_model, position) is not None:
            raise ValueError(f"skipping position {position} for {read_model} was decided already")
        decision = EventSkip(read_model=read_model, position=position, event_type=event_type, error=error,
                             reason=reason, audit=operator_audit(read_model, position, operator,
                                                                 datetime.now(timezone.utc)))
        recordings = self.save(decision)
        return recordings[-1].notification.id

    def position_of(self, name: str) -> int | None:
        """The position recorded under `name` with the events (a Kafka partition, the relay)."""
        return self.recorder.max_tracking_id(name)

    def record_position(self, name: str, position: int) -> None:
        """Record a position on its own (the relay, after the broker acknowledged what it sent)."""
        self.recorder.insert_tracking(Tracking(name, position))

    @property
    def notify_channel(self) -> str | None:
        """The PostgreSQL channel the store notifies on each commit (None: no such channel)."""
        return getattr(self.recorder, "channel_name", None)

    def tracked_positions(self) -> dict[str, int]:
        """Every position recorded with the events (Kafka partitions, the relay), by name."""
        return tracked_positions(self.recorder)

    def recorded_after(self, position: int) -> datetime | None:
        """When the first event after `position` was recorded (None: nothing after it)."""
        following = self.notifications_after(position, 1)
        return self.decode(following[0]).timestamp if following else None

    def stored_item(self, stored: StoredEvent, position: int | None = None) -> StoredItem:
        """The stored event decoded for showing; `position` defaults to the notification's id."""
        position = stored.id if position is None else position  # type: ignore[attr-defined]
        try:
            event = self.mapper.to_domain_event(stored)
        except Exception as error:  # noqa: BLE001 - shown with its raw data, never fails the caller
            return StoredItem(position, None, stored.topic, stored.state, f"{type(error).__name__}: {error}")
        return StoredItem(position, event, stored.topic, stored.state)


def stamped(events: list[Any], lasts: Sequence[int | None], recorded_at: Sequence[datetime]) -> list[Any]:
    """The batch's events, each message's (up to the index of its last, `lasts`) stamped with the time it
    is recorded: a loader's past time in place of the moment this process made them."""
    out, first = list(events), 0
    for last, when in zip(lasts, recorded_at):
        if last is None:
            continue
        for k in range(first, last + 1):
            out[k] = replace(out[k], timestamp=when)
        first = last + 1
    return out
