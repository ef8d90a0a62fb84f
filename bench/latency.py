"""From a POST to its effect visible in `/v1/alerts` or `/v1/stages` (read with `min_position`), at 500
messages/s offered: on PostgreSQL with the read models followed by a separate `yaosu projections run`,
and on the embedded default (SQLite, the runner inside `yaosu serve`).

Open loop: batches of 10 are due every 20 ms whatever the answers; each sample is timed from when
its batch was due, so a server falling behind shows in the figures instead of slowing the load.
"""

from __future__ import annotations

import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.common import ADMIN, SUPERVISOR, Figures, drop_schema, percentile, pg_store, say, serving, stop, yaosu
from yaosu.demo import demo_messages

RATE, BATCH, SECONDS = 500, 10, 6


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
        with tempfile.TemporaryDirectory() as directory, \
                serving(f"sqlite:///{Path(directory) / 'events.db'}") as (url, _):
            latencies = offer(url, messages)
        figures.add("e2e_embedded_p50_ms", percentile(latencies, 0.5), "ms")
        figures.add("e2e_embedded_p99_ms", percentile(latencies, 0.99), "ms")
