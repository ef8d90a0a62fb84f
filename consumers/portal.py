"""`yaosu consume portal`: portal messages from Kafka through the one message pipeline.

Each partition's records of a poll go through `Ledger.submit` as one batch, and the batch's last
offset is recorded in the event store in the same transaction as its effects. On assignment the
consumer seeks to the offsets recorded there, not to Kafka's committed ones, so a crash or a
rebalance in the middle of a batch neither loses nor applies a message twice. (Offsets are also
committed to Kafka afterwards, only so that the usual tools show the group's lag.)
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking
from kafka import ConsumerRebalanceListener, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from infra import kafka
from infra.kafka import KafkaOrigin
from infra.resilience import keep_running
from infra.settings import Settings
from infra.tokens import Principal
from service.ledger import AlreadyTracked, Contended, Ledger
from service.pipeline import Parking

log = logging.getLogger("yaosu.consume.portal")
KAFKA_PRINCIPAL = Principal("kafka", "admin")
#: How often what waits is tried again while no message arrives (windows run out meanwhile).
RETRY_WHEN_IDLE_SECONDS = 1.0


def tracking_name(tp: TopicPartition) -> str:
    return kafka.tracking_name(tp.topic, tp.partition)


class PortalConsumer:
    def __init__(self, ledger: Ledger, settings: Settings, *, group: str = "yaosu-portal",
                 batch_size: int = 5000) -> None:
        self.ledger, self.settings, self.group, self.batch_size = ledger, settings, group, batch_size
        self.stopping = threading.Event()
        self.processed = 0
        # Parked messages (by id, with where each was read), followed through the store from `_followed`.
        self._waiting: dict[UUID, KafkaOrigin | None] = {}
        self._followed = 0
        self._owned: set[str] = set()
        self._last_retry = 0.0

    def stop(self) -> None:
        self.stopping.set()

    def _seek_to_recorded(self, client: Any, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            recorded = self.ledger.position_of(tracking_name(tp))
            if recorded is None:
                client.seek_to_beginning(tp)
            else:
                client.seek(tp, recorded + 1)
            log.info("partition %s:%d from offset %s", tp.topic, tp.partition,
                     "the beginning" if recorded is None else recorded + 1)

    def run(self) -> None:
        keep_running(self._consume, self.stopping, log)

    def _consume(self) -> None:
        kafka.ensure_topics(self.settings, kafka.PORTAL, kafka.REJECTED)
        client = kafka.consumer(self.settings, self.group, max_poll_records=self.batch_size)
        outer = self

        class Rebalance(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked: Any) -> None:
                log.info("partitions revoked: %s", sorted(tp.partition for tp in revoked))
                outer._owned -= {tracking_name(tp) for tp in revoked}

            def on_partitions_assigned(self, assigned: Any) -> None:
                outer._seek_to_recorded(client, list(assigned))
                outer._owned |= {tracking_name(tp) for tp in assigned}

        client.subscribe([kafka.topic(self.settings, kafka.PORTAL)], listener=Rebalance())
        try:
            while not self.stopping.is_set():
                polled = client.poll(timeout_ms=500, max_records=self.batch_size)
                for tp, records in polled.items():
                    self._process(client, tp, records)
                if not polled and time.monotonic() - self._last_retry > RETRY_WHEN_IDLE_SECONDS:
                    self.retry_waiting()  # windows run out while nothing arrives too
        finally:
            client.close(autocommit=False)

    def _process(self, client: Any, tp: TopicPartition, records: list[Any]) -> None:
        started = time.perf_counter()
        bodies = [r.value or b"" for r in records]  # bytes: the pipeline parses, or keeps what is not JSON
        last = records[-1].offset
        try:
            results = self.ledger.submit(
                bodies, principal=KAFKA_PRINCIPAL, channel="kafka", tracking=Tracking(tracking_name(tp), last),
                keys=[r.key for r in records], origins=[KafkaOrigin(tracking_name(tp), r.offset) for r in records],
                parking=self.parking())
        except AlreadyTracked as already:
            log.info("partition %d: offsets to %d were processed elsewhere; resuming after them",
                     tp.partition, already.stored)
            client.seek(tp, already.stored + 1)
            return
        except Contended as contended:  # nothing of it stored: read it again at the next poll
            log.warning("partition %d offsets %d-%d: %s", tp.partition, records[0].offset, last, contended)
            client.seek(tp, records[0].offset)
            return
        self.processed += len(records)
        counts: dict[str, int] = {}
        for r in results:
            counts[r.status] = counts.get(r.status, 0) + 1
        log.info("partition %d offsets %d-%d: %s in %.0f ms", tp.partition, records[0].offset, last,
                 counts, 1000 * (time.perf_counter() - started))
        try:
            client.commit({tp: OffsetAndMetadata(last + 1, "", -1)})
        except KafkaError as error:  # informational only: the store holds the true position
            log.debug("offset commit to Kafka failed: %s", error)
        if any(r.position is not None for r in results):  # something was stored: what waited may pass now
            self.retry_waiting()

    def parking(self) -> Parking:
        return Parking(window=self.settings.park_window, now=datetime.now(timezone.utc))

    def retry_waiting(self) -> int:
        """Try again what waits from the partitions this consumer owns; returns how many are left."""
        self._last_retry = time.monotonic()
        self._waiting, self._followed = self.ledger.waiting(self._followed, self._waiting)
        mine = [i for i, origin in self._waiting.items() if origin and origin.tracking in self._owned]
        if not mine:
            return 0
        try:
            results = self.ledger.retry_parked(mine, principal=KAFKA_PRINCIPAL, parking=self.parking())
        except Contended as contended:  # they wait on, and are tried again after the next batch
            log.warning("parked messages: %s", contended)
            return len(mine)
        decided = [r for r in results if r.status != "parked"]
        if decided:
            log.info("parked messages: %d decided (%s), %d still waiting", len(decided),
                     ", ".join(sorted({r.status + (f" {r.code}" if r.code else "") for r in decided})),
                     len(results) - len(decided))
        return len(results) - len(decided)
