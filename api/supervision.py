"""Supervision cases (督办): the list, with its downloads, and one case with its messages in order."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal, Optional

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, create_model

from api import exports
from api.auth import Caller, Config
from api.errors import ProblemError, problems
from api.json import JSON
from api.listings import Filters, item_model, response_model
from api.params import AsOf, Format, Lang
from api.reading import View, answered
from infra.clock import city_today
from projections import supervision
from projections.listing import NO_CONTROLS

router = APIRouter(tags=["supervision"])

SupervisionCase = item_model(supervision.LISTING)
SupervisionResponse = response_model(supervision.LISTING, SupervisionCase)
CaseIdPath = Annotated[str, Path(min_length=1, max_length=200, pattern=NO_CONTROLS, description="the case's number")]


class CaseStep(BaseModel):
    """One step of a case (one of its messages): its kind, who sent it and when, and what it said."""

    kind: Literal[supervision.MESSAGE_KINDS] = Field(  # type: ignore[valid-type]
        description="assigned (交办), responded (反馈) or closed (销号)")
    day: date = Field(description="its business date (city time)")
    occurred_at: str = Field(description="its business time, as sent")
    department: str
    user: str
    message_id: str
    rule: Optional[str] = Field(None, description="assigned: the alert's rule")
    grant_id: Optional[str] = None
    responsible: Optional[str] = None
    due_date: Optional[date] = None
    demand: Optional[str] = None
    measures: Optional[str] = Field(None, description="responded: the measures taken")
    expected_by: Optional[date] = None
    outcome: Optional[str] = Field(None, description="closed: rectified, reclaimed or waived")
    note: Optional[str] = None


#: A case as it stood at the end of `as_of`, with its demand, its closing note and every message.
CaseResponse = create_model("CaseResponse", __base__=SupervisionCase, as_of=(date, ...), demand=(str, ...),
                            note=(Optional[str], None), messages=(list[CaseStep], ...))


@router.get("/v1/supervision", response_model=SupervisionResponse,
            responses={**problems(400, 401, 503), **exports.DOWNLOADS})
@answered
def get_cases(request: Request, _: Caller, view: View(supervision.Supervision), settings: Config,
              asked: Filters(supervision.LISTING), format: Format = "json", lang: Lang = "zh") -> Response:
    """Supervision cases (督办) assigned by `as_of` (default today, city time), as they stood at its end,
    filterable by status, district, responsible department, rule and day of assignment. A status is read
    on `as_of`: open = not closed and no response; responded = not closed, with a response; overdue = not
    closed, and past its due date with no response on or before it, or more than `YAOSU_CASE_CLOSE_DAYS`
    (30) days past its due date; closed = closed by then."""
    found = supervision.listed(view.of(supervision.Supervision), asked, settings.thresholds)
    return exports.download(supervision.LISTING, supervision.LISTING.body(found, asked), format, lang, asked=asked,
                            issuer=settings.issuer)


@router.get("/v1/supervision/{case_id}", response_model=CaseResponse, responses=problems(400, 401, 404, 503))
@answered
def get_case(request: Request, case_id: CaseIdPath, _: Caller, view: View(supervision.Supervision),
             settings: Config, as_of: AsOf = None) -> Response:
    """A supervision case as it stood at the end of `as_of` (default today), and every message of it in the
    order recorded: the assignment (交办), each response (反馈), the closing (销号)."""
    found = supervision.case_of(view.of(supervision.Supervision), case_id, as_of or city_today(), settings.thresholds)
    if found is None:
        raise ProblemError(404, "unknown_case", f"no supervision case {case_id} was assigned")
    return JSON(found)
