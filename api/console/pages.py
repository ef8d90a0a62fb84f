"""The console's pages: each a URL a supervisor can type, bookmark and send, its filters in the query.

Every page reads through the same queries as the API (the projections' query functions, the ledger's
history and state); what it shows it escapes. A page answered to someone not signed in sends them to
sign in, and back.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api import notifications
from api.auth import open_session, settings_of
from api.console import cockpit, finding, tables
from api.console.casework import alert_action
from api.console.forms import SIGN_IN_COOKIE, form_token, posted_form
from api.console.i18n import DEFAULT, LANGUAGES, environment
from api.console.session import COOKIE, LIFETIME_SECONDS, new_id, seal
from api.errors import ProblemError
from api.params import LAST_POSITION
from api.reading import read
from api.render import project_json
from domain import reference
from domain.supervision import evaluate
from infra import kafka
from infra.catalogue import name_of
from infra.clock import city_today
from infra.parsing import ascii_integer
from infra.presenter import event_json, rejection_json
from infra.settings import Settings
from infra.tokens import Principal, token_hash
from projections import (
    audit,
    chain,
    directory,
    factor_ledger,
    libraries,
    parked,
    sedimentation,
    supervision,
    warnings,
)
from projections import cockpit as cockpit_model
from projections.db import NotBuilt
from projections.listing import day as business_day

router = APIRouter(prefix="/console", include_in_schema=False)

LANG_COOKIE = "yaosu_lang"
#: No script at all; styles and images from here only.
POLICY = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; "
          "frame-ancestors 'none'")
NAVIGATION = (("overview", "/console"), ("libraries", "/console/libraries/municipal"), ("alerts", "/console/alerts"),
              ("supervision", "/console/supervision"), ("ledger", "/console/ledger"), ("rankings", "/console/rankings"), ("warnings", "/console/warnings"),
              ("audit", "/console/audit"), ("rejections", "/console/rejections"), ("health", "/console/health"))


PROJECT_CODE = re.compile(reference.PROJECT_CODE_PATTERN)


class NotSignedIn(Exception):
    """A console page asked for without a session: answered by sending them to sign in."""


# --- how a page is answered ------------------------------------------------------------------


def language(request: Request) -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    return chosen if chosen in LANGUAGES else DEFAULT


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    lang = language(request)
    parts = request.url.path.split("/")
    session = getattr(request.state, "session", None)
    html = environment(lang).get_template(template).render(
        request_path=request.url.path, query=request.url.query, navigation=NAVIGATION,
        section=parts[2] if len(parts) > 2 and parts[2] else "overview",
        who=getattr(request.state, "principal", None),
        # The token of this session's forms (sign-out, ...): see api/console/forms.py.
        csrf=form_token(settings_of(request).session_secret, session.session_id) if session else None, **context)
    return HTMLResponse(html, status_code=status_code, headers={
        "Content-Security-Policy": POLICY, "Cache-Control": "no-store", "Referrer-Policy": "same-origin"})


def signed_in(request: Request) -> Principal:
    session = open_session(request)
    found = settings_of(request).tokens.get(session.token_sha256) if session else None
    if found is None:
        raise NotSignedIn
    request.state.principal, request.state.session = found, session
    return found


def named_by(request: Request) -> Any:
    """Names of codes in the page's language, for what the page works out before rendering."""
    lang = language(request)
    return lambda kind, code: name_of(kind, code, lang)


def day(request: Request, name: str, default: date | None) -> date | None:
    """A date from the query, read as the API reads a business date (one declared filter's check); a
    missing or refused one is the default (the page says which it shows)."""
    found: date | None = business_day(name, None).parsed(request.query_params.get(name))
    return default if found is None else found


def as_of_and_year(request: Request) -> tuple[date, int]:
    """The business date a page is as of (default today), and the plan year (default that date's)."""
    as_of = day(request, "as_of", city_today()) or city_today()
    return as_of, year_of(request, as_of.year)


def year_of(request: Request, default: int) -> int:
    found = ascii_integer(request.query_params.get("year"), reference.FIRST_YEAR, reference.LAST_YEAR)
    return default if found is None else found


def whole_number(request: Request, name: str, highest: int) -> int | None:
    """A count or position from the query, in ASCII digits up to `highest`; anything else None."""
    return ascii_integer(request.query_params.get(name), 0, highest)


def amount(request: Request, name: str) -> Decimal:
    """A positive amount under 10^12 from the query; anything else (NaN, infinities, words) 0."""
    try:
        value = Decimal((request.query_params.get(name) or "0").strip())
    except (InvalidOperation, ValueError):
        return Decimal(0)
    return value if value.is_finite() and 0 < value < Decimal("1e12") else Decimal(0)


def choice(request: Request, name: str, allowed: Any) -> str | None:
    value = request.query_params.get(name) or None
    return value if value in allowed else None


def export(path: str, **params: Any) -> str:
    """The API's download of what a page lists (the session opens it, like the page)."""
    return f"{path}?{urlencode({k: v for k, v in params.items() if v is not None})}"


def safe_next(target: str | None) -> str:
    # Only back into the console: never to another site.
    return target if target and target.startswith("/console") and not target.startswith("//") else "/console"


# --- signing in and out, language --------------------------------------------------------------


@router.get("/login")
def login_form(request: Request) -> HTMLResponse:
    return sign_in_page(request, safe_next(request.query_params.get("next")))


def sign_in_page(request: Request, target: str, status_code: int = 200, failed: bool = False) -> HTMLResponse:
    """The sign-in form, bound to this browser by a cookie of its own (sign-in CSRF: another site's
    page cannot sign this browser in with its token)."""
    binding = request.cookies.get(SIGN_IN_COOKIE) or ""
    if not re.fullmatch(r"[A-Za-z0-9_-]{24}", binding):
        binding = new_id()
    answer = page(request, "login.html", status_code=status_code, next=target, failed=failed,
                  sign_in_token=form_token(settings_of(request).session_secret, binding))
    answer.set_cookie(SIGN_IN_COOKIE, binding, max_age=LIFETIME_SECONDS, httponly=True, samesite="strict",
                      secure=request.url.scheme == "https", path="/console/login")
    return answer


@router.post("/login")
async def login(request: Request) -> Response:
    form = await posted_form(request, request.cookies.get(SIGN_IN_COOKIE))
    token = form.get("token", "").strip()
    target = safe_next(form.get("next"))
    settings = settings_of(request)
    if not token or settings.principal(token) is None:
        return sign_in_page(request, target, status_code=401, failed=True)
    answer = RedirectResponse(target, status_code=303)
    answer.set_cookie(COOKIE, seal(token_hash(token), settings.session_secret), max_age=LIFETIME_SECONDS,
                      httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/")
    return answer


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = await run_in_threadpool(open_session, request)  # a read of the store: off the event loop
    answer = RedirectResponse("/console/login", status_code=303)
    if session is not None:  # signing out someone not signed in changes nothing: no form to check
        await posted_form(request, session.session_id)
        # Recorded in the store: the cookie is refused by every process serving it, not only this browser.
        await run_in_threadpool(request.app.state.sessions.end, session)
    answer.delete_cookie(COOKIE, path="/")
    return answer


def refused(request: Request, why: str) -> HTMLResponse:
    """A form refused for where it came from (api/console/forms.py): 403, saying why and what to do."""
    return page(request, "refused.html", status_code=403, why=why)


@router.get("/lang/{lang}")
def switch_language(request: Request, lang: str) -> Response:
    answer = RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    if lang in LANGUAGES:
        answer.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="strict", path="/")
    return answer


# --- pages -----------------------------------------------------------------------------------


@router.get("")
def overview(request: Request) -> HTMLResponse:
    """驾驶舱: the key figures, the year's trends, the map and the ranking, all as of the page's day."""
    signed_in(request)
    as_of, year = as_of_and_year(request)
    with read(request, cockpit_model.Cockpit, sedimentation.Sedimentation, factor_ledger.FactorLedger) as view:
        shown = cockpit.overview(view, as_of, year, settings_of(request).thresholds, language(request))
    return page(request, "overview.html", as_of=as_of, year=year, report_month=report_month(as_of), **shown)


def report_month(as_of: date) -> str:
    """The month whose report the overview offers: the page's, once it is over; else the last one over."""
    last_over = city_today().replace(day=1) - timedelta(days=1)
    return min(as_of, last_over).strftime("%Y-%m")


@router.get("/libraries/{library}")
def library(request: Request, library: str) -> HTMLResponse:
    signed_in(request)
    if library not in reference.LIBRARIES:
        return page(request, "missing.html", status_code=404, what=library)
    listing, lang = libraries.LISTING, language(request)
    asked = listing.parsed(request.query_params)
    with read(request, libraries.Libraries) as view:
        found = libraries.members(view.of(libraries.Libraries), library, asked)
        grid = libraries.matrix(view.of(libraries.Libraries), library)
    sectors = sorted({c["sector"] for c in grid["cells"]})
    cells = {(c["district"], c["sector"]): c for c in grid["cells"]}
    members, paged = tables.paginated(listing, found["members"], request.query_params, request.url.path)
    return page(request, "library.html", library=library, found=found, sectors=sectors,
                districts=sorted({c["district"] for c in grid["cells"]}), cells=cells,
                most=max((c["projects"] for c in grid["cells"]), default=0),
                form=tables.form(listing, asked, lang), table=tables.table(listing, members, lang, paged=paged),
                export=tables.link(f"/v1/libraries/{library}", asked, format="xlsx"))


@router.get("/alerts")
def alerts_page(request: Request) -> HTMLResponse:
    who = signed_in(request)
    listing, lang = sedimentation.ALERTS, language(request)
    asked = listing.parsed(request.query_params)
    with read(request, sedimentation.Sedimentation) as view:
        found = sedimentation.listed_alerts(view.of(sedimentation.Sedimentation), asked,
                                            settings_of(request).thresholds)
    today = city_today()  # a case is assigned today, whatever day the page shows
    found, paged = tables.paginated(listing, found, request.query_params, request.url.path)
    return page(request, "alerts.html", as_of=asked["as_of"], form=tables.form(listing, asked, lang),
                table=tables.table(listing, found, lang, asked["as_of"], paged=paged),
                actions=[alert_action(alert, who, today) for alert in found],
                export=tables.link("/v1/alerts", asked, format="xlsx"))


@router.get("/projects/{code}")
def project(request: Request, code: str) -> HTMLResponse:
    signed_in(request)
    ledger, settings, lang = request.app.state.ledger, settings_of(request), language(request)
    if not reference.is_project_code(code):
        return page(request, "missing.html", status_code=404, what=code)
    as_of = day(request, "as_of", None)
    state = ledger.project(code, as_of)
    if state is None:
        return page(request, "missing.html", status_code=404, what=code)
    trail = [event_json(item) for item in ledger.history(code)]
    since, until = day(request, "from", None), day(request, "to", None)
    changes = None
    on = as_of or city_today()  # its alerts and cases as of the page's day
    alerts: list[dict[str, Any]] | None = None  # None: the read models cannot say (the page says so)
    cases: list[dict[str, Any]] = []
    try:
        with read(request, sedimentation.Sedimentation, supervision.Supervision) as view:
            tables = view.of(sedimentation.Sedimentation)
            alerts = finding.project_alerts(tables, code, on, settings.thresholds)
            cases = finding.project_cases(view.of(supervision.Supervision), code, on, settings.thresholds)
    except (NotBuilt, ProblemError):  # a store without read models, or one being built: the ledger's own facts
        cases = [{**c, "status": "closed" if c["closed_on"] else "open", "overdue": False}
                 for c in sorted(state.cases.values(), key=lambda c: (c["assigned_on"], c["case_id"]))]
    if since and until and since < until:
        with read(request, sedimentation.Sedimentation) as view:
            facts = sedimentation.load_facts(view.db, view.tables(sedimentation.Sedimentation), codes=[code])
        changes = compare(ledger, facts[0] if facts else None, code, since, until, settings)
    shown = project_json(state, as_of)
    grants = [{**g, "factor": factor, "amount": finding.quantity(factor, g["quantity"], lang),
               "detail": finding.grant_detail(factor, g, lang)} for factor, held in shown["factors"].items() for g in held]
    totals = [(factor, finding.quantity(factor, total, lang)) for factor, total in shown["factor_totals"].items()]
    return page(request, "project.html", code=code, as_of=as_of, on=on, state=shown, trail=trail, since=since,
                until=until, changes=changes, cases=cases, open_cases=finding.open_cases(cases), alerts=alerts,
                grants=grants, totals=totals)


def compare(ledger: Any, facts: Any, code: str, since: date, until: date, settings: Settings) -> dict[str, Any]:
    """What changed between the end of `since` and the end of `until`: the question an inspection asks."""
    before, after = ledger.project(code, since), ledger.project(code, until)
    earlier = before.grants if before is not None else {}
    granted = [g for g in after.grants.values() if g.grant_id not in earlier] if after else []
    reclaimed = [g for g in after.grants.values() if g.reclaimed_on is not None and (
        g.grant_id not in earlier or earlier[g.grant_id].reclaimed_on is None)] if after else []
    then = {a.key: a for a in evaluate(facts, since, settings.thresholds)} if facts else {}
    now = {a.key: a for a in evaluate(facts, until, settings.thresholds)} if facts else {}
    return {"granted": granted, "reclaimed": reclaimed,
            "stage": (before.stage if before else None, after.stage if after else None),
            "raised": [now[k] for k in now if k not in then],
            "cleared": [then[k] for k in then if k not in now],
            "changed": [(then[k], now[k]) for k in now if k in then and then[k].level != now[k].level]}


@router.get("/supervision")
def supervision_page(request: Request) -> HTMLResponse:
    """督办: the cases as of a day (open, overdue, closed), by district and department, each linked to its page."""
    signed_in(request)
    listing, lang = supervision.LISTING, language(request)
    asked = listing.parsed(request.query_params)
    with read(request, supervision.Supervision) as view:
        found = supervision.listed(view.of(supervision.Supervision), asked, settings_of(request).thresholds)
    shown, paged = tables.paginated(listing, found, request.query_params, request.url.path)
    return page(request, "supervision.html", as_of=asked["as_of"], form=tables.form(listing, asked, lang),
                table=tables.table(listing, shown, lang, asked["as_of"], paged=paged),
                export=tables.link("/v1/supervision", asked, format="xlsx"),
                by_district=case_counts(found, "district"), by_department=case_counts(found, "responsible"))


def case_counts(rows: list[dict[str, Any]], key: str) -> list[tuple[str, dict[str, int]]]:
    """Cases per district (or department): open (not closed), of them overdue, and closed."""
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        tally = counts.setdefault(row[key], {"open": 0, "overdue": 0, "closed": 0})
        tally["closed" if row["status"] == "closed" else "open"] += 1
        tally["overdue"] += int(row["overdue"])
    return sorted(counts.items())


@router.get("/supervision/{case_id}")
def case_page(request: Request, case_id: str) -> HTMLResponse:
    """One case: its facts as of a day (default today) and its timeline, 交办 → 反馈 → 销号."""
    signed_in(request)
    as_of = day(request, "as_of", city_today()) or city_today()
    with read(request, supervision.Supervision) as view:
        found = supervision.case_of(view.of(supervision.Supervision), case_id, as_of, settings_of(request).thresholds)
    if found is None:
        return page(request, "missing.html", status_code=404, what=case_id)
    return page(request, "case.html", case=found, as_of=as_of)


@router.get("/ledger")
def ledger_page(request: Request) -> HTMLResponse:
    signed_in(request)
    listing, lang = factor_ledger.LISTING, language(request)
    parsed = listing.parsed(request.query_params)
    asked = {**parsed, "year": parsed["year"] or city_today().year}  # the page shows a year: this one by default
    with read(request, factor_ledger.FactorLedger, sedimentation.Sedimentation) as view:
        rows = factor_ledger.ledger_on(view.of(factor_ledger.FactorLedger), view.of(sedimentation.Sedimentation), asked,
                                       settings_of(request).thresholds)
    rows, paged = tables.paginated(listing, rows, request.query_params, request.url.path)
    return page(request, "ledger.html", year=asked["year"], form=tables.form(listing, asked, lang),
                table=tables.table(listing, rows, lang, paged=paged),
                export=tables.link("/v1/ledger", asked, format="xlsx"))


@router.get("/rankings")
def rankings(request: Request) -> HTMLResponse:
    signed_in(request)
    settings = settings_of(request)
    as_of, year = as_of_and_year(request)
    factor = choice(request, "factor", ("land", "energy", "special_bond")) or "land"
    total = amount(request, "total")
    with read(request, sedimentation.Sedimentation) as view:
        indexed = view.of(sedimentation.Sedimentation)
        ranking = sedimentation.ranking(indexed, year, as_of, settings.thresholds)
        # The API's advice, weighing how each district uses that factor (v1.2).
        advice = sedimentation.advice(indexed, year, factor, total, as_of, settings.thresholds) if total else []
    return page(request, "rankings.html", as_of=as_of, year=year, ranking=ranking, factor=factor, total=total,
                advice=advice, export=export("/v1/rankings/districts", format="xlsx", year=year,
                                             as_of=as_of.isoformat()))


@router.get("/warnings")
def warnings_page(request: Request) -> HTMLResponse:
    signed_in(request)
    listing, lang = warnings.LISTING, language(request)
    assert listing.paging is not None
    asked, order = listing.parsed(request.query_params), listing.ordering(request.query_params)
    with read(request, warnings.Warnings) as view:
        found = warnings.listed(view.of(warnings.Warnings), asked, 0, order.size, order)
        count = warnings.count(view.of(warnings.Warnings), asked)
    paged = tables.Paged(order, count, request.url.path, request.query_params)
    return page(request, "warnings.html", form=tables.form(listing, asked, lang),
                table=tables.table(listing, found, lang, paged=paged),
                export=tables.link("/v1/warnings", asked, format="xlsx", limit=listing.paging.most))


@router.get("/audit")
def audit_page(request: Request) -> HTMLResponse:
    signed_in(request)
    listing, lang = audit.AUDIT, language(request)
    assert listing.paging is not None
    asked, order = listing.parsed(request.query_params), listing.ordering(request.query_params)
    with read(request, audit.AuditTrail) as view:
        found = audit.searched(view.of(audit.AuditTrail), asked, 0, order.size, order)
        count = audit.count(view.of(audit.AuditTrail), asked)
    paged = tables.Paged(order, count, request.url.path, request.query_params)
    return page(request, "audit.html", form=tables.form(listing, asked, lang),
                table=tables.table(listing, finding.audit_rows(found, lang), lang, paged=paged),
                export=tables.link("/v1/audit", asked, format="xlsx", limit=listing.paging.most))


@router.get("/rejections")
def rejections_page(request: Request) -> HTMLResponse:
    who = signed_in(request)
    position = whole_number(request, "after", LAST_POSITION) or 0
    listed = request.app.state.ledger.rejections(position, 100, sent_by=who if who.role == "portal" else None)
    rejections = [rejection_json(i) for i in listed.items]
    codes = {code for r in rejections if (code := finding.rejected_project(r))}
    try:
        with read(request, directory.Directory) as view:
            names = directory.names(view.of(directory.Directory), codes)
    except (NotBuilt, ProblemError):  # a store without read models, or one being built: codes without names
        names = {}
    lang = language(request)
    return page(request, "rejections.html", rejections=[(r, finding.rejected_fields(r, names, lang))
                                                        for r in rejections],
                next_after=listed.next_after, after=position, export=export("/v1/rejections", format="xlsx"))


@router.get("/search")
def search(request: Request) -> HTMLResponse:
    """查找项目: projects by a part of their name, owner (项目单位) or code, a page at a time."""
    signed_in(request)
    asked = finding.asked_for(request.query_params.get("q"), request.query_params.get("page"))
    if asked.refused:
        return page(request, "search.html", status_code=400, asked=asked, found=None)
    with read(request, directory.Directory) as view:
        found = directory.search(view.of(directory.Directory), asked.query, asked.page)
    return page(request, "search.html", asked=asked, found=found,
                previous=tables.link("/console/search", {"q": asked.query}, page=found.page - 1)
                if found.page > 1 else None,
                following=tables.link("/console/search", {"q": asked.query}, page=found.page + 1)
                if found.page < found.pages else None)


@router.get("/health")
def health(request: Request) -> HTMLResponse:
    signed_in(request)
    ledger, settings = request.app.state.ledger, settings_of(request)
    head = ledger.head()
    recorded = ledger.tracked_positions()
    try:
        with read(request, parked.Parked) as view:
            waiting = parked.count(view.db, view.tables(parked.Parked))
    except NotBuilt:
        waiting = None
    try:
        with read(request, chain.HashChain) as view:
            checkpoint = chain.last_checkpoint(view.db, view.tables(chain.HashChain))
            verified = chain.last_verified(view.db)
    except NotBuilt:
        checkpoint = verified = None
    return page(request, "health.html", head=head, report=request.app.state.read_models.status(ledger),
                tracked=sorted(recorded.items()), consumer_lag=sorted(kafka.portal_lag(settings, recorded).items()),
                waiting=waiting, checkpoint=checkpoint, verified=verified, notified=notifications.health(request))


def login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/console/login?next={quote(target)}", status_code=303)
