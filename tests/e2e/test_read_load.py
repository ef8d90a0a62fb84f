"""Readers waiting for a position cannot take the server down (issue 19, item 5).

Against `yaosu serve --no-projections` as people run it, on both stores, with its read models
deliberately behind (built, then left at position 0 while messages are posted): more readers wait
with `min_position` than the server has worker threads and pooled connections, and beyond the
bound of waiters. The ones beyond are refused at once, `/healthz`, `/readyz` and plain reads answer
while the others still wait, and once a runner catches up a waiter gets its answer.
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import replace
from typing import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as settings_of_hypothesis
from hypothesis import strategies as st

from api.app import create_app
from api.reading import Answers
from infra.settings import Settings
from projections.read import CONNECTIONS, ReadModels
from projections.runner import Runner
from service.ledger import Ledger
from tests.conftest import LOCAL, submit
from tests.e2e.test_read_your_writes import post, project_code
from tests.e2e.test_server import SUPERVISOR, environment, serving, yaosu
from tests.portal import admitted

THREADS, BOUND, REFUSED = 2, CONNECTIONS + 2, 4
#: Generous: only a broken server takes this long (the waits themselves are 5 s).
PATIENCE = 120


def test_waiting_readers_hold_no_thread_nor_connection_and_are_bounded(store: str) -> None:
    assert BOUND > max(THREADS, CONNECTIONS)
    built = yaosu("projections", "rebuild", store=store)  # built at position 0, and then left behind
    assert built.returncode == 0, built.stderr
    env = {**environment(store), "YAOSU_WORKER_THREADS": str(THREADS), "YAOSU_MAX_WAITING": str(BOUND)}
    with serving(store, env=env, args=("--no-projections",)) as url, \
            httpx.Client(base_url=url, timeout=PATIENCE, headers=SUPERVISOR) as http:
        position = post(http, *admitted(project_code(1), "annual"))

        def waiter() -> httpx.Response:
            with httpx.Client(base_url=url, timeout=PATIENCE, headers=SUPERVISOR) as own:
                return own.get("/v1/stages", params={"min_position": position, "wait_ms": 5000})

        with ThreadPoolExecutor(max_workers=BOUND + REFUSED) as pool:
            asked = [pool.submit(waiter) for _ in range(BOUND + REFUSED)]
            refused_ones = first_answered(asked, REFUSED)
            for refused in (f.result() for f in refused_ones):
                assert refused.status_code == 503, refused.text
                assert refused.json()["code"] == "too_many_waiting" and refused.headers["Retry-After"]
            # BOUND readers wait now, and nothing moves the read models: none can be answered yet.
            assert http.get("/healthz").status_code == 200
            assert http.get("/readyz").status_code == 200
            plain = http.get("/v1/stages")
            assert plain.status_code == 200 and plain.headers["Yaosu-Position"] == "0"
            metrics = http.get("/metrics").text
            assert f"yaosu_readers_waiting {float(BOUND)}" in metrics
            waiting = [f for f in asked if f not in refused_ones]
            assert len(waiting) == BOUND and not any(f.done() for f in waiting), \
                "a waiter was answered before /healthz, /readyz and a plain read"
            for late in (f.result(timeout=PATIENCE) for f in waiting):
                assert late.status_code == 503 and late.json()["code"] == "read_model_behind", late.text
                assert late.headers["Yaosu-Position"] == "0"
        assert "yaosu_readers_waiting 0.0" in http.get("/metrics").text  # every one left

        runner = subprocess.Popen([sys.executable, "-m", "yaosu", "projections", "run"], env=environment(store),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + PATIENCE
            while True:
                seen = http.get("/v1/stages", params={"min_position": position, "wait_ms": 5000})
                if seen.status_code == 200 or time.monotonic() > deadline:
                    break
                assert seen.json()["code"] == "read_model_behind", seen.text
            assert seen.status_code == 200, seen.text
            assert int(seen.headers["Yaosu-Position"]) >= position
        finally:
            runner.terminate()
            runner.wait(timeout=30)


def first_answered(asked: list[Future[httpx.Response]], count: int) -> list[Future[httpx.Response]]:
    """Those answered once at least `count` are (failing clearly if they are not)."""
    deadline = time.monotonic() + PATIENCE
    while sum(f.done() for f in asked) < count:
        if time.monotonic() > deadline:
            pytest.fail(f"fewer than {count} of {len(asked)} readers were answered in {PATIENCE} s")
        wait([f for f in asked if not f.done()], timeout=1, return_when=FIRST_COMPLETED)
    return [f for f in asked if f.done()]


# --- the answer cache (item 6) ----------------------------------------------------------------


def held(answers: Answers) -> int:
    """What the kept answers hold, measured apart from the cache's own count: keys as written out,
    headers and bodies."""
    return sum(len(repr(key)) + len(kept[1]) + sum(len(name) + len(value) for name, value in kept[2])
               for key, kept in answers._kept.items())


@contextmanager
def answering(ledger: Ledger, settings: Settings, cache_mb: float) -> Iterator[tuple[TestClient, Answers]]:
    submit(ledger, *admitted(project_code(1), "annual"))
    runner = Runner(ledger, settings)
    runner.run_until_caught_up()
    runner.close()
    reads = ReadModels(settings)
    app = create_app(ledger, replace(settings, answer_cache_mb=cache_mb), reads)
    try:
        with TestClient(app, headers=SUPERVISOR, base_url=LOCAL) as client:
            yield client, app.state.answers
    finally:
        reads.close()


def test_parameters_a_route_does_not_declare_are_not_kept(ledger: Ledger, settings: Settings) -> None:
    with answering(ledger, settings, cache_mb=1) as (client, answers):
        first = client.get("/v1/audit", params={"limit": 5})
        assert first.status_code == 200 and len(answers._kept) == 1
        for n in range(600):
            junk = client.get("/v1/audit", params={"limit": "005", f"junk{n}": "x" * 2000, "after": 0})
            assert (junk.status_code, junk.content) == (200, first.content)
        assert len(answers._kept) == 1, "undeclared or differently written parameters made answers of their own"
        assert held(answers) <= answers.size <= answers.capacity


@given(actors=st.lists(st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1,
                               max_size=200), min_size=200, max_size=400))
@settings_of_hypothesis(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_budget_counts_keys_headers_and_bodies(ledger: Ledger, settings: Settings, actors: list[str]) -> None:
    """However many distinct (declared) parameters are asked, what is kept stays within the budget."""
    with answering(ledger, settings, cache_mb=1 / 64) as (client, answers):  # 16 KiB
        for actor in actors:
            assert client.get("/v1/audit", params={"actor": actor}).status_code == 200
        assert held(answers) <= answers.size <= answers.capacity
