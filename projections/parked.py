"""Messages waiting for a prerequisite (暂存消息): what `GET /v1/parked` lists and `/metrics` counts."""

from __future__ import annotations

from typing import Any

import orjson

from domain.parking import ParkedMessage
from infra.kafka import KafkaOrigin
from infra.presenter import dumps, original_body
from projections.db import Db
from projections.model import Projection, Table

PARKED = Table("parked", {"parked_id": "TEXT", "position": "BIGINT", "message_id": "TEXT", "type": "TEXT",
                          "code": "TEXT", "reason": "TEXT", "detail_code": "TEXT", "detail_params": "TEXT",
                          "origin": "TEXT", "parked_at": "TEXT", "body": "TEXT"},
               key=("parked_id",), indexes=(("position",),))


class Parked(Projection):
    name = "parked"
    version = 2  # 2: what the reason says, by text code and parameters
    tables = (PARKED,)
    handlers = {ParkedMessage.Parked: "parked", ParkedMessage.Released: "released"}

    def parked(self, e: Any) -> None:
        self.rows["parked"].put({"parked_id": e.originator_id.hex, "position": self.position,
                                 "message_id": e.message_id, "type": e.message_type, "code": e.code,
                                 "reason": e.reason, "detail_code": e.detail_code,
                                 "detail_params": dumps(e.detail_params).decode() if e.detail_code else None,
                                 "origin": e.origin, "parked_at": e.timestamp.isoformat(), "body": e.body})

    def released(self, e: Any) -> None:
        self.rows["parked"].delete(e.originator_id.hex)


def waiting(db: Db, t: dict[str, str], after: int, limit: int) -> list[dict[str, Any]]:
    rows = [PARKED.decode(r) for r in db.query(
        f"SELECT {', '.join(PARKED.columns)} FROM {t['parked']} WHERE position > ? ORDER BY position LIMIT ?",
        [after, limit])]
    for row in rows:
        origin = KafkaOrigin.parse(row.pop("origin"))
        row.update(partition=origin.tracking if origin else None, offset=origin.offset if origin else None,
                   body=original_body(row["body"]),
                   detail_params=orjson.loads(row["detail_params"]) if row["detail_params"] is not None else None)
        del row["parked_id"]
    return rows


def count(db: Db, t: dict[str, str]) -> int:
    return int(db.query(f"SELECT COUNT(*) FROM {t['parked']}")[0][0])
