"""Kafka clients and topics, built from settings (kafka-python)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from domain.reference import CITY_CODE, district_of, is_project_code
from infra.parsing import ascii_integer
from infra.settings import Settings

log = logging.getLogger("yaosu.kafka")

PORTAL = "yaosu.portal.v1"
REJECTED = "yaosu.portal.v1.rejected"
EVENTS = "yaosu.events.v1"
ALERTS = "yaosu.alerts.v1"
#: The audit chain's daily checkpoints (one key, so they stay in order).
AUDIT = "yaosu.audit.v1"

#: Partitions when Yaosu creates a topic; keys (districts) keep one district's messages in order.
PARTITIONS = 3


def topic(settings: Settings, name: str) -> str:
    """The topic's name on this cluster: `YAOSU_KAFKA_TOPIC_PREFIX` lets environments share one."""
    return settings.kafka_topic_prefix + name


def bootstrap(settings: Settings) -> str:
    if not settings.kafka_bootstrap:
        raise SystemExit("YAOSU_KAFKA_BOOTSTRAP is not set: start Kafka (make services-up; . var/services.env)")
    return settings.kafka_bootstrap


@dataclass(frozen=True)
class Replication:
    """How the topics Yaosu creates are replicated: `replicas` copies of each partition, of which
    `min_insync` must hold a write before the broker acknowledges it to a producer (acks=all)."""

    replicas: int
    min_insync: int

    @classmethod
    def of(cls, settings: Settings, brokers: int) -> Replication:
        """`YAOSU_KAFKA_REPLICATION` copies, else three on a cluster of three brokers or more (one per broker on a
        smaller one: the brokers up now, so a deployment pins it with the setting); a majority of them in sync, so
        that with three copies a write acknowledged survives the loss of any one broker, and writes go on without it."""
        replicas = settings.kafka_replication or min(brokers, 3)
        if replicas > brokers:
            raise ValueError(f"YAOSU_KAFKA_REPLICATION={replicas} but the cluster at {settings.kafka_bootstrap} has "
                             f"{brokers} broker(s) up: topics cannot have more copies than brokers")
        return cls(replicas, replicas // 2 + 1 if replicas > 1 else 1)

    def new_topic(self, name: str) -> NewTopic:
        return NewTopic(name=name, num_partitions=PARTITIONS, replication_factor=self.replicas,
                        topic_configs={"min.insync.replicas": str(self.min_insync)})


def ensure_topics(settings: Settings, *names: str) -> None:
    """Create the topics that do not exist yet, replicated as the cluster allows (`Replication`)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap(settings), client_id="yaosu-admin")
    try:
        existing = set(admin.list_topics())
        wanted = [topic(settings, n) for n in names if topic(settings, n) not in existing]
        if not wanted:
            return
        replication = Replication.of(settings, len(admin.describe_cluster()["brokers"]))
        try:
            admin.create_topics([replication.new_topic(name) for name in wanted])
            log.info("created topics %s (%d replicas, %d in sync)", ", ".join(wanted), replication.replicas,
                     replication.min_insync)
        except TopicAlreadyExistsError:
            pass  # another process made them meanwhile
    finally:
        admin.close()


def producer(settings: Settings, **options: Any) -> KafkaProducer:
    """Every producer of Yaosu's (relay, monitor, rejected topic, audit checkpoints): idempotent, acknowledged by
    all replicas in sync (at least `min.insync.replicas`): a send retried after a leader change is written once,
    and one acknowledged is on a majority of the copies. (Passing `acks` or `enable_idempotence` is an error.)"""
    return KafkaProducer(bootstrap_servers=bootstrap(settings), enable_idempotence=True, acks="all",
                         linger_ms=5, retries=2**31 - 1, **options)


def consumer(settings: Settings, group: str, **options: Any) -> KafkaConsumer:
    # A short session (the broker's minimum) so a dead member's partitions move on within seconds.
    return KafkaConsumer(bootstrap_servers=bootstrap(settings), group_id=group, enable_auto_commit=False,
                         auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=2000,
                         **options)


def district_key(message: Any, reduction_districts: Mapping[str, str] | None = None) -> bytes:
    """The recommended key of a portal message (v1.2): the district of the pool it draws on, else of its
    subject. An `emission.advanced`, the district of the reduction it draws on (v1.2), so that all draws
    on one reduction keep their order, as all draws on a district's quotas do; otherwise the area of its
    project code; the district of a quota or of a batch approval of land (`land.approved`); for a
    reduction's own messages, the district it was registered with. A reduction's district (the city by
    default) must be known to the sender (`reduction_districts`). An `allocation.adopted` changes every
    district's pool of its factor at once: it is keyed by the city (`620100`)."""
    body = message if isinstance(message, dict) else {}
    payload = body.get("payload") if isinstance(body.get("payload"), dict) else {}
    reduction = (reduction_districts or {}).get(str(payload.get("reduction_id")), CITY_CODE).encode()
    if body.get("type") == "emission.advanced":
        return reduction
    code = body.get("project_code")
    if isinstance(code, str) and is_project_code(code):
        return district_of(code).encode()
    if body.get("type") == "allocation.adopted":
        return CITY_CODE.encode()
    if body.get("type") in DISTRICT_KEYED and isinstance(payload.get("district"), str):
        return str(payload["district"]).encode()
    return reduction


#: Messages about no project keyed by the district in their payload.
DISTRICT_KEYED = ("quota.set", "emission.reduction_registered", "land.approved")


def tracking_name(topic_name: str, partition: int) -> str:
    """The name under which a partition's offset is recorded in the store with its effects."""
    return f"kafka:{topic_name}:{partition}"


@dataclass(frozen=True)
class KafkaOrigin:
    """Where a message was read: its partition's tracking name (`tracking_name`) and its offset.

    Stored as the text `<tracking>@<offset>` (a parked message's `origin`), as it always was, or "" for a message
    not read from Kafka: `str` writes it, `parse` reads it back; a topic name cannot hold `@`, so the last one
    splits it.
    """

    tracking: str
    offset: int

    def __str__(self) -> str:
        return f"{self.tracking}@{self.offset}"

    @classmethod
    def parse(cls, text: str) -> KafkaOrigin | None:
        if not text:
            return None
        tracking, at, offset = text.rpartition("@")
        number = ascii_integer(offset)
        if not at or not tracking or number is None:
            raise ValueError(f"not a Kafka origin (<tracking>@<offset>): {text!r}")
        return cls(tracking, number)


def portal_lag(settings: Settings, recorded: dict[str, int]) -> dict[str, int]:
    """Portal messages on each partition past the offset recorded in the store (nothing if Kafka is away)."""
    if not settings.kafka_bootstrap:
        return {}
    try:
        reader = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=3000)
    except KafkaError:
        return {}
    try:
        name = topic(settings, PORTAL)
        tps = [TopicPartition(name, p) for p in reader.partitions_for_topic(name) or ()]
        ends = reader.end_offsets(tps) if tps else {}
        return {tracking_name(name, tp.partition): ends[tp] - 1 - recorded.get(tracking_name(name, tp.partition), -1)
                for tp in tps}
    except KafkaError:
        return {}
    finally:
        reader.close()
