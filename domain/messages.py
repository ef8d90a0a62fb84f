"""Portal messages (门户消息): the envelope, one command per message type, and who may send it.

`parse_envelope` turns a JSON-decoded body into an `Envelope` carrying a typed command, or
raises `Rejection('invalid' | 'unknown_type', ...)`. Commands are small frozen dataclasses whose
fields are the contract's payload; one generic parser reads them from their type hints, with
`field(metadata=...)` for choices and bounds, so the contract lives in one place.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import types
import typing
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Final, Union

from domain import codes
from domain.codes import ProjectCode
from domain.rejections import Rejection

MAX_TEXT: Final = 500
MAX_PLACES: Final = 6
#: JSON numbers are exchanged as IEEE-754 doubles (RFC 8259, section 6): beyond 15 significant
#: digits a sender's number may already have been rounded on its way here.
MAX_DIGITS: Final = 15
AMOUNT_LIMIT: Final = Decimal("1e12")
YEAR: Final = {"min": codes.FIRST_YEAR, "max": codes.LAST_YEAR}


def choices(*values: str) -> dict[str, Any]:
    return {"choices": values}


POSITIVE: Final = {"positive": True}
NON_NEGATIVE: Final = {"non_negative": True}


# --- Commands: one per message type ------------------------------------------------------


class Command:
    """Base of every command. `TYPE` is the dotted message type of the contract."""

    TYPE: ClassVar[str]
    #: Messages about something other than a project (reductions, quotas) carry no code.
    NEEDS_PROJECT: ClassVar[bool] = True


@dataclass(frozen=True)
class RegisterProject(Command):
    TYPE = "project.registered"
    name: str
    district: str = field(metadata=choices(*codes.DISTRICTS))
    sector: str = field(metadata=choices(*codes.SECTORS))
    department: str = field(metadata=choices(*codes.DEPARTMENTS))
    owner: str
    total_investment: Decimal = field(metadata=POSITIVE)
    planned_start: date
    planned_completion: date
    revenue_generating: bool
    priority: str = field(default="none", metadata=choices(*codes.PRIORITIES))
    nature: str | None = None


@dataclass(frozen=True)
class SetPlan(Command):
    TYPE = "plan.set"
    year: int = field(metadata=YEAR)
    planned_investment: Decimal = field(metadata=NON_NEGATIVE)


@dataclass(frozen=True)
class AdmitProject(Command):
    TYPE = "project.admitted"
    library: str = field(metadata=choices(*codes.LIBRARIES))
    year: int | None = field(default=None, metadata=YEAR)
    opinion: str | None = None


@dataclass(frozen=True)
class ReleaseProject(Command):
    TYPE = "project.released"
    library: str = field(metadata=choices(*codes.LIBRARIES))
    reason: str


@dataclass(frozen=True)
class AdvanceStage(Command):
    TYPE = "stage.advanced"
    stage: str = field(metadata=choices(*codes.STAGES[1:]))
    reason: str | None = None


@dataclass(frozen=True)
class AllocateFunds(Command):
    TYPE = "funds.allocated"
    source: str = field(metadata=choices(*codes.FUND_SOURCES))
    amount: Decimal = field(metadata=POSITIVE)
    document: str | None = None


@dataclass(frozen=True)
class EvaluateBond(Command):
    TYPE = "bond.evaluated"
    kind: str = field(metadata=choices(*codes.EVALUATION_KINDS))
    evaluator: str
    passed: bool


@dataclass(frozen=True)
class SupplyLand(Command):
    TYPE = "land.supplied"
    parcel: str
    area_mu: Decimal = field(metadata=POSITIVE)
    method: str = field(metadata=choices(*codes.LAND_METHODS))
    exception: str | None = None


@dataclass(frozen=True)
class GrantEnergy(Command):
    TYPE = "energy.granted"
    tce: Decimal = field(metadata=POSITIVE)
    year: int = field(metadata=YEAR)
    exempt: bool = False


@dataclass(frozen=True)
class RegisterReduction(Command):
    TYPE = "emission.reduction_registered"
    NEEDS_PROJECT = False
    reduction_id: str
    enterprise: str
    pollutant: str = field(metadata=choices(*codes.POLLUTANTS))
    tonnes: Decimal = field(metadata=POSITIVE)
    due_date: date


@dataclass(frozen=True)
class AdvanceEmission(Command):
    TYPE = "emission.advanced"
    reduction_id: str
    pollutant: str = field(metadata=choices(*codes.POLLUTANTS))
    tonnes: Decimal = field(metadata=POSITIVE)


@dataclass(frozen=True)
class CompleteReduction(Command):
    TYPE = "emission.reduction_completed"
    NEEDS_PROJECT = False
    reduction_id: str


@dataclass(frozen=True)
class ProvideData(Command):
    TYPE = "data.provided"
    kind: str
    reference: str


@dataclass(frozen=True)
class ConnectUtility(Command):
    TYPE = "utility.connected"
    utility: str = field(metadata=choices(*codes.UTILITIES))
    reference: str | None = None


@dataclass(frozen=True)
class AssignTalent(Command):
    TYPE = "talent.assigned"
    person: str
    role: str = field(metadata=choices(*codes.TALENT_ROLES))
    organisation: str | None = None


@dataclass(frozen=True)
class EscalateIssue(Command):
    TYPE = "issue.escalated"
    issue_id: str
    title: str
    level: str = field(metadata=choices(*codes.ISSUE_LEVELS))
    assigned_to: str = field(metadata={"department": True})
    due_date: date


@dataclass(frozen=True)
class ResolveIssue(Command):
    TYPE = "issue.resolved"
    issue_id: str
    resolution: str


@dataclass(frozen=True)
class StartConstruction(Command):
    TYPE = "construction.started"
    date: date


@dataclass(frozen=True)
class ReportInvestment(Command):
    TYPE = "investment.reported"
    period: str = field(metadata={"pattern": r"(199[0-9]|20[0-9][0-9]|2100)-(0[1-9]|1[0-2])"})
    completed: Decimal = field(metadata=NON_NEGATIVE)


@dataclass(frozen=True)
class CompleteProject(Command):
    TYPE = "project.completed"
    date: date


@dataclass(frozen=True)
class CancelProject(Command):
    """Added to the contract (additive): closes a project that will not be built."""

    TYPE = "project.cancelled"
    reason: str


@dataclass(frozen=True)
class ReclaimFactor(Command):
    TYPE = "factor.reclaimed"
    factor: str = field(metadata=choices(*codes.FACTORS))
    grant_id: str
    reason: str


@dataclass(frozen=True)
class ApproveException(Command):
    TYPE = "exception.approved"
    rule: str = field(metadata=choices(*codes.EXCEPTION_RULES))
    reference: str
    reason: str


@dataclass(frozen=True)
class SetQuota(Command):
    TYPE = "quota.set"
    NEEDS_PROJECT = False
    district: str = field(metadata=choices(*codes.DISTRICTS))
    year: int = field(metadata=YEAR)
    factor: str = field(metadata=choices("land", "energy"))
    amount: Decimal = field(metadata=NON_NEGATIVE)


COMMANDS: Final[dict[str, type[Command]]] = {
    cls.TYPE: cls
    for cls in (
        RegisterProject, SetPlan, AdmitProject, ReleaseProject, AdvanceStage, AllocateFunds,
        EvaluateBond, SupplyLand, GrantEnergy, RegisterReduction, AdvanceEmission,
        CompleteReduction, ProvideData, ConnectUtility, AssignTalent, EscalateIssue,
        ResolveIssue, StartConstruction, ReportInvestment, CompleteProject, CancelProject,
        ReclaimFactor, ApproveException, SetQuota,
    )
}


# --- Who may send what ---------------------------------------------------------------------

#: Roles that depend on the project (or on what the message names) rather than a fixed unit.
OWNER: Final = "@owner"  # the project's horizontal owning department
DISTRICT: Final = "@district"  # the project's district portal, `district:<area>`
ASSIGNEE: Final = "@assignee"  # the department an issue was assigned to
GRANTOR: Final = "@grantor"  # the unit that made the grant being reclaimed
ANYONE: Final = "@anyone"

MAY_SEND: Final[dict[str, frozenset[str]]] = {
    "project.registered": frozenset({"development_reform", DISTRICT}),
    "plan.set": frozenset({"development_reform"}),
    "project.admitted": frozenset({"development_reform", OWNER, DISTRICT}),
    "project.released": frozenset({"development_reform", OWNER}),
    "stage.advanced": frozenset({"development_reform"}),
    "funds.allocated": frozenset({"development_reform", "finance"}),
    "bond.evaluated": frozenset({"finance"}),
    "land.supplied": frozenset({"natural_resources"}),
    "energy.granted": frozenset({"development_reform"}),
    "emission.reduction_registered": frozenset({"ecology_environment"}),
    "emission.advanced": frozenset({"ecology_environment"}),
    "emission.reduction_completed": frozenset({"ecology_environment"}),
    "data.provided": frozenset({"big_data"}),
    "utility.connected": frozenset({"housing_construction", "water", "power_supply", "gas"}),
    "talent.assigned": frozenset({"organisation", "human_resources"}),
    "issue.escalated": frozenset({ANYONE}),
    "issue.resolved": frozenset({"development_reform", ASSIGNEE}),
    "construction.started": frozenset({"development_reform", DISTRICT}),
    "investment.reported": frozenset({"development_reform", "statistics"}),
    "project.completed": frozenset({"development_reform"}),
    "project.cancelled": frozenset({"development_reform"}),
    "factor.reclaimed": frozenset({GRANTOR}),
    "exception.approved": frozenset({"development_reform"}),
    "quota.set": frozenset({"natural_resources", "development_reform"}),
}


def could_send(message_type: str, department: str) -> bool:
    """Whether `department` may send this type for some project (before any is looked up)."""
    allowed = MAY_SEND[message_type]
    district_portal = department.startswith(codes.DISTRICT_PORTAL_PREFIX)
    return (department in allowed or ANYONE in allowed or ASSIGNEE in allowed or GRANTOR in allowed
            or (DISTRICT in allowed and district_portal) or (OWNER in allowed and not district_portal))


def require_may_send(message_type: str, department: str, **roles: str | None) -> None:
    """Raise `forbidden` unless `department` may send `message_type`.

    `roles` binds the relative roles for this message: owner, district, assignee, grantor.
    """
    allowed = MAY_SEND[message_type]
    bound = {
        OWNER: roles.get("owner"),
        DISTRICT: codes.district_portal(roles["district"]) if roles.get("district") else None,
        ASSIGNEE: roles.get("assignee"),
        GRANTOR: roles.get("grantor"),
    }
    if ANYONE in allowed or department in allowed:
        return
    if any(bound.get(role) == department for role in allowed):
        return
    raise Rejection("forbidden", f"{department} may not send {message_type}")


# --- The envelope --------------------------------------------------------------------------


@dataclass(frozen=True)
class Audit:
    """Who said what, when: carried by every stored event (审计信息)."""

    message_id: str
    message_type: str
    occurred_at: datetime
    source: str
    department: str
    user: str
    submitted_by: str
    #: The project code, or what else the message is about (a reduction id, a district).
    subject: str

    @property
    def business_date(self) -> date:
        return self.occurred_at.astimezone(codes.CITY_TZ).date()


@dataclass(frozen=True)
class Envelope:
    audit: Audit
    project_code: str | None
    command: Command

    @property
    def key(self) -> str:
        """The Kafka message key: the project code, or the reduction id (the district for quotas)."""
        return self.audit.subject


ENVELOPE_KEYS: Final = frozenset(
    {"message_id", "type", "occurred_at", "source", "actor", "project_code", "payload"}
)
MESSAGE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@-]{0,199}")


def message_id_of(body: Any) -> str | None:
    """The body's message_id if it is well formed, else None (used before full parsing)."""
    if isinstance(body, dict):
        value = body.get("message_id")
        if isinstance(value, str) and MESSAGE_ID.fullmatch(value):
            return value
    return None


def parse_envelope(body: Any, *, submitted_by: str) -> Envelope:
    if not isinstance(body, dict):
        raise Rejection("invalid", "a message must be a JSON object")
    unknown = sorted(set(body) - ENVELOPE_KEYS)
    if unknown:
        raise Rejection("invalid", f"unknown envelope field(s): {', '.join(unknown)}")
    message_id = message_id_of(body)
    if message_id is None:
        raise Rejection("invalid", "message_id: required, 1-200 characters of [A-Za-z0-9._:/@-]")
    message_type = body.get("type")
    if not isinstance(message_type, str):
        raise Rejection("invalid", "type: required string")
    command_class = COMMANDS.get(message_type)
    if command_class is None:
        raise Rejection("unknown_type", f"unknown message type {message_type!r}")
    occurred_at = _datetime("occurred_at", body.get("occurred_at"))
    source = _text("source", body.get("source"))
    actor = body.get("actor")
    if not isinstance(actor, dict):
        raise Rejection("invalid", "actor: required object with department and user")
    department = _text("actor.department", actor.get("department"))
    if not codes.is_department(department):
        raise Rejection("invalid", f"actor.department: unknown department {department!r}")
    user = _text("actor.user", actor.get("user"))
    extra = sorted(set(actor) - {"department", "user"})
    if extra:
        raise Rejection("invalid", f"unknown actor field(s): {', '.join(extra)}")
    project_code: str | None = None
    if command_class.NEEDS_PROJECT:
        raw_code = body.get("project_code")
        if not isinstance(raw_code, str):
            raise Rejection("invalid", "project_code: required for this message type")
        try:
            project_code = ProjectCode(raw_code).value
        except ValueError as error:
            raise Rejection("invalid", f"project_code: {error}") from None
    elif body.get("project_code") is not None:
        raise Rejection("invalid", f"project_code: {message_type} is not about a project")
    payload = body.get("payload")
    if not isinstance(payload, dict):
        raise Rejection("invalid", "payload: required object")
    command = parse_command(command_class, payload)
    subject = project_code or str(getattr(command, "reduction_id", None) or getattr(command, "district"))
    audit = Audit(
        message_id=message_id,
        message_type=message_type,
        occurred_at=occurred_at,
        source=source,
        department=department,
        user=user,
        submitted_by=submitted_by,
        subject=subject,
    )
    return Envelope(audit=audit, project_code=project_code, command=command)


@functools.cache
def _fields(command_class: type[Command]) -> tuple[tuple[str, Any, bool, Any], ...]:
    """(name, type, may be absent, metadata) of each field: read from the type hints once."""
    hints = typing.get_type_hints(command_class)
    specs = []
    for spec in dataclasses.fields(command_class):  # type: ignore[arg-type]
        kind, optional = _unwrap_optional(hints[spec.name])
        specs.append((spec.name, kind, optional or spec.default is not dataclasses.MISSING, spec.metadata))
    return tuple(specs)


def parse_command(command_class: type[Command], payload: dict[str, Any]) -> Command:
    fields = _fields(command_class)
    unknown = sorted(set(payload) - {name for name, *_ in fields})
    if unknown:
        raise Rejection("invalid", f"unknown payload field(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, kind, may_be_absent, meta in fields:
        raw = payload.get(name)
        if raw is None:
            if may_be_absent:
                continue
            raise Rejection("invalid", f"payload.{name}: required")
        values[name] = _check(f"payload.{name}", _coerce(f"payload.{name}", kind, raw), meta)
    return command_class(**values)


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(hint))
    return hint, False


def _coerce(path: str, kind: Any, raw: Any) -> Any:
    if kind is str:
        return _text(path, raw)
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        raise Rejection("invalid", f"{path}: must be true or false")
    if kind is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        raise Rejection("invalid", f"{path}: must be a whole number")
    if kind is Decimal:
        return _decimal(path, raw)
    if kind is date:
        return _date(path, raw)
    raise TypeError(f"no parser for {kind!r}")  # a programming error, not bad input


def _check(path: str, value: Any, meta: Any) -> Any:
    if "choices" in meta and value not in meta["choices"]:
        raise Rejection("invalid", f"{path}: {value!r} is not one of {', '.join(meta['choices'])}")
    if meta.get("positive") and value <= 0:
        raise Rejection("invalid", f"{path}: must be greater than 0")
    if meta.get("non_negative") and value < 0:
        raise Rejection("invalid", f"{path}: must not be negative")
    if "min" in meta and not meta["min"] <= value <= meta["max"]:
        raise Rejection("invalid", f"{path}: must be between {meta['min']} and {meta['max']}")
    if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
        raise Rejection("invalid", f"{path}: {value!r} does not match {meta['pattern']}")
    if meta.get("department") and not codes.is_department(value):
        raise Rejection("invalid", f"{path}: unknown department {value!r}")
    return value


def _text(path: str, raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise Rejection("invalid", f"{path}: required non-empty string")
    if len(raw) > MAX_TEXT:
        raise Rejection("invalid", f"{path}: longer than {MAX_TEXT} characters")
    return raw.strip()


def _decimal(path: str, raw: Any) -> Decimal:
    """An amount: a JSON number (never a string), in its one canonical form (`5.0` is `5`)."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise Rejection("invalid", f"{path}: must be a JSON number")
    if isinstance(raw, int):
        if abs(raw) >= AMOUNT_LIMIT:
            raise Rejection("invalid", f"{path}: {raw} is out of range (below {AMOUNT_LIMIT:f})")
        return Decimal(raw)
    if not math.isfinite(raw) or abs(raw) >= AMOUNT_LIMIT:
        raise Rejection("invalid", f"{path}: {raw!r} is out of range (below {AMOUNT_LIMIT:f})")
    value = canonical_decimal(Decimal(repr(raw)))  # the shortest text that reads back as this double
    sign, digits, exponent = value.as_tuple()
    if len(digits) > MAX_DIGITS:
        raise Rejection("invalid", f"{path}: {raw!r} has more than {MAX_DIGITS} significant digits")
    if isinstance(exponent, int) and exponent < -MAX_PLACES:
        raise Rejection("invalid", f"{path}: {raw!r} has more than {MAX_PLACES} decimal places")
    return value


def canonical_decimal(value: Decimal) -> Decimal:
    """The one form of a finite decimal: no trailing zeros, no exponent, no negative zero."""
    if value == 0:
        return Decimal(0)
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    return normal.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else normal


def _date(path: str, raw: Any) -> date:
    if isinstance(raw, str) and len(raw) == 10 and raw.isascii():
        try:
            value = date.fromisoformat(raw)
        except ValueError:
            pass
        else:
            if codes.FIRST_YEAR <= value.year <= codes.LAST_YEAR:
                return value
            raise Rejection("invalid", f"{path}: {raw} is not between {codes.FIRST_YEAR} and {codes.LAST_YEAR}")
    raise Rejection("invalid", f"{path}: must be an ISO date YYYY-MM-DD")


def _datetime(path: str, raw: Any) -> datetime:
    if isinstance(raw, str) and len(raw) <= 40 and raw.isascii():
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            pass
        else:
            if not codes.FIRST_YEAR <= value.year <= codes.LAST_YEAR:
                raise Rejection("invalid", f"{path}: {raw} is not between {codes.FIRST_YEAR} and {codes.LAST_YEAR}")
            # A portal that omits the offset means the city's own time.
            return value if value.tzinfo else value.replace(tzinfo=codes.CITY_TZ)
    raise Rejection("invalid", f"{path}: must be an ISO date-time such as 2021-03-01T09:00:00+08:00")
