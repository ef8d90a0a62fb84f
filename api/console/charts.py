"""Charts as SVG drawn on the server: bars a supervisor reads at a glance, each with its number and a link.

No script, no web font, nothing fetched: the SVG is part of the page, its text escaped like any other.
Styling comes from classes in `static/console.css` (the CSP allows no inline style).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Iterable, Sequence

from markupsafe import Markup, escape

WIDTH, LABEL, ROW, BAR = 720, 170, 26, 18
VALUE_SPACE = 90


def _scale(values: Iterable[float], room: int = VALUE_SPACE) -> float:
    largest = max((float(v) for v in values), default=0.0)
    return (WIDTH - LABEL - room) / largest if largest > 0 else 0.0


def _figure(height: int, title: str, body: list[str]) -> Markup:
    return Markup(f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
                  f'aria-label="{escape(title)}"><title>{escape(title)}</title>{"".join(body)}</svg>')


def _label(y: int, text: str, href: str | None) -> str:
    label = f'<text class="label" x="{LABEL - 8}" y="{y + BAR - 5}" text-anchor="end">{escape(text)}</text>'
    return f'<a href="{escape(href)}">{label}</a>' if href else label


def _number(value: float | Decimal) -> str:
    number = Decimal(str(value))
    return f"{number:,.0f}" if number == number.to_integral_value() else f"{number:,.1f}"


def bars(rows: Sequence[tuple[str, float | Decimal, str | None]], title: str, unit: str = "",
         kind: str = "bar") -> Markup:
    """One bar per row: (label, value, link)."""
    scale = _scale(v for _, v, _ in rows)
    body = []
    for n, (label, value, href) in enumerate(rows):
        y, length = n * ROW + 4, float(value) * scale
        bar = (f'<rect class="{kind}" x="{LABEL}" y="{y}" width="{length:.1f}" height="{BAR}">'
               f'<title>{escape(label)}: {_number(value)}{escape(unit)}</title></rect>')
        body += [_label(y, label, href), f'<a href="{escape(href)}">{bar}</a>' if href else bar,
                 f'<text class="value" x="{LABEL + length + 6:.1f}" y="{y + BAR - 5}">{_number(value)}{escape(unit)}</text>']
    return _figure(len(rows) * ROW + 8, title, body)


def stacked(rows: Sequence[tuple[str, Sequence[tuple[float, str, str]], str | None]], title: str) -> Markup:
    """Parts side by side on one bar per row: (label, [(value, class, what)], link)."""
    scale = _scale(sum(v for v, _, _ in parts) for _, parts, _ in rows)
    body = []
    for n, (label, parts, href) in enumerate(rows):
        y, x = n * ROW + 4, float(LABEL)
        body.append(_label(y, label, href))
        for value, kind, what in parts:
            if value:
                length = float(value) * scale
                body.append(f'<rect class="{kind}" x="{x:.1f}" y="{y}" width="{length:.1f}" height="{BAR}">'
                            f'<title>{escape(label)} {escape(what)}: {_number(value)}</title></rect>')
                x += length
        total = sum(v for v, _, _ in parts)
        body.append(f'<text class="value" x="{x + 6:.1f}" y="{y + BAR - 5}">{_number(total)}</text>')
    return _figure(len(rows) * ROW + 8, title, body)


def paired(rows: Sequence[tuple[str, float | Decimal | None, float | Decimal, str | None]], title: str,
           unit: str, first: str, second: str) -> Markup:
    """Two thin bars per row, the quota over what was granted: (label, quota, granted, link)."""
    scale = _scale([*(q or 0 for _, q, _, _ in rows), *(g for _, _, g, _ in rows)], room=190)
    body = []
    for n, (label, quota, granted, href) in enumerate(rows):
        y = n * ROW + 4
        body.append(_label(y, label, href))
        half = BAR // 2
        for offset, value, kind, what in ((0, quota, "quota", first), (half, granted, "granted", second)):
            if value is not None:
                body.append(f'<rect class="{kind}" x="{LABEL}" y="{y + offset}" width="{float(value) * scale:.1f}" '
                            f'height="{half - 1}"><title>{escape(label)} {escape(what)}: {_number(value)}'
                            f'{escape(unit)}</title></rect>')
        shown = f"{_number(granted)} / {_number(quota)}" if quota is not None else _number(granted)
        longest = max(float(quota or 0), float(granted)) * scale
        body.append(f'<text class="value" x="{LABEL + longest + 6:.1f}" y="{y + BAR - 5}">{shown}{escape(unit)}</text>')
    return _figure(len(rows) * ROW + 8, title, body)
