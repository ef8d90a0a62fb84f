"""Reference tables of the domain: areas, sectors, libraries, stages, factors, departments.

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

DISTRICTS: Final[dict[str, str]] = {
    "620102": "城关区",
    "620103": "七里河区",
    "620104": "西固区",
    "620105": "安宁区",
    "620111": "红古区",
    "620121": "永登县",
    "620122": "皋兰县",
    "620123": "榆中县",
    "620171": "兰州新区",
    "620190": "兰州高新技术产业开发区",
    "620191": "兰州经济技术开发区",
    "620192": "兰州国际陆港",
    "620193": "榆中生态创新城",
}

#: GB/T 4754-2017 sections.
SECTORS: Final[dict[str, str]] = {
    "A": "农、林、牧、渔业",
    "B": "采矿业",
    "C": "制造业",
    "D": "电力、热力、燃气及水生产和供应业",
    "E": "建筑业",
    "F": "批发和零售业",
    "G": "交通运输、仓储和邮政业",
    "H": "住宿和餐饮业",
    "I": "信息传输、软件和信息技术服务业",
    "J": "金融业",
    "K": "房地产业",
    "L": "租赁和商务服务业",
    "M": "科学研究和技术服务业",
    "N": "水利、环境和公共设施管理业",
    "O": "居民服务、修理和其他服务业",
    "P": "教育",
    "Q": "卫生和社会工作",
    "R": "文化、体育和娱乐业",
    "S": "公共管理、社会保障和社会组织",
    "T": "国际组织",
}

#: Reserve libraries (项目储备库). `municipal` is the 一纵一横 library itself: its members are
#: seen by district (vertical) and by owning department (horizontal).
LIBRARIES: Final[dict[str, str]] = {
    "municipal": "市级项目储备库(一纵一横)",
    "fyp14": "“十四五”规划项目库",
    "rolling3y": "三年滚动项目库",
    "annual": "年度计划项目库",
    "central_budget": "中央和省预算内投资项目库",
    "municipal_budget": "市级预算内投资项目库",
    "special_bond": "专项债券项目库",
    "general_bond": "一般债券项目库",
    "investment_attraction": "招商引资项目库",
    "enterprise_bond": "企业债券项目库",
    "green_fund": "绿色生态产业发展基金项目库",
}

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
EXCEPTION_RULES: Final = ("not_in_annual_plan",)

#: Departments that speak to Yaosu (actor.department). The responsible units of the seed,
#: plus the industry departments that own projects horizontally. A district's own portal
#: speaks as `district:<area code>`.
DEPARTMENTS: Final[dict[str, str]] = {
    "development_reform": "市发展和改革委员会",
    "finance": "市财政局",
    "natural_resources": "市自然资源局",
    "ecology_environment": "市生态环境局",
    "big_data": "市大数据管理局",
    "industry_it": "市工业和信息化局",
    "housing_construction": "市住房和城乡建设局",
    "water": "市水务局",
    "power_supply": "国网兰州供电公司",
    "gas": "兰州燃气公司",
    "organisation": "市委组织部",
    "human_resources": "市人力资源和社会保障局",
    "statistics": "市统计局",
    "transport": "市交通运输局",
    "education": "市教育局",
    "health": "市卫生健康委员会",
    "culture_tourism": "市文化和旅游局",
    "agriculture": "市农业农村局",
    "commerce": "市商务局",
    "investment_promotion": "市招商局",
    "cooperation_exchange": "市政府合作交流办",
    "science_technology": "市科学技术局",
    "financial_affairs": "市地方金融监督管理局",
    "government_services": "市政务服务中心",
}
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
