"""Tokens (令牌): who holds a bearer token, what is kept of it, and whom it may speak for.

Only a token's sha256 is kept, in the tokens file (`YAOSU_TOKENS_FILE`) and in memory. A portal's
token submits only as its own department; a supervisor's reads and never submits; an admin's may
submit for any department, recorded as such.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

import orjson

from domain import reference

log = logging.getLogger("yaosu.tokens")


@dataclass(frozen=True)
class Principal:
    """Who holds a bearer token: a department's portal, a supervisor, or an admin."""

    name: str
    role: str  # "portal" | "supervisor" | "admin"
    department: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ("portal", "supervisor", "admin"):
            raise ValueError(f"unknown role {self.role!r} for {self.name}")
        if self.role == "portal" and not (self.department and reference.is_department(self.department)):
            raise ValueError(f"portal token {self.name} needs a known department")
        if self.role != "portal" and self.department is not None:
            raise ValueError(f"only a portal token has a department, not the {self.role} token {self.name}")


def token_hash(token: str) -> str:
    """What is kept of a token: its sha256, so neither the tokens file nor memory holds it."""
    return hashlib.sha256(token.encode()).hexdigest()


def development_tokens() -> dict[str, Principal]:
    """Well-known tokens for the embedded demo and tests; never for a real deployment."""
    tokens = {
        "dev-admin": Principal("admin", "admin"),
        "dev-supervisor": Principal("supervisor", "supervisor"),
    }
    for department in reference.DEPARTMENTS:
        tokens[f"dev-{department}"] = Principal(f"{department}-portal", "portal", department)
    for district in reference.DISTRICTS:
        portal = reference.district_portal(district)
        tokens[f"dev-district-{district}"] = Principal(f"{portal}-portal", "portal", portal)
    return {token_hash(token): principal for token, principal in tokens.items()}


TOKENS_FORMAT = ('{"tokens": [{"sha256": "<hex sha256 of the token>", "name": "nr-portal", "role": "portal", '
                 '"department": "natural_resources"}, ...]}')


def load_tokens(path: Path) -> dict[str, Principal]:
    """The tokens file (`YAOSU_TOKENS_FILE`): hashes only. Any flaw is one ValueError naming it."""
    try:
        raw = orjson.loads(path.read_bytes())
    except OSError as error:
        raise ValueError(f"YAOSU_TOKENS_FILE {path}: cannot be read ({error.strerror})") from None
    except orjson.JSONDecodeError as error:
        raise ValueError(f"YAOSU_TOKENS_FILE {path}: not JSON ({error})") from None
    entries = raw.get("tokens") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"YAOSU_TOKENS_FILE {path}: expected {TOKENS_FORMAT} (make entries with `yaosu tokens add`)")
    tokens: dict[str, Principal] = {}
    names: set[str] = set()
    for n, entry in enumerate(entries, 1):
        where = f"YAOSU_TOKENS_FILE {path}: entry {n}"
        if not isinstance(entry, dict) or set(entry) - {"sha256", "name", "role", "department"}:
            raise ValueError(f"{where}: expected sha256, name, role and optionally department")
        digest = entry.get("sha256")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ValueError(f"{where}: sha256 must be 64 lower-case hex digits")
        name, role, department = entry.get("name"), entry.get("role"), entry.get("department")
        if not isinstance(name, str) or not name or not isinstance(role, str) or not (
                department is None or isinstance(department, str)):
            raise ValueError(f"{where}: name and role must be strings")
        try:
            principal = Principal(name, role, department)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        if digest in tokens or name in names:
            raise ValueError(f"{where}: the token or the name {name!r} appears twice")
        tokens[digest] = principal
        names.add(name)
    return tokens


class TokensFile(Mapping[str, Principal]):
    """The tokens file as it is now: read again when it changes (looked at at most once a second), so
    that a line taken out withdraws its token, and the console sessions opened with it, within
    seconds in every process that reads the file. A file that stops parsing (or goes missing) keeps
    the tokens last read, and says so in the log each time it changes."""

    CHECK_EVERY_SECONDS = 1.0
    #: A file changed this recently may still be being written: looked at again even if it seems unchanged
    #: (a file system's clock ticks coarsely; two writes in one tick leave the same mtime).
    SETTLED_AFTER_SECONDS = 2.0

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._signature = self._settled_signature()
        self._tokens = load_tokens(path)  # at start, a flaw is one clear error
        self._checked = time.monotonic()

    def _settled_signature(self) -> tuple[int, int, int] | None:
        try:
            found = self.path.stat()
        except OSError:
            return 0, 0, -1  # missing: said once, then quiet until it is back
        if time.time() - found.st_mtime < self.SETTLED_AFTER_SECONDS:
            return None
        return found.st_ino, found.st_mtime_ns, found.st_size

    def current(self) -> dict[str, Principal]:
        if time.monotonic() - self._checked < self.CHECK_EVERY_SECONDS:
            return self._tokens
        with self._lock:
            if time.monotonic() - self._checked >= self.CHECK_EVERY_SECONDS:
                self._refresh()
                self._checked = time.monotonic()
        return self._tokens

    def _refresh(self) -> None:
        signature = self._settled_signature()
        if signature is not None and signature == self._signature:
            return
        self._signature = signature
        try:
            tokens = load_tokens(self.path)
        except ValueError as error:
            log.error("%s: KEEPING THE %d TOKENS LAST READ until the file is mended", error, len(self._tokens))
            return
        if tokens != self._tokens:
            log.info("tokens file %s read again: %d token(s)", self.path, len(tokens))
        self._tokens = tokens

    def __getitem__(self, digest: str) -> Principal:
        return self.current()[digest]

    def __iter__(self) -> Iterator[str]:
        return iter(self.current())

    def __len__(self) -> int:
        return len(self.current())


def add_token(path: Path, name: str, role: str, department: str | None) -> str:
    """Make a new token, append its hash to the tokens file (made if absent), return the token."""
    principal = Principal(name, role, department)  # refuses a role or department that makes no sense
    existing = load_tokens(path) if path.exists() else {}
    if any(p.name == name for p in existing.values()):
        raise ValueError(f"{path}: a token named {name!r} exists already")
    token = secrets.token_urlsafe(32)
    entries = [{"sha256": digest, "name": p.name, "role": p.role,
                **({"department": p.department} if p.department else {})} for digest, p in existing.items()]
    entries.append({"sha256": token_hash(token), "name": principal.name, "role": principal.role,
                    **({"department": department} if department else {})})
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".new")
    temporary.write_bytes(orjson.dumps({"tokens": entries}, option=orjson.OPT_INDENT_2) + b"\n")
    temporary.chmod(0o600)
    temporary.replace(path)  # a reader sees the old file or the new one, never half of one
    return token
