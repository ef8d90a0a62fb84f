"""A local webhook receiver for `yaosu notify`'s tests: a real HTTP server in the test process that plays
a WeCom robot (`/wecom`), a DingTalk robot (`/dingtalk`, verifying each request's signature with the
algorithm DingTalk documents) and a plain webhook (`/hook`), failing, timing out and answering slowly
on the requests its `behaviour` picks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import orjson

#: What the receiver does with the n-th request it gets (counting from 0): answer, fail, time out, be slow.
Behaviour = Callable[[int], str]


def always_ok(_: int) -> str:
    return "ok"


def dingtalk_signature_ok(secret: str, timestamp: str, sign: str, now_ms: float) -> bool:
    """DingTalk's check, as its documentation gives it: the timestamp within an hour of now, and the sign
    base64(HMAC-SHA256(key=secret, timestamp + "\\n" + secret)) (URL-decoded by the query parser)."""
    if not timestamp.isdigit() or abs(now_ms - int(timestamp)) > 3_600_000:
        return False
    expected = base64.b64encode(hmac.new(secret.encode("utf-8"), f"{timestamp}\n{secret}".encode("utf-8"),
                                         hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, sign)


@dataclass
class Received:
    path: str
    delivery_id: str
    body: Any
    outcome: str  # ok (accepted: 2xx and errcode 0), fail, timeout, bad_sign
    signature_checked: bool = False


@dataclass
class Receiver:
    behaviour: Behaviour = always_ok
    dingtalk_secret: str = "SECtest-secret"
    #: How long "timeout" requests are held (longer than the sender waits) and "slow" ones (shorter).
    hang_seconds: float = 3.0
    slow_seconds: float = 0.3
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _count: int = 0

    def start(self) -> str:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - the library's name
                owner._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        with self._lock:
            n, self._count = self._count, self._count + 1
        length = int(request.headers.get("Content-Length") or 0)
        body = orjson.loads(request.rfile.read(length))
        parts = urlsplit(request.path)
        doing = self.behaviour(n)
        checked = False
        if parts.path == "/dingtalk":
            query = parse_qs(parts.query)
            checked = True
            if not dingtalk_signature_ok(self.dingtalk_secret, query.get("timestamp", [""])[0],
                                         query.get("sign", [""])[0], time.time() * 1000):
                doing = "bad_sign"
        if doing == "timeout":
            time.sleep(self.hang_seconds)  # the sender has given up by now: not accepted
            status, answer = 500, {"errcode": -1, "errmsg": "too late"}
        elif doing == "fail":
            status, answer = 500, {"errcode": -1, "errmsg": "system busy"}
        elif doing == "bad_sign":
            status, answer = 200, {"errcode": 310000, "errmsg": "sign not match"}  # as DingTalk answers
        else:
            if doing == "slow":
                time.sleep(self.slow_seconds)
            status, answer = 200, {"errcode": 0, "errmsg": "ok"}
        outcome = "ok" if status == 200 and answer["errcode"] == 0 else doing
        with self._lock:
            self.received.append(Received(parts.path, request.headers.get("X-Yaosu-Delivery", ""), body, outcome,
                                          checked))
        content = orjson.dumps(answer)
        try:
            request.send_response(status)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(content)))
            request.end_headers()
            request.wfile.write(content)
        except OSError:
            pass  # the sender hung up (it timed out)

    def accepted(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path and r.outcome == "ok"]
