"""Console sessions: a signed cookie naming the hash of the token signed in with.

The cookie holds the token's sha256 (never the token) and an expiry, signed with HMAC-SHA256; each
request looks the hash up in the tokens again, so a token taken out of the tokens file ends its
sessions too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import orjson

COOKIE = "yaosu_session"
LIFETIME_SECONDS = 12 * 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(token_sha256: str, secret: bytes, now: float | None = None) -> str:
    payload = _b64(orjson.dumps({"h": token_sha256, "exp": int((now or time.time()) + LIFETIME_SECONDS)}))
    return f"{payload}.{_b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())}"


def opened(cookie: str | None, secret: bytes, now: float | None = None) -> str | None:
    """The token hash a cookie was sealed with, if it is ours, whole and not expired."""
    if not cookie or cookie.count(".") != 1:
        return None
    payload, signature = cookie.split(".")
    try:
        expected = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(_unb64(signature), expected):
            return None
        content = orjson.loads(_unb64(payload))
    except (ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(content, dict) or content.get("exp", 0) < (now or time.time()):
        return None
    digest = content.get("h")
    return digest if isinstance(digest, str) else None
