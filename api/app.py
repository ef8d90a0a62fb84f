"""The HTTP API of the contract (`docs/contract.md`): one FastAPI app over the ledger and its read models."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import anyio
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from api import audit, errors, message_schemas, messages, notifications, operations, read_models, schemas, supervision
from api.console import forms, pages, supervision_forms
from api.console.session import EndedSessions
from api.json import JSON
from api.reading import Answers
from infra.settings import Settings
from projections.read import ReadModels
from service.ledger import Ledger


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # anyio's default is 40 threads; with more than a few, they only take the interpreter's lock
    # from each other and the slowest answers wait longest.
    anyio.to_thread.current_default_thread_limiter().total_tokens = app.state.settings.worker_threads
    try:
        yield
    finally:
        app.state.sessions.close()
        app.state.outbox.close()


def create_app(ledger: Ledger, settings: Settings, reads: ReadModels | None = None) -> FastAPI:
    app = FastAPI(
        lifespan=lifespan,
        title="Yaosu",
        version="1.1",
        description="Ledger of investment projects and the factors guaranteed to them (要素跟着项目走).",
        default_response_class=JSON,
        # A redirect to the slashed path would build its Location from the request's Host header.
        redirect_slashes=False,
        docs_url=None,
        redoc_url=None,
    )
    app.state.ledger, app.state.settings, app.state.read_models = ledger, settings, reads
    app.state.sessions = EndedSessions(settings)
    app.state.outbox = notifications.Outbox(settings)
    app.state.answers = Answers(int(settings.answer_cache_mb * 2**20)) if settings.answer_cache_mb > 0 else None
    app.state.store_metrics = operations.store_metrics(ledger, settings, reads, app.state.outbox)
    errors.install(app)
    # The supervision forms before the console's pages: `/console/supervision/assign` is no case's page.
    for router in (messages.router, message_schemas.router, audit.router, read_models.router, supervision.router, operations.router,
                   notifications.router, supervision_forms.router, pages.router):
        app.include_router(router)
    operations.mount_docs(app)
    app.mount("/console/static", StaticFiles(directory=Path(pages.__file__).parent / "static"), name="console-static")

    @app.exception_handler(pages.NotSignedIn)
    async def _sign_in_first(request: Request, _: pages.NotSignedIn) -> Response:
        return pages.login_redirect(request)

    @app.exception_handler(forms.CrossSite)
    async def _cross_site(request: Request, refused: forms.CrossSite) -> Response:
        return pages.refused(request, refused.why)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            envelope = schemas.ENVELOPE.json_schema(ref_template="#/components/schemas/{model}")
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            components.update(envelope.pop("$defs", {}))
            components["Envelope"] = envelope
            components["MessagesBody"] = schemas.MESSAGES_BODY
            components["Problem"] = schemas.Problem.model_json_schema()
            # Invalid parameters are answered 400 with a problem, never FastAPI's 422.
            for operation in (op for path in spec["paths"].values() for op in path.values()):
                operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                components.pop(name, None)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
