"""A realistic demo year of portal messages for Lanzhou, deterministic for a given seed.

Projects across every district are registered as the kinds a city's plan lists (`KINDS`: a hospital
under Q owned by health, a solar plant under D, a data centre under I …), admitted (each library by its
lead units) with a leader named as they enter it (包抓领导), guaranteed factors stage by stage by the
units that grant them (land by natural resources, power by the power company), started (or not),
report monthly investment (some lag badly), and those built within the year complete with an
acceptance report. `recording_times` says when each message reaches the ledger: the day it happened
or a few days after, as portals catch up.

Among them are the mistakes real portals make, every rejection code of the contract at least once:
land for a project outside the annual library or beyond the land quota, factors before admission,
energy beyond the district's quota or exempt after the 十三五 assessment, special bonds without the
evaluations, wrong senders (a district portal admitting to the annual library), malformed payloads,
skipped stages, a completion before construction, a code registered twice, a draw beyond a reduction,
an issue never raised, a factor for a completed project, resends and a conflict.

Factors settle too (v1.2): most money granted is paid out, some lies idle; a few projects carried over
from last year sit on land or energy they never used, an approval lies unsupplied; supervision cases
are assigned, answered (one late), closed by rectification, by reclaim and let go, one is overdue; an
allocation is adopted, and an amendment postpones a start that was already alerted.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Iterator, TypeVar

from domain import reference
from domain.policy import PolicySettings
from infra.catalogue import name_of

T = TypeVar("T")


@dataclass(frozen=True)
class Kind:
    """A kind of project as a city's plan lists them: what it is called, its 门类 (GB/T 4754 section), the
    department that owns it (行业主管部门), who builds it, what it costs and which factors it needs."""

    stems: tuple[str, ...]  # what comes after the area's name
    sector: str
    department: str
    owners: tuple[str, ...]  # `{area}` is the area's short name
    totals: tuple[int, ...]  # 万元
    land_mu: tuple[float, ...]
    energy_tce: tuple[int, ...] = ()  # none: it asks for no energy
    weight: int = 1


KINDS: tuple[Kind, ...] = (
    Kind(("人民医院住院综合楼", "中医医院门诊楼", "妇幼保健院迁建工程", "疾病预防控制中心业务楼"), "Q", "health",
         ("{area}卫生健康局", "{area}人民医院"), (8000, 15000, 30000, 60000), (20, 35, 50), weight=2),
    Kind(("第一中学新校区", "实验中学", "九年一贯制学校", "职业教育中心实训楼"), "P", "education",
         ("{area}教育局",), (5000, 8000, 15000, 30000), (30, 45.5, 60), weight=2),
    Kind(("光伏电站", "风光储一体化项目", "分布式光伏发电项目"), "D", "development_reform",
         ("国家电投兰州新能源有限公司", "华能甘肃能源开发有限公司", "兰州新能源投资集团有限公司"),
         (30000, 60000, 120000), (86.5, 120, 200), (500, 1200)),
    Kind(("集中供热管网改造工程", "热源厂扩建工程"), "D", "housing_construction",
         ("兰州热力集团有限公司",), (8000, 15000, 30000), (10, 20), (1200, 3000)),
    Kind(("污水处理厂提标改造工程", "再生水利用工程", "城乡供水一体化工程"), "D", "water",
         ("{area}水务局", "兰州城市供水集团有限公司"), (8000, 15000, 30000), (20, 45.5)),
    Kind(("大数据中心", "算力中心", "工业互联网标识解析节点"), "I", "industry_it",
         ("{area}大数据产业发展有限公司", "中国电信兰州分公司", "中国移动甘肃分公司"),
         (30000, 60000, 120000), (20, 45.5), (1200, 3000)),
    Kind(("新材料产业园", "高端装备制造基地", "精细化工产业园", "生物医药产业园", "新能源电池材料项目"), "C", "industry_it",
         ("甘肃某新材料有限公司", "兰州某装备制造有限公司", "兰州某化工有限公司", "兰州某生物医药有限公司",
          "甘肃某新能源科技有限公司"),
         (15000, 30000, 60000, 120000), (45.5, 86.5, 120), (500, 1200, 3000), weight=3),
    Kind(("农产品精深加工园", "高原夏菜冷链加工中心", "百合产业园"), "C", "agriculture",
         ("兰州某农业发展有限公司", "{area}农业投资有限公司"), (3000, 8000, 15000), (20, 45.5), (500,)),
    Kind(("高原夏菜标准化种植基地", "现代设施农业产业园"), "A", "agriculture",
         ("{area}农业农村局", "{area}农业投资有限公司"), (3000, 8000), (120, 200)),
    Kind(("城市快速路", "高速公路连接线", "城市主干道改造工程", "轨道交通站点综合开发"), "G", "transport",
         ("兰州交通发展建设集团有限公司", "{area}交通运输局"), (30000, 60000, 120000), (45.5, 86.5, 120), weight=2),
    Kind(("现代物流园", "冷链物流仓储中心", "公铁联运物流枢纽"), "G", "commerce",
         ("兰州国际陆港投资发展有限公司", "兰州某物流有限公司"), (15000, 30000, 60000), (86.5, 120)),
    Kind(("老旧小区改造工程", "城中村改造项目", "保障性租赁住房项目"), "K", "housing_construction",
         ("{area}住房和城乡建设局", "兰州城市发展投资有限公司"), (8000, 15000, 30000), (20, 45.5), weight=2),
    Kind(("黄河堤防加固工程", "排洪沟综合治理工程", "水源地保护工程"), "N", "water",
         ("{area}水务局",), (3000, 8000, 15000), (20, 45.5)),
    Kind(("湿地公园", "城市公园提升改造工程"), "N", "housing_construction",
         ("{area}住房和城乡建设局",), (3000, 8000, 15000), (45.5, 86.5)),
    Kind(("文旅综合体", "全民健身中心", "博物馆新馆", "黄河风情线提升工程"), "R", "culture_tourism",
         ("{area}文化和旅游局", "兰州文旅产业集团有限公司"), (8000, 15000, 30000, 60000), (45.5, 86.5)),
    Kind(("科技创新园", "中试基地", "重点实验室"), "M", "science_technology",
         ("兰州某科技有限公司", "{area}科技投资有限公司"), (8000, 15000, 30000), (20, 45.5)),
)
#: A project making epidemic supplies (防疫物资): its energy is outside the cap in the 十三五 assessment's years.
EPIDEMIC_STEM, EPIDEMIC_OWNER = "医用防护物资生产基地", "兰州某医疗用品有限公司"
#: Areas whose names are long: as a project's name starts with them.
SHORT_AREAS = {"620190": "兰州高新区", "620191": "兰州经开区"}
#: Who answers for a coordination issue (重大协调事项) of each kind.
ISSUES = (("征地拆迁协调", "natural_resources"), ("电力接入协调", "power_supply"), ("施工许可办理", "housing_construction"),
          ("供水管线迁改", "water"), ("燃气管线迁改", "gas"))
#: The company that connects each utility (水电气暖).
UTILITY_COMPANIES = {"power": "power_supply", "water": "water", "gas": "gas", "heat": "housing_construction"}
#: The city's leaders who take charge of projects (包抓领导), with their titles; the area's own for the rest.
CITY_LEADERS = ("王建国（副市长）", "李红梅（副市长）", "张志强（副市长）", "陈立新（市政府秘书长）", "刘卫东（市发展改革委主任）")
AREA_LEADERS = ("赵国庆", "孙丽华", "周建平", "吴海燕", "郑文博", "马振华", "杨慧敏", "何志军", "冯春燕", "朱永强",
                "高建军", "罗晓梅", "梁国栋")
REDUCTION_POLLUTANTS = ("SO2", "NOx", "COD")
FAIRS = ("中国兰州投资贸易洽谈会", "粤港澳大湾区招商推介会", "长三角产业对接会", "京津冀招商推介会")
#: A library's lead unit beside development and reform (v1.2): it admits every other project the
#: demo puts in that library, development and reform the rest.
#: The projects of the v1.2 story (`_settling`), besides those asked for: three carried over from the year
#: before, two of the year.
STORY_PROJECTS = 5
LIBRARY_LEADS = {"special_bond": "finance", "general_bond": "finance", "municipal_budget": "finance",
                 "investment_attraction": "cooperation_exchange"}


class _Writer:
    def __init__(self, year: int, exemption_last_year: int) -> None:
        self.year = year
        self.exemption_last_year = exemption_last_year
        self.messages: list[tuple[datetime, int, dict[str, Any]]] = []
        self.serial = 0
        self.names: set[str] = set()
        #: The projects completed, with the day: the mistakes send one of them a factor.
        self.completed: list[tuple[date, str]] = []
        self.drawn_on_reductions = False

    def name(self, stem: str) -> str:
        """A project's name: the stem, or its second or third phase (二期, 三期 …) if taken already."""
        base, kind = (stem[:-2], stem[-2:]) if stem.endswith(("项目", "工程")) else (stem, "")
        for phase in ("", "二期", "三期", "四期", "五期"):
            name = base + phase + (kind or ("工程" if phase else ""))
            if name not in self.names:
                self.names.add(name)
                return name
        name = f"{stem}（{len(self.names)}）"
        self.names.add(name)
        return name

    def at(self, day: date, hour: int = 9) -> datetime:
        return datetime.combine(day, time(hour, self.serial % 60), tzinfo=reference.CITY_TZ)

    def emit(self, day: date, type_: str, department: str, payload: dict[str, Any],
             code: str | None = None, *, source: str | None = None) -> dict[str, Any]:
        self.serial += 1
        message: dict[str, Any] = {
            "message_id": f"demo-{self.year}-{self.serial:06d}",
            "type": type_,
            "occurred_at": self.at(day).isoformat(),
            "source": source or f"{department.replace(':', '-')}-portal",
            "actor": {"department": department, "user": f"user.{self.serial % 17:02d}"},
            "payload": payload,
        }
        if code is not None:
            message["project_code"] = code
        self.messages.append((self.at(day), self.serial, message))
        return message


def demo_messages(year: int, projects: int = 300, seed: int = 149, until: date | None = None,
                  exemption_last_year: int = PolicySettings().exemption_last_year) -> list[dict[str, Any]]:
    """Envelopes for one demo year of `projects` projects (the last of them the one most mistakes are
    about), and the `STORY_PROJECTS` of the v1.2 story (factors settling, followed up), in business-time order (those that happened by `until`, if given: a demo of the current
    year stops at today, with nothing dated in the future). Energy is exempt from the cap only in
    years up to `exemption_last_year`, as the deployment's rules say."""
    rng = random.Random(seed)
    w = _Writer(year, exemption_last_year)
    jan = date(year, 1, 4)
    districts = list(reference.DISTRICTS)
    for district in districts:
        w.emit(jan, "quota.set", "development_reform",
               {"district": district, "year": year, "factor": "energy", "amount": rng.choice([20000, 40000, 60000])})
        w.emit(jan, "quota.set", "natural_resources",
               {"district": district, "year": year, "factor": "land", "amount": rng.choice([1500, 3000, 5000])})
        # The special-bond quota the province hands down (省厅下达额度, v1.2), 万元.
        w.emit(jan, "quota.set", "finance",
               {"district": district, "year": year, "factor": "special_bond", "amount": 200_000})
    for n in range(12):
        due = date(year, rng.randint(3, 12), rng.randint(1, 28))
        w.emit(jan + timedelta(days=n), "emission.reduction_registered", "ecology_environment",
               {"reduction_id": f"RD-{year}-{n:03d}", "enterprise": f"兰州某化工企业{n}",
                "pollutant": REDUCTION_POLLUTANTS[n % 3], "tonnes": rng.choice([50, 80, 120]),
                "due_date": due.isoformat()})
        if n % 6:  # most closures are done in time; a couple are late
            w.emit(due - timedelta(days=n * 3), "emission.reduction_completed", "ecology_environment",
                   {"reduction_id": f"RD-{year}-{n:03d}"})
    for n in range(projects - 1):
        _project(w, rng, n, districts)
    _mistakes(w, rng)
    _settling(w)
    # Day by day, in the order written within a day (a message's minute is its serial's, which wraps).
    w.messages.sort(key=lambda item: (item[0].date(), item[1]))
    if until is not None:
        w.messages = [m for m in w.messages if m[0].date() <= until]
    return [message for _, _, message in w.messages]


def _project(w: _Writer, rng: random.Random, n: int, districts: list[str]) -> None:
    year = w.year
    district = districts[n % len(districts)]
    code = f"{year}-{district}-{('48', '44', '54', '78')[n % 4]}-0{1 + n % 3}-{n + 1:06d}"
    kind = rng.choices(KINDS, weights=[k.weight for k in KINDS])[0]
    epidemic = kind.sector == "C" and n % 9 == 0
    which = rng.randrange(len(kind.stems))
    # Owners listed one per stem build that very thing; otherwise any of them builds any.
    owner = kind.owners[which] if len(kind.owners) == len(kind.stems) else rng.choice(kind.owners)
    department = "industry_it" if epidemic else kind.department
    if epidemic:
        owner = EPIDEMIC_OWNER
    # Most of the year's projects are in the plan by March; some join later and are still being prepared in December.
    registered = date(year, 1, 6) + timedelta(days=rng.randint(0, 80) if rng.random() < 0.85 else rng.randint(90, 240))
    planned_start = registered + timedelta(days=rng.randint(30, 150))
    total = rng.choice(kind.totals)
    quick = total <= 15000 and rng.random() < 0.4  # built within the year
    revenue = rng.random() < 0.5
    w.emit(registered, "project.registered", rng.choice(["development_reform", reference.district_portal(district)]), {
        "name": w.name(area_name(district) + (EPIDEMIC_STEM if epidemic else kind.stems[which])),
        "district": district, "sector": kind.sector, "department": department,
        "owner": owner.format(area=area_name(district)), "total_investment": total,
        "planned_start": planned_start.isoformat(),
        "planned_completion": (planned_start + timedelta(days=rng.randint(150, 240) if quick
                                                         else rng.randint(300, 900))).isoformat(),
        "revenue_generating": revenue, "priority": rng.choice(["none", "none", "municipal", "provincial", "national"]),
        **({"nature": "epidemic_supplies"} if epidemic else {}),
    }, code)
    planned = round(total * (rng.uniform(0.85, 0.95) if quick else rng.uniform(0.25, 0.6)))
    day = registered + timedelta(days=2)
    w.emit(day, "plan.set", "development_reform", {"year": year, "planned_investment": planned}, code)
    # 一纵一横: the municipal library takes projects from the owning department and the district too.
    w.emit(day, "project.admitted", rng.choice(["development_reform", department,
                                                reference.district_portal(district)]),
           {"library": "municipal", "opinion": "符合入库条件"}, code)
    # Its leader (包抓领导) is named as it enters the library, long before it should start.
    w.emit(day + timedelta(days=1), "talent.assigned", "organisation",
           {"person": leader(district, n), "role": "responsible_leader", "organisation": leader_organisation(district, n)},
           code)
    in_annual = rng.random() < 0.8
    if in_annual:
        w.emit(day + timedelta(days=1), "project.admitted", "development_reform", {"library": "annual", "year": year}, code)
    special = rng.choice(["central_budget", "special_bond", "general_bond", "investment_attraction", "fyp14", None])
    if special:
        w.emit(day + timedelta(days=2), "project.admitted", _admitter(special, n), {"library": special}, code)
    source = "central_budget" if special == "central_budget" else rng.choice(["municipal_budget", "bank_loan", "own_funds"])
    if source == "municipal_budget":  # its money comes from its library (v1.1)
        w.emit(day + timedelta(days=2), "project.admitted", _admitter(source, n), {"library": "municipal_budget"}, code)
    if special == "investment_attraction":  # presented to investors outside the city (招商推介)
        for k, fair in enumerate(rng.sample(FAIRS, rng.randint(1, 2))):
            w.emit(day + timedelta(days=10 + 20 * k), "investment.pitched", rng.choice(["cooperation_exchange",
                                                                                       "investment_promotion"]),
                   {"event": fair, "date": (day + timedelta(days=10 + 20 * k)).isoformat(),
                    "counterpart": rng.choice(["某央企", "某外资企业", "东部某产业集团"])}, code)
    w.emit(day + timedelta(days=3), "data.provided", "big_data", {"kind": "planning_data", "reference": f"DATA-{n}"}, code)
    stage_day = day + timedelta(days=rng.randint(5, 20))
    w.emit(stage_day, "stage.advanced", "development_reform", {"stage": "generation"}, code)
    if in_annual:  # land comes from the land authority (自然资源局), never from anyone else
        w.emit(stage_day + timedelta(days=3), "land.supplied", "natural_resources", {
            "parcel": f"LZ-{year}-{n:03d}", "area_mu": rng.choice(kind.land_mu),
            "method": rng.choice(["allocation", "transfer", "standard_land"])}, code)
    allocated = w.emit(stage_day + timedelta(days=5), "funds.allocated", "finance",
                       {"source": source, "amount": round(planned * 0.2), "document": f"兰财建〔{year}〕{n}号"}, code)
    _pay_out(w, code, allocated, n)
    if special == "special_bond" and revenue:
        for evaluation in ("financial", "legal"):
            w.emit(stage_day + timedelta(days=6), "bond.evaluated", "finance",
                   {"kind": evaluation, "evaluator": "第三方评估机构", "passed": True}, code)
        bond = w.emit(stage_day + timedelta(days=8), "funds.allocated", "finance",
                      {"source": "special_bond", "amount": round(total * 0.1), "document": f"专项债〔{year}〕{n}"}, code)
        _pay_out(w, code, bond, 1000 + n)
    if special == "general_bond" and not revenue:
        bond = w.emit(stage_day + timedelta(days=8), "funds.allocated", "finance",
                      {"source": "general_bond", "amount": round(total * 0.05), "document": f"一般债〔{year}〕{n}"}, code)
        _pay_out(w, code, bond, 1000 + n)
    fast_track = rng.random() < 0.06  # 边勘察、边设计、边施工: started while still in generation
    approval_day = stage_day + timedelta(days=rng.randint(10, 30))
    w.emit(approval_day, "stage.advanced", "development_reform", {"stage": "approval"}, code)
    if kind.energy_tce:
        # Energy for epidemic supplies is outside the cap; claimed for others it is flagged (exemption_unverified).
        # Only within the 十三五 assessment: later, such projects draw on the cap like any other.
        exempt = (epidemic or n % 23 == 0) and year <= w.exemption_last_year
        w.emit(approval_day + timedelta(days=2), "energy.granted", "development_reform",
               {"tce": rng.choice(kind.energy_tce), "year": year, **({"exempt": True} if exempt else {})}, code)
        # The first such project draws on a reduction never closed (RD-…-000): supervision hears of it when due.
        first = not w.drawn_on_reductions
        if first or rng.random() < 0.3:
            reduction = 0 if first else n % 12
            w.drawn_on_reductions = True
            w.emit(approval_day + timedelta(days=3), "emission.advanced", "ecology_environment",
                   {"reduction_id": f"RD-{year}-{reduction:03d}", "pollutant": REDUCTION_POLLUTANTS[reduction % 3],
                    "tonnes": 5}, code)
    if n % 25 == 4 or rng.random() < 0.2:
        _issue(w, rng, code, n, department, approval_day + timedelta(days=4), overdue=n % 25 == 4)
    # Most projects start and keep pace; a few do not start, some lag (a little, or badly).
    fate = rng.random()
    if n % 30 == 7 or fate < 0.03:
        return  # should have started, did not (应开未开)
    start = max(planned_start + timedelta(days=rng.randint(-10, 60)), approval_day + timedelta(days=7))
    if fast_track:  # flagged started_before_approval
        start = stage_day + timedelta(days=3)
    if start.year > year:
        return
    w.emit(approval_day + timedelta(days=1) if fast_track else start - timedelta(days=1), "stage.advanced",
           "development_reform", {"stage": "construction"}, code)
    w.emit(start, "construction.started", rng.choice(["development_reform", reference.district_portal(district)]),
           {"date": start.isoformat()}, code)
    for k, utility in enumerate(("power", *rng.sample(("water", "gas", "heat"), rng.randint(0, 2)))):
        w.emit(start + timedelta(days=5 + 3 * k), "utility.connected", UTILITY_COMPANIES[utility],
               {"utility": utility, "reference": f"UC-{n}-{k}"}, code)
    lagging = n % 12 == 1 or fate < 0.1
    monthly = planned / 12 * (rng.uniform(0.6, 0.92) if lagging else rng.uniform(0.98, 1.3))
    # A project built within the year is finished some months after it starts (竣工), unless it lags.
    finished = start + timedelta(days=rng.randint(150, 210)) if quick and not lagging else None
    if finished is not None and (finished.year > year or finished > date(year, 11, 25)):
        finished = None
    months = range(start.month, 13 if finished is None else finished.month + 1)
    if finished is not None:  # all its plan by the month it is finished
        monthly = planned / finished.month
    for month in months:
        report_day = date(year, month, 28) + timedelta(days=rng.randint(4, 10))
        if report_day.year > year:
            break
        # A project's first month also books what was spent before the start (design, land).
        completed = monthly * (month if month == start.month else 1)
        w.emit(report_day, "investment.reported", "statistics",
               {"period": f"{year}-{month:02d}", "completed": round(completed, 1)}, code)
    if finished is not None:
        _complete(w, code, finished)


def _complete(w: _Writer, code: str, finished: date) -> None:
    """Completion (竣工): the stage, the acceptance report (竣工验收报告), the project closed."""
    w.emit(finished - timedelta(days=7), "stage.advanced", "development_reform", {"stage": "completion"}, code)
    w.emit(finished - timedelta(days=2), "data.provided", "big_data",
           {"kind": "completion_report", "reference": f"竣工验收-{code[-6:]}"}, code)
    w.emit(finished, "project.completed", "development_reform", {"date": finished.isoformat()}, code)
    w.completed.append((finished, code))


def _issue(w: _Writer, rng: random.Random, code: str, n: int, owner_department: str, day: date, *,
           overdue: bool) -> None:
    """A coordination issue (重大协调事项), answered by the unit it concerns; taken to the city if the
    district does not settle it; an overdue one never resolved."""
    issue = f"ISS-{w.year}-{n:04d}"
    title, assignee = rng.choice(ISSUES)
    level = rng.choice(["district", "city"])
    w.emit(day, "issue.escalated", owner_department, {
        "issue_id": issue, "title": title, "level": level,
        "assigned_to": assignee, "due_date": (day + timedelta(days=30)).isoformat()}, code)
    resolved_after = None if overdue else rng.randint(5, 45)
    if level == "district" and (resolved_after is None or resolved_after > 20):
        # Not settled in the district: taken to the city (分层级协调), with a new assignee and due date.
        assignee = "development_reform"
        w.emit(day + timedelta(days=20), "issue.escalated", owner_department, {
            "issue_id": issue, "title": title, "level": "city", "assigned_to": assignee,
            "due_date": (day + timedelta(days=50)).isoformat()}, code)
    if resolved_after is not None:
        w.emit(day + timedelta(days=resolved_after), "issue.resolved", assignee,
               {"issue_id": issue, "resolution": "已协调解决"}, code)


def area_name(district: str) -> str:
    """The area's name as a project's name starts with it."""
    return SHORT_AREAS.get(district) or name_of("district", district)


def leader(district: str, n: int) -> str:
    """The project's responsible leader (包抓领导), with the title: a city leader for every fifth project,
    else one of its area's (a 区's deputy head, a 县's, or the deputy director of a zone's committee)."""
    if n % 5 == 0:
        return CITY_LEADERS[n // 5 % len(CITY_LEADERS)]
    title = ("副区长", "副县长", "管委会副主任")[_area_level(district)]
    return f"{AREA_LEADERS[reference.DISTRICTS.index(district) % len(AREA_LEADERS)]}（{name_of('district', district)}{title}）"


def leader_organisation(district: str, n: int) -> str:
    if n % 5 == 0:
        return "兰州市人民政府"
    return name_of("district", district) + ("人民政府", "人民政府", "管理委员会")[_area_level(district)]


def _area_level(district: str) -> int:
    """0 for a city district (区, 6201 0x/11), 1 for a county (县, 6201 2x), 2 for a zone (新区, 开发区 …)."""
    return 0 if district < "620120" else 1 if district < "620170" else 2


def _pay_out(w: _Writer, code: str, allocated: dict[str, Any], n: int) -> None:
    """Payments out of a funds grant (资金拨付): most of it within months, for some projects little
    (资金沉淀). A generator of its own, so the rest of the demo stays what it was before v1.2."""
    rng = random.Random(f"pay-{w.year}-{n}")
    amount = int(allocated["payload"]["amount"])
    day = datetime.fromisoformat(allocated["occurred_at"]).date()
    share = rng.uniform(0.05, 0.35) if rng.random() < 0.12 else rng.uniform(0.55, 1.0)
    paid = 0
    for k in range(rng.randint(1, 3)):
        part = int(amount * share / (k + 1)) if k < 2 else amount * share - paid
        part = min(int(part), amount - paid)
        if part <= 0:
            break
        day += timedelta(days=rng.randint(15, 70))
        if day.year > w.year:
            break
        w.emit(day, "funds.disbursed", "finance",
               {"grant_id": allocated["message_id"], "amount": part, "date": day.isoformat()}, code)
        paid += part


def _settling(w: _Writer) -> None:
    """Factors that settle (要素沉淀), followed up (督办) and put back to work (v1.2)."""
    y, last = w.year, w.year - 1

    def on(year: int, month: int, day: int) -> date:
        return date(year, month, day)

    def project(code: str, name: str, district: str, registered: date, planned_start: date,
                libraries: tuple[str, ...], sector: str = "C", department: str = "industry_it") -> None:
        w.emit(registered, "project.registered", "development_reform", {
            "name": name, "district": district, "sector": sector, "department": department,
            "owner": "兰州某实业有限公司", "total_investment": 20000, "planned_start": planned_start.isoformat(),
            "planned_completion": (planned_start + timedelta(days=540)).isoformat(), "revenue_generating": True}, code)
        for library in libraries:
            payload: dict[str, Any] = {"library": library}
            if library == "annual":
                payload["year"] = registered.year
            w.emit(registered + timedelta(days=2), "project.admitted",
                   "finance" if library == "municipal_budget" else "development_reform", payload, code)
        w.emit(registered + timedelta(days=3), "talent.assigned", "organisation",
               {"person": leader(district, 1), "role": "responsible_leader", "organisation": leader_organisation(district, 1)},
               code)

    # Last year's land and energy plans of the districts the carried-over projects are in.
    for district in ("620103", "620123"):
        w.emit(on(last, 1, 4), "quota.set", "natural_resources",
               {"district": district, "year": last, "factor": "land", "amount": 2000})
    w.emit(on(last, 1, 4), "quota.set", "development_reform",
           {"district": "620171", "year": last, "factor": "energy", "amount": 30000})
    # A batch of land approved in Qilihe (批次用地), supplied only in part since: 批而未供.
    w.emit(on(last, 1, 20), "land.approved", "natural_resources",
           {"approval_id": f"PC-{last}-0107", "district": "620103", "area_mu": 300, "date": on(last, 1, 20).isoformat()})

    # Land supplied last year and never built on (供而未用, 闲置土地): the case is answered, the land taken back.
    idle_land = f"{last}-620103-48-01-998001"
    project(idle_land, "七里河高端装备制造产业园", "620103", on(last, 1, 10), on(last, 4, 1), ("municipal", "annual"))
    supplied = w.emit(on(last, 2, 15), "land.supplied", "natural_resources", {
        "parcel": f"QLH-{last}-017", "area_mu": 80, "method": "transfer", "approval_id": f"PC-{last}-0107",
        "start_by": on(last, 4, 1).isoformat()}, idle_land)
    case = f"DB-{y}-001"
    w.emit(on(y, 4, 15), "supervision.assigned", "development_reform", {
        "case_id": case, "rule": "land_idle", "grant_id": supplied["message_id"], "responsible": "natural_resources",
        "due_date": on(y, 5, 15).isoformat(),
        "demand": "该宗地约定动工日期已满一年未动工，请核实闲置原因，依法依规处置并反馈。"}, idle_land)
    w.emit(on(y, 5, 10), "supervision.responded", "natural_resources", {
        "case_id": case, "measures": "已向用地单位下达闲置土地认定书，企业无力开工，建议依法收回土地使用权。",
        "expected_by": on(y, 6, 30).isoformat()}, idle_land)
    w.emit(on(y, 6, 1), "factor.reclaimed", "development_reform", {
        "factor": "land", "grant_id": supplied["message_id"], "reason": "闲置满一年未动工，依法收回"}, idle_land)
    w.emit(on(y, 6, 5), "supervision.closed", "development_reform", {
        "case_id": case, "outcome": "reclaimed", "note": "土地已收回，纳入区县储备重新供应。"}, idle_land)

    # Land supplied last year in Yuzhong, idle for over a year: the case assigned has no answer yet (督办逾期).
    overdue = f"{last}-620123-48-01-998002"
    project(overdue, "榆中生物医药产业园", "620123", on(last, 2, 1), on(last, 6, 30), ("municipal", "annual"))
    supplied = w.emit(on(last, 3, 20), "land.supplied", "natural_resources", {
        "parcel": f"YZ-{last}-031", "area_mu": 120, "method": "transfer"}, overdue)
    w.emit(on(y, 11, 10), "supervision.assigned", "supervision_office", {
        "case_id": f"DB-{y}-002", "rule": "land_idle", "grant_id": supplied["message_id"],
        "responsible": "natural_resources", "due_date": on(y, 11, 25).isoformat(),
        "demand": "请于11月25日前反馈闲置土地处置方案。"}, overdue)
    w.emit(on(y, 11, 20), "supervision.closed", "supervision_office", {  # refused: the land still lies idle
        "case_id": f"DB-{y}-002", "outcome": "rectified", "note": "已整改"}, overdue)

    # Energy granted last year to a project that never started (能耗指标沉淀).
    idle_energy = f"{last}-620171-44-01-998003"
    project(idle_energy, "兰州新区新能源材料项目", "620171", on(last, 3, 1), on(last, 7, 1), ("municipal", "annual"))
    w.emit(on(last, 6, 10), "energy.granted", "development_reform", {"tce": 2000, "year": last}, idle_energy)

    # Money allocated this year and mostly not paid out (资金沉淀): the case is answered late, then rectified.
    idle_funds = f"{y}-620102-48-01-998004"
    project(idle_funds, "城关老旧小区改造提升工程", "620102", on(y, 1, 12), on(y, 3, 1), ("municipal", "municipal_budget"),
            sector="K", department="housing_construction")
    allocated = w.emit(on(y, 2, 1), "funds.allocated", "finance", {
        "source": "municipal_budget", "amount": 3000, "document": f"兰财建〔{y}〕998号"}, idle_funds)
    grant = allocated["message_id"]
    w.emit(on(y, 2, 10), "supervision.assigned", "supervision_office", {  # refused: nothing is idle yet
        "case_id": f"DB-{y}-000", "rule": "funds_idle", "grant_id": grant, "responsible": "finance",
        "due_date": on(y, 3, 1).isoformat(), "demand": "请加快资金拨付。"}, idle_funds)
    w.emit(on(y, 3, 10), "funds.disbursed", "finance", {"grant_id": grant, "amount": 500,
                                                       "date": on(y, 3, 10).isoformat()}, idle_funds)
    w.emit(on(y, 3, 20), "construction.started", "district:620102", {"date": on(y, 3, 20).isoformat()}, idle_funds)
    w.emit(on(y, 5, 20), "supervision.assigned", "supervision_office", {
        "case_id": f"DB-{y}-003", "rule": "funds_idle", "grant_id": grant, "responsible": "finance",
        "due_date": on(y, 6, 5).isoformat(), "demand": "资金下达已满90天，拨付不足一半，请说明原因并加快拨付。"}, idle_funds)
    w.emit(on(y, 6, 8), "supervision.responded", "housing_construction", {  # refused: not the responsible unit
        "case_id": f"DB-{y}-003", "measures": "已督促施工单位", "expected_by": on(y, 7, 1).isoformat()}, idle_funds)
    w.emit(on(y, 6, 20), "supervision.responded", "finance", {
        "case_id": f"DB-{y}-003", "measures": "已会同住建部门核实工程量，7月初前拨付第二笔资金。",
        "expected_by": on(y, 7, 5).isoformat()}, idle_funds)
    w.emit(on(y, 7, 1), "funds.disbursed", "finance", {"grant_id": grant, "amount": 3000,
                                                      "date": on(y, 7, 1).isoformat()}, idle_funds)  # refused: too much
    w.emit(on(y, 7, 1), "funds.disbursed", "finance", {"grant_id": grant, "amount": 1500,
                                                      "date": on(y, 7, 1).isoformat()}, idle_funds)
    w.emit(on(y, 7, 10), "supervision.closed", "supervision_office", {
        "case_id": f"DB-{y}-003", "outcome": "rectified", "note": "累计拨付2000万元，已超过下达资金一半，予以销号。"},
        idle_funds)
    # A second grant for the same works, never paid out: its case is let go (豁免销号), accepted with a warning.
    # (Funds, not a carried-over grant: a grant with no quota to race reaches the ledger whatever the order.)
    spare = w.emit(on(y, 2, 1), "funds.allocated", "finance", {
        "source": "municipal_budget", "amount": 1000, "document": f"兰财建〔{y}〕999号"}, idle_funds)["message_id"]
    w.emit(on(y, 7, 20), "supervision.assigned", "supervision_office", {
        "case_id": f"DB-{y}-004", "rule": "funds_idle", "grant_id": spare, "responsible": "finance",
        "due_date": on(y, 8, 20).isoformat(), "demand": "该笔资金下达后未拨付，请说明原因。"}, idle_funds)
    w.emit(on(y, 8, 3), "supervision.responded", "finance", {
        "case_id": f"DB-{y}-004", "measures": "该笔资金用于二期配套工程，待二期方案批复后拨付。",
        "expected_by": on(y, 12, 31).isoformat()}, idle_funds)
    w.emit(on(y, 8, 10), "supervision.closed", "supervision_office", {
        "case_id": f"DB-{y}-004", "outcome": "waived", "note": "经市政府同意，暂缓拨付，予以豁免销号。"}, idle_funds)

    # A start alerted, then postponed by an amendment: accepted, and flagged (postponed_after_alert).
    postponed = f"{y}-620105-78-01-998005"
    project(postponed, "安宁区职业教育实训基地", "620105", on(y, 1, 8), on(y, 3, 1), ("municipal", "annual"),
            sector="P", department="education")
    w.emit(on(y, 2, 1), "land.supplied", "natural_resources",
           {"parcel": f"AN-{y}-008", "area_mu": 45, "method": "allocation"}, postponed)
    w.emit(on(y, 6, 15), "project.amended", "development_reform", {
        "planned_start": on(y, 9, 1).isoformat(), "reason": "受征地拆迁影响，开工时间调整至9月"}, postponed)
    w.emit(on(y, 9, 10), "construction.started", "development_reform", {"date": on(y, 9, 10).isoformat()}, postponed)

    # Next round's land split by the ranking (大干大支持), departing from the advice.
    w.emit(on(y, 10, 10), "allocation.adopted", "natural_resources", {
        "allocation_id": f"FP-{y}-land-01", "year": y, "factor": "land", "total": 2000,
        "shares": [{"district": "620171", "amount": 1200}, {"district": "620102", "amount": 500},
                   {"district": "620103", "amount": 300}],
        "as_of": on(y, 10, 1).isoformat(), "basis": f"依据{y}年三季度区县要素保障排名，经市政府常务会议研究确定"})


def _admitter(library: str, n: int) -> str:
    """Who admits the n-th project to `library`: its lead unit for every other project, if it has one."""
    lead = LIBRARY_LEADS.get(library)
    return lead if lead and n % 2 else "development_reform"


def _mistakes(w: _Writer, rng: random.Random) -> None:
    """Messages the rules must refuse; each kept in /v1/rejections with its code."""
    year = w.year
    day = date(year, 6, 15)
    stray = f"{year}-620102-48-01-999001"
    w.emit(day, "project.registered", "development_reform", {
        "name": "城关未入库试点项目", "district": "620102", "sector": "C", "department": "industry_it",
        "owner": "某企业", "total_investment": 5000, "planned_start": f"{year}-07-01",
        "planned_completion": f"{year + 1}-07-01", "revenue_generating": False}, stray)
    w.emit(day + timedelta(days=1), "funds.allocated", "finance", {"source": "municipal_budget", "amount": 100}, stray)
    w.emit(day + timedelta(days=1), "project.admitted", "development_reform", {"library": "municipal"}, stray)
    w.emit(day + timedelta(days=2), "talent.assigned", "organisation",
           {"person": leader("620102", 1), "role": "responsible_leader", "organisation": leader_organisation("620102", 1)},
           stray)
    w.emit(day + timedelta(days=1), "project.admitted", "development_reform", {"library": "special_bond"}, stray)
    w.emit(day + timedelta(days=1), "project.admitted", "development_reform", {"library": "annual"}, stray)  # no year
    # The annual library unlocks land: its district's portal may not admit the project there, nor its owner to bonds.
    w.emit(day + timedelta(days=1), "project.admitted", "district:620102", {"library": "annual", "year": year}, stray)
    w.emit(day + timedelta(days=1), "project.admitted", "industry_it", {"library": "special_bond"}, stray)
    w.emit(day + timedelta(days=2), "land.supplied", "natural_resources",
           {"parcel": "LZ-X-1", "area_mu": 30, "method": "transfer"}, stray)
    w.emit(day + timedelta(days=2), "funds.allocated", "finance", {"source": "special_bond", "amount": 500}, stray)
    w.emit(day + timedelta(days=2), "funds.allocated", "finance", {"source": "municipal_budget", "amount": 80}, stray)
    w.emit(day + timedelta(days=2), "investment.pitched", "cooperation_exchange",
           {"event": "某招商推介会", "date": (day + timedelta(days=2)).isoformat()}, stray)
    w.emit(day + timedelta(days=2), "investment.reported", "statistics",
           {"period": f"{year}-09", "completed": 10}, stray)  # a month not over yet
    w.emit(day + timedelta(days=3), "energy.granted", "development_reform", {"tce": 10_000_000, "year": year}, stray)
    if year > w.exemption_last_year:  # the epidemic exemption ended with the 十三五 assessment
        w.emit(day + timedelta(days=3), "energy.granted", "development_reform",
               {"tce": 800, "year": year, "exempt": True}, stray)
    w.emit(day + timedelta(days=3), "stage.advanced", "development_reform", {"stage": "construction"}, stray)
    w.emit(day + timedelta(days=4), "land.supplied", "finance", {"parcel": "LZ-X-2", "area_mu": 5, "method": "transfer"}, stray)
    w.emit(day + timedelta(days=4), "land.supplied", "natural_resources", {"parcel": "LZ-X-3", "area_mu": -5, "method": "transfer"}, stray)
    w.emit(day + timedelta(days=5), "project.renamed", "development_reform", {"name": "?"}, stray)
    w.emit(day + timedelta(days=5), "data.provided", "big_data", {"kind": "x", "reference": "y"},
           f"{year}-620102-48-01-999999")
    w.emit(day + timedelta(days=6), "exception.approved", "development_reform",
           {"rule": "not_in_annual_plan", "reference": "兰发改〔特〕1号", "reason": "重大民生项目"}, stray)
    w.emit(day + timedelta(days=7), "land.supplied", "natural_resources",
           {"parcel": "LZ-X-4", "area_mu": 12, "method": "standard_land", "exception": "兰发改〔特〕1号"}, stray)
    w.emit(day + timedelta(days=7), "land.supplied", "natural_resources",  # far beyond the district's land plan
           {"parcel": "LZ-X-5", "area_mu": 99_999, "method": "transfer", "exception": "兰发改〔特〕1号"}, stray)
    w.emit(day + timedelta(days=8), "project.completed", "development_reform",  # still in planning
           {"date": (day + timedelta(days=8)).isoformat()}, stray)
    w.emit(day + timedelta(days=9), "project.registered", "development_reform", {  # its code taken already
        "name": "城关重复申报项目", "district": "620102", "sector": "C", "department": "industry_it",
        "owner": "某企业", "total_investment": 5000, "planned_start": f"{year}-08-01",
        "planned_completion": f"{year + 1}-08-01", "revenue_generating": False}, stray)
    w.emit(day + timedelta(days=9), "project.admitted", "development_reform", {"library": "municipal"}, stray)  # again
    w.emit(day + timedelta(days=9), "emission.advanced", "ecology_environment",  # more than the reduction holds
           {"reduction_id": f"RD-{year}-000", "pollutant": REDUCTION_POLLUTANTS[0], "tonnes": 100_000}, stray)
    w.emit(day + timedelta(days=9), "issue.resolved", "development_reform",  # an issue never raised
           {"issue_id": f"ISS-{year}-X", "resolution": "已协调解决"}, stray)
    if w.completed:  # a factor for a project already completed
        finished, code = min(w.completed)
        w.emit(finished + timedelta(days=10), "utility.connected", "water",
               {"utility": "water", "reference": "UC-LATE"}, code)
    # Resends: the same message twice is a duplicate; the same id with another body a conflict.
    resent = [m for _, _, m in w.messages if m["type"] == "data.provided"][:5]
    for message in resent:
        w.messages.append((datetime.fromisoformat(message["occurred_at"]) + timedelta(hours=1), w.serial, dict(message)))
    conflicting = dict(resent[0], payload={"kind": "changed", "reference": "changed"})
    w.messages.append((datetime.fromisoformat(resent[0]["occurred_at"]) + timedelta(hours=2), w.serial, conflicting))


#: How many days after a day's messages happened the portals send them in (录入): most the same day.
RECORDING_LAGS = {0: 70, 1: 15, 2: 10, 3: 5}


def recording_times(messages: list[dict[str, Any]], seed: int = 149, now: datetime | None = None) -> list[datetime]:
    """When each message is recorded (录入时间), for a demo replayed at once: the day it happened, a couple of
    hours later, or up to a few days after, as portals catch up with their work. The ledger records in the
    order given, so a time is never before the one before it (a day's messages wait with a late day's),
    and never after `now`."""
    rng = random.Random(f"recording-{seed}")
    weights = list(RECORDING_LAGS.values())
    times: list[datetime] = []
    lag, last_day, previous = 0, None, None
    for message in messages:
        occurred = datetime.fromisoformat(message["occurred_at"])
        day = occurred.date()
        if day != last_day:
            # A portal behind on one day is still behind on the next, by a day less.
            behind = lag - (day - last_day).days if last_day else 0
            lag, last_day = max(behind, rng.choices(list(RECORDING_LAGS), weights)[0]), day
        when = (occurred + timedelta(hours=2) if lag == 0 else
                datetime.combine(day + timedelta(days=lag), time(10), tzinfo=occurred.tzinfo))
        if previous is not None and when <= previous:
            when = previous + timedelta(seconds=1)
        if now is not None:
            when = min(when, now)
        times.append(when)
        previous = when
    return times


def batches(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
