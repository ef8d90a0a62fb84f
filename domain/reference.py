"""Reference tables of the domain: areas, sectors, libraries, stages, factors, departments.

The codes only: what each is called, in Chinese and in English, is the catalogue's
(`infra.catalogue.name_of`, keyed `district.620102`).

Everything here comes from `docs/domain.md` (the seed 兰政办发〔2020〕149号). The tables are
plain data so that the API, the demo and the rules read the same source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta, timezone
from typing import Final

#: Business dates are read in the city's own time zone (China Standard Time).
CITY_TZ: Final = timezone(timedelta(hours=8))
#: Business years outside these are typing mistakes, and would overflow date arithmetic.
FIRST_YEAR: Final = 1990
LAST_YEAR: Final = 2100

#: Administrative areas of Lanzhou (the vertical axis, 一纵). Zones with no official code
#: carry a Yaosu-assigned code in the unused 62019x range.
#: Lanzhou itself: where a reduction is keyed when its enterprise's district is not given.
CITY_CODE: Final = "620100"

DISTRICTS: Final = (
    "620102", "620103", "620104", "620105", "620111", "620121", "620122",
    "620123", "620171", "620190", "620191", "620192", "620193",
)

#: GB/T 4754-2017 sections.
SECTORS: Final = (
    "A", "B", "C", "D", "E", "F", "G", "H", "I", "J",
    "K", "L", "M", "N", "O", "P", "Q", "R", "S", "T",
)

#: Reserve libraries (项目储备库). `municipal` is the 一纵一横 library itself: its members are
#: seen by district (vertical) and by owning department (horizontal).
LIBRARIES: Final = (
    "municipal", "fyp14", "rolling3y", "annual",
    "central_budget", "municipal_budget", "special_bond", "general_bond",
    "investment_attraction", "enterprise_bond", "green_fund",
)

STAGES: Final = ("planning", "generation", "approval", "construction", "completion")

FACTORS: Final = ("funds", "land", "energy", "emission", "data", "utilities", "talent", "coordination")

#: The factors the seed names for each stage (工作流程).
STAGE_FACTORS: Final[dict[str, tuple[str, ...]]] = {
    "planning": ("data", "coordination"),
    "generation": ("land", "funds", "coordination"),
    "approval": ("land", "funds", "energy", "emission", "data", "coordination"),
    "construction": ("funds", "data", "utilities", "talent", "coordination"),
    "completion": ("data", "utilities", "talent", "coordination"),
}

FUND_SOURCES: Final = (
    "central_budget", "provincial_budget", "municipal_budget", "special_bond",
    "general_bond", "enterprise_bond", "green_fund", "bank_loan", "own_funds",
)
LAND_METHODS: Final = ("allocation", "transfer", "standard_land")
UTILITIES: Final = ("water", "drainage", "power", "gas", "heat", "telecom")
TALENT_ROLES: Final = ("responsible_leader", "service_officer", "expert")
ISSUE_LEVELS: Final = ("district", "department", "city", "province")
POLLUTANTS: Final = ("COD", "NH3-N", "SO2", "NOx", "VOCs", "particulates")
#: Priority of a project: `municipal` for those the city's Party committee and government push (重点推进项目).
PRIORITIES: Final = ("none", "municipal", "provincial", "national")
#: The nature of a project whose energy is exempt from the district's cap (防疫物资).
EPIDEMIC_SUPPLIES: Final = "epidemic_supplies"
#: Fund sources drawn only by projects in a library of their own (v1.1).
FUND_LIBRARIES: Final[dict[str, str]] = {
    "central_budget": "central_budget", "provincial_budget": "central_budget", "municipal_budget": "municipal_budget",
    "special_bond": "special_bond", "general_bond": "general_bond", "enterprise_bond": "enterprise_bond",
    "green_fund": "green_fund",
}
EVALUATION_KINDS: Final = ("financial", "legal")
#: Factors a district holds a yearly quota of (年度指标): land, energy, and the special-bond quota the
#: province hands down (省厅下达额度, v1.2), in 万元.
QUOTA_FACTORS: Final = ("land", "energy", "special_bond")
#: How a supervision case (督办) ends (销号): the factor used, taken back, or the case let go.
CASE_OUTCOMES: Final = ("rectified", "reclaimed", "waived")
EXCEPTION_RULES: Final = ("not_in_annual_plan",)

#: Departments that speak to Yaosu (actor.department). The responsible units of the seed,
#: plus the industry departments that own projects horizontally. A district's own portal
#: speaks as `district:<area code>`.
DEPARTMENTS: Final = (
    "development_reform", "finance", "natural_resources", "ecology_environment",
    "big_data", "industry_it", "housing_construction", "water",
    "power_supply", "gas", "organisation", "human_resources",
    "statistics", "transport", "education", "health",
    "culture_tourism", "agriculture", "commerce", "investment_promotion",
    "cooperation_exchange", "science_technology", "financial_affairs", "government_services",
    "supervision_office",
)
DISTRICT_PORTAL_PREFIX: Final = "district:"


def is_department(value: str) -> bool:
    if value.startswith(DISTRICT_PORTAL_PREFIX):
        return value[len(DISTRICT_PORTAL_PREFIX):] in DISTRICTS
    return value in DEPARTMENTS


def district_portal(district: str) -> str:
    return f"{DISTRICT_PORTAL_PREFIX}{district}"


def district_of(subject: str) -> str:
    """The district a message or an event is about: a project code's area, or a district code itself."""
    return subject[5:11] if is_project_code(subject) else subject


PROJECT_CODE_PATTERN: Final = r"^[0-9]{4}-[0-9]{6}-[0-9]{2}-[0-9]{2}-[0-9]{6}$"
_PROJECT_CODE = re.compile(PROJECT_CODE_PATTERN)


def is_project_code(value: str) -> bool:
    return _PROJECT_CODE.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class ProjectCode:
    """The national investment project code (全国投资项目在线审批监管平台代码).

    `YYYY-AAAAAA-NN-NN-NNNNNN`: year, six-digit area code, two two-digit segments, serial.
    """

    value: str

    def __post_init__(self) -> None:
        if not is_project_code(self.value):
            raise ValueError(f"{self.value!r} is not a project code of the form YYYY-AAAAAA-NN-NN-NNNNNN")
        if not FIRST_YEAR <= self.year <= LAST_YEAR:
            raise ValueError(f"{self.value!r} has an implausible year")

    @property
    def year(self) -> int:
        return int(self.value[:4])

    @property
    def area(self) -> str:
        return self.value[5:11]

    def __str__(self) -> str:
        return self.value
