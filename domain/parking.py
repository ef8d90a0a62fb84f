"""Parked messages (暂存消息): from Kafka, waiting for a prerequisite that has not arrived yet.

Kafka keeps order only within a partition, so a grant can arrive before the registration of its
project, or an advance before its reduction. Such a message (`unknown_project`,
`unknown_reference`) is parked instead of rejected, tried again after each later batch that
stores something, and rejected for good only once its window has passed.

Its message_id is taken when it is parked: the first body decides the id, whether it waits or
not, so another body under the same id is a `conflict` while it waits (as it would be after a
direct load). It is judged again only once what it waits for is there; if that never comes, it is
rejected for good with the code it was parked for, not with whatever later state says of it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.envelope import Envelope
from domain.handlers import UnitOfWork, project_of, reduction_of
from domain.project import NAMESPACE
from domain.rejections import Rejection

#: Rejections that may only mean "not yet" for a message from Kafka.
PARKABLE: Final = frozenset({"unknown_project", "unknown_reference"})


def parked_id(sender: str, message_id: str | None, body_hash: str) -> UUID:
    """Where a parked message lives: like its receipt, by its sender and message_id."""
    return uuid5(NAMESPACE, f"parked:{sender}:{message_id}" if message_id else f"parked-body:{sender}:{body_hash}")


def still_missing(envelope: Envelope, uow: UnitOfWork) -> Rejection | None:
    """What a parked message still waits for (its project, the reduction it names), or None: the same
    rejection the rules give, checked before any other rule so that later state cannot hide it."""
    try:
        if envelope.project_code is not None:
            project_of(uow, envelope)
        reduction_id = getattr(envelope.command, "reduction_id", None)
        if isinstance(reduction_id, str):
            reduction_of(uow, reduction_id)
    except Rejection as missing:
        return missing
    return None


class ParkedMessage(Aggregate):
    """One message waiting, with what it was waiting for and where it came from."""

    @staticmethod
    def create_id(sender: str, message_id: str | None, body_hash: str, **_: Any) -> UUID:
        return parked_id(sender, message_id, body_hash)

    class Parked(Aggregate.Created):
        sender: str
        message_id: str | None
        message_type: str | None
        body_hash: str
        body: str
        kafka_key: str | None
        origin: str
        code: str
        reason: str
        detail_code: str | None
        detail_params: dict[str, Any] | None
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.update(detail_code=None, detail_params=None)  # parked before reasons had codes

    @event(Parked)
    def __init__(self, sender: str, message_id: str | None, message_type: str | None, body_hash: str, body: str,
                 kafka_key: str | None, origin: str, code: str, reason: str, detail_code: str | None = None,
                 detail_params: dict[str, Any] | None = None) -> None:
        self.sender = sender
        self.message_id = message_id
        self.message_type = message_type
        self.body_hash = body_hash
        self.body = body
        self.kafka_key = kafka_key
        self.origin = origin  # the partition and offset it was read from
        self.code = code
        self.reason = reason  # in English; what it says, by code (None when parked before texts had codes):
        self.detail_code = detail_code
        self.detail_params = detail_params
        self.released: str | None = None

    def expired(self, window: timedelta, now: datetime) -> bool:
        return self.created_on + window <= now

    @event("Released")
    def release(self, outcome: str) -> None:
        """It was decided: accepted, rejected, or rejected for good when its window passed."""
        self.released = outcome
