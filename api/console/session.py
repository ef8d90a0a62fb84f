"""Console sessions: a signed cookie naming a random session id and the hash of the token signed in with.

The cookie holds the session's id, the token's sha256 (never the token) and an expiry, signed with
HMAC-SHA256. Each request looks the hash up in the tokens again (the tokens file is read again when
it changes), so a token taken out of the file ends its sessions too; signing out records the
session's id as ended in the store's database, which every `yaosu serve` on that store consults
(`EndedSessions`), so the old cookie is refused everywhere within about a second.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass

import orjson
import psycopg

from infra.settings import Settings
from projections.db import Db

COOKIE = "yaosu_session"
LIFETIME_SECONDS = 12 * 3600
log = logging.getLogger("yaosu.console")


@dataclass(frozen=True)
class Session:
    """What a whole, unexpired cookie of ours says."""

    session_id: str
    token_sha256: str
    expires: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signature(secret: bytes, purpose: str, text: str) -> str:
    """HMAC-SHA256 of `text` for one purpose (a cookie, a form): one never stands for another."""
    return _b64(hmac.new(secret, f"{purpose}\n{text}".encode(), hashlib.sha256).digest())


def new_id() -> str:
    return secrets.token_urlsafe(18)


def seal(token_sha256: str, secret: bytes, now: float | None = None) -> str:
    """A new session's cookie (a new id each time: ending one session ends no other)."""
    payload = _b64(orjson.dumps({"sid": new_id(), "h": token_sha256,
                                 "exp": int((now or time.time()) + LIFETIME_SECONDS)}))
    return f"{payload}.{signature(secret, 'session', payload)}"


def opened(cookie: str | None, secret: bytes, now: float | None = None) -> Session | None:
    """The session a cookie was sealed with, if it is ours, whole and not expired."""
    if not cookie or cookie.count(".") != 1:
        return None
    payload, signed = cookie.split(".")
    if not hmac.compare_digest(signed.encode(), signature(secret, "session", payload).encode()):
        return None
    try:
        content = orjson.loads(_unb64(payload))
    except (ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(content, dict):
        return None
    sid, digest, expires = content.get("sid"), content.get("h"), content.get("exp")
    if not (isinstance(sid, str) and isinstance(digest, str) and isinstance(expires, int)):
        return None  # also a cookie of the version before sessions had ids: signed in again
    return Session(sid, digest, expires) if expires >= (now or time.time()) else None


class EndedSessions:
    """The ids of sessions signed out before their expiry, kept in the store's database (its SQLite
    file or PostgreSQL schema) so that every process serving the store refuses them; each process
    reads the (small) list again at most once a second. On the in-memory store, this process's only."""

    TABLE = "console_sessions_ended"
    REFRESH_SECONDS = 1.0

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._shared = settings.location.kind != "memory"
        self._db: Db | None = None
        self._lock = threading.Lock()
        self._ended: dict[str, int] = {}
        self._read_at = float("-inf")

    def _connection(self) -> Db:
        if self._db is None:  # opened when first needed: an app that is never asked makes no connection
            db = Db(self._settings)
            create = f"CREATE TABLE IF NOT EXISTS {self.TABLE} (session_id TEXT PRIMARY KEY, expires BIGINT NOT NULL)"
            try:
                db.execute(create)
            except psycopg.errors.UniqueViolation:  # another process made it at the same moment
                db.execute(create)
            self._db = db
        return self._db

    def end(self, session: Session) -> None:
        with self._lock:
            self._ended[session.session_id] = session.expires
            if not self._shared:
                now = int(time.time())
                self._ended = {sid: expires for sid, expires in self._ended.items() if expires >= now}
                return
            db = self._connection()
            with db.transaction():
                db.execute(f"INSERT INTO {self.TABLE} (session_id, expires) VALUES (?, ?) "
                           "ON CONFLICT (session_id) DO NOTHING", [session.session_id, session.expires])
                # An expired cookie is refused by its expiry: its id need not be kept.
                db.execute(f"DELETE FROM {self.TABLE} WHERE expires < ?", [int(time.time())])

    def has_ended(self, session: Session) -> bool:
        with self._lock:
            if self._shared and time.monotonic() - self._read_at >= self.REFRESH_SECONDS:
                rows = self._connection().query(f"SELECT session_id, expires FROM {self.TABLE} WHERE expires >= ?",
                                                [int(time.time())])
                self._ended = {sid: expires for sid, expires in rows}
                self._read_at = time.monotonic()
            return session.session_id in self._ended

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
