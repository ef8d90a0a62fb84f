"""`yaosu notify`'s parts that need no broker: the targets file, routing, retries and quiet hours, the
messages in Chinese, the robots' bodies, DingTalk's signing."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers import notices
from consumers.notices import Notice
from consumers.targets import QuietHours, Retry, TargetsError, load, parse
from tests.receiver import dingtalk_signature_ok
from yaosu import cli

CONSOLE = "https://yaosu.example.gov.cn"


def alert(**overrides: Any) -> Notice:
    value = {"position": 41, "change": "raised", "project_code": "2026-620102-48-01-000001", "rule": "not_started",
             "ref": None, "level": "red", "since": "2026-02-22", "detail": "x", "detail_code": "not_started.late",
             "detail_params": {"planned_start": "2026-02-22", "days": 284, "factors": ["land", "energy"]},
             "department": "development_reform", "leader": "王建国（副市长）", "as_of": "2026-12-02",
             "district": "620102", "subject": "2026-620102-48-01-000001", "case_id": None, **overrides}
    return notices.alert_notice(value, "兰州市第一人民医院迁建项目")


def supervision(kind: str, data: dict[str, Any], case: dict[str, Any] | None = None) -> Notice:
    value = {"position": 77, "type": f"supervision.{kind}", "subject": "2026-620102-48-01-000001",
             "project_code": "2026-620102-48-01-000001", "district": "620102", "data": data,
             "occurred_at": "2026-12-01T09:00:00+08:00"}
    return notices.supervision_notice(value, "兰州市第一人民医院迁建项目", case, "王建国（副市长）")


def test_an_alert_is_told_in_chinese_with_project_rule_level_responsible_and_link() -> None:
    text = notices.markdown(alert(), CONSOLE)
    assert text.splitlines()[0] == "### 【红色预警】兰州市第一人民医院迁建项目"
    for said in ("项目：兰州市第一人民医院迁建项目（2026-620102-48-01-000001）", "规则：应开未开", "等级：红色",
                 "情况：计划于2026-02-22开工，已逾期284天，已保障土地、能耗", "责任单位：市发展和改革委员会",
                 "包抓领导：王建国（副市长）", "日期：2026-12-02",
                 f"[在监管台查看]({CONSOLE}/console/projects/2026-620102-48-01-000001)"):
        assert said in text, said
    cleared = notices.markdown(alert(change="cleared", level=None, leader=None), CONSOLE)
    assert cleared.startswith("### 【预警解除】") and "等级" not in cleared and "包抓领导：未明确" in cleared
    escalated = notices.markdown(alert(change="escalated"), CONSOLE)
    assert escalated.startswith("### 【预警升级为红色】")


def test_an_approvals_alert_names_its_subject_and_links_to_the_alerts() -> None:
    notice = alert(project_code=None, subject="PC-2021-001", rule="land_unsupplied", department="natural_resources")
    text = notices.markdown(notice, CONSOLE)
    assert "对象：PC-2021-001" in text and f"({CONSOLE}/console/alerts)" in text


def test_supervision_events_are_told_with_the_case_its_demand_response_and_outcome() -> None:
    case = {"case_id": "DB-1", "rule": "land_idle", "responsible": "natural_resources", "due_date": "2026-12-16"}
    assigned = notices.markdown(supervision("assigned", {"case_id": "DB-1", "rule": "land_idle", "grant_id": "g",
                                                         "responsible": "natural_resources",
                                                         "due_date": "2026-12-16", "demand": "督促动工"}), CONSOLE)
    for said in ("### 【督办交办】兰州市第一人民医院迁建项目", "规则：供而未用", "督办编号：DB-1", "办结时限：2026-12-16",
                 "督办要求：督促动工", "责任单位：市自然资源局", "包抓领导：王建国（副市长）",
                 f"({CONSOLE}/console/supervision/DB-1)"):
        assert said in assigned, said
    responded = notices.markdown(supervision("responded", {"case_id": "DB-1", "measures": "约谈企业",
                                                           "expected_by": "2026-12-31"}, case), CONSOLE)
    assert "整改措施：约谈企业（预计2026-12-31完成）" in responded
    # a response does not repeat the case's rule and responsible department: they come from the case
    assert "规则：供而未用" in responded and "责任单位：市自然资源局" in responded
    closed = notices.markdown(supervision("closed", {"case_id": "DB-1", "outcome": "waived", "note": "另行处理"}, case),
                              CONSOLE)
    assert closed.startswith("### 【督办销号】") and "销号结果：" in closed and "；另行处理" in closed


@given(st.text(max_size=40), st.text(max_size=40))
def test_what_a_sender_wrote_cannot_add_lines_or_turn_text_around(name: str, demand: str) -> None:
    """A project's name or a demand is quoted inert: however it is written, the message keeps its lines."""
    def told(project_name: str, demand_said: str) -> str:
        value = {"position": 77, "type": "supervision.assigned", "subject": "s",
                 "project_code": "2026-620102-48-01-000001", "district": "620102",
                 "data": {"case_id": "DB-1", "rule": "land_idle", "demand": demand_said, "responsible": "finance",
                          "due_date": "2026-12-16"}}
        return notices.markdown(notices.supervision_notice(value, project_name, None, None), CONSOLE)

    plain, text = told("x", "x"), told(name, demand)
    assert len(text.splitlines()) == len(plain.splitlines())
    assert not any(ch in text for ch in "\u202e\u202d\u2066\u2067\u0000\r\u2028\u2029")


def test_each_kind_of_target_gets_the_body_its_documentation_specifies() -> None:
    notice = alert()
    wecom = orjson.loads(notices.body("wecom", notice, CONSOLE, "yaosu-41-a"))
    assert wecom == {"msgtype": "markdown", "markdown": {"content": notices.markdown(notice, CONSOLE)}}
    dingtalk = orjson.loads(notices.body("dingtalk", notice, CONSOLE, "yaosu-41-b"))
    assert dingtalk == {"msgtype": "markdown", "markdown": {"title": "【红色预警】兰州市第一人民医院迁建项目",
                                                            "text": notices.markdown(notice, CONSOLE)}}
    hook = orjson.loads(notices.body("webhook", notice, CONSOLE, "yaosu-41-c"))
    assert hook["delivery_id"] == "yaosu-41-c" and hook["change_id"] == 41 and hook["level"] == "red"
    assert hook["department_name"] == "市发展和改革委员会" and hook["link"].endswith("/console/projects/2026-620102-48-01-000001")


@given(st.text(min_size=1, max_size=80), st.integers(min_value=10**12, max_value=10**13 - 1))
def test_a_dingtalk_signature_is_what_dingtalk_documents(secret: str, timestamp_ms: int) -> None:
    url = notices.signed_url("https://oapi.dingtalk.com/robot/send?access_token=abc", secret, timestamp_ms)
    query = parse_qs(urlsplit(url).query)
    assert query["access_token"] == ["abc"] and query["timestamp"] == [str(timestamp_ms)]
    assert dingtalk_signature_ok(secret, query["timestamp"][0], query["sign"][0], timestamp_ms)
    assert not dingtalk_signature_ok(secret + "x", query["timestamp"][0], query["sign"][0], timestamp_ms)
    assert not dingtalk_signature_ok(secret, query["timestamp"][0], query["sign"][0], timestamp_ms + 3_600_001)


def test_a_known_dingtalk_signature() -> None:
    # Computed by DingTalk's own Python sample (timestamp + "\n" + secret, HMAC-SHA256, base64, quote_plus).
    assert notices.dingtalk_sign("SECabc", 1700000000000) == "jcUpW0QmtKduN03n4JqQ0PBosVjqnM8gU7fIIvsDmCM%3D"


GOOD = {"targets": [{"name": "a", "kind": "wecom", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"}]}


@pytest.mark.parametrize(("content", "where", "code"), [
    ([], "file", "not_an_object"),
    ({}, "targets", "no_targets"),
    ({"targets": []}, "targets", "no_targets"),
    ({**GOOD, "extra": 1}, "extra", "unknown_field"),
    ({"targets": [{**GOOD["targets"][0], "kind": "slack"}]}, "targets[0].kind", "unknown_kind"),
    ({"targets": [{**GOOD["targets"][0], "url": "ftp://x"}]}, "targets[0].url", "invalid_url"),
    ({"targets": [{**GOOD["targets"][0], "name": "has space"}]}, "targets[0].name", "invalid_name"),
    ({"targets": [GOOD["targets"][0], GOOD["targets"][0]]}, "targets[1].name", "duplicate_name"),
    ({"targets": [{**GOOD["targets"][0], "kind": "dingtalk"}]}, "targets[0].secret", "missing_secret"),
    ({"targets": [{**GOOD["targets"][0], "secret": "SEC"}]}, "targets[0].secret", "unexpected_secret"),
    ({"targets": [{**GOOD["targets"][0], "departments": ["police"]}]}, "targets[0].departments", "unknown_code"),
    ({"targets": [{**GOOD["targets"][0], "districts": "620102"}]}, "targets[0].districts", "invalid"),
    ({"targets": [{**GOOD["targets"][0], "levels": ["orange"]}]}, "targets[0].levels", "unknown_code"),
    ({"targets": [{**GOOD["targets"][0], "quiet_hours": "22-7"}]}, "targets[0].quiet_hours", "invalid_hours"),
    ({"targets": [{**GOOD["targets"][0], "colour": "red"}]}, "targets[0].colour", "unknown_field"),
    ({"targets": [{**GOOD["targets"][0], "digest": "8:30"}]}, "targets[0].digest", "invalid_time"),
    ({**GOOD, "retry": {"attempts": 0}}, "retry.attempts", "invalid"),
    ({**GOOD, "retry": {"attempts": 2.5}}, "retry.attempts", "invalid"),
    ({**GOOD, "retry": {"first_seconds": 10, "most_seconds": 5}}, "retry.first_seconds", "invalid"),
])
def test_each_mistake_in_the_targets_file_is_named_by_its_place_and_code(content: Any, where: str, code: str) -> None:
    with pytest.raises(TargetsError) as refused:
        parse(Path("targets.json"), content)
    assert (where, code) in [(w, c) for w, c, _ in refused.value.problems]
    assert f"{where}: " in str(refused.value) and f"[{code}]" in str(refused.value)


def test_a_file_that_is_missing_or_not_json_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TargetsError, match=r"not_found"):
        load(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{targets: ")
    with pytest.raises(TargetsError, match=r"file: .*\[not_json\]"):
        load(tmp_path / "bad.json")


def test_routing_by_department_district_level_and_kind() -> None:
    found = parse(Path("t.json"), {"targets": [
        {"name": "red-nr", "kind": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send?access_token=x",
         "secret": "SECx", "departments": ["natural_resources"], "districts": ["620102"], "levels": ["red"],
         "events": ["alert"]}]})
    target = found.targets[0]
    assert target.covers("alert", "natural_resources", "620102", "red")
    assert target.covers("alert", "natural_resources", "620102", None)  # a cleared alert
    assert not target.covers("alert", "natural_resources", "620102", "yellow")
    assert not target.covers("alert", "finance", "620102", "red")
    assert not target.covers("alert", "natural_resources", "620103", "red")
    assert not target.covers("supervision", "natural_resources", "620102", None)
    assert parse(Path("t.json"), GOOD).targets[0].covers("supervision", "finance", "620190", None)


def test_retries_wait_doubling_up_to_a_bound_and_give_up_after_attempts_or_age() -> None:
    retry = Retry(first_seconds=10, most_seconds=60, attempts=5, max_age_hours=1)
    assert [retry.wait(n) for n in range(1, 6)] == [10, 20, 40, 60, 60]
    assert not retry.gives_up(4, 3599) and retry.gives_up(5, 0) and retry.gives_up(1, 3600)


def test_quiet_hours_are_city_time_and_may_span_midnight() -> None:
    night = parse(Path("t.json"), {"targets": [{**GOOD["targets"][0], "quiet_hours": "22:00-07:00"}]}).targets[0]
    hours = night.quiet_hours
    assert isinstance(hours, QuietHours)
    utc = timezone.utc
    assert hours.holds(datetime(2026, 12, 3, 14, 30, tzinfo=utc))  # 22:30 in the city
    assert hours.holds(datetime(2026, 12, 3, 22, 59, tzinfo=utc))  # 06:59
    assert not hours.holds(datetime(2026, 12, 3, 23, 0, tzinfo=utc))  # 07:00
    assert not hours.holds(datetime(2026, 12, 3, 4, 0, tzinfo=utc))  # noon


def test_yaosu_notify_refuses_to_start_on_a_bad_targets_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("YAOSU_STORE", f"sqlite:///{tmp_path / 'events.db'}")
    monkeypatch.delenv("YAOSU_NOTIFY_TARGETS", raising=False)
    assert cli.main(["notify", "--check"]) == 2
    assert "yaosu notify: set YAOSU_NOTIFY_TARGETS to the targets file" in capsys.readouterr().err
    bad = tmp_path / "targets.json"
    bad.write_text(orjson.dumps({"targets": [{"name": "a", "kind": "slack", "url": "https://x"}]}).decode())
    monkeypatch.setenv("YAOSU_NOTIFY_TARGETS", str(bad))
    assert cli.main(["notify", "--check"]) == 2
    assert "targets[0].kind: must be one of wecom, dingtalk, webhook (got 'slack') [unknown_kind]" in capsys.readouterr().err
    assert not (tmp_path / "events.db").exists()  # refused before the store was opened
    bad.write_text(orjson.dumps(GOOD).decode())
    assert cli.main(["notify", "--check"]) == 0
    assert "1 target(s): a" in capsys.readouterr().out


def test_a_digest_is_due_from_its_city_time_and_covers_what_came_before() -> None:
    daily = parse(Path("t.json"), {"targets": [{**GOOD["targets"][0], "digest": "08:30"}]}).targets[0]
    utc = timezone.utc
    assert daily.digest_due(datetime(2026, 12, 3, 0, 30, tzinfo=utc)).isoformat() == "2026-12-03T08:30:00+08:00"
    assert daily.digest_due(datetime(2026, 12, 3, 0, 29, tzinfo=utc)).isoformat() == "2026-12-02T08:30:00+08:00"
    assert parse(Path("t.json"), GOOD).targets[0].digest_due(datetime(2026, 12, 3, tzinfo=utc)) is None
