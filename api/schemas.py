"""OpenAPI schemas of the bodies the API takes and gives.

The envelope schemas are generated from the domain's command dataclasses (choices become
enums), so the published contract and the parser cannot drift apart. Responses are described
by the pydantic models below; tests validate real responses against them.
"""

from __future__ import annotations

import dataclasses
import typing
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

from api import exports
from api.listings import item_model, response_model
from domain import reference
from domain.commands import COMMANDS, Command
from domain.envelope import MAX_ITEMS
from domain.policy import WARNING_CODES
from domain.project import STATUSES
from projections import audit, factor_ledger, libraries, sedimentation, warnings

Number = Union[int, float]


class Actor(BaseModel):
    department: str = Field(description="a department code, or district:<area code> for a district portal")
    user: str


def _payload_model(command: type[Command]) -> type[BaseModel]:
    model = _record_model(command, f"{command.__name__}Payload")
    model.__doc__ = f"Payload of `{command.TYPE}`."
    return model


def _record_model(record: type, name: str) -> type[BaseModel]:
    """The schema of a command's payload, or of an item of one of its lists (an allocation's shares)."""
    hints = typing.get_type_hints(record)
    fields: dict[str, Any] = {}
    for spec in dataclasses.fields(record):
        hint = hints[spec.name]
        optional = typing.get_origin(hint) is Union or isinstance(hint, type(int | None))
        base = next((a for a in typing.get_args(hint) if a is not type(None)), hint) if optional else hint
        constraints: dict[str, Any] = {}
        if "choices" in spec.metadata:
            base = Literal[tuple(spec.metadata["choices"])]  # type: ignore[misc]
        elif base is Decimal:
            base = Number
        elif typing.get_origin(base) is tuple:  # a list of objects, each checked like a payload
            item = typing.get_args(base)[0]
            base = list[_record_model(item, item.__name__)]  # type: ignore[misc]
            constraints.update(min_length=1, max_length=MAX_ITEMS)
        required = spec.default is dataclasses.MISSING and not optional
        default = ... if required else (None if spec.default is dataclasses.MISSING else spec.default)
        fields[spec.name] = (base if required else Optional[base], Field(default, **constraints))
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


def _envelope_model(command: type[Command]) -> type[BaseModel]:
    fields: dict[str, Any] = {
        "message_id": (str, Field(..., description="idempotency key")),
        "type": (Literal[command.TYPE], ...),  # type: ignore[valid-type]
        "occurred_at": (datetime, Field(..., description="business time, ISO 8601 with offset")),
        "source": (str, ...),
        "actor": (Actor, ...),
        "payload": (_payload_model(command), ...),
    }
    if command.NEEDS_PROJECT:
        fields["project_code"] = (str, Field(..., pattern=reference.PROJECT_CODE_PATTERN))
    name = "".join(part.title() for part in command.TYPE.replace(".", "_").split("_")) + "Message"
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


ENVELOPES = [_envelope_model(c) for c in COMMANDS.values()]
#: An envelope that the contract accepts (subject to its rules): one schema per message type.
ENVELOPE = TypeAdapter(typing.Annotated[Union[tuple(ENVELOPES)], Field(discriminator="type")])  # type: ignore[valid-type]
#: What `POST /v1/messages` takes: any object or array of up to 1,000. Each envelope is then judged
#: on its own: one that does not fit `Envelope` is answered `rejected` (`invalid`) and kept, not
#: refused with the whole request.
MESSAGES_BODY: dict[str, Any] = {
    "description": "one envelope, or an array of up to 1,000; see `Envelope` for what is accepted",
    "anyOf": [{"type": "object"}, {"type": "array", "maxItems": 1000}],
}


class Said(BaseModel):
    """A text's code and parameters beside its English words (v1.2): the catalogue words it in Chinese too."""

    detail_code: Optional[str] = Field(None, description="the text's code (null: words recorded before texts had codes)")
    detail_params: Optional[dict[str, Any]] = Field(None, description="the text's parameters, by name")


class Warning_(Said):
    model_config = ConfigDict(title="Warning")
    code: Literal[tuple(WARNING_CODES)]  # type: ignore[valid-type]
    reason: str


class MessageResult(BaseModel):
    message_id: Optional[str]
    status: Literal["accepted", "duplicate", "rejected"]
    position: Optional[int] = Field(None, description="store position of the message's last event")
    code: Optional[str] = None
    reason: Optional[str] = None
    detail_code: Optional[str] = Field(None, description="what `reason` says, as a text code (v1.2)")
    detail_params: Optional[dict[str, Any]] = Field(None, description="the text code's parameters (v1.2)")
    warnings: Optional[list[Warning_]] = Field(None, description="policy priorities an accepted message did not follow")


class SubmitResponse(BaseModel):
    results: list[MessageResult]


class HistoryEvent(BaseModel):
    position: int
    type: str = Field(description="the portal message type that caused it, else the dotted event name")
    event: str
    subject: Optional[str]
    data: dict[str, Any]
    occurred_at: Optional[datetime]
    recorded_at: Optional[datetime] = Field(description="when the store recorded it (null only with render_error)")
    actor: Optional[Actor]
    source: Optional[str]
    message_id: Optional[str]
    submitted_by: Optional[str]
    warnings: list[Warning_] = Field(description="policy priorities the message did not follow")
    render_error: Optional[str] = Field(None, description="set when the stored event could not be shown: "
                                                          "`data.raw` then holds what was stored")
    withheld: Optional[list[str]] = Field(None, description="the fields of `data` set to null because they "
                                                            "quote a message another department sent")


class HistoryResponse(BaseModel):
    code: str
    events: list[HistoryEvent]


class FeedResponse(BaseModel):
    events: list[HistoryEvent]
    next_after: int
    head: int


Rejection = item_model(exports.REJECTIONS)
RejectionsResponse = response_model(exports.REJECTIONS, Rejection)


class Library(BaseModel):
    library: str
    admitted_on: date
    year: Optional[int]
    opinion: Optional[str]


class ProjectState(BaseModel):
    model_config = ConfigDict(extra="allow")
    code: str
    as_of: Optional[date]
    version: int
    name: str
    district: str
    sector: str
    department: str
    status: Literal[STATUSES]  # type: ignore[valid-type]
    stage: str
    libraries: list[Library]
    factors: dict[str, list[dict[str, Any]]]
    factor_totals: dict[str, Number]
    progress: list[dict[str, Any]]


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    code: str
    position: Optional[int] = Field(None, description="`read_model_behind`: the position the read models are at")


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    head: int


Member = item_model(libraries.LISTING)


class Totals(BaseModel):
    projects: int
    total_investment: Number


class LibraryResponse(BaseModel):
    library: str
    filters: dict[str, str]
    members: list[Member]
    totals: Totals


class MatrixCell(BaseModel):
    district: str
    sector: str
    projects: int
    total_investment: Number


class MatrixResponse(BaseModel):
    library: str
    cells: list[MatrixCell]
    totals: Totals


class BoardProject(BaseModel):
    code: str
    name: str
    district: str
    sector: str
    status: str
    stage_since: date
    days_in_stage: int
    satisfied: list[str]
    missing: list[str]


class BoardStage(BaseModel):
    stage: str
    factors: list[str]
    projects: list[BoardProject]
    count: int


class StagesResponse(BaseModel):
    as_of: date
    stages: list[BoardStage]


LedgerRow = item_model(factor_ledger.LISTING)
LedgerGrant = item_model(factor_ledger.PROJECT_GRANTS)


class LedgerResponse(BaseModel):
    rows: Optional[list[LedgerRow]] = None
    project: Optional[str] = None
    grants: Optional[list[LedgerGrant]] = None


class InvestmentRow(BaseModel):
    model_config = ConfigDict(extra="allow")  # plus `sector` or `district`
    year: int
    planned: Number
    completed: Number
    share: Optional[float]


class InvestmentResponse(BaseModel):
    by: Literal["sector", "district"]
    year: Optional[int]
    rows: list[InvestmentRow]


AlertItem = item_model(sedimentation.ALERTS)
AlertsResponse = response_model(sedimentation.ALERTS, AlertItem)


class ParkedItem(BaseModel):
    position: int = Field(description="where it was parked in the store")
    message_id: Optional[str]
    type: Optional[str]
    code: Literal["unknown_project", "unknown_reference"] = Field(description="what it waits for")
    reason: Optional[str] = Field(description="null when withheld")
    detail_code: Optional[str] = Field(None, description="what `reason` says, as a text code (v1.2)")
    detail_params: Optional[dict[str, Any]] = Field(None, description="the text code's parameters (v1.2); null when "
                                                                      "withheld")
    partition: Optional[str] = Field(description="the Kafka partition it was read from")
    offset: Optional[int]
    parked_at: datetime
    body: Any = Field(description="the message as received; null when withheld")
    withheld: Optional[list[str]] = Field(None, description="the fields set to null because the message is "
                                                            "another department's (a portal sees its own only)")


class ParkedResponse(BaseModel):
    parked: list[ParkedItem]
    next_after: int


WarningItem = item_model(warnings.LISTING)
WarningsResponse = response_model(warnings.LISTING, WarningItem)


AuditEntry = item_model(audit.AUDIT)
AuditResponse = response_model(audit.AUDIT, AuditEntry)


DistrictRow = item_model(sedimentation.RANKING)
RankingResponse = response_model(sedimentation.RANKING, DistrictRow)


class ShareRow(Said):
    district: str
    score: Number
    weight: Number
    share: Number
    reason: str


class AdviceResponse(BaseModel):
    year: int
    as_of: date
    factor: Literal["land", "energy", "special_bond"]
    total: Number
    shares: list[ShareRow]

