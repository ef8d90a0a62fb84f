"""Daily checkpoints of the audit chain (审计校验点): the chain's head at the close of each day.

Recorded once per day (the id is the day's), published to `yaosu.audit.v1`, so anyone holding a
published head can later check that the store still hashes to it (`yaosu audit verify`).
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event
from eventsourcing.utils import get_topic

from domain.project import NAMESPACE


def checkpoint_id(day: date) -> UUID:
    return uuid5(NAMESPACE, f"audit-checkpoint:{day.isoformat()}")


class AuditCheckpoint(Aggregate):
    """The head of the hash chain at the last position recorded on `day` (city time)."""

    @staticmethod
    def create_id(day: date, **_: Any) -> UUID:
        return checkpoint_id(day)

    @event("Recorded")
    def __init__(self, day: date, position: int, head: str) -> None:
        self.day, self.position, self.head = day, position, head


#: The stored topic of a checkpoint: what the chain read model follows and the relay sends to `yaosu.audit.v1`.
CHECKPOINTED = get_topic(AuditCheckpoint.Recorded)
