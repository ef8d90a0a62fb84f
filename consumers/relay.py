"""`yaosu relay`: every stored event to `yaosu.events.v1`, in store order (the outbox).

Key: the project code (or reduction id, or district); header `position`. Messages rejected from
Kafka also go to `yaosu.portal.v1.rejected` with their code and reason: the event store is the
outbox, so a rejection is forwarded even if the portal consumer crashed right after storing it.
The relay records its position in the store after the broker has acknowledged a batch: after a
crash it resends at most that batch (at-least-once; `position` lets consumers drop repeats).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import orjson

from domain.receipt import MessageReceipt
from infra import kafka, presenter
from infra.ledger import Ledger
from infra.resilience import keep_running
from infra.settings import Settings

log = logging.getLogger("yaosu.relay")
TRACKING = "relay:" + kafka.EVENTS


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
                kafka.ensure_topics(self.settings, kafka.EVENTS, kafka.REJECTED)
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
            stored = self.ledger.stored_item(n)
            event = stored.event
            item = presenter.event_json(stored)
            key = (item["subject"] or item["message_id"] or "").encode() or None
            headers = [("position", str(n.id).encode())]
            futures.append(producer.send(kafka.topic(self.settings, kafka.EVENTS), key=key, value=presenter.dumps(item),
                                         headers=headers))
            if isinstance(event, MessageReceipt.Rejected) and event.channel == "kafka":
                subject = (event.subject or "").encode() or None
                futures.append(producer.send(kafka.topic(self.settings, kafka.REJECTED), key=subject, value=rejected_value(event),
                                             headers=headers + [("code", event.code.encode())]))
        producer.flush()
        for future in futures:
            future.get(timeout=30)  # raises if the broker refused any of them
        self.ledger.record_position(TRACKING, notifications[-1].id)
        log.info("relayed positions %d-%d", notifications[0].id, notifications[-1].id)
        return len(notifications)
