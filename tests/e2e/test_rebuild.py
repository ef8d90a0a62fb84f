"""`yaosu projections rebuild` on every core: the read models split over processes build exactly what one
process builds, on both stores (SQLite: one process, as one file takes one writer), and the split is fair."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from infra.settings import Settings
from projections.catalog import BY_NAME, PROJECTIONS
from projections.read import ReadModels
from tests.e2e.test_server import yaosu
from yaosu.rebuilding import COSTS, MEDIAN_COST, split


@given(st.lists(st.sampled_from(sorted(BY_NAME)), min_size=1, unique=True), st.integers(1, 8))
def test_the_split_gives_each_read_model_to_one_group_and_balances_their_costs(names: list[str], workers: int) -> None:
    groups = split(names, workers)
    assert sorted(n for g in groups for n in g) == sorted(names)
    assert len(groups) == min(workers, len(names)) and all(groups)
    cost = [sum(COSTS.get(n, MEDIAN_COST) for n in g) for g in groups]
    # Greedy over the costliest first: no group exceeds the lightest by more than one read model's cost.
    assert max(cost) - min(cost) <= max(COSTS.get(n, MEDIAN_COST) for n in names)


def contents(store: str) -> tuple[dict[str, int], dict[str, list[Any]]]:
    """The serving generation of each read model, and every serving table's rows by read model and table."""
    reads = ReadModels(Settings(store=store))
    try:
        with reads.snapshot(*PROJECTIONS) as view:
            return ({name: gen for name, gen, _ in view.generations},
                    {f"{p.name}.{table}": sorted(map(repr, view.db.query(f"SELECT * FROM {physical}")))
                     for p in PROJECTIONS for table, physical in view.tables(p).items()})
    finally:
        reads.close()


def test_a_rebuild_in_processes_builds_what_one_process_builds(store: str) -> None:
    loaded = yaosu("demo", "--year", "2021", "--projects", "40", store=store)
    assert loaded.returncode == 0, loaded.stderr
    before, _ = contents(store)
    parallel = yaosu("projections", "rebuild", "--workers", "2", store=store)
    assert parallel.returncode == 0, parallel.stderr
    summary = orjson.loads(parallel.stdout.strip().splitlines()[-1])
    if store.startswith("postgresql"):
        assert [sorted(p["read_models"]) for p in summary["processes"]] == [sorted(g) for g in split(list(BY_NAME), 2)]
        assert all(p["events"] == summary["events"] > 0 for p in summary["processes"])
        assert summary["peak_rss_mb"] >= sum(p["peak_rss_mb"] for p in summary["processes"])
    else:
        assert "processes" not in summary  # one process on SQLite
    generations, built = contents(store)
    assert all(generations[name] > before.get(name, 0) for name in BY_NAME), (before, generations)
    assert sum(len(rows) for rows in built.values()) > 1000
    serial = yaosu("projections", "rebuild", "--workers", "1", store=store)
    assert serial.returncode == 0, serial.stderr
    again, rebuilt = contents(store)
    assert all(again[name] > generations[name] for name in BY_NAME)
    assert rebuilt == built
