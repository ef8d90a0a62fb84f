"""The monitor on the real broker: day by day through the demo year, every alert change once."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from typing import Any

import orjson

from consumers.monitor import Monitor
from domain.supervision import Thresholds
from infra import kafka
from infra.settings import Settings
from projections import sedimentation
from projections.runner import Runner
from service.bootstrap import build_ledger
from tests.conftest import submit
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
                after = {(a.project_code, a.key): a.level for a in sedimentation.alerts(
                    view.db, view.tables(sedimentation.Sedimentation), day, Thresholds())}
            expected += changes_between(before, after, day)
            before = after
            day += timedelta(days=1)
        published = [orjson.loads(r.value) for r in read_topic(kafka_settings, kafka.ALERTS)]
        got = sorted((m["project_code"], m["rule"] + (f":{m['ref']}" if m["ref"] else ""), m["change"], m["level"],
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
