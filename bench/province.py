"""A province on one machine (issue 24): 30,000 projects a year on PostgreSQL, two demo years of messages
(60,000 registered, about 2.7 million events: the demo's density gives 1.37 million a year at this size,
two years reach the issue's ~3 million), measured as the rest of `make bench` measures:

- the rebuild of every read model (`yaosu projections rebuild`, both cores), its speed and peak memory;
- `yaosu serve`'s memory after every console page and list has been asked once;
- the reads at 32 clients beside their floors, the console overview beside the alerts, at this size;
- the alerts as of a day a year back beside those of a recent day (the index answers any day alike);
- `yaosu audit verify` of the whole store.

    .venv/bin/python -m bench.run --only province

The districts are the contract's, Lanzhou's 13 areas: the contract names no province's (its 14 cities'
86 counties would be a district reference of their own); what grows with a province, the projects and
the events, is the province's.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from bench import audit, console, reads, rebuild
from bench.common import SUPERVISOR, Figures, peak_rss_mb, say, serving, wired
from domain import reference

#: `YAOSU_BENCH_PROVINCE_PROJECTS` (default the issue's 30,000) sets the projects a year, for trying the part
#: on a small store; the events follow (two years at the demo's density).
PROJECTS = int(os.environ.get("YAOSU_BENCH_PROVINCE_PROJECTS", "30000"))
EVENTS = PROJECTS * 83
#: The last day of the second demo year, and the same day a year back.
RECENT, YEAR_BACK = "2022-12-15", "2021-12-15"
#: Memory the issue allows a province's processes (a budget, not a speed: it does not vary with the neighbours).
BUDGETS = {"province_rss_rebuild_mb": 400.0, "province_rss_serve_mb": 500.0}
REQUESTS = 20


def store() -> str:
    from bench.stores import filled

    return filled("province" if PROJECTS == 30_000 else f"province{PROJECTS}", projects=PROJECTS, events=EVENTS)


def pages(code: str) -> list[str]:
    """Every console page and list a supervisor opens, once (each with what it is usually asked)."""
    day = f"as_of={YEAR_BACK}"
    found = [f"/console?{day}&year=2021", "/console", f"/console/alerts?{day}", f"/console/projects/{code}",
             "/console/supervision", "/console/ledger?year=2022", f"/console/rankings?year=2021&{day}",
             "/console/warnings", "/console/audit", "/console/rejections", f"/console/search?q={code[-6:]}",
             "/console/health"]
    found += [f"/console/libraries/{library}" for library in reference.LIBRARIES]
    found += [f"/v1/alerts?{day}", "/v1/stages", "/v1/libraries/annual", "/v1/ledger?year=2022",
              f"/v1/rankings/districts?year=2021&{day}", "/v1/warnings", "/v1/audit", "/v1/rejections",
              "/v1/supervision", f"/v1/projects/{code}", f"/v1/projects/{code}/history", "/v1/stats/investment?by=district",
              "/v1/reports/monthly?month=2022-11", "/v1/libraries/annual/matrix"]
    return found


def warmed_rss_mb(url: str, pid: int, code: str) -> float:
    """`yaosu serve`'s peak memory once every page has been asked (signed in as a supervisor)."""
    with httpx.Client(base_url=url, timeout=300) as http:
        console.sign_in(http)
        for path in pages(code):
            answer = http.get(path, headers=SUPERVISOR if path.startswith("/v1/") else {})
            if answer.status_code != 200:
                raise SystemExit(f"{path}: {answer.status_code} {answer.text[:300]}")
    return peak_rss_mb(pid)


def as_of_p50_ms(url: str, day: str) -> float:
    with httpx.Client(base_url=url, timeout=300, headers=SUPERVISOR) as http:
        return console.p50_ms(http, f"/v1/alerts?as_of={day}", requests=REQUESTS)


def measure(figures: Figures, kept: str) -> None:
    with wired(kept) as wiring:
        say(f"province: {wiring.ledger.head():,} events")
        figures.add("province_store_events", wiring.ledger.head(), "events")
        for repetition in range(3):
            say(f"province rebuild, repetition {repetition + 1} of 3")
            rate, rss = rebuild.rebuild(kept)
            figures.add("province_rebuild_events_per_s", rate, "events/s")
            figures.add("province_rss_rebuild_mb", rss, "MB")
            figures.add("province_read_floor_events_per_s", rebuild.read_floor(wiring.ledger), "events/s")
    code = reads.codes(PROJECTS)[PROJECTS // 2]
    with serving(kept, "--no-projections", YAOSU_ANSWER_CACHE_MB="0") as (url, server):
        figures.add("province_rss_serve_mb", warmed_rss_mb(url, server.pid, code), "MB")
        for repetition in range(3):
            say(f"province alerts a year back, repetition {repetition + 1} of 3")
            figures.add("province_alerts_year_back_p50_ms", as_of_p50_ms(url, YEAR_BACK), "ms")
            figures.add("province_alerts_recent_p50_ms", as_of_p50_ms(url, RECENT), "ms")
    reads.at_32_clients(figures, kept, PROJECTS, prefix="province_")
    console.measure(figures, kept, prefix="province_")
    for repetition in range(3):
        say(f"province audit verify, repetition {repetition + 1} of 3")
        figures.add("province_audit_verify_events_per_s", audit.verify(kept), "events/s")


def budgets(figures: Figures) -> list[str]:
    return [f"budget {name.removesuffix('_mb').replace('_', ' ')} <= {limit:,.0f} MB: "
            f"{'met' if figures.median(name) <= limit else 'MISSED'} ({figures.median(name):,.1f} MB)"
            for name, limit in BUDGETS.items() if name in figures.values]


def main(argv: Any = None) -> None:  # python -m bench.province
    figures = Figures()
    measure(figures, store())
    for name in figures.values:
        print(figures.line(name))
    for line in budgets(figures):
        print(line)


if __name__ == "__main__":
    main()
