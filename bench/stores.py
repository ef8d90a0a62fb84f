"""The stores the benchmarks read: demo years in PostgreSQL schemas, filled once and kept between runs."""

from __future__ import annotations

import time

import psycopg

from bench.common import drop_schema, pg_base, pg_store, say, wired
from yaosu.demo import demo_messages
from yaosu.loading import submit_all

#: Raised when what a kept store holds changes meaning (the demo, the events): older ones are filled again.
EDITION = 2
#: Seconds this run spent filling stores (once per machine; `make bench` prints it apart).
filling_seconds = 0.0


def filled(name: str, *, projects: int, events: int = 0, read_models: bool = True) -> str:
    """A schema holding demo years of `projects` projects (from 2021 on, until `events` events at
    least), with its read models caught up; filled the first time, then kept."""
    global filling_seconds
    schema = f"bench_{name}_e{EDITION}"
    store = pg_store(schema)
    with psycopg.connect(pg_base(), autocommit=True) as conn:
        done = conn.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
                            "AND table_name = 'bench_filled'", [schema]).fetchone()
    if done:
        return store
    started = time.monotonic()
    drop_schema(schema)
    with wired(store) as wiring:
        year = 2021
        while year == 2021 or wiring.ledger.head() < events:
            messages = demo_messages(year, projects=projects, seed=year)
            say(f"filling {schema}: demo year {year}, {projects:,} projects, {len(messages):,} messages")
            submit_all(wiring.ledger, messages, total=len(messages), label=f"{schema} {year}")
            year += 1
        if read_models:
            runner = wiring.runner()
            runner.run_until_caught_up()
            runner.close()
    with psycopg.connect(pg_base(), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {schema}.bench_filled ()")
    filling_seconds += time.monotonic() - started
    return store
