"""The monitor on the real broker: day by day through the demo year, every alert change once."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from typing import Any

import orjson

from consumers.monitor import Monitor
from domain.alerts import approval_alerts_id
from domain.supervision import Thresholds
from infra import kafka
from infra.settings import Settings
from projections import sedimentation
from projections.runner import Runner
from service.bootstrap import build_ledger
from tests.conftest import submit
from tests.factorstory import factor_story
from tests.kafkatools import read_topic
from yaosu.demo import batches, demo_messages


def changes_between(before: dict[tuple[str, str], str], after: dict[tuple[str, str], str],
                    day: date) -> list[tuple[str, str, str, str | None, str]]:
    found = []
    for key, level in after.items():
        if key not in before:
            found.append((*key, "raised", level, day.isoformat()))
        elif before[key] != level:
            found.append((*key, "escalated" if level == "red" else "deescalated", level, day.isoformat()))
    found += [(*key, "cleared", None, day.isoformat()) for key in before if key not in after]
    return found


def test_the_monitor_publishes_what_alerts_imply_day_by_day_and_nothing_twice(kafka_settings: Settings) -> None:
    ledger = build_ledger(kafka_settings)
    for chunk in batches(demo_messages(2021), 500):
        submit(ledger, *chunk)
    runner = Runner(ledger, kafka_settings)
    follower = threading.Thread(target=runner.run_forever)
    follower.start()
    monitor = Monitor(ledger, kafka_settings)
    try:
        expected: list[Any] = []
        before: dict[tuple[str, str], str] = {}
        day = date(2021, 1, 1)
        while day <= date(2021, 12, 31):
            monitor.run_once(day)  # "today" advanced day by day
            with monitor.reads.snapshot(sedimentation.Sedimentation) as view:
                after = {(a.subject, a.key): a.level for a in sedimentation.alerts(
                    view.db, view.tables(sedimentation.Sedimentation), day, Thresholds())}
            expected += changes_between(before, after, day)
            before = after
            day += timedelta(days=1)
        published = [orjson.loads(r.value) for r in read_topic(kafka_settings, kafka.ALERTS)]
        got = sorted((m["subject"], m["rule"] + (f":{m['ref']}" if m["ref"] else ""), m["change"], m["level"],
                      m["as_of"]) for m in published)
        assert got == sorted(expected)
        # Each names who answers for it (v1.1): the owning department, and the responsible leader if any.
        assert all(m["department"] and "leader" in m for m in published)
        assert any(m["leader"] for m in published)
        assert {c[2] for c in expected} >= {"raised", "escalated", "cleared"}
        assert len(expected) > 300

        monitor.close()
        restarted = Monitor(ledger, kafka_settings)  # a new process: nothing is recorded or sent twice
        assert restarted.run_once(date(2021, 12, 31)) == 0
        assert len(read_topic(kafka_settings, kafka.ALERTS)) == len(published)
        restarted.close()

        code, rule, *_ = expected[0]
        trail = [i.event for i in ledger.history(code)]
        assert any(getattr(e, "audit", None) and e.audit.message_type == "alert.raised" for e in trail)
    finally:
        runner.stop()
        follower.join()
        runner.close()
        ledger.close()


def repr_key(item: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple("" if v is None else str(v) for v in item)


def test_one_monitor_at_a_time(kafka_settings: Settings) -> None:
    ledger = build_ledger(kafka_settings)
    first, second = Monitor(ledger, kafka_settings), Monitor(ledger, kafka_settings)
    try:
        assert first.my_turn() and not second.my_turn()
        first.close()  # the active one goes away: the other takes over
        assert second.my_turn()
    finally:
        second.close()
        ledger.close()


def test_the_factor_level_alerts_reach_the_broker_with_their_grant_factor_case_and_subject(
        kafka_settings: Settings) -> None:
    """v1.2: each value names the grant and factor an alert concerns, whether it may be reclaimed, the
    case open about it and its subject; an approval's alert has no project, is keyed by its district
    and recorded apart. Becoming reclaimable is told as an escalation."""
    ledger = build_ledger(kafka_settings)
    factor_story(ledger)
    runner = Runner(ledger, kafka_settings)
    follower = threading.Thread(target=runner.run_forever)  # the monitor judges on facts as of the store's head
    follower.start()
    monitor = Monitor(ledger, kafka_settings)
    try:
        expected: list[Any] = []
        before: dict[tuple[str, str], Any] = {}
        told: dict[tuple[str, str], Any] = {}
        day = date(2021, 1, 1)
        while day <= date(2023, 5, 31):
            if day.day == 1 or day == date(2023, 5, 31):  # it catches up the days in between itself
                monitor.run_once(day)
            with monitor.reads.snapshot(sedimentation.Sedimentation) as view:
                after = {(a.subject, a.key): a for a in sedimentation.alerts(
                    view.db, view.tables(sedimentation.Sedimentation), day, Thresholds())}
            for key, alert in after.items():
                old = before.get(key)
                if old is None or (old.level, old.reclaimable) != (alert.level, alert.reclaimable):
                    change = ("raised" if old is None else "deescalated" if alert.level == "yellow" and
                              old.level == "red" else "escalated")
                    expected.append((*key, change, alert.level, day.isoformat(), alert.project_code, alert.grant_id,
                                     alert.factor, alert.reclaimable, alert.case_id, alert.district))
                    told[key] = alert  # a cleared alert names the case it had when last told
            expected += [(*key, "cleared", None, day.isoformat(), told[key].project_code, told[key].grant_id,
                          told[key].factor, False, told[key].case_id, told[key].district)
                         for key in before if key not in after]
            before = after
            day += timedelta(days=1)
        records = read_topic(kafka_settings, kafka.ALERTS)
        published = [orjson.loads(r.value) for r in records]
        got = sorted(((m["subject"], m["rule"] + (f":{m['ref']}" if m["ref"] else ""), m["change"], m["level"],
                       m["as_of"], m["project_code"], m["grant_id"], m["factor"], m["reclaimable"], m["case_id"],
                       m["district"]) for m in published), key=repr_key)
        assert got == sorted(expected, key=repr_key)
        assert all(r.key.decode() == orjson.loads(r.value)["district"] for r in records)  # keyed by district
        unsupplied = [m for m in published if m["rule"] == "land_unsupplied"]
        assert unsupplied and all(m["project_code"] is None and m["subject"].startswith("PC-") and
                                  m["department"] == "natural_resources" and m["factor"] == "land"
                                  for m in unsupplied)
        assert any(m["rule"] == "land_idle" and m["change"] == "escalated" and m["reclaimable"] for m in published)
        assert any(m["case_id"] for m in published) and any(m["rule"] == "funds_idle" for m in published)
        assert ledger.get(approval_alerts_id("PC-2021-003")).code == "PC-2021-003"

        monitor.close()
        restarted = Monitor(ledger, kafka_settings)  # nothing recorded or sent twice, approvals' records included
        assert restarted.run_once(date(2023, 5, 31)) == 0
        assert len(read_topic(kafka_settings, kafka.ALERTS)) == len(published)
        restarted.close()
    finally:
        runner.stop()
        follower.join()
        runner.close()
        ledger.close()
