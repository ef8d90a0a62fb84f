"""Operations: liveness, readiness, metrics, and the API's own documentation (served locally)."""

from __future__ import annotations

import logging
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from api import schemas
from api.auth import Config, Store
from api.errors import problem, problems
from api.json import JSON
from infra import kafka
from projections.catalog import status

log = logging.getLogger("yaosu.api")
router = APIRouter(tags=["operations"])
#: Swagger UI's files, from a package (the city's intranet has no internet, so no CDN).
SWAGGER_FILES = Path(fastapi_offline.__file__).parent / "static"


@router.get("/healthz", response_model=schemas.Health)
def healthz() -> Response:
    return JSON({"status": "ok"})


@router.get("/readyz", response_model=schemas.Ready, responses=problems(503))
def readyz(ledger: Store) -> Response:
    try:
        head = ledger.head()
    except Exception as error:  # noqa: BLE001 - any store failure means not ready
        log.warning("readiness check failed: %s", error)
        return problem(503, "store_unavailable", f"the event store does not answer ({type(error).__name__})")
    return JSON({"status": "ready", "head": head})


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "Prometheus text exposition"}})
def metrics(request: Request, ledger: Store, settings: Config) -> Response:
    """Prometheus text: store head, each read model's lag, the positions recorded with the events."""
    head = ledger.head()
    lines = ["# TYPE yaosu_store_head gauge", f"yaosu_store_head {head}"]
    read_models = request.app.state.read_models
    if read_models is not None:
        lines += ["# TYPE yaosu_projection_lag_events gauge", "# TYPE yaosu_projection_lag_seconds gauge",
                  "# TYPE yaosu_projection_position gauge"]
        for row in status(ledger, read_models.catalog):
            labels = f'projection="{row["projection"]}",generation="{row["generation"]}",state="{row["state"]}"'
            lines += [f"yaosu_projection_lag_events{{{labels}}} {row['lag_events']}",
                      f"yaosu_projection_lag_seconds{{{labels}}} {row['lag_seconds']}",
                      f"yaosu_projection_position{{{labels}}} {row['position']}"]
    recorded = ledger.tracked_positions()
    lines += ["# TYPE yaosu_tracked_position gauge", "# TYPE yaosu_tracked_lag gauge"]
    for name, position in sorted(recorded.items()):
        lines.append(f'yaosu_tracked_position{{name="{name}"}} {position}')
        if name.startswith("relay:"):
            lines.append(f'yaosu_tracked_lag{{name="{name}"}} {max(head - position, 0)}')
    for name, behind in kafka.portal_lag(settings, recorded).items():
        lines.append(f'yaosu_tracked_lag{{name="{name}"}} {behind}')
    return Response("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")


def mount_docs(app: FastAPI) -> None:
    app.mount("/docs-files", StaticFiles(directory=SWAGGER_FILES), name="docs-files")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="Yaosu API",
                                   swagger_js_url="/docs-files/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-files/swagger-ui.css",
                                   swagger_favicon_url="/docs-files/favicon.png")
