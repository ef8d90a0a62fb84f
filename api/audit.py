"""The audit trail (审计): a project's state on any date, its history, the global feed, rejections."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from api import exports, schemas
from api.auth import Caller, Store
from api.errors import ProblemError, problems
from api.json import JSON
from api.params import After, AsOf, Format, Lang, Limit, ProjectCodePath
from api.render import project_json
from infra.presenter import event_json, rejection_json

router = APIRouter(tags=["audit trail"])


@router.get("/v1/projects/{code}", response_model=schemas.ProjectState, responses=problems(400, 401, 404))
def get_project(code: ProjectCodePath, _: Caller, ledger: Store, as_of: AsOf = None) -> Response:
    """The project's current state, or its state on `as_of` (events that occurred by then)."""
    project = ledger.project(code, as_of)
    if project is None:
        when = f" on {as_of}" if as_of else ""
        raise ProblemError(404, "unknown_project", f"no project {code} was registered{when}")
    return JSON(project_json(project, as_of))


@router.get("/v1/projects/{code}/history", response_model=schemas.HistoryResponse, responses=problems(400, 401, 404))
def get_history(code: ProjectCodePath, _: Caller, ledger: Store) -> Response:
    """The audit trail: every event of the project in order, with business and record time."""
    items = ledger.history(code)
    if not items:
        raise ProblemError(404, "unknown_project", f"no project {code} is registered")
    return JSON({"code": code, "events": [event_json(i) for i in items]})


@router.get("/v1/rejections", response_model=schemas.RejectionsResponse,
            responses={**problems(400, 401), **exports.DOWNLOADS})
def get_rejections(who: Caller, ledger: Store, after: After = 0, limit: Limit = 100, format: Format = "json",
                   lang: Lang = "zh") -> Response:
    """Rejected messages with code, reason and the original body, in the order received.

    A portal's token sees the rejections of the messages it sent; `next_after` continues the list."""
    page = ledger.rejections(after, limit, sent_by=who if who.role == "portal" else None)
    body = {"rejections": [rejection_json(i) for i in page.items], "next_after": page.next_after}
    return exports.download(exports.REJECTIONS, body, format, lang)


@router.get("/v1/events", response_model=schemas.FeedResponse, responses=problems(400, 401))
def get_events(_: Caller, ledger: Store, after: After = 0, limit: Limit = 100) -> Response:
    """The global event feed in store order, from after a position."""
    page = ledger.feed(after, limit)
    return JSON({"events": [event_json(i) for i in page.items], "next_after": page.next_after, "head": ledger.head()})
