"""The throwaway PostgreSQL 15 of tools/services.py: Debian binaries, initdb, start/stop."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

from tools.common import (
    STATE_DIR,
    ServiceError,
    _pick_port,
    _pid_alive,
    _read_state,
    _run,
    _tail,
    _write_state,
    ensure_debian_package,
    log,
)

PG_STATE = STATE_DIR / "postgres.json"

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "postgres"
PG_DB = "yaosu"


def _as_postgres(*cmd: str) -> list[str]:
    return ["runuser", "-u", PG_USER, "--", *cmd]


def _pg_url(port: int) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{PG_DB}"


def _ensure_pg_binaries() -> None:
    ensure_debian_package(PG_BIN / "initdb", "postgresql-15")


def _postgres_can_traverse(path: Path) -> bool:
    return _run(_as_postgres("test", "-x", str(path)), check=False).returncode == 0


def _pg_base_dir() -> Path:
    """Where the cluster lives: var/services/pg, or a temp dir if postgres can't reach it."""
    base = STATE_DIR / "pg"
    base.mkdir(parents=True, exist_ok=True)
    if _postgres_can_traverse(base):
        return base
    base.rmdir()
    digest = hashlib.sha1(str(STATE_DIR).encode()).hexdigest()[:10]
    alt = Path(tempfile.gettempdir()) / f"yaosu-pg-{digest}"
    log(f"{base} is not reachable by the postgres user; using {alt}")
    alt.mkdir(parents=True, exist_ok=True)
    return alt


def _pg_sock_dir(base: Path) -> Path:
    sock = base / "sock"
    # Unix socket paths are capped at 107 bytes; a deep checkout can exceed it.
    if len(str(sock / ".s.PGSQL.65535")) > 100:
        digest = hashlib.sha1(str(STATE_DIR).encode()).hexdigest()[:10]
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
