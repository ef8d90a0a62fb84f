"""`make bench`: every speed figure, each the median of 3 repetitions measured in the same run as what
it is compared with, on real PostgreSQL (fsync on) and Kafka from `make services-up`.

    make bench                                   # all, and the README's table rewritten from the output
    .venv/bin/python -m bench.run --only reads   # one part (append, ingest, rebuild, latency, reads, audit, console, province)

Prints the machine, then one line per figure (`<name> <value> <unit>`, the median, with the three
runs), the ratios, and each target of issue 24 met or missed: every target is a ratio to a floor or a
peer measured in the same run (`TARGETS`); absolute figures are printed, never judged (memory budgets, `province.BUDGETS`, are met or missed). Stores the benchmarks read are filled
the first time and kept in their own schemas (`bench_*`); what is measured is made afresh each time.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Callable

import psycopg

from bench import append, audit, console, ingest, latency, province, reads, rebuild, stores
from bench.common import ROOT, Figures, checkpoint, pg_base, say
from bench.stores import filled
from tools.common import ensure_debian_package

PARTS = ("append", "ingest", "rebuild", "latency", "reads", "audit", "console", "province")
README = ROOT / "README.md"
BEGIN, END = "<!-- make bench: begin -->", "<!-- make bench: end -->"

@dataclass(frozen=True)
class Target:
    """`figure` at least `factor` times `peer` (at most, for a time), both measured in the same run:
    `ratio` names figure ÷ peer. An aim is printed with its verdict as a target is, labelled an aim.
    Absolute figures (ms, events/s, MB) are printed, never judged: on a shared machine only a ratio to
    something measured beside them says whether Yaosu is slow."""

    text: str
    ratio: str
    figure: str
    peer: str
    factor: float
    at_most: bool = False
    aim: bool = False
    beside: tuple[str, ...] = ()  # more figures of the same run that bound this one on this machine

    def value(self, median: Callable[[str], float]) -> float:
        return median(self.figure) / median(self.peer)

    def met(self, median: Callable[[str], float]) -> bool:
        value = self.value(median)
        return value <= self.factor if self.at_most else value >= self.factor

    @property
    def needs(self) -> tuple[str, str]:
        return self.figure, self.peer


def read_targets(read: str, what: str, served: str = "", prefix: str = "") -> list[Target]:
    """A read at 32 clients beside its bare floor running the same query (`bench/floor.py`); `served`: the
    figures of a way of serving it (`_computed`: with no answer kept, `reads.KEPT`); `prefix`: of the
    figures of another store (`province_`)."""
    name = prefix + read + served
    what = (f"{prefix.rstrip('_')} " if prefix else "") + what + (" (every answer computed)" if served else "")
    return [Target(f"{what} throughput >= 0.8x its floor", f"{name}_vs_floor", f"{name}_req_per_s",
                   f"{prefix}{read}_floor_req_per_s", 0.8),
            Target(f"{what} p99 <= 1.5x its floor's p99", f"{name}_p99_vs_floor", f"{name}_p99_ms",
                   f"{prefix}{read}_floor_p99_ms", 1.5, at_most=True, beside=(f"{prefix}healthz_p99_ms",))]


def all_reads(prefix: str = "") -> list[Target]:
    return [*read_targets("history", "history", prefix=prefix),
            *(target for read in reads.KEPT for served in ("", "_computed")
              for target in read_targets(read, read.replace("_", " "), served, prefix))]


#: Issue 24's targets, each a ratio to a floor or a peer of the same run.
TARGETS: list[Target] = [
    Target("append >= 10x naive", "append_vs_naive", "append_events_per_s", "append_naive_events_per_s", 10),
    Target("append >= 0.1x the COPY floor", "append_vs_copy_floor", "append_events_per_s", "copy_floor_rows_per_s",
           0.1, aim=True),
    Target("ingest >= 10x naive", "ingest_vs_naive", "ingest_events_per_s", "ingest_naive_events_per_s", 10),
    Target("rebuild >= 15x the per-event runner", "rebuild_vs_per_event", "rebuild_events_per_s",
           "rebuild_per_event_events_per_s", 15),
    Target("rebuild >= 0.2x the notification read floor", "rebuild_vs_read_floor", "rebuild_events_per_s",
           "notification_read_floor_events_per_s", 0.2),
    Target("e2e p99 <= 10x a single-row commit's p99 on PostgreSQL", "e2e_vs_commit_p99", "e2e_p99_ms",
           "commit_p99_ms", 10, at_most=True),
    Target("e2e p99 <= 10x a single-row commit's p99 embedded (SQLite)", "e2e_embedded_vs_commit_p99",
           "e2e_embedded_p99_ms", "commit_embedded_p99_ms", 10, at_most=True),
    *all_reads(),
    Target(f"overview p50 <= 2x alerts p50 at {console.PROJECTS:,} projects", "overview_vs_alerts",
           "console_overview_p50_ms", "console_alerts_p50_ms", 2, at_most=True),
    # The province (`bench/province.py`): the same reads, the overview, and any day alike.
    *all_reads("province_"),
    Target("province overview p50 <= 2x alerts p50", "province_overview_vs_alerts",
           "province_console_overview_p50_ms", "province_console_alerts_p50_ms", 2, at_most=True),
    Target("province alerts a year back p50 <= 2x a recent day's", "province_year_back_vs_recent",
           "province_alerts_year_back_p50_ms", "province_alerts_recent_p50_ms", 2, at_most=True),
    Target("province rebuild >= 0.2x the notification read floor", "province_rebuild_vs_read_floor",
           "province_rebuild_events_per_s", "province_read_floor_events_per_s", 0.2),
]


def verdicts(figures: Figures) -> tuple[list[str], list[str]]:
    """The ratio lines (`<ratio> N.NNx`) and the verdict lines of the targets whose figures were measured."""
    ratios, lines = [], []
    for target in TARGETS:
        if not all(name in figures.values for name in target.needs):
            continue
        ratios.append(f"{target.ratio} {target.value(figures.median):.2f}x")
        shown = [f"{name} {figures.shown(figures.median(name))}"
                 for name in (*target.needs, *target.beside) if name in figures.values]
        label = " (aim)" if target.aim else ""
        lines.append(f"target {target.text}{label}: {'met' if target.met(figures.median) else 'MISSED'}"
                     f" (beside: {', '.join(shown)})")
    return ratios, lines


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
    if "append" in parts:
        checkpoint()
        append.measure(figures)
    if "ingest" in parts:
        checkpoint()
        ingest.measure(figures, bootstrap or "")
    if "rebuild" in parts:
        kept = filled("rebuild", projects=3000, events=1_000_000, read_models=False), filled("reads3000", projects=3000)
        checkpoint()
        rebuild.measure(figures, *kept)
    if "latency" in parts:
        checkpoint()
        latency.measure(figures)
    if "reads" in parts:
        kept = filled("reads3000", projects=3000), filled("reads300", projects=300)
        checkpoint()
        reads.measure(figures, *kept)
    if "audit" in parts:
        store = filled("rebuild", projects=3000, events=1_000_000, read_models=False)
        checkpoint()
        audit.measure(figures, store)
    if "console" in parts:
        store = filled(f"console{console.PROJECTS}", projects=console.PROJECTS)
        checkpoint()
        console.measure(figures, store)
    if "province" in parts:
        store = province.store()
        checkpoint()
        province.measure(figures, store)
    filling = stores.filling_seconds
    took = f"took {(time.monotonic() - started - filling) / 60:.1f} minutes" + (
        f" (and {filling / 60:.1f} filling the stores it keeps, once)" if filling else "")
    ratios, judged = verdicts(figures)
    judged += province.budgets(figures)
    sections = [[*head, f"{took}; each figure the median of 3"], [figures.line(name) for name in figures.values],
                ratios, judged]
    lines: list[str] = []
    for section in sections:  # a blank line between those that have anything (a part may judge nothing)
        if section:
            lines += [""] * bool(lines) + section
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
