#!/usr/bin/env python3
"""Throwaway local PostgreSQL and Kafka for tests and local runs, without Docker.

Usage (from the repository root)::

    python infra/services.py up [--postgres] [--kafka]   # neither flag: both
    python infra/services.py status
    python infra/services.py restart kafka|postgres [--hard]
    python infra/services.py down [--postgres] [--kafka]  # neither flag: both

``up`` starts the services, waits until they accept clients and writes
``var/services.env``::

    YAOSU_STORE=postgresql://postgres@127.0.0.1:PORT/yaosu
    YAOSU_KAFKA_BOOTSTRAP=127.0.0.1:PORT

It is idempotent: a service whose process is still alive is reused. A service
whose state is left over from a dead process is wiped and started afresh.
``restart`` stops a service and starts it again on the same port with the same
data (``--hard`` simulates a crash: SIGKILL for Kafka, ``immediate`` shutdown for
PostgreSQL). ``down`` stops what ``up`` started and deletes its data.

As a module::

    from infra import services            # or load infra/services.py by path
    env = services.up(postgres=True, kafka=True)   # {"YAOSU_STORE": ..., ...}
    services.restart_kafka(); services.restart_postgres()
    services.down()

Environment knobs:

* ``YAOSU_PG_PORT`` / ``YAOSU_KAFKA_PORT`` / ``YAOSU_KAFKA_CONTROLLER_PORT``:
  fixed ports instead of free ones picked by the OS.
* ``YAOSU_PG_FSYNC=on``: keep fsync on (benchmarks); it is off by default.

PostgreSQL 15 comes from Debian (``/usr/lib/postgresql/15/bin``, installed with
apt-get if absent) and runs as the ``postgres`` user because it refuses root.
Kafka (single-node KRaft, broker+controller in one JVM) runs from the jars of
Maven Central, fetched once with ``mvn`` into ``~/.cache/yaosu/kafka-VERSION``.
Everything else lives under ``var/`` (gitignored); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "ServiceError",
    "down",
    "env_vars",
    "restart_kafka",
    "restart_postgres",
    "status",
    "up",
]

REPO = Path(__file__).resolve().parent.parent
VAR = REPO / "var"
STATE_DIR = VAR / "services"
ENV_FILE = VAR / "services.env"
PG_STATE = STATE_DIR / "postgres.json"
KAFKA_STATE = STATE_DIR / "kafka.json"
KAFKA_DIR = STATE_DIR / "kafka"

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "postgres"
PG_DB = "yaosu"

# Kafka 4.1.x resolves log4j 2.24.3 and slf4j-api 1.7.36; the slf4j binding must
# match both, so the three versions move together.
KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"
DEPENDENCY_PLUGIN_VERSION = "3.8.1"
KAFKA_START_TIMEOUT = 90.0
KAFKA_STOP_GRACE = 20.0

INSTALL_HINT = "install with: apt-get install -y openjdk-17-jre-headless maven"


class ServiceError(RuntimeError):
    """A service could not be set up, started or stopped."""


# --------------------------------------------------------------------------- helpers


def log(msg: str) -> None:
    print(f"[services] {msg}", file=sys.stderr, flush=True)


def _run(
    cmd: list[str], *, check: bool = True, timeout: float | None = 300
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        cmd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip()
        raise ServiceError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{out}")
    return proc


def _as_postgres(*cmd: str) -> list[str]:
    return ["runuser", "-u", PG_USER, "--", *cmd]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Same option the servers set, so a port in TIME_WAIT counts as free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _pick_port(env_name: str, taken: Collection[int] = ()) -> int:
    fixed = os.environ.get(env_name)
    if fixed:
        port = int(fixed)
        if port in taken or not _port_is_free(port):
            raise ServiceError(f"{env_name}={port} but that port is already in use")
        return port
    while True:
        port = _free_port()
        if port not in taken:
            return port


def _pid_alive(pid: int | None, needle: str) -> bool:
    """True if pid runs and its command line contains needle (guards pid reuse)."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return needle.encode() in cmdline


def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _write_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(path)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    # Parallel test workers may all call up(); serialise them on one lock file.
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with open(STATE_DIR / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- postgres


def _pg_url(port: int) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{PG_DB}"


def _ensure_pg_binaries() -> None:
    if (PG_BIN / "initdb").exists():
        return
    if os.geteuid() != 0:
        raise ServiceError(
            f"{PG_BIN}/initdb not found; install with: apt-get install -y postgresql-15"
        )
    log("PostgreSQL 15 not found; installing postgresql-15 with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "postgresql-15"]):
        if subprocess.run(cmd, stdin=subprocess.DEVNULL, env=env).returncode != 0:
            raise ServiceError(f"{' '.join(cmd)} failed")
    if not (PG_BIN / "initdb").exists():
        raise ServiceError(f"postgresql-15 installed but {PG_BIN}/initdb is still missing")


def _postgres_can_traverse(path: Path) -> bool:
    return _run(_as_postgres("test", "-x", str(path)), check=False).returncode == 0


def _pg_base_dir() -> Path:
    """Where the cluster lives: var/services/pg, or a temp dir if postgres can't reach it."""
    base = STATE_DIR / "pg"
    base.mkdir(parents=True, exist_ok=True)
    if _postgres_can_traverse(base):
        return base
    base.rmdir()
    digest = hashlib.sha1(str(REPO).encode()).hexdigest()[:10]
    alt = Path(tempfile.gettempdir()) / f"yaosu-pg-{digest}"
    log(f"{base} is not reachable by the postgres user; using {alt}")
    alt.mkdir(parents=True, exist_ok=True)
    return alt


def _pg_sock_dir(base: Path) -> Path:
    sock = base / "sock"
    # Unix socket paths are capped at 107 bytes; a deep checkout can exceed it.
    if len(str(sock / ".s.PGSQL.65535")) > 100:
        digest = hashlib.sha1(str(REPO).encode()).hexdigest()[:10]
        sock = Path(tempfile.gettempdir()) / f"yaosu-pg-sock-{digest}"
    return sock


def _pg_pid(state: dict[str, Any] | None) -> int | None:
    if not state:
        return None
    try:
        first = (Path(state["data_dir"]) / "postmaster.pid").read_text().split("\n", 1)[0]
        return int(first)
    except (OSError, ValueError, KeyError):
        return None


def _pg_running(state: dict[str, Any] | None) -> bool:
    return _pid_alive(_pg_pid(state), "postgres")


def _pg_start(state: dict[str, Any]) -> None:
    fsync = "on" if os.environ.get("YAOSU_PG_FSYNC", "").lower() in ("on", "1", "true") else "off"
    opts = (
        f"-p {state['port']} -k {state['sock_dir']} -c listen_addresses=127.0.0.1"
        f" -c fsync={fsync} -c max_connections=200"
    )
    log(f"starting PostgreSQL on 127.0.0.1:{state['port']} (fsync={fsync})")
    cmd = _as_postgres(
        str(PG_BIN / "pg_ctl"), "-D", state["data_dir"], "-l", state["log"],
        "-w", "-t", "60", "-o", opts, "start",
    )  # fmt: skip
    proc = _run(cmd, check=False, timeout=120)
    if proc.returncode != 0:
        raise ServiceError(
            f"pg_ctl start failed:\n{proc.stdout}{proc.stderr}\n"
            f"--- {state['log']} ---\n{_tail(Path(state['log']))}"
        )


def _pg_stop(state: dict[str, Any], mode: str = "fast") -> None:
    if not _pg_running(state):
        return
    log(f"stopping PostgreSQL (pid {_pg_pid(state)}, mode {mode})")
    cmd = _as_postgres(
        str(PG_BIN / "pg_ctl"), "-D", state["data_dir"], "-m", mode, "-w", "-t", "60", "stop"
    )
    if _run(cmd, check=False, timeout=90).returncode != 0 and _pg_running(state):
        pid = _pg_pid(state)
        if pid:
            log(f"pg_ctl stop failed; killing postmaster {pid}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _pg_ensure_db(port: int) -> None:
    psql = [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(port), "-d", "postgres",
            "-v", "ON_ERROR_STOP=1", "-tAc"]  # fmt: skip
    exists = _run(_as_postgres(*psql, f"SELECT 1 FROM pg_database WHERE datname = '{PG_DB}'"))
    if exists.stdout.strip() != "1":
        log(f"creating database {PG_DB}")
        _run(_as_postgres(*psql, f"CREATE DATABASE {PG_DB}"))


def _pg_remove(state: dict[str, Any] | None) -> None:
    if state:
        for key in ("base_dir", "sock_dir"):
            if state.get(key):
                shutil.rmtree(state[key], ignore_errors=True)
    PG_STATE.unlink(missing_ok=True)


def _pg_up() -> str:
    state = _read_state(PG_STATE)
    if _pg_running(state):
        assert state is not None
        log(f"PostgreSQL already running on port {state['port']} (pid {_pg_pid(state)})")
        _pg_ensure_db(state["port"])
        return _pg_url(state["port"])
    if state:
        log("removing stale PostgreSQL state")
        _pg_remove(state)

    _ensure_pg_binaries()
    base = _pg_base_dir()
    data_dir, sock_dir = base / "data", _pg_sock_dir(base)
    shutil.rmtree(data_dir, ignore_errors=True)
    sock_dir.mkdir(parents=True, exist_ok=True)
    # initdb refuses a data dir group/world can read, and postgres must own it all.
    for path in (base, sock_dir):
        shutil.chown(path, PG_USER, PG_USER)
    base.chmod(0o700)
    port = _pick_port("YAOSU_PG_PORT")
    state = {
        "port": port,
        "base_dir": str(base),
        "data_dir": str(data_dir),
        "sock_dir": str(sock_dir),
        "log": str(base / "server.log"),
    }
    # Record before initdb so that `down` can clean up after a failed start.
    _write_state(PG_STATE, state)
    log(f"initdb {data_dir}")
    _run(_as_postgres(str(PG_BIN / "initdb"), "-D", str(data_dir), "-U", PG_USER,
                      "--auth=trust", "-E", "UTF8", "--no-sync"))  # fmt: skip
    _pg_start(state)
    _pg_ensure_db(port)
    log(f"PostgreSQL ready on port {port} (pid {_pg_pid(state)})")
    return _pg_url(port)


# --------------------------------------------------------------------------- kafka


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "yaosu"


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise ServiceError(f"java not found (Kafka {KAFKA_VERSION} needs Java 17+); {INSTALL_HINT}")
    out = _run([java, "-version"], check=False).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if match:
        major = int(match.group(1))
        if major == 1 and match.group(2):  # "1.8.0" style
            major = int(match.group(2))
        if major < 17:
            raise ServiceError(
                f"Kafka {KAFKA_VERSION} needs Java 17+, found {major}; {INSTALL_HINT}"
            )
    return java


_POM = """\
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by infra/services.py: only used to fetch the Kafka broker jars. -->
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 http://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>yaosu.infra</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>{kafka}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-api</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>{plugin}</version>
      </plugin>
    </plugins>
  </build>
</project>
"""


def _kafka_libs() -> Path:
    """The directory of broker jars, downloaded with Maven on first use."""
    cache = _cache_root() / f"kafka-{KAFKA_VERSION}"
    libs, marker = cache / "libs", cache / "libs.complete"
    if marker.exists():
        names = marker.read_text().split()
        if names and all((libs / n).exists() for n in names):
            return libs
    mvn = shutil.which("mvn")
    if not mvn:
        raise ServiceError(f"mvn not found (needed once to fetch the Kafka jars); {INSTALL_HINT}")
    cache.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    shutil.rmtree(libs, ignore_errors=True)
    pom = cache / "pom.xml"
    pom.write_text(
        _POM.format(kafka=KAFKA_VERSION, log4j=LOG4J_VERSION, plugin=DEPENDENCY_PLUGIN_VERSION)
    )
    log(f"fetching Kafka {KAFKA_VERSION} jars from Maven Central into {libs} (first run only)")
    t0 = time.monotonic()
    cmd = [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
           "-DincludeScope=runtime", f"-DoutputDirectory={libs}"]  # fmt: skip
    proc = _run(cmd, check=False, timeout=900)
    jars = sorted(p.name for p in libs.glob("*.jar")) if libs.is_dir() else []
    if proc.returncode != 0 or not any(j.startswith("kafka_2.13-") for j in jars):
        raise ServiceError(
            f"mvn could not fetch the Kafka jars (exit {proc.returncode}):\n"
            f"{(proc.stdout + proc.stderr)[-4000:]}"
        )
    marker.write_text("\n".join(jars) + "\n")
    log(f"fetched {len(jars)} jars in {time.monotonic() - t0:.1f}s")
    return libs


def _kafka_running(state: dict[str, Any] | None) -> bool:
    return bool(state) and _pid_alive(state.get("pid"), "kafka.Kafka")  # type: ignore[union-attr]


def _cluster_id() -> str:
    while True:
        cid = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
        # A leading '-' would be parsed as a command-line flag (Kafka avoids it too).
        if not cid.startswith("-"):
            return cid


def _kafka_write_config(state: dict[str, Any]) -> None:
    port, cport = state["port"], state["controller_port"]
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{cport}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": state["data_dir"],
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "num.partitions": "3",
        "auto.create.topics.enable": "true",
    }
    Path(state["config"]).write_text(
        "# Generated by infra/services.py\n" + "".join(f"{k}={v}\n" for k, v in props.items())
    )
    Path(state["log4j_config"]).write_text(
        "# Generated by infra/services.py\n"
        "status = warn\n"
        "appender.file.type = File\n"
        "appender.file.name = FILE\n"
        f"appender.file.fileName = {state['log']}\n"
        "appender.file.append = true\n"
        "appender.file.layout.type = PatternLayout\n"
        "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
        "rootLogger.level = INFO\n"
        "rootLogger.appenderRef.file.ref = FILE\n"
        # The per-request and state-change chatter drowns the useful lines.
        "logger.request.name = kafka.request.logger\n"
        "logger.request.level = WARN\n"
        "logger.state.name = state.change.logger\n"
        "logger.state.level = WARN\n"
    )


def _kafka_start(state: dict[str, Any]) -> None:
    java, libs = _java(), _kafka_libs()
    classpath = f"{libs}/*"
    for name in ("port", "controller_port"):
        if not _port_is_free(state[name]):
            raise ServiceError(f"Kafka {name.replace('_', ' ')} {state[name]} is already in use")
    fmt = [java, "-cp", classpath, f"-Dlog4j2.configurationFile={state['log4j_config']}",
           "kafka.tools.StorageTool", "format", "--standalone", "--ignore-formatted",
           "-t", state["cluster_id"], "-c", state["config"]]  # fmt: skip
    _run(fmt, timeout=120)

    server_log, stdout_log = Path(state["log"]), Path(state["stdout_log"])
    offsets = {p: p.stat().st_size if p.exists() else 0 for p in (server_log, stdout_log)}
    cmd = [java, "-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
           f"-Dlog4j2.configurationFile={state['log4j_config']}",
           "-cp", classpath, "kafka.Kafka", state["config"]]  # fmt: skip
    log(f"starting Kafka {KAFKA_VERSION} on 127.0.0.1:{state['port']}"
        f" (controller {state['controller_port']})")  # fmt: skip
    with open(stdout_log, "ab") as out:
        # Own session: the broker outlives this script and ignores its terminal's ^C.
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            cwd=KAFKA_DIR, start_new_session=True,
        )  # fmt: skip
    state["pid"] = proc.pid
    _write_state(KAFKA_STATE, state)

    t0 = time.monotonic()
    next_report = t0 + 5
    while True:
        elapsed = time.monotonic() - t0
        new_output = False
        for path, start in offsets.items():
            try:
                with open(path, "rb") as fh:
                    fh.seek(start)
                    chunk = fh.read()
            except OSError:
                continue
            new_output = new_output or bool(chunk.strip())
            if b"Kafka Server started" in chunk:
                log(f"Kafka ready on port {state['port']} (pid {proc.pid}) after {elapsed:.1f}s")
                return
        if proc.poll() is not None:
            raise ServiceError(
                f"Kafka exited with code {proc.returncode} during startup\n"
                f"--- {stdout_log} ---\n{_tail(stdout_log)}\n"
                f"--- {server_log} ---\n{_tail(server_log)}"
            )
        # If logging is misconfigured nothing is ever written; the port still tells.
        if not new_output and elapsed > 20 and _port_accepts(state["port"]):
            log(f"Kafka accepts connections on {state['port']} (no startup line logged)")
            return
        if elapsed > KAFKA_START_TIMEOUT:
            _kafka_stop(state, hard=True)
            raise ServiceError(
                f"Kafka did not start within {KAFKA_START_TIMEOUT:.0f}s\n"
                f"--- {server_log} ---\n{_tail(server_log)}"
            )
        if time.monotonic() >= next_report:
            log(f"waiting for Kafka... {elapsed:.0f}s")
            next_report += 5
        time.sleep(0.25)


def _kafka_stop(state: dict[str, Any], *, hard: bool = False) -> None:
    pid = state.get("pid")
    if not _kafka_running(state):
        return
    assert pid is not None
    log(f"stopping Kafka (pid {pid}{', SIGKILL' if hard else ''})")

    def signal_group(sig: signal.Signals) -> None:
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    signal_group(signal.SIGKILL if hard else signal.SIGTERM)
    deadline = time.monotonic() + KAFKA_STOP_GRACE
    while _kafka_running(state):
        if time.monotonic() > deadline:
            log(f"Kafka still running after {KAFKA_STOP_GRACE:.0f}s; sending SIGKILL")
            signal_group(signal.SIGKILL)
            deadline = time.monotonic() + 10
        time.sleep(0.2)
    # Reap it if we are its parent, so it leaves no zombie behind.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _kafka_remove() -> None:
    shutil.rmtree(KAFKA_DIR, ignore_errors=True)
    KAFKA_STATE.unlink(missing_ok=True)


def _kafka_up() -> str:
    state = _read_state(KAFKA_STATE)
    if state and _kafka_running(state):
        log(f"Kafka already running on port {state['port']} (pid {state['pid']})")
        return f"127.0.0.1:{state['port']}"
    if state:
        log("removing stale Kafka state")
    _kafka_remove()
    _java()
    _kafka_libs()
    KAFKA_DIR.mkdir(parents=True, exist_ok=True)
    port = _pick_port("YAOSU_KAFKA_PORT")
    cport = _pick_port("YAOSU_KAFKA_CONTROLLER_PORT", {port})
    state = {
        "port": port,
        "controller_port": cport,
        "cluster_id": _cluster_id(),
        "version": KAFKA_VERSION,
        "data_dir": str(KAFKA_DIR / "data"),
        "config": str(KAFKA_DIR / "server.properties"),
        "log4j_config": str(KAFKA_DIR / "log4j2.properties"),
        "log": str(KAFKA_DIR / "server.log"),
        "stdout_log": str(KAFKA_DIR / "stdout.log"),
        "pid": None,
    }
    _write_state(KAFKA_STATE, state)
    _kafka_write_config(state)
    _kafka_start(state)
    return f"127.0.0.1:{port}"


# --------------------------------------------------------------------------- public API


def env_vars() -> dict[str, str]:
    """The variables of the services that are running now."""
    env: dict[str, str] = {}
    pg = _read_state(PG_STATE)
    if _pg_running(pg):
        assert pg is not None
        env["YAOSU_STORE"] = _pg_url(pg["port"])
    kafka = _read_state(KAFKA_STATE)
    if _kafka_running(kafka):
        assert kafka is not None
        env["YAOSU_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{kafka['port']}"
    return env


def _write_env_file() -> dict[str, str]:
    env = env_vars()
    if env:
        VAR.mkdir(parents=True, exist_ok=True)
        ENV_FILE.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    else:
        ENV_FILE.unlink(missing_ok=True)
    return env


def up(postgres: bool = True, kafka: bool = True) -> dict[str, str]:
    """Start (or reuse) the services; return the env vars of all running ones."""
    with _lock():
        if postgres:
            _pg_up()
        if kafka:
            _kafka_up()
        env = _write_env_file()
    log(f"wrote {ENV_FILE}")
    return env


def down(postgres: bool = True, kafka: bool = True) -> None:
    """Stop the services that up() started and delete their data."""
    with _lock():
        if kafka:
            state = _read_state(KAFKA_STATE)
            if state:
                _kafka_stop(state)
            _kafka_remove()
        if postgres:
            state = _read_state(PG_STATE)
            if state:
                _pg_stop(state, mode="fast")
            _pg_remove(state)
        _write_env_file()


def restart_kafka(hard: bool = False) -> dict[str, str]:
    """Stop Kafka (SIGKILL if hard) and start it again: same port, same data."""
    with _lock():
        state = _read_state(KAFKA_STATE)
        if not state:
            raise ServiceError("Kafka was not started by `up`; nothing to restart")
        _kafka_stop(state, hard=hard)
        _kafka_start(state)
        return _write_env_file()


def restart_postgres(hard: bool = False) -> dict[str, str]:
    """Stop PostgreSQL (immediate mode, i.e. crash-like, if hard) and start it again."""
    with _lock():
        state = _read_state(PG_STATE)
        if not state:
            raise ServiceError("PostgreSQL was not started by `up`; nothing to restart")
        _pg_stop(state, mode="immediate" if hard else "fast")
        _pg_start(state)
        return _write_env_file()


def status() -> dict[str, dict[str, Any]]:
    """Per service: whether it runs, its pid and port."""
    pg = _read_state(PG_STATE)
    kafka = _read_state(KAFKA_STATE)
    return {
        "postgres": {
            "running": _pg_running(pg),
            "pid": _pg_pid(pg),
            "port": pg and pg.get("port"),
            "data_dir": pg and pg.get("data_dir"),
        },
        "kafka": {
            "running": _kafka_running(kafka),
            "pid": kafka and kafka.get("pid"),
            "port": kafka and kafka.get("port"),
            "version": kafka and kafka.get("version"),
        },
    }


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("up", "start services"), ("down", "stop services, delete data")):
        p = sub.add_parser(name, help=text)
        p.add_argument(
            "--postgres", action="store_true", help="only PostgreSQL (with --kafka: both)"
        )
        p.add_argument("--kafka", action="store_true", help="only Kafka (with --postgres: both)")
    sub.add_parser("status", help="show what runs")
    p = sub.add_parser("restart", help="restart one service, keeping port and data")
    p.add_argument("service", choices=("kafka", "postgres"))
    p.add_argument("--hard", action="store_true", help="crash it instead of a clean stop")
    args = parser.parse_args(argv)

    try:
        if args.command in ("up", "down"):
            both = not (args.postgres or args.kafka)
            fn = up if args.command == "up" else down
            t0 = time.monotonic()
            fn(postgres=both or args.postgres, kafka=both or args.kafka)
            log(f"{args.command} done in {time.monotonic() - t0:.1f}s")
            if args.command == "up":
                sys.stdout.write(ENV_FILE.read_text() if ENV_FILE.exists() else "")
        elif args.command == "restart":
            restart = restart_kafka if args.service == "kafka" else restart_postgres
            restart(hard=args.hard)
        else:
            for name, info in status().items():
                if info["running"]:
                    print(f"{name}: running pid={info['pid']} port={info['port']}")
                else:
                    print(f"{name}: stopped")
            for key, value in env_vars().items():
                print(f"{key}={value}")
    except ServiceError as exc:
        log(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
