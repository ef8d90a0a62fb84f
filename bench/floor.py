"""The floor of `history_req_per_s`: the history's query through a bare Starlette + psycopg endpoint.

    YAOSU_STORE=postgresql://...?schema=... python bench/floor.py PORT

Same server (uvicorn, one process), same connections (a pool of 4), same rows (a project's events
and its alert records, in store order), same JSON library; no authentication, no decoding into
domain events, no presentation. What Yaosu adds on top is what `history_req_per_s` pays for.
"""

from __future__ import annotations

import os
import sys

import orjson
import uvicorn
from psycopg_pool import ConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from domain.alerts import alerts_id
from domain.project import project_id


def app(store: str) -> Starlette:
    base, _, query = store.partition("?")
    schema = dict(part.split("=", 1) for part in query.split("&") if part).get("schema", "public")
    pool = ConnectionPool(base, min_size=4, max_size=4, open=True)
    statement = (f"SELECT notification_id, originator_version, topic, state FROM {schema}.yaosu_events "
                 "WHERE originator_id = ANY(%s) ORDER BY notification_id")

    def history(request: Request) -> Response:
        code = request.path_params["code"]
        ids = [project_id(code), alerts_id(code)]
        with pool.connection() as conn:
            rows = conn.execute(statement, [ids]).fetchall()
        if not rows:
            return Response(b'{"code":"not_found"}', status_code=404, media_type="application/json")
        events = [{"position": p, "version": v, "type": t, "data": orjson.loads(s)} for p, v, t, s in rows]
        return Response(orjson.dumps({"code": code, "events": events}), media_type="application/json")

    return Starlette(routes=[Route("/v1/projects/{code}/history", history)])


if __name__ == "__main__":
    uvicorn.run(app(os.environ["YAOSU_STORE"]), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
