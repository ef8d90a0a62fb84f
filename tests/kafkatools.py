"""Helpers for tests on the real broker: produce like a portal, read topics back, compare stores."""

from __future__ import annotations

import random
import time
from typing import Any, Iterable

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from infra import kafka
from infra.ledger import Ledger
from infra.settings import Settings
from yaosu.demo import demo_messages


def portal_load(projects: int = 520, seed: int = 7) -> tuple[list[Any], list[Any]]:
    """(setup, load): ~10,000 messages with resends, conflicts and garbage mixed in.

    Quotas and reductions are generous so that no two projects compete: then each project's fate
    depends only on its own messages, which one partition keeps in order, and any two runs agree.
    """
    rng = random.Random(seed)
    setup, load = [], []
    for m in demo_messages(2021, projects=projects, seed=seed):
        if m["type"] == "quota.set":
            m = {**m, "payload": {**m["payload"], "amount": 10_000_000}}
        if m["type"] == "emission.reduction_registered":
            m = {**m, "payload": {**m["payload"], "tonnes": 1_000_000}}
        (setup if m["type"] in ("quota.set", "emission.reduction_registered") else load).append(m)
    for m in rng.sample(load, 150):  # resends, later in the stream
        load.insert(rng.randint(load.index(m) + 1, len(load)), dict(m))
    for n in range(60):  # bodies that are not JSON at all
        load.insert(rng.randint(0, len(load)), f"garbage {n} {{not json".encode())
    for m in rng.sample([m for m in load if isinstance(m, dict) and m["type"] == "data.provided"], 40):
        load.insert(rng.randint(load.index(m) + 1, len(load)), {**m, "payload": {"kind": "x", "reference": "changed"}})
    return setup, load


def key_of(message: Any) -> bytes | None:
    if not isinstance(message, dict):
        return None
    payload = message.get("payload", {})
    return (message.get("project_code") or payload.get("reduction_id") or payload.get("district") or "").encode() or None


def produce(settings: Settings, messages: Iterable[Any]) -> int:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, acks="all")
    n = 0
    for m in messages:
        value = m if isinstance(m, bytes) else orjson.dumps(m)
        producer.send(kafka.topic(settings, kafka.PORTAL), key=key_of(m), value=value)
        n += 1
    producer.flush()
    producer.close()
    return n


def read_topic(settings: Settings, name: str, timeout: float = 20) -> list[Any]:
    """Every record now on a topic (all partitions), read without a group."""
    reader = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    try:
        full = kafka.topic(settings, name)
        partitions = reader.partitions_for_topic(full) or set()
        tps = [TopicPartition(full, p) for p in partitions]
        reader.assign(tps)
        reader.seek_to_beginning(*tps)
        ends = reader.end_offsets(tps)
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while any(reader.position(tp) < ends[tp] for tp in tps) and time.monotonic() < deadline:
            for batch in reader.poll(timeout_ms=500).values():
                records += batch
        return records
    finally:
        reader.close()


SHARED = ("QuotaPool.", "EmissionReduction.")


def signature(ledger: Ledger) -> dict[str, Any]:
    """What a store holds, comparable between runs: per aggregate its events without record times."""
    per_aggregate: dict[str, list[Any]] = {}
    receipts = set()
    after = 0
    while batch := ledger.feed(after, 5000).items:
        for item in batch:
            e: Any = item.event
            name = type(e).__qualname__
            if name.startswith("MessageReceipt"):
                receipts.add((e.message_id, e.body_hash, name, getattr(e, "code", None)))
                continue
            state = {k: v for k, v in vars(e).items() if k not in ("timestamp", "originator_id")}
            if name.startswith(SHARED):  # draws from several partitions interleave: compare as sets
                per_aggregate.setdefault(str(e.originator_id), []).append(
                    (name, state.get("grant_id"), str(state.get("amount", state.get("tonnes")))))
                continue
            per_aggregate.setdefault(str(e.originator_id), []).append((name, repr(sorted(state.items()))))
        after = batch[-1].position
    for key, events in per_aggregate.items():
        if events and events[0][0].startswith(SHARED):
            per_aggregate[key] = sorted(events, key=repr)
    return {"aggregates": per_aggregate, "receipts": receipts}


def differences(found: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """A readable account of how two signatures differ (empty when they are equal)."""
    notes = []
    for name in ("receipts",):
        missing, extra = expected[name] - found[name], found[name] - expected[name]
        if missing or extra:
            notes.append(f"receipts: {len(missing)} missing e.g. {sorted(missing, key=repr)[:2]}, "
                         f"{len(extra)} extra e.g. {sorted(extra, key=repr)[:2]}")
    a, b = found["aggregates"], expected["aggregates"]
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            mine, theirs = a.get(key, []), b.get(key, [])
            at = next((i for i, (x, y) in enumerate(zip(mine, theirs)) if x != y), min(len(mine), len(theirs)))
            notes.append(f"aggregate {key}: {len(mine)} vs {len(theirs)} events; first difference at {at}: "
                         f"{mine[at] if at < len(mine) else None} vs {theirs[at] if at < len(theirs) else None}")
    return notes
