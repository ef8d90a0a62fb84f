"""`yaosu monitor`: raises, escalates and clears sedimentation alerts (要素沉淀督办), day by day.

It follows `yaosu.events.v1` (something happened: look again today) and a daily clock. For each
day not yet evaluated it asks the supervision rules (`domain.supervision`, on the sedimentation
read model's facts) for that day's alerts, compares them with what supervision was last told,
and records each change as an event, in the same transaction as the day it closes. Then it
publishes the recorded changes to `yaosu.alerts.v1`: on start it reads the last message of each
partition of that topic (its `position` header) and sends only what comes after, so each change
is published once, whatever the restarts.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import date, timedelta
from typing import Any, Callable

from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic
from kafka import KafkaConsumer, TopicPartition
from kafka.partitioner.default import murmur2

from domain.alerts import (
    CLOCK_ID,
    SedimentationAlerts,
    SupervisionClock,
    about_approval,
    alert_changes,
    alerts_id,
    approval_alerts_id,
    told_state,
)
from domain.reference import district_of
from domain.supervision import Alert, ApprovalFact, ProjectFacts, evaluate, evaluate_approval
from infra import kafka, metrics, presenter
from infra.clock import city_today
from infra.resilience import keep_running
from infra.settings import Settings
from infra.turns import Turns
from projections import sedimentation
from projections.db import NotBuilt
from projections.read import ReadModelBehind, ReadModels
from service.ledger import Ledger

log = logging.getLogger("yaosu.monitor")
CHANGED = get_topic(SedimentationAlerts.Changed)
OWN_TOPICS = frozenset(get_topic(cls) for cls in (SedimentationAlerts.Opened, SedimentationAlerts.Changed,
                                                  SupervisionClock.Started, SupervisionClock.DayEvaluated))
MAX_CATCH_UP_DAYS = 800
#: The label of the monitor's own metrics.
MONITOR = "yaosu-monitor"


class Interrupted(Exception):
    """Stopped in the middle of an evaluation: nothing of it is recorded."""


class Monitor:
    def __init__(self, ledger: Ledger, settings: Settings, *, today: Callable[[], date] = city_today,
                 read_model_timeout: float = 120) -> None:
        self.ledger, self.settings, self.today = ledger, settings, today
        self.reads = ReadModels(settings, connections=1)
        self.read_model_timeout = read_model_timeout
        self.stopping = threading.Event()
        self._producer: Any = None
        self._published: dict[int, int] | None = None
        self._recorded: dict[tuple[str, str], str] | None = None
        self._facts: tuple[list[ProjectFacts], list[ApprovalFact]] | None = None
        # One monitor at a time: another started beside it waits, and takes over if it dies.
        self._turns = Turns(self.reads.conninfo, "yaosu-monitor")
        self._facts_at = 0  # store position the facts were read at

    def stop(self) -> None:
        self.stopping.set()

    def my_turn(self) -> bool:
        if self.reads.dialect != "postgres":
            return True
        if not self._turns.still_held():
            self._producer = self._published = self._recorded = self._facts = None  # start afresh
        return self._turns.take(f"{self.reads.schema}:monitor")

    def close(self) -> None:
        self._turns.drop()
        if self._producer is not None:
            self._producer.flush()
            self._producer.close()
        self.reads.close()

    # --- evaluating ----------------------------------------------------------------------------

    def recorded(self) -> dict[tuple[str, str], str]:
        """(subject: a project or an approval, alert key) → state (`told_state`), as recorded in the store."""
        if self._recorded is None:
            levels: dict[tuple[str, str], str] = {}
            after = 0
            while batch := self.ledger.notifications_after(after, 5000, [CHANGED]):
                for n in batch:
                    e: Any = self.ledger.decode(n)
                    if e.level is None:
                        levels.pop((e.audit.subject, e.key), None)
                    else:
                        levels[(e.audit.subject, e.key)] = told_state(e.level, e.reclaimable)
                after = batch[-1].id
            self._recorded = levels
        return self._recorded

    def _read_facts(self, head: int) -> tuple[list[ProjectFacts], list[ApprovalFact]]:
        """The facts of the projects and the approvals as of `head` at least: never judge on stale facts."""
        deadline = time.monotonic() + self.read_model_timeout
        while True:
            try:
                with self.reads.snapshot(sedimentation.Sedimentation, min_position=head, wait_seconds=1) as view:
                    tables = view.tables(sedimentation.Sedimentation)
                    return sedimentation.load_facts(view.db, tables), sedimentation.load_approvals(view.db, tables)
            except (ReadModelBehind, NotBuilt) as behind:
                if self.stopping.is_set():
                    raise Interrupted("stopped while waiting for the read model") from None
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{behind}: is `yaosu serve` or `yaosu projections run` running?") from None
                self.stopping.wait(0.05)  # not built yet: nothing to wait on but time

    def _only_mine_since(self, position: int) -> bool:
        """Has nothing but this monitor's own records been stored after `position`?"""
        later = self.ledger.notifications_after(position, 1000)
        return len(later) < 1000 and all(n.topic in OWN_TOPICS for n in later)

    def facts(self) -> tuple[list[ProjectFacts], list[ApprovalFact]]:
        """The read model's facts (projects, approvals), read again only when something other than alerts was stored."""
        if self._facts is None or not self._only_mine_since(self._facts_at):
            head = self.ledger.head()
            self._facts = self._read_facts(head)
            self._facts_at = head
        return self._facts

    def run_once(self, today: date | None = None) -> int:
        """Evaluate every day through `today` not yet evaluated (and today again); publish. Changes made."""
        today = today or self.today()
        for attempt in range(5):
            try:
                made = self._evaluate_through(today)
                break
            except IntegrityError:  # another monitor recorded first: start again from the store
                self._recorded = None
                if attempt == 4:
                    raise
        self.publish()
        clock: SupervisionClock | None = self.ledger.get(CLOCK_ID)
        if clock is not None and clock.evaluated_through is not None:
            metrics.MONITOR_BEHIND.labels(MONITOR).set(max((today - clock.evaluated_through).days, 0) * 86_400)
        return made

    def _evaluate_through(self, today: date) -> int:
        clock: SupervisionClock = self.ledger.get(CLOCK_ID) or SupervisionClock(first_day=today)
        last = clock.evaluated_through
        first = today if last is None else min(last + timedelta(days=1), today)
        if (today - first).days > MAX_CATCH_UP_DAYS:
            first = today - timedelta(days=MAX_CATCH_UP_DAYS)
        made = 0
        day = first
        while day <= today and not self.stopping.is_set():
            made += self._evaluate(day, clock if (last is None or day > last) else None)
            metrics.MONITOR_DAYS.labels(MONITOR).inc()
            day += timedelta(days=1)
        return made

    def _evaluate(self, day: date, clock: SupervisionClock | None) -> int:
        projects, approvals = self.facts()
        thresholds = self.settings.thresholds
        found = [*(a for f in projects for a in evaluate(f, day, thresholds)),
                 *(a for approval in approvals for a in evaluate_approval(approval, day, thresholds))]
        now = {(str(a.subject), a.key): a for a in found}
        recorded = self.recorded()
        changes = alert_changes(recorded, now)
        touched: dict[tuple[bool, str], SedimentationAlerts] = {}
        for change in changes:
            mine = (about_approval(change.key), change.subject)  # a project and an approval may share a name
            aggregate = touched.get(mine) or self._alerts_of(change.subject, change.key, change.alert)
            touched[mine] = aggregate
            aggregate.record(change, day)
        if clock is not None:
            clock.evaluated(day)
        if not touched and clock is None:
            return 0
        self.ledger.save(*touched.values(), *([clock] if clock is not None else []))
        for change in changes:
            if change.alert is None:
                recorded.pop((change.subject, change.key), None)
            else:
                recorded[(change.subject, change.key)] = told_state(change.alert.level, change.alert.reclaimable)
        for change in changes:
            metrics.ALERT_CHANGES.labels(change.change).inc()
        if changes:
            log.info("%s: %d alert change(s)", day, len(changes))
        return len(changes)

    def _alerts_of(self, subject: str, key: str, alert: Alert | None) -> SedimentationAlerts:
        """The record of a project's alerts, or of an approval's (raised before it is ever cleared)."""
        if about_approval(key):
            approval: SedimentationAlerts | None = self.ledger.get(approval_alerts_id(subject))
            if approval is not None:
                return approval
            assert alert is not None, f"cleared alert {key} of approval {subject} never recorded"
            return SedimentationAlerts.of_approval(subject, alert.district)
        found: SedimentationAlerts | None = self.ledger.get(alerts_id(subject))
        return found or SedimentationAlerts(code=subject, district=alert.district if alert else district_of(subject))

    # --- publishing ----------------------------------------------------------------------------

    def _partitions(self) -> list[int]:
        partitions = self._producer.partitions_for(kafka.topic(self.settings, kafka.ALERTS))
        return sorted(partitions)

    def _tails(self, partitions: list[int]) -> dict[int, int]:
        """The store position of the last change already on each partition of the alerts topic."""
        reader = KafkaConsumer(bootstrap_servers=kafka.bootstrap(self.settings), enable_auto_commit=False)
        try:
            tps = [TopicPartition(kafka.topic(self.settings, kafka.ALERTS), p) for p in partitions]
            reader.assign(tps)
            ends = reader.end_offsets(tps)
            tails = {p: 0 for p in partitions}
            for tp in tps:
                if ends[tp] == 0:
                    continue
                reader.seek(tp, ends[tp] - 1)
                deadline = time.monotonic() + 30
                while not (records := reader.poll(timeout_ms=500).get(tp, [])):
                    if time.monotonic() > deadline:  # guessing 0 would publish the partition again
                        raise TimeoutError(f"could not read the last record of {tp.topic}:{tp.partition}")
                tails[tp.partition] = int(dict(records[-1].headers)["position"])
            return tails
        finally:
            reader.close()

    def publish(self) -> int:
        if self._producer is None:
            kafka.ensure_topics(self.settings, kafka.ALERTS)
            self._producer = kafka.producer(self.settings)
        partitions = self._partitions()
        if self._published is None:
            self._published = self._tails(partitions)
        after = min(self._published.values(), default=0)
        futures = []
        while batch := self.ledger.notifications_after(after, 5000, [CHANGED]):
            for n in batch:
                e: Any = self.ledger.decode(n)
                district = self.ledger.district_of(e)
                key = district.encode()  # as on every topic: by district, named in the value (v1.2)
                partition = partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]  # Kafka's own choice
                if n.id <= self._published.get(partition, 0):
                    continue
                value = sedimentation.alert_json(e.project_code, e.rule, e.ref, e.level, e.since, e.said,
                                                 department=e.department, leader=e.leader, change=e.change,
                                                 as_of=e.audit.business_date, position=n.id, district=district,
                                                 grant_id=e.grant_id, factor=e.factor, reclaimable=e.reclaimable,
                                                 case_id=e.case_id, subject=e.audit.subject)
                futures.append((e.change, self._producer.send(kafka.topic(self.settings, kafka.ALERTS), key=key,
                                                   value=presenter.dumps(value),
                                                   partition=partition,
                                                   headers=[("position", str(n.id).encode())])))
                self._published[partition] = n.id
            after = batch[-1].id
        self._producer.flush()
        for change, future in futures:
            future.get(timeout=30)
            metrics.ALERTS_PUBLISHED.labels(change).inc()
        return len(futures)

    # --- following -----------------------------------------------------------------------------

    def run(self, group: str = "yaosu-monitor") -> None:
        """Follow the events topic and the clock until stopped."""
        events: list[Any] = []
        last_run = [0.0]

        def follow() -> None:
            if not self.my_turn():
                self.stopping.wait(2)  # standby
                return
            if not events:
                kafka.ensure_topics(self.settings, kafka.EVENTS, kafka.ALERTS)
                events.append(kafka.consumer(self.settings, group))
                events[0].subscribe([kafka.topic(self.settings, kafka.EVENTS)])
            polled = events[0].poll(timeout_ms=1000, max_records=5000)
            if polled or time.monotonic() - last_run[0] > 60:
                self.run_once()
                last_run[0] = time.monotonic()
                if polled:
                    events[0].commit()

        def recover() -> None:
            if events:
                events.pop().close(autocommit=False)
            if self._producer is not None:
                self._producer.close(timeout=1)
            self._producer = self._published = None
            self._recorded = self._facts = None

        try:
            keep_running(follow, self.stopping, log, recover)
        except Interrupted:
            pass
        finally:
            if events:
                events.pop().close(autocommit=False)
