"""The overview's server-drawn charts (api/console/charts.py) and the days its trends show: properties over
any figures, not one demo's."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from api.console import charts
from api.console.cockpit import PLACES, SHORT_NAMES, Words, figures, month_days
from domain import reference

scores = st.lists(st.decimals(min_value=0, max_value=100, places=1), min_size=2, max_size=13)
amounts = st.decimals(min_value=0, max_value=Decimal("1e12"), places=2)
days = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))


def coordinates(svg: str, name: str) -> list[float]:
    return [float(v) for v in re.findall(rf'\b{name}="(-?[\d.]+)"', svg)]


@given(scores)
def test_ranked_bars_begin_below_the_lowest_score_and_show_the_spread(values: list[Decimal]) -> None:
    """Issue 22: bars from zero made 88 and 98 look alike. The axis begins at or below the lowest score (never
    below zero), and where scores are close the bars' lengths differ by much more than the scores do."""
    start = charts.axis_start(values)
    low, high = float(min(values)), float(max(values))
    assert 0 <= start <= low
    if low - start > 0 and high > low:
        assert (high - start) / (low - start) >= high / low


def test_88_and_98_look_apart() -> None:
    svg = str(charts.ranked([("甲", 98, None), ("乙", 88, None)], "排名", "坐标轴起点"))
    longer, shorter = (float(w) for w in re.findall(r'<rect class="score"[^>]* width="([\d.]+)"', svg))
    assert longer / shorter > 1.5  # from zero: 98/88 = 1.11
    assert "坐标轴起点" in svg


@given(st.lists(st.tuples(st.text(min_size=1, max_size=12), amounts), max_size=13))
def test_bars_stay_on_the_canvas_escape_their_text_and_never_print_an_exponent(rows: list[tuple[str, Decimal]]) -> None:
    svg = str(charts.bars([(label, value, "/console/alerts?a=1&b=<2>") for label, value in rows], "<标题>"))
    assert "E+" not in svg and "e+" not in svg and "<script" not in svg and "<标题>" not in svg
    ends = [x + w for x, w in zip(coordinates(svg, "x")[1::3], coordinates(svg, "width"))]
    assert all(0 <= end <= charts.WIDTH for end in ends)


@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)), min_size=1, max_size=12))
def test_columns_and_lines_stay_inside_their_plot(counts: list[tuple[int, int]]) -> None:
    months = [charts.Month(str(n + 1), f"/console/alerts?as_of=2021-{n + 1:02d}-28", "") for n in range(len(counts))]
    columns = str(charts.columns(months, [("red", "红", [r for r, _ in counts]), ("yellow", "黄", [y for _, y in counts])],
                                 "各月末预警数"))
    bottom = charts.PLOT_TOP + charts.PLOT_HEIGHT
    tops = [float(y) for y in re.findall(r'<rect class="(?:red|yellow)"[^>]* y="([\d.]+)"', columns)]
    assert all(charts.PLOT_TOP - 0.1 <= y <= bottom for y in tops)
    lines = str(charts.lines(months, [("funds", "资金", [r / 100 for r, _ in counts])], "使用", "%", top=100))
    assert all(charts.PLOT_TOP - 0.1 <= y <= bottom for y in coordinates(lines, "cy"))
    assert lines.count("<circle") == len(counts) and lines.count("<a href=") >= len(counts)


def test_chart_text_is_legible_on_a_phone() -> None:
    """Chart text was about 8 px: on a card 300 px wide (a phone) a chart's text is at least 12 px."""
    assert charts.FONT * 300 / charts.WIDTH >= 12


def test_the_map_has_a_tile_for_each_area_each_in_its_own_place() -> None:
    assert set(PLACES) == set(SHORT_NAMES) == set(reference.DISTRICTS)
    assert len(set(PLACES.values())) == len(PLACES)
    assert all((column + 1) * (charts.TILE_W + charts.GAP) <= charts.WIDTH for column, _ in PLACES.values())
    north, west, east = PLACES["620121"][1], PLACES["620111"][0], PLACES["620123"][0]
    assert north < PLACES["620102"][1] and west < PLACES["620102"][0] < east  # 永登 north, 红古 west, 榆中 east


def test_a_tile_without_alerts_is_green() -> None:
    tile = charts.Tile(0, 0, "城关区", "城关区", "green", 0, 0, "/console/alerts?district=620102", "无预警")
    assert '<g class="tile green">' in str(charts.cartogram([tile], "预警分布"))


@given(days, st.integers(-2, 2))
def test_a_trend_shows_each_month_end_up_to_the_day_and_the_day_itself(as_of: date, offset: int) -> None:
    year = as_of.year + offset
    shown = month_days(year, as_of)
    assert shown == sorted(shown) and all(d <= as_of and d.year == year for d in shown)
    assert all((d + timedelta(days=1)).day == 1 for d in shown[:-1])
    if year < as_of.year:
        assert len(shown) == 12
    elif year == as_of.year:
        assert shown[-1] == as_of and len(shown) == as_of.month
    else:
        assert shown == []


@given(amounts)
def test_numbers_are_written_with_separators_not_exponents(value: Decimal) -> None:
    written = charts.number(value)
    assert "E" not in written and "e" not in written
    assert Decimal(written.replace(",", "")) == value.quantize(Decimal("0.1")) or Decimal(written.replace(",", "")) == value


def test_idle_money_is_written_as_a_report_writes_money() -> None:
    """From one 亿 up, the idle-money tile is in 亿元 (126,875 万元 reads 12.69 亿元); below, in 万元."""
    def tile(wan: str) -> tuple[str, str]:
        found = figures({}, Counter(), {"funds": Decimal(wan)}, date(2026, 12, 3), 2026, Words("zh"))
        money = next(f for f in found if f.label == "沉淀资金")
        return money.value, money.unit

    assert tile("126875") == ("12.69", "亿元")
    assert tile("9999") == ("9,999", "万元")
