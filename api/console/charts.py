"""Charts as SVG drawn on the server: what a leader reads at a glance, each mark with its number and a link
to the list behind it.

No script, no web font, nothing fetched: the SVG is part of the page, its text escaped like any other.
Styling comes from classes in `static/console.css` (the CSP allows no inline style). Every chart is drawn
on a narrow canvas (`WIDTH` units) and scaled to its card: its text (`FONT` units) stays legible on a
phone (a card about 300 px wide: 12.5 px) and, the chart's width being capped by the CSS, on a wide
screen too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable, Sequence

from markupsafe import Markup, escape

#: The canvas every chart is drawn on (viewBox units), and its text's size in those units.
WIDTH, FONT = 360, 15
ROW, BAR = 26, 18
VALUE_SPACE = 74
Number = float | Decimal | int


def text_width(text: str) -> float:
    """About how wide a text is, in units of the canvas: a Chinese character a full em, others about half."""
    return sum(FONT if ord(c) >= 0x2E80 else FONT * 0.6 for c in text)


LABEL_ROOM = 210


def label_room(labels: Iterable[str]) -> int:
    """The room the row labels take on the left: the longest label's, within bounds (a longer one is
    shortened, see `fitted`; its whole text is in the mark's tip)."""
    return int(min(LABEL_ROOM, max(60, max((text_width(t) for t in labels), default=0) + 10)))


def fitted(text: str, room: float) -> str:
    """The text, shortened with an ellipsis to fit `room` units if it does not."""
    if text_width(text) <= room:
        return text
    while text and text_width(text + "…") > room:
        text = text[:-1]
    return text + "…"


def _scale(values: Iterable[Number], label: int, room: int = VALUE_SPACE, start: float = 0.0) -> float:
    largest = max((float(v) for v in values), default=0.0)
    return (WIDTH - label - room) / (largest - start) if largest > start else 0.0


def _figure(height: float, title: str, body: list[str], kind: str = "") -> Markup:
    return Markup(f'<svg class="chart{" " + kind if kind else ""}" viewBox="0 0 {WIDTH} {height:.0f}" width="100%" '
                  f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>{"".join(body)}</svg>')


def _linked(mark: str, href: str | None) -> str:
    return f'<a href="{escape(href)}">{mark}</a>' if href else mark


def _label(y: float, text: str, href: str | None, label: int) -> str:
    shown = fitted(text, label - 8)
    return _linked(f'<text class="label" x="{label - 6}" y="{y + BAR - 4}" text-anchor="end">{escape(shown)}</text>',
                   href)


def number(value: Number, places: int = 1) -> str:
    """A figure as the charts print it: thousands separated, whole numbers without decimals."""
    figure = Decimal(str(value))
    if figure == figure.to_integral_value():
        return f"{figure:,.0f}"
    return f"{figure:,.{places}f}"


def bars(rows: Sequence[tuple[str, Number, str | None]], title: str, unit: str = "", kind: str = "bar") -> Markup:
    """One bar per row, from zero: (label, value, link)."""
    left = label_room(label for label, _, _ in rows)
    scale = _scale((v for _, v, _ in rows), left)
    body = []
    for n, (label, value, href) in enumerate(rows):
        y, length = n * ROW + 4, float(value) * scale
        bar = (f'<rect class="{kind}" x="{left}" y="{y}" width="{length:.1f}" height="{BAR}">'
               f'<title>{escape(label)}: {number(value)}{escape(unit)}</title></rect>')
        body += [_label(y, label, href, left), _linked(bar, href),
                 f'<text class="value" x="{left + length + 4:.1f}" y="{y + BAR - 4}">{number(value)}{escape(unit)}</text>']
    return _figure(len(rows) * ROW + 8, title, body)


def axis_start(values: Iterable[Number]) -> float:
    """Where bars comparing scores begin: a round number some way below the lowest, so that 88 and 98 look
    apart; zero when the scores spread from near it anyway (or there is one, or none)."""
    found = [float(v) for v in values]
    if len(found) < 2:
        return 0.0
    low, high = min(found), max(found)
    spread = high - low
    if spread == 0:
        return max(0.0, math.floor((low - 10) / 10) * 10)
    start = low - spread * 0.25
    step = 10 ** math.floor(math.log10(spread)) if spread >= 1 else 1
    start = math.floor(start / step) * step
    return max(0.0, start) if start < low else max(0.0, low - step)


def ranked(rows: Sequence[tuple[str, Number, str | None]], title: str, start_label: str) -> Markup:
    """Scores compared: bars from `axis_start` (not zero), the axis' start written under them with
    `start_label` (e.g. 「轴起点」), so nobody takes the bars' lengths for the scores."""
    start = axis_start(v for _, v, _ in rows)
    left = label_room(label for label, _, _ in rows)
    scale = _scale((v for _, v, _ in rows), left, start=start)
    body = []
    for n, (label, value, href) in enumerate(rows):
        y = n * ROW + 4
        length = max(2.0, (float(value) - start) * scale)
        bar = (f'<rect class="score" x="{left}" y="{y}" width="{length:.1f}" height="{BAR}">'
               f'<title>{escape(label)}: {number(value)}</title></rect>')
        body += [_label(y, label, href, left), _linked(bar, href),
                 f'<text class="value" x="{left + length + 4:.1f}" y="{y + BAR - 4}">{number(value)}</text>']
    bottom = len(rows) * ROW + 4
    body += [f'<line class="axis" x1="{left}" y1="0" x2="{left}" y2="{bottom}"/>',
             f'<text class="axis" x="{left}" y="{bottom + FONT + 2}" text-anchor="start">'
             f'{escape(start_label)} {number(start)}</text>']
    return _figure(bottom + FONT + 8, title, body, "ranked")


def paired(rows: Sequence[tuple[str, Number | None, Number, str | None]], title: str, unit: str, first: str,
           second: str) -> Markup:
    """Two thin bars per row, the quota over what was granted: (label, quota, granted, link)."""
    left = label_room(label for label, _, _, _ in rows)
    scale = _scale([*(q or 0 for _, q, _, _ in rows), *(g for _, _, g, _ in rows)], left, room=120)
    body = []
    for n, (label, quota, granted, href) in enumerate(rows):
        y = n * ROW + 4
        body.append(_label(y, label, href, left))
        half = BAR // 2
        for offset, value, kind, what in ((0, quota, "quota", first), (half, granted, "granted", second)):
            if value is not None:
                body.append(f'<rect class="{kind}" x="{left}" y="{y + offset}" width="{float(value) * scale:.1f}" '
                            f'height="{half - 1}"><title>{escape(label)} {escape(what)}: {number(value)}'
                            f'{escape(unit)}</title></rect>')
        shown = f"{number(granted)}/{number(quota)}" if quota is not None else number(granted)
        longest = max(float(quota or 0), float(granted)) * scale
        body.append(f'<text class="value" x="{left + longest + 4:.1f}" y="{y + BAR - 4}">{shown}</text>')
    return _figure(len(rows) * ROW + 8, title, body)


# --- by month: columns and lines over the months of a year ------------------------------------------------

PLOT_LEFT, PLOT_TOP, PLOT_HEIGHT = 46, 10, 150


@dataclass(frozen=True)
class Month:
    """A point of a trend: its label under the axis (the month), its link, and the day it stands for."""

    label: str
    href: str | None
    tip: str


def _nice_top(largest: float) -> float:
    if largest <= 0:
        return 1.0
    step = 10 ** math.floor(math.log10(largest))
    for factor in (1, 1.2, 1.5, 2, 3, 4, 5, 6, 8, 10):  # each half a round figure too
        if largest <= step * factor:
            return step * factor
    return step * 10


def _frame(months: Sequence[Month], top: float, unit: str) -> tuple[list[str], float, float]:
    """The grid, the value axis (0, half, top) and the month labels: the body so far, where the plot begins
    (after the axis' longest figure) and each month's width."""
    ticks = [f"{number(top * fraction)}{unit}" for fraction in (0, 0.5, 1)]
    left = max(PLOT_LEFT, max(text_width(t) for t in ticks) + 8)
    room = (WIDTH - left - 4) / max(len(months), 1)
    bottom = PLOT_TOP + PLOT_HEIGHT
    body = []
    for fraction, tick in zip((0, 0.5, 1), ticks):
        y = bottom - fraction * PLOT_HEIGHT
        body += [f'<line class="grid" x1="{left:.1f}" y1="{y:.1f}" x2="{WIDTH - 4}" y2="{y:.1f}"/>',
                 f'<text class="axis" x="{left - 4:.1f}" y="{y + 5:.1f}" text-anchor="end">{escape(tick)}</text>']
    for n, month in enumerate(months):
        x = left + room * (n + 0.5)
        body.append(_linked(f'<text class="axis" x="{x:.1f}" y="{bottom + FONT + 3}" text-anchor="middle">'
                            f'{escape(month.label)}</text>', month.href))
    return body, left, room


def columns(months: Sequence[Month], parts: Sequence[tuple[str, str, Sequence[int]]], title: str) -> Markup:
    """Stacked columns, one per month: `parts` are (class, what, a count per month), stacked in order."""
    totals = [sum(values[n] for _, _, values in parts) for n in range(len(months))]
    top = _nice_top(max(totals, default=0))
    body, left, room = _frame(months, top, "")
    bottom = PLOT_TOP + PLOT_HEIGHT
    width = min(room * 0.7, 22)
    for n, month in enumerate(months):
        x, y = left + room * (n + 0.5) - width / 2, float(bottom)
        marks = []
        for kind, what, values in parts:
            height = values[n] / top * PLOT_HEIGHT
            if values[n]:
                y -= height
                marks.append(f'<rect class="{kind}" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}">'
                             f'<title>{escape(month.tip)} {escape(what)}: {number(values[n])}</title></rect>')
        body.append(_linked("".join(marks), month.href))
    return _figure(bottom + FONT + 8, title, body, "trend")


def lines(months: Sequence[Month], series: Sequence[tuple[str, str, Sequence[Number | None]]], title: str,
          unit: str = "", top: float | None = None) -> Markup:
    """Lines over the months: `series` are (class, what, a value per month, None where there is none); each
    point a link to the month's list. `top`: the axis' top (a share: 100), else a round figure above all."""
    values = [float(v) for _, _, vs in series for v in vs if v is not None]
    top = top if top is not None and max(values, default=0) <= top else _nice_top(max(values, default=0))
    body, left, room = _frame(months, top, unit)
    bottom = PLOT_TOP + PLOT_HEIGHT
    for kind, what, vs in series:
        points = [(left + room * (n + 0.5), bottom - float(v) / top * PLOT_HEIGHT, v, n)
                  for n, v in enumerate(vs) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
            body.append(f'<polyline class="line {kind}" points="{path}"/>')
        for x, y, v, n in points:
            dot = (f'<circle class="dot {kind}" cx="{x:.1f}" cy="{y:.1f}" r="4"><title>{escape(months[n].tip)} '
                   f'{escape(what)}: {number(v)}{escape(unit)}</title></circle>')
            body.append(_linked(dot, months[n].href))
    return _figure(bottom + FONT + 8, title, body, "trend")


# --- the map: a tile cartogram of the city's areas ------------------------------------------------------

TILE_W, TILE_H, GAP = 70, 56, 2


@dataclass(frozen=True)
class Tile:
    """An area on the map: where its tile lies (column, row), its name (short, and full for the tip), its
    level on the day (red, yellow or green: none), its counts (and how the tile says them), and the link to
    its alerts."""

    column: int
    row: int
    name: str
    full_name: str
    level: str
    red: int
    yellow: int
    href: str
    counts: str


def cartogram(tiles: Sequence[Tile], title: str) -> Markup:
    """Each area a tile, placed roughly as the areas lie, coloured by its level, with its name and counts."""
    rows = max((t.row for t in tiles), default=0) + 1
    body = []
    for tile in tiles:
        x, y = tile.column * (TILE_W + GAP) + 1, tile.row * (TILE_H + GAP) + 1
        middle = x + TILE_W / 2
        body.append(_linked(
            f'<g class="tile {escape(tile.level)}"><title>{escape(tile.full_name)}: {escape(tile.counts)}</title>'
            f'<rect x="{x}" y="{y}" width="{TILE_W}" height="{TILE_H}" rx="4"/>'
            f'<text class="name" x="{middle}" y="{y + 23}" text-anchor="middle"{_squeezed(tile.name)}>'
            f'{escape(tile.name)}</text>'
            f'<text class="count" x="{middle}" y="{y + 45}" text-anchor="middle"{_squeezed(tile.counts)}>'
            f'{escape(tile.counts)}</text></g>', tile.href))
    return _figure(rows * (TILE_H + GAP) + 2, title, body, "map")


def _squeezed(text: str) -> str:
    """A text too wide for its tile is drawn narrower (its glyphs closer and slimmer), never smaller."""
    room = TILE_W - 6
    return f' textLength="{room}" lengthAdjust="spacingAndGlyphs"' if text_width(text) > room else ""
