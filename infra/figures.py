"""Figures as Chinese reports write them (数字的写法): one function per kind of figure, used by the console
and the downloads alike.

- A count is a whole number with thousands separators: 3,016.
- An amount is grouped to the decimals of its kind, never in exponent notation (`2E+4` is 20,000).
- A rate is a percentage: 0.853 is 85.3%.
- A quantity of a factor carries its unit from the catalogue (`unit.<factor>`): 1,385.5 亩, 4,400 吨标煤;
  a factor that is counted (data, talent, utilities ...) has no quantity, only a number of grants.
- Money is in 万元, and in 亿元 from one 亿 (10,000 万元) where a figure stands alone (a tile, a total).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Final

from infra.catalogue import name_of, translations

#: The factors measured in a unit; the others are counted (a grant of data or talent has no quantity).
MEASURED: Final = ("funds", "land", "energy", "emission", "special_bond")
#: Decimals of each factor's quantity: 万元 to the unit, 亩 and 吨标煤 to a tenth.
PLACES: Final = {"funds": 0, "special_bond": 0, "land": 1, "energy": 1, "emission": 1}
#: Decimals of each kind of amount of a list's column (`projections.listing.Column.kind`).
KIND_PLACES: Final = {"money": 0, "area": 1, "energy": 1, "quantity": 1, "number": 1}
#: 万元 in one 亿元.
WAN_PER_YI: Final = Decimal(10000)
#: Decimals of a percentage.
PERCENT_PLACES: Final = 1


def decimal(value: Any) -> Decimal | None:
    """A figure as an exact decimal (a float by its shortest text, so 0.1 stays 0.1); None if it is none."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        found = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        return None
    return found if found.is_finite() else None


def grouped(value: Any, places: int = 0) -> str:
    """An amount with thousands separators, to `places` decimals, never `E+`: 20,000 · 1,385.5; — if none."""
    found = decimal(value)
    if found is None:
        return "—"
    shown = f"{found:,.{places}f}"
    return shown[1:] if shown.startswith("-") and decimal(shown.replace(",", "")) == 0 else shown  # never -0


def count(value: Any) -> str:
    """A number of things (projects, grants, alerts): whole, grouped."""
    return grouped(value, 0)


def percent_of(fraction: Any) -> Decimal | None:
    """A rate (a fraction) as the number of its percentage, to its decimals: 0.8534 is 85.3."""
    found = decimal(fraction)
    return None if found is None else (found * 100).quantize(Decimal(1).scaleb(-PERCENT_PLACES))


def percent(fraction: Any) -> str:
    """A rate as a percentage: 0.8534 is 85.3%."""
    found = percent_of(fraction)
    return "—" if found is None else f"{grouped(found, PERCENT_PLACES)}%"


def measured(factor: str | None) -> bool:
    return factor in MEASURED


def quantity(value: Any, factor: str | None) -> str:
    """A quantity of a factor grouped to its unit's decimals (without the unit: a column's header or a
    row's unit states it); a counted factor has none (—)."""
    if not measured(factor):
        return "—"
    return grouped(value, PLACES[factor])  # type: ignore[index]


def with_unit(value: Any, factor: str | None, lang: str) -> str:
    """A quantity of a factor with its unit: 1,385.5 亩, 4,400.0 吨标煤 (money by `money`)."""
    if factor in ("funds", "special_bond"):
        return money(value, lang)
    shown = quantity(value, factor)
    return shown if shown == "—" else f"{shown} {name_of('unit', factor, lang)}"


def money(wan: Any, lang: str) -> str:
    """An amount of money in 万元 standing alone: in 亿元 (to two decimals) from one 亿, else in 万元."""
    found = decimal(wan)
    if found is None:
        return "—"
    if abs(found) >= WAN_PER_YI:
        return f"{grouped(found / WAN_PER_YI, 2)} {translations(lang).gettext('100M yuan')}"
    return f"{grouped(found, 0)} {name_of('unit', 'funds', lang)}"


def figure(value: Any) -> Any:
    """A cell of a plain table: a whole number grouped, another number grouped to a tenth, text as it is."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return value
    found = decimal(value)
    if found is None:
        return "—"
    return grouped(found, 0 if found == found.to_integral_value() else 1)
