"""The JSON answer: orjson, with decimals as exact JSON numbers (`infra.presenter.dumps`)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from infra.presenter import dumps


class JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return dumps(content)
