"""Benchmark: portal messages from Kafka to committed events, beside the naive path.

    make services-up && set -a && . var/services.env && set +a
    .venv/bin/python bench/consume.py [--messages 100000] [--naive-messages 5000]

Produces demo years to a fresh `yaosu.portal.v1` (own topic prefix), then measures in one run:

1. `yaosu consume portal` (in this process): each partition's poll is one batch, one transaction
   with its offsets;
2. the naive path on another fresh schema: the same messages, one `save` (transaction) each.

Prints messages/s and events/s (all stored events, and effects without the receipts).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson  # noqa: E402
from kafka import KafkaProducer  # noqa: E402

from consumers.portal import KAFKA_PRINCIPAL, PortalConsumer  # noqa: E402
from domain.reference import CITY_CODE  # noqa: E402
from infra import kafka  # noqa: E402
from infra.bootstrap import build_ledger  # noqa: E402
from infra.ledger import Ledger  # noqa: E402
from infra.settings import Settings  # noqa: E402
from yaosu.demo import demo_messages  # noqa: E402


def messages(count: int) -> list[dict]:
    found: list[dict] = []
    year = 2001
    while len(found) < count:
        found += demo_messages(year, projects=3000, seed=year)
        year += 1
    return found[:count]


def count_events(ledger: Ledger) -> tuple[int, int]:
    total = effects = 0
    after = 0
    while batch := ledger.notifications_after(after, 20000):
        total += len(batch)
        effects += sum(1 for n in batch if "MessageReceipt" not in n.topic)
        after = batch[-1].id
    return total, effects


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--naive-messages", type=int, default=5_000)
    parser.add_argument("--batch-size", type=int, default=5_000)
    args = parser.parse_args()
    store, bootstrap = os.environ.get("YAOSU_STORE", ""), os.environ.get("YAOSU_KAFKA_BOOTSTRAP")
    if not store.startswith("postgresql") or not bootstrap:
        print("set YAOSU_STORE (PostgreSQL) and YAOSU_KAFKA_BOOTSTRAP (make services-up; . var/services.env)",
              file=sys.stderr)
        return 2
    run = uuid.uuid4().hex[:8]
    settings = Settings(store=f"{store.split('?')[0]}?schema=bench_consume_{run}", kafka_bootstrap=bootstrap,
                        kafka_topic_prefix=f"bench{run}.")
    load = messages(args.messages)
    kafka.ensure_topics(settings, kafka.PORTAL, kafka.REJECTED)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    reductions = {m["payload"]["reduction_id"]: m["payload"].get("district", CITY_CODE) for m in load
                  if m["type"] == "emission.reduction_registered"}
    for m in load:  # keyed by district, as portals are asked to (contract v1.1)
        producer.send(kafka.topic(settings, kafka.PORTAL), key=kafka.district_key(m, reductions), value=orjson.dumps(m))
    producer.flush()
    print(f"produced {len(load):,} messages to {kafka.topic(settings, kafka.PORTAL)}", file=sys.stderr)

    ledger = build_ledger(settings)
    consumer = PortalConsumer(ledger, settings, group=f"bench-{run}", batch_size=args.batch_size)
    worker = threading.Thread(target=consumer.run)
    worker.start()
    while consumer.processed == 0:  # joining the group and the first fetch are not throughput
        time.sleep(0.001)
    started, first = time.perf_counter(), consumer.processed
    while consumer.processed < len(load):
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    consumer.stop()
    worker.join()
    total, effects = count_events(ledger)
    share = (len(load) - first) / len(load)  # events of the messages after the first batch
    total, effects = round(total * share), round(effects * share)
    ledger.close()

    naive = build_ledger(Settings(store=f"{store.split('?')[0]}?schema=bench_naive_{run}"))
    sample = load[: args.naive_messages]
    started = time.perf_counter()
    for m in sample:
        naive.submit([m], principal=KAFKA_PRINCIPAL, channel="kafka")
    naive_elapsed = time.perf_counter() - started
    naive_total, naive_effects = count_events(naive)
    naive.close()

    print(f"portal consumer, batches of up to {args.batch_size:,} per poll: "
          f"{(len(load) - first) / elapsed:,.0f} messages/s, {total / elapsed:,.0f} events/s "
          f"({effects / elapsed:,.0f} effects/s without receipts), sustained over {len(load) - first:,} messages "
          f"in {elapsed:.1f}s (from the first committed batch to the last)")
    print(f"naive, one save per message: {len(sample) / naive_elapsed:,.0f} messages/s, "
          f"{naive_total / naive_elapsed:,.0f} events/s ({naive_effects / naive_elapsed:,.0f} effects/s) "
          f"over the first {len(sample):,} messages")
    print(f"ratio (events/s): {(total / elapsed) / (naive_total / naive_elapsed):,.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
