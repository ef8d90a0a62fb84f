"""The authorisation matrix: every department × every message type × every token role.

The expected senders below are written out from the contract's tables (`docs/contract.md`, v1.1
"Who", and v1.2 "Holes closed" for who admits to which library), not read from the code's tables,
so the two are checked against each other. A sender the
contract allows has its message accepted; any other is `forbidden`. A portal token may speak only
as its own department, a supervisor's token never submits, an admin's may speak as anyone.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from domain import reference
from domain.commands import COMMANDS
from infra.settings import Settings
from infra.tokens import Principal
from service.bootstrap import build_ledger
from service.ledger import Ledger
from tests.conftest import LOCAL
from tests.portal import AT, CODE, DISTRICT, EXAMPLES, NEW_CODE, OWNER, REGISTRATION, SETUP, msg

DEPARTMENTS = [*reference.DEPARTMENTS, *(reference.district_portal(d) for d in reference.DISTRICTS)]

#: The contract's "who may send it", bound to the project set up below.
CONTRACT: dict[str, set[str]] = {
    "project.registered": {"development_reform", DISTRICT},
    "plan.set": {"development_reform"},
    "project.admitted": {"development_reform"},  # to `rolling3y`, the example's library (see LIBRARIES)
    "project.released": {"development_reform"},  # from `annual`
    "stage.advanced": {"development_reform"},
    "funds.allocated": {"development_reform", "finance"},
    "bond.evaluated": {"finance"},
    "land.supplied": {"natural_resources"},
    "energy.granted": {"development_reform"},
    "emission.reduction_registered": {"ecology_environment"},
    "emission.advanced": {"ecology_environment"},
    "emission.reduction_completed": {"ecology_environment"},
    "data.provided": {"big_data"},
    "utility.connected": {"housing_construction", "water", "power_supply", "gas"},
    "talent.assigned": {"organisation", "human_resources"},
    "issue.escalated": set(DEPARTMENTS),
    "issue.resolved": {"development_reform", "natural_resources"},  # the assignee, below
    "construction.started": {"development_reform", DISTRICT},
    "investment.reported": {"development_reform", "statistics"},
    "project.completed": {"development_reform"},
    "project.cancelled": {"development_reform"},
    "factor.reclaimed": {"natural_resources"},  # the unit that made the grant, below
    "exception.approved": {"development_reform"},
    "investment.pitched": {"cooperation_exchange", "investment_promotion"},
    "quota.set": {"development_reform"},  # an energy quota; land quotas are natural_resources'
    # v1.2
    "funds.disbursed": {"finance", "development_reform"},
    "land.approved": {"natural_resources"},
    "project.amended": {"development_reform"},
    "supervision.assigned": {"development_reform", "supervision_office"},
    "supervision.responded": {"natural_resources"},  # the case's responsible department, below
    "supervision.closed": {"development_reform"},  # the department that assigned the case
    "allocation.adopted": {"natural_resources"},  # of land; energy is development_reform's, bonds finance's
}

#: v1.2: who may admit a project to each library and release it (the contract's table, written out).
LIBRARIES: dict[str, set[str]] = {
    "municipal": {"development_reform", OWNER, DISTRICT},
    "fyp14": {"development_reform"},
    "rolling3y": {"development_reform"},
    "annual": {"development_reform"},
    "central_budget": {"development_reform"},
    "enterprise_bond": {"development_reform"},
    "municipal_budget": {"development_reform", "finance"},
    "special_bond": {"development_reform", "finance"},
    "general_bond": {"development_reform", "finance"},
    "investment_attraction": {"cooperation_exchange", "investment_promotion", "development_reform"},
    "green_fund": {"finance", "financial_affairs", "development_reform"},
}

NOT_ABOUT_A_PROJECT = {t for t, c in COMMANDS.items() if not c.NEEDS_PROJECT}


def attempt(type_: str, department: str, n: int) -> dict[str, Any]:
    payload, _ = EXAMPLES[type_]
    code = None if type_ in NOT_ABOUT_A_PROJECT else NEW_CODE if type_ == "project.registered" else CODE
    return msg(type_, payload, code=code, dept=department, at=AT, mid=f"matrix-{type_}-{n}")


def fresh(type_: str) -> Ledger:
    ledger = build_ledger(Settings(store="memory://"))
    results = ledger.submit([*SETUP, *EXAMPLES[type_][1]], principal=Principal("setup", "admin"), channel="test")
    assert all(r.status == "accepted" for r in results), results
    return ledger


def portal(department: str) -> Principal:
    return Principal(f"{department}-portal", "portal", department)


def test_the_matrix_covers_every_message_type() -> None:
    assert set(CONTRACT) == set(EXAMPLES) == set(COMMANDS)


@pytest.mark.parametrize("type_", sorted(COMMANDS))
def test_exactly_the_contracts_senders_may_send(type_: str) -> None:
    shared = fresh(type_)  # refusals change nothing, so they can share one ledger
    wrong: list[str] = []
    for n, department in enumerate(DEPARTMENTS):
        allowed = department in CONTRACT[type_]
        cases = [(portal(department), department), (Principal("ops", "admin"), department),
                 (Principal("watcher", "supervisor"), department),
                 # a portal speaking for another department
                 (portal(department), "finance" if department == "development_reform" else "development_reform")]
        for k, (principal, claimed) in enumerate(cases):
            expected = allowed and principal.role != "supervisor" and (
                principal.role == "admin" or claimed == principal.department)
            ledger = fresh(type_) if expected else shared
            (result,) = ledger.submit([attempt(type_, claimed, 4 * n + k)], principal=principal, channel="test")
            outcome = "accepted" if result.status == "accepted" else result.code
            if outcome != ("accepted" if expected else "forbidden"):
                wrong.append(f"{principal.role} token of {principal.department or principal.name} as {claimed}: "
                             f"{outcome} ({result.reason})")
    assert not wrong, "\n".join(wrong)


def test_land_quotas_are_natural_resources_and_energy_quotas_development_reform() -> None:
    ledger = fresh("quota.set")
    admin = Principal("ops", "admin")
    for factor, owner in (("land", "natural_resources"), ("energy", "development_reform"),
                          ("special_bond", "finance")):
        for n, department in enumerate(DEPARTMENTS):
            body = msg("quota.set", {"district": "620103", "year": 2022, "factor": factor, "amount": 5}, code=None,
                       dept=department, at=AT, mid=f"quota-{factor}-{n}")
            (result,) = ledger.submit([body], principal=admin, channel="test")
            assert (result.status == "accepted") == (department == owner), (factor, department, result)


@pytest.mark.parametrize("token, expected", [
    ("dev-supervisor", None),  # a role that cannot submit at all: 403, nothing stored
    ("dev-finance", "forbidden"),  # a portal speaking for another department: a kept rejection
    ("dev-development_reform", "accepted"),
    ("dev-admin", "accepted"),
])
def test_over_http_a_role_that_cannot_submit_stores_nothing(store: str, token: str, expected: str | None) -> None:
    """Through `POST /v1/messages` (issue 19, item 7): a supervisor's 1,000 junk envelopes were 1,000
    `forbidden` rejections kept for ever; now the request is refused whole, before its body is read."""
    settings = Settings(store=store)
    ledger = build_ledger(settings)
    try:
        with TestClient(create_app(ledger, settings), headers={"Authorization": f"Bearer {token}"},
                        base_url=LOCAL) as client:
            before = ledger.head()
            junk = client.post("/v1/messages", json=[{"junk": n} for n in range(1000)])
            one = client.post("/v1/messages", json=msg("project.registered", REGISTRATION, code=NEW_CODE, at=AT,
                                                       mid=f"http-{token}"))
            if expected is None:
                for refused in (junk, one):
                    assert refused.status_code == 403, refused.text[:300]
                    assert refused.headers["content-type"] == "application/problem+json"
                    assert refused.json()["code"] == "forbidden"
                assert ledger.head() == before
                assert ledger.rejections().items == []
            else:
                assert junk.status_code == 200 and one.status_code == 200, (junk.text, one.text)
                (result,) = one.json()["results"]
                assert (result["status"] if result["status"] == "accepted" else result["code"]) == expected
                assert ledger.head() > before  # portals and admins keep going through the pipeline
    finally:
        ledger.close()


@pytest.mark.parametrize("factor, allocator", [("land", "natural_resources"), ("energy", "development_reform"),
                                               ("special_bond", "finance")])
def test_each_factor_is_allocated_by_its_own_unit(factor: str, allocator: str) -> None:
    """`allocation.adopted` (v1.2): land by natural resources, energy by development and reform, special
    bonds by finance; any other sender of that factor's allocation is `forbidden`."""
    payload = {**EXAMPLES["allocation.adopted"][0], "factor": factor}
    ledger = build_ledger(Settings(store="memory://"))
    wrong = []
    for n, department in enumerate(DEPARTMENTS):
        (result,) = ledger.submit([msg("allocation.adopted", {**payload, "allocation_id": f"AL-{n}"}, code=None,
                                       dept=department, at=AT)], principal=portal(department), channel="test")
        outcome = "accepted" if result.status == "accepted" else result.code
        if outcome != ("accepted" if department == allocator else "forbidden"):
            wrong.append(f"{department}: {outcome}")
    assert not wrong, wrong


def test_the_library_table_covers_every_library() -> None:
    assert set(LIBRARIES) == set(reference.LIBRARIES)


@pytest.mark.parametrize("library", sorted(reference.LIBRARIES))
def test_exactly_the_librarys_keepers_admit_to_it_and_release_from_it(library: str) -> None:
    """Every department and district portal, admitting CODE (owned by `industry_it`, in 620102) to
    `library` and then releasing it: accepted exactly for the contract's senders of that library."""
    shared = build_ledger(Settings(store="memory://"))
    assert all(r.status == "accepted" for r in shared.submit(SETUP, principal=Principal("setup", "admin"), channel="test"))
    year = {"year": 2022} if library == "annual" else {}  # SETUP admitted it to annual for 2021
    wrong: list[str] = []
    for n, department in enumerate(DEPARTMENTS):
        expected = "accepted" if department in LIBRARIES[library] else "forbidden"
        ledger = fresh("project.admitted") if expected == "accepted" else shared
        if library == "municipal" and expected == "accepted":  # SETUP admitted it there: release first
            assert ledger.submit([msg("project.released", {"library": library, "reason": "重新入库"}, at=AT,
                                      mid=f"out-{n}")], principal=portal("development_reform"),
                                 channel="test")[0].status == "accepted"
        for k, (type_, payload) in enumerate((("project.admitted", {"library": library, **year}),
                                              ("project.released", {"library": library, "reason": "调出"}))):
            (result,) = ledger.submit([msg(type_, payload, dept=department, at=AT, mid=f"lib-{n}-{k}")],
                                      principal=portal(department), channel="test")
            outcome = "accepted" if result.status == "accepted" else result.code
            if outcome != expected:
                wrong.append(f"{department} {type_} {library}: {outcome} ({result.reason})")
    assert not wrong, "\n".join(wrong)
