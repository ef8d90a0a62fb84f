"""Issue 19's doors, kept shut: bounded form bodies, CSRF, sessions and withdrawn tokens across
processes, Host names, strict query numbers, read deadlines, session secrets, formula cells, framing."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
import unicodedata
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import quote, quote_from_bytes

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from api.app import create_app
from api.exports import _FORMULA_START, _csv_text
from infra.parsing import ascii_integer
from infra.settings import Settings
from infra.tokens import TokensFile, add_token
from service.bootstrap import build_ledger
from tests.conftest import LOCAL, submit
from tests.console import FORM, csrf_of, post_sign_in, sign_in, sign_out
from tests.e2e.test_server import environment, serving
from tests.portal import CODE, admitted, msg
from tests.readmodels import demo_store
from tools.common import free_port

ADMIN = {"Authorization": "Bearer dev-admin"}
SUPERVISOR = {"Authorization": "Bearer dev-supervisor"}
SECRET = b"s" * 32


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    ledger = build_ledger(settings)
    try:
        with TestClient(create_app(ledger, settings), base_url=LOCAL) as test:
            yield test
    finally:
        ledger.close()


def within(seconds: float, condition: Callable[[], bool], what: str) -> None:
    """Wait (bounded, generously) until `condition` holds; fail naming what did not happen."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds}s: {what}")
        time.sleep(0.1)


# --- item 2: a form's body is counted while it is read ----------------------------------------


def test_a_sign_in_form_over_a_forms_size_is_refused_before_it_is_read(client: TestClient) -> None:
    csrf = csrf_of(client.get("/console/login").text)
    answer = client.post("/console/login", content=f"csrf={csrf}&token=dev-admin&next=" + "a" * 9000, headers=FORM)
    assert answer.status_code == 413 and answer.json()["code"] == "body_too_large"
    assert "yaosu_session" not in answer.headers.get("set-cookie", "")


def test_a_chunked_sign_in_body_stops_near_the_forms_limit(tmp_path: Path) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(64 * 1024):  # 64 MiB, never Content-Length
            sent += 1024
            yield b"a" * 1024

    with serving(f"sqlite:///{tmp_path / 'form.db'}") as url:
        try:
            answer = httpx.post(f"{url}/console/login", content=chunks(), headers=FORM, timeout=60)
            assert answer.status_code == 413 and answer.json()["code"] == "body_too_large"
        except httpx.HTTPError:
            pass  # the server may close the connection while the client still sends: also a refusal
    # It stopped near 8 KiB, not after 64 MiB: what the client had sent by then also fills the sockets'
    # buffers while the server is busy (2.3 MiB seen on a loaded 2-core machine), so the bound is loose.
    assert sent < 16 * 1024 * 1024


# --- item 3: cookies never write; forms come from here with their token ------------------------


def test_the_console_cookie_does_not_authenticate_a_write(client: TestClient) -> None:
    ledger = client.app.state.ledger  # type: ignore[attr-defined]
    sign_in(client, "dev-admin")
    head = ledger.head()
    # What a page of another origin can make a browser send: no-cors, text/plain, with the cookie.
    forged = client.post("/v1/messages", content=orjson.dumps(msg("data.provided", {"kind": "k"}, dept="big_data")),
                         headers={"content-type": "text/plain", "origin": "http://localhost:9999"})
    assert forged.status_code == 401 and forged.json()["code"] == "unauthenticated"
    assert ledger.head() == head  # nothing stored, not even a rejection
    assert client.get("/v1/rejections").status_code == 200  # the console's downloads still open with it


def test_signing_in_wants_the_forms_token_of_this_browser(client: TestClient) -> None:
    without = client.post("/console/login", content="token=dev-admin&next=/console", headers=FORM,
                          follow_redirects=False)
    assert without.status_code == 403 and "已拒绝" in without.text and "yaosu_session" not in str(without.cookies)
    # A token taken by another browser (the attacker's own visit) does not go with this one's cookie.
    other = TestClient(client.app, base_url=LOCAL)
    stolen = csrf_of(other.get("/console/login").text)
    client.get("/console/login")
    forged = client.post("/console/login", data={"token": "dev-admin", "next": "/console", "csrf": stolen},
                         follow_redirects=False)
    assert forged.status_code == 403
    assert post_sign_in(client, "dev-admin").status_code == 303


@pytest.mark.parametrize("headers", [
    {"origin": "http://localhost:9999"},  # another port of the same host: same site, another origin
    {"origin": "http://evil.example"},
    {"origin": "null"},
    {"sec-fetch-site": "same-site"},
    {"sec-fetch-site": "cross-site"},
])
def test_forms_from_another_origin_are_refused_with_a_page(client: TestClient, headers: dict[str, str]) -> None:
    refused = post_sign_in(client, "dev-admin", **headers)
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("text/html")
    assert "已拒绝" in refused.text and "yaosu_session" not in refused.headers.get("set-cookie", "")
    sign_in(client, "dev-admin")
    csrf = csrf_of(client.get("/console/rejections").text)
    out = client.post("/console/logout", data={"csrf": csrf}, headers=headers, follow_redirects=False)
    assert out.status_code == 403
    assert client.get("/console/rejections", follow_redirects=False).status_code == 200  # still signed in


def test_forms_from_this_origin_are_accepted(client: TestClient) -> None:
    here = {"origin": "http://localhost", "sec-fetch-site": "same-origin"}
    assert post_sign_in(client, "dev-admin", **here).status_code == 303
    forged = client.post("/console/logout", data={"csrf": "x" * 43}, headers=here, follow_redirects=False)
    assert forged.status_code == 403  # the right origin, but not this session's token
    csrf = csrf_of(client.get("/console/rejections").text)
    assert client.post("/console/logout", data={"csrf": csrf}, headers=here, follow_redirects=False).status_code == 303
    assert client.get("/console/rejections", follow_redirects=False).status_code == 303


# --- item 4: sign-out and withdrawal reach every process on the store --------------------------


@pytest.fixture
def two_apps(store: str) -> Iterator[tuple[TestClient, TestClient]]:
    """Two app instances on one store, as two `yaosu serve` behind one address (one session secret)."""
    settings = Settings(store=store, session_secret=SECRET)
    ledgers = [build_ledger(settings), build_ledger(settings)]
    try:
        with TestClient(create_app(ledgers[0], settings), base_url=LOCAL) as a, \
                TestClient(create_app(ledgers[1], settings), base_url=LOCAL) as b:
            yield a, b
    finally:
        for ledger in ledgers:
            ledger.close()


def test_signing_out_ends_the_session_on_every_process(two_apps: tuple[TestClient, TestClient]) -> None:
    a, b = two_apps
    sign_in(a)
    cookie = a.cookies["yaosu_session"]
    b.cookies.set("yaosu_session", cookie)
    assert b.get("/console/rejections", follow_redirects=False).status_code == 200
    assert sign_out(a).status_code == 303
    stolen = TestClient(a.app, base_url=LOCAL)  # the old cookie, kept by whoever copied it
    stolen.cookies.set("yaosu_session", cookie)
    assert stolen.get("/console/rejections", follow_redirects=False).status_code == 303
    within(10, lambda: b.get("/console/rejections", follow_redirects=False).status_code == 303,
           "the other process refuses the signed-out cookie")
    assert b.get("/v1/rejections").status_code == 401


def test_a_token_taken_out_of_the_file_is_refused_within_seconds(store: str, tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    tokens = tmp_path / "tokens.json"
    kept = add_token(tokens, "supervisor", "supervisor", None)
    withdrawn = add_token(tokens, "leaver", "admin", None)
    env = {"YAOSU_STORE": store, "YAOSU_TOKENS_FILE": str(tokens), "YAOSU_SESSION_SECRET": SECRET.decode()}
    settings = [Settings.from_env(env), Settings.from_env(env)]  # two processes, each reading the file
    ledgers = [build_ledger(s) for s in settings]
    try:
        with TestClient(create_app(ledgers[0], settings[0]), base_url=LOCAL) as a, \
                TestClient(create_app(ledgers[1], settings[1]), base_url=LOCAL) as b:
            sign_in(a, withdrawn)
            for app in (a, b):
                assert app.get("/v1/rejections", headers={"Authorization": f"Bearer {withdrawn}"}).status_code == 200
            entries = orjson.loads(tokens.read_bytes())["tokens"]
            tokens.write_bytes(orjson.dumps({"tokens": [e for e in entries if e["name"] != "leaver"]}))
            for app in (a, b):
                within(10, lambda: app.get("/v1/rejections", headers={"Authorization": f"Bearer {withdrawn}"})
                       .status_code == 401, "the withdrawn token is refused")
                assert app.get("/v1/rejections", headers={"Authorization": f"Bearer {kept}"}).status_code == 200
            assert a.get("/console/rejections", follow_redirects=False).status_code == 303  # its session too
            # A file that stops parsing keeps the tokens last read, and says so.
            with caplog.at_level(logging.ERROR, logger="yaosu.tokens"):
                tokens.write_bytes(b'{"tokens": [{"sha256": "half a line')
                within(10, lambda: b.get("/v1/rejections", headers={"Authorization": f"Bearer {kept}"}).status_code
                       == 200 and "KEEPING THE 1 TOKENS LAST READ" in caplog.text, "the broken file is reported")
    finally:
        for ledger in ledgers:
            ledger.close()


def test_two_servers_on_one_store_end_sessions_and_tokens_together(store: str, tmp_path: Path) -> None:
    """As deployed: two `yaosu serve` processes behind one address, one store, one secret, one tokens file."""
    tokens = tmp_path / "tokens.json"
    kept = add_token(tokens, "supervisor", "supervisor", None)
    leaver = add_token(tokens, "leaver", "supervisor", None)
    env = {**os.environ, "YAOSU_STORE": store, "YAOSU_TOKENS_FILE": str(tokens), "YAOSU_SESSION_SECRET": SECRET.decode()}
    with serving(store, env=env) as a, serving(store, env=env) as b, \
            httpx.Client(base_url=a, timeout=30) as browser, httpx.Client(base_url=b, timeout=30) as other:
        csrf = csrf_of(browser.get("/console/login").text)
        assert browser.post("/console/login", data={"token": kept, "csrf": csrf, "next": "/console"}).status_code == 303
        other.cookies.set("yaosu_session", browser.cookies["yaosu_session"])
        assert other.get("/console/rejections").status_code == 200
        assert browser.post("/console/logout", data={"csrf": csrf_of(browser.get("/console/rejections").text)}
                            ).status_code == 303
        within(10, lambda: other.get("/console/rejections").status_code == 303, "B refuses the signed-out cookie")
        # Withdrawal: the line taken out of the file is refused by both within seconds.
        entries = orjson.loads(tokens.read_bytes())["tokens"]
        tokens.write_bytes(orjson.dumps({"tokens": [e for e in entries if e["name"] != "leaver"]}))
        for url in (a, b):
            within(10, lambda: httpx.get(f"{url}/v1/rejections", headers={"Authorization": f"Bearer {leaver}"}
                                         ).status_code == 401, f"{url} refuses the withdrawn token")
            assert httpx.get(f"{url}/v1/rejections", headers={"Authorization": f"Bearer {kept}"}).status_code == 200


def test_a_tokens_file_read_again_only_when_it_changed(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    add_token(tokens, "one", "supervisor", None)
    watched = TokensFile(tokens)
    assert len(watched) == 1
    tokens.unlink()
    watched._checked = float("-inf")  # as if a second had passed
    assert len(watched) == 1  # missing: the last good tokens stay
    add_token(tokens, "two", "admin", None)
    watched._checked = float("-inf")
    assert sorted(p.name for p in watched.values()) == ["two"]


# --- item 9: only the configured host names are served -----------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/v1/rejections", "/console/login", "/openapi.json", "/nowhere"])
def test_another_host_name_is_answered_400_before_anything_else(client: TestClient, path: str) -> None:
    answer = client.get(path, headers={**SUPERVISOR, "Host": "rebound.evil.example"})
    assert answer.status_code == 400 and answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "host_not_allowed" and answer.headers["x-frame-options"] == "DENY"


def test_a_write_to_another_host_name_stores_nothing(client: TestClient) -> None:
    ledger = client.app.state.ledger  # type: ignore[attr-defined]
    answer = client.post("/v1/messages", json=admitted(CODE), headers={**ADMIN, "Host": "rebound.evil.example:8000"})
    assert answer.status_code == 400 and ledger.head() == 0


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "127.0.0.1:1", "[::1]:8000", "[::1]", "LOCALHOST"])
def test_the_loopback_names_are_served_on_any_port(client: TestClient, host: str) -> None:
    assert client.get("/healthz", headers={"Host": host}).status_code == 200


def test_the_names_a_deployment_sets_are_served(tmp_path: Path) -> None:
    settings = Settings.from_env({"YAOSU_STORE": f"sqlite:///{tmp_path / 'h.db'}",
                                  "YAOSU_ALLOWED_HOSTS": "yaosu.example.gov.cn, 10.0.0.5"})
    ledger = build_ledger(settings)
    try:
        with TestClient(create_app(ledger, settings), base_url="https://yaosu.example.gov.cn") as test:
            assert test.get("/healthz").status_code == 200
            assert test.get("/healthz", headers={"Host": "10.0.0.5:8443"}).status_code == 200
            assert test.get("/healthz", headers={"Host": "127.0.0.1:8000"}).status_code == 200
            assert test.get("/healthz", headers={"Host": "other.example.gov.cn"}).status_code == 400
    finally:
        ledger.close()


@hypothesis_settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(host=st.binary(max_size=40))
def test_no_host_header_is_a_server_error(client: TestClient, host: bytes) -> None:
    from api.errors import host_name

    name = host_name([(b"host", host)])  # never raises
    assert name is None or name in host.decode("latin-1").lower()


@pytest.mark.parametrize("env,fragment", [
    ({}, "YAOSU_ALLOWED_HOSTS"),
    ({"YAOSU_ALLOWED_HOSTS": "https://yaosu.example/"}, "not a host name"),
])
def test_serving_beyond_loopback_wants_host_names(tmp_path: Path, env: dict[str, str], fragment: str) -> None:
    tokens = tmp_path / "tokens.json"
    add_token(tokens, "admin", "admin", None)
    refused = subprocess.run(
        [sys.executable, "-m", "yaosu", "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "YAOSU_STORE": f"sqlite:///{tmp_path / 'x.db'}", "YAOSU_TOKENS_FILE": str(tokens), **env})
    assert refused.returncode == 2 and fragment in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1


# --- item 10: the lower ones --------------------------------------------------------------------


@pytest.fixture
def console(settings: Settings) -> Iterator[TestClient]:
    with demo_store(settings, projects=10) as (ledger, reads):
        submit(ledger, *admitted(CODE, "annual"))
        with TestClient(create_app(ledger, settings, reads), base_url=LOCAL) as test:
            sign_in(test)
            yield test


#: Every console page and the query parameters it reads.
PAGES = {
    "/console": ("as_of", "year"),
    "/console/libraries/municipal": ("district", "sector", "department"),
    "/console/alerts": ("as_of", "district", "department", "rule", "level"),
    f"/console/projects/{CODE}": ("as_of", "from", "to"),
    "/console/ledger": ("year", "district", "factor"),
    "/console/rankings": ("as_of", "year", "factor", "total"),
    "/console/warnings": ("code", "district", "department", "from", "to"),
    "/console/audit": ("department", "actor", "submitted_by", "type", "project", "message_id", "district", "from",
                       "to", "recorded_from", "recorded_to", "late_days", "after"),
    "/console/rejections": ("after",),
    "/console/health": (),
    "/console/login": ("next",),
    "/console/lang/en": ("next",),
}
class Encoded(str):
    """A query value already percent-encoded (raw bytes), sent as it is."""


VALUE = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=30),  # any character, as the browser encodes it
    st.binary(max_size=20).map(lambda raw: Encoded(quote_from_bytes(raw))),  # and raw bytes, valid UTF-8 or not
    st.sampled_from(["²", "¹", "٣", "２０２１", "1_000", " 7", "-1", "+5", "NaN", "sNaN", "-Infinity", "1e999999",
                     "99999999999999999999999", "2021-02-30", "\x00", "0" * 500]),
)


def console_query(values: dict[str, str]) -> str:
    return "&".join(f"{quote(name)}={value if isinstance(value, Encoded) else quote(value, safe='')}"
                    for name, value in values.items())


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
@example(data=None)
def test_no_query_value_makes_a_console_page_fail(console: TestClient, data: st.DataObject | None) -> None:
    if data is None:  # the findings, as reported
        cases = [("/console", {"year": "²"}), ("/console/audit", {"after": "²"}),
                 ("/console/audit", {"late_days": "¹"}), ("/console/rankings", {"total": "NaN"}),
                 ("/console/rejections", {"after": "²"}), ("/console/audit", {"actor": "a\x00b"})]
    else:
        path = data.draw(st.sampled_from(sorted(PAGES)))
        names = PAGES[path]
        values = data.draw(st.dictionaries(st.sampled_from(names), VALUE, max_size=4)) if names else {}
        cases = [(path, values)]
    for path, values in cases:
        answer = console.get(f"{path}?{console_query(values)}", follow_redirects=False)
        assert answer.status_code < 500, (path, values, answer.text[:500])


@hypothesis_settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(segment=st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=30))
def test_no_path_segment_makes_a_console_page_fail(console: TestClient, segment: str) -> None:
    for page in ("libraries", "projects"):
        answer = console.get(f"/console/{page}/{quote(segment, safe='')}", follow_redirects=False)
        assert answer.status_code < 500, (page, segment)


@given(text=st.text(max_size=25))
@example(text="²")
@example(text="٣")
@example(text="1_0")
@example(text="7\n")
def test_only_ascii_digits_are_a_number(text: str) -> None:
    found = ascii_integer(text)
    if text.isascii() and text.isdigit() and len(text) <= 19:
        assert found == int(text)
    else:
        assert found is None


def test_short_session_secrets_are_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Settings.from_env({"YAOSU_SESSION_SECRET": "a"})
    assert Settings.from_env({"YAOSU_SESSION_SECRET": "k" * 32}).session_secret == b"k" * 32
    refused = subprocess.run([sys.executable, "-m", "yaosu", "serve", "--port", str(free_port())],
                             capture_output=True, text=True, timeout=60,
                             env={**environment(f"sqlite:///{tmp_path / 'x.db'}"), "YAOSU_SESSION_SECRET": "a"})
    assert refused.returncode == 2 and "YAOSU_SESSION_SECRET" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


FORMULA_LOOKALIKES = [ch for ch in map(chr, range(0x110000))
                      if not 0xD800 <= ord(ch) <= 0xDFFF and unicodedata.normalize("NFKC", ch).startswith(_FORMULA_START)]


def test_the_formula_lookalikes_include_the_full_width_forms() -> None:
    assert {"＝", "＋", "－", "＠", "﹦", "﹢", "﹣", "﹫"} <= set(FORMULA_LOOKALIKES)


@given(first=st.sampled_from(FORMULA_LOOKALIKES), rest=st.text(max_size=20))
@example(first="＝", rest="HYPERLINK(\"http://evil.example\")")
def test_a_cell_starting_like_a_formula_is_prefixed(first: str, rest: str) -> None:
    assert _csv_text(first + rest) == "'" + first + rest


@given(text=st.text(max_size=20))
def test_any_cell_is_either_prefixed_or_starts_with_no_formula(text: str) -> None:
    cell = _csv_text(text)
    assert cell == text or cell == "'" + text
    assert cell.startswith("'") or not unicodedata.normalize("NFKC", cell[:1]).startswith(_FORMULA_START)


def test_every_answer_forbids_framing(client: TestClient) -> None:
    for answer in (client.get("/healthz"), client.get("/v1/rejections"), client.get("/console/login"),
                   client.get("/nowhere"), client.post("/console/login", content="x", headers=FORM)):
        assert answer.headers["x-frame-options"] == "DENY", answer.request.url


# --- item 10: a request must arrive within the read deadline ------------------------------------


def dripping(url: str, first: bytes) -> socket.socket:
    """A connection that has sent `first`, the start of a request it will drip the rest of."""
    host, port = url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=30)
    connection.sendall(first)
    return connection


def cut_off(connections: list[socket.socket], drip: bytes, seconds: float) -> bool:
    """Drip on every connection until each is closed by the server; True if all were, within `seconds`."""
    open_ = list(connections)
    deadline = time.monotonic() + seconds
    while open_ and time.monotonic() < deadline:
        for connection in list(open_):
            try:
                connection.sendall(drip)
                connection.settimeout(0.01)
                if connection.recv(4096) == b"":
                    open_.remove(connection)
            except TimeoutError:
                pass
            except OSError:  # reset or broken pipe: closed by the server
                open_.remove(connection)
        time.sleep(0.2)
    for connection in connections:
        connection.close()
    return not open_


def test_slow_requests_are_cut_off(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'slow.db'}"
    env = {**environment(store), "YAOSU_READ_TIMEOUT_SECONDS": "2"}
    with serving(store, env=env) as url:
        headers = [dripping(url, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n") for _ in range(20)]
        body = [dripping(url, b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer dev-admin\r\n"
                              b"Content-Length: 100000\r\n\r\n[") for _ in range(20)]
        silent = [dripping(url, b"") for _ in range(20)]
        assert cut_off(headers, b"X-Drip: a\r\n", 60), "a client dripping its headers was not cut off"
        assert cut_off(body, b" ", 60), "a client dripping its body was not cut off"
        assert cut_off(silent, b"", 60), "a connection that sent nothing was not closed"
        # A request that arrives whole is served, and the next on the same connection too.
        with httpx.Client(base_url=url, timeout=30) as http:
            assert http.get("/healthz").status_code == 200
            assert http.get("/healthz").status_code == 200
