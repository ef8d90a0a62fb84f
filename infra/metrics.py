"""Metrics (监控指标) through `prometheus_client`: what each process counts, and what the store says.

Each process counts what it does itself in `PROCESS` (HTTP requests, messages decided, batches,
records relayed, alert changes recorded and published, how far behind the relay and the monitor are,
notifications delivered):
`yaosu serve` shows it on `/metrics`, the other long-running commands on `--metrics-port`. What the
store says (its head, each read model's lag, positions, consumer lag, parked messages) is read when
`/metrics` is asked, by `StoreCollector`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

PROCESS = CollectorRegistry()

HTTP_REQUESTS = Counter("yaosu_http_requests", "HTTP requests answered, by route template and status",
                        ["route", "method", "status"], registry=PROCESS)
HTTP_DURATION = Histogram("yaosu_http_request_duration_seconds", "Time to answer an HTTP request, by route template",
                          ["route", "method"], registry=PROCESS,
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
MESSAGES = Counter("yaosu_messages", "Messages decided by the pipeline: by channel, outcome and rejection code",
                   ["channel", "status", "code"], registry=PROCESS)
BATCH_MESSAGES = Histogram("yaosu_pipeline_batch_messages", "Messages per batch of the pipeline (one transaction)",
                           ["channel"], registry=PROCESS, buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000))
BATCH_DURATION = Histogram("yaosu_pipeline_batch_duration_seconds", "Time to decide and store one batch",
                           ["channel"], registry=PROCESS,
                           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))

# The relay (`yaosu relay`) and the monitor (`yaosu monitor`), on their `--metrics-port`: labelled, so
# that a process that does not relay or monitor shows none of them.
RELAYED = Counter("yaosu_relay_records", "Records the relay sent to Kafka and the broker acknowledged, by topic",
                  ["topic"], registry=PROCESS)
RELAY_POSITION = Gauge("yaosu_relay_position", "Store position the relay has sent up to", ["name"], registry=PROCESS)
RELAY_BEHIND = Gauge("yaosu_relay_behind_events", "Events stored after what the relay has sent, at its last step",
                     ["name"], registry=PROCESS)
ALERT_CHANGES = Counter("yaosu_monitor_alert_changes", "Alert changes the monitor recorded in the store, by change",
                        ["change"], registry=PROCESS)
ALERTS_PUBLISHED = Counter("yaosu_monitor_alert_changes_published",
                           "Alert changes the monitor published to the alerts topic, by change", ["change"],
                           registry=PROCESS)
# Named in base units, as Prometheus wants them (`promtool check metrics`): a day evaluated is one evaluation,
# a day behind is 86,400 seconds.
MONITOR_DAYS = Counter("yaosu_monitor_evaluations", "Business days the monitor evaluated", ["monitor"],
                       registry=PROCESS)
MONITOR_BEHIND = Gauge("yaosu_monitor_behind_seconds", "Time from the end of the last day the monitor evaluated to "
                       "today's start, in whole days", ["monitor"], registry=PROCESS)
# `yaosu notify`, on its `--metrics-port`: deliveries by target.
NOTIFY_DELIVERED = Counter("yaosu_notify_delivered", "Deliveries a target accepted, by target", ["target"],
                           registry=PROCESS)
NOTIFY_FAILED = Counter("yaosu_notify_failed_attempts", "Delivery attempts that failed (error, refusal or timeout) "
                        "and will be tried again or given up, by target", ["target"], registry=PROCESS)
NOTIFY_UNDELIVERABLE = Counter("yaosu_notify_undeliverable", "Deliveries given up after their attempts or age, "
                               "by target", ["target"], registry=PROCESS)
NOTIFY_BACKLOG = Gauge("yaosu_notify_backlog", "Deliveries recorded and not yet delivered (or given up), by target",
                       ["target"], registry=PROCESS)


def count_batch(channel: str, statuses: Iterable[tuple[str, str | None]], seconds: float) -> None:
    n = 0
    for status, code in statuses:
        MESSAGES.labels(channel, status, code or "").inc()
        n += 1
    BATCH_MESSAGES.labels(channel).observe(n)
    BATCH_DURATION.labels(channel).observe(seconds)


def serve_process_metrics(port: int) -> None:
    """`--metrics-port`: this process's metrics on http://127.0.0.1:<port>/metrics."""
    start_http_server(port, addr="127.0.0.1", registry=PROCESS)


class StoreCollector(Collector):
    """Gauges read from the store at each scrape; `read` gives (name, help, labels, [(values, number)])."""

    def __init__(self, read: Callable[[], Iterable[tuple[str, str, list[str], list[tuple[list[str], float]]]]]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        for name, documentation, labels, samples in self.read():
            family = GaugeMetricFamily(name, documentation, labels=labels)
            for values, number in samples:
                family.add_metric(values, number)
            yield family

    def describe(self) -> list[Any]:
        return []  # read at scrape time only, never when the collector is registered
