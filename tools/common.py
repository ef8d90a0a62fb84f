"""Shared helpers of the development services (see tools/services.py).

Logging, running commands, ports, pid checks, state files, the lock and
``ServiceError``; used by ``services``, ``postgres_server`` and ``kafka_broker``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import socket
import subprocess
import sys
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
#: Where the services keep state and data: var/, or YAOSU_SERVICES_DIR for a test that crashes services of its own.
VAR = Path(os.environ.get("YAOSU_SERVICES_DIR") or REPO / "var")
STATE_DIR = VAR / "services"


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


def _ephemeral_ports() -> range:
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def free_port() -> int:
    """A free port outside the kernel's ephemeral range.

    A port from that range can be handed to any outgoing connection on the machine while its
    server is down: a broker restarted by a test then finds its own port taken (seen in CI)."""
    ephemeral = _ephemeral_ports()
    below = range(max(1024, ephemeral.start - 12000), ephemeral.start)
    above = range(ephemeral.stop, min(65536, ephemeral.stop + 4000))
    candidates = [*below, *above]
    rng = random.SystemRandom()
    for _ in range(500 if candidates else 0):
        port = rng.choice(candidates)
        if _port_is_free(port):
            return port
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


def _pick_port(env_name: str | None, taken: Collection[int] = ()) -> int:
    """The port fixed by the variable `env_name` if set, else a free one not in `taken`."""
    fixed = os.environ.get(env_name) if env_name else None
    if fixed:
        port = int(fixed)
        if port in taken or not _port_is_free(port):
            raise ServiceError(f"{env_name}={port} but that port is already in use")
        return port
    while True:
        port = free_port()
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


def ensure_debian_package(binary: Path, package: str) -> None:
    """Install `package` with apt-get when `binary` is missing (as root; otherwise say how)."""
    if binary.exists():
        return
    if os.geteuid() != 0:
        raise ServiceError(f"{binary} not found; install with: apt-get install -y {package}")
    log(f"{binary} not found; installing {package} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", package]):
        if subprocess.run(cmd, stdin=subprocess.DEVNULL, env=env).returncode != 0:
            raise ServiceError(f"{' '.join(cmd)} failed")
    if not binary.exists():
        raise ServiceError(f"{package} installed but {binary} is still missing")

