"""`yaosu notify` on the real broker and store, against a local receiver that fails, times out and answers
slowly: each alert change and supervision event reaches each target it is for exactly once (by delivery id
and by content), in order, through SIGKILLs of the notifier; DingTalk requests are signed as documented."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from consumers.monitor import Monitor
from consumers.notify import Notifier
from consumers.relay import Relay
from consumers.targets import parse
from domain.reference import CITY_TZ
from infra import kafka
from infra.settings import Settings
from projections import outbox
from projections.db import Db
from projections.runner import Runner
from service.bootstrap import build_ledger
from tests.conftest import LOCAL
from tests.console import sign_in
from tests.factorstory import factor_story
from tests.kafkatools import read_topic
from tests.receiver import Receiver
from yaosu.wiring import Wiring

SUPERVISION = ("supervision.assigned", "supervision.responded", "supervision.closed")


def chaotic(n: int) -> str:
    """The receiver's mood for its n-th request: mostly fine, sometimes failing, hanging or slow."""
    roll = random.Random(n).random()
    return "fail" if roll < 0.15 else "timeout" if roll < 0.2 else "slow" if roll < 0.3 else "ok"


def targets_file(path: Path, base: str, secret: str, **retry: Any) -> Path:
    path.write_text(orjson.dumps({
        "retry": {"first_seconds": 0.2, "most_seconds": 1, "attempts": 1000, "timeout_seconds": 1, **retry},
        "targets": [
            {"name": "all-wecom", "kind": "wecom", "url": f"{base}/wecom?key=k1"},
            {"name": "red-dingtalk", "kind": "dingtalk", "url": f"{base}/dingtalk?access_token=t1", "secret": secret,
             "levels": ["red"], "events": ["alert"]},
            {"name": "nr-hook", "kind": "webhook", "url": f"{base}/hook",
             "departments": ["natural_resources"]}]}).decode())
    return path


def environment(settings: Settings, targets: Path) -> dict[str, str]:
    return {**os.environ, "YAOSU_STORE": settings.store, "YAOSU_KAFKA_BOOTSTRAP": str(settings.kafka_bootstrap),
            "YAOSU_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix, "YAOSU_NOTIFY_TARGETS": str(targets),
            "YAOSU_CONSOLE_URL": "https://yaosu.example.gov.cn"}


def notify_process(settings: Settings, targets: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "yaosu", "notify", "--from-beginning"],
                            env=environment(settings, targets), stdout=log.open("ab"), stderr=subprocess.STDOUT)


def published_changes(settings: Settings) -> tuple[dict[int, Any], dict[int, Any]]:
    """The alert changes and supervision events on the topics, by store position (a relayed repeat once)."""
    alerts = {int(v["position"]): v for v in (orjson.loads(r.value) for r in read_topic(settings, kafka.ALERTS))}
    events = {int(v["position"]): v for v in (orjson.loads(r.value) for r in read_topic(settings, kafka.EVENTS))
              if v.get("type") in SUPERVISION}
    return alerts, events


def expected_for(alerts: dict[int, Any], events: dict[int, Any]) -> dict[str, set[int]]:
    """Which changes each target of `targets_file` is for, worked out from the published values."""
    responsible = {v["data"]["case_id"]: v["data"]["responsible"] for v in events.values()
                   if v["type"] == "supervision.assigned"}
    return {
        "all-wecom": set(alerts) | set(events),
        "red-dingtalk": {p for p, v in alerts.items() if v["level"] in ("red", None)},
        "nr-hook": {p for p, v in alerts.items() if v["department"] == "natural_resources"}
        | {p for p, v in events.items() if responsible[v["data"]["case_id"]] == "natural_resources"},
    }


def publish_the_story(settings: Settings) -> None:
    """The factor story's alert changes on `yaosu.alerts.v1` (the monitor, month by month) and its events on
    `yaosu.events.v1` (the relay)."""
    ledger = build_ledger(settings)
    factor_story(ledger)
    runner = Runner(ledger, settings)
    follower = threading.Thread(target=runner.run_forever)
    follower.start()
    monitor = Monitor(ledger, settings)
    try:
        for year, month in [(y, m) for y in (2021, 2022) for m in range(1, 13)]:
            monitor.run_once(date(year, month, 1))
        Relay(ledger, settings).run(until_caught_up=True)
    finally:
        monitor.close()
        runner.stop()
        follower.join()
        runner.close()
        ledger.close()


def wait_for(done: Any, what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.5)


def test_each_change_reaches_each_target_once_in_order_through_kills_failures_and_timeouts(
        kafka_settings: Settings, tmp_path: Path) -> None:
    publish_the_story(kafka_settings)
    alerts, events = published_changes(kafka_settings)
    assert len(alerts) > 30 and {v["type"] for v in events.values()} == set(SUPERVISION)
    assert {v["level"] for v in alerts.values()} >= {"red", "yellow", None}
    expected = expected_for(alerts, events)
    assert all(expected.values())

    receiver = Receiver(chaotic, hang_seconds=2.5)
    base = receiver.start()
    targets = targets_file(tmp_path / "targets.json", base, receiver.dingtalk_secret)
    log = tmp_path / "notify.log"
    db = Db(kafka_settings)
    kills = 0
    total = sum(len(v) for v in expected.values())

    def delivered() -> int:
        counts = outbox.counts(db) if outbox.exists(db) else {}
        return sum(n for (_, state), n in counts.items() if state == "delivered")

    killed_at = []
    try:
        rng = random.Random(23)
        for _ in range(4):  # killed at a random moment, whatever it is doing, and started again
            process = notify_process(kafka_settings, targets, log)
            time.sleep(rng.uniform(2, 6))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            kills += 1
            killed_at.append(delivered())
        assert any(0 < n < total for n in killed_at), (killed_at, total)  # killed in the middle of the work
        logged = log.stat().st_size if log.exists() else 0
        process = notify_process(kafka_settings, targets, log)

        def all_delivered() -> bool:
            assert process.poll() is None, log.read_text()[-3000:]
            return delivered() == total
        wait_for(all_delivered, f"{total} deliveries")
        # (the last one may have had nothing left to do: stopped once it is running, not while it starts)
        wait_for(lambda: "delivering to" in log.read_bytes()[logged:].decode(errors="replace"),
                 "the last notifier running")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
        receiver.stop()
    assert not any(state != "delivered" for (_, state) in outbox.counts(db))
    assert {r.outcome for r in receiver.received} >= {"ok", "fail", "timeout"}  # it did fail and hang

    for name, path in (("all-wecom", "/wecom"), ("red-dingtalk", "/dingtalk"), ("nr-hook", "/hook")):
        accepted = receiver.accepted(path)
        ids = [r.delivery_id for r in accepted]
        # Exactly once by delivery id: every change it is for, nothing else; a repeat only from a kill
        # between the answer and its mark, carrying the same id and the same body.
        assert set(ids) == {outbox.delivery_id(p, name) for p in expected[name]}, name
        repeats = [i for i, n in Counter(ids).items() if n > 1]
        assert len(ids) - len(set(ids)) <= kills, (name, repeats)
        for repeated in repeats:
            assert len({orjson.dumps(r.body) for r in accepted if r.delivery_id == repeated}) == 1
        # In order: the changes of one district, of one kind, in the order they were recorded.
        first_seen = list(dict.fromkeys(int(i.split("-")[1]) for i in ids))
        for kind, changes in (("alert", alerts), ("supervision", events)):
            for district in {v["district"] for v in changes.values()}:
                mine = [p for p in first_seen if p in changes and changes[p]["district"] == district]
                assert mine == sorted(mine), (name, kind, district)

    # By content: what each target was told is the change, once.
    hooks = {r.delivery_id: r.body for r in receiver.accepted("/hook")}
    for delivery, told in hooks.items():
        source = alerts.get(told["change_id"]) or events[told["change_id"]]
        assert told["delivery_id"] == delivery and told["project_code"] == source["project_code"]
        assert told["link"].startswith("https://yaosu.example.gov.cn/console/")
    assert len({b["change_id"] for b in hooks.values()}) == len(hooks)
    wecom = [r.body for r in receiver.accepted("/wecom")]
    assert all(set(b) == {"msgtype", "markdown"} and b["msgtype"] == "markdown" and set(b["markdown"]) == {"content"}
               for b in wecom)
    assert any("【红色预警】" in b["markdown"]["content"] for b in wecom)
    assert any("【督办交办】" in b["markdown"]["content"] for b in wecom)
    dingtalk = [r for r in receiver.received if r.path == "/dingtalk"]
    assert dingtalk and all(r.signature_checked and r.outcome != "bad_sign" for r in dingtalk)
    assert all(set(r.body["markdown"]) == {"title", "text"} for r in dingtalk)
    db.close()


def test_a_target_that_never_answers_well_is_given_up_and_shown(kafka_settings: Settings, tmp_path: Path) -> None:
    """Bounded attempts: then undeliverable with the reason, in `/v1/notifications` and on the health page;
    the target's next delivery goes on."""
    publish_the_story(kafka_settings)
    receiver = Receiver(lambda n: "fail" if n < 3 else "ok")  # the first change fails 3 times
    base = receiver.start()
    targets = parse(Path("targets.json"), {
        "retry": {"first_seconds": 0.05, "most_seconds": 0.1, "attempts": 3, "timeout_seconds": 1},
        "targets": [{"name": "hook", "kind": "webhook", "url": f"{base}/hook", "events": ["supervision"]}]})
    ledger = build_ledger(kafka_settings)
    notifier = Notifier(ledger, kafka_settings, targets, from_beginning=True)
    try:
        def settled() -> bool:
            notifier.read()
            notifier.send_due()
            counts = outbox.counts(notifier.db)
            return counts.get(("hook", "pending"), 0) == 0 and counts.get(("hook", "delivered"), 0) > 0
        wait_for(settled, "the hook's deliveries settled", timeout=60)
        counts = outbox.counts(notifier.db)
        assert counts[("hook", "undeliverable")] == 1
        given_up = outbox.listed(notifier.db, "undeliverable")
        assert given_up[0]["attempts"] == 3 and given_up[0]["last_error"] == "HTTP 500 Internal Server Error"
    finally:
        notifier.close()
        receiver.stop()

    ledger.close()
    wiring = Wiring(Settings(store=kafka_settings.store))  # as `yaosu serve` builds it: with its read models
    with wiring, TestClient(wiring.app(), base_url=LOCAL) as client:
        answer = client.get("/v1/notifications?state=undeliverable", headers={"Authorization": "Bearer dev-supervisor"})
        assert answer.status_code == 200, answer.text
        found = answer.json()
        assert [i["delivery_id"] for i in found["items"]] == [given_up[0]["delivery_id"]]
        assert found["counts"]["undeliverable"] == 1 and found["counts"]["delivered"] == counts[("hook", "delivered")]
        everything = client.get("/v1/notifications?limit=2", headers={"Authorization": "Bearer dev-admin"}).json()
        assert len(everything["items"]) == 2 and everything["next_after"] == everything["items"][-1]["sequence"]
        assert client.get("/v1/notifications", headers={"Authorization": "Bearer dev-finance"}).status_code == 403
        refused = client.get("/v1/notifications?state=lost", headers={"Authorization": "Bearer dev-admin"})
        assert refused.status_code == 400
        exposition = client.get("/metrics").text
        checked = subprocess.run(["promtool", "check", "metrics"], input=exposition, capture_output=True, text=True,
                                 timeout=60)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        families = {f.name: f for f in text_string_to_metric_families(exposition)}
        stored = {(s.labels["target"], s.labels["state"]): s.value for s in families["yaosu_notify_deliveries"].samples}
        assert stored == {key: float(n) for key, n in counts.items()}
        # this process's own counts (the notifier ran in it): what `yaosu notify --metrics-port` shows
        assert families["yaosu_notify_undeliverable"].type == "counter"
        assert "hook" in {s.labels["target"] for s in families["yaosu_notify_undeliverable"].samples}
        assert {"yaosu_notify_delivered", "yaosu_notify_failed_attempts", "yaosu_notify_backlog"} <= set(families)
        sign_in(client)
        page = client.get("/console/health").text
        assert given_up[0]["delivery_id"] in page and "无法送达" in page and "HTTP 500" in page


def at_city(text: str) -> float:
    """Epoch seconds of a city time (`2026-12-03 23:00`)."""
    return datetime.fromisoformat(text).replace(tzinfo=CITY_TZ).timestamp()


def story_notice(position: int, code: str = "2026-620102-48-01-000001", change: str = "raised") -> Any:
    from consumers.notices import alert_notice

    return alert_notice({"position": position, "change": change, "project_code": code, "rule": "land_idle",
                         "level": "red" if change != "cleared" else None, "detail": "x", "department": "finance",
                         "leader": None, "as_of": "2026-12-03", "district": "620102", "subject": code}, "某项目")


def test_quiet_hours_hold_deliveries_until_they_end_and_a_daily_digest_tells_the_day_once(
        settings: Settings, tmp_path: Path) -> None:
    """On each store: a target's quiet hours hold its deliveries; a digest target gets one message a day
    listing what was held for it, made once whatever the restarts, and nothing on a day with nothing."""
    receiver = Receiver()
    base = receiver.start()
    now = [at_city("2026-12-03 23:00")]
    targets = parse(Path("t.json"), {"retry": {"first_seconds": 60, "most_seconds": 60, "timeout_seconds": 5},
                                     "targets": [{"name": "night", "kind": "wecom", "url": f"{base}/wecom",
                                                  "quiet_hours": "22:00-07:00"},
                                                 {"name": "daily", "kind": "webhook", "url": f"{base}/hook",
                                                  "digest": "08:30"}]})
    ledger = build_ledger(settings)

    def notifier() -> Notifier:  # a fresh process each time: nothing is kept but the store
        return Notifier(ledger, settings, targets, clock=lambda: now[0])

    first = notifier()
    try:
        for position in (11, 12):
            outbox.record(first.db, {}, first.deliveries(story_notice(position)), now[0])
        outbox.record(first.db, {}, first.deliveries(story_notice(11)), now[0])  # read again: nothing new
        assert first.send_due() == 0 and not receiver.received  # 23:00: quiet; the digest's time has not come
        assert outbox.counts(first.db) == {("night", "pending"): 2, ("daily", "held"): 2}
        now[0] = at_city("2026-12-04 07:00")
        assert first.send_due() == 2  # 07:00: the quiet hours are over (the digest waits for 08:30)
        assert [r.delivery_id for r in receiver.accepted("/wecom")] == ["yaosu-11-night", "yaosu-12-night"]
    finally:
        first.close()
    now[0] = at_city("2026-12-04 08:31")
    second = notifier()
    try:
        second.make_digests()
        second.make_digests()  # made once a day
        assert outbox.counts(second.db)[("daily", "digested")] == 2
        second.send_due()
        outbox.record(second.db, {}, second.deliveries(story_notice(13, change="cleared")), now[0])
        second.send_due()  # recorded after today's digest: tomorrow's
    finally:
        second.close()
    digests = receiver.accepted("/hook")
    assert [r.delivery_id for r in digests] == ["yaosu-digest-2026-12-04-daily"]
    assert digests[0].body["titles"] == ["【红色预警】某项目", "【红色预警】某项目"]
    assert digests[0].body["text"].startswith("### 【每日汇总】2026-12-04：预警与督办变化2条")
    now[0] = at_city("2026-12-05 09:00")
    third = notifier()
    try:
        third.send_due()
        third.send_due()
        assert outbox.counts(third.db)[("daily", "delivered")] == 2
    finally:
        third.close()
        receiver.stop()
        ledger.close()
    assert [r.body["titles"] for r in receiver.accepted("/hook")][1:] == [["【预警解除】某项目"]]


def test_a_failed_delivery_waits_its_backoff_and_holds_the_targets_later_ones(settings: Settings) -> None:
    receiver = Receiver(lambda n: "fail" if n == 0 else "ok")
    base = receiver.start()
    now = [1_000_000.0]
    targets = parse(Path("t.json"), {"retry": {"first_seconds": 30, "most_seconds": 600, "timeout_seconds": 5},
                                     "targets": [{"name": "hook", "kind": "webhook", "url": f"{base}/hook"}]})
    ledger = build_ledger(settings)
    notifier = Notifier(ledger, settings, targets, clock=lambda: now[0])
    try:
        for position in (21, 22):
            outbox.record(notifier.db, {}, notifier.deliveries(story_notice(position)), now[0])
        assert notifier.send_due() == 0  # the first failed: the second waits behind it, in order
        row = outbox.listed(notifier.db, "pending")[0]
        assert row["attempts"] == 1 and row["next_attempt_at"] == now[0] + 30 and row["last_error"].startswith("HTTP 500")
        now[0] += 29
        assert notifier.send_due() == 0 and len(receiver.received) == 1
        now[0] += 1
        assert notifier.send_due() == 2
        assert [r.delivery_id for r in receiver.accepted("/hook")] == ["yaosu-21-hook", "yaosu-22-hook"]
    finally:
        notifier.close()
        receiver.stop()
        ledger.close()
