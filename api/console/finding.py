"""Finding a project and reading it by name (按名称查找): what the search page, the project page and the
rejected messages' page work out before they render.

- the search's query, checked (`asked_for`): a part of a name, owner or code, up to
  `directory.LONGEST_QUERY` characters, no control characters;
- a project's alerts on the page's day, its supervision cases as they stood that day (open ones
  first), and a grant's particulars in words (`grant_detail`);
- a rejected message as fields a reader can read (`rejected_fields`), its project named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, Mapping, Sequence

from api.console.i18n import number, when
from domain import reference
from domain.receipt import CHANNELS
from domain.supervision import Thresholds
from infra.catalogue import name_of, translations
from infra.presenter import dumps
from projections import directory, sedimentation, supervision
from projections.listing import MEASURED, Tables

#: The kinds of data (`data.provided`'s `kind`, a free text) the catalogue names: another is shown as sent.
DATA_KINDS: Final = ("planning_data", "completion_report")
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
#: A number or a date, shown as it is.
PLAIN = re.compile(r"-?[\d.,]+|\d{4}-\d{2}-\d{2}")
#: How a portal's token is named: its department's code and this (infra/tokens.py).
PORTAL: Final = "-portal"
#: Why a search's query is refused (the page says it, with this code).
TOO_LONG, CONTROL = "query_too_long", "query_has_control_characters"


@dataclass(frozen=True)
class Asked:
    """A search as asked: the words (trimmed), the page, and the reason it is refused (None: it is not)."""

    query: str
    page: int
    refused: str | None = None


def asked_for(raw: str | None, page: str | None) -> Asked:
    query = (raw or "").strip()
    number_of_page = int(page) if page and page.isascii() and page.isdigit() and len(page) < 7 else 1
    if len(query) > directory.LONGEST_QUERY:
        return Asked(query[:directory.LONGEST_QUERY], 1, TOO_LONG)
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in query):
        return Asked("", 1, CONTROL)
    return Asked(query, max(number_of_page, 1))


# --- a project's page -------------------------------------------------------------------------


def project_alerts(tables: Tables, code: str, as_of: date, thresholds: Thresholds) -> list[dict[str, Any]]:
    """The project's alerts at the end of `as_of`, as the alerts list shows them (its detail in words
    by `detail_code`), red first."""
    facts = sedimentation.load_facts(tables.db, tables.names, codes=[code])
    found = sedimentation.alerts_of(facts, as_of, thresholds)
    rows = [sedimentation.alert_json(a.project_code, a.rule, a.ref, a.level, a.since, a.detail,
                                     **sedimentation.factor_fields(a)) for a in found]
    return sorted(rows, key=lambda a: (a["level"] != "red", a["since"] or date.min))


def project_cases(tables: Tables, code: str, as_of: date, thresholds: Thresholds) -> list[dict[str, Any]]:
    """The project's supervision cases assigned by `as_of`, as they stood at its end: those not closed
    first (overdue ones before the others), then the closed ones, each in the order assigned."""
    rows = [supervision.row_on(case, as_of, thresholds) for case in supervision.cases_of_project(tables, code)
            if case["assigned_on"] <= as_of]
    return sorted(rows, key=lambda c: (c["status"] == "closed", not c["overdue"]))


def open_cases(cases: Sequence[Mapping[str, Any]]) -> int:
    return sum(1 for c in cases if c["status"] != "closed")


def grant_detail(factor: str, grant: Mapping[str, Any], lang: str) -> str:
    """What a grant says beside its quantity, in words: a source, a kind of data or a utility by its
    name, a parcel with how it was supplied, a person with their role."""
    named = {"source": "source", "kind": "data_kind", "utility": "utility", "method": "land_method",
             "role": "talent_role"}
    parts = []
    for key in ("source", "kind", "utility", "parcel", "method", "person", "role", "organisation", "reduction_id",
                "pollutant", "document", "reference"):
        value = grant.get(key)
        if value in (None, ""):
            continue
        parts.append(name_of(named[key], str(value), lang) if key in named else str(value))
    if factor == "energy" and grant.get("year"):
        parts.append(f"{grant['year']}年度" if lang == "zh" else f"year {grant['year']}")
    if grant.get("start_by"):
        parts.append(f"{grant['start_by']}前开工" if lang == "zh" else f"to start by {grant['start_by']}")
    return " · ".join(parts)


def quantity(factor: str, value: Any, lang: str) -> str:
    """A grant's quantity with its unit (万元, 亩, 吨标煤, 吨); a factor counted by number has none."""
    if value is None or factor not in MEASURED:
        return ""
    return f"{number(value, 0 if factor in ('funds', 'special_bond') else 1)} {name_of('unit', factor, lang)}"


# --- the audit search ---------------------------------------------------------------------------

#: The console's words for a token's role (as its header says them).
ROLES: Final = {"admin": "administrator", "supervisor": "supervisor", "portal": "portal"}


def audit_rows(rows: Sequence[Mapping[str, Any]], lang: str) -> list[dict[str, Any]]:
    """The audit search's rows as the console shows them (the API and the download keep them as stored):
    a district it was about by its name, and who submitted it as a reader knows them."""
    return [{**row, "subject": name_of("district", row["subject"], lang)
             if row.get("subject") in reference.DISTRICTS or row.get("subject") == reference.CITY_CODE
             else row.get("subject"),
             "submitted_by": submitter(row.get("submitted_by"), lang)} for row in rows]


def submitter(token: str | None, lang: str) -> str | None:
    """`role:name` of the token that submitted a message, in words: the command line, a department's
    portal by the department's name, another token by its name; its role beside it."""
    if not token:
        return token
    role, _, name = token.partition(":")
    if name in CHANNELS:
        who = name_of("channel", name, lang)
    elif name.endswith(PORTAL):
        who = name_of("department", name[:-len(PORTAL)], lang)
    else:
        who = name
    return bracketed(who, translations(lang).gettext(ROLES.get(role, role)), lang)


# --- a rejected message -----------------------------------------------------------------------

#: A payload's fields as a reader knows them: the label (a console msgid) and the kind of code its value
#: is named by (`name_of`; "" shows it as sent). A field not here is shown by its key, as sent.
PAYLOAD: Final[dict[str, tuple[str, str]]] = {
    "name": ("Name", ""), "district": ("District", "district"), "sector": ("Sector", "sector"),
    "department": ("Department", "department"), "owner": ("Owner", ""),
    "total_investment": ("Total investment (10k yuan)", ""), "planned_start": ("Planned start", ""),
    "planned_completion": ("Planned completion", ""), "revenue_generating": ("Revenue generating", ""),
    "priority": ("Priority", ""), "nature": ("Nature", "nature"), "year": ("Year", ""),
    "planned_investment": ("Planned investment (10k yuan)", ""), "library": ("Library", "library"),
    "opinion": ("Opinion", ""), "reason": ("Reason", ""), "stage": ("Stage", "stage"),
    "source": ("Source of funds", "source"), "amount": ("Amount (10k yuan)", ""), "document": ("Document", ""),
    "parcel": ("Parcel", ""), "area_mu": ("Area (mu)", ""), "method": ("Method of supply", "land_method"),
    "start_by": ("To start by", ""), "approval_id": ("Approval", ""), "exception": ("Exception", ""),
    "tce": ("Energy (tce)", ""), "exempt": ("Exempt", ""), "kind": ("Kind of data", "data_kind"),
    "reference": ("Reference", ""), "utility": ("Utility", "utility"), "person": ("Person", ""),
    "role": ("Role", "talent_role"), "organisation": ("Organisation", ""), "reduction_id": ("Reduction", ""),
    "pollutant": ("Pollutant", ""), "tonnes": ("Tonnes", ""), "period": ("Period", ""),
    "completed": ("Completed (10k yuan)", ""), "date": ("Date", ""), "grant_id": ("Grant", ""),
    "factor": ("Factor", "factor"), "case_id": ("Case", ""), "rule": ("Rule", "rule"),
    "responsible": ("Responsible department", "department"), "due_date": ("Due date", ""),
    "demand": ("Demand", ""), "measures": ("Measures", ""), "expected_by": ("Expected by", ""),
    "outcome": ("Outcome", "outcome"), "note": ("Note", ""), "issue_id": ("Issue", ""), "title": ("Title", ""),
    "level": ("Level", "issue_level"), "assigned_to": ("Assigned to", "department"),
    "event": ("Promotion event", ""), "counterpart": ("Counterpart", ""), "enterprise": ("Enterprise", ""),
    "evaluator": ("Evaluator", ""), "passed": ("Passed", ""), "resolution": ("Resolution", ""),
    "allocation_id": ("Allocation", ""), "total": ("Total", ""), "shares": ("Shares", ""), "basis": ("Basis", ""),
    "as_of": ("As of", ""),
}


@dataclass(frozen=True)
class Field:
    label: str
    text: str
    code: bool = False  # shown as typed (an identifier, a value of the payload)
    link: str | None = None
    raw: bool = False  # labelled by its key as sent (a field no message type has)


def rejected_project(rejection: Mapping[str, Any]) -> str | None:
    """The project a rejected message names: its subject, else its body's `project_code`."""
    body = rejection.get("body")
    candidates = [rejection.get("subject"), body.get("project_code") if isinstance(body, Mapping) else None]
    return next((c for c in candidates if isinstance(c, str) and reference.is_project_code(c)), None)


def rejected_fields(rejection: Mapping[str, Any], names: Mapping[str, str], lang: str) -> list[Field]:
    """What a rejected message said, as fields: its type and project by name, who sent it and when, then
    each field of its payload (a value as it was sent). A body that was not a JSON object is shown as sent."""
    says = translations(lang).gettext  # the console's English msgids, as its templates say them
    body = rejection.get("body")
    if not isinstance(body, Mapping):
        return [Field(says("What was sent"), shown_value(body), code=True)]
    fields = []
    kind = body.get("type")
    if isinstance(kind, str) and kind != rejection.get("type"):  # the list shows the type it was stored as
        fields.append(Field(says("Message type"), kind, code=True))
    code = rejected_project(rejection)
    if code:
        name = names.get(code)
        fields.append(Field(says("Project"), bracketed(name, code, lang) if name else code,
                            link=f"/console/projects/{code}" if name else None))
    occurred = body.get("occurred_at")
    if isinstance(occurred, str):
        try:
            fields.append(Field(says("Occurred at"), when(datetime.fromisoformat(occurred))))
        except ValueError:  # refused for it, maybe: shown as sent
            fields.append(Field(says("Occurred at"), occurred, code=True))
    actor = body.get("actor")
    if isinstance(actor, Mapping):
        who = [name_of("department", str(actor["department"]), lang) if actor.get("department") else "",
               str(actor.get("user") or "")]
        fields.append(Field(says("Sent by"), " · ".join(w for w in who if w)))
    payload = body.get("payload")
    if isinstance(payload, Mapping):
        fields += [payload_field(str(key), value, lang) for key, value in payload.items()]
    elif payload is not None:
        fields.append(Field(says("Payload"), shown_value(payload), code=True))
    if rejection.get("body_truncated"):
        fields.append(Field(says("Kept"), says("only the first part of a message too large to keep")))
    return fields


def payload_field(key: str, value: Any, lang: str) -> Field:
    """A field of a payload: by its label and its value's name if it is a known one, else as sent."""
    label, kind = PAYLOAD.get(key, ("", ""))
    if not label:
        return Field(key, shown_value(value), code=True, raw=True)
    if kind and isinstance(value, str):
        named = name_of(kind, value, lang)
        return Field(translations(lang).gettext(label), named if named != value else value, code=named == value)
    if isinstance(value, bool):
        return Field(translations(lang).gettext(label), ("是" if value else "否") if lang == "zh" else str(value).lower())
    text = shown_value(value)
    # Words a person wrote read as words; an identifier or a value in the wire's format, as typed.
    return Field(translations(lang).gettext(label), text, code=not (CJK.search(text) or PLAIN.fullmatch(text)))


def bracketed(text: str, aside: str, lang: str) -> str:
    """`text（aside）` in Chinese, `text (aside)` in English."""
    return f"{text}（{aside}）" if lang == "zh" else f"{text} ({aside})"


def shown_value(value: Any) -> str:
    """A value of a message as it was sent: a text as itself, anything else as JSON."""
    return value if isinstance(value, str) else dumps(value).decode()
