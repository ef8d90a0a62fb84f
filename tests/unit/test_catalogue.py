"""One catalogue for names (issue 20): every code of every kind has its Chinese name and its English one
in the Babel catalogues (`kind.code`), and the catalogue names no code that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.pofile import read_po

from api.console.finding import DATA_KINDS
from domain import reference
from domain.alerts import CHANGES, MONITOR_DEPARTMENT
from domain.commands import COMMANDS
from domain.policy import WARNING_CODES
from domain.project import STATUSES
from domain.receipt import CHANNELS
from domain.rejections import REJECTION_CODES
from domain.skips import EVENT_SKIPPED, OPERATOR_DEPARTMENT
from domain.supervision import LEVELS, RULES
from infra.catalogue import KINDS, LOCALE, LOCALES, name_of, translations
from projections.catalog import PROJECTIONS
from projections.listing import MEASURED
from projections.supervision import CASE_STATUSES

#: Every code of every kind the console, the exports and the texts show by name.
CODES: dict[str, tuple[str, ...]] = {
    "district": (reference.CITY_CODE, *reference.DISTRICTS),
    "sector": tuple(reference.SECTORS),
    "library": tuple(reference.LIBRARIES),
    "department": (*reference.DEPARTMENTS, *(reference.district_portal(d) for d in reference.DISTRICTS),
                   MONITOR_DEPARTMENT, OPERATOR_DEPARTMENT),
    "stage": reference.STAGES,
    "factor": (*reference.FACTORS, "special_bond"),  # v1.2: special-bond quotas (quota.set, allocation.adopted)
    "status": tuple(STATUSES),
    "rule": RULES,
    "level": LEVELS,
    "change": CHANGES,
    "source": reference.FUND_SOURCES,
    "issue_level": reference.ISSUE_LEVELS,
    "rejection": tuple(REJECTION_CODES),
    "warning": tuple(WARNING_CODES),
    "message": (*COMMANDS, *(f"alert.{change}" for change in CHANGES), EVENT_SKIPPED),
    "nature": (reference.EPIDEMIC_SUPPLIES,),
    "utility": reference.UTILITIES,
    "read_model": tuple(p.name for p in PROJECTIONS),
    "read_model_state": ("building", "active", "retired"),
    "channel": CHANNELS,
    "unit": MEASURED,
    "outcome": reference.CASE_OUTCOMES,
    "case_status": CASE_STATUSES,
    # Issue 22: a grant's particulars in words on the project page and a rejected message's fields.
    "data_kind": DATA_KINDS,
    "land_method": reference.LAND_METHODS,
    "talent_role": reference.TALENT_ROLES,
}
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def test_every_code_of_every_kind_has_a_chinese_and_an_english_name() -> None:
    assert set(CODES) == set(KINDS)
    missing = [f"{lang}: {kind}.{code}" for kind, codes in CODES.items() for code in codes for lang in ("zh", "en")
               if translations(lang).gettext(f"{kind}.{code}") == f"{kind}.{code}"]
    assert not missing, missing
    assert all(CHINESE.search(name_of(kind, code, "zh")) for kind, codes in CODES.items() for code in codes)


def test_the_catalogue_names_only_codes_that_exist() -> None:
    for lang in LOCALES.values():
        with (LOCALE / lang / "LC_MESSAGES" / "messages.po").open("rb") as po:
            keys = [str(m.id) for m in read_po(po) if m.id]
        names = [key for key in keys if "." in key and " " not in key and key.partition(".")[0] in KINDS]
        stale = [key for key in names if key.partition(".")[2] not in CODES[key.partition(".")[0]]]
        assert names and not stale, (lang, stale)


def test_names_read_as_they_did() -> None:
    """Moved from Python dicts into the catalogue, the names did not change (the exports' English pins them)."""
    assert [name_of("district", "620102"), name_of("district", "620171", "en")] == ["城关区", "Lanzhou New Area"]
    assert [name_of("department", "finance", "en"), name_of("sector", "C", "en")] == ["Finance", "C 制造业"]
    assert name_of("department", "district:620102") == "城关区门户"
    assert [name_of("factor", "utilities", "en"), name_of("message", "alert.cleared")] == ["utilities", "预警解除"]
    assert [name_of("rule", "not_started", "en"), name_of("level", "purple"), name_of("level", None)] == [
        "not started", "purple", ""]


def test_no_name_is_written_outside_the_catalogue() -> None:
    """The domain's reference tables hold codes only: a name in Python would be a second catalogue."""
    for table in (reference.DISTRICTS, reference.SECTORS, reference.LIBRARIES, reference.DEPARTMENTS):
        assert isinstance(table, tuple) and not any(CHINESE.search(code) for code in table)
    assert not list(Path(reference.__file__).parent.parent.glob("domain/names.py"))
