"""Helpers for tests on the real broker: produce like a portal, read topics back, compare stores."""

from __future__ import annotations

import random
import time
from typing import Any, Callable, Iterable

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from domain.reference import CITY_CODE
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


def v1_key(message: Any) -> bytes | None:
    """The key of contract v1: the project code, or the reduction id, or the quota's district."""
    if not isinstance(message, dict):
        return None
    payload = message.get("payload", {})
    return (message.get("project_code") or payload.get("reduction_id") or payload.get("district") or "").encode() or None


def v1_1_key(messages: list[Any]) -> Callable[[Any], bytes | None]:
    """The key of contract v1.1 (the district), knowing each reduction's district as its sender does."""
    districts = {m["payload"]["reduction_id"]: m["payload"].get("district", CITY_CODE) for m in messages
                 if isinstance(m, dict) and m.get("type") == "emission.reduction_registered"}
    return lambda m: kafka.district_key(m, districts) if isinstance(m, dict) else None


def produce(settings: Settings, messages: Iterable[Any], key: Callable[[Any], bytes | None] = v1_key) -> int:
    """One producer, as one portal: sent in order."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, acks="all")
    n = 0
    for m in messages:
        value = m if isinstance(m, bytes) else orjson.dumps(m)
        producer.send(kafka.topic(settings, kafka.PORTAL), key=key(m), value=value)
        n += 1
    producer.flush()
    producer.close()
    return n


def produce_by_department(settings: Settings, messages: list[dict[str, Any]],
                          key: Callable[[Any], bytes | None]) -> None:
    """One producer per department, as the portals are, each sending its messages as they happen: what
    one producer sent is acknowledged before another sends, so the topic holds them in business order."""
    producers: dict[str, KafkaProducer] = {}
    last: KafkaProducer | None = None
    try:
        for m in messages:
            department = m["actor"]["department"]
            if department not in producers:
                producers[department] = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap,
                                                      enable_idempotence=True, acks="all", linger_ms=2)
            producer = producers[department]
            if last is not None and last is not producer:
                last.flush()
            producer.send(kafka.topic(settings, kafka.PORTAL), key=key(m), value=orjson.dumps(m))
            last = producer
    finally:
        for producer in producers.values():
            producer.flush()
            producer.close()


def business_load(projects: int = 400, seed: int = 11) -> list[dict[str, Any]]:
    """A demo year as the departments send it, in business order, where the order matters: quotas too
    tight for every grant, and each district's emission credits advanced from a reduction of its own
    district, right after that reduction is registered, more than it holds."""
    messages = [m for m in demo_messages(2021, projects=projects, seed=seed)
                if m["type"] not in ("emission.reduction_registered", "emission.reduction_completed")]
    district = lambda m: m["project_code"][5:11]  # noqa: E731
    asked: dict[tuple[str, str], float] = {}
    for m in messages:
        if m["type"] == "energy.granted":
            asked[(district(m), "energy")] = asked.get((district(m), "energy"), 0) + m["payload"]["tce"]
        if m["type"] == "land.supplied" and m["payload"]["area_mu"] > 0:
            asked[(district(m), "land")] = asked.get((district(m), "land"), 0) + m["payload"]["area_mu"]
    first_advance: dict[str, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for m in messages:
        if m["type"] == "quota.set":
            need = asked.get((m["payload"]["district"], m["payload"]["factor"]), 0)
            m = {**m, "payload": {**m["payload"], "amount": round(need * 0.6, 1)}}
        if m["type"] == "emission.advanced":
            d = district(m)
            m = {**m, "payload": {**m["payload"], "reduction_id": f"RD-2021-{d}", "pollutant": "SO2", "tonnes": 5}}
            if d not in first_advance:
                first_advance[d] = m
                out.append({**m, "message_id": f"reduction-2021-{d}", "type": "emission.reduction_registered",
                            "project_code": None, "payload": {
                                "reduction_id": f"RD-2021-{d}", "enterprise": f"兰州某厂{d}", "pollutant": "SO2",
                                "tonnes": 12, "due_date": "2021-12-31", "district": d}})
        out.append(m)
    for m in out:
        if m.get("project_code") is None:
            m.pop("project_code", None)
    return out


def wait_settled(ledger: Ledger, timeout: float = 120) -> None:
    """Until no parked message waits any more (each decided, or rejected when its window passed)."""
    deadline = time.monotonic() + timeout
    while (waiting := ledger.waiting()[0]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not waiting, f"{len(waiting)} parked messages still waiting after {timeout}s"


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
BOOKKEEPING = ("ParkedMessage.",)


def signature(ledger: Ledger, *, shared_in_order: bool = False) -> dict[str, Any]:
    """What a store holds, comparable between runs: per aggregate its events without record times.

    Parked messages are the consumer's bookkeeping: what counts is how each was decided (its receipt).
    Quota pools and reductions that messages of several partitions draw on are compared as sets,
    unless `shared_in_order`: with district keys, one partition holds all that draws on them."""
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
            if name.startswith(BOOKKEEPING):
                continue
            state = {k: v for k, v in vars(e).items() if k not in ("timestamp", "originator_id")}
            if name.startswith(SHARED) and not shared_in_order:  # draws from several partitions interleave
                per_aggregate.setdefault(str(e.originator_id), []).append(
                    (name, state.get("grant_id"), str(state.get("amount", state.get("tonnes")))))
                continue
            per_aggregate.setdefault(str(e.originator_id), []).append((name, repr(sorted(state.items()))))
        after = batch[-1].position
    for key, events in per_aggregate.items():
        if events and events[0][0].startswith(SHARED) and not shared_in_order:
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
