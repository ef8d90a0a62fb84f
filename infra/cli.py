"""The `yaosu` command: serve the API, load the demo, bulk-load envelopes."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import sys
import threading
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any, Iterable, Iterator

import orjson

from infra.bootstrap import build_ledger
from infra.ledger import Ledger
from infra.settings import Principal, Settings, add_token
from projections.read import ReadModels
from projections.catalog import BY_NAME
from projections.runner import Runner

CLI_PRINCIPAL = Principal("cli", "admin")
BATCH = 500


class Progress:
    """One line on stderr, rewritten in place: done/total, rate, outcome counts."""

    def __init__(self, total: int | None, label: str, unit: str = "message") -> None:
        self.total, self.label, self.unit = total, label, unit
        self.done = 0
        self.counts: Counter[str] = Counter()
        self.started = time.perf_counter()
        self.shown = 0.0

    def add(self, statuses: Iterable[str]) -> None:
        for status in statuses:
            self.counts[status] += 1
            self.done += 1
        self.tick()

    def advance(self, n: int) -> None:
        self.done += n
        self.tick()

    def tick(self) -> None:
        now = time.perf_counter()
        if now - self.shown > 0.25 or self.done == self.total:
            self.shown = now
            self._show(now)

    def _show(self, now: float) -> None:
        rate = self.done / max(now - self.started, 1e-9)
        of = f"/{self.total:,} ({100 * self.done // max(self.total, 1)}%)" if self.total else ""
        counts = " ".join(f"{k} {v:,}" for k, v in sorted(self.counts.items()))
        sys.stderr.write(f"\r{self.label}: {self.done:,}{of} · {rate:,.0f} {self.unit}/s · {counts}   ")
        sys.stderr.flush()

    def finish(self) -> dict[str, Any]:
        self._show(time.perf_counter())
        sys.stderr.write("\n")
        elapsed = time.perf_counter() - self.started
        return {self.unit + "s": self.done, **dict(self.counts), "seconds": round(elapsed, 2),
                f"{self.unit}s_per_second": round(self.done / max(elapsed, 1e-9))}


def submit_all(ledger: Ledger, bodies: Iterable[Any], *, total: int | None, label: str) -> dict[str, Any]:
    progress = Progress(total, label)
    batch: list[Any] = []
    for body in bodies:
        batch.append(body)
        if len(batch) == BATCH:
            progress.add(r.status for r in ledger.submit(batch, principal=CLI_PRINCIPAL, channel="cli"))
            batch = []
    if batch:
        progress.add(r.status for r in ledger.submit(batch, principal=CLI_PRINCIPAL, channel="cli"))
    return progress.finish()


def read_jsonl(path: Path) -> Iterator[bytes]:
    """Each non-blank line as it is: the pipeline parses it, or keeps it rejected if it is not JSON."""
    with path.open("rb") as lines:
        for line in lines:
            if line.strip():
                yield line.rstrip(b"\r\n")


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from api.app import create_app

    if not settings.tokens:
        print("yaosu serve: no tokens: set YAOSU_TOKENS_FILE (or YAOSU_DEV_TOKENS=1 to use the development "
              "tokens on this store)", file=sys.stderr)
        return 2
    if settings.development_tokens and not is_loopback(args.host):
        print(f"yaosu serve: the development tokens (dev-admin, ...) are known to everyone: they are served on "
              f"127.0.0.1 only, not on {args.host} (set YAOSU_TOKENS_FILE, see `yaosu tokens add`)", file=sys.stderr)
        return 2
    ledger = build_ledger(settings)
    read_models, runner = None, None
    if settings.persistence_env()["PERSISTENCE_MODULE"] != "eventsourcing.popo":
        read_models = ReadModels(settings)
        if args.projections:
            runner = Runner(ledger, settings)
            threading.Thread(target=runner.run_forever, name="projections", daemon=True).start()
    if settings.development_tokens:
        logging.getLogger("yaosu").warning(
            "using the development tokens (dev-admin, dev-supervisor, dev-<department>): set YAOSU_TOKENS_FILE in production")
    logging.getLogger("yaosu").info("serving %s on http://%s:%d", settings.store_for_logs, args.host, args.port)
    try:
        uvicorn.run(create_app(ledger, settings, read_models), host=args.host, port=args.port, log_level="info")
    finally:
        if runner is not None:
            runner.stop()
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from infra.demo import demo_messages

    ledger = build_ledger(settings)
    if ledger.head() and not args.force:
        print(f"the store already holds {ledger.head():,} events; demo not loaded again (--force resends it)")
        return 0
    messages = demo_messages(args.year, projects=args.projects, seed=args.seed)
    summary = submit_all(ledger, messages, total=len(messages), label=f"demo {args.year}")
    print(orjson.dumps(summary).decode())
    return 0


def cmd_load(args: argparse.Namespace, settings: Settings) -> int:
    if not args.file.exists():
        print(f"yaosu load: no such file: {args.file}", file=sys.stderr)
        return 2
    total = sum(1 for line in args.file.open("rb") if line.strip())
    summary = submit_all(build_ledger(settings), read_jsonl(args.file), total=total, label=args.file.name)
    print(orjson.dumps(summary).decode())
    return 0


def cmd_projections(args: argparse.Namespace, settings: Settings) -> int:
    ledger = build_ledger(settings)
    runner = Runner(ledger, settings, batch_size=args.batch_size)
    if args.action == "status":
        report = runner.status()
        width = max((len(r["projection"]) for r in report), default=10)
        print(f"{'projection':<{width}}  gen  version  state     position      head  lag events  lag seconds")
        for r in report:
            print(f"{r['projection']:<{width}}  {r['generation']:>3}  {r['version']:>7}  {r['state']:<8}  "
                  f"{r['position']:>8}  {r['head']:>8}  {r['lag_events']:>10}  {r['lag_seconds']:>11}")
        return 0
    if args.action == "rebuild":
        names = args.names or list(BY_NAME)
        unknown = [n for n in names if n not in BY_NAME]
        if unknown:
            print(f"yaosu projections rebuild: unknown projection(s) {', '.join(unknown)}; "
                  f"known: {', '.join(BY_NAME)}", file=sys.stderr)
            return 2
        progress = Progress(ledger.head(), f"rebuild {', '.join(names)}", unit="event")
        runner.rebuild(names, progress.advance)
        print(orjson.dumps(progress.finish()).decode())
        return 0
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    logging.getLogger("yaosu").info("following %s (Ctrl-C or SIGTERM to stop)", settings.store_for_logs)
    try:
        runner.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        runner.close()
    return 0


def _until_sigterm(worker: Any) -> None:
    """Run a long-lived worker; SIGTERM and Ctrl-C stop it between batches."""
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    try:
        worker.run()
    except KeyboardInterrupt:
        worker.stop()


def cmd_consume(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.portal import PortalConsumer

    _until_sigterm(PortalConsumer(build_ledger(settings), settings, group=args.group, batch_size=args.batch_size))
    return 0


def cmd_relay(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.relay import Relay

    _until_sigterm(Relay(build_ledger(settings), settings))
    return 0


def cmd_monitor(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.monitor import Monitor
    from infra.clock import city_today

    today = (lambda: args.today) if args.today else city_today
    monitor = Monitor(build_ledger(settings), settings, today=today)
    try:
        if args.once:
            if not monitor.my_turn():
                print("yaosu monitor: another monitor is running on this store", file=sys.stderr)
                return 1
            print(f"{monitor.run_once()} alert change(s) recorded and published")
        else:
            _until_sigterm(monitor)
    finally:
        monitor.close()
    return 0


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_tokens(args: argparse.Namespace, settings: Settings) -> int:
    path = args.file or (Path(os.environ["YAOSU_TOKENS_FILE"]) if os.environ.get("YAOSU_TOKENS_FILE") else None)
    if path is None:
        print("yaosu tokens add: give --file or set YAOSU_TOKENS_FILE", file=sys.stderr)
        return 2
    try:
        token = add_token(path, args.name, args.role, args.department)
    except ValueError as error:
        print(f"yaosu tokens add: {error}", file=sys.stderr)
        return 2
    print(token)
    print(f"added {args.role} token {args.name!r} to {path} (only its sha256 is kept: copy the token now, "
          "it is not shown again)", file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="yaosu", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP API on the configured store (YAOSU_STORE)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--no-projections", dest="projections", action="store_false",
                       help="do not run the read-model projections in this process")
    serve.set_defaults(run=cmd_serve)
    demo = sub.add_parser("demo", help="load a realistic demo year through the message pipeline")
    demo.add_argument("--year", type=int, default=date.today().year - 1)
    demo.add_argument("--projects", type=int, default=300)
    demo.add_argument("--seed", type=int, default=149)
    demo.add_argument("--force", action="store_true", help="load even if the store is not empty")
    demo.set_defaults(run=cmd_demo)
    load = sub.add_parser("load", help="bulk-load envelopes from a JSON-lines file")
    load.add_argument("file", type=Path)
    load.set_defaults(run=cmd_load)
    projections = sub.add_parser("projections", help="read models: status, rebuild, or run (follow the store)")
    projections.add_argument("action", choices=("status", "rebuild", "run"))
    projections.add_argument("names", nargs="*", help=f"for rebuild: some of {', '.join(BY_NAME)} (default all)")
    projections.add_argument("--batch-size", type=int, default=1000, help="events per transaction when following")
    projections.set_defaults(run=cmd_projections)
    consume = sub.add_parser("consume", help="consume portal messages from Kafka (yaosu.portal.v1)")
    consume.add_argument("source", choices=("portal",))
    consume.add_argument("--group", default="yaosu-portal")
    consume.add_argument("--batch-size", type=int, default=1000)
    consume.set_defaults(run=cmd_consume)
    relay = sub.add_parser("relay", help="publish every stored event to yaosu.events.v1 (and Kafka rejections)")
    relay.set_defaults(run=cmd_relay)
    monitor = sub.add_parser("monitor", help="raise, escalate and clear sedimentation alerts (yaosu.alerts.v1)")
    monitor.add_argument("--today", type=date.fromisoformat, help="evaluate as if today were this date")
    monitor.add_argument("--once", action="store_true", help="evaluate through today, publish, and exit")
    monitor.set_defaults(run=cmd_monitor)
    tokens = sub.add_parser("tokens", help="make a bearer token and add its hash to the tokens file")
    tokens.add_argument("action", choices=("add",))
    tokens.add_argument("--name", required=True, help="who holds it, as recorded with what it submits")
    tokens.add_argument("--role", required=True, choices=("portal", "supervisor", "admin"))
    tokens.add_argument("--department", help="for a portal: the department it speaks for, or district:<area>")
    tokens.add_argument("--file", type=Path, help="the tokens file (default: YAOSU_TOKENS_FILE)")
    tokens.set_defaults(run=cmd_tokens)
    return root


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format='%(asctime)s level=%(levelname)s logger=%(name)s msg="%(message)s"')
    args = parser().parse_args(argv)
    try:
        settings = Settings() if args.run is cmd_tokens else Settings.from_env()
    except ValueError as error:
        print(f"yaosu: {error}", file=sys.stderr)
        return 2
    return int(args.run(args, settings))


if __name__ == "__main__":
    raise SystemExit(main())
