"""`yaosu relay`: every domain event to `yaosu.events.v1`, in store order (the outbox), and the audit
chain's daily checkpoints to `yaosu.audit.v1`.

Domain events only: projects, quota pools, reductions and alert changes, not the pipeline's own
bookkeeping (receipts, parked messages, the monitor's clock). Key: the district of the event's
aggregate, as on the inbound topic; header `position`. Messages rejected from Kafka also go to
`yaosu.portal.v1.rejected` with their code and reason, under the key they came with: the event
store is the outbox, so a rejection is forwarded even if the portal consumer crashed right after
storing it.
The relay records its position in the store after the broker has acknowledged a batch: after a
crash it resends at most that batch (at-least-once; `position` lets consumers drop repeats).
"""

from __future__ import annotations

import base64
import logging
import threading
from typing import Any

import orjson
from eventsourcing.utils import get_topic

from domain.alerts import SupervisionClock
from domain.parking import ParkedMessage
from domain.receipt import MessageReceipt
from infra import kafka, presenter
from infra.ledger import Ledger
from infra.resilience import keep_running
from infra.settings import Settings
from projections.chain import CHECKPOINTED

log = logging.getLogger("yaosu.relay")
TRACKING = "relay:" + kafka.EVENTS


REJECTED = get_topic(MessageReceipt.Rejected)
#: Events of the pipeline's own aggregates: kept in the store, not published.
BOOKKEEPING = tuple(f"{get_topic(cls)}." for cls in (MessageReceipt, ParkedMessage, SupervisionClock))


def rejected_value(event: Any) -> bytes:
    return orjson.dumps({"message": presenter.original_body(event.body), "code": event.code, "reason": event.reason,
                         "message_id": event.message_id})


class Relay:
    def __init__(self, ledger: Ledger, settings: Settings, *, batch_size: int = 2000) -> None:
        self.ledger, self.settings, self.batch_size = ledger, settings, batch_size
        self.stopping = threading.Event()

    def stop(self) -> None:
        self.stopping.set()

    @property
    def position(self) -> int:
        return self.ledger.position_of(TRACKING) or 0

    def run(self, until_caught_up: bool = False) -> None:
        """Relay until stopped (or, with `until_caught_up`, until nothing is left to send)."""
        producer: list[Any] = []  # the current producer, made again after a failure

        def relay() -> None:
            if not producer:
                kafka.ensure_topics(self.settings, kafka.EVENTS, kafka.REJECTED, kafka.AUDIT)
                producer.append(kafka.producer(self.settings))
            if self.step(producer[0]) < self.batch_size:
                if until_caught_up:
                    self.stopping.set()
                else:
                    self.stopping.wait(0.2)

        def recover() -> None:
            if producer:
                producer.pop().close(timeout=1)

        keep_running(relay, self.stopping, log, recover)
        recover()

    def step(self, producer: Any) -> int:
        start = self.position
        notifications = self.ledger.notifications_after(start, self.batch_size)
        if not notifications:
            return 0
        futures = []
        for n in notifications:
            headers = [("position", str(n.id).encode())]
            if n.topic == REJECTED:
                event: Any = self.ledger.decode(n)
                if event.channel == "kafka":
                    key = base64.b64decode(event.kafka_key) if event.kafka_key else None
                    futures.append(producer.send(kafka.topic(self.settings, kafka.REJECTED), key=key,
                                                 value=rejected_value(event),
                                                 headers=headers + [("code", event.code.encode())]))
            elif n.topic == CHECKPOINTED:
                stored = self.ledger.stored_item(n)
                futures.append(producer.send(kafka.topic(self.settings, kafka.AUDIT), key=b"checkpoint",
                                             value=presenter.dumps(presenter.event_json(stored)), headers=headers))
            elif not n.topic.startswith(BOOKKEEPING):
                stored = self.ledger.stored_item(n)
                key = self.ledger.district_of(stored.event).encode() if stored.event is not None else None
                futures.append(producer.send(kafka.topic(self.settings, kafka.EVENTS), key=key,
                                             value=presenter.dumps(presenter.event_json(stored)), headers=headers))
        producer.flush()
        for future in futures:
            future.get(timeout=30)  # raises if the broker refused any of them
        self.ledger.record_position(TRACKING, notifications[-1].id)
        log.info("relayed positions %d-%d", notifications[0].id, notifications[-1].id)
        return len(notifications)
