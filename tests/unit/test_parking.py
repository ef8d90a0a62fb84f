"""Parking (v1.1): a Kafka message that waits for its prerequisite, through the pipeline on the in-memory store."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent

from consumers.portal import KAFKA_PRINCIPAL
from domain.receipt import MessageReceipt
from domain.reduction import EmissionReduction
from domain.reference import CITY_CODE
from infra.ledger import Ledger
from infra.pipeline import Parking, Result
from tests.portal import CODE, admitted, msg, reduction

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
EARLY = msg("data.provided", {"kind": "k", "reference": "r"}, dept="big_data", mid="early-1")


def parking(later: timedelta = timedelta(0)) -> Parking:
    return Parking(window=timedelta(minutes=10), now=datetime.now(timezone.utc) + later)


def from_kafka(ledger: Ledger, *bodies: Any, later: timedelta = timedelta(0)) -> list[Result]:
    return ledger.submit(list(bodies), principal=KAFKA_PRINCIPAL, channel="kafka", keys=[b"620102"] * len(bodies),
                         origins=[f"kafka:yaosu.portal.v1:0@{n}" for n in range(len(bodies))],
                         parking=parking(later))


def retry(ledger: Ledger, later: timedelta = timedelta(0)) -> list[Result]:
    waiting, _ = ledger.waiting()
    return ledger.retry_parked(waiting, principal=KAFKA_PRINCIPAL, parking=parking(later))


def test_a_message_before_its_project_waits_then_passes(memory_ledger: Ledger) -> None:
    (result,) = from_kafka(memory_ledger, EARLY)
    assert (result.status, result.code) == ("parked", "unknown_project")
    assert not memory_ledger.rejections().items  # not rejected, and its message_id not used up
    assert list(memory_ledger.waiting()[0].values()) == ["kafka:yaosu.portal.v1:0@0"]
    assert [r.status for r in retry(memory_ledger)] == ["parked"]  # still nothing to wait for
    from_kafka(memory_ledger, *admitted(CODE))
    assert [r.status for r in retry(memory_ledger)] == ["accepted"]
    assert memory_ledger.waiting()[0] == {}
    project = memory_ledger.project(CODE)
    assert project is not None and "early-1" in project.grants
    assert [r.status for r in from_kafka(memory_ledger, EARLY)] == ["duplicate"]


def test_once_its_window_has_passed_it_is_rejected_for_good_under_its_key(memory_ledger: Ledger) -> None:
    from_kafka(memory_ledger, EARLY)
    (result,) = retry(memory_ledger, later=timedelta(minutes=11))
    assert (result.status, result.code) == ("rejected", "unknown_project")
    (kept,) = memory_ledger.rejections().items
    assert base64.b64decode(kept.event.kafka_key) == b"620102" and kept.event.message_id == "early-1"
    assert memory_ledger.waiting()[0] == {}


def test_a_resend_while_it_waits_is_the_same_waiting_message(memory_ledger: Ledger) -> None:
    from_kafka(memory_ledger, EARLY)
    assert [r.status for r in from_kafka(memory_ledger, EARLY, EARLY)] == ["parked", "parked"]
    assert len(memory_ledger.waiting()[0]) == 1


def test_decided_another_way_meanwhile_it_waits_no_more(memory_ledger: Ledger) -> None:
    from_kafka(memory_ledger, EARLY)
    from_kafka(memory_ledger, *admitted(CODE))
    # The portal sends it again (over HTTP, answered at once) before the consumer tries it again.
    assert [r.status for r in memory_ledger.submit([EARLY], principal=KAFKA_PRINCIPAL, channel="http")] == ["accepted"]
    assert [r.status for r in retry(memory_ledger)] == ["duplicate"]
    assert memory_ledger.waiting()[0] == {}


@pytest.mark.parametrize("code", ["unknown_project", "unknown_reference"])
def test_only_a_missing_prerequisite_waits_and_only_from_kafka(memory_ledger: Ledger, code: str) -> None:
    body = EARLY if code == "unknown_project" else msg(
        "emission.advanced", {"reduction_id": "RD-X", "pollutant": "SO2", "tonnes": 1}, dept="ecology_environment")
    if code == "unknown_reference":
        from_kafka(memory_ledger, *admitted(CODE))
    (over_http,) = memory_ledger.submit([body], principal=KAFKA_PRINCIPAL, channel="http")
    assert (over_http.status, over_http.code) == ("rejected", code)  # HTTP is answered at once
    forbidden = {**body, "message_id": "wrong-1", "actor": {"department": "finance", "user": "u"}}
    (refused,) = from_kafka(memory_ledger, forbidden)
    assert (refused.status, refused.code) == ("rejected", "forbidden")  # other rejections do not wait


def test_events_stored_before_the_new_fields_read_as_they_did(memory_ledger: Ledger) -> None:
    from_kafka(memory_ledger, reduction("RD-OLD"), {"not": "an envelope"})
    upcast = [i for i in memory_ledger.feed(0, 10).items
              if isinstance(i.event, (EmissionReduction.Registered, MessageReceipt.Rejected))]
    assert len(upcast) == 2
    for item in upcast:
        state = memory_ledger.mapper.transcoder.decode(item.state)
        assert state.pop("class_version") == 2  # written by this version
        for field in ("district", "body_length", "body_sha256", "kafka_key"):
            state.pop(field, None)  # as an older version wrote it
        old = StoredEvent(originator_id=item.event.originator_id, originator_version=item.event.originator_version,
                          topic=item.topic, state=memory_ledger.mapper.transcoder.encode(state))
        event = memory_ledger.decode(old)
        if isinstance(event, EmissionReduction.Registered):
            assert event.district == CITY_CODE
        else:
            assert (event.kafka_key, event.body_length, event.body_sha256) == (None, None, None)
