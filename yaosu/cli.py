"""The `yaosu` command: serve the API, load messages, run the read models, the Kafka consumers and the monitor."""

from __future__ import annotations

import argparse
import gc
import getpass
import logging
import os
import signal
import socket
import sys
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from infra.clock import city_today
from infra.metrics import serve_process_metrics
from infra.settings import Settings, is_loopback_host
from infra.tokens import add_token
from projections.catalog import BY_NAME
from yaosu.demo import demo_messages, recording_times
from yaosu.following import follow_beside_server
from yaosu.loading import Progress, read_jsonl, submit_all
from yaosu.rebuilding import rebuild_in_processes, split
from yaosu.wiring import Wiring


def cmd_serve(args: argparse.Namespace, wiring: Wiring) -> int:
    import uvicorn

    from yaosu.protocol import bounded

    settings = wiring.settings
    if not settings.tokens:
        print("yaosu serve: no tokens: set YAOSU_TOKENS_FILE (or YAOSU_DEV_TOKENS=1 to use the development "
              "tokens on this store)", file=sys.stderr)
        return 2
    if settings.development_tokens and not is_loopback_host(args.host):
        print(f"yaosu serve: the development tokens (dev-admin, ...) are known to everyone: they are served on "
              f"127.0.0.1 only, not on {args.host} (set YAOSU_TOKENS_FILE, see `yaosu tokens add`)", file=sys.stderr)
        return 2
    if not is_loopback_host(args.host) and all(is_loopback_host(name) for name in settings.allowed_hosts):
        # Only loopback names would be served: every client reaching this address by name would get a 400.
        print(f"yaosu serve: listening on {args.host} needs YAOSU_ALLOWED_HOSTS, the host names clients use to "
              "reach this server (e.g. yaosu.example.gov.cn), comma-separated; only loopback names are served "
              "without it", file=sys.stderr)
        return 2
    taken = port_taken(args.host, args.port)
    if taken:
        print(f"yaosu serve: cannot listen on {args.host}:{args.port} ({taken}): choose another port with --port "
              f"(make run PORT={args.port + 1})", file=sys.stderr)
        return 2
    following = wiring.following() if args.projections and wiring.keeps_read_models else None
    app = wiring.app(following)
    if following is not None:
        following.start()
    if settings.development_tokens:
        logging.getLogger("yaosu").warning(
            "using the development tokens (dev-admin, dev-supervisor, dev-<department>): set YAOSU_TOKENS_FILE in production")
    logging.getLogger("yaosu").info("serving %s on http://%s:%d", settings.store_for_logs, args.host, args.port)
    settle_heap()
    # uvicorn stops on SIGTERM and then raises it again to the handler it found: a handler that returns
    # lets the clean-up below run (the default one would end the process before it).
    signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=args.access_log,
                    http=bounded(settings.read_timeout_seconds))
    finally:
        if following is not None:
            following.stop()  # between two steps: its connections closed before this process's
        wiring.close()  # every connection closed: SQLite folds its write-ahead log back and removes it
    return 0


def port_taken(host: str, port: int) -> str | None:
    """Why `host:port` cannot be listened on (in use, not this machine's), or None: asked before saying
    "serving", which uvicorn prints before it finds out."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no obstacle
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.strerror or str(error)
    return None


def cmd_demo(args: argparse.Namespace, wiring: Wiring) -> int:
    ledger = wiring.ledger
    empty = not ledger.head()
    if not empty and not args.force:
        print(f"the store already holds {ledger.head():,} events; demo not loaded again (--force resends it)")
        return 0
    today = city_today()
    # This year's demo stops at today: nothing in it happens in the future.
    messages = demo_messages(args.year, projects=args.projects, seed=args.seed,
                             until=today if args.year >= today.year else None,
                             exemption_last_year=wiring.settings.policy.exemption_last_year)
    # An allocation is compared with the advice the read side gives when it is decided, as in a running
    # service: the read models are brought up to the messages before it.
    summary = submit_all(ledger, messages, total=len(messages), label=f"demo {args.year}",
                         catch_up_before=lambda body: wiring.keeps_read_models and body["type"] == "allocation.adopted",
                         catch_up=lambda: wiring.runner().run_until_caught_up(),
                         # Recorded when the portals would have sent them; into a store that holds events
                         # already (--force), now, after them: the log's order stays the order of recording.
                         recorded_at=recording_times(messages, args.seed, now=datetime.now(timezone.utc)) if empty
                         else None)
    print(orjson.dumps(summary).decode())
    return 0


def cmd_load(args: argparse.Namespace, wiring: Wiring) -> int:
    if not args.file.exists():
        print(f"yaosu load: no such file: {args.file}", file=sys.stderr)
        return 2
    total = sum(1 for line in args.file.open("rb") if line.strip())
    summary = submit_all(wiring.ledger, read_jsonl(args.file), total=total, label=args.file.name)
    print(orjson.dumps(summary).decode())
    return 0


def cmd_projections(args: argparse.Namespace, wiring: Wiring) -> int:
    ledger, runner = wiring.ledger, wiring.runner(args.batch_size)
    if args.action == "status":
        report = runner.status()
        width = max((len(r["projection"]) for r in report), default=10)
        print(f"{'projection':<{width}}  gen  version  state     position      head  lag events  lag seconds")
        for r in report:
            print(f"{r['projection']:<{width}}  {r['generation']:>3}  {r['version']:>7}  {r['state']:<8}  "
                  f"{r['position']:>8}  {r['head']:>8}  {r['lag_events']:>10}  {r['lag_seconds']:>11}")
        for r in report:
            if r["halted"]:
                h = r["halted"]
                print(f"HALTED {h['read_model']} (generation {h['generation']}) since {h['since']}: cannot apply the "
                      f"event at position {h['event_position']} ({h['event_type']}): {h['error']} "
                      f"[{h['retries']} retries]; to go on without it: yaosu projections skip {h['read_model']} "
                      f"--position {h['event_position']} --reason '...'")
        return 1 if any(r["halted"] for r in report) else 0
    if args.action == "skip":
        return skip_event(args, wiring)
    if args.action == "rebuild":
        names = args.names or list(BY_NAME)
        unknown = [n for n in names if n not in BY_NAME]
        if unknown:
            print(f"yaosu projections rebuild: unknown projection(s) {', '.join(unknown)}; "
                  f"known: {', '.join(BY_NAME)}", file=sys.stderr)
            return 2
        workers = args.workers or os.cpu_count() or 1 if wiring.settings.location.kind == "postgres" else 1
        if workers > 1 and len(names) > 1:
            summary, code = rebuild_in_processes(split(names, workers), ledger.head())
            print(orjson.dumps(summary).decode())
            return code
        progress = Progress(ledger.head(), f"rebuild {', '.join(names)}", unit="event", lines=args.progress_lines)
        runner.rebuild(names, progress.advance)
        print(orjson.dumps(progress.finish()).decode())
        halted = [live.halt for live in runner.generations.values() if live.halt is not None]
        for h in halted:
            print(f"yaosu projections rebuild: {h.name} halted at the event at position {h.event_position} "
                  f"({h.event_type}): {h.error}; the generation serving before keeps serving (to go on without that "
                  f"event: yaosu projections skip {h.name} --position {h.event_position} --reason '...', then "
                  "rebuild again)", file=sys.stderr)
        return 1 if halted else 0
    if args.wake_fd is not None:
        # Beside `yaosu serve`, which says when to stop by closing its pipe: a signal sent to the whole
        # group (Ctrl-C, systemd stopping the service) is the server's to act on, not this process's.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        follow_beside_server(runner, args.wake_fd, args.tell_fd)
        stopping = "it stops when the server beside it does"
    else:
        signal.signal(signal.SIGTERM, lambda *_: runner.stop())
        stopping = "Ctrl-C or SIGTERM to stop"
    logging.getLogger("yaosu").info("following %s (%s)", wiring.settings.store_for_logs, stopping)
    settle_heap()
    try:
        runner.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        runner.close()
    return 0


def skip_event(args: argparse.Namespace, wiring: Wiring) -> int:
    """Record an operator's decision that a halted read model goes on without the event it cannot apply."""
    from eventsourcing.persistence import IntegrityError

    from projections.catalog import Catalog
    from projections.db import Db

    if len(args.names) != 1 or args.position is None or not (args.reason or "").strip():
        print("yaosu projections skip: name one read model, --position N (the event it is halted at) and "
              "--reason '...' (kept in the store with your name)", file=sys.stderr)
        return 2
    name = args.names[0]
    db = Db(wiring.settings)
    try:
        halts = [h for h in Catalog(db).halts() if h.name == name]
    finally:
        db.close()
    halt = next((h for h in halts if h.event_position == args.position), None)
    if halt is None:
        where = ", ".join(f"halted at the event at position {h.event_position}" for h in halts) or "not halted"
        print(f"yaosu projections skip: {name} is not halted at position {args.position} (it is {where}; "
              "`yaosu projections status` shows every read model)", file=sys.stderr)
        return 2
    operator = args.operator or getpass.getuser()
    try:
        recorded = wiring.ledger.record_skip(name, halt.event_position, event_type=halt.event_type, error=halt.error,
                                             reason=args.reason.strip(), operator=operator)
    except (ValueError, IntegrityError) as error:  # decided already (here, or by someone at the same moment)
        print(f"yaosu projections skip: {error if isinstance(error, ValueError) else 'decided already'}",
              file=sys.stderr)
        return 2
    print(f"recorded at position {recorded}: {name} goes on without the event at position {halt.event_position} "
          f"({halt.event_type}), as {operator} decided; the running projections pick it up within seconds")
    return 0


def cmd_audit(args: argparse.Namespace, wiring: Wiring) -> int:
    from projections import chain
    from projections.catalog import Catalog
    from projections.db import Db, NotBuilt

    ledger = wiring.ledger
    if not wiring.keeps_read_models:
        print("yaosu audit: the in-memory store keeps no chain", file=sys.stderr)
        return 2
    db = Db(wiring.settings)
    try:
        tables: dict[str, str] | None = Catalog(db).active(chain.HashChain)
    except NotBuilt:
        tables = None
    if args.action == "checkpoint":
        if tables is None:
            print("yaosu audit checkpoint: the chain read model is not built yet (yaosu projections run)",
                  file=sys.stderr)
            return 2
        for day in chain.record_checkpoints(ledger, db, tables, args.today or city_today()):
            print(f"checkpoint of {day} recorded")
        return 0
    if tables is None:
        print("the chain read model is not built: comparing with the checkpoints only", file=sys.stderr)
    progress = Progress(ledger.head() - args.start, "audit verify", unit="event")
    try:
        found = chain.verify(ledger, db, tables, args.start, progress.advance)
    except ValueError as error:
        print(f"yaosu audit verify: {error}", file=sys.stderr)
        return 2
    progress.finish()
    chain.remember(db, found)
    compared = (["the links kept"] if found.links_compared else []) + [f"{found.checkpoints} checkpoint(s)"]
    if found.ok:
        print(f"verified positions {found.start + 1}-{found.head_position}: head {found.head_hash} "
              f"({found.checked:,} events, {found.events_per_second:,.0f} events/s; compared with "
              f"{' and '.join(compared)})")
        return 0
    print(f"position {found.first_bad} differs: {found.why}")
    if found.contradicts is not None:
        c = found.contradicts
        print(f"it contradicts the checkpoint of {c.day} (recorded at position {c.recorded_at}): "
              f"head {c.head} at position {c.position}")
    return 1


def settle_heap() -> None:
    """Keep what start-up built (modules, the app, its schemas) out of the garbage collector's full
    passes: a long-lived process then pauses for what it made since, not for everything. In `yaosu
    serve` under the e2e bench a full pass took 70-90 ms (and was its p99); 6-13 ms after."""
    gc.collect()
    gc.freeze()


def _until_sigterm(worker: Any) -> None:
    """Run a long-lived worker; SIGTERM and Ctrl-C stop it between batches."""
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    settle_heap()
    try:
        worker.run()
    except KeyboardInterrupt:
        worker.stop()


def cmd_consume(args: argparse.Namespace, wiring: Wiring) -> int:
    _until_sigterm(wiring.portal_consumer(args.group, args.batch_size))
    return 0


def cmd_relay(args: argparse.Namespace, wiring: Wiring) -> int:
    _until_sigterm(wiring.relay())
    return 0


def cmd_monitor(args: argparse.Namespace, wiring: Wiring) -> int:
    monitor = wiring.monitor(args.today)
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


def cmd_notify(args: argparse.Namespace, wiring: Wiring) -> int:
    from consumers.targets import TargetsError

    if wiring.settings.notify_targets is None:
        print("yaosu notify: set YAOSU_NOTIFY_TARGETS to the targets file (JSON: where to deliver what)",
              file=sys.stderr)
        return 2
    try:
        notifier = wiring.notifier(args.from_beginning)
    except TargetsError as error:
        print(f"yaosu notify: the targets file does not pass: {error}", file=sys.stderr)
        return 2
    if args.check:
        notifier.close()
        print(f"{len(notifier.targets.targets)} target(s): {', '.join(t.name for t in notifier.targets.targets)}")
        return 0
    _until_sigterm(notifier)  # it closes what it opened when it stops
    return 0


def cmd_tokens(args: argparse.Namespace, _: Wiring) -> int:
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


def cmd_asyncapi(_: argparse.Namespace, __: Wiring) -> int:
    from api.asyncapi import published  # the HTTP layer's description, not needed by the other commands

    sys.stdout.buffer.write(published())
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="yaosu", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP API on the configured store (YAOSU_STORE)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--access-log", action="store_true",
                       help="log every request (off: /metrics counts them by route and status)")
    serve.add_argument("--no-projections", dest="projections", action="store_false",
                       help="do not run the read-model projections in this process")
    serve.set_defaults(run=cmd_serve)
    demo = sub.add_parser("demo", help="load a realistic demo year through the message pipeline")
    demo.add_argument("--year", type=int, default=city_today().year, help="the year (default this year, up to today)")
    demo.add_argument("--projects", type=int, default=300)
    demo.add_argument("--seed", type=int, default=149)
    demo.add_argument("--force", action="store_true", help="load even if the store is not empty")
    demo.set_defaults(run=cmd_demo)
    load = sub.add_parser("load", help="bulk-load envelopes from a JSON-lines file")
    load.add_argument("file", type=Path)
    load.set_defaults(run=cmd_load)
    projections = sub.add_parser("projections", help="read models: status, rebuild, or run (follow the store)")
    projections.add_argument("action", choices=("status", "rebuild", "run", "skip"))
    projections.add_argument("names", nargs="*", help=f"for rebuild: some of {', '.join(BY_NAME)} (default all); "
                                                       "for skip: the halted read model")
    projections.add_argument("--position", type=int, help="for skip: the position of the event it is halted at")
    projections.add_argument("--reason", help="for skip: why it may go on without that event (kept in the store)")
    projections.add_argument("--operator", help="for skip: who decides (default: the login name)")
    projections.add_argument("--batch-size", type=int, default=1000, help="events per transaction when following")
    projections.add_argument("--workers", type=int, help="for rebuild: processes that rebuild the read models side "
                                                         "by side (default: one per core; on SQLite, one)")
    projections.add_argument("--progress-lines", action="store_true", help=argparse.SUPPRESS)
    # Beside `yaosu serve` (yaosu.following): the pipes it is woken by and tells its commits to.
    projections.add_argument("--wake-fd", type=int, help=argparse.SUPPRESS)
    projections.add_argument("--tell-fd", type=int, help=argparse.SUPPRESS)
    projections.set_defaults(run=cmd_projections)
    consume = sub.add_parser("consume", help="consume portal messages from Kafka (yaosu.portal.v1)")
    consume.add_argument("source", choices=("portal",))
    consume.add_argument("--group", default="yaosu-portal")
    consume.add_argument("--batch-size", type=int, default=5000, help="messages per poll and transaction")
    consume.set_defaults(run=cmd_consume)
    relay = sub.add_parser("relay", help="publish every domain event to yaosu.events.v1 (and Kafka rejections)")
    relay.set_defaults(run=cmd_relay)
    monitor = sub.add_parser("monitor", help="raise, escalate and clear sedimentation alerts (yaosu.alerts.v1)")
    monitor.add_argument("--today", type=date.fromisoformat, help="evaluate as if today were this date")
    monitor.add_argument("--once", action="store_true", help="evaluate through today, publish, and exit")
    monitor.set_defaults(run=cmd_monitor)
    notify = sub.add_parser("notify", help="deliver alert changes and supervision events to WeCom, DingTalk and "
                                           "webhooks (YAOSU_NOTIFY_TARGETS)")
    notify.add_argument("--from-beginning", action="store_true",
                        help="on the first start, tell everything on the topics (default: only what comes after)")
    notify.add_argument("--check", action="store_true", help="check the targets file and exit")
    notify.set_defaults(run=cmd_notify)
    for command in (projections, consume, relay, monitor, notify):
        command.add_argument("--metrics-port", type=int, metavar="PORT",
                             help="serve this process's metrics on http://127.0.0.1:PORT/metrics")
    audit = sub.add_parser("audit", help="the audit chain: verify the store against it, or record checkpoints")
    audit.add_argument("action", choices=("verify", "checkpoint"))
    audit.add_argument("--from", dest="start", type=int, default=0, metavar="POSITION",
                       help="verify: start after this position (its link as the chain kept it)")
    audit.add_argument("--today", type=date.fromisoformat,
                       help="checkpoint: record the days before this one (default: today, city time)")
    audit.set_defaults(run=cmd_audit)
    tokens = sub.add_parser("tokens", help="make a bearer token and add its hash to the tokens file")
    tokens.add_argument("action", choices=("add",))
    tokens.add_argument("--name", required=True, help="who holds it, as recorded with what it submits")
    tokens.add_argument("--role", required=True, choices=("portal", "supervisor", "admin"))
    tokens.add_argument("--department", help="for a portal: the department it speaks for, or district:<area>")
    tokens.add_argument("--file", type=Path, help="the tokens file (default: YAOSU_TOKENS_FILE)")
    tokens.set_defaults(run=cmd_tokens)
    asyncapi = sub.add_parser("asyncapi", help="print the AsyncAPI 3.0 description of the Kafka topics "
                                               "(docs/asyncapi.json is its copy)")
    asyncapi.set_defaults(run=cmd_asyncapi)
    return root


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format='%(asctime)s level=%(levelname)s logger=%(name)s msg="%(message)s"')
    args = parser().parse_args(argv)
    try:
        # Making a token must work whatever state the tokens file is in.
        settings = Settings() if args.run in (cmd_tokens, cmd_asyncapi) else Settings.from_env()
    except ValueError as error:
        print(f"yaosu: {error}", file=sys.stderr)
        return 2
    if getattr(args, "metrics_port", None):
        serve_process_metrics(args.metrics_port)
    return int(args.run(args, Wiring(settings)))


if __name__ == "__main__":
    raise SystemExit(main())
