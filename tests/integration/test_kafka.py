"""Kafka end to end on the real broker and PostgreSQL: portal consumer, relay, crashes, scale-out."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.request import urlopen

import orjson
import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from consumers import relay as relay_module
from consumers.monitor import MONITOR, Monitor
from consumers.portal import KAFKA_PRINCIPAL
from consumers.relay import Relay
from domain.alerts import alerts_id
from infra import kafka
from infra.metrics import serve_process_metrics
from infra.settings import Settings
from projections.read import ReadModels
from projections.runner import Runner
from service.bootstrap import build_ledger
from service.ledger import Ledger
from tests.conftest import LOCAL, OwnServices, fresh_store
from tests.kafkatools import (
    business_load,
    crossing_projects,
    differences,
    portal_load,
    produce,
    produce_by_department,
    read_topic,
    signature,
    undisturbed,
    v1_1_key,
    v1_key,
    wait_settled,
)
from tests.portal import msg, reduction
from tools.common import free_port
from yaosu.demo import batches, demo_messages

SETUP, LOAD = portal_load()
HISTORY_FIELDS = {"position", "type", "event", "subject", "data", "occurred_at", "recorded_at", "actor", "source",
                  "message_id", "submitted_by"}


@pytest.fixture(scope="module")
def reference(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return undisturbed(fresh_store("postgres", tmp_path_factory.mktemp("ref"), pg_url), SETUP, LOAD)


def environment(settings: Settings, park_window: float) -> dict[str, str]:
    return {**os.environ, "YAOSU_STORE": settings.store, "YAOSU_KAFKA_BOOTSTRAP": str(settings.kafka_bootstrap),
            "YAOSU_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix, "YAOSU_PARK_WINDOW_SECONDS": str(park_window)}


def consumer_process(settings: Settings, log: Path, park_window: float = 3) -> subprocess.Popen[bytes]:
    """`yaosu consume portal` in a process of its own. A short parking window: a message for a project
    that never comes (the load has one) is rejected for good within seconds."""
    return subprocess.Popen([sys.executable, "-m", "yaosu", "consume", "portal", "--batch-size", "300"],
                            env=environment(settings, park_window), stdout=log.open("ab"), stderr=subprocess.STDOUT)


def unconsumed(settings: Settings, ledger: Ledger) -> int:
    """Messages on the portal topic past the offsets recorded in the store."""
    reader = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        name = kafka.topic(settings, kafka.PORTAL)
        tps = [TopicPartition(name, p) for p in reader.partitions_for_topic(name) or ()]
        ends = reader.end_offsets(tps)
        left = 0
        for tp in tps:
            recorded = ledger.position_of(kafka.tracking_name(name, tp.partition))
            left += ends[tp] - (recorded + 1 if recorded is not None else 0)
        return left
    finally:
        reader.close()


def wait_consumed(settings: Settings, ledger: Ledger, timeout: float = 180) -> None:
    """Until every message on the portal topic is consumed, and none of them waits parked."""
    deadline = time.monotonic() + timeout
    while (left := unconsumed(settings, ledger)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert left == 0, f"{left} portal messages still unconsumed after {timeout}s"
    wait_settled(ledger)


@pytest.fixture
def ledger(kafka_settings: Settings) -> Iterator[Ledger]:
    kafka.ensure_topics(kafka_settings, kafka.PORTAL, kafka.REJECTED, kafka.EVENTS, kafka.ALERTS)
    app = build_ledger(kafka_settings)
    yield app
    app.close()


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def test_ten_thousand_portal_messages_exactly_once_with_rejections_and_events_relayed(
        kafka_settings: Settings, ledger: Ledger, reference: dict[str, Any], tmp_path: Path) -> None:
    assert len(SETUP) + len(LOAD) >= 10_000
    produce(kafka_settings, SETUP)
    consumer = consumer_process(kafka_settings, tmp_path / "consumer.log")
    try:
        wait_consumed(kafka_settings, ledger)
        produce(kafka_settings, LOAD)
        wait_consumed(kafka_settings, ledger)
    finally:
        stop(consumer)
    assert not differences(signature(ledger), reference)

    relay = Relay(ledger, kafka_settings)
    relay.run(until_caught_up=True)
    # Contract events, not the store's own records (rolled-back attempts leave gaps in the ids).
    published = [i for i in ledger.feed(0, 1_000_000).items if relay_module.published(i.topic)]
    events = read_topic(kafka_settings, kafka.EVENTS)
    positions = {int(dict(r.headers)["position"]): r for r in events}
    assert set(positions) == {i.position for i in published} and len(events) == len(published)  # each once
    for item in published:  # domain events only, each with every field of the audit trail, keyed by district
        record = positions[item.position]
        value = orjson.loads(record.value)
        assert HISTORY_FIELDS <= set(value) and not value["type"].startswith("message.")
        assert record.key == ledger.district_of(item.event).encode() and len(record.key) == 6

    kept = {(i.event.message_id, i.event.body_hash) for i in ledger.rejections(0, 100_000).items if i.event.channel == "kafka"}
    rejected = read_topic(kafka_settings, kafka.REJECTED)
    forwarded = {int(dict(r.headers)["position"]): orjson.loads(r.value) for r in rejected}
    assert len(forwarded) == len(kept) > 100
    assert {v["code"] for v in forwarded.values()} >= {"invalid", "conflict", "not_admitted", "unknown_type"}
    assert all(v["detail_code"].startswith(f'{v["code"]}.') and isinstance(v["detail_params"], dict)
               for v in forwarded.values())  # what each reason says, by code (v1.2)
    garbage = [v for v in forwarded.values() if isinstance(v["message"], str)]
    assert len(garbage) == 60 and all(v["message"].startswith("garbage") for v in garbage)
    for record in rejected:  # each under the key its message came with
        message = orjson.loads(record.value)["message"]
        assert record.key == (v1_key(message) if isinstance(message, dict) else None)

    text = TestClient(create_app(ledger, kafka_settings), base_url=LOCAL).get("/metrics").text
    lag = {s.labels["name"]: s.value for family in text_string_to_metric_families(text) for s in family.samples
           if family.name in ("yaosu_consumer_lag_messages", "yaosu_relay_lag_events")}
    portal = kafka.topic(kafka_settings, kafka.PORTAL)
    assert lag == {**{kafka.tracking_name(portal, p): 0 for p in range(3)}, "relay:yaosu.events.v1": 0}


def test_crashes_restarts_and_outages_end_as_an_undisturbed_run(
        own_services: OwnServices, reference: dict[str, Any], tmp_path: Path) -> None:
    # Its own broker and database: crashing the shared ones would fail the tests beside it in the other worker.
    settings = Settings(store=fresh_store("postgres", tmp_path, own_services.pg_url),
                        kafka_bootstrap=own_services.kafka_bootstrap, kafka_topic_prefix="crash.")
    kafka.ensure_topics(settings, kafka.PORTAL, kafka.REJECTED, kafka.EVENTS, kafka.ALERTS)
    ledger = build_ledger(settings)
    log = tmp_path / "consumer.log"
    produce(settings, SETUP)
    consumer = consumer_process(settings, log)
    try:
        wait_consumed(settings, ledger)
        produce(settings, LOAD)
        rng = random.Random(2020)
        for kill in range(5):
            time.sleep(rng.uniform(0.5, 2.0))
            consumer.send_signal(signal.SIGKILL)
            consumer.wait()
            if kill == 2:
                own_services.crash("kafka")  # the broker dies too, and comes back
            if kill == 3:
                own_services.crash("postgres")  # and so does the database
            consumer = consumer_process(settings, log)
        wait_consumed(settings, ledger, timeout=300)
        assert not differences(signature(ledger), reference)
    finally:
        stop(consumer)
        ledger.close()
    assert log.read_text().count("from offset") >= 6  # it resumed from the store's offsets each time


def test_two_consumers_share_the_partitions_and_one_dies_mid_batch(
        kafka_settings: Settings, ledger: Ledger, reference: dict[str, Any], tmp_path: Path) -> None:
    produce(kafka_settings, SETUP)
    first = consumer_process(kafka_settings, tmp_path / "first.log")
    second = consumer_process(kafka_settings, tmp_path / "second.log")
    try:
        wait_consumed(kafka_settings, ledger)
        produce(kafka_settings, LOAD)
        time.sleep(2.5)
        first.send_signal(signal.SIGKILL)  # its partitions go to the second after a rebalance
        first.wait()
        wait_consumed(kafka_settings, ledger, timeout=300)
    finally:
        stop(first)
        stop(second)
    assert not differences(signature(ledger), reference)
    assert "partition" in (tmp_path / "second.log").read_text()


BUSINESS_FIRST, BUSINESS_REST = business_load()
BUSINESS = BUSINESS_FIRST + BUSINESS_REST
#: Projects drawing on another district's reduction: their histories interleave two partitions.
CROSSING = crossing_projects(BUSINESS)


@pytest.fixture(scope="module")
def business_reference(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The business-order load submitted straight to a store, in order: what Kafka must end as."""
    ledger = build_ledger(Settings(store=fresh_store("postgres", tmp_path_factory.mktemp("business"), pg_url)))
    for chunk in batches(BUSINESS, 500):
        ledger.submit(chunk, principal=KAFKA_PRINCIPAL, channel="kafka")
    found = signature(ledger, shared_in_order=True, unordered=CROSSING)
    ledger.close()
    return found


def produce_as_portals_learn(settings: Settings, ledger: Ledger, messages: list[dict[str, Any]],
                             key: Callable[[Any], bytes | None]) -> None:
    """As the departments' portals send, by department; an `allocation.adopted` (keyed by the city, on a
    partition of its own) as it happens in a city: adopted once what came before it is decided, and drawn
    on once it is recorded. Kafka keeps no order between partitions: only this causality orders it with
    the draws of every district (a year compressed into seconds would otherwise let a partition stalled
    by a crash decide a draw of March after the allocation of October)."""
    start = 0
    for at, message in enumerate(messages):
        if message["type"] == "allocation.adopted":
            for part in (messages[start:at], [message]):
                produce_by_department(settings, part, key)
                wait_consumed(settings, ledger, timeout=300)
            start = at + 1
    produce_by_department(settings, messages[start:], key)


def test_district_keys_keep_business_order_through_crashes(
        kafka_settings: Settings, ledger: Ledger, business_reference: dict[str, Any], tmp_path: Path) -> None:
    """Departments' portals produce as things happen, keyed by district (v1.2: an advance by its
    reduction's); quotas and reductions are too small for every grant, and advances draw on other
    districts' reductions too, so order decides who gets them; the consumers are killed at random."""
    assert len(CROSSING) >= 10
    log = tmp_path / "consumers.log"
    key = v1_1_key(BUSINESS)
    produce_by_department(kafka_settings, BUSINESS_FIRST, key)  # the crossing projects, admitted
    consumers = [consumer_process(kafka_settings, log), consumer_process(kafka_settings, log)]
    wait_consumed(kafka_settings, ledger)
    with ThreadPoolExecutor(1) as pool:
        producing = pool.submit(produce_as_portals_learn, kafka_settings, ledger, BUSINESS_REST, key)
        try:
            rng = random.Random(149)
            for _ in range(4):
                time.sleep(rng.uniform(1.0, 3.0))
                victim = rng.randrange(len(consumers))
                consumers[victim].send_signal(signal.SIGKILL)
                consumers[victim].wait()
                consumers[victim] = consumer_process(kafka_settings, log)
            producing.result()
            wait_consumed(kafka_settings, ledger, timeout=300)
        finally:
            for consumer in consumers:
                stop(consumer)
    found = signature(ledger, shared_in_order=True, unordered=CROSSING)
    # Histories, pools and reductions, in order, and every decision with its code.
    assert not differences(found, business_reference)
    codes = lambda sig: sorted(c for *_, c in sig["receipts"] if c)  # noqa: E731
    assert codes(found) == codes(business_reference) and codes(found).count("quota_exceeded") > 50
    assert codes(found).count("credit_exceeded") >= 10


def test_the_v1_keys_still_work_and_nothing_waits_for_good_by_mistake(
        kafka_settings: Settings, ledger: Ledger, business_reference: dict[str, Any], tmp_path: Path) -> None:
    """Keyed the v1 way, a reduction's messages and the advances from it sit on different partitions:
    an advance consumed first waits, parked, for its reduction instead of being rejected."""
    consumer = consumer_process(kafka_settings, tmp_path / "consumer.log", park_window=30)
    try:
        produce_by_department(kafka_settings, BUSINESS, v1_key)
        wait_consumed(kafka_settings, ledger, timeout=300)
    finally:
        stop(consumer)
    unknown = lambda sig: sorted((m, c) for m, _, _, c in sig["receipts"] if c and c.startswith("unknown_"))  # noqa: E731
    assert unknown(signature(ledger)) == unknown(business_reference)


def test_a_message_whose_prerequisite_comes_later_waits_parked_then_passes(
        kafka_settings: Settings, ledger: Ledger, tmp_path: Path) -> None:
    """An advance reaches the consumer before the registration of its reduction (its sender produced it
    first): it waits, and passes once the reduction is in."""
    setup = [m for m in BUSINESS if m["type"] != "emission.advanced"][:1500]
    produce(kafka_settings, setup, v1_1_key(BUSINESS))
    consumer = consumer_process(kafka_settings, tmp_path / "consumer.log", park_window=60)
    supervisor = {"Authorization": "Bearer dev-supervisor"}
    reads = ReadModels(kafka_settings)
    runner = Runner(ledger, kafka_settings)
    try:
        wait_consumed(kafka_settings, ledger)
        project = next(p for p in (ledger.project(m["project_code"]) for m in setup if m["type"] == "project.admitted")
                       if p is not None and p.libraries and not p.closed)
        early = msg("emission.advanced", {"reduction_id": "RD-LATER", "pollutant": "SO2", "tonnes": 2},
                    code=project.code, dept="ecology_environment", mid="early-1", at="2021-06-02T09:00:00+08:00")
        produce(kafka_settings, [early], v1_1_key([]))
        deadline = time.monotonic() + 60
        while not ledger.waiting()[0] and time.monotonic() < deadline:
            time.sleep(0.2)
        ((_, origin),) = ledger.waiting()[0].items()
        assert origin.tracking.startswith(f"kafka:{kafka.topic(kafka_settings, kafka.PORTAL)}:")
        app = TestClient(create_app(ledger, kafka_settings, reads), base_url=LOCAL)
        runner.run_until_caught_up()
        listed = app.get("/v1/parked", headers=supervisor).json()["parked"]
        assert [(p["message_id"], p["code"]) for p in listed] == [("early-1", "unknown_reference")]
        registration = reduction("RD-LATER", 50)  # no district: keyed by the city, 620100
        produce(kafka_settings, [registration], v1_1_key([registration]))
        wait_consumed(kafka_settings, ledger)  # and no message waits any more
        advanced = ledger.project(project.code)
        assert advanced is not None and advanced.grants["early-1"].detail["reduction_id"] == "RD-LATER"
        runner.run_until_caught_up()
        assert app.get("/v1/parked", headers=supervisor).json()["parked"] == []
    finally:
        stop(consumer)
        runner.close()
        reads.close()


def test_each_closed_day_is_checkpointed_once_and_published_to_the_audit_topic(kafka_settings: Settings) -> None:
    from datetime import timedelta

    from domain.reference import CITY_TZ
    from projections import chain
    from tests.conftest import submit
    from tests.portal import admitted

    ledger = build_ledger(kafka_settings)
    try:
        submit(ledger, *admitted("2021-620102-48-01-000001", "annual"))
        runner = Runner(ledger, kafka_settings)
        runner.run_until_caught_up()
        tables = runner.catalog.active(chain.HashChain)
        today = ledger.feed(0, 1).items[0].event.timestamp.astimezone(CITY_TZ).date()  # type: ignore[union-attr]
        [(position, head)] = runner.db.query(f"SELECT position, hash FROM {tables['days']} WHERE day = ?", [today])
        for _ in range(2):  # the second time, nothing is due
            chain.record_checkpoints(ledger, runner.db, tables, today + timedelta(days=1))
            runner.run_until_caught_up()
        runner.close()
        Relay(ledger, kafka_settings).run(until_caught_up=True)
        [record] = read_topic(kafka_settings, kafka.AUDIT)
        value = orjson.loads(record.value)
        assert value["type"] == "checkpoint.recorded" and record.key == b"checkpoint"
        assert value["data"] == {"day": today.isoformat(), "position": position, "head": head}
        checkpoint_at = int(dict(record.headers)["position"])
        assert checkpoint_at not in {int(dict(r.headers)["position"]) for r in read_topic(kafka_settings, kafka.EVENTS)}
        assert chain.verify(ledger, None, None).ok
    finally:
        ledger.close()


def test_the_relay_and_the_monitor_publish_contract_events_naming_key_and_subject_and_count_what_they_do(
        kafka_settings: Settings) -> None:
    ledger = build_ledger(kafka_settings)
    runner = Runner(ledger, kafka_settings)
    monitor = Monitor(ledger, kafka_settings)
    port = free_port()
    try:
        for chunk in batches(demo_messages(2021, projects=120), 500):
            ledger.submit(chunk, principal=KAFKA_PRINCIPAL, channel="kafka")
        runner.run_until_caught_up()
        counted = lambda: {(s.name, tuple(sorted(s.labels.items()))): s.value  # noqa: E731
                           for f in text_string_to_metric_families(urlopen(f"http://127.0.0.1:{port}/metrics").read()
                                                                   .decode()) for s in f.samples}
        serve_process_metrics(port)  # as `--metrics-port` does
        before = counted()
        made = monitor.run_once(date(2021, 12, 31))
        assert made > 0 and ledger.get(alerts_id(next(iter(monitor.recorded()))[0])) is not None
        Relay(ledger, kafka_settings).run(until_caught_up=True)
        records = read_topic(kafka_settings, kafka.EVENTS)
        values = [orjson.loads(r.value) for r in records]
        assert {v["event"] for v in values} >= {"project.registered", "reduction.advanced", "quota.created",
                                                "sedimentationalerts.changed", "landapproval.approved",
                                                "allocation.adopted"}
        assert not [v for v in values if v["event"] in ("sedimentationalerts.opened", "supervisionclock.started",
                                                        "supervisionclock.day_evaluated") or v["type"].startswith(
                                                            "message.")]
        for record, value in zip(records, values):  # each names what its key means, and its subject
            assert value["district"].encode() == record.key
            kind = value["event"].partition(".")[0]
            names = {"project": ["project_code"], "reduction": ["reduction_id"], "quota": ["year", "factor"],
                     "landapproval": ["approval_id"], "allocation": ["allocation_id"],  # v1.2
                     "sedimentationalerts": ["project_code"] if value.get("project_code") else ["approval_id"]}[kind]
            assert all(value[name] not in (None, "") for name in names), value
            if kind == "reduction":
                assert value["reduction_id"].startswith("RD-")
        alerts = [orjson.loads(r.value) for r in read_topic(kafka_settings, kafka.ALERTS)]
        assert len(alerts) == made and all(r.key == a["district"].encode()
                                           for r, a in zip(read_topic(kafka_settings, kafka.ALERTS), alerts))

        after = counted()
        grew = lambda name, **labels: (after.get((name, tuple(sorted(labels.items()))), 0)  # noqa: E731
                                       - before.get((name, tuple(sorted(labels.items()))), 0))
        events_topic = kafka.topic(kafka_settings, kafka.EVENTS)
        assert grew("yaosu_relay_records_total", topic=events_topic) == len(records)
        assert after[("yaosu_relay_behind_events", (("name", relay_module.TRACKING),))] == 0
        assert after[("yaosu_relay_position", (("name", relay_module.TRACKING),))] == ledger.position_of(
            relay_module.TRACKING)
        changes = Counter(a["change"] for a in alerts)
        for change, n in changes.items():
            assert grew("yaosu_monitor_alert_changes_total", change=change) == n
            assert grew("yaosu_monitor_alert_changes_published_total", change=change) == n
        assert grew("yaosu_monitor_evaluations_total", monitor=MONITOR) == 1
        assert after[("yaosu_monitor_behind_seconds", (("monitor", MONITOR),))] == 0
    finally:
        monitor.close()
        runner.close()
        ledger.close()
