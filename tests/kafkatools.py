"""Helpers for tests on the real broker: produce like a portal, read topics back, compare stores."""

from __future__ import annotations

import random
import time
from typing import Any, Callable, Iterable
from uuid import UUID

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from domain.project import project_id
from domain.reference import CITY_CODE
from infra import kafka
from infra.settings import Settings
from service.ledger import Ledger
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
    """The key of contract v1.2 (the district of what a message draws on, else of its subject), knowing
    each reduction's district as its sender does."""
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


def business_load(projects: int = 400, seed: int = 11) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A demo year as the departments send it, in business order, where the order matters: quotas too
    tight for every grant, and emission credits advanced, more than a reduction holds, from a reduction
    of the project's own district registered right before, or (every other advance whose project is
    neither closed nor reclaims anything) from another district's reduction: contract v1.2 keys such
    an advance by the reduction's district, so draws on one reduction keep their order.

    Returned as (first, rest): the registrations and admissions of the projects drawing on another
    district's reduction come first, to be consumed before the rest. What their other messages do is
    then ordered with the advance by no key, and must not decide it: only the reduction's order does."""
    messages = [m for m in demo_messages(2021, projects=projects, seed=seed)
                if m["type"] not in ("emission.reduction_registered", "emission.reduction_completed")]
    district = lambda m: m["project_code"][5:11]  # noqa: E731
    asked: dict[tuple[str, str], float] = {}
    settled: set[str] = set()  # projects whose fate no later message of theirs changes
    for m in messages:
        if m["type"] == "energy.granted":
            asked[(district(m), "energy")] = asked.get((district(m), "energy"), 0) + m["payload"]["tce"]
        if m["type"] == "land.supplied" and m["payload"]["area_mu"] > 0:
            asked[(district(m), "land")] = asked.get((district(m), "land"), 0) + m["payload"]["area_mu"]
        if m["type"] == "project.admitted":
            settled.add(m["project_code"])
    settled -= {m["project_code"] for m in messages if m["type"] in CLOSING}
    reductions: dict[str, str] = {}  # district → its reduction, once registered
    advances = 0
    crossing: set[str] = set()
    out: list[dict[str, Any]] = []
    for m in messages:
        if m["type"] == "quota.set":
            need = asked.get((m["payload"]["district"], m["payload"]["factor"]), 0)
            m = {**m, "payload": {**m["payload"], "amount": round(need * 0.6, 1)}}
        if m["type"] == "emission.advanced":
            d = district(m)
            if d not in reductions:
                reductions[d] = f"RD-2021-{d}"
                out.append({**m, "message_id": f"reduction-2021-{d}", "type": "emission.reduction_registered",
                            "project_code": None, "payload": {
                                "reduction_id": reductions[d], "enterprise": f"兰州某厂{d}", "pollutant": "SO2",
                                "tonnes": 12, "due_date": "2021-12-31", "district": d}})
            advances += 1
            elsewhere = sorted(r for other, r in reductions.items() if other != d)
            if advances % 2 == 0 and elsewhere and m["project_code"] in settled:
                drawn = elsewhere[advances % len(elsewhere)]
                crossing.add(m["project_code"])
            else:
                drawn = reductions[d]
            m = {**m, "payload": {**m["payload"], "reduction_id": drawn, "pollutant": "SO2", "tonnes": 5}}
        out.append(m)
    for m in out:
        if m.get("project_code") is None:
            m.pop("project_code", None)
    ahead = [m.get("project_code") in crossing and m["type"] in ("project.registered", "project.admitted") for m in out]
    return [m for m, first in zip(out, ahead) if first], [m for m, first in zip(out, ahead) if not first]


#: What closes a project, or gives an emission credit back to a reduction.
CLOSING = ("project.completed", "project.cancelled", "project.released", "factor.reclaimed")


def crossing_projects(messages: list[dict[str, Any]]) -> set[str]:
    """Projects of one district drawing on a reduction registered for another."""
    districts = {m["payload"]["reduction_id"]: m["payload"]["district"] for m in messages
                 if m["type"] == "emission.reduction_registered"}
    return {m["project_code"] for m in messages if m["type"] == "emission.advanced"
            and districts.get(m["payload"]["reduction_id"]) != m["project_code"][5:11]}


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


def signature(ledger: Ledger, *, shared_in_order: bool = False, unordered: Iterable[str] = ()) -> dict[str, Any]:
    """What a store holds, comparable between runs: per aggregate its events without record times.

    Parked messages are the consumer's bookkeeping: what counts is how each was decided (its receipt).
    Quota pools and reductions that messages of several partitions draw on are compared as sets,
    unless `shared_in_order`: with district keys, one partition holds all that draws on them. So are
    the events of the projects `unordered` (their codes): drawn on from another partition."""
    per_aggregate: dict[str, list[Any]] = {}
    receipts = set()
    mixed = {project_id(code) for code in unordered}
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
            hidden = ("timestamp", "originator_id", *(("originator_version",) if e.originator_id in mixed else ()))
            state = {k: v for k, v in vars(e).items() if k not in hidden}
            if name.startswith(SHARED) and not shared_in_order:  # draws from several partitions interleave
                per_aggregate.setdefault(str(e.originator_id), []).append(
                    (name, state.get("grant_id"), str(state.get("amount", state.get("tonnes")))))
                continue
            per_aggregate.setdefault(str(e.originator_id), []).append((name, repr(sorted(state.items()))))
        after = batch[-1].position
    for key, events in per_aggregate.items():
        if (events and events[0][0].startswith(SHARED) and not shared_in_order) or UUID(key) in mixed:
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


def undisturbed(store: str, setup: list[Any], load: list[Any]) -> dict[str, Any]:
    """The signature of the messages submitted straight to a fresh store, as the portal consumer would, with
    nothing in the way: what every run through Kafka, crashed or not, must end as."""
    from consumers.portal import KAFKA_PRINCIPAL
    from service.bootstrap import build_ledger
    from yaosu.demo import batches

    ledger = build_ledger(Settings(store=store))
    for chunk in [setup, *batches(load, 500)]:
        ledger.submit(chunk, principal=KAFKA_PRINCIPAL, channel="kafka")
    found = signature(ledger)
    ledger.close()
    return found
