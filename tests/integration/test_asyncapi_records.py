"""What Yaosu really writes to Kafka is what `docs/asyncapi.json` says: on the real broker and PostgreSQL, every
record the relay and the monitor publish — events, alert changes (of projects and of an approval, with grants
and cases), rejections of a refused and of a non-JSON portal message, audit checkpoints — has the key, the
headers and the value its channel's message declares."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson

from api.asyncapi import document
from consumers.monitor import Monitor
from consumers.relay import Relay
from domain.reference import CITY_TZ
from infra import kafka
from infra.settings import Settings
from projections import chain
from projections.runner import Runner
from service.bootstrap import build_ledger
from tests.factorstory import factor_story
from tests.integration.test_kafka import consumer_process, stop, wait_consumed
from tests.kafkatools import produce, read_topic
from tests.portal import CODE, msg
from tests.unit.test_asyncapi import Draft7
from tests.unit.test_schema import as_decimals

#: The channel of each topic Yaosu writes.
WRITTEN = {kafka.EVENTS: "events", kafka.ALERTS: "alerts", kafka.REJECTED: "rejected", kafka.AUDIT: "audit"}


def declared(channel: str) -> dict[str, Any]:
    """The validators of the one message of a channel: its key, its headers, its payload."""
    doc = as_decimals(document())
    [ref] = doc["channels"][channel]["messages"].values()
    message = doc["components"]["messages"][ref["$ref"].rpartition("/")[2]]
    over = {"components": doc["components"]}
    payload = doc["components"]["schemas"][message["payload"]["$ref"].rpartition("/")[2]]
    return {"key": Draft7({**message["bindings"]["kafka"]["key"], **over}),
            "headers": Draft7({**message["headers"], **over}), "payload": Draft7({**message["payload"], **over}),
            "fields": set(payload["properties"])}


def problems(record: Any, message: dict[str, Any]) -> list[str]:
    value = orjson.loads(record.value)
    instance = as_decimals(value)
    found = [f"value: {e.message}" for e in message["payload"].iter_errors(instance)]
    # The schemas stay open for what later versions add; today each field sent is one they name.
    found += [f"value: {name!r} is not named in docs/asyncapi.json" for name in sorted(set(value) - message["fields"])]
    if record.key is not None:
        found += [f"key: {e.message}" for e in message["key"].iter_errors(record.key.decode())]
    headers = {name: raw.decode() for name, raw in record.headers}
    found += [f"headers: {e.message}" for e in message["headers"].iter_errors(headers)]
    return found


def test_every_record_published_is_as_the_asyncapi_document_declares(kafka_settings: Settings, tmp_path: Path) -> None:
    kafka.ensure_topics(kafka_settings, kafka.PORTAL, kafka.REJECTED, kafka.EVENTS, kafka.ALERTS, kafka.AUDIT)
    ledger = build_ledger(kafka_settings)
    runner = Runner(ledger, kafka_settings)
    follower = threading.Thread(target=runner.run_forever)
    try:
        factor_story(ledger)
        # Two portal messages refused for good from Kafka: one from a department that may not send it, one
        # that is not JSON at all (its text is what the rejection quotes).
        wrong = msg("plan.set", {"year": 2021, "planned_investment": 5}, code=CODE, dept="finance", mid="aa-1")
        produce(kafka_settings, [wrong, b"{not json"], key=lambda _: b"620102")
        consumer = consumer_process(kafka_settings, tmp_path / "consumer.log")
        try:
            wait_consumed(kafka_settings, ledger)
        finally:
            stop(consumer)
        follower.start()
        monitor = Monitor(ledger, kafka_settings)
        try:
            day = date(2021, 1, 1)
            while day <= date(2023, 6, 1):  # month by month, as the monitor follows the days
                monitor.run_once(day)
                day = (day + timedelta(days=32)).replace(day=1)
        finally:
            monitor.close()
        runner.stop()
        follower.join()
        tables = runner.catalog.active(chain.HashChain)
        today = ledger.feed(0, 1).items[0].event.timestamp.astimezone(CITY_TZ).date()  # type: ignore[union-attr]
        assert chain.record_checkpoints(ledger, runner.db, tables, today + timedelta(days=1))
        runner.run_until_caught_up()
        Relay(ledger, kafka_settings).run(until_caught_up=True)

        for topic, channel in WRITTEN.items():
            message = declared(channel)
            records = read_topic(kafka_settings, topic)
            assert records, f"nothing on {topic}"
            wrong_records = [(record.key, record.value[:300], found) for record in records
                             if (found := problems(record, message))]
            assert not wrong_records, f"{topic}: {len(wrong_records)} of {len(records)} records differ from " \
                                      f"docs/asyncapi.json, e.g. {wrong_records[:3]}"
        alerts = [orjson.loads(r.value) for r in read_topic(kafka_settings, kafka.ALERTS)]
        assert {a["change"] for a in alerts} >= {"raised", "escalated", "cleared"}
        assert any(a["project_code"] is None for a in alerts) and any(a["case_id"] for a in alerts)
        rejected = [orjson.loads(r.value) for r in read_topic(kafka_settings, kafka.REJECTED)]
        assert sorted((r["code"], r["message_id"], r["message"]) for r in rejected) == [
            ("forbidden", "aa-1", wrong), ("invalid", None, "{not json")]
    finally:
        runner.stop()
        if follower.is_alive():
            follower.join()
        runner.close()
        ledger.close()
