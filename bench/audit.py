"""The audit trail over the store of a million events: `yaosu audit verify` recomputing the whole chain
(its own figure: events/s from the first read to the head), and `GET /v1/audit` at 32 clients
rotating over the searches of the reads (`reads.audit_searches`), at that size: printed, not judged
(the reads part judges the audit search beside its floor)."""

from __future__ import annotations

import re
import subprocess

from bench.common import PYTHON, ROOT, Figures, environment, say, serving, wired
from bench.reads import CLIENTS, SECONDS, THREADS, audit_searches, wrk

VERIFIED = re.compile(r"verified positions \d+-(\d+): head [0-9a-f]{64} \(([\d,]+) events, ([\d,]+) events/s")


def verify(store: str) -> float:
    """Events/s of `yaosu audit verify` of the whole store, as it reports it."""
    done = subprocess.run([PYTHON, "-m", "yaosu", "audit", "verify"], env=environment(store), cwd=ROOT,
                          capture_output=True, text=True)
    found = VERIFIED.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"yaosu audit verify failed:\n{done.stdout}\n{done.stderr[-2000:]}")
    return float(found.group(3).replace(",", ""))


def measure(figures: Figures, store: str) -> None:
    with wired(store) as wiring:
        runner = wiring.runner()
        say(f"audit: read models of {wiring.ledger.head():,} events caught up first")
        runner.run_until_caught_up(batch_size=10_000)
        runner.close()
    for repetition in range(3):
        say(f"audit verify, repetition {repetition + 1} of 3")
        figures.add("audit_verify_events_per_s", verify(store), "events/s")
    questions = audit_searches(3000)
    with serving(store, "--no-projections") as (url, _):
        for repetition in range(3):
            say(f"audit queries, repetition {repetition + 1} of 3 (wrk -t{THREADS} -c{CLIENTS} -d{SECONDS}s)")
            wrk(figures, "audit_query", url, questions)
