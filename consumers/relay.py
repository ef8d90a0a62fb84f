"""`yaosu relay`: every domain event to `yaosu.events.v1`, in store order (the outbox), and the audit
chain's daily checkpoints to `yaosu.audit.v1`.

Contract events only: projects, quota pools, reductions and alert changes, not the store's own
records (receipts, parked messages, the monitor's clock, an alert record's opening). Key: the
district of the event's aggregate, as on the inbound topic, named in the value as `district`
beside its subject (`project_code`, `reduction_id`, a pool's `year` and `factor`); header `position`. Messages rejected from Kafka also go to
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

from eventsourcing.utils import get_topic

from domain.alerts import SedimentationAlerts, SupervisionClock
from domain.allocation import Allocation
from domain.approval import LandApproval
from domain.checkpoint import CHECKPOINTED
from domain.parking import ParkedMessage
from domain.project import Project
from domain.quota import QuotaPool
from domain.receipt import REJECTED_TOPIC, MessageReceipt
from domain.reduction import EmissionReduction
from infra import kafka, metrics, presenter
from infra.resilience import keep_running
from infra.settings import Settings
from service.ledger import Ledger

log = logging.getLogger("yaosu.relay")
TRACKING = "relay:" + kafka.EVENTS


#: What `yaosu.events.v1` carries: the contract's events (projects, quota pools, reductions, alert
#: changes, and from v1.2 batch approvals of land and allocation decisions; a case number's register is
#: bookkeeping: a case's events are its project's). The rest is the store's own: receipts, parked messages, the monitor's clock, the opening
#: of a project's alert record, checkpoints (to `yaosu.audit.v1`), and whatever is added to it later.
CONTRACT = (*(f"{get_topic(cls)}." for cls in (Project, QuotaPool, EmissionReduction, LandApproval, Allocation)),
            get_topic(SedimentationAlerts.Changed))

#: The pipeline's own bookkeeping, not published either and in no audit trail (an alert record's
#: opening and checkpoints are not published, but are in the audit trail).
BOOKKEEPING = tuple(f"{get_topic(cls)}." for cls in (MessageReceipt, ParkedMessage, SupervisionClock))


def published(topic: str) -> bool:
    """Whether an event of this stored topic is published on `yaosu.events.v1`."""
    return topic.startswith(CONTRACT)


def rejected_value(event: Any) -> bytes:
    # `presenter.dumps`: a reason's parameters may hold amounts (decimals), written as exact JSON numbers.
    return presenter.dumps({"message": presenter.original_body(event.body), "code": event.code, "reason": event.reason,
                            "detail_code": event.detail_code, "detail_params": event.detail_params,
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
            metrics.RELAY_POSITION.labels(TRACKING).set(start)
            metrics.RELAY_BEHIND.labels(TRACKING).set(0)
            return 0
        futures = []
        for n in notifications:
            headers = [("position", str(n.id).encode())]
            if n.topic == REJECTED_TOPIC:
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
            elif published(n.topic):
                stored = self.ledger.stored_item(n)
                # Each record names what its key means (`district`) and its subject (v1.2), beside the
                # history item it always was.
                about = self.ledger.about(stored.event) if stored.event is not None else {}
                key = str(about["district"]).encode() if about else None
                futures.append(producer.send(kafka.topic(self.settings, kafka.EVENTS), key=key,
                                             value=presenter.dumps({**presenter.event_json(stored), **about}),
                                             headers=headers))
        producer.flush()
        sent: dict[str, int] = {}
        for future in futures:
            topic = future.get(timeout=30).topic  # raises if the broker refused any of them
            sent[topic] = sent.get(topic, 0) + 1
        self.ledger.record_position(TRACKING, notifications[-1].id)
        for topic, records in sent.items():
            metrics.RELAYED.labels(topic).inc(records)
        metrics.RELAY_POSITION.labels(TRACKING).set(notifications[-1].id)
        metrics.RELAY_BEHIND.labels(TRACKING).set(max(self.ledger.head() - notifications[-1].id, 0))
        log.info("relayed positions %d-%d", notifications[0].id, notifications[-1].id)
        return len(notifications)
