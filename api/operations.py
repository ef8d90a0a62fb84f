"""Operations: liveness, readiness, metrics, and the API's own documentation (served locally)."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from api import notifications, schemas
from api.auth import Store
from api.errors import problem, problems
from api.json import JSON
from infra import kafka
from infra.metrics import PROCESS, StoreCollector
from infra.settings import Settings
from projections import outbox, parked
from projections.db import NotBuilt
from projections.read import ReadModels
from service.ledger import Ledger

log = logging.getLogger("yaosu.api")
router = APIRouter(tags=["operations"])
#: Swagger UI's files, from a package (the city's intranet has no internet, so no CDN).
SWAGGER_FILES = Path(fastapi_offline.__file__).parent / "static"


@router.get("/healthz", response_model=schemas.Health)
async def healthz() -> Response:
    """Answered on the event loop: however busy the worker threads, a live process says so at once."""
    return JSON({"status": "ok"})


@router.get("/readyz", response_model=schemas.Ready, responses=problems(503))
async def readyz(request: Request, ledger: Store) -> Response:
    """Ready: the store answers and no read model is halted at an event it cannot apply. Asked on
    threads of its own, so busy routes cannot hold it up."""
    reads: ReadModels | None = request.app.state.read_models

    def check() -> tuple[int, list[Any]]:
        return ledger.head(), reads.halts() if reads is not None else []

    try:
        head, halts = await asyncio.wait_for(asyncio.shield(readiness_check(request, check)), CHECK_SECONDS)
    except Exception as error:  # noqa: BLE001 - any store failure means not ready
        log.warning("readiness check failed: %r", error)
        return problem(503, "store_unavailable", f"the event store does not answer ({type(error).__name__})")
    runner = getattr(request.app.state, "runner", None)
    if runner is not None and runner.trouble:
        return problem(503, "projections_failing", f"this server's projections runner: {runner.trouble}", head=head)
    if halts:
        named = "; ".join(f"{h.name} at position {h.position} (cannot apply the event at {h.event_position}, "
                          f"{h.event_type}: {h.error})" for h in halts)
        return problem(503, "read_model_halted", f"read model(s) halted: {named}", head=head,
                       halted=[h.as_json() for h in halts])
    return JSON({"status": "ready", "head": head})


#: A store that has not answered a readiness check in this long is not ready.
CHECK_SECONDS = 5


def readiness_check(request: Request, check: Callable[[], Any]) -> asyncio.Future[Any]:
    """The readiness check under way, or a new one, on a thread of its own: however often a load
    balancer asks while the store hangs, one thread waits for it, not one per probe."""
    state = request.app.state
    running: asyncio.Future[Any] | None = getattr(state, "readiness", None)
    if running is None or running.done():
        executor = getattr(state, "readiness_executor", None)
        if executor is None:
            executor = state.readiness_executor = ThreadPoolExecutor(1, thread_name_prefix="readiness")
        running = state.readiness = asyncio.wrap_future(executor.submit(check))
    return running


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "Prometheus text exposition"}})
def metrics(request: Request) -> Response:
    """Prometheus text: this process's counts, and the store's head, read models' lag, positions,
    consumer lag and parked messages."""
    exposition = generate_latest(PROCESS) + generate_latest(request.app.state.store_metrics)
    return Response(exposition, media_type=CONTENT_TYPE_LATEST)


def store_metrics(ledger: Ledger, settings: Settings, reads: ReadModels | None,
                  notified: notifications.Outbox | None = None) -> CollectorRegistry:
    """The gauges read from the store when `/metrics` is asked."""
    def read() -> list[tuple[str, str, list[str], list[tuple[list[str], float]]]]:
        head = ledger.head()
        recorded = ledger.tracked_positions()
        gauges = [("yaosu_store_head", "Position of the last event in the store", [], [([], head)])]
        if reads is not None:
            report = reads.status(ledger)
            labels = ["projection", "generation", "state"]
            gauges.append(("yaosu_projection_halted",
                           "1 while a read model is halted at an event it cannot apply (see /readyz), else 0",
                           [*labels, "event_position"],
                           [([r["projection"], str(r["generation"]), r["state"],
                              str(r["halted"]["event_position"]) if r["halted"] else ""], 1 if r["halted"] else 0)
                            for r in report]))
            for name, field, documentation in (
                    ("yaosu_projection_position", "position", "Store position each read model has applied"),
                    ("yaosu_projection_lag_events", "lag_events", "Events each read model is behind the store"),
                    ("yaosu_projection_lag_seconds", "lag_seconds",
                     "Age of the oldest event a read model has not applied")):
                gauges.append((name, documentation, labels,
                               [([r["projection"], str(r["generation"]), r["state"]], r[field]) for r in report]))
            try:
                with reads.snapshot(parked.Parked) as view:
                    waiting = parked.count(view.db, view.tables(parked.Parked))
                gauges.append(("yaosu_parked_messages", "Kafka messages waiting for a prerequisite", [],
                               [([], waiting)]))
            except NotBuilt:
                pass
        gauges.append(("yaosu_tracked_position", "Positions recorded with the events (Kafka offsets, the relay)",
                       ["name"], [([name], position) for name, position in sorted(recorded.items())]))
        gauges.append(("yaosu_relay_lag_events", "Events stored but not yet relayed to Kafka", ["name"],
                       [([name], max(head - position, 0)) for name, position in recorded.items()
                        if name.startswith("relay:")]))
        counted = notified.read(outbox.counts) if notified is not None else None
        if counted is not None:  # `yaosu notify` has run on this store
            gauges.append(("yaosu_notify_deliveries", "Deliveries of yaosu notify in the store, by target and state "
                           "(pending is the backlog)", ["target", "state"],
                           [([target, state], n) for (target, state), n in sorted(counted.items())]))
        gauges.append(("yaosu_consumer_lag_messages", "Portal messages on Kafka past the offset recorded in the store",
                       ["name"], [([name], behind) for name, behind in kafka.portal_lag(settings, recorded).items()]))
        return gauges

    registry = CollectorRegistry()
    registry.register(StoreCollector(read))
    return registry


def mount_docs(app: FastAPI) -> None:
    app.mount("/docs-files", StaticFiles(directory=SWAGGER_FILES), name="docs-files")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="Yaosu API",
                                   swagger_js_url="/docs-files/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-files/swagger-ui.css",
                                   swagger_favicon_url="/docs-files/favicon.png")
