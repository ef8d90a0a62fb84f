"""Loading messages in bulk (批量导入): through the pipeline in batches, with progress on stderr."""

from __future__ import annotations

import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from infra.tokens import Principal
from service.ledger import Ledger

CLI_PRINCIPAL = Principal("cli", "admin")
BATCH = 500


class Progress:
    """One line on stderr, rewritten in place: done/total, rate, outcome counts. `lines`: for a process
    that reports to another (`yaosu.rebuilding`), a JSON line `{"done": n}` on stdout each time instead."""

    def __init__(self, total: int | None, label: str, unit: str = "message", lines: bool = False) -> None:
        self.total, self.label, self.unit, self.lines = total, label, unit, lines
        self.done = 0
        self.counts: Counter[str] = Counter()
        self.started = time.perf_counter()
        self.shown = 0.0

    def add(self, statuses: Iterable[str]) -> None:
        for status in statuses:
            self.counts[status] += 1
            self.done += 1
        self.tick()

    def advance(self, n: int) -> None:
        self.done += n
        self.tick()

    def tick(self) -> None:
        now = time.perf_counter()
        if now - self.shown > 0.25 or self.done == self.total:
            self.shown = now
            self._show(now)

    def _show(self, now: float) -> None:
        if self.lines:
            sys.stdout.write(f'{{"done": {self.done}}}\n')
            sys.stdout.flush()
            return
        rate = self.done / max(now - self.started, 1e-9)
        of = f"/{self.total:,} ({100 * self.done // max(self.total, 1)}%)" if self.total else ""
        counts = " ".join(f"{k} {v:,}" for k, v in sorted(self.counts.items()))
        sys.stderr.write(f"\r{self.label}: {self.done:,}{of} · {rate:,.0f} {self.unit}/s · {counts}   ")
        sys.stderr.flush()

    def finish(self) -> dict[str, Any]:
        self._show(time.perf_counter())
        if not self.lines:
            sys.stderr.write("\n")
        elapsed = time.perf_counter() - self.started
        return {self.unit + "s": self.done, **dict(self.counts), "seconds": round(elapsed, 2),
                f"{self.unit}s_per_second": round(self.done / max(elapsed, 1e-9)), **peak_memory()}


def peak_memory() -> dict[str, float]:
    """This process's peak resident set, in MB (`peak_rss_mb`); nothing where the kernel does not say.

    Not `getrusage`: its peak starts from the parent's at the `exec`, so a command started by a large
    process would report that process's size."""
    peak = peak_rss_mb("self")
    return {} if peak is None else {"peak_rss_mb": round(peak, 1)}


def peak_rss_mb(pid: int | str) -> float | None:
    """A process's peak resident set so far (Linux's `VmHWM`), in MB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def submit_all(ledger: Ledger, bodies: Iterable[Any], *, total: int | None, label: str,
               catch_up_before: Callable[[Any], bool] = lambda body: False,
               catch_up: Callable[[], None] = lambda: None,
               recorded_at: Sequence[datetime] | None = None) -> dict[str, Any]:
    """Submit in batches, with progress; before each body `catch_up_before` picks, what came before it is
    stored and `catch_up` is called (the read side brought up to it). `recorded_at`: when each body is
    recorded (a past year replayed, the demo's); without it, now."""
    progress = Progress(total, label)
    batch: list[Any] = []
    times = iter(recorded_at) if recorded_at is not None else None
    stamps: list[datetime] = []

    def send() -> None:
        results = ledger.submit(batch, principal=CLI_PRINCIPAL, channel="cli",
                                recorded_at=stamps if times is not None else None)
        progress.add(r.status for r in results)
        batch.clear()
        stamps.clear()

    for body in bodies:
        if catch_up_before(body):
            if batch:
                send()
            catch_up()
        batch.append(body)
        if times is not None:
            stamps.append(next(times))
        if len(batch) == BATCH:
            send()
    if batch:
        send()
    return progress.finish()


def read_jsonl(path: Path) -> Iterator[bytes]:
    """Each non-blank line as it is: the pipeline parses it, or keeps it rejected if it is not JSON."""
    with path.open("rb") as lines:
        for line in lines:
            if line.strip():
                yield line.rstrip(b"\r\n")
