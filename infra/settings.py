"""Settings, read once from the environment (`source var/services.env` to use local services)."""

from __future__ import annotations

import os
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
    return tokens


@dataclass(frozen=True)
class Settings:
    store: str = DEFAULT_STORE
    kafka_bootstrap: str | None = None
    kafka_topic_prefix: str = ""
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
        return cls(
            store=store,
            kafka_bootstrap=env.get("YAOSU_KAFKA_BOOTSTRAP") or None,
            kafka_topic_prefix=env.get("YAOSU_KAFKA_TOPIC_PREFIX", ""),
            tokens=tokens,
            development_tokens=not tokens_file,
            aggregate_cache=int(env.get("YAOSU_AGGREGATE_CACHE", "20000")),
            thresholds=thresholds_from(env),
        )

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
        raise ValueError(f"YAOSU_STORE must be sqlite:///path, postgresql://user@host:port/db or memory://, not {self.store!r}")


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


def load_tokens(path: Path) -> dict[str, Principal]:
    """`{"<token>": {"name": ..., "role": ..., "department": ...}, ...}`"""
    raw = orjson.loads(path.read_bytes())
    return {token: Principal(**spec) for token, spec in raw.items()}
