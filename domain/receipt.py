"""Message receipts (消息回执): the durable, idempotent record of every message received.

A receipt's id is derived from the message_id and it is saved in the same transaction as the
message's effects, so a redelivered message collides on the receipt's first version: the store
itself says "duplicate". A rejection is a receipt too, keeping the original body, its code and
its reason, so nothing sent is ever lost.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from domain.project import NAMESPACE


def receipt_id(sender: str, message_id: str | None, body_hash: str) -> UUID:
    """Where the receipt of a message lives: its sender's namespace and its message_id.

    Namespaced by sender so that one department cannot use up another's message ids. A body
    without a usable message_id is keyed by its content, so resending it is a duplicate.
    """
    return uuid5(NAMESPACE, f"receipt:{sender}:{message_id}" if message_id else f"receipt-body:{sender}:{body_hash}")


def conflict_receipt_id(sender: str, message_id: str, body_hash: str) -> UUID:
    return uuid5(NAMESPACE, f"conflict:{sender}:{message_id}:{body_hash}")


#: How a message arrived: a portal over HTTP or Kafka, or a bulk load from the command line.
CHANNELS = ("http", "kafka", "cli")


class MessageReceipt(Aggregate):
    """What became of one message: accepted, or rejected with a code and a reason (and what the reason
    says, as a text code and its parameters)."""

    class Accepted(Aggregate.Created):
        message_id: str
        message_type: str
        body_hash: str
        subject: str
        submitted_by: str
        channel: str

        def apply(self, aggregate: Any) -> None:
            aggregate.message_id = self.message_id
            aggregate.body_hash = self.body_hash
            aggregate.status = "accepted"
            aggregate.code = aggregate.reason = aggregate.detail_code = aggregate.detail_params = None

    class Rejected(Aggregate.Created):
        message_id: str | None
        message_type: str | None
        body_hash: str
        subject: str | None
        submitted_by: str
        channel: str
        code: str
        reason: str
        body: str
        #: Set when `body` keeps only the first KiBs of a message too large to keep whole.
        body_length: int | None = None
        body_sha256: str | None = None
        #: The message's Kafka key (base64), which its forwarded rejection keeps.
        kafka_key: str | None = None
        #: What `reason` says in English, as a text code and its parameters (`domain.texts.Detail`), so
        #: that each reader can say it in its own language. Kept before reasons had codes: None, by default.
        detail_code: str | None = None
        detail_params: dict[str, Any] | None = None
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.update(body_length=None, body_sha256=None, kafka_key=None)  # kept before these were

        def apply(self, aggregate: Any) -> None:
            aggregate.message_id = self.message_id
            aggregate.body_hash = self.body_hash
            aggregate.status = "rejected"
            aggregate.code = self.code
            aggregate.reason = self.reason
            aggregate.detail_code = self.detail_code
            aggregate.detail_params = self.detail_params

    @classmethod
    def accept(cls, receipt: UUID, **fields: Any) -> MessageReceipt:
        return cls._create(cls.Accepted, id=receipt, **fields)

    @classmethod
    def reject(cls, receipt: UUID, **fields: Any) -> MessageReceipt:
        return cls._create(cls.Rejected, id=receipt, **fields)


#: The stored topic of a rejection: what the rejections listing scans and the relay forwards from Kafka.
REJECTED_TOPIC = get_topic(MessageReceipt.Rejected)
