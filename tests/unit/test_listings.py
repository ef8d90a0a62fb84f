"""Each listing is declared once (projections/listing.py): its API parameters and OpenAPI, its response
model, its download and its console page are all derived from the declaration.

Walked over every declared listing, and shown on a throwaway filter and column added to a copy of one:
all four surfaces see it, with no other code. And the console reads its lenient query string with the
same declaration: what the API accepts, the console takes as the same value; what the API refuses,
the console ignores."""

# No `from __future__ import annotations`: the throwaway routes below are typed by local values.

import csv
import io
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from api import audit as api_audit
from api import errors, exports, read_models, schemas
from api import supervision as api_supervision
from api.console import tables
from api.console.i18n import environment
from api.listings import Asked, Filters, item_model, response_model
from infra.catalogue import said
from infra.settings import Settings
from projections import audit, factor_ledger, libraries, sedimentation, stages, supervision, warnings
from projections.listing import DATE_PATTERN, Column, Filter, Listing

#: Every declared listing, its route, and its models in api/schemas.py.
DECLARED: dict[str, tuple[Listing, str, Any, Any]] = {
    "alerts": (sedimentation.ALERTS, "/v1/alerts", schemas.AlertItem, schemas.AlertsResponse),
    "audit": (audit.AUDIT, "/v1/audit", schemas.AuditEntry, schemas.AuditResponse),
    "warnings": (warnings.LISTING, "/v1/warnings", schemas.WarningItem, schemas.WarningsResponse),
    "library": (libraries.LISTING, "/v1/libraries/{library}", schemas.Member, schemas.LibraryResponse),
    "stages": (stages.LISTING, "/v1/stages", None, schemas.StagesResponse),
    "ledger": (factor_ledger.LISTING, "/v1/ledger", schemas.LedgerRow, schemas.LedgerResponse),
    "grants": (factor_ledger.PROJECT_GRANTS, "/v1/ledger", schemas.LedgerGrant, schemas.LedgerResponse),
    "ranking": (sedimentation.RANKING, "/v1/rankings/districts", schemas.DistrictRow, schemas.RankingResponse),
    "rejections": (exports.REJECTIONS, "/v1/rejections", schemas.Rejection, schemas.RejectionsResponse),
    "supervision": (supervision.LISTING, "/v1/supervision", api_supervision.SupervisionCase,
                    api_supervision.SupervisionResponse),
}


def app_of(listing: Listing) -> FastAPI:
    """An app with one route taking the listing's filters, as the API's routes take them."""
    app = FastAPI()
    app.state.settings = Settings(store="memory://", allowed_hosts=("testserver",))
    errors.install(app)
    item = item_model(listing)

    @app.get("/list", response_model=response_model(listing, item))
    def listed(asked: Filters(listing)) -> dict[str, Any]:  # type: ignore[valid-type]
        return {"asked": {k: (v.isoformat() if isinstance(v, date) else v) for k, v in asked.items()}}

    @app.get("/asked")
    def echoed(asked: Filters(listing)) -> dict[str, Any]:  # type: ignore[valid-type]
        return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in asked.items()}

    return app


def parameters(app: FastAPI, path: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in app.openapi()["paths"][path]["get"]["parameters"]}


def check_parameter(f: Filter, published: dict[str, Any]) -> None:
    given = published["schema"]
    schema = next(s for s in given["anyOf"] if s.get("type") != "null") if "anyOf" in given else given
    assert published["required"] == f.required, f.name
    assert published.get("description") == f.description, f.name
    if f.choices is not None:
        assert schema["enum"] == list(f.choices), f.name
    if f.type is int:
        assert (schema["type"], schema.get("minimum"), schema.get("maximum")) == ("integer", f.ge, f.le), f.name
    if f.type is date:
        assert schema["format"] == "date" and published["schema"]["pattern"] == DATE_PATTERN, f.name
    if f.type is str and f.choices is None:
        assert (schema.get("pattern"), schema.get("minLength"), schema.get("maxLength")) == \
            (f.pattern, f.min_length, f.max_length), f.name


def check_item_model(listing: Listing, model: Any) -> None:
    fields = model.model_json_schema()["properties"]
    assert model.__name__ == listing.item
    assert {c.key for c in listing.item_fields} <= set(fields)
    for column in listing.item_fields:
        assert fields[column.key].get("description") == column.description, column.key


def check_download(listing: Listing, row: dict[str, Any]) -> None:
    for lang in ("zh", "en"):
        body = listing.body([row], {"as_of": date(2021, 9, 30), "year": 2021}) if isinstance(listing.rows, str) else \
            {"stages": [{"stage": row["stage"], "projects": [row]}]}
        answer = exports.download(listing, body, "csv", lang, asked={}, issuer="编制单位")
        header, line = list(csv.reader(io.StringIO(answer.body.decode("utf-8-sig"))))
        assert header == [c.header(lang) for c in listing.columns]
        assert len(line) == len(listing.columns)


def check_page(listing: Listing, row: dict[str, Any]) -> str:
    """The page's form and table, drawn by the console's macros; gives the HTML."""
    asked = listing.parsed({})
    template = environment("en").from_string(
        '{% from "macros.html" import listing_form, listing_table %}'
        '{{ listing_form("/console/x", form) }}{{ listing_table(table, "none") }}')
    html = template.render(form=tables.form(listing, asked, "en"), table=tables.table(listing, [row], "en"))
    for f in listing.filters:
        assert f'name="{f.name}"' in html and listing.label(f, "en") in html, f.name
    for column in listing.page_columns:
        assert f">{column.header('en')}</th>" in html, column.key
    return html


def sample(listing: Listing) -> dict[str, Any]:
    """A row with every field set (a code to its first choice)."""
    values = {"int": 1, "number": 1.5, "money": 1.5, "area": 1.5, "energy": 1.5, "quantity": 1.5, "rate": 0.5,
              "date": "2021-09-30", "datetime": "2021-09-30T08:00:00+00:00", "codes": [], "bool": True, "json": {}}
    return {c.key: c.choices[0] if c.choices else values.get(c.kind, "x") for c in listing.item_fields}


@pytest.mark.parametrize("name", DECLARED)
def test_every_surface_of_a_declared_listing_is_its_declaration(name: str) -> None:
    listing, path, item, response = DECLARED[name]
    published = parameters(app_of(listing), "/list")
    for f in listing.filters:
        check_parameter(f, published[f.name])
    assert set(published) == {f.name for f in listing.filters} | ({"after", "limit"} if listing.paging else set())
    if item is not None:  # (the stage board's rows are flattened from its answer: their model is by hand)
        check_item_model(listing, item)
    assert response.__name__ == (listing.response or response.__name__)  # some answers carry more than rows
    check_download(listing, sample(listing))
    check_page(listing, sample(listing))


def test_a_new_filter_and_column_reach_all_four_surfaces() -> None:
    shoe = Filter("shoe_size", int, "late_days", "<=", ge=3, le=9, description="at most this size", zh="鞋码",
                  en="Shoe size")
    listing = replace(audit.AUDIT, item="ShoeEntry", response="ShoeResponse", filters=(*audit.AUDIT.filters, shoe),
                      columns=(*audit.AUDIT.columns, Column("shoe", "鞋", "Shoe", "int", description="its size")))
    app = app_of(listing)
    check_parameter(shoe, parameters(app, "/list")["shoe_size"])
    client = TestClient(app)
    assert client.get("/asked?shoe_size=4").json()["shoe_size"] == 4
    refused = client.get("/asked?shoe_size=10")
    assert refused.status_code == 400 and refused.headers["content-type"] == "application/problem+json"
    assert app.openapi()["components"]["schemas"]["ShoeEntry"]["properties"]["shoe"]["description"] == "its size"
    assert listing.where({"shoe_size": 4}) == (["late_days <= ?"], [4])
    check_download(listing, {**sample(listing), "shoe": 7})
    html = check_page(listing, {**sample(listing), "shoe": 7})
    assert 'type="number" min="3" max="9" name="shoe_size"' in html and '<td class="n">7</td>' in html
    assert listing.parsed({"shoe_size": "12"})["shoe_size"] is None  # the console ignores what the API refuses
    assert listing.parsed({"shoe_size": "5"})["shoe_size"] == 5


def test_the_routes_take_the_declared_filters() -> None:
    """The real routes publish exactly what their listing declares (their other parameters aside)."""
    app = FastAPI()
    app.include_router(api_audit.router)
    app.include_router(read_models.router)
    app.include_router(api_supervision.router)
    document = app.openapi()
    for listing, path, _, _ in DECLARED.values():
        published = {p["name"]: p for p in document["paths"][path]["get"]["parameters"]}
        for f in listing.filters:
            check_parameter(f, published[f.name])


#: Texts a query string may hold: values of every filter's kind, and near misses.
RAW = st.one_of(
    st.text(max_size=30), st.from_regex(r"\A-?[0-9]{1,6}\Z"), st.dates().map(date.isoformat),
    st.sampled_from(["620102", "red", "not_started", "natural_resources", "district:620102", "2021-620102-48-01-000001",
                     "2100-12-31", "1989-12-31", "36500", "36501", "0", "-1", "land.supplied", "x\x00y", " 7 "]))


@pytest.mark.parametrize("name", DECLARED)
@settings(max_examples=60, deadline=None)
@given(raw=RAW)
def test_the_console_reads_a_filter_as_the_api_does(name: str, raw: str) -> None:
    listing = DECLARED[name][0]
    client = TestClient(app_of(listing))
    unset = listing.parsed({})
    for f in listing.filters:
        others = {g.name: str(g.ge) for g in listing.filters if g.required and g is not f}
        answer = client.get("/asked", params={**others, f.name: raw})
        console = listing.parsed({f.name: raw})[f.name]
        shown = console.isoformat() if isinstance(console, date) else console
        if answer.status_code == 200 and raw and raw == raw.strip():
            assert shown == answer.json()[f.name], f.name  # the API's value
        elif answer.status_code != 200 and raw == raw.strip():
            assert console == unset[f.name], (f.name, raw)  # ignored: as if not given
        assert console == listing.parsed({f.name: raw.strip()})[f.name]  # spaces around it aside


def test_asked_is_kept_by_its_values() -> None:
    assert Asked({"a": 1, "b": None}) == Asked({"b": None, "a": 1})
    assert hash(Asked({"a": 1, "b": None})) == hash(Asked({"b": None, "a": 1}))
    assert Asked({"a": 1}) != Asked({"a": 2})


def test_the_console_filters_warnings_by_any_sender_as_the_api_does() -> None:
    """The API took a district portal as the warnings' sender; the console's own list took departments only."""
    portal = "district:620102"
    assert warnings.LISTING.parsed({"department": portal})["department"] == portal
    assert TestClient(app_of(warnings.LISTING)).get("/asked", params={"department": portal}).json()["department"] == portal
    department = next(f for f in tables.form(warnings.LISTING, {}, "zh") if f.name == "department")
    assert portal in department.options and "natural_resources" in department.options


def test_a_text_column_says_the_row_s_text_code_in_the_language_asked_for() -> None:
    """A `said` column (an alert's detail, a warning's or rejection's reason) is said from `detail_code` and
    `detail_params` when the row has them, in the download's and the page's language; else as it is."""
    detail = sedimentation.ALERTS.column("detail")
    english = {"detail": "planned to start 2021-06-27"}
    coded = {**english, "detail_code": "not_started.late", "detail_params": {"planned_start": "2021-06-27", "days": 95, "factors": ["land"]}}
    for lang in ("zh", "en"):
        assert detail.value(english, lang) == tables.shown(detail, english, lang) == "planned to start 2021-06-27"
        assert detail.value(coded, lang) == tables.shown(detail, coded, lang) == \
            said("not_started.late", coded["detail_params"], lang)
    assert {c.kind for c in (warnings.LISTING.column("reason"), exports.REJECTIONS.column("reason"))} == {"said"}


#: What each derived item model required before its listing was declared (the published contract of
#: v1.1): a field that may be null is still always given, so it stays required; only those a reader
#: may find absent are not.
REQUIRED_BEFORE = {
    "AlertItem": {"department", "detail", "district", "leader", "level", "project_code", "ref", "rule", "since"},
    "AuditEntry": {"business_date", "district", "event", "late_days", "position", "recorded_at", "recorded_on", "type"},
    "DistrictRow": {"completed_investment", "district", "due_to_start", "investment_rate", "planned_investment",
                    "projects", "rank", "red_alerts", "score", "start_rate", "started", "yellow_alerts"},
    "LedgerGrant": {"code", "department", "detail", "district", "exempt", "factor", "grant_id", "granted_on",
                    "quantity", "reclaim_reason", "reclaimed_on", "year"},
    "LedgerRow": {"district", "exempt", "factor", "granted", "grants", "quota", "reclaimed", "remaining", "year"},
    "Member": {"admitted_on", "code", "department", "district", "library", "name", "opinion", "sector",
               "total_investment", "year"},
    "Rejection": {"body", "channel", "code", "message_id", "position", "reason", "received_at", "subject",
                  "submitted_by", "type"},
    "WarningItem": {"code", "department", "district", "message_id", "occurred_at", "position", "project_code",
                    "reason", "type"},
}


@pytest.mark.parametrize("model", sorted(REQUIRED_BEFORE))
def test_a_derived_item_model_requires_what_the_contract_required(model: str) -> None:
    assert set(getattr(schemas, model).model_json_schema().get("required", [])) == REQUIRED_BEFORE[model]


def test_every_event_of_every_aggregate_is_audited_but_the_pipeline_s_bookkeeping() -> None:
    """An aggregate added to the domain is searchable in the audit trail (and its events published or
    kept back on purpose): the audit read model follows every aggregate class of `domain`."""
    import importlib
    import pkgutil

    from eventsourcing.domain import Aggregate
    from eventsourcing.utils import get_topic

    import domain
    from consumers.relay import BOOKKEEPING, CONTRACT
    from projections.audit import AUDITED
    from projections.model import domain_events

    for module in pkgutil.iter_modules(domain.__path__):
        importlib.import_module(f"domain.{module.name}")
    aggregates = {cls for cls in _subclasses(Aggregate) if cls.__module__.startswith("domain.")}
    assert len(aggregates) >= 11
    for aggregate in aggregates:
        topic = f"{get_topic(aggregate)}."
        if topic in BOOKKEEPING:
            continue
        assert set(domain_events(aggregate)) <= set(AUDITED), aggregate
        assert topic in CONTRACT or aggregate.__name__ in {"SedimentationAlerts", "AuditCheckpoint", "EventSkip",
                                                           "CaseNumber"}, aggregate


def _subclasses(cls: type) -> set[type]:
    return {sub for direct in cls.__subclasses__() for sub in (direct, *_subclasses(direct))}


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_every_chip_a_list_shows_has_a_colour(name: str) -> None:
    """A chip's text is white on its value's colour: a value with none would be invisible."""
    css = (Path(__file__).resolve().parents[2] / "api" / "console" / "static" / "console.css").read_text()
    listing = DECLARED[name][0]
    for column in listing.columns:
        if column.look == "chip":
            for value in column.choices or ():
                assert f".chip.{value} " in css, (name, column.key, value)
