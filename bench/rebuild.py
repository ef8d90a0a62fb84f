"""Rebuilding every read model from zero (`yaosu projections rebuild`, a process of its own) on a store
of a million events or more, beside the `eventsourcing` library's `ProjectionRunner` (one transaction
per event, keeping only a grants table: less work than ours) and the floor: reading the log alone."""

from __future__ import annotations

import tempfile
import time
from typing import Any

import orjson
import psycopg
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import Projection as LibraryProjection
from eventsourcing.projection import ProjectionRunner

from bench.common import Figures, pg_base, say, wired, yaosu
from domain.project import GRANT_EVENTS
from infra.settings import Settings
from projections.catalog import PROJECTIONS
from service.ledger import Ledger

PER_EVENT_EVENTS = 4000


class GrantsView(PostgresTrackingRecorder):
    """A materialised view in the library's style: each event in its own transaction."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from psycopg.sql import SQL, Identifier

        super().__init__(*args, **kwargs)
        self.sql_create_statements.append(SQL(
            "CREATE TABLE IF NOT EXISTS {}.baseline_grants (grant_id text PRIMARY KEY, code text, factor text, "
            "quantity numeric, granted_on date)").format(Identifier(self.datastore.schema)))

    def insert_grant(self, row: tuple[Any, ...], tracking: Tracking) -> None:
        from psycopg.sql import SQL, Identifier

        with self.datastore.transaction(commit=True) as curs:
            curs.execute(SQL("INSERT INTO {}.baseline_grants VALUES (%s, %s, %s, %s, %s)").format(
                Identifier(self.datastore.schema)), row)
            self._insert_tracking(curs, tracking)


class GrantsProjection(LibraryProjection[GrantsView]):
    name = "baseline"

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        grant = GRANT_EVENTS.get(type(domain_event))
        if grant is None:
            self.view.insert_tracking(tracking)
            return
        factor, quantity = grant
        e: Any = domain_event
        self.view.insert_grant((e.audit.message_id, e.audit.subject, factor,
                                getattr(e, quantity) if quantity else None, e.audit.business_date), tracking)


def rebuild(store: str, *names: str) -> tuple[float, float]:
    """Events/s of `yaosu projections rebuild` of every read model (or of those named), and the process's
    peak memory in MB (its own summary's: the kernel's rusage of a child counts the bench's own size at
    the spawn)."""
    with tempfile.TemporaryFile("w+") as output:
        process = yaosu("projections", "rebuild", *names, store=store, stdout=output)
        code = process.wait()
        output.seek(0)
        printed = output.read()
    if code != 0:
        raise SystemExit(f"yaosu projections rebuild failed:\n{printed}")
    summary = orjson.loads(printed.strip().splitlines()[-1])
    return summary["events"] / summary["seconds"], summary["peak_rss_mb"]


def per_event(ledger: Ledger, settings: Settings, schema: str) -> float:
    """Events/s of the library's runner over the first `PER_EVENT_EVENTS` events, from zero."""
    with psycopg.connect(pg_base(), autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {schema}.baseline_grants, {schema}.baseline_tracking")
    env = {**settings.persistence_env(), "POSTGRES_SCHEMA": schema}
    runner = ProjectionRunner(application_class=Ledger, projection_class=GrantsProjection, view_class=GrantsView,
                              env=env)
    target = ledger.notifications_after(PER_EVENT_EVENTS - 1, 1)[0].id
    started = time.perf_counter()
    runner.wait(target, timeout=3600)
    rate = PER_EVENT_EVENTS / (time.perf_counter() - started)
    runner.stop()
    return rate


def read_floor(ledger: Ledger) -> float:
    """Events/s of reading the whole log in batches of 10,000, decoding nothing."""
    started, after, read = time.perf_counter(), 0, 0
    while batch := ledger.notifications_after(after, 10_000):
        read += len(batch)
        after = batch[-1].id
    return read / (time.perf_counter() - started)


def measure(figures: Figures, store: str, small: str) -> None:
    """`store`: a million events or more; `small`: another, to show the memory does not grow with the store."""
    with wired(store) as wiring:
        ledger, settings = wiring.ledger, wiring.settings
        say(f"rebuild: {ledger.head():,} events")
        for repetition in range(3):
            say(f"rebuild, repetition {repetition + 1} of 3")
            rate, rss = rebuild(store)
            figures.add("rebuild_events_per_s", rate, "events/s")
            figures.add("rss_rebuild_mb", rss, "MB")
            figures.add("rebuild_per_event_events_per_s", per_event(ledger, settings, settings.location.schema),
                        "events/s")
            figures.add("notification_read_floor_events_per_s", read_floor(ledger), "events/s")
        figures.add("store_events", ledger.head(), "events")
    with wired(small) as wiring:
        figures.add("small_store_events", wiring.ledger.head(), "events")
    figures.add("rss_rebuild_small_store_mb", rebuild(small)[1], "MB")
    each_read_model(figures, small)


def each_read_model(figures: Figures, store: str) -> None:
    """What each read model costs: its rebuild alone over the small store, in seconds (each also pays
    for reading and decoding the log, which a rebuild of all of them pays once)."""
    with wired(store) as wiring:
        events = wiring.ledger.head()
    for repetition in range(3):
        say(f"rebuild of each read model alone, repetition {repetition + 1} of 3")
        for projection in PROJECTIONS:
            rate, _ = rebuild(store, projection.name)
            figures.add(f"rebuild_alone_{projection.name}_s", events / rate, "s")
