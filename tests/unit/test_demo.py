"""The demo reads as a Lanzhou official would expect: names, sectors and departments that belong together,
factors granted by the units that grant them, leaders named at admission, projects completed, and
messages recorded when portals would have sent them."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain import reference
from yaosu.demo import EPIDEMIC_STEM, ISSUES, KINDS, UTILITY_COMPANIES, demo_messages, recording_times

YEAR = 2021


@lru_cache(maxsize=1)
def year() -> tuple[dict[str, Any], ...]:
    return tuple(demo_messages(YEAR, 300))


#: The projects of the demo's mistakes (`_mistakes`): messages the rules refuse, on purpose.
MISTAKEN = ("-999001", "-999999")


def of_type(type_: str) -> list[dict[str, Any]]:
    """The demo's messages of a type, but for its deliberate mistakes."""
    return [m for m in year() if m["type"] == type_ and not m.get("project_code", "").endswith(MISTAKEN)]


def by_project() -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in year():
        if "project_code" in m:
            found[m["project_code"]].append(m)
    return found


def test_the_demo_keeps_the_signature_the_bench_calls() -> None:
    assert demo_messages(YEAR, 3, 7) == demo_messages(YEAR, projects=3, seed=7)


def test_a_project_name_sector_and_owning_department_belong_together() -> None:
    # A stem without its 工程/项目: a second phase's name puts 二期 before it.
    kinds = {(k.sector, k.department): {stem.removesuffix("工程").removesuffix("项目") for stem in k.stems} for k in KINDS}
    registered = [m for m in of_type("project.registered") if m["message_id"].startswith(f"demo-{YEAR}-")
                  and m["project_code"][-6:].lstrip("0").isdigit() and int(m["project_code"][-6:]) < 300]
    assert len(registered) == 299
    for m in registered:
        p = m["payload"]
        stems = kinds.get((p["sector"], p["department"]), set()) | ({EPIDEMIC_STEM} if p["sector"] == "C" else set())
        assert any(stem in p["name"] for stem in stems), p
        assert "号" not in p["name"] and p["owner"], p
    # 医院 only under Q 卫生 (owned by health), 光伏 only under D, 中学 only under P.
    for word, sector in (("医院", "Q"), ("光伏", "D"), ("中学", "P"), ("数据中心", "I")):
        named = [m["payload"] for m in registered if word in m["payload"]["name"]]
        assert named and all(p["sector"] == sector for p in named), word
    names = [m["payload"]["name"] for m in registered]
    assert len(set(names)) == len(names)


def test_factors_come_from_the_units_that_grant_them() -> None:
    # Land acquisition and supply by natural resources; a utility by its company; an issue by the unit it concerns.
    assert {m["actor"]["department"] for m in of_type("land.supplied")} == {"natural_resources"}
    for m in of_type("utility.connected"):  # (one of them the late one for a completed project, refused)
        assert m["actor"]["department"] == UTILITY_COMPANIES[m["payload"]["utility"]], m
    units = dict(ISSUES)
    for m in of_type("issue.escalated"):
        p = m["payload"]
        if p["title"] in units:
            assert p["assigned_to"] == (units[p["title"]] if p["assigned_to"] != "development_reform" else
                                        "development_reform"), m
    land_issues = [m["payload"] for m in of_type("issue.escalated") if m["payload"]["title"] == "征地拆迁协调"]
    assert land_issues and all(p["assigned_to"] in ("natural_resources", "development_reform") for p in land_issues)


def test_every_project_has_a_leader_named_with_a_title_before_it_should_start() -> None:
    for code, messages in by_project().items():
        types = [m["type"] for m in messages]
        if "project.admitted" not in types or code.endswith(MISTAKEN):
            continue
        registered = next(m for m in messages if m["type"] == "project.registered")
        leaders = [m for m in messages if m["type"] == "talent.assigned"
                   and m["payload"]["role"] == "responsible_leader"]
        assert leaders, code
        first = leaders[0]
        assert first["occurred_at"] < registered["payload"]["planned_start"], code
        person = first["payload"]["person"]
        assert "包抓领导" not in person and person.endswith("）") and "（" in person, person


def test_some_projects_are_completed_before_december_with_an_acceptance_report() -> None:
    completed = of_type("project.completed")
    assert len(completed) >= 5
    projects = by_project()
    for m in completed:
        assert m["payload"]["date"] < f"{YEAR}-12-01"
        before = [x for x in projects[m["project_code"]] if x["occurred_at"] <= m["occurred_at"]]
        assert any(x["type"] == "data.provided" and x["payload"]["kind"] == "completion_report" for x in before)
        assert any(x["type"] == "stage.advanced" and x["payload"]["stage"] == "completion" for x in before)


def test_stages_advance_through_the_year() -> None:
    last_stage: dict[str, str] = {}
    for m in of_type("stage.advanced"):
        last_stage[m["project_code"]] = m["payload"]["stage"]
    assert set(last_stage.values()) >= {"approval", "construction", "completion"}


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.integers(0, 400))
def test_each_message_is_recorded_the_day_it_happened_or_a_few_days_after(seed: int, cut: int) -> None:
    messages = demo_messages(YEAR, 12, seed)
    now = datetime(YEAR, 1, 1, tzinfo=timezone.utc) + timedelta(days=cut)
    times = recording_times(messages, seed, now=now)
    assert len(times) == len(messages)
    assert times == sorted(times)  # the ledger's order is the order of recording
    for message, recorded in zip(messages, times):
        occurred = datetime.fromisoformat(message["occurred_at"])
        assert recorded <= now
        if recorded < now:
            assert occurred <= recorded <= occurred + timedelta(days=4), (message, recorded)


def test_recording_delays_are_mostly_the_same_day_some_days_later() -> None:
    messages = list(year())
    lates = [(recorded.astimezone(reference.CITY_TZ).date() - date.fromisoformat(m["occurred_at"][:10])).days
             for m, recorded in zip(messages, recording_times(messages))]
    assert set(lates) <= {0, 1, 2, 3}
    assert lates.count(0) > len(lates) / 3 and any(late >= 2 for late in lates)
