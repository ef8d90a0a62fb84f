"""The holes contract v1.2 closes ("Holes closed"), each refused with its code; and what a store
holds from before stays as it is (replaying never checks a rule).

Who admits to which library is proved over every sender, library, owning department and district
(hypothesis), against the contract's table written out here, not read from the code.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from decimal import Decimal
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain import reference
from domain.envelope import parse_envelope
from domain.handlers import handle
from domain.policy import PolicySettings
from domain.project import Project
from domain.rejections import Rejection
from infra.settings import Settings
from infra.tokens import Principal
from service.bootstrap import build_ledger
from service.ledger import Ledger
from service.unit_of_work import BatchUnitOfWork
from tests.conftest import submit
from tests.portal import CODE, admitted, energy_quota, land_quota, msg, register

SENDERS = [*reference.DEPARTMENTS, *(reference.district_portal(d) for d in reference.DISTRICTS)]
#: The contract's fixed senders per library (development_reform keeps every library; the municipal
#: library also takes the project's horizontal owner and its district's portal).
FIXED: dict[str, set[str]] = {
    "municipal_budget": {"finance"}, "special_bond": {"finance"}, "general_bond": {"finance"},
    "investment_attraction": {"cooperation_exchange", "investment_promotion"},
    "green_fund": {"finance", "financial_affairs"},
}


def may_keep(sender: str, library: str, owner: str, district: str) -> bool:
    if sender == "development_reform":
        return True
    if library == "municipal":
        return sender in (owner, reference.district_portal(district))
    return sender in FIXED.get(library, set())


def outcome(ledger: Ledger, body: dict[str, Any], principal: Principal | None = None) -> str:
    (result,) = submit(ledger, body, **({"principal": principal} if principal else {}))
    return "accepted" if result.status == "accepted" else str(result.code)


# --- who admits to which library ------------------------------------------------------------


@pytest.fixture(scope="module")
def shared() -> Iterator[Ledger]:
    ledger = build_ledger(Settings(store="memory://"))
    yield ledger
    ledger.close()


SERIALS = itertools.count(1)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(admitter=st.sampled_from(SENDERS), releaser=st.sampled_from(SENDERS),
       library=st.sampled_from(sorted(reference.LIBRARIES)), owner=st.sampled_from(sorted(reference.DEPARTMENTS)),
       district=st.sampled_from(sorted(reference.DISTRICTS)))
def test_a_library_admits_and_releases_only_by_its_keepers(shared: Ledger, admitter: str, releaser: str, library: str,
                                                           owner: str, district: str) -> None:
    code = f"2021-{district}-48-01-{next(SERIALS):06d}"
    assert outcome(shared, register(code, district=district, department=owner)) == "accepted"
    year = {"year": 2021} if library == "annual" else {}
    admit = msg("project.admitted", {"library": library, **year}, code=code, dept=admitter)
    # The sender's own portal token, as a portal would send it.
    portal = Principal(f"{admitter}-portal", "portal", admitter)
    assert outcome(shared, admit, portal) == ("accepted" if may_keep(admitter, library, owner, district) else "forbidden")
    if not may_keep(admitter, library, owner, district):
        assert outcome(shared, msg("project.admitted", {"library": library, **year}, code=code)) == "accepted"
    release = msg("project.released", {"library": library, "reason": "调出"}, code=code, dept=releaser)
    assert outcome(shared, release) == ("accepted" if may_keep(releaser, library, owner, district) else "forbidden")


def test_the_units_that_lead_a_library_now_admit_to_it(memory_ledger: Ledger) -> None:
    submit(memory_ledger, register())
    for library, department in (("special_bond", "finance"), ("investment_attraction", "cooperation_exchange"),
                                ("green_fund", "financial_affairs"), ("municipal", "district:620102")):
        assert outcome(memory_ledger, msg("project.admitted", {"library": library}, dept=department)) == "accepted"


@pytest.mark.parametrize("department,library", [
    ("district:620102", "annual"), ("district:620102", "special_bond"), ("industry_it", "central_budget"),
    ("industry_it", "annual"), ("district:620103", "municipal"), ("finance", "annual")])
def test_a_portal_or_owner_no_longer_admits_to_the_libraries_that_unlock_land_and_money(
        memory_ledger: Ledger, department: str, library: str) -> None:
    submit(memory_ledger, register())
    year = {"year": 2021} if library == "annual" else {}
    assert outcome(memory_ledger, msg("project.admitted", {"library": library, **year}, dept=department)) == "forbidden"


# --- land only within a land quota -------------------------------------------------------------


def land(area: float = 10, at: str = "2021-03-02T10:00:00+08:00") -> dict[str, Any]:
    return msg("land.supplied", {"parcel": "LZ-1", "area_mu": area, "method": "transfer"}, dept="natural_resources",
               at=at)


def test_land_without_a_land_quota_is_refused(memory_ledger: Ledger) -> None:
    submit(memory_ledger, *admitted(CODE, "annual"))
    assert outcome(memory_ledger, land(99_999)) == "quota_exceeded"
    # A quota of another year, or of another district, is not this one.
    submit(memory_ledger, land_quota(100, year=2022), land_quota(100, district="620103"))
    assert outcome(memory_ledger, land()) == "quota_exceeded"
    submit(memory_ledger, land_quota(100))
    assert outcome(memory_ledger, land()) == "accepted"
    assert outcome(memory_ledger, land(91)) == "quota_exceeded"


def test_land_counts_in_the_year_of_occurred_at(memory_ledger: Ledger) -> None:
    submit(memory_ledger, *admitted(CODE, "annual"), msg("project.admitted", {"library": "annual", "year": 2022}),
           land_quota(100, year=2022))
    assert outcome(memory_ledger, land()) == "quota_exceeded"
    assert outcome(memory_ledger, land(at="2022-01-05T10:00:00+08:00")) == "accepted"


def test_land_with_a_recorded_exception_needs_a_quota_too(memory_ledger: Ledger) -> None:
    submit(memory_ledger, *admitted(CODE), msg("exception.approved", {
        "rule": "not_in_annual_plan", "reference": "EX-1", "reason": "省重点项目"}))
    excepted = {**land(), "payload": {**land()["payload"], "exception": "EX-1"}}
    assert outcome(memory_ledger, excepted) == "quota_exceeded"
    submit(memory_ledger, land_quota(100))
    assert outcome(memory_ledger, {**excepted, "message_id": "land-again"}) == "accepted"


# --- completion only from construction ---------------------------------------------------------


@pytest.mark.parametrize("stages,expected", [
    ((), "stage_order"), (("generation",), "stage_order"), (("generation", "approval"), "stage_order"),
    (("generation", "approval", "construction"), "accepted"),
    (("generation", "approval", "construction", "completion"), "accepted"),
])
def test_a_started_project_completes_only_from_construction(memory_ledger: Ledger, stages: tuple[str, ...],
                                                            expected: str) -> None:
    submit(memory_ledger, *admitted(CODE), msg("construction.started", {"date": "2021-03-01"}),
           *(msg("stage.advanced", {"stage": s}) for s in stages))
    completed = msg("project.completed", {"date": "2021-12-01"}, at="2021-12-02T09:00:00+08:00")
    assert outcome(memory_ledger, completed) == expected


# --- the epidemic exemption within the 十三五 assessment ---------------------------------------


def exempt(year: int, code: str = CODE) -> dict[str, Any]:
    return msg("energy.granted", {"tce": 10, "year": year, "exempt": True}, code=code)


@pytest.mark.parametrize("year,expected", [(2019, "accepted"), (2020, "accepted"), (2021, "invalid"),
                                           (2035, "invalid")])
def test_energy_is_exempt_only_up_to_the_last_year_of_the_assessment(memory_ledger: Ledger, year: int,
                                                                     expected: str) -> None:
    submit(memory_ledger, *admitted(CODE, nature="epidemic_supplies"), energy_quota(100, year=year))
    assert outcome(memory_ledger, exempt(year)) == expected
    # Not exempt, the same grant draws on the quota as any other.
    plain = msg("energy.granted", {"tce": 10, "year": year})
    assert outcome(memory_ledger, plain) == "accepted"


def decide(ledger: Ledger, body: dict[str, Any], policy: PolicySettings) -> str:
    """One message through the domain's handler, on a unit of work that carries `policy`."""
    uow = BatchUnitOfWork(ledger.load_many, look_up_receipts=False, policy=policy)
    try:
        handle(parse_envelope(body, submitted_by="admin:test"), uow)
    except Rejection as rejection:
        return rejection.code
    return "accepted"


def test_the_last_year_of_the_exemption_is_the_deployments(memory_ledger: Ledger) -> None:
    submit(memory_ledger, *admitted(CODE))
    assert decide(memory_ledger, exempt(2021), PolicySettings()) == "invalid"
    assert decide(memory_ledger, exempt(2021), PolicySettings(exemption_last_year=2021)) == "accepted"
    assert decide(memory_ledger, exempt(2020), PolicySettings(exemption_last_year=2019)) == "invalid"


@pytest.mark.parametrize("variable,value,fragment", [
    ("YAOSU_EXEMPTION_LAST_YEAR", "2020.5", "must be a number"),
    ("YAOSU_EXEMPTION_LAST_YEAR", "1800", "from 1990 to 2100"),
    ("YAOSU_REPORT_DUE_DAYS", "-1", "from 0 to 366"),
    ("YAOSU_REPORT_DUE_DAYS", "ten", "must be a number"),
    ("YAOSU_KAFKA_REPLICATION", "0", "from 1 to 7"),
    ("YAOSU_KAFKA_REPLICATION", "three", "must be a number"),
])
def test_a_bad_setting_is_one_clear_error(variable: str, value: str, fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        Settings.from_env({variable: value})
    assert variable in str(caught.value) and fragment in str(caught.value)


def test_the_settings_default_to_the_contracts() -> None:
    assert Settings.from_env({}).policy.exemption_last_year == 2020
    assert Settings.from_env({}).thresholds.report_due_days == 10
    chosen = Settings.from_env({"YAOSU_EXEMPTION_LAST_YEAR": "2022", "YAOSU_REPORT_DUE_DAYS": "15"})
    assert (chosen.policy.exemption_last_year, chosen.thresholds.report_due_days) == (2022, 15)


# --- what a store holds stays as it is ----------------------------------------------------------


def test_events_stored_under_the_old_rules_replay_as_they_were(memory_ledger: Ledger) -> None:
    """A store written before v1.2 holds admissions by district portals, land with no quota, completions
    from approval and exemptions after 2020: replaying them checks no rule, so they read as before."""
    submit(memory_ledger, register())
    old = memory_ledger.project(CODE)
    assert old is not None
    first = next(iter(memory_ledger.history(CODE))).event.audit  # type: ignore[attr-defined]
    audit = [replace(first, message_id=f"v1.1-{n}") for n in range(5)]
    old.admit("annual", 2021, None, replace(audit[0], department="district:620102"))  # allowed in v1.1
    old.supply_land("LZ-9", Decimal(99_999), "transfer", None, audit[1], None, None)  # with no land quota set
    old.grant_energy(Decimal(10), 2022, True, audit[2])  # exempt after the assessment
    old.start_construction(first.business_date, audit[3])
    old.complete(first.business_date, audit[4])  # from planning
    memory_ledger.save(old)
    replayed: Project = memory_ledger.repository.get(old.id)
    assert replayed.in_library("annual", 2021) and replayed.completed_on is not None
    assert {g.factor for g in replayed.grants.values()} == {"land", "energy"}


def test_the_exemptions_last_year_is_the_deployments_setting() -> None:
    """`YAOSU_EXEMPTION_LAST_YEAR` reaches the rule through the composition root."""
    ledger = build_ledger(Settings.from_env({"YAOSU_STORE": "memory://", "YAOSU_EXEMPTION_LAST_YEAR": "2021"}))
    try:
        setup = ledger.submit([*admitted(CODE), energy_quota(100, year=2021)], principal=Principal("t", "admin"),
                              channel="test")
        assert {r.status for r in setup} == {"accepted"}
        results = ledger.submit([msg("energy.granted", {"tce": 5, "year": year, "exempt": True}, mid=f"exempt-{year}")
                                 for year in (2021, 2022)], principal=Principal("t", "admin"), channel="test")
        assert [(r.status, r.code) for r in results] == [("accepted", None), ("rejected", "invalid")]
    finally:
        ledger.close()
