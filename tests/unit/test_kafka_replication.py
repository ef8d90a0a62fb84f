"""How the topics Yaosu creates are replicated (issue 24): three copies on a cluster, two of them in sync."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.kafka import Replication
from infra.settings import MAX_KAFKA_REPLICATION, Settings


def test_a_cluster_of_three_gets_three_copies_two_in_sync_and_one_broker_one() -> None:
    assert Replication.of(Settings(), 3) == Replication(3, 2)
    assert Replication.of(Settings(), 1) == Replication(1, 1)
    assert Replication.of(Settings.from_env({"YAOSU_KAFKA_REPLICATION": "1"}), 3) == Replication(1, 1)
    topic = Replication(3, 2).new_topic("yaosu.portal.v1")
    assert (topic.num_partitions, topic.replication_factor, topic.topic_configs) == (3, 3, {"min.insync.replicas": "2"})


@given(brokers=st.integers(1, 9), setting=st.none() | st.integers(1, MAX_KAFKA_REPLICATION))
def test_an_acknowledged_write_is_on_a_majority_of_copies_and_never_more_copies_than_brokers(
        brokers: int, setting: int | None) -> None:
    settings = Settings(kafka_replication=setting)
    if setting is not None and setting > brokers:
        with pytest.raises(ValueError, match="YAOSU_KAFKA_REPLICATION"):
            Replication.of(settings, brokers)
        return
    found = Replication.of(settings, brokers)
    assert found.replicas == (setting or min(brokers, 3)) <= brokers
    # A majority in sync: two acknowledged writes share a copy, so losing any minority of brokers loses none.
    assert 2 * found.min_insync > found.replicas >= found.min_insync >= 1
    # And one broker down (of three or more copies) still takes writes.
    assert found.replicas < 3 or found.min_insync <= found.replicas - 1


def test_every_producer_of_yaosu_is_made_by_infra_kafka_producer() -> None:
    """acks=all and idempotence are set in one place (`infra.kafka.producer`): no other module of the service makes a
    producer of its own (the relay, the monitor, the rejected topic and the audit checkpoints all use it)."""
    root = Path(__file__).resolve().parents[2]
    makers = [path.relative_to(root).as_posix()
              for package in ("yaosu", "api", "consumers", "projections", "service", "infra", "domain")
              for path in sorted((root / package).rglob("*.py")) if "KafkaProducer(" in path.read_text()]
    assert makers == ["infra/kafka.py"]
