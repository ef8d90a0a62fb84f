"""The message pipeline (消息处理): what becomes of each message of a batch, in order.

A body arrives (`infra.inbound`); a resend of it is a duplicate, its message_id with another body a
conflict; otherwise the token must speak for the department the envelope claims
(`infra.tokens`), the envelope must parse (`domain.envelope`), and the rules must let it through
(`domain.handlers`). Every message ends accepted, duplicate or rejected with a code and a reason,
and leaves a receipt in the unit of work, saved in the same transaction as its effects. From
Kafka, a message refused only because its prerequisite has not arrived is parked instead
(`domain.parking`) and decided when it is tried again.
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
from domain.parking import PARKABLE, ParkedMessage, parked_id
from domain.receipt import MessageReceipt, conflict_receipt_id, receipt_id
from domain.rejections import Rejection
from infra.inbound import Inbound
from infra.tokens import Principal, refuse_token, sender_of
from infra.unit_of_work import BatchUnitOfWork

log = logging.getLogger("yaosu.pipeline")

#: The reason of a message kept as `invalid` because the code failed on it (a bug, not bad input).
UNPROCESSABLE = "the message could not be processed"


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
    #: Policy priorities an accepted message did not follow (v1.1).
    warnings: tuple[PolicyWarning, ...] = ()

    def as_json(self) -> dict[str, Any]:
        shown = {k: v for k, v in self.__dict__.items() if (v is not None and k != "warnings") or k == "message_id"}
        if self.warnings:
            shown["warnings"] = [{"code": w.code, "reason": w.reason} for w in self.warnings]
        return shown


#: A message's result, and the index in the unit of work of its last event (None: it stored none).
Outcome = tuple[Result, Optional[int]]


def decide(uow: BatchUnitOfWork, prepared: list[Inbound], principal: Principal, channel: str,
           parking: Parking | None = None) -> list[Outcome]:
    """Run each message through the pipeline into `uow`, in order; nothing is stored here."""
    uow.prefetch(item.body for item in prepared)
    submitted_by = f"{principal.role}:{principal.name}"
    outcomes: list[Outcome] = []
    for item in prepared:
        message_id = item.message_id
        sender = sender_of(principal, item.body)
        receipt = receipt_id(sender, message_id, item.digest)
        waiting = uow.find_parked(parked_id(sender, message_id, item.digest)) if parking else None
        if waiting is not None and waiting.released:
            waiting = None
        earlier = uow.find_receipt(receipt)
        if earlier is not None:
            uow.abandon_message()  # a message seen before changes nothing
            if earlier.body_hash == item.digest:  # the original outcome, once more
                if waiting is not None:  # decided meanwhile by another way in: it waits no more
                    _release(uow, waiting, "duplicate")
                outcomes.append((Result(message_id, "duplicate", code=earlier.code, reason=earlier.reason),
                                 uow.end_message() if waiting is not None else None))
                continue
            reason = f"message_id {message_id} was already used for a different body"
            conflict = conflict_receipt_id(sender, message_id or "", item.digest)
            if uow.find_receipt(conflict) is not None:
                uow.abandon_message()  # this very conflicting body was kept already
                outcomes.append((Result(message_id, "rejected", code="conflict", reason=reason), None))
                continue
            outcomes.append(_reject(uow, conflict, item, None, Rejection("conflict", reason), submitted_by, channel))
            continue
        envelope: Envelope | None = None
        try:
            if item.problem is not None:
                raise Rejection("invalid", item.problem)
            refuse_token(principal, item.body)
            envelope = parse_envelope(item.body, submitted_by=submitted_by)
            warnings = handle(envelope, uow)
        except Rejection as rejection:
            uow.abandon_message()
            if parking is not None and rejection.code in PARKABLE:
                if waiting is None:
                    outcomes.append(_park(uow, sender, item, rejection))
                    continue
                if not waiting.expired(parking.window, parking.now):
                    outcomes.append((Result(message_id, "parked", code=rejection.code, reason=rejection.reason), None))
                    continue
            if waiting is not None:
                _release(uow, waiting, "expired" if rejection.code in PARKABLE else "rejected")
            outcomes.append(_reject(uow, receipt, item, envelope, rejection, submitted_by, channel))
            continue
        except Exception as error:  # noqa: BLE001
            # A message the code cannot handle must not stall every message after it (a Kafka
            # partition would retry it forever): keep it, rejected, with what went wrong.
            uow.abandon_message()
            log.exception("message %s could not be processed", message_id)
            rejection = Rejection("invalid", f"{UNPROCESSABLE} ({type(error).__name__}: {str(error)[:200]})")
            if waiting is not None:
                _release(uow, waiting, "rejected")
            outcomes.append(_reject(uow, receipt, item, envelope, rejection, submitted_by, channel))
            continue
        if waiting is not None:
            _release(uow, waiting, "accepted")
        uow.add(MessageReceipt.accept(
            receipt, message_id=envelope.audit.message_id, message_type=envelope.audit.message_type,
            body_hash=item.digest, subject=envelope.audit.subject, submitted_by=submitted_by, channel=channel,
        ))
        outcomes.append((Result(message_id, "accepted", warnings=warnings), uow.end_message()))
    return outcomes


def _reject(uow: BatchUnitOfWork, receipt: UUID, item: Inbound, envelope: Envelope | None, rejection: Rejection,
            submitted_by: str, channel: str) -> Outcome:
    raw_type = item.body.get("type") if isinstance(item.body, dict) else None
    uow.add(MessageReceipt.reject(
        receipt, message_id=item.message_id, message_type=raw_type if isinstance(raw_type, str) else None,
        body_hash=item.digest, subject=envelope.audit.subject if envelope else None, submitted_by=submitted_by,
        channel=channel, code=rejection.code, reason=rejection.reason, body=item.text,
        body_length=item.size if item.truncated else None, body_sha256=item.digest if item.truncated else None,
        kafka_key=item.key,
    ))
    return Result(item.message_id, "rejected", code=rejection.code, reason=rejection.reason), uow.end_message()


def _park(uow: BatchUnitOfWork, sender: str, item: Inbound, rejection: Rejection) -> Outcome:
    raw_type = item.body.get("type") if isinstance(item.body, dict) else None
    uow.add(ParkedMessage(
        sender=sender, message_id=item.message_id, message_type=raw_type if isinstance(raw_type, str) else None,
        body_hash=item.digest, body=item.text, kafka_key=item.key, origin=item.origin or "", code=rejection.code,
        reason=rejection.reason))
    return Result(item.message_id, "parked", code=rejection.code, reason=rejection.reason), uow.end_message()


def _release(uow: BatchUnitOfWork, waiting: ParkedMessage, outcome: str) -> None:
    uow.add(waiting)  # among this message's changes, whatever was abandoned before
    waiting.release(outcome)

