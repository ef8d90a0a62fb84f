"""Every text a code (issue 20): the domain says *what* (`domain.texts.Detail`), and the one catalogue
(`infra.catalogue`, Babel) words it in Chinese and in English — the English exactly as it read before."""

from __future__ import annotations

import re
import string
import unicodedata
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import reference
from domain.alerts import AlertChange, SedimentationAlerts
from domain.audit import Audit, PolicyWarning
from domain.ranking import DistrictScore, allocation_advice
from domain.supervision import (
    DETAILS,
    FACTOR_RULES,
    GrantFact,
    IssueFact,
    PlanFact,
    ProjectFacts,
    ReductionFact,
    ReportFact,
    detail,
    evaluate,
    timeline,
)
from domain.texts import Detail
from infra.catalogue import KINDS, detail_json, name_of, said, said_around, text_codes, translations, warning_json
from infra.presenter import event_json
from infra.transcoder import OrjsonTranscoder
from service.ledger import Ledger
from tests.conftest import submit
from tests.portal import CODE, admitted, energy_quota, msg

D = date.fromisoformat

#: Each text of alerts, warnings and advice: representative params, its English (the sentence the
#: domain built before it had a code, character for character) and its Chinese.
EXAMPLES: dict[str, tuple[dict[str, Any], str, str]] = {
    "not_started.late": (
        {"planned_start": "2026-02-22", "days": 284, "factors": ["land", "energy"]},
        "应开未开: planned to start 2026-02-22, 284 days ago, holding land, energy",
        "计划于2026-02-22开工，已逾期284天，已保障土地、能耗"),
    "lagging.behind": (
        {"done": "12.5", "year": 2021, "expected": "50.0", "months": 6, "gap": "37.5"},
        "严重滞后: 12.5% of the 2021 plan done against 50.0% expected after 6 months (37.5 points behind)",
        "2021年度计划投资完成12.5%，按序时进度（6个月）应完成50.0%，滞后37.5个百分点"),
    "issue_overdue.unresolved": (
        {"issue": "I-1", "title": "征地拆迁", "days": 12, "due_date": "2021-06-30"},
        "issue I-1 (征地拆迁) unresolved 12 days after its due date 2021-06-30",
        "协调事项I-1（征地拆迁）办结时限为2021-06-30，已逾期12天仍未办结"),
    "reduction_overdue.due": (
        {"reduction": "R-1", "due_date": "2021-09-30"},
        "reduction R-1 advanced from is not complete by its due date 2021-09-30",
        "项目预支的减排量R-1已超过完成时限（2021-09-30）仍未完成"),
    "reduction_overdue.project_completed": (
        {"reduction": "R-1", "completed_on": "2021-08-01"},
        "project completed on 2021-08-01 before reduction R-1 was complete",
        "项目已于2021-08-01竣工，所预支的减排量R-1尚未完成"),
    "cleared.no_longer_applies": (
        {"rule": "not_started", "day": "2021-07-01"},
        "not_started no longer applies on 2021-07-01",
        "自2021-07-01起已不属应开未开情形"),
    "budget_priority.no_higher_money": (
        {"project": CODE},
        f"project {CODE} has no central or provincial budget money and no priority: municipal budget money goes to "
        "such projects first",
        f"项目{CODE}未争取到中央、省级预算内投资，也不是重点推进项目：市级预算资金应优先配套已争取到中央、省级预算内投资的项目和"
        "重点推进项目"),
    "started_before_approval.stage": (
        {"project": CODE, "stage": "generation"},
        f"project {CODE} started construction in its generation stage, before approval",
        f"项目{CODE}在项目生成阶段即已开工，早于项目审批"),
    "exemption_unverified.no_nature": (
        {"project": CODE, "nature": "epidemic_supplies"},
        f"energy exempt from the cap for project {CODE}, whose nature is not recorded, not epidemic_supplies",
        f"项目{CODE}的能耗指标不计入总量控制，但未登记项目性质，未核实为防疫物资项目"),
    "exemption_unverified.other_nature": (
        {"project": CODE, "recorded": "school", "nature": "epidemic_supplies"},
        f"energy exempt from the cap for project {CODE}, whose nature is school, not epidemic_supplies",
        f"项目{CODE}的能耗指标不计入总量控制，但项目性质登记为“school”，不是防疫物资项目"),
    # v1.2: the warnings the handlers decide
    "postponed_after_alert.not_started": (
        {"project": CODE, "planned_start": "2021-04-01", "postponed_to": "2021-09-01", "day": "2021-06-02"},
        f"project {CODE}, alerted not_started on 2021-06-02, had its planned start postponed from 2021-04-01 to "
        "2021-09-01",
        f"项目{CODE}于2021-06-02处于应开未开预警，计划开工日期由2021-04-01推迟至2021-09-01"),
    "supervision_waived.waived": (
        {"case": "DB-1", "rule": "not_started", "project": CODE},
        f"supervision case DB-1 (not_started) of project {CODE} closed as waived, neither rectified nor reclaimed",
        f"项目{CODE}的“应开未开”督办事项DB-1豁免销号，未整改到位也未收回要素"),
    "allocation_deviates.from_advice": (
        {"allocation": "AL-1", "district": "620102", "share": "70", "advised": "59.5", "tolerance": "1"},
        "allocation AL-1 gives district 620102 70 where the advice is 59.5: more than 1 (1 % of the total) apart",
        "要素分配决定AL-1分配给城关区70，建议方案为59.5，相差超过分配总量的1%（1）"),
    "advice.weight": (
        {"score": "80.0", "planned_investment": "1000", "weight": "80000.0", "percent": "100.0"},
        "score 80.0 × annual planned investment 1000 万元 = weight 80000.0, 100.0% of all",
        "得分80.0 × 年度计划投资1000万元 = 权重80000.0，占全部权重的100.0%"),
}


@pytest.mark.parametrize("code", EXAMPLES)
def test_each_text_reads_in_english_as_before_and_in_chinese_as_an_official_writes(code: str) -> None:
    params, english, chinese = EXAMPLES[code]
    assert said(code, params, "en") == english
    assert said(code, params, "zh") == chinese


def fields(wording: str) -> set[str]:
    """The names of a wording's placeholders (not how each is shown)."""
    return {name for _, name, _, _ in string.Formatter().parse(wording) if name is not None}


def representative(wording: str) -> dict[str, Any]:
    """Params for a wording: a code of the kind a placeholder names, else a number."""
    return {name: (CODE_OF[spec] if spec else 7) for _, name, spec, _ in string.Formatter().parse(wording)
            if name is not None}


#: A code of each kind, for a placeholder that shows one by its name.
CODE_OF = {"district": "620102", "sector": "C", "library": "annual", "department": "finance", "stage": "approval",
           "factor": "land", "status": "completed", "rule": "lagging", "level": "red", "change": "raised",
           "source": "special_bond", "issue_level": "city", "rejection": "forbidden", "warning": "budget_priority",
           "message": "funds.allocated", "nature": "epidemic_supplies", "utility": "power", "read_model": "stages",
           "read_model_state": "active", "channel": "kafka",
           "unit": "land", "outcome": "rectified", "case_status": "overdue", "data_kind": "planning_data",
           "land_method": "transfer", "talent_role": "responsible_leader"}


ENGLISH_WORD = re.compile(r"[A-Za-z]{2,}")
#: What a Chinese text may keep in Latin letters: the literals of the wire format a portal must send as
#: they are (JSON's names and values, the envelope's field names, the shapes of dates and codes).
WIRE_WORDS = frozenset({"JSON", "ISO", "true", "false", "department", "user", "YYYY", "MM", "DD", "AAAAAA", "NN",
                        "NNNNNN", "Za"})


def test_every_text_code_is_said_in_both_languages_with_the_same_placeholders() -> None:
    """Every text code of either catalogue (alerts, warnings, advice and the rejections') is in both,
    names the same placeholders in both, and renders in both; the Chinese has no English word of its own."""
    assert set(CODE_OF) == set(KINDS) and all(name_of(kind, code) != code for kind, code in CODE_OF.items())
    codes = text_codes("en") | text_codes("zh")
    assert set(EXAMPLES) <= codes
    assert text_codes("en") == text_codes("zh"), "a text code in one language only"
    for code in sorted(codes):
        english, chinese = translations("en").gettext(code), translations("zh").gettext(code)
        assert fields(english) == fields(chinese), code
        assert {spec for _, _, spec, _ in string.Formatter().parse(english + chinese) if spec} <= set(KINDS), code
        params = representative(chinese)
        assert said(code, params, "en") not in ("", code) and said(code, params, "zh") not in ("", code), code
        words = said(code, params, "zh")
        for value in params.values():
            words = words.replace(str(value), "")
        assert not set(ENGLISH_WORD.findall(words)) - WIRE_WORDS, (code, words)


FACTS = ProjectFacts(code=CODE, name="p", district="620102", registered_on=D("2021-01-10"),
                     planned_start=D("2021-03-01"), started_on=None,
                     grants=(GrantFact("g1", "land", D("2021-02-01")), GrantFact("g2", "energy", D("2021-02-02"))))


def details(facts: ProjectFacts, day: str) -> list[Detail]:
    """The details of the v1.1 rules (v1.2: the land and energy granted raise factor-level alerts of their own)."""
    return [a.detail for a in evaluate(facts, D(day)) if a.rule not in FACTOR_RULES]


def test_the_alerts_say_by_code_what_they_said_in_words() -> None:
    """What `domain.supervision` said as English sentences, it says by code: worded the same."""
    (late,) = details(FACTS, "2021-06-01")
    assert late == Detail("not_started.late", {"planned_start": "2021-03-01", "days": 92, "factors": ["energy", "land"]})
    assert said(late.code, late.params, "en") == "应开未开: planned to start 2021-03-01, 92 days ago, holding energy, land"
    assert said(late.code, late.params, "zh") == "计划于2021-03-01开工，已逾期92天，已保障能耗、土地"

    lagging = ProjectFacts(**{**FACTS.__dict__, "started_on": D("2021-02-15"),
                              "plans": (PlanFact(2021, Decimal(1000), D("2021-01-15")),),
                              "reports": (ReportFact("2021-03", Decimal(100), D("2021-04-05")),)})
    (behind,) = details(lagging, "2021-07-20")
    assert said(behind.code, behind.params, "en") == \
        "严重滞后: 10.0% of the 2021 plan done against 50.0% expected after 6 months (40.0 points behind)"

    issue = IssueFact("I-1", "征地", ((D("2021-03-01"), D("2021-04-30")),))
    issued = ProjectFacts(**{**FACTS.__dict__, "started_on": D("2021-02-15"), "issues": (issue,)})
    (overdue,) = details(issued, "2021-05-10")
    assert said(overdue.code, overdue.params, "en") == "issue I-1 (征地) unresolved 10 days after its due date 2021-04-30"

    advanced = GrantFact("g3", "emission", D("2021-02-03"), reduction_id="R-1")
    drawing = ProjectFacts(**{**FACTS.__dict__, "started_on": D("2021-02-15"), "grants": (advanced,),
                              "reductions": {"R-1": ReductionFact("R-1", D("2021-09-30"))}})
    (due,) = details(drawing, "2021-10-01")
    assert said(due.code, due.params, "en") == "reduction R-1 advanced from is not complete by its due date 2021-09-30"
    done = ProjectFacts(**{**drawing.__dict__, "completed_on": D("2021-08-01")})
    (completed,) = details(done, "2021-08-02")
    assert said(completed.code, completed.params, "en") == \
        "project completed on 2021-08-01 before reduction R-1 was complete"


def test_the_timeline_says_what_evaluate_says() -> None:
    (stretch, *_) = timeline(FACTS)
    assert stretch.alert(CODE, "620102", "", D("2021-06-01")).detail == details(FACTS, "2021-06-01")[0]


def test_the_advice_says_how_a_share_was_weighed() -> None:
    row = DistrictScore("620102", 1, 1, 1, Decimal(1), Decimal(1000), Decimal(0), Decimal(0), 0, 0, Decimal("80.0"),
                        rank=1)
    (share,) = allocation_advice([row], Decimal(100))
    assert detail_json(share.reason, "reason") == {
        "reason": "score 80.0 × annual planned investment 1000 万元 = weight 80000.0, 100.0% of all",
        "detail_code": "advice.weight",
        "detail_params": {"score": "80.0", "planned_investment": "1000", "weight": "80000.0", "percent": "100.0"}}


def test_a_cleared_alert_is_recorded_by_code_and_an_older_change_keeps_its_words() -> None:
    alerts = SedimentationAlerts(code=CODE, district="620102")
    (raised,) = [a for a in evaluate(FACTS, D("2021-06-01")) if a.rule == "not_started"]
    alerts.record(AlertChange(CODE, "not_started", "raised", raised), D("2021-06-01"))
    alerts.record(AlertChange(CODE, "not_started", "cleared", None), D("2021-06-02"))
    first, cleared = alerts.collect_events()[1:]
    assert (first.detail_code, first.detail_params) == (raised.detail.code, dict(raised.detail.params))
    assert cleared.said == Detail("cleared.no_longer_applies", {"rule": "not_started", "day": "2021-06-02"})
    state: dict[str, Any] = {"detail": "not_started no longer applies on 2021-06-02"}
    SedimentationAlerts.Changed.upcast_v2_v3(state)
    assert state == {"detail": "not_started no longer applies on 2021-06-02", "detail_code": None,
                     "detail_params": None}


def test_warnings_are_stored_by_code_and_older_ones_read_as_their_words() -> None:
    audit = Audit("m-1", "funds.allocated", datetime(2021, 3, 1, tzinfo=timezone.utc), "portal", "finance", "u",
                  "token:finance", CODE,
        (PolicyWarning("budget_priority", Detail("budget_priority.no_higher_money", {"project": CODE})),))
    transcoder = OrjsonTranscoder()
    assert transcoder.decode(transcoder.encode(audit)) == audit
    older = Audit(**{**audit.__dict__, "warnings": [["budget_priority", "as it was said"]]})
    assert older.warnings == (PolicyWarning("budget_priority", "as it was said"),)
    assert warning_json(older.warnings[0]) == {"code": "budget_priority", "reason": "as it was said",
                                               "detail_code": None, "detail_params": None}
    assert warning_json(audit.warnings[0]) == {"code": "budget_priority", "reason": EXAMPLES[
        "budget_priority.no_higher_money"][1], "detail_code": "budget_priority.no_higher_money",
        "detail_params": {"project": CODE}}


def test_a_warning_carries_its_code_in_the_result_and_in_the_history(memory_ledger: Ledger) -> None:
    submit(memory_ledger, *admitted(CODE, "municipal_budget"), energy_quota(100))
    (result,) = submit(memory_ledger, msg("funds.allocated", {"source": "municipal_budget", "amount": 10},
                                          dept="finance", mid="flagged-1"))
    (warning,) = result.as_json()["warnings"]
    assert warning == {"code": "budget_priority", "reason": EXAMPLES["budget_priority.no_higher_money"][1],
                       "detail_code": "budget_priority.no_higher_money", "detail_params": {"project": CODE}}
    (exempt,) = submit(memory_ledger, msg("energy.granted", {"tce": 10, "year": 2020, "exempt": True}))
    assert exempt.as_json()["warnings"][0]["reason"] == EXAMPLES["exemption_unverified.no_nature"][1]
    shown = {e["message_id"]: e for e in (event_json(i) for i in memory_ledger.history(CODE))}
    assert shown["flagged-1"]["warnings"] == [warning]


def _days_since(iso: str, day: date) -> int:
    return (day - date.fromisoformat(iso)).days


#: The sentences `domain.supervision` built before its details had codes, verbatim: the oracle the
#: catalogue's English must match for every finding.
BEFORE = {
    "not_started": lambda about, day: (f"应开未开: planned to start {about[0]}, {_days_since(about[0], day)} days "
                                       f"ago, holding {about[1]}"),
    "lagging": lambda about, day: (f"严重滞后: {about[0]}% of the {about[1]} plan done against {about[2]}% expected "
                                   f"after {about[3]} months ({about[4]} points behind)"),
    "issue_overdue": lambda about, day: (f"issue {about[0]} ({about[1]}) unresolved {_days_since(about[2], day)} "
                                         f"days after its due date {about[2]}"),
    "reduction_overdue": lambda about, day: (
        f"reduction {about[1]} advanced from is not complete by its due date {about[2]}" if about[0] == "due" else
        f"project completed on {about[2]} before reduction {about[1]} was complete"),
}

_days = st.dates(date(2016, 1, 1), date(2030, 12, 31))
_points = st.decimals(0, 1000, places=1).map(lambda d: f"{d:.1f}")
#: Titles as the parser keeps them: no control characters (refused in every text field), nor format characters
#: (a text quotes those escaped: see the test below).
_text = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cf")), min_size=1, max_size=30)
ABOUT = {
    "not_started": st.tuples(_days.map(date.isoformat), st.sets(st.sampled_from(reference.FACTORS), min_size=1).map(
        lambda fs: ", ".join(sorted(fs)))),
    "lagging": st.tuples(_points, st.integers(2016, 2030).map(str), _points, st.integers(1, 12).map(str), _points),
    "issue_overdue": st.tuples(_text, _text, _days.map(date.isoformat)),
    "reduction_overdue": st.tuples(st.sampled_from(["due", "completed"]), _text, _days.map(date.isoformat)),
}


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(ABOUT)).flatmap(lambda rule: st.tuples(st.just(rule), ABOUT[rule], _days)))
def test_every_alert_detail_reads_in_english_as_it_did_and_in_chinese_without_english(
        found: tuple[str, tuple[str, ...], date]) -> None:
    rule, about, day = found
    worded = detail(rule, about, day)
    assert said(worded.code, worded.params, "en") == BEFORE[rule](about, day)
    chinese = said(worded.code, worded.params, "zh")
    assert chinese != worded.code
    for name, value in worded.params.items():  # every param is said in Chinese too, a code by its name
        shown = [name_of("factor", v) for v in value] if name == "factors" else [str(value)]
        assert all(part in chinese for part in shown), (name, value, chinese)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(ABOUT)).flatmap(lambda rule: st.tuples(st.just(rule), ABOUT[rule], _days)),
       st.sampled_from(["zh", "en"]))
def test_a_detail_kept_as_the_words_around_its_day_count_reads_as_said_whole(
        found: tuple[str, tuple[str, ...], date], lang: str) -> None:
    """What the alert index keeps of a detail (its words around the days counted) says, once the count is
    put back, what saying the whole detail says: in both languages, whatever a title holds."""
    rule, about, day = found
    fixed, whole = DETAILS[rule](about), detail(rule, about, day)
    words = said_around(fixed.code, fixed.params, "days", lang)
    assert words is not None
    days = whole.params.get("days")
    assert (str(days).join(words) if days is not None else "".join(words)) == said(whole.code, whole.params, lang)
    assert len(words) == (2 if days is not None else 1)


@settings(max_examples=200, deadline=None)
@given(code=st.sampled_from(sorted(text_codes("en"))), text=st.text(max_size=12), lang=st.sampled_from(["zh", "en"]))
def test_no_text_quotes_a_control_or_bidirectional_character_raw(code: str, text: str, lang: str) -> None:
    """Whatever a sender put in a value a text quotes (a type, a field's value), the text shows it
    escaped: no control character and no bidirectional override reaches a page, a file or a log."""
    wording = translations("en").gettext(code)
    params = {name: ([text] if name in ("names", "choices", "missing") else text)
              for name in fields(wording) if name not in kinds_of(wording)}
    params.update({name: representative(wording)[name] for name in kinds_of(wording)})
    assert not {unicodedata.category(ch) for ch in said(code, params, lang)} & {"Cc", "Cf"}, (code, text)


def kinds_of(wording: str) -> set[str]:
    """The placeholders that name a kind of code (their values are codes, not a sender's text)."""
    return {name.split(".")[0] for _, name, spec, _ in string.Formatter().parse(wording) if name and spec in KINDS}
