"""The pipeline on real stores (SQLite and PostgreSQL): durability, audit, idempotency, races."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from domain.commands import ProvideData
from domain.handlers import HANDLERS
from domain.quota import quota_pool_id
from infra.settings import Settings
from service.bootstrap import build_ledger
from service.ledger import SERIALISE_AFTER, Contended, Ledger
from tests.conftest import submit
from tests.portal import CODE, FACTOR_MESSAGES, admitted, energy_quota, land_quota, msg, reduction


def accept_all(ledger: Ledger, *bodies: Any) -> None:
    results = submit(ledger, *bodies)
    assert [r.status for r in results] == ["accepted"] * len(bodies), results


def test_events_survive_a_new_process_with_every_audit_field(ledger: Ledger, settings: Settings) -> None:
    land = msg("land.supplied", {"parcel": "LZ-2021-017", "area_mu": 86.5, "method": "transfer"},
               dept="natural_resources", at="2021-03-01T09:00:00+08:00", mid="nr-portal-2021-000042")
    accept_all(ledger, *admitted(CODE, "annual"), land_quota(100), land)
    reopened = build_ledger(settings)  # another process sees the same store
    try:
        history = reopened.history(CODE)
        assert [type(i.event).__name__ for i in history] == ["Registered", "Admitted", "Admitted", "LandSupplied"]
        positions = [i.position for i in history]
        assert positions == sorted(positions) and len(set(positions)) == 4
        last = history[-1].event
        assert last.audit.message_id == "nr-portal-2021-000042"
        assert last.audit.department == "natural_resources" and last.audit.user == "zhang.san"
        assert last.audit.source == "test-portal" and last.audit.submitted_by == "admin:test"
        assert last.audit.occurred_at.isoformat() == "2021-03-01T09:00:00+08:00"
        assert last.timestamp.tzinfo is not None and last.timestamp.year >= 2026  # recorded now, not in 2021
        assert last.area_mu == Decimal("86.5") and isinstance(last.area_mu, Decimal)
        project = reopened.project(CODE)
        assert project is not None and project.grants["nr-portal-2021-000042"].quantity == Decimal("86.5")
    finally:
        reopened.close()


def test_every_factor_message_is_stored_and_replayed(ledger: Ledger) -> None:
    accept_all(ledger, *admitted(CODE, "annual"), energy_quota(5000), land_quota(5000), reduction())
    accept_all(ledger, *[msg(t, p, dept=d) for t, (d, p) in FACTOR_MESSAGES.items()])
    project = ledger.project(CODE)
    assert project is not None
    assert Counter(g.factor for g in project.grants.values()) == Counter(
        {"funds": 1, "land": 1, "energy": 1, "emission": 1, "data": 1, "utilities": 1, "talent": 1})
    assert "I-1" in project.issues


def test_as_of_gives_the_state_from_what_had_occurred_by_then(ledger: Ledger) -> None:
    accept_all(ledger, *admitted(CODE, "annual"))
    accept_all(ledger, msg("construction.started", {"date": "2021-04-01"}, at="2021-04-01T10:00:00+08:00"),
               msg("funds.allocated", {"source": "own_funds", "amount": 100}, dept="finance",
                   at="2021-02-01T10:00:00+08:00"))  # reported after the start, occurred before it
    assert ledger.project(CODE, date(2021, 1, 9)) is None
    january = ledger.project(CODE, date(2021, 1, 31))
    assert january is not None and january.started_on is None and not january.grants
    march = ledger.project(CODE, date(2021, 3, 31))
    assert march is not None and march.started_on is None and len(march.grants) == 1
    april = ledger.project(CODE, date(2021, 4, 1))
    assert april is not None and april.started_on == date(2021, 4, 1)


def test_rejections_are_kept_with_code_reason_and_body(ledger: Ledger) -> None:
    stray = msg("data.provided", {"kind": "k", "reference": "r"}, dept="big_data")
    results = submit(ledger, stray, b"not json at all", {"type": "project.renamed"})
    assert [r.code for r in results] == ["unknown_project", "invalid", "invalid"]
    kept = ledger.rejections().items
    assert [i.event.code for i in kept] == ["unknown_project", "invalid", "invalid"]
    assert kept[0].event.message_id == stray["message_id"] and "payload" in kept[0].event.body
    assert kept[1].event.body == "not json at all"
    assert [i.event.code for i in ledger.rejections(after=kept[0].position).items] == ["invalid", "invalid"]


def test_a_failed_batch_stores_nothing_and_forgets_what_it_changed(
        ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    accept_all(ledger, *admitted(CODE))
    head = ledger.head()

    def half_done(cmd: Any, ws: Any, env: Any) -> None:  # a bug: changes the project, then fails
        ws.find_project(CODE).provide_data(cmd.kind, cmd.reference, env.audit)
        raise ValueError("boom")

    monkeypatch.setitem(HANDLERS, ProvideData, half_done)
    good = msg("funds.allocated", {"source": "own_funds", "amount": 1}, dept="finance")
    with pytest.raises(RuntimeError):
        submit(ledger, good, msg("data.provided", {"kind": "k", "reference": "r"}, dept="big_data"))
    assert ledger.head() == head  # not even the good message before it
    monkeypatch.undo()
    accept_all(ledger, good)  # the half-changed project was dropped from memory
    project = ledger.project(CODE)
    assert project is not None and [g.factor for g in project.grants.values()] == ["funds"]


def test_a_message_the_code_cannot_handle_is_kept_and_the_batch_goes_on(
        ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    accept_all(ledger, *admitted(CODE))

    def broken(cmd: Any, ws: Any, env: Any) -> None:
        raise KeyError("unexpected")

    monkeypatch.setitem(HANDLERS, ProvideData, broken)
    results = submit(ledger, msg("data.provided", {"kind": "k", "reference": "r"}, dept="big_data"),
                     msg("funds.allocated", {"source": "own_funds", "amount": 1}, dept="finance"))
    assert [(r.status, r.code) for r in results] == [("rejected", "invalid"), ("accepted", None)]
    assert "KeyError" in ledger.rejections().items[-1].event.reason


def race_on_one_project(ledgers: list[Ledger], threads: int, per_thread: int = 12) -> None:
    """`threads` threads on `ledgers` (as many processes would be: each serialises its own batches, so
    the races between them are decided by the store alone) post grants on one project, a third of them
    energy racing for the district's last units of quota: each is decided, none lost, none raised."""
    ledger = ledgers[0]
    accept_all(ledger, *admitted(CODE, "annual"), energy_quota(100))
    outcomes: list[str] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def post(thread: int) -> None:
        try:
            for n in range(per_thread):
                if n % 3 == 0:  # energy grants race for the district's last units of quota
                    body = msg("energy.granted", {"tce": 10, "year": 2021}, mid=f"t{thread}-{n}")
                else:
                    body = msg("data.provided", {"kind": "k", "reference": f"{thread}-{n}"}, dept="big_data",
                               mid=f"t{thread}-{n}")
                (result,) = submit(ledgers[thread % len(ledgers)], body)
                with lock:
                    outcomes.append(f"{body['type']}:{result.status}:{result.code}")
        except BaseException as error:  # noqa: BLE001 - what a caller would have got instead of a decision
            failures.append(error)

    workers = [threading.Thread(target=post, args=(t,)) for t in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert not failures, failures[:3]
    energy, data = threads * (per_thread // 3), threads * (per_thread - per_thread // 3)
    counts = Counter(outcomes)
    assert counts["data.provided:accepted:None"] == data
    assert counts["energy.granted:accepted:None"] == 10  # 100 tce / 10 tce: no more, no less
    assert counts["energy.granted:rejected:quota_exceeded"] == energy - 10
    project = ledger.project(CODE)
    assert project is not None
    assert Counter(g.factor for g in project.grants.values()) == {"data": data, "energy": 10}
    pool = ledger.repository.get(quota_pool_id("620102", 2021, "energy"))
    assert pool.remaining == 0 and len(pool.drawn) == 10
    assert len(ledger.history(CODE)) == 3 + data + 10


def test_eight_threads_interleaving_on_one_project_lose_nothing(ledger: Ledger, settings: Settings) -> None:
    other = build_ledger(settings)
    try:
        race_on_one_project([ledger, other], threads=8)
    finally:
        other.close()


def test_twenty_four_threads_on_six_ledgers_each_decide_every_message(ledger: Ledger, settings: Settings) -> None:
    # Far more contention than the busy machine that saw 8 threads raise after 8 short retries.
    others = [build_ledger(settings) for _ in range(5)]
    try:
        race_on_one_project([ledger, *others], threads=24)
    finally:
        for other in others:
            other.close()


def test_past_its_budget_a_batch_that_always_collides_is_contended_and_stores_nothing(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YAOSU_SUBMIT_BUDGET_SECONDS", "1")
    ledger, other = build_ledger(settings), build_ledger(settings)
    try:
        accept_all(ledger, *admitted(CODE))
        provide_data = HANDLERS[ProvideData]
        meanwhile: list[str] = []

        def another_process_changes_the_project_first(cmd: Any, ws: Any, env: Any) -> None:
            # Between this batch's read and its store, another process always changes the project.
            body = msg("funds.allocated", {"source": "own_funds", "amount": 1}, dept="finance")
            meanwhile.append(body["message_id"])
            assert [r.status for r in submit(other, body)] == ["accepted"]
            provide_data(cmd, ws, env)

        monkeypatch.setitem(HANDLERS, ProvideData, another_process_changes_the_project_first)
        contended = msg("data.provided", {"kind": "k", "reference": "r"}, dept="big_data", mid="contended-1")
        with pytest.raises(Contended) as raised:
            submit(ledger, contended)
        assert raised.value.retry_after == 1 and "nothing of it was stored" in str(raised.value)
        assert len(meanwhile) > SERIALISE_AFTER  # it collided, then waited for its turn, and still collided
        monkeypatch.undo()
        project = ledger.project(CODE)
        assert project is not None and "contended-1" not in project.grants and len(project.grants) == len(meanwhile)
        assert not [i for i in ledger.feed(0, 10_000).items if getattr(i.event, "message_id", None) == "contended-1"]
        assert [r.status for r in submit(ledger, contended)] == ["accepted"]  # sent again, it is decided
    finally:
        ledger.close()
        other.close()


def test_the_same_message_from_four_threads_has_one_effect(ledger: Ledger, settings: Settings) -> None:
    ledgers = [ledger, build_ledger(settings)]
    accept_all(ledger, *admitted(CODE))
    body = msg("funds.allocated", {"source": "own_funds", "amount": 100}, dept="finance", mid="same-id")
    statuses: list[str] = []
    barrier = threading.Barrier(4)

    def post(n: int) -> None:
        barrier.wait()
        statuses.extend(r.status for r in submit(ledgers[n % 2], body))

    threads = [threading.Thread(target=post, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == ["accepted", "duplicate", "duplicate", "duplicate"]
    project = ledger.project(CODE)
    assert project is not None and list(project.grants) == ["same-id"]
    assert sum(1 for i in ledger.history(CODE) if type(i.event).__name__ == "FundsAllocated") == 1
    ledgers[1].close()


def test_two_ledgers_on_one_store_detect_each_others_messages(ledger: Ledger, settings: Settings) -> None:
    other = build_ledger(settings)  # e.g. the API and a Kafka consumer
    try:
        accept_all(ledger, *admitted(CODE))
        body = msg("data.provided", {"kind": "k", "reference": "r"}, dept="big_data")
        accept_all(other, body)
        assert [r.status for r in submit(ledger, body)] == ["duplicate"]
        # `ledger` cached the project before `other` changed it; its next decision sees the change.
        accept_all(ledger, msg("data.provided", {"kind": "k", "reference": "r2"}, dept="big_data"))
        project = other.project(CODE)
        assert project is not None and len(project.grants) == 2
    finally:
        other.close()
