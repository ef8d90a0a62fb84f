"""A store in which every factor-level rule of v1.2 fires: funds allocated and not paid out, land
supplied and not built on (one plot out of a batch approval), energy granted and lying idle, an
approval not all supplied, plans amended, supervision cases assigned, answered late, closed.

Registrations and grants go through the pipeline as messages; what the v1.2 messages do (payments,
amendments, cases, approvals and draws on them) is written as the aggregates' own events, with the
audit a message would give them, so the read side is tested whatever the write side's handlers check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from domain.approval import LandApproval, approval_id_of
from domain.audit import Audit
from domain.project import project_id
from domain.reference import CITY_TZ
from service.ledger import Ledger
from tests.conftest import submit
from tests.portal import energy_quota, land_quota, msg, register

D = date.fromisoformat
DISTRICTS = ("620102", "620103", "620104")
FIRST, LAST = date(2021, 1, 1), date(2024, 3, 31)  # every rule's red comes within these days


def code_of(n: int) -> str:
    return f"2021-{DISTRICTS[n % 3]}-48-01-{n + 1:06d}"


def at(day: date) -> str:
    return datetime.combine(day, time(9), tzinfo=CITY_TZ).isoformat()


def audit(kind: str, subject: str, day: str, department: str, message_id: str) -> Audit:
    return Audit(message_id, kind, datetime.combine(D(day), time(9), tzinfo=CITY_TZ), "story", department, "story",
                 "token:story", subject)


@dataclass(frozen=True)
class Story:
    codes: tuple[str, ...]
    approvals: tuple[str, ...]


def factor_story(ledger: Ledger, projects: int = 9) -> Story:
    """Load the story into `ledger`; each project gets funds, land and energy, and a fate of its own."""
    codes = tuple(code_of(n) for n in range(projects))
    messages: list[dict[str, Any]] = [*(energy_quota(100000, d) for d in DISTRICTS),
                                      *(land_quota(100000, d) for d in DISTRICTS)]
    for n, code in enumerate(codes):
        start = date(2021, 3 + n % 4, 1)
        messages += [register(code, district=code.split("-")[1], planned_start=start.isoformat()),
                     msg("project.admitted", {"library": "municipal"}, code=code, at="2021-01-12T09:00:00+08:00"),
                     msg("project.admitted", {"library": "annual", "year": 2021}, code=code,
                         at="2021-01-12T09:00:00+08:00"),
                     msg("plan.set", {"year": 2021, "planned_investment": 1000 + 100 * n}, code=code,
                         at="2021-01-15T09:00:00+08:00"),
                     msg("funds.allocated", {"source": "own_funds", "amount": 400 + 10 * n}, code=code, dept="finance",
                         at=at(date(2021, 2, 1 + n)), mid=f"funds-{n}"),
                     msg("land.supplied", {"parcel": f"P-{n}", "area_mu": 20 + n, "method": "transfer"}, code=code,
                         dept="natural_resources", at=at(date(2021, 2, 10 + n)), mid=f"land-{n}"),
                     msg("energy.granted", {"tce": 300 + n, "year": 2021}, code=code, at=at(date(2021, 3, 1 + n)),
                         mid=f"energy-{n}")]
        messages += [msg("investment.reported", {"period": f"2021-{m:02d}", "completed": 20 + 15 * (n % 3)},
                         code=code, at=at(date(2021, m + 1, 5))) for m in range(1, 7)]
        if n % 3 == 1:  # built on in time: its land and energy are used
            messages.append(msg("construction.started", {"date": f"2021-0{4 + n % 4}-15"}, code=code,
                                at=at(date(2021, 4 + n % 4, 16))))
        if n % 4 == 2:  # land taken back before it lay idle long
            messages.append(msg("factor.reclaimed", {"factor": "land", "grant_id": f"land-{n}", "reason": "收回"},
                                code=code, dept="natural_resources", at=at(date(2022, 1, 20))))
    results = submit(ledger, *messages)
    refused = [r for r in results if r.status != "accepted"]
    assert not refused, refused

    for n, code in enumerate(codes):
        project = ledger.get(project_id(code))
        amount = Decimal(400 + 10 * n)
        if n % 3 == 0:  # paid out in part, late: idle, then no more
            project.disburse_funds(f"funds-{n}", amount * Decimal("0.3"), D("2021-05-10"),
                                   audit("funds.disbursed", code, "2021-05-11", "finance", f"pay-{n}-1"))
            project.disburse_funds(f"funds-{n}", amount * Decimal("0.3"), D("2021-09-01"),
                                   audit("funds.disbursed", code, "2021-09-02", "finance", f"pay-{n}-2"))
        if n % 3 == 1:  # paid out in time
            project.disburse_funds(f"funds-{n}", amount, D("2021-03-01"),
                                   audit("funds.disbursed", code, "2021-03-01", "finance", f"pay-{n}"))
        if n % 2 == 0:  # special-bond money, never paid out
            project.allocate_funds("special_bond", Decimal(200), None,
                                   audit("funds.allocated", code, "2021-06-01", "finance", f"bond-{n}"))
        if n % 4 == 3:  # the start postponed, after an alert
            project.amend(D("2021-12-01"), None, None, "调整开工计划",
                          audit("project.amended", code, "2021-07-01", "development_reform", f"amend-{n}"))
        # cases: assigned about land lying idle; answered (late, or not at all); closed (late, or never)
        if n % 3 == 0:
            project.assign_supervision(f"DB-{n}-1", "land_idle", f"land-{n}", "natural_resources", D("2021-09-30"),
                                       "督促动工", audit("supervision.assigned", code, "2021-09-01",
                                                        "supervision_office", f"case-{n}-1"))
            project.respond_supervision(f"DB-{n}-1", "约谈企业", D("2021-12-31"),
                                        audit("supervision.responded", code, "2021-10-10", "natural_resources",
                                              f"answer-{n}-1"))
            if n % 2 == 0:
                project.close_supervision(f"DB-{n}-1", "waived", "另行处理",
                                          audit("supervision.closed", code, "2021-10-20" if n == 6 else "2021-11-20",
                                                "supervision_office", f"close-{n}-1"))
        if n % 3 == 2:
            project.assign_supervision(f"DB-{n}-2", "funds_idle", f"funds-{n}", "finance", D("2021-07-15"),
                                       "督促拨付", audit("supervision.assigned", code, "2021-07-01",
                                                        "development_reform", f"case-{n}-2"))
        ledger.save(project)

    approvals = []
    for n, district in enumerate(DISTRICTS):
        approval_id = f"PC-2021-{n + 1:03d}"
        approval = LandApproval(approval_id=approval_id, district=district, area_mu=Decimal(100),
                                date=date(2021, 1 + n, 5),
                                audit=audit("land.approved", approval_id, f"2021-0{1 + n}-05", "natural_resources",
                                            f"approval-{n}"))
        approvals.append(approval_id)
        if n < 2:  # supplied out of it: a part, then (for the first) all the rest, late
            code = codes[n]
            draws = [(Decimal(40), "2021-05-20", None)] + ([(Decimal(60), "2022-06-01", "2022-09-30")] if n == 0 else [])
            project = ledger.get(project_id(code))
            for k, (area, day, start_by) in enumerate(draws):
                grant_id = f"drawn-{n}-{k}"
                project.supply_land(f"PD-{n}-{k}", area, "transfer", None,
                                    audit("land.supplied", code, day, "natural_resources", grant_id),
                                    approval_id, start_by and D(start_by))
                approval.draw(grant_id, code, area, audit("land.supplied", code, day, "natural_resources", grant_id))
            ledger.save(project)
        ledger.save(approval)
    assert all(ledger.get(approval_id_of(a)) is not None for a in approvals)
    return Story(codes, tuple(approvals))
