"""Settings, read once from the environment (`source var/services.env` to use local services)."""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import parse_qs, unquote, urlparse

from domain.policy import PolicySettings
from domain.reference import FIRST_YEAR, LAST_YEAR
from domain.supervision import Thresholds
from infra.tokens import Principal, TokensFile, development_tokens, token_hash

ROOT = Path(__file__).resolve().parent.parent
#: Host names a browser uses for this machine: served always (a DNS rebinding attack sends its own name).
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
#: HMAC-SHA256 keys shorter than its block of output are guessable sooner than the hash is broken.
MIN_SESSION_SECRET_BYTES = 32
_HOST_NAME = re.compile(r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")
DEFAULT_STORE = f"sqlite:///{ROOT / 'var' / 'yaosu.db'}"
#: Who issues the downloads and the monthly report (编制单位), unless YAOSU_ISSUER names another.
DEFAULT_ISSUER = "兰州市发展和改革委员会"
#: Where the links of notifications lead, unless YAOSU_CONSOLE_URL names the address people use.
DEFAULT_CONSOLE_URL = "http://127.0.0.1:8000"
#: An issuer's name fits one line of a title block.
ISSUER_MAX_LENGTH = 100


@dataclass(frozen=True)
class Settings:
    store: str = DEFAULT_STORE
    kafka_bootstrap: str | None = None
    kafka_topic_prefix: str = ""
    #: Copies of each partition of the topics Yaosu creates; None: three on a cluster of three brokers or more,
    #: else one per broker (infra/kafka.Replication).
    kafka_replication: int | None = None
    #: sha256 of each token → who holds it
    tokens: Mapping[str, Principal] = field(default_factory=development_tokens)
    development_tokens: bool = True
    max_batch: int = 1000
    aggregate_cache: int = 20000
    #: How long a Kafka message may wait for its prerequisite before it is rejected for good.
    park_window: timedelta = timedelta(minutes=10)
    #: Signs the console's session cookies: shared by every `yaosu serve` behind one address, else
    #: made afresh by each process (its sessions then end with it).
    session_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    thresholds: Thresholds = Thresholds()
    #: What a deployment sets of the rules messages are decided by (the unit of work carries it).
    policy: PolicySettings = PolicySettings()
    #: Bodies of read-model answers kept per position (api/reading.py); 0 keeps none.
    answer_cache_mb: float = 64
    #: Requests `yaosu serve` works on at once in worker threads; the rest wait on the event loop.
    worker_threads: int = 8
    #: Readers waiting at once for a `min_position` (they hold no thread or connection); the next gets 503.
    max_waiting: int = 128
    #: The names in the Host header that are served (any port); any other is answered 400 before
    #: anything else is done (DNS rebinding). The loopback names always; others from YAOSU_ALLOWED_HOSTS.
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    #: How long `yaosu serve` waits for a request's headers and body, from the connection's first
    #: byte (or the end of the previous answer) to the body's last: a slower client is cut off.
    read_timeout_seconds: float = 30.0
    #: The unit that issues the downloads and the monthly report (编制单位), in their title block.
    issuer: str = DEFAULT_ISSUER
    #: `yaosu notify`: the targets file (YAOSU_NOTIFY_TARGETS), and the console's address its messages link to.
    notify_targets: Path | None = None
    console_url: str = DEFAULT_CONSOLE_URL

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        store = env.get("YAOSU_STORE") or DEFAULT_STORE
        tokens_file = env.get("YAOSU_TOKENS_FILE")
        # The well-known development tokens serve the embedded store out of the box; on a shared
        # database they must be asked for, so a deployment never opens with them by mistake.
        embedded = not store.startswith(("postgresql:", "postgres:"))
        tokens: Mapping[str, Principal]
        if tokens_file:
            tokens = TokensFile(Path(tokens_file))
        elif embedded or env.get("YAOSU_DEV_TOKENS") == "1":
            tokens = development_tokens()
        else:
            tokens = {}
        uses_development_tokens = not tokens_file and bool(tokens)
        StoreLocation.parse(store)  # a mistyped store is one clear error now, not a failure later
        return cls(
            store=store,
            kafka_bootstrap=env.get("YAOSU_KAFKA_BOOTSTRAP") or None,
            kafka_topic_prefix=env.get("YAOSU_KAFKA_TOPIC_PREFIX", ""),
            kafka_replication=kafka_replication(env),
            tokens=tokens,
            development_tokens=uses_development_tokens,
            aggregate_cache=number(env, "YAOSU_AGGREGATE_CACHE", 20000, int),
            park_window=timedelta(seconds=number(env, "YAOSU_PARK_WINDOW_SECONDS", 600, float)),
            **({"session_secret": session_secret(env["YAOSU_SESSION_SECRET"])} if env.get("YAOSU_SESSION_SECRET")
               else {}),
            thresholds=thresholds_from(env),
            policy=policy_from(env),
            answer_cache_mb=number(env, "YAOSU_ANSWER_CACHE_MB", 64, float),
            worker_threads=number(env, "YAOSU_WORKER_THREADS", 8, int),
            max_waiting=number(env, "YAOSU_MAX_WAITING", 128, int),
            allowed_hosts=(*LOOPBACK_HOSTS, *host_names(env.get("YAOSU_ALLOWED_HOSTS", ""))),
            read_timeout_seconds=positive(number(env, "YAOSU_READ_TIMEOUT_SECONDS", 30.0, float),
                                          "YAOSU_READ_TIMEOUT_SECONDS"),
            issuer=issuer(env.get("YAOSU_ISSUER", DEFAULT_ISSUER)),
            notify_targets=Path(env["YAOSU_NOTIFY_TARGETS"]) if env.get("YAOSU_NOTIFY_TARGETS") else None,
            console_url=console_url(env.get("YAOSU_CONSOLE_URL") or DEFAULT_CONSOLE_URL),
        )

    def principal(self, token: str) -> Principal | None:
        return self.tokens.get(token_hash(token))

    @property
    def store_for_logs(self) -> str:
        """The store's URL without its password."""
        return redacted(self.store)

    @functools.cached_property
    def location(self) -> StoreLocation:
        return StoreLocation.parse(self.store)

    def persistence_env(self) -> dict[str, str]:
        """The `eventsourcing` persistence settings that `YAOSU_STORE` stands for."""
        where = self.location
        common = {"TRANSCODER_TOPIC": "infra.transcoder:OrjsonTranscoder",
                  "LEDGER_CACHE_SIZE": str(self.aggregate_cache)}
        if where.kind == "sqlite":
            assert where.sqlite_path is not None
            if where.sqlite_path != ":memory:":
                Path(where.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
            return {**common, "PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": where.sqlite_path,
                    "SQLITE_LOCK_TIMEOUT": "30", "PROCESS_RECORDER_TOPIC": "infra.recorder:SQLiteEventsRecorder"}
        if where.kind == "postgres":
            conn = where.conninfo
            return {**common, "PERSISTENCE_MODULE": "eventsourcing.postgres",
                    "PROCESS_RECORDER_TOPIC": "infra.recorder:EventsRecorder",
                    "POSTGRES_DBNAME": conn["dbname"], "POSTGRES_HOST": conn["host"], "POSTGRES_PORT": str(conn["port"]),
                    "POSTGRES_USER": conn["user"], "POSTGRES_PASSWORD": conn["password"] or "",
                    "POSTGRES_POOL_SIZE": str(where.pool_size), "POSTGRES_MAX_OVERFLOW": "10",
                    "POSTGRES_LOCK_TIMEOUT": "10", "POSTGRES_SCHEMA": where.schema}
        return {**common, "PERSISTENCE_MODULE": "eventsourcing.popo"}


@dataclass(frozen=True)
class StoreLocation:
    """Where the event store lives (and the read models beside it), read from `YAOSU_STORE`."""

    kind: str  # "sqlite" | "postgres" | "memory"
    sqlite_path: str | None = None
    #: psycopg's connection arguments (PostgreSQL)
    conninfo: Mapping[str, Any] = field(default_factory=dict)
    schema: str = "public"
    pool_size: int = 10

    @classmethod
    def parse(cls, store: str) -> StoreLocation:
        url = urlparse(store)
        if url.scheme == "sqlite":
            # As SQLAlchemy writes them: sqlite:///relative.db, sqlite:////absolute.db
            return cls("sqlite", sqlite_path=unquote(url.path)[1:] if url.path.startswith("/") else unquote(url.path))
        if url.scheme in ("postgresql", "postgres"):
            query = parse_qs(url.query)
            conninfo = {"dbname": url.path.lstrip("/") or "yaosu", "host": url.hostname or "127.0.0.1",
                        "port": url.port or 5432, "user": unquote(url.username or "postgres"),
                        "password": unquote(url.password) if url.password else None}
            return cls("postgres", conninfo=conninfo, schema=query.get("schema", ["public"])[0],
                       pool_size=int(query.get("pool_size", ["10"])[0]))
        if url.scheme == "memory":
            return cls("memory")
        raise ValueError("YAOSU_STORE must be sqlite:///path, postgresql://user@host:port/db or memory://, "
                         f"not {redacted(store)!r}")


THRESHOLD_VARIABLES = {
    "YAOSU_START_YELLOW_DAYS": ("start_yellow_days", int),
    "YAOSU_START_RED_DAYS": ("start_red_days", int),
    "YAOSU_LAG_YELLOW_POINTS": ("lag_yellow_points", Decimal),
    "YAOSU_LAG_RED_POINTS": ("lag_red_points", Decimal),
    "YAOSU_ISSUE_RED_DAYS": ("issue_red_days", int),
    "YAOSU_REPORT_DUE_DAYS": ("report_due_days", int),
    # v1.2, the factor-level rules and the supervision case
    "YAOSU_FUNDS_IDLE_SHARE": ("funds_idle_share", Decimal),
    "YAOSU_FUNDS_IDLE_YELLOW_DAYS": ("funds_idle_yellow_days", int),
    "YAOSU_FUNDS_IDLE_RED_DAYS": ("funds_idle_red_days", int),
    "YAOSU_LAND_IDLE_RED_DAYS": ("land_idle_red_days", int),
    "YAOSU_LAND_RECLAIMABLE_DAYS": ("land_reclaimable_days", int),
    "YAOSU_LAND_UNSUPPLIED_YELLOW_DAYS": ("land_unsupplied_yellow_days", int),
    "YAOSU_LAND_UNSUPPLIED_RED_DAYS": ("land_unsupplied_red_days", int),
    "YAOSU_ENERGY_IDLE_YELLOW_DAYS": ("energy_idle_yellow_days", int),
    "YAOSU_ENERGY_IDLE_RED_DAYS": ("energy_idle_red_days", int),
    "YAOSU_CASE_CLOSE_DAYS": ("case_close_days", int),
}
#: Day counts of the v1.2 rules, each from 0 to ten years; and the pairs that must come in order.
DAY_COUNTS = ("YAOSU_FUNDS_IDLE_YELLOW_DAYS", "YAOSU_FUNDS_IDLE_RED_DAYS", "YAOSU_LAND_IDLE_RED_DAYS",
              "YAOSU_LAND_RECLAIMABLE_DAYS", "YAOSU_LAND_UNSUPPLIED_YELLOW_DAYS", "YAOSU_LAND_UNSUPPLIED_RED_DAYS",
              "YAOSU_ENERGY_IDLE_YELLOW_DAYS", "YAOSU_ENERGY_IDLE_RED_DAYS", "YAOSU_CASE_CLOSE_DAYS")
IN_ORDER = (("YAOSU_FUNDS_IDLE_YELLOW_DAYS", "YAOSU_FUNDS_IDLE_RED_DAYS"),
            ("YAOSU_LAND_IDLE_RED_DAYS", "YAOSU_LAND_RECLAIMABLE_DAYS"),
            ("YAOSU_LAND_UNSUPPLIED_YELLOW_DAYS", "YAOSU_LAND_UNSUPPLIED_RED_DAYS"),
            ("YAOSU_ENERGY_IDLE_YELLOW_DAYS", "YAOSU_ENERGY_IDLE_RED_DAYS"))


def thresholds_from(env: Mapping[str, str]) -> Thresholds:
    thresholds = Thresholds(**{field_name: number(env, variable, None, kind)
                               for variable, (field_name, kind) in THRESHOLD_VARIABLES.items() if env.get(variable)})
    # A report is due some days after its month ends: within the year that follows, and not before.
    within("YAOSU_REPORT_DUE_DAYS", thresholds.report_due_days, 0, 366)
    value = {variable: getattr(thresholds, field_name) for variable, (field_name, _) in THRESHOLD_VARIABLES.items()}
    for variable in DAY_COUNTS:
        within(variable, value[variable], 0, 3660)
    for earlier, later in IN_ORDER:  # yellow before red, red before reclaimable
        if value[earlier] > value[later]:
            raise ValueError(f"{earlier} ({value[earlier]}) must not be more than {later} ({value[later]})")
    if not 0 < thresholds.funds_idle_share <= 1:
        raise ValueError(f"YAOSU_FUNDS_IDLE_SHARE must be more than 0 and at most 1, not {thresholds.funds_idle_share}")
    return thresholds


def policy_from(env: Mapping[str, str]) -> PolicySettings:
    defaults = PolicySettings()
    last = number(env, "YAOSU_EXEMPTION_LAST_YEAR", defaults.exemption_last_year, int)
    return PolicySettings(exemption_last_year=within("YAOSU_EXEMPTION_LAST_YEAR", last, FIRST_YEAR, LAST_YEAR))


#: More copies than this are more than any cluster Yaosu runs on needs (and a typo, like 30 for 3).
MAX_KAFKA_REPLICATION = 7


def kafka_replication(env: Mapping[str, str]) -> int | None:
    """YAOSU_KAFKA_REPLICATION: copies of each partition of the topics Yaosu creates, or None to follow the cluster."""
    replicas = number(env, "YAOSU_KAFKA_REPLICATION", None, int)
    return None if replicas is None else within("YAOSU_KAFKA_REPLICATION", replicas, 1, MAX_KAFKA_REPLICATION)


def within(variable: str, value: int, low: int, high: int) -> int:
    """The value, or one clear error naming the variable when it is out of its range."""
    if not low <= value <= high:
        raise ValueError(f"{variable} must be a whole number from {low} to {high}, not {value}")
    return value


def number(env: Mapping[str, str], variable: str, default: Any, kind: Any) -> Any:
    """A number from the environment, or one clear error naming the variable."""
    if not env.get(variable):
        return default
    try:
        return kind(env[variable])
    except (ValueError, ArithmeticError):
        raise ValueError(f"{variable} must be a number, not {env[variable]!r}") from None


def issuer(value: str) -> str:
    """YAOSU_ISSUER: a unit's name on one line (a title block has no room for an empty one or a second line)."""
    name = value.strip()
    if not name or len(name) > ISSUER_MAX_LENGTH or any(ch < " " or "\x7f" <= ch <= "\x9f" for ch in name):
        raise ValueError(f"YAOSU_ISSUER must be the issuing unit's name, 1 to {ISSUER_MAX_LENGTH} characters on one "
                         f"line, not {value!r}")
    return name


def console_url(value: str) -> str:
    """YAOSU_CONSOLE_URL: where people open the console (the links of notifications), http(s) with a host."""
    parts = urlparse(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"YAOSU_CONSOLE_URL must be the console's base address (https://yaosu.example.gov.cn), "
                         f"not {value!r}")
    return value.strip().rstrip("/")


def positive(value: float, variable: str) -> float:
    if not value > 0:
        raise ValueError(f"{variable} must be more than 0, not {value}")
    return value


def session_secret(text: str) -> bytes:
    secret = text.encode()
    if len(secret) < MIN_SESSION_SECRET_BYTES:
        raise ValueError(f"YAOSU_SESSION_SECRET must be at least {MIN_SESSION_SECRET_BYTES} bytes, not {len(secret)} "
                         "(make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return secret


def host_names(text: str) -> tuple[str, ...]:
    """YAOSU_ALLOWED_HOSTS: names as the Host header gives them, without a port, comma-separated."""
    names = []
    for entry in (part.strip().lower() for part in text.split(",")):
        if not entry:
            continue
        try:
            address = ipaddress.ip_address(entry.strip("[]"))
        except ValueError:
            if not _HOST_NAME.fullmatch(entry):
                raise ValueError(f"YAOSU_ALLOWED_HOSTS: {entry!r} is not a host name (give names like "
                                 "yaosu.example.gov.cn or 10.0.0.5, comma-separated, without scheme or port)") from None
            names.append(entry)
        else:
            names.append(f"[{address}]" if address.version == 6 else str(address))
    return tuple(names)


def is_loopback_host(host: str) -> bool:
    """Whether a host to listen on or a name to serve stands for this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def redacted(url: str) -> str:
    parts = urlparse(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()
