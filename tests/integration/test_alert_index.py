"""Alerts and the ranking as an index: the stretches and standings the sedimentation read model keeps answer
every day of the demo year exactly as evaluating the facts directly does, on both stores, settled or not,
whatever the thresholds."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Iterator

import orjson

from domain.ranking import DistrictScore, rank_districts
from domain.supervision import LEVELS, Alert, ProjectFacts, Thresholds
from infra.settings import Settings
from projections import sedimentation
from projections.read import ReadModels
from projections.runner import Runner
from service.bootstrap import build_ledger
from tests.conftest import submit
from tests.factorstory import FIRST, LAST, factor_story
from tests.readmodels import demo_store, facts_from_history
from yaosu.demo import batches, demo_messages

OTHER = Thresholds(start_yellow_days=15, start_red_days=45, lag_yellow_points=Decimal(5), lag_red_points=Decimal(20),
                   issue_red_days=10, report_due_days=20)


def days(first: date, last: date, step: int = 1) -> Iterator[date]:
    while first <= last:
        yield first
        first += timedelta(days=step)


def indexed(reads: ReadModels, day: date, thresholds: Thresholds, **filters: str) -> list[Alert]:
    with reads.snapshot(sedimentation.Sedimentation) as view:
        return sedimentation.alerts(view.db, view.tables(sedimentation.Sedimentation), day, thresholds, **filters)


def evaluated(reads: ReadModels, day: date, thresholds: Thresholds, **filters: str) -> list[Alert]:
    with reads.snapshot(sedimentation.Sedimentation) as view:
        tables = view.tables(sedimentation.Sedimentation)
        facts, approvals = sedimentation.load_facts(view.db, tables), sedimentation.load_approvals(view.db, tables)
    return sedimentation.alerts_of(facts, day, thresholds, approvals, **filters)


def listed(reads: ReadModels, day: date, thresholds: Thresholds, **filters: str) -> list[dict[str, Any]]:
    """`GET /v1/alerts` as the index lists it: each settled stretch's alert read from the words it keeps."""
    with reads.snapshot(sedimentation.Sedimentation) as view:
        return sedimentation.listed_alerts(view.of(sedimentation.Sedimentation), {"as_of": day, **filters}, thresholds)


def listed_evaluated(reads: ReadModels, day: date, thresholds: Thresholds, **filters: str) -> list[dict[str, Any]]:
    """The same list made from evaluating the facts: each alert said by the catalogue as it is made."""
    with reads.snapshot(sedimentation.Sedimentation) as view:
        tables = view.tables(sedimentation.Sedimentation)
        names = dict(view.db.query(f"SELECT code, name FROM {tables['facts']}"))
    return [sedimentation.alert_item(a, names.get(a.project_code)) for a in evaluated(reads, day, thresholds, **filters)]


def ranked(reads: ReadModels, day: date, thresholds: Thresholds) -> list[DistrictScore]:
    with reads.snapshot(sedimentation.Sedimentation) as view:
        return sedimentation.ranking(view.of(sedimentation.Sedimentation), day.year, day, thresholds)


def replayed(reads: ReadModels, day: date, thresholds: Thresholds,
             facts: list[ProjectFacts] | None = None) -> list[DistrictScore]:
    """The ranking replayed from every project's facts (those given, if read already)."""
    if facts is None:
        with reads.snapshot(sedimentation.Sedimentation) as view:
            facts = sedimentation.load_facts(view.db, view.tables(sedimentation.Sedimentation))
    return rank_districts(facts, day.year, day, thresholds)


def unsettled(reads: ReadModels) -> int:
    with reads.snapshot(sedimentation.Sedimentation) as view:
        return len(view.db.query(f"SELECT code FROM {view.tables(sedimentation.Sedimentation)['unsettled']}"))


def test_every_day_of_the_demo_year_the_index_answers_as_evaluation(settings: Settings) -> None:
    with demo_store(settings, projects=80) as (_, reads):
        assert unsettled(reads) == 0
        seen = set()
        for day in days(date(2020, 12, 25), date(2022, 3, 31)):
            answer = indexed(reads, day, Thresholds())
            assert answer == evaluated(reads, day, Thresholds()), day
            assert listed(reads, day, Thresholds()) == listed_evaluated(reads, day, Thresholds()), day
            seen |= {(a.rule, a.level) for a in answer}
        # v1.2: the demo's land, energy and money raise factor-level alerts too
        assert {rule for rule, _ in seen} >= {"not_started", "lagging", "issue_overdue", "reduction_overdue"}
        for day in days(date(2021, 3, 1), date(2021, 12, 31), step=61):
            for filters in ({"district": "620102"}, {"level": "red"}, {"rule": "lagging"},
                            {"department": "industry_it", "level": "yellow"}):
                assert indexed(reads, day, Thresholds(), **filters) == evaluated(reads, day, Thresholds(), **filters)
                assert listed(reads, day, Thresholds(), **filters) == \
                    listed_evaluated(reads, day, Thresholds(), **filters)
            # Asked with thresholds other than those the stretches were computed with: evaluated.
            assert indexed(reads, day, OTHER) == evaluated(reads, day, OTHER)
            assert ranked(reads, day, OTHER) == replayed(reads, day, OTHER), day
        ranked_any = False
        with reads.snapshot(sedimentation.Sedimentation) as view:
            facts = sedimentation.load_facts(view.db, view.tables(sedimentation.Sedimentation))
        for day in days(date(2021, 1, 1), date(2022, 3, 31), step=3):
            ranking = ranked(reads, day, Thresholds())
            assert ranking == replayed(reads, day, Thresholds(), facts), day
            ranked_any = ranked_any or any(r.due_to_start and r.red_alerts and r.completed_investment for r in ranking)
        assert ranked_any, "the demo's ranking counts projects due, red alerts and investment completed"


def test_while_a_backlog_is_applied_marked_projects_are_evaluated_then_settled(settings: Settings) -> None:
    ledger = build_ledger(settings)
    for chunk in batches(demo_messages(2021, projects=40), 500):
        submit(ledger, *chunk)
    runner = Runner(ledger, settings, batch_size=400)
    reads = ReadModels(settings)
    try:
        for _ in range(4):  # full batches: not caught up, the changed projects are only marked
            assert runner.step() == 400
            assert unsettled(reads) > 0
            for day in days(date(2021, 1, 1), date(2021, 12, 31), step=23):
                assert indexed(reads, day, Thresholds()) == evaluated(reads, day, Thresholds())
                assert listed(reads, day, Thresholds()) == listed_evaluated(reads, day, Thresholds())
                assert ranked(reads, day, Thresholds()) == replayed(reads, day, Thresholds()), day
        runner.run_until_caught_up()
        assert unsettled(reads) == 0
        for day in days(date(2021, 1, 1), date(2021, 12, 31), step=7):
            assert indexed(reads, day, Thresholds()) == evaluated(reads, day, Thresholds())
            assert ranked(reads, day, Thresholds()) == replayed(reads, day, Thresholds()), day
    finally:
        runner.close()
        reads.close()
        ledger.close()


def test_a_list_asked_again_after_writes_makes_only_what_changed_and_says_what_evaluation_does(
        settings: Settings, monkeypatch: Any) -> None:
    """A day's list keeps its items by stretch digest: asked again after each batch (as readers waiting for
    their writes do), with filters in between and however many stretches changed, it is the evaluated list."""
    ledger = build_ledger(settings)
    runner = Runner(ledger, settings)
    reads = ReadModels(settings)
    asked = [date(2021, 6, 30), date(2021, 11, 15), date(2022, 3, 1)]
    made: list[int] = []
    kept_alert = sedimentation.kept_alert
    monkeypatch.setattr(sedimentation, "kept_alert", lambda *args: made.append(1) or kept_alert(*args))
    try:
        for n, chunk in enumerate(batches(demo_messages(2021, projects=40), 250)):
            monkeypatch.setattr(sedimentation, "REVS_ASKED", 500 if n % 3 else 3)  # named, or read whole
            submit(ledger, *chunk)
            runner.run_until_caught_up()
            for day in asked:
                assert listed(reads, day, Thresholds()) == listed_evaluated(reads, day, Thresholds()), (n, day)
                if n % 2:
                    assert listed(reads, day, Thresholds(), level="red") == \
                        listed_evaluated(reads, day, Thresholds(), level="red"), (n, day)
        made.clear()
        again = listed(reads, asked[0], Thresholds())
        assert again and not made, "nothing changed since: every item is the one made before"
    finally:
        runner.close()
        reads.close()
        ledger.close()


def test_a_runner_with_other_thresholds_computes_every_timeline_again(settings: Settings) -> None:
    with demo_store(settings, projects=30) as (ledger, reads):
        other = Settings(store=settings.store, thresholds=OTHER)
        runner = Runner(ledger, other)
        try:
            runner.run_until_caught_up()
        finally:
            runner.close()
        assert unsettled(reads) == 0
        with reads.snapshot(sedimentation.Sedimentation) as view:
            stored = view.db.query(f"SELECT value FROM {view.tables(sedimentation.Sedimentation)['thresholds']}")
        assert stored == [(sedimentation.fingerprint(OTHER),)]
        for day in days(date(2021, 1, 1), date(2021, 12, 31), step=11):
            assert indexed(reads, day, OTHER) == evaluated(reads, day, OTHER)


def same_order(facts: ProjectFacts) -> ProjectFacts:
    """Grants and cases in the order of their ids (the read model reads them by key, a replay as they came)."""
    return replace(facts, grants=tuple(sorted(facts.grants, key=lambda g: g.grant_id)),
                   cases=tuple(sorted(facts.cases, key=lambda c: c.case_id)))


V12 = Thresholds(funds_idle_share=Decimal("0.7"), funds_idle_yellow_days=30, funds_idle_red_days=60,
                 land_idle_red_days=100, land_reclaimable_days=200, land_unsupplied_yellow_days=100,
                 land_unsupplied_red_days=200, energy_idle_yellow_days=200, energy_idle_red_days=300, case_close_days=5)


def test_the_index_answers_every_day_as_a_replay_with_the_factor_level_rules(settings: Settings) -> None:
    """v1.2: money, land and energy lying idle, an approval not supplied, cases open, answered and
    closed, plans amended: the index answers each day from 2021 to 2024 as evaluating the facts does,
    and the facts it keeps are those a replay of each project's history gives."""
    ledger = build_ledger(settings)
    story = factor_story(ledger)
    runner = Runner(ledger, settings)
    reads = ReadModels(settings)
    try:
        runner.run_until_caught_up()
        assert unsettled(reads) == 0
        with reads.snapshot(sedimentation.Sedimentation) as view:
            tables = view.tables(sedimentation.Sedimentation)
            facts, approvals = sedimentation.load_facts(view.db, tables), sedimentation.load_approvals(view.db, tables)
        assert [same_order(f) for f in facts] == [same_order(facts_from_history(ledger, code))
                                                  for code in sorted(story.codes)]
        assert [(a.approval_id, a.area, a.supplied) for a in approvals] == [
            ("PC-2021-001", 100, ((date(2021, 5, 20), 40), (date(2022, 6, 1), 60))),
            ("PC-2021-002", 100, ((date(2021, 5, 20), 40),)), ("PC-2021-003", 100, ())]
        seen: set[tuple[str, str, bool, bool]] = set()
        for day in days(FIRST, LAST):
            answer = indexed(reads, day, Thresholds())
            assert answer == sedimentation.alerts_of(facts, day, Thresholds(), approvals), day
            kept, said = listed(reads, day, Thresholds()), listed_evaluated(reads, day, Thresholds())
            assert kept == said, day
            assert orjson.dumps(kept) == orjson.dumps(said), day  # the same JSON, key for key
            seen |= {(a.rule, a.level, a.reclaimable, a.case_id is not None) for a in answer}
        assert {rule for rule, *_ in seen} == {"not_started", "lagging", "funds_idle", "land_idle", "land_unsupplied",
                                              "energy_idle", "supervision_overdue"}
        assert {(rule, level) for rule, level, *_ in seen} >= {
            (rule, level) for rule in ("funds_idle", "land_idle", "land_unsupplied", "energy_idle") for level in LEVELS}
        assert {rule for rule, _, reclaimable, _ in seen if reclaimable} == {"land_idle", "energy_idle"}
        assert {rule for rule, _, _, case in seen if case} == {"land_idle", "funds_idle"}
        for day in days(date(2021, 4, 1), date(2023, 12, 31), step=37):
            for filters in ({"district": "620103"}, {"rule": "land_unsupplied"}, {"factor": "land"},
                            {"department": "natural_resources"}, {"factor": "funds", "level": "red"}):
                assert indexed(reads, day, Thresholds(), **filters) == \
                    sedimentation.alerts_of(facts, day, Thresholds(), approvals, **filters), (day, filters)
                assert listed(reads, day, Thresholds(), **filters) == \
                    listed_evaluated(reads, day, Thresholds(), **filters), (day, filters)
            # Asked with thresholds other than those the stretches were computed with: evaluated.
            assert indexed(reads, day, V12) == sedimentation.alerts_of(facts, day, V12, approvals)
        approval_alerts = indexed(reads, date(2022, 6, 2), Thresholds(), rule="land_unsupplied")
        assert [(a.project_code, a.subject, a.district, a.department, a.factor) for a in approval_alerts] == [
            (None, "PC-2021-002", "620103", "natural_resources", "land"),
            (None, "PC-2021-003", "620104", "natural_resources", "land")]
    finally:
        runner.close()
        reads.close()
        ledger.close()


def test_a_runner_with_other_thresholds_computes_the_approvals_timelines_again(settings: Settings) -> None:
    ledger = build_ledger(settings)
    factor_story(ledger)
    for thresholds in (Thresholds(), V12):
        runner = Runner(ledger, Settings(store=settings.store, thresholds=thresholds))
        try:
            runner.run_until_caught_up()
        finally:
            runner.close()
    reads = ReadModels(settings)
    try:
        assert unsettled(reads) == 0
        for day in days(FIRST, LAST, step=5):
            assert indexed(reads, day, V12) == evaluated(reads, day, V12), day
        assert any(a.rule == "land_unsupplied" and a.level == "red" for a in indexed(reads, date(2021, 12, 1), V12))
    finally:
        reads.close()
        ledger.close()
