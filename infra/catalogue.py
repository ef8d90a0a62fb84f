"""The one catalogue of what supervisors read (措辞与名称): names of codes and the domain's texts, in
Chinese and in English.

Texts are Babel message catalogues under `infra/locale/`: `zh_CN` (the console's English msgids,
and every text code) and `en` (every text code). A text is said by its code and parameters
(`domain.texts.Detail`): `said(code, params, lang)`; a placeholder may name the kind of code it
holds (`{factors:factor}`), shown by `name_of`. `name_of(kind, code, lang)` is the one way to
show a code.
"""

from __future__ import annotations

import gettext
import string
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any, Final, Mapping

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from domain import reference
from domain.audit import PolicyWarning
from domain.commands import COMMANDS
from domain.policy import WARNING_CODES
from domain.rejections import REJECTION_CODES
from domain.texts import Detail

#: The Chinese name of each code, by kind.
CHINESE: Final[dict[str, dict[str, str]]] = {
    "district": {reference.CITY_CODE: "兰州市", **reference.DISTRICTS},
    "sector": reference.SECTORS,
    "library": reference.LIBRARIES,
    "department": {**reference.DEPARTMENTS,
                   **{reference.district_portal(d): f"{name}门户" for d, name in reference.DISTRICTS.items()}},
    "stage": {"planning": "项目谋划", "generation": "项目生成", "approval": "项目审批", "construction": "项目建设",
              "completion": "项目竣工"},
    "factor": {"funds": "资金", "land": "土地", "energy": "能耗", "emission": "排放指标", "data": "数据",
               "utilities": "水电气暖", "talent": "人才", "coordination": "协调服务"},
    "status": {"not_started": "未开工", "under_construction": "在建", "completed": "已竣工", "cancelled": "已撤销"},
    "rule": {"not_started": "应开未开", "lagging": "严重滞后", "issue_overdue": "协调事项逾期",
             "reduction_overdue": "减排量逾期"},
    "level": {"yellow": "黄色", "red": "红色"},
    "nature": {reference.EPIDEMIC_SUPPLIES: "防疫物资"},
    "change": {"raised": "发出", "escalated": "升级", "deescalated": "降级", "cleared": "解除"},
    "source": {"central_budget": "中央预算内投资", "provincial_budget": "省级预算内投资",
               "municipal_budget": "市级预算内投资", "special_bond": "专项债券", "general_bond": "一般债券",
               "enterprise_bond": "企业债券", "green_fund": "绿色生态产业发展基金", "bank_loan": "银行贷款",
               "own_funds": "自有资金"},
    "issue_level": {"district": "县区级", "department": "部门级", "city": "市级", "province": "省级"},
    "rejection": {"invalid": "格式或取值错误", "unknown_type": "未知消息类型", "unknown_project": "项目未登记",
                  "already_registered": "项目已登记", "not_admitted": "未入库", "not_in_annual_plan": "未列入年度计划",
                  "not_in_library": "未入相应项目库", "quota_exceeded": "超出年度指标", "credit_exceeded": "超出可预支减排量",
                  "bond_not_eligible": "不符合债券条件", "stage_order": "阶段顺序不符", "closed_project": "项目已关闭",
                  "forbidden": "无权报送", "conflict": "消息编号重复", "unknown_reference": "引用对象不存在",
                  "invalid_state": "与当前状态不符"},
    "warning": {"budget_priority": "市级预算未优先配套", "started_before_approval": "审批前开工",
                "exemption_unverified": "能耗豁免未核实"},
    "message": {"project.registered": "项目登记", "plan.set": "年度计划", "project.admitted": "入库",
                "project.released": "出库", "stage.advanced": "阶段推进", "funds.allocated": "资金安排",
                "bond.evaluated": "债券评估", "land.supplied": "土地供应", "energy.granted": "能耗指标",
                "emission.reduction_registered": "减排量登记", "emission.advanced": "排放指标预支",
                "emission.reduction_completed": "减排完成", "data.provided": "数据提供", "utility.connected": "水电气暖接入",
                "talent.assigned": "人才保障", "issue.escalated": "协调事项上报", "issue.resolved": "协调事项办结",
                "construction.started": "开工", "investment.pitched": "招商推介", "investment.reported": "投资完成上报",
                "project.completed": "竣工", "project.cancelled": "撤销", "factor.reclaimed": "要素收回",
                "exception.approved": "例外审批", "quota.set": "年度指标", "alert.raised": "预警发出",
                "alert.escalated": "预警升级", "alert.deescalated": "预警降级", "alert.cleared": "预警解除"},
}

#: English names where a code alone reads poorly; the rest read from the code itself.
ENGLISH: Final[dict[str, dict[str, str]]] = {
    "district": {"620100": "Lanzhou", "620102": "Chengguan", "620103": "Qilihe", "620104": "Xigu", "620105": "Anning",
                 "620111": "Honggu", "620121": "Yongdeng", "620122": "Gaolan", "620123": "Yuzhong",
                 "620171": "Lanzhou New Area", "620190": "Hi-tech Zone", "620191": "Economic Zone",
                 "620192": "Inland Port", "620193": "Yuzhong Eco-Innovation City"},
    "library": {"fyp14": "14th Five-Year Plan", "rolling3y": "Three-year rolling", "municipal": "Municipal (district × sector)"},
}
KINDS: Final = tuple(CHINESE)

assert set(CHINESE["rejection"]) == set(REJECTION_CODES), "every rejection code needs its Chinese name"
assert set(CHINESE["warning"]) == set(WARNING_CODES), "every warning code needs its Chinese name"
assert set(CHINESE["factor"]) == set(reference.FACTORS) and set(CHINESE["stage"]) == set(reference.STAGES)
assert set(COMMANDS) <= set(CHINESE["message"]), "every message type needs its Chinese name"


def name_of(kind: str, code: str | None, lang: str = "zh") -> str:
    """How a code is shown: its name in the language asked for, or the code itself if it has none."""
    if code is None:
        return ""
    if lang == "zh":
        return CHINESE.get(kind, {}).get(code, code)
    english = ENGLISH.get(kind, {}).get(code)
    if english:
        return english
    if kind in ("department", "sector") and code in CHINESE[kind] and not code.startswith("district:"):
        return code.replace("_", " ").capitalize() if kind == "department" else f"{code} {CHINESE[kind][code]}"
    return code.replace("_", " ")


LOCALE = Path(__file__).resolve().parent / "locale"
#: The catalogue of each language the console and the exports speak.
LOCALES: Final = {"zh": "zh_CN", "en": "en"}


@cache
def translations(lang: str) -> gettext.GNUTranslations:
    """The language's catalogue (a msgid it lacks is said as itself: the console's English)."""
    with (LOCALE / LOCALES[lang] / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalogue = read_po(po, locale=LOCALES[lang])
    compiled = BytesIO()
    write_mo(compiled, catalogue)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


@cache
def text_codes(lang: str = "en") -> frozenset[str]:
    """Every text code the language's catalogue says (a code is a msgid with a dot and no space)."""
    with (LOCALE / LOCALES[lang] / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalogue = read_po(po, locale=LOCALES[lang])
    return frozenset(str(m.id) for m in catalogue if m.id and " " not in str(m.id) and "." in str(m.id) and m.string)


class _Wording(string.Formatter):
    """Fills a text's placeholders: `{name:kind}` shows a code (or a list of codes) by its name."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec in KINDS:
            codes = value if isinstance(value, (list, tuple)) else [value]
            return ("、" if self.lang == "zh" else ", ").join(name_of(format_spec, str(c), self.lang) for c in codes)
        if isinstance(value, (list, tuple)):
            return ("、" if self.lang == "zh" else ", ").join(str(v) for v in value)
        return super().format_field(value, format_spec)


def said(code: str, params: Mapping[str, Any], lang: str = "en") -> str:
    """A text in the language asked for; a code the catalogue lacks is said as the code itself."""
    wording = translations(lang).gettext(code)
    return _Wording(lang).vformat(wording, (), dict(params)) if wording != code else code


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
