"""The console's supervision forms (督办: 交办 → 反馈 → 销号): a supervisor acts in the browser.

Each form becomes one portal message, sent as the signed-in token's department through the same
pipeline as `POST /v1/messages` (`api.messages.through_pipeline`): the rules decide it, a refusal is
kept like any other, and the page shows it in the page's language with what was typed kept. A form
is accepted only from this console, with this session's token (`api.console.forms.posted_form`).

Who sees which form: `supervision_office` and `development_reform` assign and close, the case's
responsible department responds. The pages only offer; the rules decide (a portal of another
department is refused `forbidden` by the pipeline, and that refusal is kept and shown too).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Mapping

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.console.casework import case_link, department_of
from api.console.forms import posted_form
from api.console.pages import page, signed_in
from api.messages import through_pipeline
from domain.casebook import case_number_id
from domain.reference import CITY_TZ
from infra.tokens import Principal
from projections.catalog import BY_NAME
from projections.read import ReadModelBehind, TooManyWaiting
from service.ledger import Ledger
from service.pipeline import Result

router = APIRouter(prefix="/console/supervision", include_in_schema=False)

#: What each form sends (every other field of a posted form is ignored).
ASSIGN_FIELDS = ("project_code", "rule", "grant_id", "responsible", "due_date", "demand", "case_id")
RESPOND_FIELDS = ("measures", "expected_by")
CLOSE_FIELDS = ("outcome", "note")
#: How long an accepted form waits for the read models to show what it did, and those it waits for: the
#: cases (the case page's, v1.2) and the alerts (each names its open case), those of them this store has.
SHOWN_WITHIN_SECONDS = 5.0
SHOWN_BY = tuple(BY_NAME[name] for name in ("supervision", "sedimentation") if name in BY_NAME)
#: Free text, typed in a <textarea>: a browser sends its line breaks as CR LF, and a message's free
#: text holds no control character but tab and newline (contract v1.2).
FREE_TEXT = frozenset({"demand", "measures", "note"})


# --- the messages the forms make ---------------------------------------------------------------


def city_now() -> datetime:
    return datetime.now(CITY_TZ).replace(microsecond=0)


def kept(form: Mapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
    """The fields a form sends, as typed (line breaks as a newline), to send and to show again."""
    return {name: plain(form.get(name, "")) if name in FREE_TEXT else form.get(name, "").strip() for name in names}


def plain(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def new_case_id(now: datetime) -> str:
    """A case number for an assignment that names none (督办编号): DB-<year>-<8 hex digits>. A taken
    number is refused by the rules (`invalid_state`), never overwritten."""
    return f"DB-{now.year}-{uuid.uuid4().hex[:8].upper()}"


def envelope(who: Principal, message_type: str, project_code: str, payload: dict[str, Any],
             now: datetime) -> dict[str, Any]:
    """A portal message from the console: its id made here, happening now (city time), from the token's
    department, by the token's name."""
    return {"message_id": f"console-{uuid.uuid4()}", "type": message_type, "occurred_at": now.isoformat(),
            "source": "console", "actor": {"department": department_of(who), "user": who.name},
            "project_code": project_code, "payload": payload}


def assign_message(who: Principal, fields: Mapping[str, str], now: datetime) -> dict[str, Any]:
    payload = {"case_id": fields["case_id"] or new_case_id(now), "rule": fields["rule"],
               "responsible": fields["responsible"], "due_date": fields["due_date"], "demand": fields["demand"]}
    if fields["grant_id"]:
        payload["grant_id"] = fields["grant_id"]
    return envelope(who, "supervision.assigned", fields["project_code"], payload, now)


def respond_message(who: Principal, case: Mapping[str, Any], fields: Mapping[str, str],
                    now: datetime) -> dict[str, Any]:
    return envelope(who, "supervision.responded", case["project_code"],
                    {"case_id": case["case_id"], "measures": fields["measures"], "expected_by": fields["expected_by"]},
                    now)


def close_message(who: Principal, case: Mapping[str, Any], fields: Mapping[str, str], now: datetime) -> dict[str, Any]:
    return envelope(who, "supervision.closed", case["project_code"],
                    {"case_id": case["case_id"], "outcome": fields["outcome"], "note": fields["note"]}, now)


def case_of(ledger: Ledger, case_id: str) -> dict[str, Any] | None:
    """A case as the ledger holds it now (in its project, found through its number), with its project's
    code; None if no case has this number."""
    number = ledger.get(case_number_id(case_id))
    project = ledger.project(number.project_code) if number is not None else None
    case = project.cases.get(case_id) if project is not None else None
    return {**case, "project_code": number.project_code} if case is not None else None


# --- answering ---------------------------------------------------------------------------------


def form_page(request: Request, form: str, values: Mapping[str, Any], *, case: Mapping[str, Any] | None = None,
              result: Result | None = None, no_department: bool = False) -> HTMLResponse:
    """A form alone on its page: as first shown, or again after the rules refused what it sent (the
    refusal said in the page's language, the fields as typed)."""
    status = 200
    if no_department:
        status = 403
    elif result is not None:
        status = 403 if result.code == "forbidden" else 422
    return page(request, "supervision_form_page.html", status_code=status, form=form, values=values, case=case,
                refusal=result.as_json() if result is not None else None, no_department=no_department)


async def decided(request: Request, result: Result, case_id: str, form: str, values: Mapping[str, Any],
                  case: Mapping[str, Any] | None = None) -> Response:
    """Accepted: on to the case's page (303, so a reload does not send the form again), once the read
    models show the message (or `SHOWN_WITHIN_SECONDS` have passed: the page then says the state it
    reflects); refused: the form again, saying why."""
    if result.status != "accepted":  # (a message id made here is never sent twice: never a duplicate)
        return form_page(request, form, values, case=case, result=result)
    reads = request.app.state.read_models
    if reads is not None and result.position is not None:
        try:  # on the event loop: a waiting form holds neither a worker thread nor a connection
            await reads.reached(SHOWN_BY, result.position, SHOWN_WITHIN_SECONDS, request.app.state.ledger.head)
        except (ReadModelBehind, TooManyWaiting):
            pass  # the case page shows what the read models reflect, and says so
    return RedirectResponse(case_link(case_id), status_code=303)


async def session_form(request: Request) -> tuple[Principal, dict[str, str]]:
    """Who is signed in (else: to the sign-in page) and the form they sent from this console."""
    who = await run_in_threadpool(signed_in, request)  # a read of the store: off the event loop
    return who, await posted_form(request, request.state.session.session_id)


async def found_case(request: Request, case_id: str) -> dict[str, Any] | None:
    return await run_in_threadpool(case_of, request.app.state.ledger, case_id)


# --- routes ------------------------------------------------------------------------------------
# Registered before the console's pages (api/app.py): `/assign` is not a case number.


@router.get("/assign")
def assign_page(request: Request) -> HTMLResponse:
    """The assign form, filled from the query (the alerts page links here from each alert)."""
    who = signed_in(request)
    values = {name: request.query_params.get(name, "") for name in ASSIGN_FIELDS}
    return form_page(request, "assign", values, no_department=department_of(who) is None)


@router.post("/assign")
async def assign(request: Request) -> Response:
    who, form = await session_form(request)
    values = kept(form, ASSIGN_FIELDS)
    if department_of(who) is None:
        return form_page(request, "assign", values, no_department=True)
    message = assign_message(who, values, city_now())
    (result,) = await through_pipeline(request.app.state.ledger, [message], who)
    return await decided(request, result, message["payload"]["case_id"], "assign", values)


@router.get("/{case_id}/respond")
async def respond_page(request: Request, case_id: str) -> HTMLResponse:
    await run_in_threadpool(signed_in, request)
    case = await found_case(request, case_id)
    if case is None:
        return page(request, "missing.html", status_code=404, what=case_id)
    return form_page(request, "respond", {name: "" for name in RESPOND_FIELDS}, case=case)


@router.post("/{case_id}/respond")
async def respond(request: Request, case_id: str) -> Response:
    who, form = await session_form(request)
    values = kept(form, RESPOND_FIELDS)
    case = await found_case(request, case_id)
    if case is None:
        return page(request, "missing.html", status_code=404, what=case_id)
    if department_of(who) is None:
        return form_page(request, "respond", values, case=case, no_department=True)
    (result,) = await through_pipeline(request.app.state.ledger, [respond_message(who, case, values, city_now())], who)
    return await decided(request, result, case_id, "respond", values, case)


@router.get("/{case_id}/close")
async def close_page(request: Request, case_id: str) -> HTMLResponse:
    await run_in_threadpool(signed_in, request)
    case = await found_case(request, case_id)
    if case is None:
        return page(request, "missing.html", status_code=404, what=case_id)
    return form_page(request, "close", {name: "" for name in CLOSE_FIELDS}, case=case)


@router.post("/{case_id}/close")
async def close(request: Request, case_id: str) -> Response:
    who, form = await session_form(request)
    values = kept(form, CLOSE_FIELDS)
    case = await found_case(request, case_id)
    if case is None:
        return page(request, "missing.html", status_code=404, what=case_id)
    if department_of(who) is None:
        return form_page(request, "close", values, case=case, no_department=True)
    (result,) = await through_pipeline(request.app.state.ledger, [close_message(who, case, values, city_now())], who)
    return await decided(request, result, case_id, "close", values, case)
