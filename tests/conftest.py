"""Fixtures: a ledger on each real store, and the throwaway PostgreSQL that `make test` starts."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest

from infra.settings import Settings
from infra.tokens import Principal
from service.bootstrap import build_ledger
from service.ledger import Ledger
from service.pipeline import Result

ROOT = Path(__file__).resolve().parent.parent
ADMIN = Principal("test", "admin")
#: The base URL of in-process test clients: a loopback name, one the app serves (not TestClient's `testserver`).
LOCAL = "http://localhost"


def serving_testserver(settings: Settings) -> Settings:
    """These settings, also serving the name schemathesis's ASGI client sends (`Host: testserver`)."""
    return replace(settings, allowed_hosts=(*settings.allowed_hosts, "testserver"))


def service(variable: str, environment: str, prefix: str = "") -> str:
    """A service of `make test` / `make services-up`; a suite without it fails, never skips."""
    url = os.environ.get(environment) or os.environ.get(variable, "")
    if not url.startswith(prefix):
        url = ""
    if not url:
        env_file = ROOT / "var" / "services.env"
        lines = env_file.read_text().splitlines() if env_file.exists() else []
        url = next((line.split("=", 1)[1] for line in lines if line.startswith(f"{variable}={prefix}")), "")
    if not url:
        pytest.fail(f"no {variable}: run `make test`, or `make services-up` before pytest", pytrace=False)
    return url


def postgres_url() -> str:
    return service("YAOSU_STORE", "YAOSU_TEST_POSTGRES", "postgresql")


class OwnServices:
    """A PostgreSQL and a Kafka of one test's own, for a test that crashes them: the shared ones stay up
    for the tests running beside it in the other worker."""

    def __init__(self, directory: Path, *which: str) -> None:
        self.env = {k: v for k, v in os.environ.items() if k not in ("YAOSU_PG_PORT", "YAOSU_KAFKA_PORT",
                                                                     "YAOSU_KAFKA_CONTROLLER_PORT")}
        self.env["YAOSU_SERVICES_DIR"] = str(directory)
        out = self.run("up", *which)
        found = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        self.pg_url = found.get("YAOSU_STORE", "")
        self.kafka_bootstrap = found.get("YAOSU_KAFKA_BOOTSTRAP", "")

    def run(self, *args: str) -> str:
        done = subprocess.run([sys.executable, str(ROOT / "tools" / "services.py"), *args], env=self.env,
                              capture_output=True, text=True, timeout=600)
        if done.returncode:
            pytest.fail(f"services.py {' '.join(args)} failed:\n{done.stderr[-3000:]}", pytrace=False)
        return done.stdout

    def crash(self, service: str, node: int | None = None) -> None:
        """Kill the service (SIGKILL for Kafka, an immediate shutdown for PostgreSQL) and start it again;
        `node`: only that node of a Kafka cluster."""
        self.run("restart", service, "--hard", *(("--node", str(node)) if node else ()))

    def kill(self, service: str, node: int | None = None) -> None:
        """Kill the service, or one node of a Kafka cluster, and leave it down (`start` brings it back)."""
        self.run("stop", service, "--hard", *(("--node", str(node)) if node else ()))

    def start(self, service: str, node: int | None = None) -> None:
        """Start again what `kill` left down: same ports, same data."""
        self.run("restart", service, *(("--node", str(node)) if node else ()))


@pytest.fixture
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnServices]:
    services = OwnServices(tmp_path_factory.mktemp("services"), "--postgres")
    yield services
    services.run("down")


@pytest.fixture
def own_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnServices]:
    services = OwnServices(tmp_path_factory.mktemp("services"))
    yield services
    services.run("down")


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnServices]:
    """A Kafka cluster of three brokers of one test module's own, to kill brokers of; one per module, as three
    brokers take a while to start (each test its own topic prefix, and the cluster whole again when it ends)."""
    services = OwnServices(tmp_path_factory.mktemp("cluster"), "--kafka", "--cluster", "3")
    yield services
    services.run("down")


@pytest.fixture(scope="session")
def pg_url() -> str:
    url = postgres_url()
    try:
        psycopg.connect(url.split("?")[0], connect_timeout=5).close()
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL at {url} does not answer: {error}", pytrace=False)
    return url


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    bootstrap = service("YAOSU_KAFKA_BOOTSTRAP", "YAOSU_TEST_KAFKA")
    try:
        KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000).close()
    except KafkaError as error:
        pytest.fail(f"Kafka at {bootstrap} does not answer: {error}", pytrace=False)
    return bootstrap


@pytest.fixture
def kafka_settings(pg_url: str, kafka_bootstrap: str, tmp_path: Path) -> Settings:
    """PostgreSQL and Kafka, with a schema and topics of this test's own."""
    return Settings(store=fresh_store("postgres", tmp_path, pg_url), kafka_bootstrap=kafka_bootstrap,
                    kafka_topic_prefix=f"t{uuid.uuid4().hex[:10]}.")


def fresh_store(kind: str, tmp_path: Path, pg_url: str | None) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    assert pg_url is not None
    # A schema per test: isolated tables without creating databases.
    return f"{pg_url.split('?')[0]}?schema=t_{uuid.uuid4().hex[:16]}"


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    pg = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    return fresh_store(request.param, tmp_path, pg)


@pytest.fixture
def settings(store: str) -> Settings:
    return Settings(store=store)


@pytest.fixture
def ledger(settings: Settings) -> Iterator[Ledger]:
    app = build_ledger(settings)
    yield app
    app.close()


@pytest.fixture
def memory_ledger() -> Iterator[Ledger]:
    """The pipeline on the in-memory store: for fast tests of the domain's rules only."""
    app = build_ledger(Settings(store="memory://"))
    yield app
    app.close()


def submit(ledger: Ledger, *bodies: Any, principal: Principal = ADMIN) -> list[Result]:
    return ledger.submit(list(bodies), principal=principal, channel="test")
