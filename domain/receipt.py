"""Message receipts (消息回执): the durable, idempotent record of every message received.

A receipt's id is derived from the message_id and it is saved in the same transaction as the
message's effects, so a redelivered message collides on the receipt's first version: the store
itself says "duplicate". A rejection is a receipt too, keeping the original body, its code and
its reason, so nothing sent is ever lost.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.project import NAMESPACE


def receipt_id(message_id: str | None, body_hash: str) -> UUID:
    # A body without a usable message_id is keyed by its content, so resending it is a duplicate.
    return uuid5(NAMESPACE, f"receipt:{message_id}" if message_id else f"receipt-body:{body_hash}")


def conflict_receipt_id(message_id: str, body_hash: str) -> UUID:
    return uuid5(NAMESPACE, f"conflict:{message_id}:{body_hash}")


class MessageReceipt(Aggregate):
    """What became of one message: accepted, or rejected with a code and a reason."""

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

        def apply(self, aggregate: Any) -> None:
            aggregate.message_id = self.message_id
            aggregate.body_hash = self.body_hash
            aggregate.status = "rejected"

    @classmethod
    def accept(cls, receipt: UUID, **fields: Any) -> MessageReceipt:
        return cls._create(cls.Accepted, id=receipt, **fields)

    @classmethod
    def reject(cls, receipt: UUID, **fields: Any) -> MessageReceipt:
        return cls._create(cls.Rejected, id=receipt, **fields)
