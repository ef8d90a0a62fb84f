"""From a POST to its effect visible in `/v1/alerts` or `/v1/stages` (read with `min_position`), at 500
messages/s offered: on PostgreSQL with the read models followed by a separate `yaosu projections run`,
and on the embedded default (SQLite, `yaosu serve` and the runner it starts beside it); beside each, the store's own floor:
a single-row commit, as durable as the service's.

Open loop: batches of 10 are due every 20 ms whatever the answers; each sample is timed from when
its batch was due, so a server falling behind shows in the figures instead of slowing the load.
"""

from __future__ import annotations

import sqlite3
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg

from bench.common import (
    ADMIN,
    SUPERVISOR,
    Figures,
    drop_schema,
    percentile,
    pg_base,
    pg_store,
    say,
    serving,
    stop,
    yaosu,
)
from yaosu.demo import demo_messages

RATE, BATCH, SECONDS = 500, 10, 6
#: Single-row commits timed on each store, per repetition.
COMMITS = 2000


def offer(url: str, messages: list[dict]) -> list[float]:
    """Latencies in ms of every batch: due → posted → visible in a read model."""
    interval = BATCH / RATE
    batches = [messages[i:i + BATCH] for i in range(0, min(len(messages), RATE * SECONDS), BATCH)]
    latencies: list[float] = []
    lock = threading.Lock()
    with httpx.Client(base_url=url, timeout=30, limits=httpx.Limits(max_connections=64)) as http, \
            ThreadPoolExecutor(max_workers=48) as pool:
        def send(n: int, due: float) -> None:
            answer = http.post("/v1/messages", json=batches[n], headers=ADMIN)
            answer.raise_for_status()
            position = max(r.get("position") or 0 for r in answer.json()["results"])
            path = "/v1/alerts" if n % 2 else "/v1/stages"
            seen = http.get(path, params={"min_position": position, "wait_ms": 5000}, headers=SUPERVISOR)
            seen.raise_for_status()
            with lock:
                latencies.append((time.perf_counter() - due) * 1000)

        start = time.perf_counter() + 0.1
        futures = []
        for n in range(len(batches)):
            due = start + n * interval
            time.sleep(max(0.0, due - time.perf_counter()))
            futures.append(pool.submit(send, n, due))
        for future in futures:
            future.result()
    return latencies


def pg_commits_ms(schema: str) -> list[float]:
    """Each of `COMMITS` transactions of one row into a tiny table, in ms, on the PostgreSQL `make bench`
    runs (fsync on, `synchronous_commit` as the service leaves it: on)."""
    drop_schema(schema)
    times = []
    with psycopg.connect(pg_base(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.commits (n INTEGER PRIMARY KEY, at TEXT)")
        for n in range(COMMITS):
            started = time.perf_counter()
            with conn.transaction():
                conn.execute(f"INSERT INTO {schema}.commits VALUES (%s, %s)", [n, "x"])
            times.append((time.perf_counter() - started) * 1000)
    drop_schema(schema)
    return times


def sqlite_commits_ms(path: Path) -> list[float]:
    """Each of `COMMITS` transactions of one row in ms, on SQLite as Yaosu's embedded store writes: the
    journal in WAL mode and `synchronous` left at its default (as `eventsourcing.sqlite` and
    `projections.db` open it), each write `BEGIN IMMEDIATE` (`infra.recorder`), in a file beside where the
    embedded end-to-end figure keeps its store."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE commits (n INTEGER PRIMARY KEY, at TEXT)")
        times = []
        for n in range(COMMITS):
            started = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO commits VALUES (?, ?)", [n, "x"])
            conn.execute("COMMIT")
            times.append((time.perf_counter() - started) * 1000)
        return times
    finally:
        conn.close()


def measure(figures: Figures) -> None:
    messages = demo_messages(2024, projects=600, seed=2024)
    for repetition in range(3):
        say(f"end to end, repetition {repetition + 1} of 3: {RATE} messages/s for {SECONDS}s")
        schema = f"bench_latency_{repetition}"
        drop_schema(schema)
        runner = yaosu("projections", "run", store=pg_store(schema))
        try:
            with serving(pg_store(schema), "--no-projections") as (url, _):
                latencies = offer(url, messages)
        finally:
            stop(runner)
            drop_schema(schema)
        figures.add("e2e_p50_ms", percentile(latencies, 0.5), "ms")
        figures.add("e2e_p99_ms", percentile(latencies, 0.99), "ms")
        commits = pg_commits_ms(f"bench_commit_{repetition}")
        figures.add("commit_p50_ms", percentile(commits, 0.5), "ms")
        figures.add("commit_p99_ms", percentile(commits, 0.99), "ms")
        with tempfile.TemporaryDirectory() as directory:
            with serving(f"sqlite:///{Path(directory) / 'events.db'}") as (url, _):
                latencies = offer(url, messages)
            commits = sqlite_commits_ms(Path(directory) / "commits.db")
        figures.add("e2e_embedded_p50_ms", percentile(latencies, 0.5), "ms")
        figures.add("e2e_embedded_p99_ms", percentile(latencies, 0.99), "ms")
        figures.add("commit_embedded_p50_ms", percentile(commits, 0.5), "ms")
        figures.add("commit_embedded_p99_ms", percentile(commits, 0.99), "ms")
