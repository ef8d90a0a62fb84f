"""`yaosu projections rebuild` on every core: the read models split into groups of about equal cost, each
group rebuilt by a `yaosu projections rebuild` process of its own.

Read models are independent (each has its own tables, generation and position), so each process reads
the log and builds its own; what one process would do in turn, the processes do side by side. Each also
pays for reading and decoding the log, which is why a group is worth a process only when it costs more
than that. On SQLite one file takes one writer at a time: there, one process.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Any, Sequence

import orjson

from yaosu.loading import Progress, peak_memory

#: What rebuilding each read model alone costs beyond reading the log, in seconds over the 3,000-project
#: demo store (137,000 events; `make bench`'s `rebuild_alone_*` less the cheapest): only the proportions
#: matter. A read model not listed weighs as the median.
COSTS: dict[str, float] = {
    "sedimentation": 4.5, "cockpit": 3.6, "audit": 3.5, "warnings": 1.9, "stages": 1.8, "ledger": 1.3,
    "chain": 1.1, "investment": 1.1, "libraries": 0.9, "directory": 0.9, "supervision": 0.4, "parked": 0.2,
}
MEDIAN_COST = sorted(COSTS.values())[len(COSTS) // 2]


def split(names: Sequence[str], workers: int) -> list[list[str]]:
    """The read models in at most `workers` groups of about equal cost (the costliest first, each to the
    group that costs least so far), none empty."""
    groups: list[list[str]] = [[] for _ in range(max(1, min(workers, len(names))))]
    totals = [0.0] * len(groups)
    for name in sorted(names, key=lambda n: (-COSTS.get(n, MEDIAN_COST), n)):
        cheapest = totals.index(min(totals))
        groups[cheapest].append(name)
        totals[cheapest] += COSTS.get(name, MEDIAN_COST)
    return groups


def rebuild_in_processes(groups: list[list[str]], head: int) -> tuple[dict[str, Any], int]:
    """Each group rebuilt by a process of its own, their progress shown as one line (the slowest's); the
    summary (events, seconds, peak memory of all of them at once) and the exit status (the worst)."""
    for n, group in enumerate(groups, 1):
        print(f"rebuild: process {n} of {len(groups)}: {', '.join(group)}", file=sys.stderr)
    progress = Progress(head, f"rebuild in {len(groups)} processes", unit="event")
    children = [subprocess.Popen([sys.executable, "-m", "yaosu", "projections", "rebuild", *group, "--workers", "1",
                                  "--progress-lines"], stdout=subprocess.PIPE, text=True)
                for group in groups]
    done = [0] * len(children)
    summaries: list[dict[str, Any]] = [{} for _ in children]

    def follow(n: int, child: subprocess.Popen[str]) -> None:
        assert child.stdout is not None
        for line in child.stdout:
            said = orjson.loads(line)
            if "done" in said:
                done[n] = said["done"]
            else:
                summaries[n] = said

    readers = [threading.Thread(target=follow, args=(n, c), daemon=True) for n, c in enumerate(children)]
    for reader in readers:
        reader.start()
    while any(child.poll() is None for child in children):
        progress.done = min(done)
        progress.tick()
        time.sleep(0.25)
    for reader in readers:
        reader.join()
    progress.done = min(done)
    summary = progress.finish()
    summary["processes"] = [{"read_models": group, **said} for group, said in zip(groups, summaries)]
    # They ran at once: the machine held all of them (and this one) together.
    summary["peak_rss_mb"] = round(sum(s.get("peak_rss_mb", 0.0) for s in summaries)
                                   + peak_memory().get("peak_rss_mb", 0.0), 1)
    for group, child in zip(groups, children):
        if child.returncode:
            print(f"rebuild: the process of {', '.join(group)} failed (exit status {child.returncode}); the "
                  "generations serving before keep serving", file=sys.stderr)
    return summary, max(child.returncode for child in children)
