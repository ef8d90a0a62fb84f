"""Finding a project by a part of its name, owner (项目单位) or code (issue 22): `projections.directory.search`
on both stores, against the plain reading of "contains" (hypothesis), with the characters `LIKE` treats
specially (`%`, `_`, `\\`) typed as themselves, full-width forms and case folded, and the query's checks."""

from __future__ import annotations

from typing import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.console.finding import CONTROL, TOO_LONG, asked_for
from infra.settings import Settings
from projections.directory import PAGE, Directory, Found, folded, names, search
from projections.listing import Tables
from projections.read import ReadModels
from projections.runner import Runner
from service.bootstrap import build_ledger
from tests.conftest import submit
from tests.portal import register

#: Projects whose names and owners hold what a `LIKE` pattern or a careless fold would get wrong.
PROJECTS = {
    "2021-620102-48-01-000157": ("兰州100%清洁能源项目", "甘肃A_B集团"),
    "2021-620103-44-02-001570": ("城关区Hospital医院", "兰州城投集团"),
    "2021-620104-54-03-015700": ("七里河back\\slash工程", "ＡＢＣ（兰州）有限公司"),
    "2021-620105-78-01-000001": ("西固区中学１５７号", "兰州建投集团"),
    "2021-620102-48-02-000002": ("安宁区数据中心", "兰州_产投"),
}
#: More than a page of projects that all match `测试`.
FILLERS = {f"2021-620111-48-01-{900000 + n:06d}": (f"红古测试项目{n}", "兰州交投集团") for n in range(PAGE + 5)}
EVERY = {**PROJECTS, **FILLERS}


@pytest.fixture
def directory(settings: Settings) -> Iterator[Tables]:
    ledger = build_ledger(settings)
    submit(ledger, *(register(code, name=name, owner=owner, district=code[5:11]) for code, (name, owner) in EVERY.items()))
    runner = Runner(ledger, settings)
    runner.run_until_caught_up()
    runner.close()
    reads = ReadModels(settings)
    try:
        with reads.snapshot(Directory) as view:
            yield view.of(Directory)
    finally:
        reads.close()
        ledger.close()


def everything(tables: Tables, query: str) -> list[str]:
    """The codes a search finds, over all its pages."""
    first = search(tables, query)
    found = [p["code"] for p in first.projects]
    for page in range(2, first.pages + 1):
        found += [p["code"] for p in search(tables, query, page).projects]
    return found


def contains(query: str) -> set[str]:
    """The plain reading: the projects whose folded name or owner, or whose code, holds the folded query."""
    wanted = folded(query).strip()
    return {code for code, (name, owner) in EVERY.items()
            if wanted and (wanted in folded(name) or wanted in folded(owner) or wanted in code)}


def test_a_part_of_a_code_a_name_or_an_owner_finds_the_project(directory: Tables) -> None:
    assert everything(directory, "000157") == ["2021-620102-48-01-000157"]  # not …001570 or …015700
    assert everything(directory, "医院") == ["2021-620103-44-02-001570"]
    assert everything(directory, "hospital") == everything(directory, "HOSPITAL") == ["2021-620103-44-02-001570"]
    assert everything(directory, "abc") == ["2021-620104-54-03-015700"]  # the owner's full-width ＡＢＣ
    assert "2021-620105-78-01-000001" in everything(directory, "157")  # the name's full-width １５７
    assert everything(directory, "建投") == ["2021-620105-78-01-000001"]


def test_like_patterns_are_typed_as_themselves(directory: Tables) -> None:
    assert everything(directory, "%") == ["2021-620102-48-01-000157"]
    assert sorted(everything(directory, "_")) == ["2021-620102-48-01-000157", "2021-620102-48-02-000002"]
    assert everything(directory, "\\") == ["2021-620104-54-03-015700"]
    assert everything(directory, "") == everything(directory, "   ") == []


def test_a_search_is_paged_by_code(directory: Tables) -> None:
    first, second = search(directory, "测试"), search(directory, "测试", 2)
    assert (first.total, first.pages, len(first.projects), len(second.projects)) == (PAGE + 5, 2, PAGE, 5)
    codes = [p["code"] for p in first.projects + second.projects]
    assert codes == sorted(FILLERS)
    assert search(directory, "测试", 99).page == 2 and search(directory, "测试", 0).page == 1  # clamped
    row = first.projects[0]
    assert row["name"] == FILLERS[row["code"]][0] and row["district"] == "620111" and row["stage"] == "planning"
    assert row["status"] == "not_started" and "name_key" not in row


def test_names_are_looked_up_by_code(directory: Tables) -> None:
    wanted = [*EVERY, "2021-620102-48-01-999999"]  # more than one statement's worth, and one never registered
    assert names(directory, wanted) == {code: name for code, (name, _) in EVERY.items()}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet="%_\\医院兰州AaBbＡ１5701- ", min_size=0, max_size=4))
def test_a_search_finds_exactly_the_projects_that_contain_it(directory: Tables, query: str) -> None:
    found = everything(directory, query)
    assert len(found) == len(set(found)) and found == sorted(found)
    assert set(found) == contains(query)


def test_a_query_too_long_or_with_control_characters_is_refused() -> None:
    assert asked_for("  医院 ", "2") == asked_for("医院", "2") and asked_for("医院", "2").refused is None
    assert asked_for("x" * 51, None).refused == TOO_LONG and asked_for("x" * 50, None).refused is None
    assert asked_for("医\x00院", None).refused == CONTROL and asked_for("医\x85院", None).refused == CONTROL
    assert [asked_for("q", p).page for p in (None, "", "0", "-1", "x", "٣", "12")] == [1, 1, 1, 1, 1, 1, 12]


def test_a_page_knows_how_many_pages() -> None:
    assert [Found([], n, 1).pages for n in (0, 1, PAGE, PAGE + 1)] == [1, 1, 1, 2]


@given(st.text(max_size=80), st.one_of(st.none(), st.text(max_size=8)))
def test_any_query_is_taken_or_refused_with_a_code(raw: str, page: str | None) -> None:
    asked = asked_for(raw, page)
    controls = any(ord(c) < 32 or 127 <= ord(c) < 160 for c in raw.strip())
    assert asked.refused == (TOO_LONG if len(raw.strip()) > 50 else CONTROL if controls else None)
    assert asked.page >= 1 and len(asked.query) <= 50
    if asked.refused is None:
        assert asked.query == raw.strip()
