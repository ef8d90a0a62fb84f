"""Reading your own writes (contract v1.1): post, then read with the receipt's position.

Against `yaosu serve` as people run it (its embedded runner woken by the commit), on both stores;
on PostgreSQL also with two servers and the read models followed by a separate `yaosu projections run`,
whose commits reach each server by NOTIFY: a write through either server is read through the other.
"""

from __future__ import annotations

import contextlib
import itertools
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from api.app import create_app
from infra.settings import Settings
from projections.read import ReadModels
from projections.runner import Runner
from service.ledger import Ledger
from tests.conftest import LOCAL, fresh_store, submit
from tests.e2e.test_server import ADMIN, SUPERVISOR, environment, serving
from tests.portal import admitted, msg

READ_MODEL_ENDPOINTS = ("/v1/libraries/municipal", "/v1/libraries/municipal/matrix", "/v1/stages", "/v1/ledger",
                        "/v1/stats/investment", "/v1/alerts", "/v1/parked", "/v1/warnings",
                        "/v1/rankings/districts?year=2021")


def project_code(n: int) -> str:
    return f"2021-620102-48-01-{n:06d}"


def post(http: httpx.Client, *messages: dict[str, Any]) -> int:
    answer = http.post("/v1/messages", json=list(messages), headers=ADMIN)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert all(r["status"] == "accepted" for r in results), results
    return max(r["position"] for r in results)


def read_own_writes(url: str, *others: str) -> None:
    """Each write, read back at once with the position it got: the stage board shows it, never the state before.
    With `others`, servers on the same store: each write goes through the next server, read through the one
    after it (a client behind a load balancer)."""
    urls = [url, *others]
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(httpx.Client(base_url=u, timeout=30)) for u in urls]
        turn = itertools.count()

        def write(*messages: dict[str, Any]) -> tuple[int, httpx.Client]:
            n = next(turn)
            return post(clients[n % len(clients)], *messages), clients[(n + 1) % len(clients)]

        def status_after(written: tuple[int, httpx.Client], code: str) -> str:
            position, http = written
            answer = http.get("/v1/stages", params={"min_position": position, "wait_ms": 5000}, headers=SUPERVISOR)
            assert answer.status_code == 200, answer.text
            assert int(answer.headers["Yaosu-Position"]) >= position
            return next(p["status"] for s in answer.json()["stages"] for p in s["projects"] if p["code"] == code)

        for n in range(1, 31):
            code = project_code(n)
            assert status_after(write(*admitted(code, "annual")), code) == "not_started"
            started = write(msg("construction.started", {"date": "2021-03-01"}, code=code,
                                at="2021-03-01T09:00:00+08:00"))
            assert status_after(started, code) == "under_construction"


def test_yaosu_serve_reads_its_own_writes(store: str) -> None:
    with serving(store) as url:
        read_own_writes(url)


def test_two_servers_and_a_separate_runner_each_read_what_was_written_through_the_other(
        pg_url: str, tmp_path: Path) -> None:
    """PostgreSQL: two `yaosu serve --no-projections` on one store, the read models followed by one separate
    `yaosu projections run`, each server told by NOTIFY: a write through one, read through the other with the
    position it got (issue 24).

    The servers come first, on a schema nothing has made yet."""
    store = fresh_store("postgres", tmp_path, pg_url)
    with serving(store, args=("--no-projections",)) as url, serving(store, args=("--no-projections",)) as other:
        runner = subprocess.Popen([sys.executable, "-m", "yaosu", "projections", "run"], env=environment(store),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            built_by_the_runner(url, runner)
            built_by_the_runner(other, runner)
            read_own_writes(url, other)
        finally:
            runner.terminate()
            runner.wait(timeout=30)


def built_by_the_runner(url: str, runner: subprocess.Popen[bytes]) -> None:
    """Until the separate runner has made the read models, the server says 503 read_model_not_ready and a
    client retries; on a busy machine the runner's first steps take a while. A runner that exits first
    fails the test; one that never builds is ended by the suite's per-test timeout."""
    with httpx.Client(base_url=url, timeout=30) as http:
        while (answer := http.get("/v1/stages", headers=SUPERVISOR)).status_code == 503:
            assert answer.json()["code"] == "read_model_not_ready", answer.text
            assert runner.poll() is None, f"the runner exited with {runner.returncode} before building"
            time.sleep(0.2)
        assert answer.status_code == 200, answer.text


def test_every_read_model_answer_says_its_position(ledger: Ledger, settings: Settings) -> None:
    submit(ledger, *admitted(project_code(1), "annual"))
    runner = Runner(ledger, settings)
    runner.run_until_caught_up()
    reads = ReadModels(settings)
    try:
        with TestClient(create_app(ledger, settings, reads), base_url=LOCAL) as client:
            for path in READ_MODEL_ENDPOINTS:
                answer = client.get(path, headers=SUPERVISOR)
                assert answer.status_code == 200, (path, answer.text)
                assert int(answer.headers["Yaosu-Position"]) == ledger.head(), path
    finally:
        runner.close()
        reads.close()


def test_a_position_not_reached_in_time_is_503_read_model_behind(ledger: Ledger, settings: Settings) -> None:
    runner = Runner(ledger, settings)
    runner.run_until_caught_up()
    reached = ledger.head()
    submit(ledger, admitted(project_code(2))[0])
    reads = ReadModels(settings)
    try:
        with TestClient(create_app(ledger, settings, reads), base_url=LOCAL) as client:
            for wanted, wait_ms in ((ledger.head(), 200), (ledger.head() + 1000, 5000)):
                answer = client.get("/v1/stages", params={"min_position": wanted, "wait_ms": wait_ms},
                                    headers=SUPERVISOR)
                assert answer.status_code == 503
                problem = answer.json()
                assert (problem["code"], problem["position"]) == ("read_model_behind", reached)
                assert answer.headers["Yaosu-Position"] == str(reached)
            runner.run_until_caught_up()
            answer = client.get("/v1/stages", params={"min_position": ledger.head(), "wait_ms": 0},
                                headers=SUPERVISOR)
            assert answer.status_code == 200 and answer.headers["Yaosu-Position"] == str(ledger.head())
            for bad in ({"min_position": -1}, {"wait_ms": 5001}, {"wait_ms": "soon"}):
                assert client.get("/v1/stages", params=bad, headers=SUPERVISOR).status_code == 400
    finally:
        runner.close()
        reads.close()


def test_kept_answers_are_given_again_only_while_the_read_models_stand_still(ledger: Ledger,
                                                                            settings: Settings) -> None:
    """Answers are kept per read-model position: asked again, the same bytes and position; after a
    write, the new state (as a server keeping no answers gives it), never the kept one."""
    submit(ledger, *admitted(project_code(1), "annual"))
    runner = Runner(ledger, settings)
    runner.run_until_caught_up()
    reads = ReadModels(settings)
    keeping, plain = create_app(ledger, settings, reads), create_app(ledger, replace(settings, answer_cache_mb=0), reads)
    try:
        with TestClient(keeping, base_url=LOCAL) as kept, TestClient(plain, base_url=LOCAL) as fresh:
            def answers(client: TestClient) -> dict[str, tuple[str, bytes]]:
                found = {}
                for path in READ_MODEL_ENDPOINTS:
                    answer = client.get(path, headers=SUPERVISOR)
                    assert answer.status_code == 200, (path, answer.text)
                    found[path] = (answer.headers["Yaosu-Position"], answer.content)
                return found

            before = answers(kept)
            assert answers(kept) == before == answers(fresh)
            submit(ledger, msg("construction.started", {"date": "2021-03-01"}, code=project_code(1),
                               at="2021-03-01T09:00:00+08:00"))
            runner.run_until_caught_up()
            after = answers(kept)
            assert after == answers(fresh)
            assert {position for position, _ in after.values()} == {str(ledger.head())}
            assert after["/v1/stages"][1] != before["/v1/stages"][1]
            behind = kept.get("/v1/stages", params={"min_position": ledger.head() + 1, "wait_ms": 0},
                              headers=SUPERVISOR)
            assert behind.status_code == 503 and behind.json()["code"] == "read_model_behind"
    finally:
        runner.close()
        reads.close()
