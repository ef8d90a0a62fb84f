"""The runner as a process: SIGKILL at random moments under load, and a standby taking over."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from infra.settings import Settings
from infra.turns import lock_key
from projections.catalog import PROJECTIONS, Catalog, status
from projections.db import Db
from projections.runner import Runner
from service.bootstrap import build_ledger
from service.ledger import Ledger
from tests.conftest import OwnServices, fresh_store, submit
from tests.portal import land_quota, msg
from tests.readmodels import dump


def start_runner(store: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "yaosu", "projections", "run", "--batch-size", "37"],
                            env={**os.environ, "YAOSU_STORE": store}, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def project_messages(thread: int, n: int) -> list[dict[str, Any]]:
    code = f"2021-62010{2 + thread % 4}-48-0{1 + thread}-{n:06d}"
    return [
        # v1.2: land only within a land quota, here one no project exhausts (set again with each project).
        land_quota(1_000_000, district=f"62010{2 + thread % 4}"),
        msg("project.registered", {"name": f"p{thread}-{n}", "district": f"62010{2 + thread % 4}", "sector": "C",
                                   "department": "industry_it", "owner": "o", "total_investment": 1000,
                                   "planned_start": "2021-03-01", "planned_completion": "2022-03-01",
                                   "revenue_generating": False}, code=code, at="2021-01-10T09:00:00+08:00"),
        msg("plan.set", {"year": 2021, "planned_investment": 600}, code=code),
        msg("project.admitted", {"library": "municipal"}, code=code),
        msg("project.admitted", {"library": "annual", "year": 2021}, code=code),
        msg("land.supplied", {"parcel": f"P{n}", "area_mu": 10, "method": "transfer"}, code=code,
            dept="natural_resources"),
        msg("funds.allocated", {"source": "own_funds", "amount": 50}, code=code, dept="finance"),
        msg("construction.started", {"date": "2021-04-01"}, code=code, at="2021-04-02T09:00:00+08:00"),
        msg("investment.reported", {"period": "2021-04", "completed": 30}, code=code, dept="statistics",
            at="2021-05-03T09:00:00+08:00"),
    ]


def wait_caught_up(ledger: Ledger, catalog: Catalog, timeout: float = 90) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        report = status(ledger, catalog)
        if len(report) == len(PROJECTIONS) and all(r["lag_events"] == 0 for r in report):
            return time.monotonic() - started
        time.sleep(0.2)
    pytest.fail(f"projections did not catch up in {timeout}s: {status(ledger, catalog)}")


def test_sigkill_at_random_moments_while_four_writers_append(store: str, tmp_path: Path) -> None:
    settings = Settings(store=store)
    ledger = build_ledger(settings)
    log = tmp_path / "runner.log"
    stop = threading.Event()
    written: list[int] = []

    def writer(thread: int) -> None:
        n = 0
        while not stop.is_set():
            results = submit(ledger, *project_messages(thread, n))
            assert all(r.status == "accepted" for r in results), results
            written.append(len(results))
            n += 1

    writers = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for w in writers:
        w.start()
    rng = random.Random(149)
    runner = start_runner(store, log)
    kills = 0
    try:
        for _ in range(5):
            time.sleep(rng.uniform(0.8, 2.5))
            runner.send_signal(signal.SIGKILL)
            runner.wait()
            kills += 1
            runner = start_runner(store, log)
        stop.set()
        for w in writers:
            w.join()
        catalog = Catalog(Db(settings))
        wait_caught_up(ledger, catalog)
    finally:
        stop.set()
        runner.send_signal(signal.SIGTERM)
        runner.wait(timeout=30)
    assert kills == 5 and sum(written) > 200
    reference = Runner(ledger, settings, prefix="ref")
    reference.run_until_caught_up(batch_size=5000)
    survived = dump(catalog)
    assert survived == dump(reference.catalog)
    assert len(survived["stages.board"]) == len(written)  # one project per writer batch
    reference.close()
    ledger.close()


def holder(store: str) -> set[int]:
    """OS pids of the runners holding this store's projection locks, from their connections' names.

    Only this store's keys count: tests beside this one run runners of their own on the same server."""
    schema = store.split("schema=")[1]
    # A bigint advisory key shows in pg_locks as its high half (classid) and its low half (objid).
    keys = {lock_key(f"{schema}:rm:{p.name}") & 0xFFFFFFFFFFFFFFFF for p in PROJECTIONS}
    with psycopg.connect(store.split("?")[0], autocommit=True) as conn:
        rows = conn.execute(
            "SELECT a.application_name, l.classid::bigint, l.objid::bigint FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.objsubid = 1 AND a.application_name LIKE 'yaosu-projections-%'").fetchall()
    return {int(name.rsplit("-", 1)[1]) for name, high, low in rows if high << 32 | low in keys}


def test_a_standby_runner_takes_over_when_the_active_one_dies(pg_url: str, tmp_path: Path) -> None:
    store = fresh_store("postgres", tmp_path, pg_url)
    settings = Settings(store=store)
    ledger = build_ledger(settings)
    for n in range(10):
        submit(ledger, *project_messages(0, n))
    log = tmp_path / "runners.log"
    first = start_runner(store, log)
    catalog = Catalog(Db(settings))
    wait_caught_up(ledger, catalog)
    second = start_runner(store, log)
    try:
        time.sleep(2)  # the second starts as a standby: the locks are taken
        assert holder(store) == {first.pid}
        first.send_signal(signal.SIGKILL)
        first.wait()
        for n in range(10, 20):
            submit(ledger, *project_messages(0, n))
        took = wait_caught_up(ledger, catalog, timeout=30)
        assert holder(store) == {second.pid}
        print(f"standby caught up {took:.1f}s after the active runner was killed")
        assert len(dump(catalog)["stages.board"]) == 20
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
        ledger.close()


def test_the_runner_survives_the_database_going_away(own_postgres: OwnServices, tmp_path: Path) -> None:
    store = fresh_store("postgres", tmp_path, own_postgres.pg_url)
    settings = Settings(store=store)
    ledger = build_ledger(settings)
    for n in range(5):
        submit(ledger, *project_messages(1, n))
    log = tmp_path / "runner.log"
    runner = start_runner(store, log)
    try:
        catalog = Catalog(Db(settings))
        wait_caught_up(ledger, catalog)
        own_postgres.crash("postgres")  # the server crashes and comes back
        for n in range(5, 10):
            submit(ledger, *project_messages(1, n))
        wait_caught_up(ledger, catalog, timeout=60)
        assert runner.poll() is None, log.read_text()  # still running: it reconnected
        assert len(dump(catalog)["stages.board"]) == 10
    finally:
        runner.send_signal(signal.SIGTERM)
        runner.wait(timeout=30)
        ledger.close()
