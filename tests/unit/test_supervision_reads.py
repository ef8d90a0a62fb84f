"""The pure parts of the supervision reads: a case's status on a day (`projections.supervision.status_on`)
and the ledger's idle quantities from the alerts of a day (`projections.factor_ledger.idle_cells`)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from domain.supervision import Alert, Thresholds
from domain.texts import Detail
from projections.factor_ledger import idle_cells, idle_grant_ids
from projections.supervision import row_on, status_on

ASSIGNED = date(2021, 3, 1)

CLOSE_DAYS = Thresholds().case_close_days


def case(due: date, responses: tuple[date, ...] = (), closed_on: date | None = None) -> dict[str, Any]:
    return {"case_id": "DB-1", "project_code": "P", "project_name": "n", "district": "620102", "rule": "not_started",
            "grant_id": None, "responsible": "finance", "assigned_by": "supervision_office", "assigned_on": ASSIGNED,
            "due_date": due, "response_days": ",".join(d.isoformat() for d in responses), "closed_on": closed_on,
            "outcome": "rectified" if closed_on else None}


def test_the_statuses_as_the_listing_describes_them() -> None:
    due = date(2021, 3, 15)
    assert status_on(case(due), date(2021, 2, 28)) == set()  # not assigned yet
    assert status_on(case(due), due) == {"open"}
    assert status_on(case(due), due + timedelta(days=1)) == {"open", "overdue"}
    answered = case(due, (date(2021, 3, 10),))
    assert status_on(answered, date(2021, 3, 9)) == {"open"}
    assert status_on(answered, date(2021, 3, 10)) == {"responded"}
    assert status_on(answered, due + timedelta(days=CLOSE_DAYS)) == {"responded"}
    assert status_on(answered, due + timedelta(days=CLOSE_DAYS + 1)) == {"responded", "overdue"}
    assert status_on(answered, due + timedelta(days=5), Thresholds(case_close_days=3)) == {"responded", "overdue"}
    late = case(due, (date(2021, 3, 20),))
    assert status_on(late, date(2021, 3, 19)) == {"open", "overdue"}
    assert status_on(late, date(2021, 3, 20)) == {"responded"}  # answered late: no longer overdue
    closed = case(due, (date(2021, 3, 20),), closed_on=date(2021, 4, 1))
    assert status_on(closed, date(2021, 4, 1)) == {"closed"}
    row = row_on(closed, date(2021, 5, 1))
    assert (row["days_open"], row["outcome"], row["responses"], row["status"], row["overdue"]) == (
        31, "rectified", 1, "closed", False)
    before = row_on(closed, date(2021, 3, 12))
    assert (before["days_open"], before["outcome"], before["closed_on"], before["responses"]) == (11, None, None, 0)


DAYS = st.integers(min_value=0, max_value=200).map(lambda n: ASSIGNED + timedelta(days=n))


@given(due=DAYS, responses=st.lists(DAYS, max_size=4).map(lambda ds: tuple(sorted(ds))),
       closed_on=st.none() | DAYS, day=DAYS, later=st.integers(min_value=0, max_value=100))
def test_a_status_is_one_of_open_responded_closed_and_overdue_lasts_until_closed(
        due: date, responses: tuple[date, ...], closed_on: date | None, day: date, later: int) -> None:
    found = case(due, responses, closed_on)
    status = status_on(found, day)
    assert len(status & {"open", "responded", "closed"}) == 1
    assert not ({"closed", "overdue"} <= status)
    answered = any(d <= day for d in responses)
    if "closed" not in status:
        # 督办逾期 as the alert reads it: unanswered past the due date, or unclosed long after it.
        assert ("overdue" in status) == ((day > due and not answered) or day > due + timedelta(days=CLOSE_DAYS))
        after = status_on(found, day + timedelta(days=later))
        if day > due + timedelta(days=CLOSE_DAYS):
            assert "overdue" in after or "closed" in after


def alert(rule: str, grant_id: str | None, code: str = "P") -> Alert:
    return Alert(code, rule, "red", date(2021, 1, 1), "620102", Detail("x", {}), grant_id=grant_id)


def test_the_idle_quantity_sums_the_grants_factor_level_alerts_name_each_once() -> None:
    grants = {"f1": ("620102", 2021, "funds", Decimal(500)), "f2": ("620102", 2021, "funds", Decimal("20.5")),
              "l1": ("620102", 2021, "land", Decimal(30)), "e1": ("620103", 2022, "energy", Decimal(1000))}
    alerts = [alert("funds_idle", "f1"), alert("funds_idle", "f2"), alert("land_idle", "l1"),
              alert("supervision_overdue", "l1"),  # not a factor-level rule, and l1 is counted once anyway
              alert("energy_idle", "e1"), alert("energy_idle", "e1", code="Q"),
              alert("not_started", None), alert("funds_idle", "f9")]  # f9: not among the cells asked for
    assert idle_grant_ids(alerts) == {"f1", "f2", "l1", "e1", "f9"}
    assert idle_cells(alerts, grants) == {("620102", 2021, "funds"): Decimal("520.5"),
                                          ("620102", 2021, "land"): Decimal(30),
                                          ("620103", 2022, "energy"): Decimal(1000)}
    assert idle_cells([alert("not_started", None), alert("supervision_overdue", "f1")], grants) == {}
