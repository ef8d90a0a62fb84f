"""Appending over HTTP (`POST /v1/messages`, batches of 500, from a client process of its own) on
PostgreSQL, beside the naive path (one transaction per message) and the floor (`COPY` of the same
rows into a table shaped like the events table)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
import psycopg

from bench.common import ADMIN, PYTHON, ROOT, Figures, drop_schema, environment, pg_base, pg_store, say, serving, wired
from infra.tokens import Principal
from yaosu.demo import demo_messages

BATCH = 500
NAIVE_MESSAGES = 1000


def post_all(url: str, path: Path) -> None:
    """The client process: every line of `path` posted in order, `BATCH` at a time; prints its seconds."""
    messages = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    bodies = [orjson.dumps(messages[i:i + BATCH]) for i in range(0, len(messages), BATCH)]
    headers = {**ADMIN, "Content-Type": "application/json"}
    with httpx.Client(base_url=url, timeout=300) as http:
        started = time.perf_counter()
        for body in bodies:
            answer = http.post("/v1/messages", content=body, headers=headers)
            answer.raise_for_status()
        print(time.perf_counter() - started)


def head(schema: str) -> int:
    with psycopg.connect(pg_base(), autocommit=True) as conn:
        return int(conn.execute(f"SELECT COALESCE(MAX(notification_id), 0) FROM {schema}.yaosu_events").fetchone()[0])


def copy_floor(schema: str) -> float:
    """Rows/s of `COPY` of the schema's events into a fresh table of the same shape, one transaction."""
    with psycopg.connect(pg_base(), autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {schema}.copy_floor")
        conn.execute(f"CREATE TABLE {schema}.copy_floor (LIKE {schema}.yaosu_events INCLUDING INDEXES)")
        columns = "notification_id, originator_id, originator_version, topic, state"
        with conn.cursor().copy(f"COPY (SELECT {columns} FROM {schema}.yaosu_events) TO STDOUT (FORMAT BINARY)") as out:
            blocks = [bytes(block) for block in out]
        rows = head(schema)
        started = time.perf_counter()
        with conn.transaction(), conn.cursor().copy(f"COPY {schema}.copy_floor ({columns}) FROM STDIN "
                                                    "(FORMAT BINARY)") as into:
            for block in blocks:
                into.write(block)
        return rows / (time.perf_counter() - started)


def measure(figures: Figures) -> None:
    messages = demo_messages(2022, projects=1000, seed=2022)
    with tempfile.NamedTemporaryFile("wb", suffix=".jsonl") as file:
        file.write(b"\n".join(orjson.dumps(m) for m in messages))
        file.flush()
        for repetition in range(3):
            say(f"append, repetition {repetition + 1} of 3: {len(messages):,} messages in batches of {BATCH}")
            schema = f"bench_append_{repetition}"
            drop_schema(schema)
            with serving(pg_store(schema), "--no-projections") as (url, _):
                client = subprocess.run([PYTHON, "-m", "bench.append", url, file.name], env=environment(""),
                                        cwd=ROOT, capture_output=True, text=True, check=True)
            figures.add("append_events_per_s", head(schema) / float(client.stdout.strip()), "events/s")
            figures.add("copy_floor_rows_per_s", copy_floor(schema), "rows/s")
            drop_schema(schema)
            naive = f"bench_append_naive_{repetition}"
            drop_schema(naive)
            with wired(pg_store(naive)) as wiring:
                ledger = wiring.ledger
                started = time.perf_counter()
                for message in messages[:NAIVE_MESSAGES]:
                    ledger.submit([message], principal=Principal("bench", "admin"), channel="http")
                figures.add("append_naive_events_per_s", ledger.head() / (time.perf_counter() - started), "events/s")
            drop_schema(naive)


if __name__ == "__main__":
    post_all(sys.argv[1], Path(sys.argv[2]))
