"""The v1.2 messages through the portal consumer on the real broker and PostgreSQL, keyed as the contract
recommends (decision 9: an approval by its district, an allocation by the city, a case by its project's
district): decided as over HTTP, a refusal kept and forwarded with its code."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import orjson
import pytest

from consumers.relay import Relay
from domain.allocation import allocation_id_of
from domain.approval import approval_id_of
from infra import kafka
from infra.kafka import district_key
from infra.settings import Settings
from service.bootstrap import build_ledger
from service.ledger import Ledger
from tests.integration.test_kafka import consumer_process, stop, wait_consumed
from tests.kafkatools import produce, read_topic
from tests.portal import CODE, admitted, land_quota
from tests.unit.test_v12_messages import adopt, approve, assign, issue, land, respond


@pytest.fixture
def ledger(kafka_settings: Settings) -> Iterator[Ledger]:
    kafka.ensure_topics(kafka_settings, kafka.PORTAL, kafka.REJECTED, kafka.EVENTS, kafka.ALERTS)
    app = build_ledger(kafka_settings)
    yield app
    app.close()


def test_the_new_message_types_go_through_the_portal_consumer(kafka_settings: Settings, ledger: Ledger,
                                                               tmp_path: Path) -> None:
    wrong_sender = respond(dept="finance", mid="kafka-wrong-1")
    messages = [*admitted(CODE, "annual"), land_quota(500), approve(area=30), land(20, approval_id="LA-1"),
                issue(), assign(), respond(mid="kafka-respond-1"), wrong_sender, adopt()]
    assert {district_key(m) for m in messages} == {b"620102", b"620100"}  # the allocation: the city
    produce(kafka_settings, messages, district_key)
    consumer = consumer_process(kafka_settings, tmp_path / "consumer.log")
    try:
        wait_consumed(kafka_settings, ledger)
    finally:
        stop(consumer)
    assert ledger.get(approval_id_of("LA-1")).unsupplied == 10
    assert ledger.get(allocation_id_of("AL-1")).shares[0] == {"district": "620102", "amount": 60}
    project = ledger.project(CODE)
    assert project is not None
    case = project.cases["DB-1"]
    assert (case["assigned_by"], len(case["responses"])) == ("supervision_office", 1)
    (rejected,) = [i.event for i in ledger.rejections().items]
    assert (rejected.message_id, rejected.code, rejected.detail_code) == ("kafka-wrong-1", "forbidden",
                                                                          "forbidden.type")
    Relay(ledger, kafka_settings).run(until_caught_up=True)  # forwards the refusal, publishes the events
    (forwarded,) = read_topic(kafka_settings, kafka.REJECTED)
    value = orjson.loads(forwarded.value)
    assert (value["message_id"], value["code"]) == ("kafka-wrong-1", "forbidden")
    assert forwarded.key == b"620102"  # the original message's key
    # The approval's and the allocation's events are contract events: keyed as their messages, naming
    # their subject; a case's are its project's.
    published = {(r.key, value["event"], value.get("approval_id") or value.get("allocation_id")
                  or value.get("project_code")) for r in read_topic(kafka_settings, kafka.EVENTS)
                 for value in [orjson.loads(r.value)]}
    assert {(b"620102", "landapproval.approved", "LA-1"), (b"620102", "landapproval.drawn", "LA-1"),
            (b"620100", "allocation.adopted", "AL-1"), (b"620102", "project.supervision_assigned", CODE),
            (b"620102", "project.supervision_responded", CODE)} <= published
