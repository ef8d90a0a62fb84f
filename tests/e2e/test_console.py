"""The console over HTTP on both stores: sessions, every page, languages, and what it escapes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.console.i18n import translations
from infra.settings import Settings
from tests.conftest import submit
from tests.console import post_sign_in, sign_in, sign_out
from tests.portal import admitted, msg
from tests.readmodels import demo_store

TEMPLATES = Path(__file__).resolve().parents[2] / "api" / "console" / "templates"
HOSTILE = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with demo_store(settings, projects=30) as (ledger, reads):
        for n, name in enumerate(HOSTILE):
            submit(ledger, *admitted(f"2021-620102-48-01-88800{n}", "annual", name=name))
        from projections.runner import Runner

        runner = Runner(ledger, settings)
        runner.run_until_caught_up()
        runner.close()
        with TestClient(create_app(ledger, settings, reads), base_url="https://localhost") as test:
            yield test


def test_pages_want_a_session_and_the_cookie_is_kept_close(client: TestClient) -> None:
    away = client.get("/console/alerts?as_of=2021-09-30", follow_redirects=False)
    assert away.status_code == 303 and away.headers["location"] == "/console/login?next=/console/alerts%3Fas_of%3D2021-09-30"
    wrong = post_sign_in(client, "nope")
    assert wrong.status_code == 401 and "令牌无效" in wrong.text
    answer = post_sign_in(client, "dev-supervisor", "https://evil.example/")
    assert answer.headers["location"] == "/console"  # never sent elsewhere
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" in cookie  # served over HTTPS here
    assert "dev-supervisor" not in cookie  # the token's hash is signed in it, never the token
    assert client.get("/console").status_code == 200
    assert client.get("/v1/alerts?as_of=2021-09-30").status_code == 200  # the API's exports open with it too
    out = sign_out(client)
    assert out.status_code == 303 and client.get("/console", follow_redirects=False).status_code == 303


def test_every_page_answers_in_chinese_then_in_english(client: TestClient) -> None:
    sign_in(client)
    code = "2021-620102-48-01-888000"
    pages = ["/console", "/console?as_of=2021-09-30&year=2021", "/console/libraries/municipal",
             "/console/libraries/annual?district=620102&sector=C", "/console/alerts?as_of=2021-09-30&level=red",
             f"/console/projects/{code}", f"/console/projects/{code}?as_of=2021-02-01&from=2021-01-01&to=2021-12-31",
             "/console/ledger?year=2021", "/console/rankings?year=2021&as_of=2021-09-30&factor=land&total=1000",
             "/console/warnings", "/console/audit", "/console/audit?department=natural_resources&late_days=30",
             "/console/rejections", "/console/health", "/console/supervision",
             "/console/supervision?as_of=2021-09-30&status=overdue&district=620102"]
    for path in pages:
        page = client.get(path)
        assert page.status_code == 200, path
        assert "要素保障监管台" in page.text and 'lang="zh-CN"' in page.text, path
        assert "script-src" not in page.headers["content-security-policy"]  # nothing may run, not even inline
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
        assert "<script" not in page.text.replace("&lt;script&gt;", ""), path
    assert client.get("/console/lang/en?next=/console/alerts", follow_redirects=False).headers["location"] == \
        "/console/alerts"
    english = client.get("/console/alerts?as_of=2021-09-30")
    assert "Factor guarantee console" in english.text and 'lang="en"' in english.text
    assert client.get("/console/projects/2021-620102-48-01-999998").status_code == 404


def test_names_that_look_like_markup_are_shown_as_text(client: TestClient) -> None:
    sign_in(client)
    for n, name in enumerate(HOSTILE):
        for path in (f"/console/projects/2021-620102-48-01-88800{n}", "/console/libraries/annual?district=620102"):
            page = client.get(path).text
            assert name not in page, path  # never as markup
            assert name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;") \
                in page, path


def test_a_portal_sees_only_its_own_rejections_in_the_console(client: TestClient) -> None:
    portal = {"Authorization": "Bearer dev-big_data"}
    client.post("/v1/messages", json=msg("data.provided", {"kind": "k", "reference": "r"}, dept="big_data",
                                         code="2021-620102-48-01-777777", mid="mine-1"), headers=portal)
    sign_in(client, "dev-big_data")
    page = client.get("/console/rejections").text
    assert "mine-1" in page and "demo-2021" not in page
    # The header names the portal by its department, not by its token's name (big_data-portal).
    assert '<span class="who">市大数据管理局 · 门户</span>' in page and "big_data-portal" not in page


def test_the_header_names_a_supervisor_without_repeating_the_role(client: TestClient) -> None:
    sign_in(client)
    assert '<span class="who">监管人员</span>' in client.get("/console/rejections").text


def test_the_audit_search_filters_and_links_each_row_to_its_project(client: TestClient) -> None:
    sign_in(client)
    code = "2021-620102-48-01-888000"
    page = client.get(f"/console/audit?project={code}").text
    assert "审计查询" in page and f'href="/console/projects/{code}"' in page
    assert page.count("<tr>") - 1 == len(client.get(f"/v1/audit?project={code}").json()["entries"])  # one header row
    assert "没有符合条件的记录" in client.get("/console/audit?actor=nobody-at-all").text
    assert 'href="/v1/audit?' in page and "format=xlsx" in page
    full = client.get("/console/audit")
    assert "下一页" in full.text  # more than a page: the next one is a link away


def test_every_label_has_its_chinese() -> None:
    used = {m for path in TEMPLATES.glob("*.html") for m in re.findall(r'_\("([^"]+)"\)', path.read_text())}
    zh = translations("zh")
    untranslated = sorted(m for m in used if zh.gettext(m) == m)
    assert used and not untranslated, untranslated


@pytest.mark.parametrize("path", ["/console/rankings?year=2021&as_of={}", "/console/alerts?as_of={}", "/console?as_of={}"])
def test_every_page_reads_a_date_as_the_api_does(client: TestClient, path: str) -> None:
    """A date the API refuses (400) is not read by any page either: it shows its default day, whichever
    parser it uses (a listing's declaration, or the overview's and the ranking's own)."""
    sign_in(client)
    for refused in ("20210630", "2021-W26-3", "2021-02-30", "٢٠٢١-٠٦-٣٠", "1989-06-30"):
        assert client.get(f"/v1/alerts?as_of={refused}").status_code == 400, refused
        page = client.get(path.format(refused))
        assert page.status_code == 200 and "2021-06-30" not in page.text, (path, refused)
    assert "2021-06-30" in client.get(path.format("2021-06-30")).text
