"""The `yaosu` command as people run it: demo, load, and a real server on a real port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator

import httpx
import orjson
import pytest

from tests.integration.test_halts import eventually
from tests.portal import CODE, admitted, energy_quota, msg
from tools.common import free_port

ADMIN = {"Authorization": "Bearer dev-admin"}
SUPERVISOR = {"Authorization": "Bearer dev-supervisor"}


def environment(store: str) -> dict[str, str]:
    return {**os.environ, "YAOSU_STORE": store, "YAOSU_DEV_TOKENS": "1"}


def yaosu(*args: str, store: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "yaosu", *args], env=environment(store),
                          capture_output=True, text=True, timeout=timeout, check=False)


@contextmanager
def serving(store: str, output: list[str] | None = None, env: dict[str, str] | None = None,
            args: tuple[str, ...] = (), started: list[subprocess.Popen[str]] | None = None) -> Iterator[str]:
    """`yaosu serve` on a free port, as a separate process; its URL once it answers (and what it
    printed, into `output`, once it has stopped; the process, into `started`)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "yaosu", "serve", "--port", str(port), *args],
                               env=env or environment(store), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    if started is not None:
        started.append(process)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"yaosu serve did not come up:\n{process.stdout.read() if process.stdout else ''}")
        time.sleep(0.1)
    try:
        yield url
    finally:
        process.terminate()
        printed, _ = process.communicate(timeout=10)
        if output is not None:
            output.append(printed)


@pytest.fixture
def server(store: str) -> Iterator[str]:
    output: list[str] = []
    try:
        with serving(store, output) as url:
            yield url
    finally:
        print("".join(output)[-20_000:])  # pytest shows it when the test failed: the server's side of it


def test_demo_then_serve_shows_history_with_audit_fields(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'demo.db'}"
    loaded = yaosu("demo", "--year", "2021", "--projects", "40", store=store)
    assert loaded.returncode == 0, loaded.stderr
    summary = orjson.loads(loaded.stdout.strip().splitlines()[-1])
    assert summary["accepted"] > 500 and summary["rejected"] >= 10 and summary["duplicate"] == 5
    assert "100%" in loaded.stderr  # progress was shown
    again = yaosu("demo", "--year", "2021", "--projects", "40", store=store)
    assert "not loaded again" in again.stdout
    with serving(store) as url:
        rejections = httpx.get(f"{url}/v1/rejections?limit=1000", headers=SUPERVISOR).json()["rejections"]
        codes = Counter(r["code"] for r in rejections)
        assert {"not_admitted", "not_in_annual_plan", "quota_exceeded", "bond_not_eligible", "forbidden",
                "invalid", "unknown_type", "unknown_project", "conflict", "stage_order"} <= set(codes)
        feed = httpx.get(f"{url}/v1/events?limit=500", headers=SUPERVISOR).json()["events"]
        # A project of the year (the demo's story also carries some over from the year before).
        code = next(e["subject"] for e in feed if e["type"] == "project.registered" and e["subject"].startswith("2021-"))
        history = httpx.get(f"{url}/v1/projects/{code}/history", headers=SUPERVISOR).json()["events"]
        assert history[0]["type"] == "project.registered" and len(history) > 5
        for event in history:
            assert event["message_id"].startswith("demo-2021-")
            assert event["occurred_at"].startswith("2021-") and event["recorded_at"]
            # Recorded as a portal would have sent it, the day it happened or a few days after (not on load day).
            occurred, recorded = (datetime.fromisoformat(event[k]) for k in ("occurred_at", "recorded_at"))
            assert occurred <= recorded <= occurred + timedelta(days=4), event
            assert event["actor"]["department"] and event["actor"]["user"] and event["source"]


def test_serve_on_a_shared_database_wants_tokens(pg_url: str) -> None:
    refused = subprocess.run([sys.executable, "-m", "yaosu", "serve"], capture_output=True, text=True,
                             env={**os.environ, "YAOSU_STORE": pg_url, "YAOSU_DEV_TOKENS": ""}, timeout=60)
    assert refused.returncode == 2 and "YAOSU_TOKENS_FILE" in refused.stderr


def test_load_keeps_every_line_and_summarises(tmp_path: Path, store: str) -> None:
    lines = [orjson.dumps(m) for m in admitted(CODE)]
    lines += [lines[0], b"{this is not json", orjson.dumps(msg("data.provided", {"kind": "k"}, dept="big_data"))]
    path = tmp_path / "portal.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n\n")
    loaded = yaosu("load", str(path), store=store)
    assert loaded.returncode == 0, loaded.stderr
    summary = orjson.loads(loaded.stdout.strip().splitlines()[-1])
    assert (summary["messages"], summary["accepted"], summary["duplicate"], summary["rejected"]) == (5, 2, 1, 2)
    assert 20 < summary["peak_rss_mb"] < 1000  # the command's own peak (VmHWM), in MB
    missing = yaosu("load", str(tmp_path / "nope.jsonl"), store=store)
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_concurrent_http_posts_lose_nothing_and_apply_once(server: str) -> None:
    with httpx.Client(base_url=server, headers=ADMIN, timeout=60) as http:
        assert all(r["status"] == "accepted" for r in http.post("/v1/messages", json=[
            *admitted(CODE, "annual"), energy_quota(60)]).json()["results"])
    results: list[dict[str, Any]] = []
    lock = threading.Lock()

    def poster(thread: int) -> None:
        with httpx.Client(base_url=server, headers=ADMIN, timeout=60) as http:
            for n in range(10):
                body = (msg("energy.granted", {"tce": 10, "year": 2021}, mid=f"h{thread}-{n}") if n % 2 == 0 else
                        msg("data.provided", {"kind": "k", "reference": f"{thread}-{n}"}, dept="big_data",
                            mid=f"h{thread}-{n}"))
                answer = http.post("/v1/messages", json=body)
                assert answer.status_code == 200, answer.text
                (result,) = answer.json()["results"]
                with lock:
                    results.append({**result, "type": body["type"]})

    def same_id() -> None:
        with httpx.Client(base_url=server, headers=ADMIN, timeout=60) as http:
            body = msg("funds.allocated", {"source": "own_funds", "amount": 7}, dept="finance", mid="same")
            (result,) = http.post("/v1/messages", json=body).json()["results"]
            with lock:
                results.append({**result, "type": "same"})

    threads = [threading.Thread(target=poster, args=(t,)) for t in range(8)]
    threads += [threading.Thread(target=same_id) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = Counter((r["type"], r["status"], r.get("code")) for r in results)
    assert counts[("data.provided", "accepted", None)] == 40
    assert counts[("energy.granted", "accepted", None)] == 6
    assert counts[("energy.granted", "rejected", "quota_exceeded")] == 34
    assert counts[("same", "accepted", None)] == 1 and counts[("same", "duplicate", None)] == 3
    state = httpx.get(f"{server}/v1/projects/{CODE}", headers=SUPERVISOR).json()
    assert len(state["factors"]["data"]) == 40 and len(state["factors"]["energy"]) == 6
    assert len(state["factors"]["funds"]) == 1 and state["factor_totals"]["energy"] == 60


def test_the_development_tokens_are_served_on_loopback_only(tmp_path: Path) -> None:
    refused = yaosu("serve", "--host", "0.0.0.0", store=f"sqlite:///{tmp_path / 'x.db'}", timeout=60)
    assert refused.returncode == 2 and "127.0.0.1 only" in refused.stderr and "Traceback" not in refused.stderr


def test_tokens_are_made_once_and_kept_as_hashes(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    made = yaosu("tokens", "add", "--name", "nr-portal", "--role", "portal", "--department", "natural_resources",
                 "--file", str(tokens), store="memory://")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert len(token) >= 40 and token not in tokens.read_text()
    (entry,) = orjson.loads(tokens.read_bytes())["tokens"]
    assert set(entry) == {"sha256", "name", "role", "department"} and len(entry["sha256"]) == 64
    again = yaosu("tokens", "add", "--name", "nr-portal", "--role", "admin", "--file", str(tokens), store="memory://")
    assert again.returncode == 2 and "exists already" in again.stderr
    store = f"sqlite:///{tmp_path / 'tokens.db'}"
    with serving(store, env={**os.environ, "YAOSU_STORE": store, "YAOSU_TOKENS_FILE": str(tokens)}) as url:
        assert httpx.get(f"{url}/v1/events", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert httpx.get(f"{url}/v1/events", headers=ADMIN).status_code == 401  # no development tokens now


@pytest.mark.parametrize("content,fragment", [
    (b"{not json", "not JSON"),
    (b'{"dev-admin": {"name": "admin", "role": "admin"}}', "yaosu tokens add"),
    (b'{"tokens": [{"sha256": "abc", "name": "x", "role": "admin"}]}', "64 lower-case hex"),
    (b'{"tokens": [{"sha256": "' + b"a" * 64 + b'", "name": "x", "role": "king"}]}', "unknown role"),
])
def test_a_malformed_tokens_file_is_one_clear_line(tmp_path: Path, content: bytes, fragment: str) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_bytes(content)
    refused = subprocess.run([sys.executable, "-m", "yaosu", "serve"], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "YAOSU_STORE": f"sqlite:///{tmp_path / 'x.db'}",
                                  "YAOSU_TOKENS_FILE": str(tokens)})
    assert refused.returncode == 2 and fragment in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1


def test_logs_never_show_the_database_password(pg_url: str) -> None:
    # The test server trusts local connections, so any password gets in: it must not get out.
    with_password = pg_url.replace("postgres@", "postgres:s3cret-pw@", 1)
    assert "s3cret-pw" in with_password
    printed: list[str] = []
    with serving(f"{with_password}?schema=t_logs", printed) as url:
        assert httpx.get(f"{url}/readyz").status_code == 200
    assert "s3cret-pw" not in printed[0] and "postgres:***@" in printed[0]
    projections = subprocess.run([sys.executable, "-m", "yaosu", "projections", "status"], capture_output=True,
                                 text=True, timeout=60, env=environment(f"{with_password}?schema=t_logs"))
    assert projections.returncode == 0 and "s3cret-pw" not in projections.stdout + projections.stderr


def test_a_chunked_body_over_the_limit_is_refused_while_it_is_read(server: str) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        yield b"["
        for _ in range(100 * 1024):  # 100 MiB, never Content-Length
            sent += 1024
            yield b" " * 1024
        yield b"]"

    try:
        answer = httpx.post(f"{server}/v1/messages", content=chunks(), headers=ADMIN, timeout=60)
        assert answer.status_code == 413 and answer.json()["code"] == "body_too_large"
    except httpx.HTTPError:
        pass  # the server may close the connection while the client is still sending: also a refusal
    assert sent < 20 * 1024 * 1024  # it stopped reading near the 8 MiB limit, not after 100 MiB


def test_a_clean_stop_leaves_no_write_ahead_log(tmp_path: Path) -> None:
    """Every connection closed at SIGTERM: SQLite folds its WAL back into the store and removes it."""
    store = f"sqlite:///{tmp_path / 'yaosu.db'}"
    with serving(store) as url:
        assert httpx.post(f"{url}/v1/messages", json=admitted("2021-620102-48-01-000001"), headers=ADMIN,
                          timeout=30).status_code == 200
        assert (tmp_path / "yaosu.db-wal").exists()  # while serving, the log is there
    assert (tmp_path / "yaosu.db").exists()
    assert not (tmp_path / "yaosu.db-wal").exists()


def runner_beside(server: int) -> int | None:
    """The `yaosu projections run` process `yaosu serve` started beside it, if one runs."""
    children = [c for task in Path(f"/proc/{server}/task").iterdir() for c in (task / "children").read_text().split()]
    found = [int(c) for c in children if b"projections" in Path(f"/proc/{c}/cmdline").read_bytes()]
    return found[0] if found else None


def gone(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_the_read_models_follow_in_a_process_of_their_own_started_again_when_it_ends(tmp_path: Path) -> None:
    """`yaosu serve` runs the read models beside it (its requests and their steps need not take turns on
    one interpreter): woken by its writes, started again when it ends, stopped when the server goes."""
    store = f"sqlite:///{tmp_path / 'yaosu.db'}"
    started: list[subprocess.Popen[str]] = []
    output: list[str] = []

    def visible(messages: list[dict[str, Any]]) -> bool:
        answer = httpx.post(f"{url}/v1/messages", json=messages, headers=ADMIN, timeout=30).json()
        position = max(r["position"] for r in answer["results"])
        listed = httpx.get(f"{url}/v1/libraries/municipal", params={"min_position": position, "wait_ms": 5000},
                           headers=SUPERVISOR, timeout=30)
        return listed.status_code == 200 and messages[0]["project_code"] in listed.text

    try:
        with serving(store, output, started=started) as url:
            server = started[0].pid
            first = runner_beside(server)
            assert first is not None
            assert visible(admitted("2021-620102-48-01-000001"))  # woken by the write: no poll to wait out
            os.kill(first, signal.SIGKILL)
            eventually(lambda: httpx.get(f"{url}/readyz").json().get("code") == "projections_failing",
                       "not ready while the read models are not followed")
            assert "ended" in httpx.get(f"{url}/readyz").json()["detail"]
            eventually(lambda: httpx.get(f"{url}/readyz").status_code == 200, "ready again")
            second = runner_beside(server)
            assert second not in (None, first)
            assert visible(admitted("2021-620102-48-01-000002"))
            started[0].kill()  # the server dies without a word: its runner sees its pipe close, and stops
            eventually(lambda: gone(second), "the runner stopped with its server")  # type: ignore[arg-type]
    finally:
        print("".join(output)[-20_000:])
    assert "the projections process ended (exit code -9)" in "".join(output)


def test_a_stop_sent_to_the_whole_group_stops_the_server_and_its_runner_without_a_failure(tmp_path: Path) -> None:
    """systemd and `timeout` signal every process of the service: the runner leaves SIGTERM to its server,
    which stops it, rather than ending first (and being reported as failed, then started again)."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "yaosu", "serve", "--port", str(port)],
                              env=environment(f"sqlite:///{tmp_path / 'yaosu.db'}"), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        eventually(lambda: _ready(f"http://127.0.0.1:{port}"), "yaosu serve ready")
        runner = runner_beside(server.pid)
        assert runner is not None
        os.killpg(server.pid, signal.SIGTERM)
        printed, _ = server.communicate(timeout=60)
        eventually(lambda: gone(runner), "the runner stopped with its server")  # type: ignore[arg-type]
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
    assert server.returncode == 0 and "ERROR" not in printed, printed


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_a_port_in_use_is_said_before_serving_is_claimed(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'yaosu.db'}"
    with serving(store) as url:
        port = url.rsplit(":", 1)[1]
        second = subprocess.run([sys.executable, "-m", "yaosu", "serve", "--port", port], env=environment(store),
                                capture_output=True, text=True, timeout=60, check=False)
    assert second.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in second.stderr and "--port" in second.stderr
    assert "serving" not in second.stderr + second.stdout
