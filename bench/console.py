"""The console's overview (驾驶舱) at the issue's size, beside `GET /v1/alerts` on the same store and day:
the overview reads read models (running totals, the alert index), so it should cost about what the alerts
of one day cost, whatever the number of projects. A ratio, printed with a verdict; never asserted in a test.

    .venv/bin/python -m bench.run --only console

`YAOSU_BENCH_CONSOLE_PROJECTS` (default 30,000, the issue's size) sets the store's projects: filled once
(the demo year 2021) and kept, like the other parts' stores.
"""

from __future__ import annotations

import os
import re
from typing import Any

import httpx

from bench.common import SUPERVISOR, Figures, say, serving, wired

PROJECTS = int(os.environ.get("YAOSU_BENCH_CONSOLE_PROJECTS", "30000"))
#: A day inside the demo year, with alerts of both levels, and the plan year it is in.
AS_OF, YEAR = "2021-09-30", 2021
REQUESTS = 30


def caught_up(store: str) -> None:
    """Build the read models a kept store may not have yet (one added since it was filled, as a deploy does)."""
    with wired(store) as wiring:
        runner = wiring.runner()
        runner.run_until_caught_up()
        runner.close()


def sign_in(http: httpx.Client) -> None:
    """As a browser does: the sign-in form's token, then the form."""
    form = re.search(r'name="csrf" value="([^"]+)"', http.get("/console/login").text)
    assert form, "no form token on the sign-in page"
    answer = http.post("/console/login", data={"token": "dev-supervisor", "next": "/console", "csrf": form.group(1)})
    assert answer.status_code in (200, 303), f"sign-in: {answer.status_code}"


def p50_ms(http: httpx.Client, path: str, requests: int = REQUESTS, **headers: str) -> float:
    http.get(path, headers=headers)  # the first answer warms what is cached
    times = []
    for _ in range(requests):
        answer = http.get(path, headers=headers)
        assert answer.status_code == 200, f"{path}: {answer.status_code} {answer.text[:300]}"
        times.append(answer.elapsed.total_seconds() * 1000)
    return sorted(times)[len(times) // 2]


def measure(figures: Figures, store: str, prefix: str = "") -> None:
    """`console_overview_p50_ms` and `console_alerts_p50_ms`, one after the other on one server, 3 times: with
    no answer kept (`YAOSU_ANSWER_CACHE_MB=0`: each request computes, as the first after a change does),
    then as served by default (`_kept`: the API keeps its answers per snapshot; the overview, a page of a
    session, is computed every time)."""
    caught_up(store)
    for suffix, env in (("", {"YAOSU_ANSWER_CACHE_MB": "0"}), ("_kept", {})):
        with serving(store, "--no-projections", **env) as (url, _):
            with httpx.Client(base_url=url, timeout=120) as http:
                sign_in(http)
                for repetition in range(3):
                    say(f"console{suffix}, repetition {repetition + 1} of 3 ({PROJECTS:,} projects)")
                    figures.add(f"{prefix}console_overview{suffix}_p50_ms",
                                p50_ms(http, f"/console?as_of={AS_OF}&year={YEAR}"), "ms")
                    figures.add(f"{prefix}console_alerts{suffix}_p50_ms",
                                p50_ms(http, f"/v1/alerts?as_of={AS_OF}", **SUPERVISOR), "ms")


def ratios(figures: Figures) -> list[tuple[str, float]]:
    return [("overview_vs_alerts", figures.median("console_overview_p50_ms") / figures.median("console_alerts_p50_ms"))]


def main(argv: Any = None) -> None:  # for profiling this part alone: python -m bench.console
    from bench.stores import filled

    figures = Figures()
    measure(figures, filled(f"console{PROJECTS}", projects=PROJECTS))
    for name in figures.values:
        print(figures.line(name))
    for name, value in ratios(figures):
        print(f"{name} {value:.2f}x")


if __name__ == "__main__":
    main()
