"""Benchmark: rebuilding every read model from zero, beside the library's per-event projection.

    make services-up && set -a && . var/services.env && set +a
    .venv/bin/python bench/rebuild.py [--events 1000000] [--baseline-events 30000]

Fills a PostgreSQL schema (`bench` by default, kept between runs) with demo years through the
message pipeline until it holds `--events` events, then measures in the same run:

1. `yaosu projections rebuild` of all five read models (batches of 10,000 events per transaction);
2. the `eventsourcing` library's `ProjectionRunner` with one transaction per event, maintaining
   only a grants table (less work than ours), over the first `--baseline-events` events.

Prints events/s for both and their ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
from eventsourcing.dispatch import singledispatchmethod  # noqa: E402
from eventsourcing.persistence import Tracking  # noqa: E402
from eventsourcing.postgres import PostgresTrackingRecorder  # noqa: E402
from eventsourcing.projection import Projection as LibraryProjection  # noqa: E402
from eventsourcing.projection import ProjectionRunner  # noqa: E402

from domain.project import GRANT_EVENTS  # noqa: E402
from infra.bootstrap import build_ledger  # noqa: E402
from infra.ledger import Ledger  # noqa: E402
from infra.settings import Settings  # noqa: E402
from projections.catalog import BY_NAME  # noqa: E402
from projections.runner import Runner  # noqa: E402
from yaosu.demo import demo_messages  # noqa: E402
from yaosu.loading import Progress, submit_all  # noqa: E402


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


def fill(ledger: Ledger, events: int) -> None:
    year = 2000
    while (head := ledger.head()) < events:
        messages = demo_messages(year, projects=3000, seed=year)
        print(f"store holds {head:,} events; loading demo year {year} ({len(messages):,} messages)", file=sys.stderr)
        submit_all(ledger, messages, total=len(messages), label=f"fill {year}")
        year += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--baseline-events", type=int, default=30_000)
    parser.add_argument("--schema", default="bench")
    args = parser.parse_args()
    base = os.environ.get("YAOSU_STORE", "")
    if not base.startswith("postgresql"):
        print("set YAOSU_STORE to a PostgreSQL URL (make services-up; . var/services.env)", file=sys.stderr)
        return 2
    settings = Settings(store=f"{base.split('?')[0]}?schema={args.schema}")
    ledger = build_ledger(settings)
    fill(ledger, args.events)
    head = ledger.head()

    runner = Runner(ledger, settings, prefix="bench")
    progress = Progress(head, "rebuild (5 read models, batched)", unit="event")
    started = time.perf_counter()
    runner.rebuild(list(BY_NAME), progress.advance)
    ours = head / (time.perf_counter() - started)
    progress.finish()
    runner.close()

    with psycopg.connect(base.split("?")[0], autocommit=True) as conn:  # the baseline starts from zero each run
        conn.execute(f"DROP TABLE IF EXISTS {args.schema}.baseline_grants, {args.schema}.baseline_tracking")
    env = {**settings.persistence_env(), "POSTGRES_SCHEMA": args.schema}
    view_runner = ProjectionRunner(application_class=Ledger, projection_class=GrantsProjection,
                                   view_class=GrantsView, env=env)
    target = ledger.notifications_after(args.baseline_events - 1, 1)[0].id
    started = time.perf_counter()
    view_runner.wait(target, timeout=3600)
    baseline = args.baseline_events / (time.perf_counter() - started)
    view_runner.stop()

    print(f"store: {head:,} events in PostgreSQL schema {args.schema!r}")
    print(f"yaosu rebuild, all 5 read models, 10,000 events per transaction: {ours:,.0f} events/s")
    print(f"library ProjectionRunner, 1 grants table, 1 transaction per event "
          f"(first {args.baseline_events:,} events): {baseline:,.0f} events/s")
    print(f"ratio: {ours / baseline:,.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
