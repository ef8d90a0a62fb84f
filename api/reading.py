"""Reading the read models: each route names those it reads; every answer says which store position
it reflects (`Yaosu-Position`), and a client may ask for at least the position of its own write.

Answers are kept by what they depend on (`Answers`): the route and its parameters, the generations
and position of the snapshot, and the city's date. Asked again before anything is written, an
answer costs a look-up; any write moves the position, so nothing stale is ever served.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from contextlib import ExitStack, contextmanager
from typing import Annotated, Any, AsyncIterator, Callable, Hashable, Iterator, Optional

from fastapi import Depends, Query, Request
from fastapi.responses import Response

from api.auth import Store
from api.errors import POSITION_STATE, ProblemError
from api.params import LAST_POSITION
from infra.clock import city_today
from projections.db import Db
from projections.model import Projection
from projections.read import ReadModels, Snapshot, position_of

#: The longest a reader may ask to wait for its write (contract v1.1).
MAX_WAIT_MS = 5000

MinPosition = Annotated[Optional[int], Query(
    ge=0, le=LAST_POSITION, description="answer only once the read models reflect this store position "
                                        "(the `position` of your message's receipt)")]
WaitMs = Annotated[int, Query(ge=0, le=MAX_WAIT_MS, description="how long to wait for `min_position`, "
                                                               "in milliseconds, before 503 `read_model_behind`")]


@contextmanager
def read(request: Request, *projections: type[Projection], min_position: int = 0, wait_ms: int = 0,
         head: Callable[[], int] | None = None) -> Iterator[Snapshot]:
    """One snapshot of these read models, its position left for the answer's `Yaosu-Position`."""
    reads: ReadModels | None = request.app.state.read_models
    if reads is None:
        raise ProblemError(503, "read_model_not_ready", "this store keeps no read models")
    with reads.snapshot(*projections, min_position=min_position, wait_seconds=wait_ms / 1000, head=head) as view:
        setattr(request.state, POSITION_STATE, view.position)
        yield view


class Reading:
    """A route's snapshot, opened when first read: after the request's parameters were found valid,
    so a bad parameter is a 400 even with a `min_position` not reached yet."""

    def __init__(self, request: Request, projections: tuple[type[Projection], ...], min_position: int, wait_ms: int,
                 head: Callable[[], int]) -> None:
        self.projections, self.min_position = projections, min_position
        self._open = lambda: read(request, *projections, min_position=min_position, wait_ms=wait_ms, head=head)
        self._stack = ExitStack()
        self._snapshot: Snapshot | None = None

    def _opened(self) -> Snapshot:
        if self._snapshot is None:
            self._snapshot = self._stack.enter_context(self._open())
        return self._snapshot

    @property
    def db(self) -> Db:
        return self._opened().db

    def tables(self, projection: type[Projection]) -> dict[str, str]:
        return self._opened().tables(projection)

    def close(self) -> None:
        self._stack.close()

    def answer(self, request: Request, compute: Callable[[], Response]) -> Response:
        """The route's answer, computed once per snapshot and parameters (see `Answers`).

        An answer kept for the generations serving now is given again after one statement that
        reads them: no snapshot (its transaction costs two more round trips, and a pooled
        connection held for all three is what 32 clients queue for)."""
        answers: Answers | None = request.app.state.answers
        if answers is None:
            return compute()
        asked = (request.url.path, tuple(sorted((k, v) for k, v in request.query_params.multi_items()
                                                if k not in WAITING)), city_today())
        if self._snapshot is None:
            reads: ReadModels | None = request.app.state.read_models
            now = reads.serving_now(*self.projections) if reads is not None else None
            if now is not None and position_of(now) >= self.min_position:
                found = answers.get((*asked, now))
                if found is not None:
                    setattr(request.state, POSITION_STATE, position_of(now))
                    return found
        key = (*asked, self._opened().generations)
        found = answers.get(key)
        if found is not None:
            return found
        made = compute()
        if made.status_code == 200:
            answers.put(key, made)
        return made


#: The parameters that say how long to wait, not what to answer.
WAITING = ("min_position", "wait_ms")


class Answers:
    """Answers of the read-model routes, least recently used first out, up to `capacity` bytes of bodies."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.size = capacity, 0
        self._kept: OrderedDict[Hashable, tuple[int, bytes, list[tuple[bytes, bytes]]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Response | None:
        with self._lock:
            found = self._kept.get(key)
            if found is None:
                return None
            self._kept.move_to_end(key)
        status, body, headers = found
        answer = Response(body, status_code=status)
        answer.raw_headers = list(headers)
        return answer

    def put(self, key: Hashable, answer: Response) -> None:
        body = bytes(answer.body)
        if len(body) > self.capacity // 4:  # one huge download must not push out everything else
            return
        with self._lock:
            if key in self._kept:
                return
            self._kept[key] = (answer.status_code, body, list(answer.raw_headers))
            self.size += len(body)
            while self.size > self.capacity:
                _, (_, dropped, _) = self._kept.popitem(last=False)
                self.size -= len(dropped)


def answered(route: Callable[..., Response]) -> Callable[..., Response]:
    """A read-model route whose answers are kept (`Answers`): its snapshot is its `view` parameter,
    and it takes the request as `request`."""

    @functools.wraps(route)
    def answer(*args: Any, **kwargs: Any) -> Response:
        view: Reading = kwargs["view"]
        try:
            return view.answer(kwargs["request"], lambda: route(*args, **kwargs))
        finally:
            view.close()  # here, on the route's thread: the connection is back before the answer is sent

    return answer


def reading(*projections: type[Projection]) -> Any:
    """A dependency: one snapshot of these read models, at `min_position` or later."""

    async def snapshot(request: Request, store: Store, min_position: MinPosition = None,
                       wait_ms: WaitMs = 0) -> AsyncIterator[Reading]:
        # Opened by the route when it first reads, on its worker thread; closed by it once answered.
        view = Reading(request, projections, min_position or 0, wait_ms, store.head)
        try:
            yield view
        finally:
            view.close()  # only if the route failed before closing it: nothing left to wait for

    return Depends(snapshot)


def View(*projections: type[Projection]) -> Any:  # noqa: N802 - reads as a type in a signature
    """`view: View(Stages)` in a route's signature: a snapshot of those read models."""
    return Annotated[Reading, reading(*projections)]
