"""Read models on real stores: batches equal a rebuild, nothing skipped, failures stop, versions swap."""

from __future__ import annotations

import dataclasses
import logging
import threading
from datetime import date
from decimal import Decimal
from typing import Any, Iterator

import pytest

from domain.project import Project
from domain.ranking import allocation_advice, rank_districts
from domain.supervision import Thresholds
from infra.settings import Settings
from projections import libraries, model, sedimentation, stages
from projections.catalog import Catalog
from projections.libraries import Libraries
from projections.listing import Tables
from projections.model import Projection, Table
from projections.runner import Runner
from service.ledger import Ledger
from tests.conftest import submit
from tests.portal import msg
from tests.readmodels import dump, project_codes, reference_alerts, reference_approvals, reference_facts
from yaosu.demo import STORY_PROJECTS, batches, demo_messages


@pytest.fixture
def runner(ledger: Ledger, settings: Settings) -> Iterator[Runner]:
    r = Runner(ledger, settings, batch_size=97)  # a prime, so batches cut across messages
    yield r
    r.close()


def fresh_dump(ledger: Ledger, settings: Settings) -> dict[str, Any]:
    reference = Runner(ledger, settings, prefix="ref")
    try:
        reference.run_until_caught_up(batch_size=5000)
        return dump(reference.catalog)
    finally:
        reference.close()


def load(ledger: Ledger, messages: list[dict[str, Any]], size: int = 250) -> None:
    for chunk in batches(messages, size):
        submit(ledger, *chunk)


@pytest.mark.parametrize("cached_rows", [model.MAX_CACHED_ROWS, 7], ids=["cached", "trimmed"])
def test_batches_applied_as_they_come_equal_a_rebuild(ledger: Ledger, settings: Settings, runner: Runner,
                                                      cached_rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """`trimmed`: the row caches let go of all but the last batch's rows, and read the rest back."""
    monkeypatch.setattr(model, "MAX_CACHED_ROWS", cached_rows)
    messages = demo_messages(2021, projects=40)
    for chunk in batches(messages, 300):
        submit(ledger, *chunk)
        runner.step()  # one batch now, the rest later: positions and caches carry over
    runner.run_until_caught_up()
    assert all(s["lag_events"] == 0 for s in runner.status())
    incremental = dump(runner.catalog)
    assert incremental == fresh_dump(ledger, settings)
    assert len(incremental["stages.board"]) == len(project_codes(ledger)) == 40 + STORY_PROJECTS
    assert incremental["libraries.members"] and incremental["ledger.grants"] and incremental["sedimentation.reports"]


def test_concurrent_writers_skip_nothing(ledger: Ledger, settings: Settings, runner: Runner) -> None:
    follower = threading.Thread(target=runner.run_forever)
    follower.start()
    accepted: list[int] = []

    def write(thread: int) -> None:
        for n in range(25):
            code = f"2021-620102-48-0{thread + 1}-{n:06d}"
            results = submit(ledger, msg("project.registered", {
                "name": f"p{thread}-{n}", "district": "620102", "sector": "C", "department": "industry_it",
                "owner": "o", "total_investment": 100, "planned_start": "2021-03-01",
                "planned_completion": "2022-03-01", "revenue_generating": False}, code=code),
                msg("project.admitted", {"library": "municipal"}, code=code),
                msg("data.provided", {"kind": "k", "reference": "r"}, code=code, dept="big_data"))
            accepted.append(sum(r.status == "accepted" for r in results))

    writers = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    runner.stop()
    follower.join()
    runner.stopping.clear()
    runner.run_until_caught_up()
    assert sum(accepted) == 4 * 25 * 3
    rows = dump(runner.catalog)
    assert len(rows["stages.board"]) == 100 and len(rows["libraries.members"]) == 100
    assert len(rows["ledger.grants"]) == 100
    assert rows == fresh_dump(ledger, settings)


class Broken(Projection):
    """Fails on land: the runner must stop it there, not skip the event."""

    name = "broken"
    version = 1
    tables = (Table("seen", {"n": "INTEGER", "position": "BIGINT"}, key=("n",)),)
    handlers = {Project.Registered: "seen", Project.LandSupplied: "fail"}

    def seen(self, e: Any) -> None:
        self.rows["seen"].put({"n": self.position, "position": self.position})

    def fail(self, e: Any) -> None:
        raise ValueError("cannot handle land")


def test_a_failing_projection_stops_at_the_event_and_says_where(
        ledger: Ledger, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    load(ledger, demo_messages(2021, projects=10))
    runner = Runner(ledger, settings, batch_size=50, projections=[Libraries, Broken])
    try:
        with caplog.at_level(logging.ERROR, "yaosu.projections"):
            runner.run_until_caught_up()
        first_land = next(i.position for i in ledger.feed(0, 10_000).items if isinstance(i.event, Project.LandSupplied))
        broken = runner.generations["broken"]
        assert broken.halt is not None and broken.halt.event_position == first_land
        assert broken.position == first_land - 1  # all before the failure, nothing at or after it
        assert f"position {first_land} (Project.LandSupplied)" in caplog.text
        assert runner.generations["libraries"].position == ledger.head()  # the others go on
        runner.step()
        assert runner.generations["broken"].position == broken.position  # and it stays stopped
    finally:
        runner.close()


class LibrariesV2(Libraries):
    version = 2


class LibrariesReshaped(Libraries):
    """The same version, with one more index: tables of another shape."""

    tables = (Libraries.tables[0], dataclasses.replace(Libraries.tables[1], indexes=(
        *Libraries.tables[1].indexes, ("code",))))


@pytest.mark.parametrize("successor", [LibrariesV2, LibrariesReshaped])
def test_a_new_version_is_built_beside_the_old_and_swapped_in(
        ledger: Ledger, settings: Settings, successor: type[Libraries]) -> None:
    load(ledger, demo_messages(2021, projects=20))
    old = Runner(ledger, settings, projections=[Libraries])
    old.run_until_caught_up()
    before = libraries.matrix(Tables(old.db, old.catalog.active(Libraries)), "municipal")
    old.close()
    new = Runner(ledger, settings, batch_size=100, projections=[successor])
    try:
        new.step()
        gens = {g.gen: g.state for g in new.catalog.generations("libraries")}
        assert gens == {1: "active", 2: "building"}  # the old one serves while the new one builds
        assert libraries.matrix(Tables(new.db, new.catalog.active(Libraries)), "municipal") == before
        new.run_until_caught_up()
        assert {g.gen: g.state for g in new.catalog.generations("libraries")} == {1: "retired", 2: "active"}
        assert new.catalog.active(successor)["members"].endswith("_g2_members")
        assert libraries.matrix(Tables(new.db, new.catalog.active(Libraries)), "municipal") == before
        assert not new.db.query(_tables_like(new.catalog), ["rm_libraries_g1_%"])
    finally:
        new.close()


def _tables_like(catalog: Catalog) -> str:
    if catalog.db.dialect == "sqlite":
        return "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ?"
    return f"SELECT tablename FROM pg_tables WHERE schemaname = '{catalog.db.schema}' AND tablename LIKE ?"


DATES = [date(2021, m, d) for m, d in ((2, 1), (3, 15), (4, 1), (4, 30), (5, 31), (6, 15), (7, 1), (8, 31),
                                        (9, 30), (10, 15), (11, 30), (12, 31))]


def test_alerts_and_ranking_from_the_read_model_match_a_replay_of_history(ledger: Ledger, runner: Runner) -> None:
    load(ledger, demo_messages(2021), size=500)  # the whole demo year: 300 projects
    runner.run_until_caught_up()
    tables = runner.catalog.active(sedimentation.Sedimentation)
    replayed = reference_facts(ledger)  # every project's history replayed, event by event
    approvals = reference_approvals(ledger)
    assert len(replayed) == 300 + STORY_PROJECTS
    seen_rules, leaders, ranks = set(), set(), set()
    for as_of in DATES:
        fast = sedimentation.alerts(runner.db, tables, as_of, Thresholds())
        slow = reference_alerts(replayed, as_of, Thresholds(), approvals)
        assert fast == slow, as_of
        seen_rules |= {(a.rule, a.level) for a in fast}
        leaders |= {a.leader for a in fast}
        ranking = sedimentation.ranking(Tables(runner.db, tables), 2021, as_of, Thresholds())  # alerts of the index
        assert ranking == rank_districts(replayed, 2021, as_of), as_of
        assert ranking == rank_districts(sedimentation.load_facts(runner.db, tables), 2021, as_of), as_of
        assert allocation_advice(ranking, Decimal(5000)) == allocation_advice(rank_districts(replayed, 2021, as_of),
                                                                              Decimal(5000))
        ranks |= {row.rank for row in ranking}
    assert {("not_started", "yellow"), ("not_started", "red"), ("lagging", "yellow"), ("lagging", "red"),
            ("issue_overdue", "yellow"), ("issue_overdue", "red"), ("reduction_overdue", "red")} <= seen_rules
    assert None in leaders and len(leaders) > 3  # responsible leaders named where assigned
    assert len(ranks) > 5  # the districts do differ


def test_the_stage_board_checklist(ledger: Ledger, runner: Runner) -> None:
    load(ledger, demo_messages(2021, projects=30))
    runner.run_until_caught_up()
    board = stages.board(Tables(runner.db, runner.catalog.active(stages.Stages)), {"stage": "construction"},
                         date(2022, 1, 1))
    (construction,) = board["stages"]
    assert construction["count"] > 10
    for project in construction["projects"]:
        state = ledger.project(project["code"])
        assert state is not None and state.stage == "construction"
        assert project["satisfied"] == [f for f in construction["factors"] if state.has_factor(f)]
        assert project["days_in_stage"] == (date(2022, 1, 1) - state.stage_since).days


def test_deferred_indexes_are_made_once_caught_up(ledger: Ledger, settings: Settings) -> None:
    """The audit search's tables are filled bare during a build and indexed before they answer alone."""
    from projections.audit import AuditTrail

    def indexes(catalog: Catalog) -> set[str]:
        table = catalog.active(AuditTrail)["entries"]
        if catalog.db.dialect == "sqlite":
            rows = catalog.db.query("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                                    "AND sql IS NOT NULL", [table])
        else:
            rows = catalog.db.query("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = ? "
                                    "AND indexname <> tablename || '_pkey'", [table])
        return {name for (name,) in rows}

    load(ledger, demo_messages(2021, projects=20))
    runner = Runner(ledger, settings, projections=[AuditTrail], batch_size=100)
    try:
        runner.step()
        assert indexes(runner.catalog) == set()  # still behind: inserted into the bare table
        runner.run_until_caught_up()
        assert len(indexes(runner.catalog)) == len(next(t for t in AuditTrail.tables if t.name == "entries").indexes)
    finally:
        runner.close()
