"""Reads at 32 concurrent clients (`wrk`, outside the server process), beside the bare floor and the
server's own ceiling (`/healthz`, which reads nothing); the console's overview page; the server's
peak memory."""

from __future__ import annotations

import re
import subprocess
import tempfile
from typing import Any

import httpx

from bench.common import (
    PYTHON,
    ROOT,
    Figures,
    environment,
    free_port,
    peak_rss_mb,
    percentile,
    say,
    serving,
    stop,
    wait_until_up,
)
from bench.console import sign_in
from yaosu.demo import demo_messages

CLIENTS, THREADS, SECONDS = 32, 2, 5
UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(figures: Figures, name: str, url: str, paths: list[str]) -> None:
    """`<name>_req_per_s` and `<name>_p99_ms`: `CLIENTS` connections over `SECONDS`, each request the next path."""
    script = "\n".join([
        'wrk.headers["Authorization"] = "Bearer dev-supervisor"',
        "paths = {" + ", ".join(f'"{p}"' for p in paths) + "}",
        "n = 0",
        "request = function() n = n + 1; return wrk.format(nil, paths[(n % #paths) + 1]) end",
        "done = function(summary, latency, requests)",
        '  io.write(string.format("errors %d %d %d\\n", summary.errors.status, summary.errors.timeout, '
        "summary.errors.connect))",
        "end",
    ])
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        out = subprocess.run(["wrk", f"-t{THREADS}", f"-c{CLIENTS}", f"-d{SECONDS}s", "--latency", "-s", lua.name, url],
                             capture_output=True, text=True, check=True).stdout
    statuses, timeouts, _ = (int(x) for x in re.search(r"errors (\d+) (\d+) (\d+)", out).groups())  # type: ignore[union-attr]
    if statuses or timeouts:
        raise SystemExit(f"wrk saw {statuses} non-2xx answers and {timeouts} timeouts on {paths[0]}:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    figures.add(f"{name}_req_per_s", rate, "req/s")
    figures.add(f"{name}_p99_ms", float(value) * UNIT[unit], "ms")


def overview_p95_ms(url: str, requests: int = 20) -> float:
    with httpx.Client(base_url=url, timeout=60) as http:
        sign_in(http)  # as a browser does, with the form's token
        http.get("/console?as_of=2021-09-30")  # the first answer warms what is cached
        times = []
        for _ in range(requests):
            answer = http.get("/console?as_of=2021-09-30")
            assert answer.status_code == 200, answer.text[:300]
            times.append(answer.elapsed.total_seconds() * 1000)
    return percentile(times, 0.95)


def codes(projects: int) -> list[str]:
    return sorted({m["project_code"] for m in demo_messages(2021, projects=projects, seed=2021)
                   if m["type"] == "project.registered"})


def measure(figures: Figures, large: str, small: str) -> None:
    """`large`: the store of 3,000 projects; `small`: 300 (for the console's overview)."""
    history = [f"/v1/projects/{code}/history" for code in codes(3000)]
    days = [f"2021-{month:02d}-{day:02d}" for month in range(1, 13) for day in (1, 10, 20, 28)]
    alerts = [f"/v1/alerts?as_of={day}" for day in days]
    stages = ["/v1/stages?district=" + district for district in ("620102", "620103", "620104", "620105", "620111")]
    floor_port = free_port()
    floor = subprocess.Popen([PYTHON, str(ROOT / "bench" / "floor.py"), str(floor_port)], env=environment(large),
                             cwd=ROOT)
    try:
        wait_until_up(f"http://127.0.0.1:{floor_port}", floor, path=history[0])
        with serving(large, "--no-projections") as (url, server):
            for repetition in range(3):
                say(f"reads, repetition {repetition + 1} of 3 (wrk -t{THREADS} -c{CLIENTS} -d{SECONDS}s)")
                wrk(figures, "history", url, history)
                wrk(figures, "history_floor", f"http://127.0.0.1:{floor_port}", history)  # its p99: what 32 clients wait even there
                wrk(figures, "alerts", url, alerts)
                wrk(figures, "stages", url, stages)
                wrk(figures, "healthz", url, ["/healthz"])  # the server's own ceiling: an answer that reads nothing
                figures.add("console_overview_3000_p95_ms", overview_p95_ms(url), "ms")
            figures.add("rss_serve_mb", peak_rss_mb(server.pid), "MB")
        with serving(small, "--no-projections") as (url, _):
            for _ in range(3):
                figures.add("console_overview_300_p95_ms", overview_p95_ms(url), "ms")
    finally:
        stop(floor)


def ratios(figures: Figures) -> list[tuple[str, float]]:
    return [("history_vs_floor", figures.median("history_req_per_s") / figures.median("history_floor_req_per_s")),
            ("alerts_vs_history_floor", figures.median("alerts_req_per_s") / figures.median("history_floor_req_per_s"))]


def main(argv: Any = None) -> None:  # for profiling one part alone: python -m bench.reads
    from bench.stores import filled

    figures = Figures()
    measure(figures, filled("reads3000", projects=3000), filled("reads300", projects=300))
    for name in figures.values:
        print(figures.line(name))


if __name__ == "__main__":
    main()
