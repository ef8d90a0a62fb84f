"""Kafka end to end on the real broker and PostgreSQL: portal consumer, relay, crashes, scale-out."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import orjson
import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition

from api.app import create_app
from consumers.portal import KAFKA_PRINCIPAL
from consumers.relay import Relay
from infra import kafka
from infra.bootstrap import build_ledger
from infra.ledger import Ledger
from infra.settings import Settings
from tests.conftest import fresh_store
from tests.kafkatools import differences, portal_load, produce, read_topic, signature
from tools import services
from yaosu.demo import batches

SETUP, LOAD = portal_load()


@pytest.fixture(scope="module")
def reference(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same messages submitted straight to a store, undisturbed: what every run must end as."""
    ledger = build_ledger(Settings(store=fresh_store("postgres", tmp_path_factory.mktemp("ref"), pg_url)))
    for chunk in [SETUP, *batches(LOAD, 500)]:
        ledger.submit(chunk, principal=KAFKA_PRINCIPAL, channel="kafka")
    found = signature(ledger)
    ledger.close()
    return found


def environment(settings: Settings) -> dict[str, str]:
    return {**os.environ, "YAOSU_STORE": settings.store, "YAOSU_KAFKA_BOOTSTRAP": str(settings.kafka_bootstrap),
            "YAOSU_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix}


def consumer_process(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "yaosu", "consume", "portal", "--batch-size", "300"],
                            env=environment(settings), stdout=log.open("ab"), stderr=subprocess.STDOUT)


def unconsumed(settings: Settings, ledger: Ledger) -> int:
    """Messages on the portal topic past the offsets recorded in the store."""
    reader = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        name = kafka.topic(settings, kafka.PORTAL)
        tps = [TopicPartition(name, p) for p in reader.partitions_for_topic(name) or ()]
        ends = reader.end_offsets(tps)
        left = 0
        for tp in tps:
            recorded = ledger.recorder.max_tracking_id(f"kafka:{name}:{tp.partition}")
            left += ends[tp] - (recorded + 1 if recorded is not None else 0)
        return left
    finally:
        reader.close()


def wait_consumed(settings: Settings, ledger: Ledger, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while (left := unconsumed(settings, ledger)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert left == 0, f"{left} portal messages still unconsumed after {timeout}s"


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
    stored = {i.position for i in ledger.feed(0, 1_000_000).items}  # (rolled-back attempts leave gaps in the ids)
    events = read_topic(kafka_settings, kafka.EVENTS)
    positions = {int(dict(r.headers)["position"]) for r in events}
    assert positions == stored and len(events) == len(stored)  # every stored event, once
    first = orjson.loads(next(r for r in events if dict(r.headers)["position"] == b"1").value)
    assert {"position", "type", "data", "occurred_at", "recorded_at", "actor", "message_id"} <= set(first)

    kept = {(i.event.message_id, i.event.body_hash) for i in ledger.rejections(0, 100_000).items if i.event.channel == "kafka"}
    rejected = read_topic(kafka_settings, kafka.REJECTED)
    forwarded = {int(dict(r.headers)["position"]): orjson.loads(r.value) for r in rejected}
    assert len(forwarded) == len(kept) > 100
    assert {v["code"] for v in forwarded.values()} >= {"invalid", "conflict", "not_admitted", "unknown_type"}
    garbage = [v for v in forwarded.values() if isinstance(v["message"], str)]
    assert len(garbage) == 60 and all(v["message"].startswith("garbage") for v in garbage)

    metrics = TestClient(create_app(ledger, kafka_settings)).get("/metrics").text
    for partition in range(3):  # the lag figures: nothing left on the portal topic, nothing unrelayed
        assert f'yaosu_tracked_lag{{name="kafka:{kafka.topic(kafka_settings, kafka.PORTAL)}:{partition}"}} 0' in metrics
    assert 'yaosu_tracked_lag{name="relay:yaosu.events.v1"} 0' in metrics


def test_crashes_restarts_and_outages_end_as_an_undisturbed_run(
        kafka_settings: Settings, ledger: Ledger, reference: dict[str, Any], tmp_path: Path) -> None:
    log = tmp_path / "consumer.log"
    produce(kafka_settings, SETUP)
    consumer = consumer_process(kafka_settings, log)
    try:
        wait_consumed(kafka_settings, ledger)
        produce(kafka_settings, LOAD)
        rng = random.Random(2020)
        for kill in range(5):
            time.sleep(rng.uniform(0.5, 2.0))
            consumer.send_signal(signal.SIGKILL)
            consumer.wait()
            if kill == 2:
                services.restart_kafka(hard=True)  # the broker dies too, and comes back
            if kill == 3:
                services.restart_postgres(hard=True)  # and so does the database
            consumer = consumer_process(kafka_settings, log)
        wait_consumed(kafka_settings, ledger, timeout=300)
    finally:
        stop(consumer)
    assert not differences(signature(ledger), reference)
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
