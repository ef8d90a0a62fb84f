"""The audit trail (审计): a project's state on any date, its history, the search over every event,
the global feed, rejections."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api import exports, schemas
from api.auth import Caller, Config, Store
from api.errors import ProblemError, problems
from api.json import JSON
from api.listings import Filters
from api.params import After, AsOf, Format, Lang, Limit, ProjectCodePath
from api.reading import View, answered
from api.render import project_json
from infra.presenter import event_json, rejection_json
from projections import audit
from service.authorisation import may_read_body

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


@router.get("/v1/audit", response_model=schemas.AuditResponse,
            responses={**problems(400, 401, 503), **exports.DOWNLOADS})
@answered
def search_audit(request: Request, _: Caller, view: View(audit.AuditTrail), asked: Filters(audit.AUDIT),
                 settings: Config, format: Format = "json", lang: Lang = "zh") -> Response:
    """Every domain event that matches all the filters given, in store order: who sent it (`department`,
    `actor`, `submitted_by`), what (`type`, `project`, `district`, `message_id`), when it happened
    (`from`/`to`) and was recorded (`recorded_from`/`recorded_to`), and how late it was recorded.
    `next_after` continues the list."""
    found = audit.searched(view.of(audit.AuditTrail), asked, asked["after"], asked["limit"])
    return exports.download(audit.AUDIT, audit.AUDIT.body(found, asked, asked["after"]), format, lang, asked=asked,
                            issuer=settings.issuer)


@router.get("/v1/rejections", response_model=schemas.RejectionsResponse,
            responses={**problems(400, 401), **exports.DOWNLOADS})
def get_rejections(who: Caller, ledger: Store, asked: Filters(exports.REJECTIONS), settings: Config,
                   format: Format = "json", lang: Lang = "zh") -> Response:
    """Rejected messages with code, reason and the original body, in the order received.

    A portal's token sees the rejections of the messages it sent; `next_after` continues the list."""
    page = ledger.rejections(asked["after"], asked["limit"], sent_by=who if who.role == "portal" else None)
    body = {"rejections": [rejection_json(i) for i in page.items], "next_after": page.next_after}
    return exports.download(exports.REJECTIONS, body, format, lang, asked=asked, issuer=settings.issuer)


@router.get("/v1/events", response_model=schemas.FeedResponse, responses=problems(400, 401))
def get_events(who: Caller, ledger: Store, after: After = 0, limit: Limit = 100) -> Response:
    """The global event feed in store order, from after a position.

    A portal's token sees the bodies of the messages it sent only: of another's rejected or parked
    message, the body and what quotes it are null and named in `withheld`."""
    page = ledger.feed(after, limit)
    return JSON({"events": [event_json(i, body_shown=may_read_body(who, i.event)) for i in page.items],
                 "next_after": page.next_after, "head": ledger.head()})
