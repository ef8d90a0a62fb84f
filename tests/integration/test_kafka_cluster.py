"""Kafka as a cluster (issue 24): a broker killed while portals produce, Yaosu consumes and relays.

A cluster of three brokers of this test's own; the store on the shared PostgreSQL. The leader of a portal
partition is killed (SIGKILL) while a portal sends, `yaosu consume portal` and `yaosu relay` run as
processes; the portal goes on sending while it is down and while it starts again. The store ends as the
same messages submitted straight to it, and the outbound topics hold every record once, in order per key.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import KafkaConnectionError

from consumers import relay as relay_module
from infra import kafka
from infra.settings import Settings
from service.bootstrap import build_ledger
from service.ledger import Ledger
from tests.conftest import OwnServices, fresh_store
from tests.integration.test_kafka import consumer_process, environment, stop, wait_consumed
from tests.kafkatools import differences, portal_load, produce, read_topic, signature, undisturbed, v1_key
from yaosu.demo import batches

#: Smaller than test_kafka's load: three brokers and the processes share the machine with the other worker.
SETUP, LOAD = portal_load(projects=200, seed=24)
TOPICS = (kafka.PORTAL, kafka.REJECTED, kafka.EVENTS, kafka.ALERTS, kafka.AUDIT)
#: Generous bounds: only a broken cluster or client takes this long.
PATIENCE = 120


@pytest.fixture(scope="module")
def reference(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return undisturbed(fresh_store("postgres", tmp_path_factory.mktemp("ref"), pg_url), SETUP, LOAD)


@pytest.fixture
def settings(own_cluster: OwnServices, pg_url: str, tmp_path: Path) -> Settings:
    return Settings(store=fresh_store("postgres", tmp_path, pg_url), kafka_bootstrap=own_cluster.kafka_bootstrap,
                    kafka_topic_prefix=f"cluster{uuid.uuid4().hex[:10]}.")


@pytest.fixture
def ledger(settings: Settings) -> Iterator[Ledger]:
    kafka.ensure_topics(settings, *TOPICS)
    app = build_ledger(settings)
    yield app
    app.close()


def partitions(settings: Settings, name: str) -> list[dict[str, Any]]:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        (described,) = admin.describe_topics([kafka.topic(settings, name)])
        return sorted(described["partitions"], key=lambda p: p["partition_index"])
    finally:
        admin.close()


def until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not holds(condition):
        assert time.monotonic() < deadline, f"{what}: not within {PATIENCE}s"
        time.sleep(0.5)


def holds(condition: Any) -> bool:
    try:
        return bool(condition())
    except KafkaConnectionError:  # the admin client asked the broker that is down: ask again
        return False


def portal(settings: Settings, messages: list[Any], sent: threading.Event | None = None) -> None:
    """One portal's producer sending its messages a few hundred at a time, acknowledged as it goes; `sent` is set
    once the first third is acknowledged."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, acks="all")
    try:
        for n, chunk in enumerate(batches(messages, 200)):
            for m in chunk:
                producer.send(kafka.topic(settings, kafka.PORTAL), key=v1_key(m),
                              value=m if isinstance(m, bytes) else orjson.dumps(m))
            producer.flush()
            if sent is not None and (n + 1) * 200 >= len(messages) // 3:
                sent.set()
    finally:
        producer.close()


def test_the_topics_yaosu_creates_on_a_cluster_keep_three_copies_two_in_sync(settings: Settings,
                                                                            ledger: Ledger) -> None:
    assert len(settings.kafka_bootstrap.split(",")) == 3
    for name in TOPICS:
        assert [len(p["replica_nodes"]) for p in partitions(settings, name)] == [3, 3, 3], name
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, kafka.topic(settings, name),
                                                         ["min.insync.replicas"]) for name in TOPICS])
    finally:
        admin.close()
    found = {topic: values["min.insync.replicas"]["value"] for topic, values in configs["topic"].items()}
    assert found == {kafka.topic(settings, name): "2" for name in TOPICS}


def test_a_broker_killed_while_portals_produce_loses_nothing_and_repeats_nothing(
        own_cluster: OwnServices, settings: Settings, ledger: Ledger, reference: dict[str, Any],
        tmp_path: Path) -> None:
    log = tmp_path / "yaosu.log"
    produce(settings, SETUP)
    consumer = consumer_process(settings, log)
    relay = subprocess.Popen([sys.executable, "-m", "yaosu", "relay"], env=environment(settings, 3),
                             stdout=log.open("ab"), stderr=subprocess.STDOUT)
    first, rest = LOAD[: 2 * len(LOAD) // 3], LOAD[2 * len(LOAD) // 3:]
    try:
        wait_consumed(settings, ledger)
        # The leader of a portal partition: the portal, the consumer and the relay all lose one they talk to.
        leader = partitions(settings, kafka.PORTAL)[0]["leader_id"]
        sent = threading.Event()
        producing = threading.Thread(target=portal, args=(settings, first, sent), daemon=True)
        producing.start()
        assert sent.wait(PATIENCE), "the portal could not send its first messages"
        own_cluster.kill("kafka", node=leader)  # SIGKILL, mid-stream
        until(lambda: all(p["leader_id"] not in (leader, -1) for p in partitions(settings, kafka.PORTAL)),
              f"the partitions led by broker {leader} have new leaders")
        producing.join()
        wait_consumed(settings, ledger)  # consumed with a broker down

        producing = threading.Thread(target=portal, args=(settings, rest), daemon=True)
        producing.start()  # and the portal sends while the broker starts again
        own_cluster.start("kafka", node=leader)
        producing.join()
        wait_consumed(settings, ledger)
        until(lambda: all(len(p["isr_nodes"]) == 3 for p in partitions(settings, kafka.PORTAL)),
              f"broker {leader} back in sync")
        until(lambda: ledger.position_of(relay_module.TRACKING) == ledger.head(), "the relay caught up")
    finally:
        stop(consumer)
        stop(relay)
    assert not differences(signature(ledger), reference)  # nothing lost, nothing twice in the store

    published = [i.position for i in ledger.feed(0, 1_000_000).items if relay_module.published(i.topic)]
    events = read_topic(settings, kafka.EVENTS)
    assert sorted(position(r) for r in events) == published  # every event, each once
    assert in_order_per_key(events)
    rejected = read_topic(settings, kafka.REJECTED)
    kept = [i for i in ledger.rejections(0, 100_000).items if i.event.channel == "kafka"]
    assert len({position(r) for r in rejected}) == len(rejected) == len(kept) > 100
    assert in_order_per_key(rejected)


def position(record: Any) -> int:
    return int(dict(record.headers)["position"])


def in_order_per_key(records: list[Any]) -> bool:
    """Whether each key's records come in store order (read_topic keeps each partition's order). Records without a
    key (a rejected body that came without one) are spread over the partitions: no order is promised for them."""
    last: dict[bytes, int] = {}
    for record in records:
        if record.key is None:
            continue
        if position(record) <= last.get(record.key, 0):
            return False
        last[record.key] = position(record)
    return True
