"""A batch reads the rows its handlers look up at once (`Projection.lookups`), not one round trip per
event: past the row cache's bound (a province's projects outnumber it), the rebuild would otherwise
slow down with the number of projects (at 30,000 projects it ran at a third of its speed at 3,000)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from infra.settings import Settings
from projections import model
from projections.catalog import PROJECTIONS
from projections.db import Db
from projections.runner import Runner
from service.bootstrap import build_ledger
from tests.conftest import submit
from yaosu.demo import batches, demo_messages

#: A row looked up by its key alone: what `Rows.get` asks on a miss.
POINT = re.compile(r"^SELECT [\w, ]+ FROM \S+ WHERE \w+ = \?( AND \w+ = \?)*$")


def point_lookups(settings: Settings, monkeypatch: pytest.MonkeyPatch, *, declared: bool) -> tuple[int, int]:
    """Rebuild every read model with a row cache of 10 rows; the point lookups it made, and the events."""
    monkeypatch.setattr(model, "MAX_CACHED_ROWS", 10)
    if not declared:
        for projection in PROJECTIONS:
            monkeypatch.setattr(projection, "lookups", {})
    asked: list[str] = []
    query = Db.query

    def counted(db: Db, statement: str, params: Any = ()) -> list[tuple[Any, ...]]:
        if POINT.match(statement):
            asked.append(statement)
        return query(db, statement, params)

    monkeypatch.setattr(Db, "query", counted)
    ledger = build_ledger(settings)
    runner = Runner(ledger, settings)
    try:
        runner.rebuild([p.name for p in PROJECTIONS], batch_size=100)
        return len(asked), ledger.head()
    finally:
        runner.close()
        ledger.close()
        monkeypatch.undo()


def test_a_batch_reads_what_its_handlers_look_up_at_once(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = build_ledger(settings)
    for chunk in batches(demo_messages(2021, projects=200), 500):
        submit(ledger, *chunk)
    ledger.close()
    without, events = point_lookups(settings, monkeypatch, declared=False)
    with_lookups, _ = point_lookups(settings, monkeypatch, declared=True)
    assert without > events / 10, "the check needs batches whose rows fell out of the cache"
    assert with_lookups < without / 20, (with_lookups, without, events)
