"""Parking (v1.1): a Kafka message that waits for its prerequisite, through the pipeline on the in-memory store."""

from __future__ import annotations

import base64
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.portal import KAFKA_PRINCIPAL
from domain.receipt import MessageReceipt
from domain.reduction import EmissionReduction
from domain.reference import CITY_CODE
from infra.kafka import KafkaOrigin
from infra.metrics import PROCESS
from infra.settings import Settings
from service.bootstrap import build_ledger
from service.ledger import Ledger
from service.pipeline import Parking, Result
from tests.portal import CODE, OTHER, admitted, msg, reduction

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
EARLY = msg("data.provided", {"kind": "k", "reference": "r"}, dept="big_data", mid="early-1")


def parking(later: timedelta = timedelta(0)) -> Parking:
    return Parking(window=timedelta(minutes=10), now=datetime.now(timezone.utc) + later)


def from_kafka(ledger: Ledger, *bodies: Any, later: timedelta = timedelta(0)) -> list[Result]:
    return ledger.submit(list(bodies), principal=KAFKA_PRINCIPAL, channel="kafka", keys=[b"620102"] * len(bodies),
                         origins=[KafkaOrigin("kafka:yaosu.portal.v1:0", n) for n in range(len(bodies))],
                         parking=parking(later))


def retry(ledger: Ledger, later: timedelta = timedelta(0)) -> list[Result]:
    waiting, _ = ledger.waiting()
    return ledger.retry_parked(waiting, principal=KAFKA_PRINCIPAL, parking=parking(later))


def test_a_message_before_its_project_waits_then_passes(memory_ledger: Ledger) -> None:
    (result,) = from_kafka(memory_ledger, EARLY)
    assert (result.status, result.code) == ("parked", "unknown_project")
    assert not memory_ledger.rejections().items  # not rejected, and its message_id not used up
    assert [str(origin) for origin in memory_ledger.waiting()[0].values()] == ["kafka:yaosu.portal.v1:0@0"]
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
    assert memory_ledger.waiting()[0] == {}  # the parked message was read with it, and released with it
    assert retry(memory_ledger) == []


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


# --- one message_id, two bodies (issue 19, item 11) ------------------------------------------

def decisions(ledger: Ledger) -> Counter[tuple[Any, ...]]:
    """Every receipt kept: (message_id, body, outcome, code), each as often as it was kept."""
    kept: Counter[tuple[Any, ...]] = Counter()
    after = 0
    while items := ledger.feed(after, 1000).items:
        for item in items:
            e: Any = item.event
            if isinstance(e, (MessageReceipt.Accepted, MessageReceipt.Rejected)):
                kept[(e.message_id, e.body_hash, type(e).__name__, getattr(e, "code", None))] += 1
        after = items[-1].position
    return kept


def direct_load(*bodies: Any) -> Counter[tuple[Any, ...]]:
    """The same bodies submitted straight to a store in this order, nothing parked."""
    ledger = build_ledger(Settings(store="memory://"))
    try:
        for body in bodies:
            ledger.submit([body], principal=KAFKA_PRINCIPAL, channel="kafka")
        return decisions(ledger)
    finally:
        ledger.close()


def data(reference: str, code: str = CODE, mid: str = "same-1") -> dict[str, Any]:
    return msg("data.provided", {"kind": "k", "reference": reference}, code=code, dept="big_data", mid=mid)


A = data("first")
THERE = admitted(OTHER, district="620103")  # a project that exists
INVALID_B = {**data("second"), "payload": {"kind": "k"}}  # no reference: invalid


def settle(ledger: Ledger) -> None:
    """The consumer's last try: every window has passed."""
    retry(ledger, later=timedelta(minutes=11))
    assert ledger.waiting()[0] == {}


@pytest.mark.parametrize("b", [INVALID_B, data("second"), data("second", code=OTHER)],
                         ids=["c1-b-invalid", "c2-both-wait", "c3-b-for-an-existing-project"])
def test_a_second_body_under_a_parked_message_id_is_a_conflict_and_both_are_kept(memory_ledger: Ledger,
                                                                                  b: dict[str, Any]) -> None:
    from_kafka(memory_ledger, *THERE)
    assert [r.status for r in from_kafka(memory_ledger, A)] == ["parked"]
    assert [(r.status, r.code) for r in from_kafka(memory_ledger, b)] == [("rejected", "conflict")]
    assert [(r.status, r.code) for r in from_kafka(memory_ledger, b)] == [("rejected", "conflict")]  # kept once
    assert [r.status for r in retry(memory_ledger)] == ["parked"]  # A still waits for its project
    settle(memory_ledger)
    assert decisions(memory_ledger) == direct_load(*THERE, A, b)
    assert {(m, c) for m, _, _, c in decisions(memory_ledger) if m == "same-1"} == {
        ("same-1", "unknown_project"), ("same-1", "conflict")}


def test_a_parked_message_whose_id_another_body_took_first_is_a_conflict_not_parked(memory_ledger: Ledger) -> None:
    b = data("second", code=OTHER)
    from_kafka(memory_ledger, *THERE, b)
    assert [(r.status, r.code) for r in from_kafka(memory_ledger, A)] == [("rejected", "conflict")]
    assert memory_ledger.waiting()[0] == {}
    assert decisions(memory_ledger) == direct_load(*THERE, b, A)


def test_a_parked_message_whose_prerequisite_comes_is_accepted_and_the_other_body_stays_a_conflict(
        memory_ledger: Ledger) -> None:
    from_kafka(memory_ledger, A, INVALID_B)  # one batch
    project = admitted(CODE)
    from_kafka(memory_ledger, *project)
    assert [r.status for r in retry(memory_ledger)] == ["accepted"]
    settle(memory_ledger)
    assert decisions(memory_ledger) == direct_load(*project, A, INVALID_B)


def test_an_expired_message_is_rejected_for_what_it_waited_for_not_for_what_came_after(memory_ledger: Ledger) -> None:
    project = admitted(CODE)
    from_kafka(memory_ledger, *project)
    advance = msg("emission.advanced", {"reduction_id": "RD-NEVER", "pollutant": "SO2", "tonnes": 1},
                  dept="ecology_environment", mid="advance-1")
    assert [(r.status, r.code) for r in from_kafka(memory_ledger, advance)] == [("parked", "unknown_reference")]
    cancelled = msg("project.cancelled", {"reason": "撤销"})
    from_kafka(memory_ledger, cancelled)  # the project closes meanwhile
    assert [(r.status, r.code) for r in retry(memory_ledger)] == [("parked", "unknown_reference")]
    assert [(r.status, r.code) for r in retry(memory_ledger, later=timedelta(minutes=11))] == [
        ("rejected", "unknown_reference")]  # not closed_project: it was judged when it came
    assert decisions(memory_ledger) == direct_load(*project, advance, cancelled)


def test_a_parked_message_counts_once_parked_and_once_decided_however_often_it_is_tried(memory_ledger: Ledger) -> None:
    def counted(status: str, code: str) -> float:
        return PROCESS.get_sample_value("yaosu_messages_total", {"channel": "kafka", "status": status,
                                                                 "code": code}) or 0.0

    before = counted("parked", "unknown_project"), counted("accepted", "")
    early = data("counted", mid="counted-1")
    from_kafka(memory_ledger, early)
    for _ in range(5):
        retry(memory_ledger)
    from_kafka(memory_ledger, *admitted(CODE))
    retry(memory_ledger)
    assert counted("parked", "unknown_project") - before[0] == 1
    assert counted("accepted", "") - before[1] == 1 + len(admitted(CODE))


@st.composite
def kafka_orders(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """Messages under a few ids, with a few bodies each (one of them invalid), for two projects of which
    each arrives at some point or never: ("message", body) and ("arrives", code), in Kafka's order."""
    bodies = {(mid, variant, code): {**data(f"{variant}", code=code, mid=mid),
                                     **({"payload": {"kind": "k"}} if variant == 2 else {})}
              for mid in ("m1", "m2", "m3") for variant in range(3) for code in (CODE, OTHER)}
    steps: list[tuple[str, Any]] = [("message", draw(st.sampled_from(list(bodies.values()))))
                                    for _ in range(draw(st.integers(1, 8)))]
    for code in (CODE, OTHER):
        if draw(st.booleans()):
            steps.insert(draw(st.integers(0, len(steps))), ("arrives", code))
    return steps


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kafka_orders())
def test_parking_ends_as_a_direct_load_whatever_the_order_of_ids_bodies_and_prerequisites(
        steps: list[tuple[str, Any]]) -> None:
    projects = {CODE: admitted(CODE), OTHER: THERE}
    ledger = build_ledger(Settings(store="memory://"))
    try:
        for kind, what in steps:  # as the consumer: each batch, then what waits is tried again
            from_kafka(ledger, *(projects[what] if kind == "arrives" else [what]))
            retry(ledger)
        settle(ledger)
        found = decisions(ledger)
    finally:
        ledger.close()
    # A direct load in business order: what arrives at all is there before the messages that need it.
    arrived = [m for kind, code in steps if kind == "arrives" for m in projects[code]]
    assert found == direct_load(*arrived, *(body for kind, body in steps if kind == "message"))
