"""The one catalogue of what supervisors read (措辞与名称): names of codes and the domain's texts, in
Chinese and in English.

Texts are Babel message catalogues under `infra/locale/`: `zh_CN` (the console's English msgids, and
every name and text code) and `en` (every name and text code). A code's name is the msgid `kind.code`
(`district.620102`), shown by `name_of(kind, code, lang)`: the one way to show a code. A text is said
by its code and parameters (`domain.texts.Detail`): `said(code, params, lang)`; a placeholder may name
the kind of code it holds (`{factors:factor}`), shown by `name_of`. A new code needs its entry in both
files (tests/unit/test_catalogue.py and test_texts.py fail without).
"""

from __future__ import annotations

import gettext
import hashlib
import string
import unicodedata
from functools import cache, lru_cache
from io import BytesIO
from pathlib import Path
from typing import Any, Final, Iterable, Mapping

import orjson
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from domain.audit import PolicyWarning
from domain.texts import Detail

#: The kinds of code the catalogue names: each code's name is the msgid `kind.code` (`district.620102`,
#: `factor.land`, `message.alert.cleared`); a text's code never starts with a kind.
KINDS: Final = ("district", "sector", "library", "department", "stage", "factor", "status", "rule", "level",
                "change", "source", "issue_level", "rejection", "warning", "message", "nature", "utility",
                "read_model", "read_model_state", "channel", "unit", "outcome", "case_status", "data_kind",
                "land_method", "talent_role")


@lru_cache(maxsize=8192)  # a list names the same few hundred codes again and again
def name_of(kind: str, code: str | None, lang: str = "zh") -> str:
    """How a code is shown: its name in the language asked for, or the code itself if it has none."""
    if code is None:
        return ""
    key = f"{kind}.{code}"
    name = translations(lang).gettext(key)
    if name != key:
        return name
    return code if lang == "zh" else code.replace("_", " ")


LOCALE = Path(__file__).resolve().parent / "locale"
#: The catalogue of each language the console and the exports speak.
LOCALES: Final = {"zh": "zh_CN", "en": "en"}


@cache
def _catalogue(lang: str) -> Catalog:
    """The language's `.po` file, read once."""
    with (LOCALE / LOCALES[lang] / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po, locale=LOCALES[lang])


@cache
def translations(lang: str) -> gettext.GNUTranslations:
    """The language's catalogue (a msgid it lacks is said as itself: the console's English)."""
    compiled = BytesIO()
    write_mo(compiled, _catalogue(lang))
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


@cache
def text_codes(lang: str = "en") -> frozenset[str]:
    """Every text code the language's catalogue says (a msgid with a dot and no space, not a code's name)."""
    return frozenset(str(m.id) for m in _catalogue(lang) if m.id and " " not in str(m.id) and "." in str(m.id)
                     and m.string and str(m.id).partition(".")[0] not in KINDS)


def joined(items: Iterable[str], lang: str) -> str:
    """Several names or values in one text: 土地、能耗 / land, energy."""
    return ("、" if lang == "zh" else ", ").join(items)


class _Wording(string.Formatter):
    """Fills a text's placeholders: `{name:kind}` shows a code (or a list of codes) by its name."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec in KINDS:
            codes = value if isinstance(value, (list, tuple)) else [value]
            return joined((inert(name_of(format_spec, str(c), self.lang)) for c in codes), self.lang)
        if isinstance(value, (list, tuple)):
            return joined((inert(str(v)) for v in value), self.lang)
        return inert(super().format_field(value, format_spec))


_WORDINGS: Final = {lang: _Wording(lang) for lang in LOCALES}


def inert(text: str) -> str:
    """A parameter as a text quotes it: what a sender sent may hold control or bidirectional-format
    characters (U+202E turns a line around), each written as its escape, as `repr` would."""
    if text.isprintable():  # no control or format character is printable: most texts end here
        return text
    return "".join(f"\\u{ord(ch):04x}" if unicodedata.category(ch) in ("Cc", "Cf") else ch for ch in text)


def said(code: str, params: Mapping[str, Any], lang: str = "en") -> str:
    """A text in the language asked for; a code the catalogue lacks is said as the code itself."""
    template = _template(code, lang)
    return code if template is None else _filled(template, params, lang)[0]


def said_around(code: str, params: Mapping[str, Any], gap: str, lang: str = "en") -> list[str] | None:
    """A text said but for the number in its placeholder `gap`: the words around it, so that
    `str(n).join(parts)` says it with `n` there (None: the catalogue lacks the code, or formats `gap`)."""
    template = _template(code, lang)
    return None if template is None else _filled(template, params, lang, gap)


def _filled(template: Template, params: Mapping[str, Any], lang: str, gap: str | None = None) -> list[str] | None:
    wording = _WORDINGS[lang]
    parts, pieces = [], []
    for literal, name, spec, conversion in template:
        pieces.append(literal)
        if name is None:
            continue
        if name == gap:
            if spec or conversion is not None:
                return None
            parts.append("".join(pieces))
            pieces = []
            continue
        value = params[name]
        if value.__class__ is str and not spec and conversion is None and value.isprintable():
            pieces.append(value)  # most placeholders (a code, a day): as `format_field` would say them, sooner
        else:
            pieces.append(wording.format_field(wording.convert_field(value, conversion), spec))
    parts.append("".join(pieces))
    return parts


@cache
def edition(lang: str) -> str:
    """A digest of everything the language's catalogue says: what keeps words said once (the alert index)
    knows when they are to be said again."""
    return hashlib.sha256(orjson.dumps(sorted((str(m.id), str(m.string)) for m in _catalogue(lang) if m.id)))\
        .hexdigest()[:16]


#: A text's wording parsed once: (literal, placeholder, kind, conversion) pieces; None for a code the
#: catalogue lacks.
Template = tuple[tuple[str, str | None, str, str | None], ...]


@cache
def _template(code: str, lang: str) -> Template | None:
    wording = translations(lang).gettext(code)
    if wording == code:
        return None
    return tuple((literal, name, spec or "", conversion) for literal, name, spec, conversion
                 in string.Formatter().parse(wording))


def say(text: Detail | str, lang: str = "en") -> str:
    """What the domain said, in words; the words an older event recorded stay as they were."""
    return text if isinstance(text, str) else said(text.code, text.params, lang)


def detail_json(text: Detail | str, key: str = "detail") -> dict[str, Any]:
    """A text as the API gives it: in English under `key`, with `detail_code` and `detail_params`
    (null for the words an older event recorded)."""
    if isinstance(text, str):
        return {key: text, "detail_code": None, "detail_params": None}
    return {key: say(text), **text.json()}


def warning_json(warning: PolicyWarning) -> dict[str, Any]:
    """A warning as the API gives it: its code, and its reason."""
    return {"code": warning.code, **detail_json(warning.reason, "reason")}
