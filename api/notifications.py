"""Notifications (通知): what `yaosu notify` delivered, holds or gave up on, from its outbox in the store."""

from __future__ import annotations

import threading
from typing import Annotated, Any, Literal, Optional

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.auth import Caller
from api.errors import ProblemError, problems
from api.json import JSON
from api.params import After, Limit
from infra.settings import Settings
from projections import outbox
from projections.db import Db

router = APIRouter(tags=["notifications"])
State = Annotated[Optional[Literal[outbox.STATES]], Query(  # type: ignore[valid-type]
    description="pending (not yet delivered: waiting its turn, quiet hours or a retry), held (for the target's "
                "daily digest), digested (told in a digest), delivered or undeliverable")]
TargetName = Annotated[Optional[str], Query(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                                            description="a target's name in the targets file")]


class Notification(BaseModel):
    sequence: int = Field(description="the order recorded (each target is sent its deliveries in this order)")
    delivery_id: str = Field(description="sent as X-Yaosu-Delivery: the same on every resend")
    change_id: int = Field(description="the store position of the alert change or supervision event told")
    target: str
    kind: Literal["alert", "supervision", "digest"]
    change: str
    project_code: Optional[str] = None
    rule: Optional[str] = None
    level: Optional[str] = None
    district: Optional[str] = None
    department: Optional[str] = None
    title: str = Field(description="what it says, in one line (a digest: its day and how many changes it tells)")
    state: Literal[outbox.STATES]  # type: ignore[valid-type]
    attempts: int
    recorded_at: float = Field(description="epoch seconds")
    next_attempt_at: float = Field(description="epoch seconds: a pending one is not sent before")
    delivered_at: Optional[float] = None
    last_error: Optional[str] = Field(None, description="why the last attempt failed (an undeliverable one: why it "
                                                        "was given up)")


class NotificationsResponse(BaseModel):
    items: list[Notification]
    next_after: Optional[int] = Field(description="pass as `after` for the next page (null: this was the last)")
    counts: dict[str, int] = Field(description="deliveries in each state, of every target")


class Outbox:
    """A connection of the app's own to the outbox, opened when first asked (none on the in-memory store)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._db: Db | None = None
        self._lock = threading.Lock()

    def read(self, work: Any) -> Any:
        if self._settings.location.kind == "memory":
            return None
        with self._lock:
            if self._db is None:
                self._db = Db(self._settings)
            if not outbox.exists(self._db):
                return None  # `yaosu notify` has never run on this store
            return work(self._db)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def outbox_of(request: Request) -> Outbox:
    return request.app.state.outbox  # type: ignore[no-any-return]


@router.get("/v1/notifications", response_model=NotificationsResponse, responses=problems(400, 401, 403))
def get_notifications(request: Request, who: Caller, state: State = None, target: TargetName = None,
                      after: After = 0, limit: Limit = 100) -> Response:
    """Deliveries of `yaosu notify` (alert changes and supervision events to WeCom, DingTalk and webhooks),
    in the order recorded, by state and target; `counts` gives every state's total. For supervisors and
    administrators."""
    if who.role not in ("supervisor", "admin"):
        raise ProblemError(403, "forbidden", "notifications are read by supervisor and admin tokens")

    def read(db: Db) -> tuple[list[dict[str, Any]], dict[str, int]]:
        totals = dict.fromkeys(outbox.STATES, 0)
        for (_, s), n in outbox.counts(db).items():
            totals[s] = totals.get(s, 0) + n
        return outbox.listed(db, state, target, after, limit), totals

    found = outbox_of(request).read(read)
    items, totals = found if found is not None else ([], dict.fromkeys(outbox.STATES, 0))
    return JSON({"items": items, "next_after": items[-1]["sequence"] if len(items) == limit else None,
                 "counts": totals})


def health(request: Request, undeliverable: int = 50) -> tuple[list[tuple[str, dict[str, int]]], list[dict[str, Any]]] | None:
    """For the console's health page: each target's deliveries by state (the backlog is `pending`), and the
    latest undeliverable ones; None where `yaosu notify` has never run."""
    def read(db: Db) -> tuple[list[tuple[str, dict[str, int]]], list[dict[str, Any]]]:
        by_target: dict[str, dict[str, int]] = {}
        for (name, state), n in outbox.counts(db).items():
            by_target.setdefault(name, dict.fromkeys(outbox.STATES, 0))[state] = n
        return sorted(by_target.items()), outbox.listed(db, "undeliverable", limit=undeliverable, latest=True)

    return outbox_of(request).read(read)  # type: ignore[no-any-return]
