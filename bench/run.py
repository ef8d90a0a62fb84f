"""`make bench`: every speed figure, each the median of 3 repetitions measured in the same run as what
it is compared with, on real PostgreSQL (fsync on) and Kafka from `make services-up`.

    make bench                                   # all, and the README's table rewritten from the output
    .venv/bin/python -m bench.run --only reads   # one part (append, ingest, rebuild, latency, reads, audit, console)

Prints the machine, then one line per figure (`<name> <value> <unit>`, the median, with the three
runs), the ratios, and each target of issue 11 met or missed. Stores the benchmarks read are filled
the first time and kept in their own schemas (`bench_*`); what is measured is made afresh each time.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Callable

import psycopg

from bench import append, audit, console, ingest, latency, reads, rebuild, stores
from bench.common import ROOT, Figures, checkpoint, pg_base, say
from bench.stores import filled
from tools.common import ensure_debian_package

PARTS = ("append", "ingest", "rebuild", "latency", "reads", "audit", "console")
README = ROOT / "README.md"
BEGIN, END = "<!-- make bench: begin -->", "<!-- make bench: end -->"

#: Issue 11's targets on this 2-core machine: (what, figures it needs, met?)
TARGETS: list[tuple[str, tuple[str, ...], Callable[[Callable[[str], float]], bool]]] = [
    ("append >= 10x naive", ("append_events_per_s", "append_naive_events_per_s"),
     lambda m: m("append_events_per_s") >= 10 * m("append_naive_events_per_s")),
    ("append >= 0.15x the COPY floor", ("append_events_per_s", "copy_floor_rows_per_s"),
     lambda m: m("append_events_per_s") >= 0.15 * m("copy_floor_rows_per_s")),
    ("ingest >= 10,000 events/s", ("ingest_events_per_s",), lambda m: m("ingest_events_per_s") >= 10_000),
    ("ingest >= 10x naive", ("ingest_events_per_s", "ingest_naive_events_per_s"),
     lambda m: m("ingest_events_per_s") >= 10 * m("ingest_naive_events_per_s")),
    ("rebuild >= 30,000 events/s", ("rebuild_events_per_s",), lambda m: m("rebuild_events_per_s") >= 30_000),
    ("rebuild >= 20x the per-event runner", ("rebuild_events_per_s", "rebuild_per_event_events_per_s"),
     lambda m: m("rebuild_events_per_s") >= 20 * m("rebuild_per_event_events_per_s")),
    ("rebuild >= 0.3x the read floor (aim)", ("rebuild_events_per_s", "notification_read_floor_events_per_s"),
     lambda m: m("rebuild_events_per_s") >= 0.3 * m("notification_read_floor_events_per_s")),
    ("e2e p99 <= 250 ms on PostgreSQL", ("e2e_p99_ms",), lambda m: m("e2e_p99_ms") <= 250),
    ("e2e p99 <= 50 ms embedded", ("e2e_embedded_p99_ms",), lambda m: m("e2e_embedded_p99_ms") <= 50),
    ("history >= 0.5x the floor", ("history_req_per_s", "history_floor_req_per_s"),
     lambda m: m("history_req_per_s") >= 0.5 * m("history_floor_req_per_s")),
    ("history p99 <= 25 ms", ("history_p99_ms",), lambda m: m("history_p99_ms") <= 25),
    ("alerts p99 <= 50 ms at 3,000 projects", ("alerts_p99_ms",), lambda m: m("alerts_p99_ms") <= 50),
    ("alerts >= 0.3x the floor", ("alerts_req_per_s", "history_floor_req_per_s"),
     lambda m: m("alerts_req_per_s") >= 0.3 * m("history_floor_req_per_s")),
    ("stages p99 <= 50 ms at 3,000 projects", ("stages_p99_ms",), lambda m: m("stages_p99_ms") <= 50),
    ("stages >= 0.3x the floor", ("stages_req_per_s", "history_floor_req_per_s"),
     lambda m: m("stages_req_per_s") >= 0.3 * m("history_floor_req_per_s")),
    ("rebuild RSS <= 300 MB at 1M events", ("rss_rebuild_mb",), lambda m: m("rss_rebuild_mb") <= 300),
    ("audit verify >= 100,000 events/s", ("audit_verify_events_per_s",),
     lambda m: m("audit_verify_events_per_s") >= 100_000),
    (f"overview p50 <= 2x alerts p50 at {console.PROJECTS:,} projects",
     ("console_overview_p50_ms", "console_alerts_p50_ms"),
     lambda m: m("console_overview_p50_ms") <= 2 * m("console_alerts_p50_ms")),
    (f"overview p50 <= 300 ms at {console.PROJECTS:,} projects", ("console_overview_p50_ms",),
     lambda m: m("console_overview_p50_ms") <= 300),
]

#: Figures of the same run printed beside the verdict on a figure: what bounds it on this machine.
BESIDE: dict[str, tuple[str, ...]] = {
    "history_p99_ms": ("history_floor_p99_ms", "healthz_p99_ms"),
    "alerts_p99_ms": ("healthz_p99_ms",),
    "stages_p99_ms": ("healthz_p99_ms",),
    "console_overview_p50_ms": ("console_alerts_p50_ms",),
}


def machine() -> list[str]:
    with psycopg.connect(pg_base(), autocommit=True) as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]
        fsync = conn.execute("SHOW fsync").fetchone()[0]
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) // 1024**2  # type: ignore[union-attr]
    jars = sorted(Path.home().glob(".cache/yaosu/kafka-*"))
    return [f"date {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
            f"machine {os.cpu_count()} cores ({cpu}), {memory} GiB, {platform.system()} {platform.release()}",
            f"python {platform.python_version()}; eventsourcing {version('eventsourcing')}, fastapi {version('fastapi')}, "
            f"uvicorn {version('uvicorn')}, psycopg {version('psycopg')}",
            f"postgresql {server} (fsync {fsync}); kafka {jars[-1].name.removeprefix('kafka-') if jars else '?'}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=PARTS, action="append", help="run only these parts")
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite the README's table")
    args = parser.parse_args()
    parts = args.only or list(PARTS)
    bootstrap = os.environ.get("YAOSU_KAFKA_BOOTSTRAP")
    if "ingest" in parts and not bootstrap:
        raise SystemExit("set YAOSU_KAFKA_BOOTSTRAP (make services-up; . var/services.env)")
    if "reads" in parts:
        ensure_debian_package(Path("/usr/bin/wrk"), "wrk")  # the load generator, outside the server process
    head = machine()
    if "fsync on" not in head[-1]:
        raise SystemExit("PostgreSQL runs with fsync off: `make bench` restarts it with YAOSU_PG_FSYNC=on")
    started = time.monotonic()
    figures = Figures()
    ratio_lines: list[tuple[str, float]] = []
    if "append" in parts:
        checkpoint()
        append.measure(figures)
        ratio_lines += append.ratios(figures)
    if "ingest" in parts:
        checkpoint()
        ingest.measure(figures, bootstrap or "")
        ratio_lines += ingest.ratios(figures)
    if "rebuild" in parts:
        kept = filled("rebuild", projects=3000, events=1_000_000, read_models=False), filled("reads3000", projects=3000)
        checkpoint()
        rebuild.measure(figures, *kept)
        ratio_lines += rebuild.ratios(figures)
    if "latency" in parts:
        checkpoint()
        latency.measure(figures)
    if "reads" in parts:
        kept = filled("reads3000", projects=3000), filled("reads300", projects=300)
        checkpoint()
        reads.measure(figures, *kept)
        ratio_lines += reads.ratios(figures)
    if "audit" in parts:
        store = filled("rebuild", projects=3000, events=1_000_000, read_models=False)
        checkpoint()
        audit.measure(figures, store)
    if "console" in parts:
        store = filled(f"console{console.PROJECTS}", projects=console.PROJECTS)
        checkpoint()
        console.measure(figures, store)
        ratio_lines += console.ratios(figures)
    filling = stores.filling_seconds
    took = f"took {(time.monotonic() - started - filling) / 60:.1f} minutes" + (
        f" (and {filling / 60:.1f} filling the stores it keeps, once)" if filling else "")
    lines = [*head, f"{took}; each figure the median of 3", "",
             *(figures.line(name) for name in figures.values), "",
             *(f"{name} {value:.2f}x" for name, value in ratio_lines), ""]
    for text, needs, met in TARGETS:
        if all(name in figures.values for name in needs):
            shown = [f"{name} {figures.median(name):.1f}" for name in BESIDE.get(needs[0], ()) if name in figures.values]
            lines.append(f"target {text}: {'met' if met(figures.median) else 'MISSED'}"
                         + (f" (beside: {', '.join(shown)})" if shown else ""))
    output = "\n".join(lines)
    print(output)
    (ROOT / "var").mkdir(exist_ok=True)
    (ROOT / "var" / "bench.txt").write_text(output + "\n")
    if parts == list(PARTS) and not args.no_readme:
        readme = README.read_text()
        if BEGIN in readme and END in readme:
            before, rest = readme.split(BEGIN, 1)
            README.write_text(f"{before}{BEGIN}\n```\n{output}\n```\n{END}{rest.split(END, 1)[1]}")
            say("README.md: the performance table is this output")
    return 0


if __name__ == "__main__":
    sys.exit(main())
