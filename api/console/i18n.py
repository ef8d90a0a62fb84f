"""The console's languages: the one message catalogue (`infra.catalogue`: Simplified Chinese for the
English msgids), and one Jinja2 environment per language with its gettext and code names installed."""

from __future__ import annotations

from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any, Final, Mapping

import jinja2

from api.console import casework, charts
from domain import reference
from domain.policy import WARNING_CODES
from domain.reference import CITY_TZ
from domain.supervision import LEVELS, RULES
from domain.texts import Detail
from infra import figures
from infra.catalogue import name_of, say, translations
from projections.listing import MEASURED, spoken

HERE = Path(__file__).resolve().parent
LANGUAGES: Final = ("zh", "en")
DEFAULT: Final = "zh"


def number(value: Any, places: int = 0) -> str:
    return figures.grouped(value, places)


def when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(CITY_TZ).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and len(value) >= 16 and value[10] == "T":
        return when(datetime.fromisoformat(value))
    return str(value) if value is not None else "—"


def worded(value: Any, lang: str, key: str = "detail") -> str:
    """A text in the page's language: a `Detail`, or an item of the API with `detail_code` (else its
    words under `key`, as an older event recorded them)."""
    if isinstance(value, Detail):
        return say(value, lang)
    if isinstance(value, Mapping):
        return str(spoken(value, key, lang) or "")
    return "" if value is None else str(value)


@cache
def environment(lang: str) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             extensions=["jinja2.ext.i18n"], undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(name=lambda code, kind: name_of(kind, code, lang), number=number, when=when,
                       said=lambda value, key="detail": worded(value, lang, key),
                       percent=figures.percent, figure=figures.figure, count=figures.count,
                       money=lambda wan: figures.money(wan, lang),
                       measure=lambda value, factor: figures.with_unit(value, factor, lang),
                       unit=lambda factor: name_of("unit", factor, lang) if factor in MEASURED else "")
    env.globals.update(lang=lang, charts=charts, districts_all=list(reference.DISTRICTS),
                       sectors_all=list(reference.SECTORS), departments_all=list(reference.DEPARTMENTS),
                       libraries_all=list(reference.LIBRARIES), factors_all=list(reference.FACTORS),
                       rules_all=list(RULES), levels_all=list(LEVELS), warnings_all=list(WARNING_CODES),
                       # Which supervision form a token is offered (api/console/supervision_forms.py).
                       may_assign=casework.may_assign, may_respond=casework.may_respond, may_close=casework.may_close)
    return env
