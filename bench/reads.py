"""Reads at 32 concurrent clients (`wrk`, outside the server process): history, alerts, stages and audit
search, each beside its bare floor running the same query (`bench/floor.py`) and the
server's own ceiling (`/healthz`, which reads nothing); the console's overview page; the server's
peak memory."""

from __future__ import annotations

import re
import subprocess
import tempfile
from typing import Any, Callable

import httpx

from bench.common import (
    PYTHON,
    ROOT,
    SUPERVISOR,
    Figures,
    environment,
    free_port,
    idle,
    peak_rss_mb,
    percentile,
    say,
    serving,
    stop,
    wait_until_up,
)
from bench.console import caught_up, sign_in
from domain import reference
from yaosu.demo import demo_messages

CLIENTS, THREADS, SECONDS = 32, 2, 5
#: The reads whose answers `yaosu serve` keeps per snapshot (`api.reading.Answers`): with the read models still,
#: `wrk` gets kept answers; each is also measured from a server keeping none (`_computed`: every request runs
#: the query, as the first after a change does), the figure that says what Yaosu adds to its floor's query.
KEPT = ("alerts", "stages", "audit_search")
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
        # A slow answer is timed, not counted as an error: wrk's own timeout (2 s) would drop it from the p99.
        command = ["wrk", f"-t{THREADS}", f"-c{CLIENTS}", f"-d{SECONDS}s", "--timeout", "30s", "--latency", "-s", lua.name]
        out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    statuses, timeouts, _ = (int(x) for x in re.search(r"errors (\d+) (\d+) (\d+)", out).groups())  # type: ignore[union-attr]
    if statuses or timeouts:
        raise SystemExit(f"wrk saw {statuses} non-2xx answers and {timeouts} timeouts on {paths[0]}:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    if not rate:  # no answer within the run: its p99 would read 0 and pass any bound
        raise SystemExit(f"wrk got no answer in {SECONDS} s on {paths[0]}:\n{out}")
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


def audit_searches(projects: int) -> list[str]:
    """Questions an inspection asks the audit trail: by department, district, project, type, lateness,
    period, and combined."""
    some = codes(projects)[::projects // 12]
    departments = list(reference.DEPARTMENTS)[:8]
    types = ("land.supplied", "funds.allocated", "energy.granted", "construction.started", "project.admitted",
             "investment.reported")
    found = [f"/v1/audit?department={d}" for d in departments]
    found += [f"/v1/audit?district={d}" for d in list(reference.DISTRICTS)[:5]]
    found += [f"/v1/audit?project={code}" for code in some]
    found += [f"/v1/audit?type={t}" for t in types]
    found += [f"/v1/audit?late_days={days}" for days in (30, 180, 365)]
    found += [f"/v1/audit?from=2021-{month:02d}-01&to=2021-{month:02d}-28" for month in range(1, 13, 2)]
    found += [f"/v1/audit?department={d}&from=2021-04-01&to=2021-06-30" for d in departments[:4]]
    return found


def questions(projects: int) -> dict[str, list[str]]:
    """What each read at 32 clients asks, rotating: every project's history, 48 days' alerts, 5 districts'
    stage boards, the audit searches."""
    days = [f"2021-{month:02d}-{day:02d}" for month in range(1, 13) for day in (1, 10, 20, 28)]
    return {"history": [f"/v1/projects/{code}/history" for code in codes(projects)],
            "alerts": [f"/v1/alerts?as_of={day}" for day in days],
            "stages": ["/v1/stages?district=" + d for d in ("620102", "620103", "620104", "620105", "620111")],
            "audit_search": audit_searches(projects)}


def rows_in(body: dict[str, Any]) -> int:
    """The rows of an answer of a read or of its floor (a stage board's are grouped by stage)."""
    if "stages" in body:
        return sum(len(stage["projects"]) for stage in body["stages"])
    return len(next(body[key] for key in ("events", "alerts", "projects", "entries") if key in body))


def same_rows(url: str, floor_url: str, paths: list[str]) -> None:
    """The floor answers three of a read's questions (spread over them) with as many rows as Yaosu does: a
    floor that found less would be fast for nothing."""
    for path in paths[::max(1, len(paths) // 3)][:3]:
        ours = httpx.get(url + path, headers=SUPERVISOR, timeout=60).raise_for_status().json()
        floors = httpx.get(floor_url + path, timeout=60).raise_for_status().json()
        if rows_in(ours) != rows_in(floors):
            raise SystemExit(f"the floor of {path} gives {rows_in(floors)} rows, Yaosu {rows_in(ours)}")


def at_32_clients(figures: Figures, store: str, projects: int, prefix: str = "",
                  during: Callable[[str, int, int], None] = lambda url, pid, repetition: None) -> None:
    """Each read as served (and, for those whose answers are kept, from a server keeping none), then its
    floor (`bench/floor.py`), in each repetition, over a store of `projects` projects: `<prefix><read>_*`.
    `during`: more to measure on the server as served (its URL, process id), after each repetition."""
    caught_up(store)
    asked = questions(projects)
    floor_port = free_port()
    floor_url = f"http://127.0.0.1:{floor_port}"
    floor = subprocess.Popen([PYTHON, str(ROOT / "bench" / "floor.py"), str(floor_port)], env=environment(store),
                             cwd=ROOT)
    try:
        wait_until_up(floor_url, floor, path=asked["history"][0])
        with serving(store, "--no-projections") as (url, server), \
                serving(store, "--no-projections", YAOSU_ANSWER_CACHE_MB="0") as (computing, spare):
            for paths in asked.values():
                same_rows(url, floor_url, paths)
            servers = (server.pid, spare.pid, floor.pid)

            def measured(name: str, at: str, paths: list[str]) -> None:
                wrk(figures, name, at, paths)
                idle(*servers)  # what the clients left is done before the next read is timed

            for repetition in range(3):
                say(f"{prefix}reads, repetition {repetition + 1} of 3 (wrk -t{THREADS} -c{CLIENTS} -d{SECONDS}s)")
                for read, paths in asked.items():
                    measured(f"{prefix}{read}", url, paths)
                    if read in KEPT:
                        measured(f"{prefix}{read}_computed", computing, paths)
                    measured(f"{prefix}{read}_floor", floor_url, paths)  # its p99: what 32 clients wait even there
                # The server's own ceiling: an answer that reads nothing.
                measured(f"{prefix}healthz", url, ["/healthz"])
                during(url, server.pid, repetition)
    finally:
        stop(floor)


def measure(figures: Figures, large: str, small: str) -> None:
    """`large`: the store of 3,000 projects; `small`: 300 (for the console's overview)."""
    def overview_and_memory(url: str, pid: int, repetition: int) -> None:
        figures.add("console_overview_3000_p95_ms", overview_p95_ms(url), "ms")
        if repetition == 2:
            figures.add("rss_serve_mb", peak_rss_mb(pid), "MB")

    at_32_clients(figures, large, 3000, during=overview_and_memory)
    with serving(small, "--no-projections") as (url, _):
        for _ in range(3):
            figures.add("console_overview_300_p95_ms", overview_p95_ms(url), "ms")


def main(argv: Any = None) -> None:  # for profiling one part alone: python -m bench.reads
    from bench.stores import filled

    figures = Figures()
    measure(figures, filled("reads3000", projects=3000), filled("reads300", projects=300))
    for name in figures.values:
        print(figures.line(name))


if __name__ == "__main__":
    main()
