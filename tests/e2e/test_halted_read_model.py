"""A served store in which an event appears that some read models cannot apply (put there behind the
API, as an older version or a bug would leave it): within seconds `/readyz`, `/metrics` and the
console say which read models stopped where, the others go on serving fresh answers, and an
operator's recorded decision (`yaosu projections skip`) sets one going again."""

from __future__ import annotations

import httpx

from infra.settings import Settings
from service.bootstrap import build_ledger
from tests.console import sign_in
from tests.e2e.test_server import ADMIN, SUPERVISOR, serving, yaosu
from tests.integration.test_halts import LATER, NEEDS_A_NAME, eventually, inject, registration_of
from tests.portal import CODE, admitted


def test_a_halt_is_seen_by_every_reader_and_a_recorded_skip_ends_it(store: str) -> None:
    with serving(store) as server:
        halt_seen_and_skipped(server, store)


def halt_seen_and_skipped(server: str, store: str) -> None:
    http = httpx.Client(base_url=server, timeout=30)
    assert http.post("/v1/messages", json=admitted(CODE, "annual"), headers=ADMIN).status_code == 200
    behind_the_api = build_ledger(Settings(store=store))
    try:
        poison = inject(behind_the_api, registration_of(behind_the_api, "2021-620102-48-01-000777"),
                        lambda state: state.pop("name"))
    finally:
        behind_the_api.close()
    later = http.post("/v1/messages", json=admitted(LATER), headers=ADMIN).json()["results"][-1]["position"]

    def halted() -> set[str]:
        answer = http.get("/readyz")
        return {h["read_model"] for h in answer.json().get("halted", [])} if answer.status_code == 503 else set()

    eventually(lambda: halted() == NEEDS_A_NAME, "/readyz names the read models that stopped")
    problem = http.get("/readyz").json()
    assert problem["code"] == "read_model_halted"
    assert all(h["event_position"] == poison and h["position"] == poison - 1 for h in problem["halted"])
    assert f'event_position="{poison}",generation="1",projection="stages",state="active"}} 1.0' in \
        http.get("/metrics").text
    # The others go on: the audit search already lists what came after the event.
    found = http.get(f"/v1/audit?project={LATER}&min_position={later}&wait_ms=5000", headers=SUPERVISOR)
    assert found.status_code == 200 and found.json()["entries"]
    # A reader of a stopped read model is answered as of where it stopped, never as if it were current.
    assert int(http.get("/v1/stages", headers=SUPERVISOR).headers["Yaosu-Position"]) == poison - 1
    assert http.get(f"/v1/stages?min_position={later}&wait_ms=200", headers=SUPERVISOR).status_code == 503

    console = httpx.Client(base_url=server, timeout=30)
    sign_in(console)
    page = console.get("/console/health")
    assert page.status_code == 200 and 'id="halted"' in page.text and "已停止" in page.text

    done = yaosu("projections", "skip", "stages", "--position", str(poison), "--reason", "测试写入的无名登记",
                 "--operator", "wang.wu", store=store)
    assert done.returncode == 0, done.stderr
    eventually(lambda: halted() == NEEDS_A_NAME - {"stages"}, "the recorded decision sets stages going again")
    answer = http.get(f"/v1/stages?min_position={later}&wait_ms=5000", headers=SUPERVISOR)
    assert answer.status_code == 200 and int(answer.headers["Yaosu-Position"]) >= later
    status = yaosu("projections", "status", store=store)
    assert status.returncode == 1 and "HALTED libraries" in status.stdout and "HALTED stages" not in status.stdout
