"""The message pipeline (消息处理): what becomes of each message of a batch, in order.

A body arrives (`service.inbound`); a resend of it is a duplicate, its message_id with another body a
conflict; otherwise the token must speak for the department the envelope claims
(`infra.tokens`), the envelope must parse (`domain.envelope`), and the rules must let it through
(`domain.handlers`). Every message ends accepted, duplicate or rejected with a code and a reason,
and leaves a receipt in the unit of work, saved in the same transaction as its effects. From
Kafka, a message refused only because its prerequisite has not arrived is parked instead
(`domain.parking`) and decided when it is tried again. The first body under a message_id decides
it, parked or not: a later different body is a `conflict`, kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Optional
from uuid import UUID

from domain.audit import PolicyWarning
from domain.envelope import Envelope, parse_envelope
from domain.handlers import handle
from domain.parking import PARKABLE, ParkedMessage, parked_id, still_missing
from domain.receipt import MessageReceipt, conflict_receipt_id, receipt_id
from domain.rejections import Rejection
from domain.texts import Detail
from infra.catalogue import said, warning_json
from infra.tokens import Principal
from service.authorisation import refuse_token, sender_of
from service.inbound import Inbound
from service.unit_of_work import BatchUnitOfWork

log = logging.getLogger("yaosu.pipeline")

#: The reason of a message kept as `invalid` because the code failed on it (a bug, not bad input):
#: how `invalid.unprocessable` begins in English.
UNPROCESSABLE = "the message could not be processed"


@dataclass(frozen=True)
class Refusal:
    """A rejection as it is kept and answered: its code, its reason in English, and what the reason says
    (`detail`: None only for one parked before reasons had codes)."""

    code: str
    reason: str
    detail: Detail | None

    @classmethod
    def of(cls, rejection: Rejection) -> Refusal:
        return cls(rejection.code, said(rejection.detail.code, rejection.detail.params), rejection.detail)

    @classmethod
    def kept(cls, code: str, reason: str, detail_code: str | None, detail_params: dict[str, Any] | None) -> Refusal:
        """As a receipt or a parked message keeps it."""
        return cls(code, reason, Detail(detail_code, detail_params or {}) if detail_code is not None else None)

    def fields(self) -> dict[str, Any]:
        """`code`, `reason`, `detail_code` and `detail_params`, as events keep them and results give them."""
        return {"code": self.code, "reason": self.reason, "detail_code": self.detail.code if self.detail else None,
                "detail_params": dict(self.detail.params) if self.detail else None}


@dataclass(frozen=True)
class Parking:
    """A batch from Kafka parks what waits for a prerequisite, for `window` from when it was parked."""

    window: timedelta
    now: datetime


@dataclass(frozen=True)
class Result:
    """What became of one message, in the contract's words."""

    message_id: str | None
    status: str  # accepted | duplicate | rejected | parked (from Kafka only)
    position: int | None = None
    code: str | None = None
    reason: str | None = None
    #: What `reason` says, by text code and parameters (contract v1.2), so each reader may say it its own way.
    detail_code: str | None = None
    detail_params: dict[str, Any] | None = None
    #: Policy priorities an accepted message did not follow (v1.1).
    warnings: tuple[PolicyWarning, ...] = ()

    def as_json(self) -> dict[str, Any]:
        shown = {k: v for k, v in self.__dict__.items() if (v is not None and k != "warnings") or k == "message_id"}
        if self.warnings:
            shown["warnings"] = [warning_json(w) for w in self.warnings]
        return shown


#: A message's result, and the index in the unit of work of its last event (None: it stored none).
Outcome = tuple[Result, Optional[int]]


def decide(uow: BatchUnitOfWork, prepared: list[Inbound], principal: Principal, channel: str,
           parking: Parking | None = None) -> list[Outcome]:
    """Run each message through the pipeline into `uow`, in order; nothing is stored here."""
    senders = [sender_of(principal, item.body) for item in prepared]
    receipts = [receipt_id(sender, item.message_id, item.digest) for sender, item in zip(senders, prepared)]
    # What waits parked under these message ids is read with the batch (one query), whatever the
    # channel: a parked message has taken its id, and another body under it is a conflict. So are the
    # receipts, when they are looked up (an attempt after one that collided with a receipt stored):
    # one by one, they would cost a round trip per message.
    uow.prefetch((item.body for item in prepared),
                 [*(parked_id(sender, item.message_id, item.digest) for sender, item in zip(senders, prepared)),
                  *(receipts if uow.look_up_receipts else ())])
    submitted_by = f"{principal.role}:{principal.name}"
    return [_decide_one(uow, item, receipt, sender, principal, submitted_by, channel, parking)
            for receipt, sender, item in zip(receipts, senders, prepared)]


def _decide_one(uow: BatchUnitOfWork, item: Inbound, receipt: UUID, sender: str, principal: Principal,
                submitted_by: str, channel: str, parking: Parking | None) -> Outcome:
    waiting = uow.find_parked(parked_id(sender, item.message_id, item.digest))
    if waiting is not None and waiting.released:
        waiting = None
    mine = waiting if waiting is not None and waiting.body_hash == item.digest else None  # this very message waits
    earlier = uow.find_receipt(receipt)
    if earlier is not None:
        return _seen_before(uow, item, earlier, mine, sender, submitted_by, channel)
    if waiting is not None and mine is None:  # another body came first under this id and waits: it decides the id
        uow.abandon_message()
        return _conflict(uow, item, sender, submitted_by, channel)
    envelope: Envelope | None = None
    try:
        if item.refusal is not None:
            raise Rejection(item.refusal.code, **item.refusal.params)
        refuse_token(principal, item.body)
        envelope = parse_envelope(item.body, submitted_by=submitted_by)
        if mine is not None and parking is not None and (missing := still_missing(envelope, uow)) is not None:
            raise missing  # judged only once what it waits for is there
        warnings = handle(envelope, uow)
    except Rejection as rejection:
        uow.abandon_message()
        if parking is not None and rejection.code in PARKABLE:
            if mine is None:
                return _park(uow, receipt, sender, item, Refusal.of(rejection), submitted_by, channel)
            if not mine.expired(parking.window, parking.now):
                return Result(item.message_id, "parked", **Refusal.of(rejection).fields()), None
            # Its window has passed: rejected for what it waited for, not for what came after it.
            _release(uow, mine, "expired")
            waited_for = Refusal.kept(mine.code, mine.reason, mine.detail_code, mine.detail_params)
            return _reject(uow, receipt, item, envelope, waited_for, submitted_by, channel)
        if mine is not None:
            _release(uow, mine, "rejected")
        return _reject(uow, receipt, item, envelope, Refusal.of(rejection), submitted_by, channel)
    except Exception as error:  # noqa: BLE001
        # A message the code cannot handle must not stall every message after it (a Kafka
        # partition would retry it forever): keep it, rejected, with what went wrong.
        uow.abandon_message()
        log.exception("message %s could not be processed", item.message_id)
        rejection = Rejection("invalid.unprocessable", error=type(error).__name__, message=str(error)[:200])
        if mine is not None:
            _release(uow, mine, "rejected")
        return _reject(uow, receipt, item, envelope, Refusal.of(rejection), submitted_by, channel)
    if mine is not None:
        _release(uow, mine, "accepted")
    uow.add(MessageReceipt.accept(
        receipt, message_id=envelope.audit.message_id, message_type=envelope.audit.message_type,
        body_hash=item.digest, subject=envelope.audit.subject, submitted_by=submitted_by, channel=channel,
    ))
    return Result(item.message_id, "accepted", warnings=warnings), uow.end_message()


def _seen_before(uow: BatchUnitOfWork, item: Inbound, earlier: MessageReceipt, mine: ParkedMessage | None,
                 sender: str, submitted_by: str, channel: str) -> Outcome:
    """A message whose id was decided before: the same body is a duplicate, another a conflict."""
    uow.abandon_message()  # a message seen before changes nothing
    if earlier.body_hash == item.digest:  # the original outcome, once more
        if mine is not None:  # decided meanwhile by another way in: it waits no more
            _release(uow, mine, "duplicate")
        original = (Refusal.kept(earlier.code, earlier.reason, earlier.detail_code, earlier.detail_params).fields()
                    if earlier.code is not None else {})
        return (Result(item.message_id, "duplicate", **original),
                uow.end_message() if mine is not None else None)
    if mine is not None:  # its id was taken by another body before it was parked (a store of an older version)
        _release(uow, mine, "rejected")
    return _conflict(uow, item, sender, submitted_by, channel, released=mine is not None)


def _conflict(uow: BatchUnitOfWork, item: Inbound, sender: str, submitted_by: str, channel: str,
              released: bool = False) -> Outcome:
    """A body under a message_id that another body took: rejected `conflict`, kept once per body."""
    refusal = Refusal.of(Rejection("conflict.message_id", message_id=item.message_id))
    conflict = conflict_receipt_id(sender, item.message_id or "", item.digest)
    if uow.find_receipt(conflict) is not None:  # this very conflicting body was kept already
        result = Result(item.message_id, "rejected", **refusal.fields())
        if released:
            return result, uow.end_message()
        uow.abandon_message()
        return result, None
    return _reject(uow, conflict, item, None, refusal, submitted_by, channel)


def _reject(uow: BatchUnitOfWork, receipt: UUID, item: Inbound, envelope: Envelope | None, refusal: Refusal,
            submitted_by: str, channel: str) -> Outcome:
    raw_type = item.body.get("type") if isinstance(item.body, dict) else None
    uow.add(MessageReceipt.reject(
        receipt, message_id=item.message_id, message_type=raw_type if isinstance(raw_type, str) else None,
        body_hash=item.digest, subject=envelope.audit.subject if envelope else None, submitted_by=submitted_by,
        channel=channel, body=item.text, body_length=item.size if item.truncated else None,
        body_sha256=item.digest if item.truncated else None, kafka_key=item.key, **refusal.fields(),
    ))
    return Result(item.message_id, "rejected", **refusal.fields()), uow.end_message()


def _park(uow: BatchUnitOfWork, receipt: UUID, sender: str, item: Inbound, refusal: Refusal, submitted_by: str,
          channel: str) -> Outcome:
    # Parking writes no receipt, so nothing would collide with an earlier body under this id: look.
    earlier = uow.find_receipt(receipt, look_up=True)
    if earlier is not None:
        return _seen_before(uow, item, earlier, None, sender, submitted_by, channel)
    raw_type = item.body.get("type") if isinstance(item.body, dict) else None
    uow.add(ParkedMessage(
        sender=sender, message_id=item.message_id, message_type=raw_type if isinstance(raw_type, str) else None,
        body_hash=item.digest, body=item.text, kafka_key=item.key, origin=str(item.origin or ""), **refusal.fields()))
    return Result(item.message_id, "parked", **refusal.fields()), uow.end_message()


def _release(uow: BatchUnitOfWork, waiting: ParkedMessage, outcome: str) -> None:
    uow.add(waiting)  # among this message's changes, whatever was abandoned before
    waiting.release(outcome)

