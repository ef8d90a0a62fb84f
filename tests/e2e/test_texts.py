"""Every text a code, over HTTP (issue 20): the API gives each alert detail, warning reason and advice
reason in English with its `detail_code` and `detail_params`; the console says them in Chinese, and a
Chinese page shows no English of its own."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Iterator

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from infra.catalogue import said
from infra.settings import Settings
from tests.console import sign_in
from tests.readmodels import demo_client, read_json

AS_OF = "2021-09-30"


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with demo_client(settings, projects=40) as test:
        yield test


def test_each_text_comes_with_its_code_and_reads_in_chinese_on_the_console(client: TestClient) -> None:
    alerts = read_json(client, f"/v1/alerts?as_of={AS_OF}")["alerts"]
    warnings = read_json(client, "/v1/warnings?limit=1000")["warnings"]
    shares = read_json(client, f"/v1/allocation/advice?year=2021&factor=land&total=1000&as_of={AS_OF}")["shares"]
    assert alerts and warnings and shares, "the demo must give alerts, warnings and advice"
    for item, words in [*((a, a["detail"]) for a in alerts), *((w, w["reason"]) for w in warnings),
                        *((s, s["reason"]) for s in shares)]:
        assert item["detail_code"] and isinstance(item["detail_params"], dict), item
        assert words == said(item["detail_code"], item["detail_params"], "en")
    assert {a["detail_code"].partition(".")[0] for a in alerts} <= {a["rule"] for a in alerts}

    sign_in(client)
    for path, items in ((f"/console/alerts?as_of={AS_OF}", alerts), ("/console/warnings", warnings),
                        (f"/console/rankings?year=2021&as_of={AS_OF}&factor=land&total=1000", shares)):
        page = client.get(path).text
        for item in items[:20]:
            chinese = said(item["detail_code"], item["detail_params"], "zh")
            assert str(escape(chinese)) in page, (path, chinese)
            english = item["detail"] if "detail" in item else item["reason"]
            assert str(escape(english)) not in page, (path, english)


#: Elements without an end tag.
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})


class _Text(HTMLParser):
    """A page's words as a reader sees them: its text and titles, not its markup, styles, `<code>` or
    what is marked as another language (the link to the English page)."""

    def __init__(self) -> None:
        super().__init__()
        self.words: list[str] = []
        self._skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID:
            pass
        elif self._skipping or tag in ("code", "style", "script") or dict(attrs).get("lang", "zh-CN") != "zh-CN":
            self._skipping.append(tag)
        if self._skipping:
            return
        for name, value in attrs:
            if name in ("title", "placeholder", "aria-label") and value:
                self.words.append(value)

    def handle_endtag(self, tag: str) -> None:
        if self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.words.append(data)


#: Words a Chinese page may show: the names of products, standards and formats, the signed-in token's
#: name (an identifier its administrator chose: the test's is `supervisor`) and the channel the tests
#: submit through (`test`: no portal's).
ALLOWED = frozenset({"CSV", "XLSX", "JSON", "API", "UTC", "Kafka", "HTTP", "Excel", "supervisor", "test"})
#: What is an identifier, not a word: codes, ids, positions, dates, and the commands an operator types.
IDENTIFIER = re.compile(r"yaosu(?: [a-z-]+)+|[\w.:@/-]*\d[\w.:@/-]*|[a-z]+(?:[_.:-][a-z0-9]+)+")


def english_on(html: str) -> set[str]:
    parser = _Text()
    parser.feed(html)
    text = IDENTIFIER.sub(" ", " ".join(parser.words))
    return {word for word in re.findall(r"[A-Za-z]{2,}", text) if word not in ALLOWED}


def test_a_chinese_page_shows_no_english(client: TestClient) -> None:
    sign_in(client)
    code = read_json(client, f"/v1/alerts?as_of={AS_OF}")["alerts"][0]["project_code"]
    # A project being built has every kind of grant: funds, land, utilities (named by code), talent.
    built = next(s for s in read_json(client, "/v1/stages")["stages"] if s["stage"] == "construction")["projects"][0]["code"]
    pages = ["/console", f"/console?as_of={AS_OF}&year=2021", "/console/libraries/municipal",
             "/console/libraries/annual?district=620102", f"/console/alerts?as_of={AS_OF}",
             f"/console/projects/{code}", f"/console/projects/{code}?as_of=2021-06-01&from=2021-01-01&to=2021-12-31",
             f"/console/projects/{built}",
             "/console/ledger?year=2021", f"/console/rankings?year=2021&as_of={AS_OF}&factor=land&total=1000",
             "/console/warnings", "/console/audit", "/console/rejections", "/console/health",
             f"/console/supervision?as_of={AS_OF}"]
    found = {}
    for path in pages:
        page = client.get(path)
        assert page.status_code == 200 and 'lang="zh-CN"' in page.text, path
        if english := english_on(page.text):
            found[path] = sorted(english)
    assert not found, "\n".join(f"{path}: {words}" for path, words in found.items())
