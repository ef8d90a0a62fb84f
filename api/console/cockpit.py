"""The overview as a cockpit (驾驶舱): what a leader reads in ten seconds, every figure as of the page's day.

Works out, from the read models, the key figures (tiles), the year's trends month by month, the map of the
city's areas by alert level and the ranking; each with the link to the list behind it. The figures come
from running totals by business day (`projections.cockpit`), the alerts from the alert index: nothing here
reads a project's events.
"""

from __future__ import annotations

import calendar
from collections import Counter
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Callable, Sequence
from urllib.parse import urlencode

from api.console import charts
from domain import reference
from domain.supervision import Thresholds
from infra.catalogue import name_of, translations
from projections import cockpit, factor_ledger, sedimentation
from projections.listing import Tables

#: Where each area's tile lies on the map (column, row): 永登, 兰州新区 and 皋兰 to the north, 红古 and 西固
#: to the west, 榆中 to the east, the city's districts in the middle.
PLACES: dict[str, tuple[int, int]] = {
    "620121": (1, 0), "620171": (2, 0),
    "620111": (0, 1), "620192": (1, 1), "620191": (2, 1), "620122": (3, 1),
    "620104": (0, 2), "620105": (1, 2), "620102": (2, 2), "620190": (3, 2), "620123": (4, 2),
    "620103": (1, 3), "620193": (4, 3),
}
#: The short names the map and the charts print (the full names are the catalogue's `district.<code>`).
SHORT_NAMES: dict[str, str] = {
    "620102": "Chengguan", "620103": "Qilihe", "620104": "Xigu", "620105": "Anning", "620111": "Honggu",
    "620121": "Yongdeng", "620122": "Gaolan", "620123": "Yuzhong", "620171": "New Area", "620190": "Hi-tech",
    "620191": "Dev. Zone", "620192": "Land Port", "620193": "Eco City",
}
#: The factors whose use the overview follows (each a quantity: 万元, 亩, 吨标煤).
FOLLOWED = ("funds", "land", "energy")
#: The rule whose alerts show each factor lying idle.
IDLE_RULE = {"funds": "funds_idle", "land": "land_idle", "energy": "energy_idle"}
WAN_PER_YI = Decimal(10_000)


@dataclass(frozen=True)
class Figure:
    """A key figure's tile: what it counts, the figure and its unit, the list behind it, its colour (red,
    yellow, green or none) and, where it needs one, a note (what it is out of)."""

    label: str
    value: str
    unit: str
    href: str
    tone: str = ""
    note: str = ""


def link(path: str, **query: Any) -> str:
    return f"{path}?{urlencode({k: v for k, v in query.items() if v is not None})}"


def month_days(year: int, as_of: date) -> list[date]:
    """The days a trend of `year` shows: each month's end up to `as_of`, and `as_of` itself inside its month."""
    if year > as_of.year:
        return []
    ends = [date(year, m, calendar.monthrange(year, m)[1]) for m in range(1, 13)]
    shown = [d for d in ends if d <= as_of]
    if year == as_of.year and as_of not in shown:
        shown.append(as_of)
    return shown


def share(part: Decimal, whole: Decimal) -> Decimal | None:
    return None if not whole else (part / whole * 100)


def percent(value: Decimal | None) -> str:
    return "—" if value is None else f"{value:,.1f}%"


def figure(value: Decimal, places: int = 0) -> str:
    """Thousands separated; decimals only where the figure has them."""
    return charts.number(value.quantize(Decimal(1).scaleb(-places)) if places else value.to_integral_value(), places)


class Words:
    """The page's language: the catalogue's names of codes and its translations of the console's words."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self._ = translations(lang).gettext

    def __call__(self, msgid: str) -> str:
        return self._(msgid)

    def name(self, kind: str, code: str | None) -> str:
        return name_of(kind, code, self.lang)

    def short(self, district: str) -> str:
        return self._(SHORT_NAMES[district]) if district in SHORT_NAMES else self.name("district", district)


def overview(view: Any, as_of: date, year: int, thresholds: Thresholds, lang: str) -> dict[str, Any]:
    """Everything the overview shows on `as_of` for the plan of `year` (`view`: a snapshot of the read models)."""
    words = Words(lang)
    totals: Tables = view.of(cockpit.Cockpit)
    alerting: Tables = view.of(sedimentation.Sedimentation)
    ranking = sedimentation.ranking(alerting, year, as_of, thresholds)
    days = month_days(year, as_of)
    # One pass over the running totals: every measure on the page's day and at each month's end.
    asked = [*days, as_of] if days[-1:] != [as_of] else days
    sums = cockpit.running(totals, asked)
    now = {measure: values[-1] for (measure, _), values in sums.items()}
    by_district = cockpit.running(totals, [as_of], [f"granted.{f}.{year}" for f in ("energy", "land")],
                                  by_district=True)
    # The alerts by district and level on the page's day and at each month's end, in one pass over the index.
    *levels, found = sedimentation.alert_counts(alerting.db, alerting.names, [*days, as_of], thresholds)
    idle = sedimentation.idle_quantities(alerting.db, alerting.names, as_of, thresholds)
    stage_bars = [(words.name("stage", s), int(now.get(f"stage.{s}", 0)), None) for s in reference.STAGES]
    library_bars = sorted(((words.name("library", lib), int(now.get(f"library.{lib}", 0)), f"/console/libraries/{lib}")
                           for lib in reference.LIBRARIES if now.get(f"library.{lib}")), key=lambda bar: -bar[1])
    usage_bars = {f: quota_bars(view.of(factor_ledger.FactorLedger), by_district, f, year, as_of, words)
                  for f in ("energy", "land")}
    tiles = district_map(found, as_of, words)
    return {
        "figures": figures(now, found, idle, as_of, year, words),
        "map": tiles,
        "map_rows": [(t.full_name, t.red, t.yellow) for t in tiles],
        "alert_trend": alert_trend(days, levels, words),
        "investment_trend": investment_trend(days, sums, year, words),
        "usage_trend": usage_trend(days, sums, year, words),
        "stage_bars": stage_bars, "stage_rows": [(label, figure(Decimal(n))) for label, n, _ in stage_bars],
        "library_bars": library_bars, "library_rows": [(label, figure(Decimal(n))) for label, n, _ in library_bars],
        "usage_bars": usage_bars,
        "usage_rows": {f: [(label, "—" if quota is None else figure(quota, 1), figure(granted, 1))
                           for label, quota, granted, _ in bars] for f, bars in usage_bars.items()},
        "ranking_bars": [(f"{row.rank}. {words.short(row.district)}", row.score,
                          link("/console/alerts", as_of=as_of, district=row.district)) for row in ranking],
        "alert_total": sum(found.values()),
    }


def figures(now: dict[str, Decimal], found: Counter[tuple[str, str]], idle: dict[str, Decimal], as_of: date,
            year: int, words: Words) -> list[Figure]:
    """The key figures (项目数, 总投资, 开工率, 投资完成率, 红/黄预警, idle factors), each linking to its list."""
    projects, started = now.get("projects", Decimal(0)), now.get("started", Decimal(0))
    planned, completed = now.get(f"planned.{year}", Decimal(0)), now.get(f"completed.{year}", Decimal(0))
    red = sum(n for (_, level), n in found.items() if level == "red")
    yellow = sum(n for (_, level), n in found.items() if level == "yellow")
    alerts = "/console/alerts"
    tiles = [
        Figure(words("Projects"), figure(projects), "", "/console/libraries/municipal",
               note=words("registered, not cancelled")),
        Figure(words("Total investment"), figure(now.get("investment", Decimal(0)) / WAN_PER_YI, 2),
               words("CNY 100 million"), "/console/libraries/municipal"),
        Figure(words("Share started"), percent(share(started, projects)), "",
               link(alerts, as_of=as_of, rule="not_started"), note=f"{figure(started)} / {figure(projects)}"),
        Figure(words("Investment completed"), percent(share(completed, planned)), "",
               link(alerts, as_of=as_of, rule="lagging"),
               note=f"{figure(completed / WAN_PER_YI, 2)} / {figure(planned / WAN_PER_YI, 2)}"
                    f"{words('CNY 100 million')} · {year}"),
        Figure(words("Red alerts"), figure(Decimal(red)), "", link(alerts, as_of=as_of, level="red"),
               tone="red" if red else "green"),
        Figure(words("Yellow alerts"), figure(Decimal(yellow)), "", link(alerts, as_of=as_of, level="yellow"),
               tone="yellow" if yellow else "green"),
    ]
    for factor, label in (("funds", "Idle funds"), ("land", "Idle land"), ("energy", "Idle energy quota")):
        quantity = idle.get(factor, Decimal(0))
        if factor == "funds" and quantity >= WAN_PER_YI:  # as a report writes money: 亿元 from one 亿
            shown, unit = figure(quantity / WAN_PER_YI, 2), words("CNY 100 million")
        else:
            shown, unit = figure(quantity, 0 if factor == "funds" else 1), words.name("unit", factor)
        tiles.append(Figure(words(label), shown, unit, link(alerts, as_of=as_of, rule=IDLE_RULE[factor]),
                            tone="red" if quantity else "green"))
    return tiles


def district_map(found: Counter[tuple[str, str]], as_of: date, words: Words) -> list[charts.Tile]:
    """Each area's tile: red if it has a red alert on the day, yellow if only yellow ones, green if none."""
    tiles = []
    for district, (column, row) in PLACES.items():
        red, yellow = found[(district, "red")], found[(district, "yellow")]
        level = "red" if red else "yellow" if yellow else "green"
        counts = words("R{red} Y{yellow}").format(red=red, yellow=yellow) if red or yellow else words("no alert")
        tiles.append(charts.Tile(column, row, words.short(district), words.name("district", district), level, red,
                                 yellow, link("/console/alerts", as_of=as_of, district=district), counts))
    return tiles


def months_of(days: Sequence[date], href: Callable[[date], str], words: Words) -> list[charts.Month]:
    return [charts.Month(str(d.month), href(d), d.isoformat()) for d in days]


def alert_trend(days: Sequence[date], levels: Sequence[Counter[tuple[str, str]]], words: Words) -> dict[str, Any]:
    """Red and yellow alerts at each month's end, each month leading to the alerts of that day."""
    months = months_of(days, lambda d: link("/console/alerts", as_of=d), words)
    red = [sum(n for (_, level), n in counts.items() if level == "red") for counts in levels]
    yellow = [sum(n for (_, level), n in counts.items() if level == "yellow") for counts in levels]
    return {"months": months,
            "chart": charts.columns(months, [("red", words.name("level", "red"), red),
                                             ("yellow", words.name("level", "yellow"), yellow)],
                                    words("Alerts at each month's end")) if days else None,
            "rows": [(d.isoformat(), red[n], yellow[n]) for n, d in enumerate(days)]}


def investment_trend(days: Sequence[date], sums: dict[tuple[str, str | None], list[Decimal]], year: int,
                     words: Words) -> dict[str, Any]:
    """Investment completed in `year` as reported by each month's end, against the plan known then times the
    share of the year gone (序时进度: plan × month / 12), in 亿元."""
    completed = sums.get((f"completed.{year}", None), [Decimal(0)] * (len(days) + 1))
    planned = sums.get((f"planned.{year}", None), [Decimal(0)] * (len(days) + 1))
    done = [completed[n] / WAN_PER_YI for n in range(len(days))]
    due = [planned[n] * Decimal(d.month) / 12 / WAN_PER_YI for n, d in enumerate(days)]
    months = months_of(days, lambda d: link("/console/alerts", as_of=d, rule="lagging"), words)
    return {"chart": charts.lines(months, [("planned", words("time-proportional plan"), due),
                                           ("completed", words("completed"), done)],
                                  words("Investment completed against the time-proportional plan"))
            if days else None,
            "rows": [(d.isoformat(), figure(due[n], 2), figure(done[n], 2), percent(share(done[n], due[n])))
                     for n, d in enumerate(days)]}


def usage_trend(days: Sequence[date], sums: dict[tuple[str, str | None], list[Decimal]], year: int,
                words: Words) -> dict[str, Any]:
    """How much of each factor granted is in use at each month's end: funds disbursed, land and energy of
    projects whose construction has started; each month leading to the factor ledger of that day."""
    series, rows = [], []
    for factor in FOLLOWED:
        granted = sums.get((f"granted.{factor}", None))
        used = sums.get((f"used.{factor}", None))
        rates = [share(used[n] if used else Decimal(0), granted[n]) if granted else None for n in range(len(days))]
        series.append((factor, words.name("factor", factor), rates))
        unit = words.name("unit", factor)
        rows.append((words.name("factor", factor), unit,
                     [f"{figure(used[n] if used else Decimal(0))} / {figure(granted[n])}" if granted else "—"
                      for n in range(len(days))]))
    months = months_of(days, lambda d: link("/console/ledger", as_of=d, year=year), words)
    return {"chart": charts.lines(months, series, words("Share of the granted factors in use"), "%",
                                  top=100)
            if days else None,
            "days": [d.isoformat() for d in days], "rows": rows}


def quota_bars(ledger: Tables, by_district: dict[tuple[str, str | None], list[Decimal]], factor: str, year: int,
               as_of: date, words: Words) -> list[tuple[str, Decimal | None, Decimal, str]]:
    """Per district: the year's quota of `factor` (as set today: a quota keeps no business date) and what was
    granted against it by `as_of`."""
    quotas = cockpit.quotas(ledger, year, factor)
    granted = {d: values[-1] for (m, d), values in by_district.items() if m == f"granted.{factor}.{year}" and d}
    return [(words.short(d), quotas.get(d), granted.get(d, Decimal(0)),
             link("/console/ledger", year=year, district=d, factor=factor, as_of=as_of))
            for d in reference.DISTRICTS if d in quotas or granted.get(d)]
