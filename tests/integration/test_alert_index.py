"""Alerts as an index: the stretches the sedimentation read model keeps answer every day of the demo
year exactly as evaluating the facts directly does, on both stores, settled or not, whatever the
thresholds."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Iterator

from domain.supervision import Alert, Thresholds
from infra.settings import Settings
from projections import sedimentation
from projections.read import ReadModels
from projections.runner import Runner
from service.bootstrap import build_ledger
from tests.conftest import submit
from tests.readmodels import demo_store
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
        facts = sedimentation.load_facts(view.db, view.tables(sedimentation.Sedimentation))
    return sedimentation.alerts_of(facts, day, thresholds, **filters)


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
            seen |= {(a.rule, a.level) for a in answer}
        assert {rule for rule, _ in seen} == {"not_started", "lagging", "issue_overdue", "reduction_overdue"}
        for day in days(date(2021, 3, 1), date(2021, 12, 31), step=61):
            for filters in ({"district": "620102"}, {"level": "red"}, {"rule": "lagging"},
                            {"department": "industry_it", "level": "yellow"}):
                assert indexed(reads, day, Thresholds(), **filters) == evaluated(reads, day, Thresholds(), **filters)
            # Asked with thresholds other than those the stretches were computed with: evaluated.
            assert indexed(reads, day, OTHER) == evaluated(reads, day, OTHER)


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
        runner.run_until_caught_up()
        assert unsettled(reads) == 0
        for day in days(date(2021, 1, 1), date(2021, 12, 31), step=7):
            assert indexed(reads, day, Thresholds()) == evaluated(reads, day, Thresholds())
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
