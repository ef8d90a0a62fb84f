"""How long `yaosu serve` waits for a request: uvicorn bounds only the wait between requests
(keep-alive), not the request itself, so a client dripping its headers or body a byte at a time held
a connection open for ever. Each request here must arrive whole, headers and body, within
`read_timeout_seconds` of its first byte (or of the connection, for the first request); a slower one
is cut off by closing the connection."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("yaosu.serve")


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on reading each request."""

    read_timeout_seconds = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a connection that sends nothing is a request that never arrives

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._read_deadline is None:
            self._read_deadline = self.loop.call_later(self.read_timeout_seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _too_slow(self) -> None:
        self._read_deadline = None
        if not self.transport.is_closing():
            log.warning("closed a connection from %s: its request did not arrive within %ss",
                        self.client[0] if self.client else "?", self.read_timeout_seconds)
            self.transport.close()


def bounded(read_timeout_seconds: float) -> type[BoundedHttpToolsProtocol]:
    """The protocol class for uvicorn (`http=`), with this deadline."""
    return type("BoundedHttpToolsProtocol", (BoundedHttpToolsProtocol,), {"read_timeout_seconds": read_timeout_seconds})
