#!/usr/bin/env python3
"""Throwaway local PostgreSQL and Kafka for tests and local runs, without Docker.

Usage (from the repository root)::

    python tools/services.py up [--postgres] [--kafka] [--cluster 3]  # neither flag: both
    python tools/services.py status
    python tools/services.py restart kafka|postgres [--hard] [--node N]
    python tools/services.py stop kafka|postgres [--hard] [--node N]
    python tools/services.py down [--postgres] [--kafka]  # neither flag: both

``up`` starts the services, waits until they accept clients and writes
``var/services.env``::

    YAOSU_STORE=postgresql://postgres@127.0.0.1:PORT/yaosu
    YAOSU_KAFKA_BOOTSTRAP=127.0.0.1:PORT            # with --cluster 3: PORT1,PORT2,PORT3

``--cluster 3`` starts Kafka as a cluster of three nodes (each a broker and a
controller of KRaft, small heaps), whose own topics and auto-created ones keep
three replicas, two of them in sync (``min.insync.replicas=2``).
It is idempotent: a service whose process is still alive is reused (a node of
the cluster that died is started again). A service whose state is left over from
a dead process is wiped and started afresh.
``restart`` stops a service and starts it again on the same port with the same
data (``--hard`` simulates a crash: SIGKILL for Kafka, ``immediate`` shutdown for
PostgreSQL); ``--node N`` only the cluster's node N. ``stop`` stops it and keeps
its data and ports (``restart`` starts it again). ``down`` stops what ``up``
started and deletes its data.

As a module::

    from tools import services            # or load tools/services.py by path
    env = services.up(postgres=True, kafka=True)   # {"YAOSU_STORE": ..., ...}
    services.restart_kafka(); services.restart_postgres(); services.restart_kafka(node=2, hard=True)
    services.down()

Environment knobs:

* ``YAOSU_PG_PORT`` / ``YAOSU_KAFKA_PORT`` / ``YAOSU_KAFKA_CONTROLLER_PORT``:
  fixed ports instead of free ones picked by the OS (a cluster's first node's).
* ``YAOSU_PG_FSYNC=on``: keep fsync on (benchmarks); it is off by default.

PostgreSQL 15 comes from Debian (``/usr/lib/postgresql/15/bin``, installed with
apt-get if absent) and runs as the ``postgres`` user because it refuses root.
Kafka (KRaft, broker+controller in one JVM per node) runs from the jars of
Maven Central, fetched once with ``mvn`` into ``~/.cache/yaosu/kafka-VERSION``.
Everything else lives under ``var/`` (gitignored); progress goes to stderr.

This file is the front; PostgreSQL lives in ``postgres_server.py``, Kafka in
``kafka_broker.py`` and the helpers they share in ``common.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

if not __package__:
    # Run as a script (or loaded by path): sys.path[0] is tools/, so put the
    # repository root first to import the sibling modules as the package `tools`.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.common import VAR, ServiceError, _lock, _read_state, ensure_debian_package, log
from tools.kafka_broker import (
    _kafka_bootstrap,
    _kafka_remove,
    _kafka_running,
    _kafka_start,
    _kafka_state,
    _kafka_stop,
    _kafka_up,
    _node_running,
)
from tools.postgres_server import PG_STATE, _pg_pid, _pg_remove, _pg_running, _pg_start, _pg_stop, _pg_up, _pg_url

__all__ = [
    "ServiceError",
    "down",
    "env_vars",
    "restart_kafka",
    "restart_postgres",
    "status",
    "stop_kafka",
    "stop_postgres",
    "up",
]

ENV_FILE = VAR / "services.env"


# --------------------------------------------------------------------------- public API


def env_vars() -> dict[str, str]:
    """The variables of the services that are running now."""
    env: dict[str, str] = {}
    pg = _read_state(PG_STATE)
    if _pg_running(pg):
        assert pg is not None
        env["YAOSU_STORE"] = _pg_url(pg["port"])
    kafka = _kafka_state()
    if _kafka_running(kafka):
        assert kafka is not None
        env["YAOSU_KAFKA_BOOTSTRAP"] = _kafka_bootstrap(kafka)
    return env


def _write_env_file() -> dict[str, str]:
    env = env_vars()
    if env:
        VAR.mkdir(parents=True, exist_ok=True)
        ENV_FILE.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    else:
        ENV_FILE.unlink(missing_ok=True)
    return env


def up(postgres: bool = True, kafka: bool = True, cluster: int | None = None) -> dict[str, str]:
    """Start (or reuse) the services; return the env vars of all running ones.

    `cluster`: Kafka's number of nodes (without it, what runs is reused, else one node starts)."""
    with _lock():
        # The suite checks /metrics with promtool (Debian's prometheus package) and drives the console in
        # Debian's Chromium (Playwright's own browser download cannot work without the internet).
        ensure_debian_package(Path("/usr/bin/promtool"), "prometheus")
        ensure_debian_package(Path("/usr/bin/chromium"), "chromium")
        if postgres:
            _pg_up()
        if kafka:
            _kafka_up(cluster)
        env = _write_env_file()
    log(f"wrote {ENV_FILE}")
    return env


def down(postgres: bool = True, kafka: bool = True) -> None:
    """Stop the services that up() started and delete their data."""
    with _lock():
        if kafka:
            state = _kafka_state()
            if state:
                _kafka_stop(state)
            _kafka_remove()
        if postgres:
            state = _read_state(PG_STATE)
            if state:
                _pg_stop(state, mode="fast")
            _pg_remove(state)
        _write_env_file()


def restart_kafka(hard: bool = False, node: int | None = None) -> dict[str, str]:
    """Stop Kafka (SIGKILL if hard) and start it again: same ports, same data; only `node` of a cluster if given."""
    with _lock():
        state = _started_kafka("restart")
        _kafka_stop(state, hard=hard, node=node)
        _kafka_start(state, node)
        return _write_env_file()


def stop_kafka(hard: bool = False, node: int | None = None) -> dict[str, str]:
    """Stop Kafka (SIGKILL if hard), or only `node` of a cluster, keeping its data: `restart_kafka` starts it."""
    with _lock():
        _kafka_stop(_started_kafka("stop"), hard=hard, node=node)
        return _write_env_file()


def _started_kafka(doing: str) -> dict[str, Any]:
    state = _kafka_state()
    if not state:
        raise ServiceError(f"Kafka was not started by `up`; nothing to {doing}")
    return state


def stop_postgres(hard: bool = False, *, then_start: bool = False) -> dict[str, str]:
    """Stop PostgreSQL (immediate mode, i.e. crash-like, if hard), keeping its data: `restart_postgres` starts it."""
    with _lock():
        state = _read_state(PG_STATE)
        if not state:
            raise ServiceError(f"PostgreSQL was not started by `up`; nothing to {'restart' if then_start else 'stop'}")
        _pg_stop(state, mode="immediate" if hard else "fast")
        if then_start:
            _pg_start(state)
        return _write_env_file()


def restart_postgres(hard: bool = False) -> dict[str, str]:
    """Stop PostgreSQL (immediate mode if hard) and start it again: same port, same data."""
    return stop_postgres(hard, then_start=True)


def status() -> dict[str, dict[str, Any]]:
    """Per service: whether it runs, its pid and port."""
    pg = _read_state(PG_STATE)
    kafka = _kafka_state()
    return {
        "postgres": {
            "running": _pg_running(pg),
            "pid": _pg_pid(pg),
            "port": pg and pg.get("port"),
            "data_dir": pg and pg.get("data_dir"),
        },
        "kafka": {
            "running": _kafka_running(kafka),
            "pid": kafka and ",".join(str(n["pid"]) for n in kafka["nodes"] if _node_running(n)),
            "port": kafka and ",".join(str(n["port"]) for n in kafka["nodes"]),
            "version": kafka and kafka.get("version"),
            "nodes": kafka and {n["node_id"]: _node_running(n) for n in kafka["nodes"]},
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
        if name == "up":
            p.add_argument("--cluster", type=int, choices=(1, 3), default=None,
                           help="Kafka's nodes: 3 for a replicated cluster (default: what runs, else 1)")
    sub.add_parser("status", help="show what runs")
    for name, text in (("restart", "restart one service, keeping port and data"),
                       ("stop", "stop one service, keeping port and data (restart starts it)")):
        p = sub.add_parser(name, help=text)
        p.add_argument("service", choices=("kafka", "postgres"))
        p.add_argument("--hard", action="store_true", help="crash it instead of a clean stop")
        p.add_argument("--node", type=int, default=None, help="Kafka: only this node of the cluster (1, 2, 3)")
    args = parser.parse_args(argv)

    try:
        if args.command in ("up", "down"):
            both = not (args.postgres or args.kafka)
            t0 = time.monotonic()
            if args.command == "up":
                up(postgres=both or args.postgres, kafka=both or args.kafka, cluster=args.cluster)
            else:
                down(postgres=both or args.postgres, kafka=both or args.kafka)
            log(f"{args.command} done in {time.monotonic() - t0:.1f}s")
            if args.command == "up":
                sys.stdout.write(ENV_FILE.read_text() if ENV_FILE.exists() else "")
        elif args.command in ("restart", "stop"):
            if args.service == "postgres" and args.node is not None:
                raise ServiceError("--node is for Kafka's nodes; PostgreSQL runs one")
            if args.service == "kafka":
                (restart_kafka if args.command == "restart" else stop_kafka)(hard=args.hard, node=args.node)
            else:
                (restart_postgres if args.command == "restart" else stop_postgres)(hard=args.hard)
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
