"""A stored event a read model cannot apply stops that read model there, loudly, and nothing else.

The event is put in the store behind the API, as an older version's store or a bug would leave one:
the read models that cannot apply it halt at the position before it (the others go on), `/readyz`,
`/metrics`, `yaosu projections status` and the console say so, each retries, and only an operator's
decision, recorded in the store, makes one go on without it.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from typing import Any, Callable, Iterator
from unittest import mock

import orjson
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from domain.project import Project, project_id
from domain.skips import EventSkip
from infra.settings import Settings
from projections import runner as runner_module
from projections.audit import AuditTrail
from projections.audit import searched as audit_search
from projections.catalog import Catalog
from projections.libraries import Libraries
from projections.model import Projection, Table
from projections.read import ReadModels
from projections.runner import Runner
from service.ledger import Ledger
from tests.conftest import LOCAL, submit
from tests.console import sign_in
from tests.portal import CODE, admitted, msg, register
from yaosu.cli import main

SUPERVISOR = {"Authorization": "Bearer dev-supervisor"}
#: A project registered after the event that cannot be applied.
LATER = "2021-620102-48-01-000888"
#: The read models that read a registration's name (and so cannot apply one without it).
NEEDS_A_NAME = {"libraries", "stages", "sedimentation", "supervision", "directory"}


def inject(ledger: Ledger, event: Any, change: Any) -> int:
    """Store `event` with its JSON changed by `change` straight through the recorder (no rule, no
    parser), as a store written by another version would hold it; returns its position."""
    stored = ledger.mapper.to_stored_event(event)
    state = orjson.loads(stored.state)
    change(state)
    ledger.recorder.insert_events([dataclasses.replace(stored, state=orjson.dumps(state))])
    return ledger.head()


def registration_of(ledger: Ledger, code: str) -> Any:
    """A valid registration event of a new project `code`, copied from the one of `CODE` (never saved)."""
    first = next(iter(ledger.events.get(project_id(CODE))))
    return dataclasses.replace(first, originator_id=project_id(code), code=code)


@pytest.fixture
def broken(ledger: Ledger) -> Iterator[tuple[Ledger, int]]:
    """A store with one project, then a registration without its name, then another project."""
    submit(ledger, *admitted(CODE, "annual"))
    position = inject(ledger, registration_of(ledger, "2021-620102-48-01-000777"), lambda s: s.pop("name"))
    submit(ledger, *admitted(LATER))
    yield ledger, position


def halted(runner: Runner) -> dict[str, int]:
    return {live.name: live.halt.event_position for live in runner.generations.values() if live.halt is not None}


def test_a_read_model_halts_at_the_event_it_cannot_apply_and_only_a_recorded_skip_moves_it_on(
        broken: tuple[Ledger, int], settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    ledger, poison = broken
    runner = Runner(ledger, settings, batch_size=100)
    try:
        runner.run_until_caught_up()
        assert halted(runner) == {name: poison for name in NEEDS_A_NAME}
        for live in runner.generations.values():
            if live.name in NEEDS_A_NAME:
                assert live.position == poison - 1  # everything before it, nothing at or after it
            else:
                assert live.position == ledger.head()  # the others go on
        assert "cannot apply the event at position" in caplog.text and "yaosu projections skip" in caplog.text

        # It stays there while more arrives (retrying, not skipping), and every reader is told.
        submit(ledger, msg("stage.advanced", {"stage": "generation"}, code=LATER))
        runner.run_until_caught_up()
        assert runner.generations["libraries"].position == poison - 1
        assert runner.generations["audit"].position == ledger.head()
        reads = ReadModels(settings)
        try:
            with TestClient(create_app(ledger, settings, reads), base_url=LOCAL) as client:
                ready = client.get("/readyz")
                assert ready.status_code == 503 and ready.json()["code"] == "read_model_halted"
                assert {h["read_model"] for h in ready.json()["halted"]} == NEEDS_A_NAME
                assert all(h["event_position"] == poison and h["position"] == poison - 1
                           for h in ready.json()["halted"])
                assert f"libraries at position {poison - 1}" in ready.json()["detail"]
                metrics = client.get("/metrics").text
                assert (f'yaosu_projection_halted{{event_position="{poison}",generation="1",projection="libraries",'
                        'state="active"} 1.0') in metrics
                assert 'yaosu_projection_halted{event_position="",generation="1",projection="audit",state="active"} 0.0' \
                    in metrics
                sign_in(client)
                page = client.get("/console/health")
                assert page.status_code == 200 and 'id="halted"' in page.text
                assert f"yaosu projections skip libraries --position {poison}" in page.text
                # A reader of a halted read model is answered as of where it stopped, and says so.
                members = client.get("/v1/libraries/municipal", headers=SUPERVISOR)
                assert int(members.headers["Yaosu-Position"]) == poison - 1
        finally:
            reads.close()

        # An operator decides, for one read model: recorded in the store, with who and why.
        environment = {"YAOSU_STORE": settings.store}
        with mock.patch.dict(os.environ, environment):
            assert main(["projections", "skip", "libraries", "--position", str(poison - 1), "--reason", "x"]) == 2
            assert main(["projections", "skip", "libraries", "--position", str(poison), "--reason",
                         "registration without a name, stored by a test", "--operator", "li.si"]) == 0
            assert main(["projections", "skip", "libraries", "--position", str(poison), "--reason", "again"]) == 2
        decisions = [i.event for i in ledger.feed(poison, 1000).items if isinstance(i.event, EventSkip.Decided)]
        assert [(d.read_model, d.position, d.audit.user) for d in decisions] == [("libraries", poison, "li.si")]
        runner.run_until_caught_up()
        with ReadModels(settings).snapshot(AuditTrail) as view:  # the audit search finds who decided
            found = audit_search(view.of(AuditTrail), {"actor": "li.si"}, 0, 10)
        assert [(e["type"], e["subject"]) for e in found] == [("read_model.event_skipped", "libraries")]
        assert runner.generations["libraries"].position == ledger.head()
        assert halted(runner) == {name: poison for name in NEEDS_A_NAME - {"libraries"}}
        assert {h.name for h in Catalog(runner.db).halts()} == NEEDS_A_NAME - {"libraries"}
    finally:
        runner.close()

    # The decision is taken again by every later build of that read model, and by no other.
    rebuilt = Runner(ledger, settings)
    try:
        rebuilt.rebuild(["libraries", "stages"])
        assert halted(rebuilt) == {"stages": poison}
        assert rebuilt.generations["libraries"].position == ledger.head()
    finally:
        rebuilt.close()


def test_a_halted_read_model_goes_on_by_itself_once_the_event_applies(
        broken: tuple[Ledger, int], settings: Settings) -> None:
    """A failure that passes (a fixed version, a value the table takes again) needs no decision."""
    ledger, poison = broken
    runner = Runner(ledger, settings, projections=[Libraries])
    try:
        runner.run_until_caught_up()
        assert halted(runner) == {"libraries": poison}
        live = runner.generations["libraries"]
        fixed = Libraries.registered
        with mock.patch.object(Libraries, "registered", lambda self, e: fixed(self, e) if hasattr(e, "name") else None):
            live.rolled_back()  # the running instance takes the fixed code, as a restart would
            live.next_try = 0.0
            runner.run_until_caught_up()
        assert halted(runner) == {}
        assert live.position == ledger.head()
        assert Catalog(runner.db).halts() == []
    finally:
        runner.close()


def test_a_restarted_runner_finds_the_halt_again_and_keeps_it(broken: tuple[Ledger, int], settings: Settings) -> None:
    ledger, poison = broken
    for _ in range(2):
        runner = Runner(ledger, settings)
        try:
            runner.run_until_caught_up()
            assert halted(runner) == {name: poison for name in NEEDS_A_NAME}
        finally:
            runner.close()
    halts = Catalog(Runner(ledger, settings).db).halts()
    assert {h.name for h in halts} == NEEDS_A_NAME and all(h.retries >= 1 for h in halts)


def test_text_with_nul_stored_by_an_older_version_reaches_every_read_model(ledger: Ledger, settings: Settings) -> None:
    """PostgreSQL's text cannot hold NUL: a read model shows U+FFFD in its place, the store keeps the original."""
    submit(ledger, *admitted(CODE, "annual"))
    code = "2021-620102-48-01-000778"
    inject(ledger, registration_of(ledger, code), lambda s: s.update(name="城关\x00项目"))
    submit(ledger, msg("project.admitted", {"library": "municipal"}, code=code))
    runner = Runner(ledger, settings)
    try:
        runner.run_until_caught_up()
        assert halted(runner) == {}
        assert all(live.position == ledger.head() for live in runner.generations.values())
    finally:
        runner.close()
    reads = ReadModels(settings)
    try:
        with TestClient(create_app(ledger, settings, reads), base_url=LOCAL) as client:
            members = client.get("/v1/libraries/municipal", headers=SUPERVISOR).json()["members"]
            assert {m["name"] for m in members if m["code"] == code} == {"城关\ufffd项目"}
            history = client.get(f"/v1/projects/{code}/history", headers=SUPERVISOR).json()["events"]
            assert history[0]["data"]["name"] == "城关\x00项目"
            assert client.get("/readyz").status_code == 200
    finally:
        reads.close()


def test_registration_without_its_name_is_what_the_fixture_stores(ledger: Ledger) -> None:
    submit(ledger, register())
    position = inject(ledger, registration_of(ledger, "2021-620102-48-01-000779"), lambda s: s.pop("name"))
    (item,) = ledger.feed(position - 1, 1).items
    assert isinstance(item.event, Project.Registered) and not hasattr(item.event, "name")


def test_a_runner_that_fails_outside_any_read_model_is_not_ready_until_it_follows_again(
        ledger: Ledger, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a read model's event but the runner itself (a bug, a broken read): loud, and never a silent stop."""
    submit(ledger, *admitted(CODE, "annual"))
    monkeypatch.setattr(runner_module, "RETRY_FIRST_SECONDS", 0.1)
    runner = Runner(ledger, settings, poll_seconds=0.05)
    failing = threading.Event()
    reading = runner.ledger.notifications_after

    def broken_read(*args: Any, **kwargs: Any) -> Any:
        if failing.is_set():
            raise RuntimeError("a fault of the runner")
        return reading(*args, **kwargs)

    monkeypatch.setattr(runner.ledger, "notifications_after", broken_read)
    reads = ReadModels(settings)
    app = create_app(ledger, settings, reads)
    app.state.runner = runner
    follower = threading.Thread(target=runner.run_forever)
    try:
        follower.start()
        with TestClient(app, base_url=LOCAL) as client:
            eventually(lambda: client.get("/readyz").status_code == 200, "ready while it follows")
            failing.set()
            eventually(lambda: client.get("/readyz").json().get("code") == "projections_failing", "not ready")
            assert "a fault of the runner" in client.get("/readyz").json()["detail"]
            failing.clear()
            eventually(lambda: client.get("/readyz").status_code == 200, "ready again once it follows")
    finally:
        runner.stop()
        follower.join(timeout=30)
        runner.close()
        reads.close()


def eventually(check: Callable[[], bool], what: str, seconds: float = 60) -> None:
    """Wait for `check` to hold, looking every twentieth of a second; fail naming `what` if it never does."""
    for _ in range(int(seconds / 0.05)):  # a bounded wait for a state, not a measure of speed
        if check():
            return
        time.sleep(0.05)
    pytest.fail(f"not within {seconds} s: {what}")


class SettlesBadly(Libraries):
    """Applies every event, but its derived work once caught up fails: a halt of its own, not the runner's."""

    name = "settles_badly"

    def settle(self, caught_up: bool) -> bool:
        if caught_up:
            raise ValueError("derived work that cannot be done")
        return False


def test_derived_work_that_fails_halts_that_read_model_and_the_others_go_on(ledger: Ledger, settings: Settings) -> None:
    submit(ledger, *admitted(CODE, "annual"))
    runner = Runner(ledger, settings, projections=[Libraries, SettlesBadly])
    try:
        runner.run_until_caught_up()
        broken = runner.generations["settles_badly"]
        assert broken.halt is not None and broken.halt.event_type == "settle"
        assert runner.generations["libraries"].position == ledger.head()
        assert runner.trouble is None
        assert [h.name for h in Catalog(runner.db).halts()] == ["settles_badly"]
    finally:
        runner.close()


class WritesBadly(Projection):
    """Applies a registration in memory, but its row holds a number no integer column takes: the database
    refuses it only when the batch is written (on PostgreSQL at the end of the pipeline carrying every read
    model's writes: whose they were is found by writing each alone)."""

    name = "writes_badly"
    version = 1
    tables = (Table("numbers", {"code": "TEXT", "n": "INTEGER"}, key=("code",)),)
    handlers = {Project.Registered: "registered"}

    def registered(self, e: Any) -> None:
        # 2**63: sent whole (one past the largest signed 64-bit integer, which both stores' clients can
        # send), refused by the database: SQLite's binding and PostgreSQL's INTEGER column.
        self.rows["numbers"].put({"code": e.code, "n": 2 ** 63})


def test_a_row_the_database_refuses_halts_the_read_model_that_wrote_it_and_the_others_go_on(
        ledger: Ledger, settings: Settings) -> None:
    submit(ledger, *admitted(CODE, "annual"))
    registered = next(n.id for n in ledger.notifications_after(0, 100) if n.topic.endswith("Project.Registered"))
    runner = Runner(ledger, settings, projections=[Libraries, WritesBadly])
    try:
        runner.run_until_caught_up()
        broken = runner.generations["writes_badly"]
        assert broken.halt is not None and broken.halt.event_position == registered
        assert broken.halt.error.startswith(("NumericValueOutOfRange", "OverflowError")), broken.halt.error
        assert broken.position == registered - 1
        assert runner.generations["libraries"].position == ledger.head()  # written in the same batches
        assert runner.trouble is None
        submit(ledger, msg("stage.advanced", {"stage": "generation"}, code=CODE))
        runner.run_until_caught_up()  # the connection is fit for the next batch
        assert runner.generations["libraries"].position == ledger.head()
        assert [h.name for h in Catalog(runner.db).halts()] == ["writes_badly"]
    finally:
        runner.close()
