"""Settings, read once from the environment (`source var/services.env` to use local services)."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from decimal import Decimal
from typing import Any, Mapping
from urllib.parse import parse_qs, unquote, urlparse

import orjson

from domain import codes
from domain.supervision import Thresholds

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STORE = f"sqlite:///{ROOT / 'var' / 'yaosu.db'}"


@dataclass(frozen=True)
class Principal:
    """Who holds a bearer token: a department's portal, a supervisor, or an admin."""

    name: str
    role: str  # "portal" | "supervisor" | "admin"
    department: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ("portal", "supervisor", "admin"):
            raise ValueError(f"unknown role {self.role!r} for {self.name}")
        if self.role == "portal" and not (self.department and codes.is_department(self.department)):
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
    for department in codes.DEPARTMENTS:
        tokens[f"dev-{department}"] = Principal(f"{department}-portal", "portal", department)
    for district in codes.DISTRICTS:
        portal = codes.district_portal(district)
        tokens[f"dev-district-{district}"] = Principal(f"{portal}-portal", "portal", portal)
    return {token_hash(token): principal for token, principal in tokens.items()}


@dataclass(frozen=True)
class Settings:
    store: str = DEFAULT_STORE
    kafka_bootstrap: str | None = None
    kafka_topic_prefix: str = ""
    #: sha256 of each token → who holds it
    tokens: Mapping[str, Principal] = field(default_factory=development_tokens)
    development_tokens: bool = True
    max_batch: int = 1000
    aggregate_cache: int = 20000
    thresholds: Thresholds = Thresholds()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        store = env.get("YAOSU_STORE") or DEFAULT_STORE
        tokens_file = env.get("YAOSU_TOKENS_FILE")
        # The well-known development tokens serve the embedded store out of the box; on a shared
        # database they must be asked for, so a deployment never opens with them by mistake.
        embedded = not store.startswith(("postgresql:", "postgres:"))
        if tokens_file:
            tokens = load_tokens(Path(tokens_file))
        elif embedded or env.get("YAOSU_DEV_TOKENS") == "1":
            tokens = development_tokens()
        else:
            tokens = {}
        uses_development_tokens = not tokens_file and bool(tokens)
        return cls(
            store=store,
            kafka_bootstrap=env.get("YAOSU_KAFKA_BOOTSTRAP") or None,
            kafka_topic_prefix=env.get("YAOSU_KAFKA_TOPIC_PREFIX", ""),
            tokens=tokens,
            development_tokens=uses_development_tokens,
            aggregate_cache=int(env.get("YAOSU_AGGREGATE_CACHE", "20000")),
            thresholds=thresholds_from(env),
        )

    def principal(self, token: str) -> Principal | None:
        return self.tokens.get(token_hash(token))

    @property
    def store_for_logs(self) -> str:
        """The store's URL without its password."""
        return redacted(self.store)

    def persistence_env(self) -> dict[str, str]:
        """The `eventsourcing` persistence settings that `YAOSU_STORE` stands for."""
        url = urlparse(self.store)
        common = {
            "TRANSCODER_TOPIC": "infra.transcoder:OrjsonTranscoder",
            "LEDGER_CACHE_SIZE": str(self.aggregate_cache),
        }
        if url.scheme == "sqlite":
            # As SQLAlchemy writes them: sqlite:///relative.db, sqlite:////absolute.db
            path = unquote(url.path)[1:] if url.path.startswith("/") else unquote(url.path)
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            return {**common, "PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path,
                    "SQLITE_LOCK_TIMEOUT": "30", "PROCESS_RECORDER_TOPIC": "infra.recorder:SQLiteEventsRecorder"}
        if url.scheme in ("postgresql", "postgres"):
            query = parse_qs(url.query)
            env = {
                **common,
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "PROCESS_RECORDER_TOPIC": "infra.recorder:EventsRecorder",
                "POSTGRES_DBNAME": url.path.lstrip("/") or "yaosu",
                "POSTGRES_HOST": url.hostname or "127.0.0.1",
                "POSTGRES_PORT": str(url.port or 5432),
                "POSTGRES_USER": unquote(url.username or "postgres"),
                "POSTGRES_PASSWORD": unquote(url.password or ""),
                "POSTGRES_POOL_SIZE": query.get("pool_size", ["10"])[0],
                "POSTGRES_MAX_OVERFLOW": "10",
                "POSTGRES_LOCK_TIMEOUT": "10",
            }
            if "schema" in query:
                env["POSTGRES_SCHEMA"] = query["schema"][0]
            return env
        if url.scheme == "memory":
            return {**common, "PERSISTENCE_MODULE": "eventsourcing.popo"}
        raise ValueError("YAOSU_STORE must be sqlite:///path, postgresql://user@host:port/db or memory://, "
                         f"not {self.store_for_logs!r}")


THRESHOLD_VARIABLES = {
    "YAOSU_START_YELLOW_DAYS": ("start_yellow_days", int),
    "YAOSU_START_RED_DAYS": ("start_red_days", int),
    "YAOSU_LAG_YELLOW_POINTS": ("lag_yellow_points", Decimal),
    "YAOSU_LAG_RED_POINTS": ("lag_red_points", Decimal),
    "YAOSU_ISSUE_RED_DAYS": ("issue_red_days", int),
}


def thresholds_from(env: Mapping[str, str]) -> Thresholds:
    values: dict[str, Any] = {}
    for variable, (field_name, kind) in THRESHOLD_VARIABLES.items():
        if env.get(variable):
            try:
                values[field_name] = kind(env[variable])
            except (ValueError, ArithmeticError):
                raise ValueError(f"{variable} must be a number, not {env[variable]!r}") from None
    return Thresholds(**values)


def redacted(url: str) -> str:
    parts = urlparse(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


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
