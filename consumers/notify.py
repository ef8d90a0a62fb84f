"""`yaosu notify`: alert changes (`yaosu.alerts.v1`) and supervision (督办) events (`yaosu.events.v1`)
delivered to the people responsible — WeCom and DingTalk group robots, and plain JSON webhooks — as the
targets file (`YAOSU_NOTIFY_TARGETS`) routes them by department, district and level.

Once per change and target, by construction: for each batch read from Kafka, the offsets read up to and
a row per delivery to make (the change's store position and the target: unique) are recorded in the
store in one transaction (`projections.outbox`); a change read again (after a crash, or relayed twice)
finds its rows there and adds none. The sender then delivers each target's pending rows in the order
recorded, marks each delivered in the store as soon as the target accepts it, and after a failure (an
error status, a refusal in the robot's answer, a timeout) tries again later, waits doubling, until the
attempts or the age the file allows are spent: then the row is undeliverable, with its reason, and the
target's next row goes. What remains: a crash between a target's answer and that mark resends that one
delivery after the restart, with the same `X-Yaosu-Delivery` header, by which a receiver drops it.

One notify process is active per store (PostgreSQL: an advisory lock; another started beside it waits
and takes over when it dies).
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Callable

import orjson
from kafka import KafkaConsumer, TopicPartition

from consumers import notices
from consumers.notices import SUPERVISION, Notice
from consumers.targets import Target, Targets
from domain.project import is_leader
from domain.reference import is_project_code
from infra import kafka, metrics
from infra.resilience import keep_running
from infra.settings import Settings
from infra.turns import Turns
from projections import outbox
from projections.db import Db
from service.ledger import Ledger

log = logging.getLogger("yaosu.notify")
#: Deliveries a target is sent in one go before the consumer reads Kafka again.
SEND_BATCH = 50


class Notifier:
    def __init__(self, ledger: Ledger, settings: Settings, targets: Targets, *, from_beginning: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        self.ledger, self.settings, self.targets = ledger, settings, targets
        self.from_beginning, self.clock = from_beginning, clock
        self.db = Db(settings)
        outbox.create(self.db)
        self.stopping = threading.Event()
        self._reader: KafkaConsumer | None = None
        self._turns = Turns(self.db.conninfo(), "yaosu-notify") if self.db.dialect == "postgres" else None
        self._senders = ThreadPoolExecutor(max(len(targets.targets), 1), thread_name_prefix="notify-send")
        self._counted_at = 0.0

    def stop(self) -> None:
        self.stopping.set()

    def my_turn(self) -> bool:
        if self._turns is None:
            return True
        if not self._turns.still_held():
            self._close_reader()
        return self._turns.take(f"{self.db.schema}:notify")

    def close(self) -> None:
        self._close_reader()
        self._senders.shutdown(wait=True)
        if self._turns is not None:
            self._turns.drop()
        self.db.close()

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close(autocommit=False)
            self._reader = None

    # --- reading: Kafka → the outbox --------------------------------------------------------------

    def _topics(self) -> tuple[str, str]:
        return kafka.topic(self.settings, kafka.ALERTS), kafka.topic(self.settings, kafka.EVENTS)

    def _open_reader(self) -> KafkaConsumer:
        """Every partition of both topics, from the offsets the store holds (no consumer group: one
        notify process is active, and the store, not Kafka, knows where it is)."""
        kafka.ensure_topics(self.settings, kafka.ALERTS, kafka.EVENTS)
        reader = KafkaConsumer(bootstrap_servers=kafka.bootstrap(self.settings), enable_auto_commit=False,
                               group_id=None, auto_offset_reset="earliest")
        tps = [TopicPartition(name, p) for name in self._topics() for p in sorted(reader.partitions_for_topic(name) or ())]
        if len(tps) < 2:
            reader.close()
            raise TimeoutError("the alerts and events topics have no partitions yet")
        reader.assign(tps)
        recorded = outbox.offsets(self.db)
        new = [tp for tp in tps if kafka.tracking_name(tp.topic, tp.partition) not in recorded]
        for tp in tps:
            if tp not in new:
                reader.seek(tp, recorded[kafka.tracking_name(tp.topic, tp.partition)] + 1)
        if new and not self.from_beginning:
            # First start: from now on, not the whole history; where "now" is is recorded at once.
            ends = reader.end_offsets(new)
            outbox.record(self.db, {kafka.tracking_name(tp.topic, tp.partition): ends[tp] - 1 for tp in new}, [])
            for tp in new:
                reader.seek(tp, ends[tp])
        elif new:
            reader.seek_to_beginning(*new)
        return reader

    def read(self, timeout_ms: int = 500) -> int:
        """Read what Kafka has; record its deliveries with the offsets. Deliveries recorded."""
        if self._reader is None:
            self._reader = self._open_reader()
        polled = self._reader.poll(timeout_ms=timeout_ms, max_records=500)
        if not polled:
            return 0
        read_up_to: dict[str, int] = {}
        deliveries: list[outbox.Delivery] = []
        for tp, records in polled.items():
            read_up_to[kafka.tracking_name(tp.topic, tp.partition)] = records[-1].offset
            for record in records:
                notice = self.notice(tp.topic, record.value)
                if notice is not None:
                    deliveries += self.deliveries(notice)
        new = outbox.record(self.db, read_up_to, deliveries, self.clock())
        if new:
            log.info("%d deliveries recorded", new)
        return new

    def notice(self, topic: str, raw: bytes | None) -> Notice | None:
        """What a record tells, or None: not a supervision event, or not readable (logged, never fatal)."""
        try:
            value = orjson.loads(raw or b"")
            if not isinstance(value, dict) or "position" not in value:
                raise ValueError("not an object with a position")
            if topic == self._topics()[0]:
                return notices.alert_notice(value, self._project_name(value.get("project_code")))
            if value.get("type") not in SUPERVISION:
                return None
            project = self._project(value.get("project_code"))
            case = project.cases.get((value.get("data") or {}).get("case_id")) if project is not None else None
            return notices.supervision_notice(value, project.name if project else None, case, _leader(project))
        except (ValueError, TypeError, KeyError) as error:
            log.error("a record of %s cannot be told and is passed over: %s: %.300r", topic, error, raw)
            return None

    def _project(self, code: Any) -> Any:
        return self.ledger.project(code) if isinstance(code, str) and is_project_code(code) else None

    def _project_name(self, code: Any) -> str | None:
        project = self._project(code)
        return project.name if project is not None else None

    def deliveries(self, notice: Notice) -> list[outbox.Delivery]:
        """A delivery for each target that covers the change, its body rendered for the target's kind."""
        found = []
        for target in self.targets.targets:
            if not target.covers(notice.kind, notice.department, notice.district, notice.level):
                continue
            delivery_id = outbox.delivery_id(notice.change_id, target.name)
            found.append(outbox.Delivery(
                delivery_id=delivery_id, change_id=notice.change_id, target=target.name, kind=notice.kind,
                change=notice.change, project_code=notice.project_code, rule=notice.rule, level=notice.level,
                district=notice.district, department=notice.department, title=notices.title(notice),
                body=notices.body(target.kind, notice, self.settings.console_url, delivery_id),
                state="held" if target.digest is not None else "pending"))
        return found

    # --- sending: the outbox → targets ------------------------------------------------------------

    def make_digests(self) -> int:
        """Each digest target's digest of today once its time has come (and something is held for it)."""
        made = 0
        now = self.clock()
        for target in self.targets.targets:
            moment = target.digest_due(datetime.fromtimestamp(now, timezone.utc))
            if moment is None:
                continue
            day = moment.date().isoformat()
            made += outbox.digest(
                self.db, target.name, day, -int(day.replace("-", "")), moment.timestamp(),
                lambda delivery, titles, t=target, d=day: notices.digest_body(t.kind, d, titles,
                                                                              self.settings.console_url, delivery),
                now)
        return made

    def send_due(self) -> int:
        """Send each target's due deliveries in order, the targets side by side. Deliveries delivered."""
        self.make_digests()
        names = outbox.targets_pending(self.db)
        jobs = [self._senders.submit(self.send_target, name) for name in names]
        done = sum(job.result() for job in jobs)
        self._count_backlog()
        return done

    def send_target(self, name: str) -> int:
        target = self.targets.by_name(name)
        delivered = 0
        for row in outbox.next_of(self.db, name, SEND_BATCH):
            now = self.clock()
            if target is None:  # taken out of the file: its deliveries can go nowhere
                outbox.failed(self.db, row.sequence, "the target is no longer in the targets file", None)
                metrics.NOTIFY_UNDELIVERABLE.labels(name).inc()
                continue
            if row.next_attempt_at > now or self.stopping.is_set():
                break  # its turn has not come: the rows after it wait, so the target hears in order
            if target.quiet_hours is not None and target.quiet_hours.holds(datetime.fromtimestamp(now, timezone.utc)):
                break
            error = send(target, row, self.targets.retry.timeout_seconds, self.clock)
            if error is None:
                outbox.delivered(self.db, row.sequence, self.clock())
                metrics.NOTIFY_DELIVERED.labels(name).inc()
                delivered += 1
                continue
            metrics.NOTIFY_FAILED.labels(name).inc()
            attempts = row.attempts + 1
            if self.targets.retry.gives_up(attempts, self.clock() - row.recorded_at):
                log.error("%s to %s is undeliverable after %d attempt(s): %s", row.delivery_id, name, attempts, error)
                outbox.failed(self.db, row.sequence, error, None)
                metrics.NOTIFY_UNDELIVERABLE.labels(name).inc()
                continue
            wait = self.targets.retry.wait(attempts)
            log.warning("%s to %s failed (attempt %d): %s; again in %.1fs", row.delivery_id, name, attempts, error, wait)
            outbox.failed(self.db, row.sequence, error, self.clock() + wait)
            break
        return delivered

    def _count_backlog(self) -> None:
        if self.clock() - self._counted_at < 1:
            return
        self._counted_at = self.clock()
        backlog = {t.name: 0 for t in self.targets.targets}
        for (target, state), n in outbox.counts(self.db).items():
            if state == "pending":
                backlog[target] = n
        for target, n in backlog.items():
            metrics.NOTIFY_BACKLOG.labels(target).set(n)

    # --- following --------------------------------------------------------------------------------

    def step(self) -> None:
        if not self.my_turn():
            self.stopping.wait(2)  # standby
            return
        self.read(timeout_ms=100 if outbox.targets_pending(self.db) else 500)
        self.send_due()

    def run(self) -> None:
        """Read and send until stopped."""
        log.info("delivering to %s (one notify process is active per store)",
                 ", ".join(f"{t.name} ({t.kind})" for t in self.targets.targets))
        try:
            keep_running(self.step, self.stopping, log, self._close_reader)
        finally:
            self.close()


def _leader(project: Any) -> str | None:
    """The project's responsible leader (包抓领导): the person last assigned as such, if any."""
    if project is None:
        return None
    leaders = [g.detail.get("person") for g in project.grants.values()
               if g.factor == "talent" and is_leader(g.detail.get("role")) and g.reclaimed_on is None]
    return str(leaders[-1]) if leaders else None


def send(target: Target, row: outbox.Pending, timeout: float, clock: Callable[[], float] = time.time) -> str | None:
    """One attempt: None if the target accepted it, else why not."""
    url = target.url
    if target.kind == "dingtalk" and target.secret:
        url = notices.signed_url(url, target.secret, int(clock() * 1000))  # signed afresh: DingTalk allows an hour
    request = urllib.request.Request(url, data=row.body, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", notices.DELIVERY_HEADER: row.delivery_id,
        "User-Agent": "yaosu-notify"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - URLs checked at start
            content = answer.read(65536)
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code} {error.reason}"
    except (urllib.error.URLError, OSError) as error:  # refused, unreachable, timed out
        return f"{type(error).__name__}: {getattr(error, 'reason', error)}"
    if target.kind in ("wecom", "dingtalk"):
        # The robots answer 200 with {"errcode": …, "errmsg": …}: anything but errcode 0 is a refusal.
        try:
            said = orjson.loads(content)
        except orjson.JSONDecodeError:
            return f"not the robot's answer: {content[:200]!r}"
        if not isinstance(said, dict) or said.get("errcode") != 0:
            return f"refused: {str(said)[:300]}"
    return None
