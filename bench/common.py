"""What every benchmark of `make bench` shares: stores, servers, processes, figures."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx
import psycopg

from infra.settings import Settings
from tools.common import free_port
from yaosu import loading
from yaosu.wiring import Wiring

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
REPETITIONS = 3
ADMIN = {"Authorization": "Bearer dev-admin"}
SUPERVISOR = {"Authorization": "Bearer dev-supervisor"}


def say(text: str) -> None:
    """Progress, on stderr: stdout carries the figures alone."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


@dataclass
class Figures:
    """Figures as measured, repetition by repetition; printed as medians."""

    values: dict[str, list[float]] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, value: float, unit: str) -> None:
        self.values.setdefault(name, []).append(value)
        self.units[name] = unit
        say(f"  {name} {value:,.1f} {unit}")

    def median(self, name: str) -> float:
        return statistics.median(self.values[name])

    def line(self, name: str) -> str:
        runs = ", ".join(self.shown(v) for v in self.values[name])
        return f"{name} {self.shown(self.median(name))} {self.units[name]}  (runs: {runs})"

    @staticmethod
    def shown(value: float) -> str:
        """One decimal, more below 10 (a commit on a fast disk takes a fraction of a millisecond)."""
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"


def pg_base() -> str:
    store = os.environ.get("YAOSU_STORE", "")
    if not store.startswith("postgresql"):
        raise SystemExit("set YAOSU_STORE to the PostgreSQL of `make services-up` (. var/services.env)")
    return store.split("?")[0]


def pg_store(schema: str) -> str:
    return f"{pg_base()}?schema={schema}"


def drop_schema(schema: str) -> None:
    with psycopg.connect(pg_base(), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def checkpoint() -> None:
    """Write out what earlier parts left in PostgreSQL's buffers, so a part does not pay for them."""
    with psycopg.connect(pg_base(), autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def environment(store: str, **more: str) -> dict[str, str]:
    return {**os.environ, "YAOSU_STORE": store, "YAOSU_DEV_TOKENS": "1", "PYTHONPATH": str(ROOT), **more}


def settings_for(store: str, **more: str) -> Settings:
    """The settings a `yaosu` process started by `yaosu()` on `store` reads from its environment."""
    return Settings.from_env(environment(store, **more))


def wired(store: str, **more: str) -> Wiring:
    """The composition root on `store`, with those settings: what a benchmark opens in its own process is
    built as what it measures is (close it, or use it in `with`)."""
    return Wiring(settings_for(store, **more))


def peak_rss_mb(pid: int) -> float:
    """A child's peak resident set so far, in MB (as `yaosu.loading.peak_rss_mb` reads it)."""
    peak = loading.peak_rss_mb(pid)
    if peak is None:
        raise SystemExit(f"the kernel gives no peak memory of process {pid} (/proc/{pid}/status)")
    return peak


def cpu_ticks(pid: int) -> int:
    """User and system CPU time the process has used, in clock ticks (`/proc/<pid>/stat`)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def idle(*pids: int, within: float = 120.0) -> None:
    """Wait until these processes use under a tenth of a core: when `wrk` stops, the requests its clients
    left are still worked on by a server, and the next read measured there would wait behind them."""
    deadline = time.monotonic() + within
    ticks = os.sysconf("SC_CLK_TCK")
    while time.monotonic() < deadline:
        before = sum(cpu_ticks(pid) for pid in pids)
        time.sleep(0.5)
        if sum(cpu_ticks(pid) for pid in pids) - before < 0.05 * ticks * len(pids):
            return
    raise SystemExit(f"processes {pids} still busy {within:.0f} s after their load stopped")


def yaosu(*args: str, store: str, stdout: Any = subprocess.DEVNULL, **env: str) -> subprocess.Popen[Any]:
    """A `yaosu` command as a process of its own (what it prints goes to `stdout`: a file, or nowhere)."""
    return subprocess.Popen([PYTHON, "-m", "yaosu", *args], env=environment(store, **env), cwd=ROOT,
                            stdout=stdout, stderr=subprocess.STDOUT, text=True)


@contextmanager
def serving(store: str, *args: str, **env: str) -> Iterator[tuple[str, subprocess.Popen[Any]]]:
    """`yaosu serve` on a free port (`env`: more of its environment); its URL and process once it answers."""
    port = free_port()
    process = yaosu("serve", "--port", str(port), *args, store=store, **env)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url, process)
    try:
        yield url, process
    finally:
        stop(process)


def wait_until_up(url: str, process: subprocess.Popen[Any], path: str = "/readyz") -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + path, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise SystemExit(f"{' '.join(map(str, process.args))} did not come up (run it alone to see why)")
        time.sleep(0.1)


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]
