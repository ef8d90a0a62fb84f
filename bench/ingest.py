"""Ingesting from Kafka: `yaosu consume portal` (a process of its own) from the first committed batch to
the last, beside the naive consumer (one transaction per message, with its offset) in this process."""

from __future__ import annotations

import time
import uuid

import orjson
from eventsourcing.persistence import Tracking
from kafka import KafkaConsumer, KafkaProducer

from bench.common import Figures, drop_schema, peak_rss_mb, pg_store, say, settings_for, stop, wired, yaosu
from consumers.portal import KAFKA_PRINCIPAL
from domain.reference import CITY_CODE
from infra import kafka
from infra.settings import Settings
from service.ledger import Ledger
from yaosu.demo import demo_messages

NAIVE_MESSAGES = 1000


def produce(settings: Settings, messages: list[dict]) -> None:
    kafka.ensure_topics(settings, kafka.PORTAL, kafka.REJECTED)
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap(settings), acks="all", linger_ms=20)
    reductions = {m["payload"]["reduction_id"]: m["payload"].get("district", CITY_CODE) for m in messages
                  if m["type"] == "emission.reduction_registered"}
    for m in messages:  # keyed by district, as portals are asked to (contract v1.1)
        producer.send(kafka.topic(settings, kafka.PORTAL), key=kafka.district_key(m, reductions), value=orjson.dumps(m))
    producer.flush()
    producer.close()


def consumed(ledger: Ledger) -> int:
    """Messages committed so far: the offsets recorded with the events, per partition."""
    return sum(position + 1 for name, position in ledger.tracked_positions().items() if name.startswith("kafka:"))


def measure(figures: Figures, bootstrap: str) -> None:
    messages = demo_messages(2023, projects=1000, seed=2023)
    run = uuid.uuid4().hex[:8]
    env = {"YAOSU_KAFKA_BOOTSTRAP": bootstrap, "YAOSU_KAFKA_TOPIC_PREFIX": f"bench{run}."}
    settings = settings_for(pg_store("unused"), **env)
    say(f"ingest: producing {len(messages):,} messages to {kafka.topic(settings, kafka.PORTAL)}")
    produce(settings, messages)
    for repetition in range(3):
        say(f"ingest, repetition {repetition + 1} of 3")
        schema = f"bench_ingest_{repetition}"
        drop_schema(schema)
        with wired(pg_store(schema)) as wiring:
            ledger = wiring.ledger
            consumer = yaosu("consume", "portal", "--group", f"bench-{run}-{repetition}", store=pg_store(schema),
                             **env)
            while (first := consumed(ledger)) == 0:  # joining the group and the first fetch are not throughput
                time.sleep(0.005)
            started, at_first = time.perf_counter(), ledger.head()
            while consumed(ledger) < len(messages):
                if consumer.poll() is not None:
                    raise SystemExit("yaosu consume portal stopped (run it alone to see why)")
                time.sleep(0.01)
            elapsed = time.perf_counter() - started
            rss = peak_rss_mb(consumer.pid)
            stop(consumer)
            figures.add("ingest_messages_per_s", (len(messages) - first) / elapsed, "messages/s")
            figures.add("ingest_events_per_s", (ledger.head() - at_first) / elapsed, "events/s")
        drop_schema(schema)
        figures.add("ingest_naive_events_per_s", naive(settings, f"bench_ingest_naive_{repetition}"), "events/s")
    figures.add("rss_consumer_mb", rss, "MB")


def naive(settings: Settings, schema: str) -> float:
    """Events/s of the naive consumer: poll, then one transaction per message with its offset."""
    drop_schema(schema)
    with wired(pg_store(schema)) as wiring:
        ledger = wiring.ledger
        reader = KafkaConsumer(kafka.topic(settings, kafka.PORTAL), bootstrap_servers=kafka.bootstrap(settings),
                               group_id=f"naive-{schema}-{uuid.uuid4().hex[:6]}", auto_offset_reset="earliest",
                               enable_auto_commit=False, max_poll_records=100)
        done, started = 0, None
        while done < NAIVE_MESSAGES:
            for tp, records in reader.poll(timeout_ms=1000).items():
                started = started or time.perf_counter()
                for record in records:
                    ledger.submit([orjson.loads(record.value)], principal=KAFKA_PRINCIPAL, channel="kafka",
                                  tracking=Tracking(kafka.tracking_name(tp.topic, tp.partition), record.offset))
                    done += 1
        rate = ledger.head() / (time.perf_counter() - (started or time.perf_counter()))
        reader.close()
    drop_schema(schema)
    return rate
