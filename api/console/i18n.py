"""The console's languages: one message catalogue (Simplified Chinese for the English msgids), read with
Babel at start-up, and one Jinja2 environment per language with its gettext and code names installed."""

from __future__ import annotations

import gettext
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Final

import jinja2
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from api.console import charts
from domain import reference
from domain.names import name_of
from domain.policy import WARNING_CODES
from domain.reference import CITY_TZ
from domain.supervision import LEVELS, RULES

HERE = Path(__file__).resolve().parent
LANGUAGES: Final = ("zh", "en")
DEFAULT: Final = "zh"


@cache
def translations(lang: str) -> gettext.NullTranslations:
    if lang == "en":
        return gettext.NullTranslations()  # the msgids are the English
    from io import BytesIO

    with (HERE / "locale" / "zh_CN" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalogue = read_po(po, locale="zh_CN")
    compiled = BytesIO()
    write_mo(compiled, catalogue)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def number(value: Any, places: int = 0) -> str:
    if value is None or value == "":
        return "—"
    return f"{Decimal(str(value)):,.{places}f}"


def when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(CITY_TZ).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and len(value) >= 16 and value[10] == "T":
        return when(datetime.fromisoformat(value))
    return str(value) if value is not None else "—"


@cache
def environment(lang: str) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             extensions=["jinja2.ext.i18n"], undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(name=lambda code, kind: name_of(kind, code, lang), number=number, when=when)
    env.globals.update(lang=lang, charts=charts, districts_all=list(reference.DISTRICTS),
                       sectors_all=list(reference.SECTORS), departments_all=list(reference.DEPARTMENTS),
                       libraries_all=list(reference.LIBRARIES), factors_all=list(reference.FACTORS),
                       rules_all=list(RULES), levels_all=list(LEVELS), warnings_all=list(WARNING_CODES))
    return env
