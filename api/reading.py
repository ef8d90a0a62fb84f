"""Reading the read models: each route names those it reads; every answer says which store position
it reflects (`Yaosu-Position`), and a client may ask for at least the position of its own write.

A reader waiting for its write waits on the event loop, holding neither a worker thread nor a
connection (`ReadModels.reached`), and at most `YAOSU_MAX_WAITING` wait at once: the next is
answered 503 `too_many_waiting` at once, so waiting readers can never starve the other routes.

Answers are kept by what they depend on (`Answers`): the route and the values of its declared
parameters, the generations and position of the snapshot, and the city's date. Asked again before
anything is written, an answer costs a look-up; any write moves the position, so nothing stale is
ever served.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from contextlib import ExitStack, contextmanager
from typing import Annotated, Any, AsyncIterator, Callable, Hashable, Iterator, Optional

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import Store
from api.errors import POSITION_STATE, ProblemError
from api.listings import Asked
from api.params import LAST_POSITION
from infra.clock import city_today
from infra.tokens import Principal
from projections.db import Db
from projections.listing import Tables
from projections.model import Projection
from projections.read import ReadModels, Snapshot, TooManyWaiting, position_of

#: The longest a reader may ask to wait for its write (contract v1.1).
MAX_WAIT_MS = 5000

MinPosition = Annotated[Optional[int], Query(
    ge=0, le=LAST_POSITION, description="answer only once the read models reflect this store position "
                                        "(the `position` of your message's receipt)")]
WaitMs = Annotated[int, Query(ge=0, le=MAX_WAIT_MS, description="how long to wait for `min_position`, "
                                                               "in milliseconds, before 503 `read_model_behind`")]


@contextmanager
def read(request: Request, *projections: type[Projection], min_position: int = 0) -> Iterator[Snapshot]:
    """One snapshot of these read models (`ReadModelBehind` if it is short of `min_position`), its
    position left for the answer's `Yaosu-Position`."""
    reads = read_models(request)
    with reads.snapshot(*projections, min_position=min_position) as view:
        setattr(request.state, POSITION_STATE, view.position)
        yield view


def read_models(request: Request) -> ReadModels:
    reads: ReadModels | None = request.app.state.read_models
    if reads is None:
        raise ProblemError(503, "read_model_not_ready", "this store keeps no read models")
    return reads


class Reading:
    """A route's snapshot, opened when first read: after the request's parameters were found valid,
    so a bad parameter is a 400 even with a `min_position` not reached yet."""

    def __init__(self, request: Request, projections: tuple[type[Projection], ...], min_position: int, wait_ms: int,
                 head: Callable[[], int]) -> None:
        self.request, self.projections, self.min_position = request, projections, min_position
        self.wait_ms, self.head = wait_ms, head
        self._stack = ExitStack()
        self._snapshot: Snapshot | None = None

    async def reached(self) -> None:
        """Wait on the event loop, up to `wait_ms`, for the read models to reflect `min_position` (the
        snapshot read next says whether they do)."""
        reads: ReadModels | None = self.request.app.state.read_models
        if reads is None or self.min_position <= 0:
            return
        try:
            await reads.reached(self.projections, self.min_position, self.wait_ms / 1000, self.head)
        except TooManyWaiting as error:
            raise ProblemError(503, "too_many_waiting", str(error), {"Retry-After": "1"},
                               max_waiting=error.bound) from None

    def _opened(self) -> Snapshot:
        if self._snapshot is None:
            self._snapshot = self._stack.enter_context(read(self.request, *self.projections,
                                                            min_position=self.min_position))
        return self._snapshot

    @property
    def db(self) -> Db:
        return self._opened().db

    def tables(self, projection: type[Projection]) -> dict[str, str]:
        return self._opened().tables(projection)

    def of(self, projection: type[Projection]) -> Tables:
        """A read model's tables in this snapshot, as its query functions take them."""
        return self._opened().of(projection)

    def close(self) -> None:
        self._stack.close()

    def answer(self, asked: tuple[Hashable, ...], compute: Callable[[], Response]) -> Response:
        """The route's answer to what was `asked`, computed once per snapshot (see `Answers`).

        An answer kept for the generations serving now is given again after one statement that
        reads them: no snapshot (its transaction costs two more round trips, and a pooled
        connection held for all three is what 32 clients queue for)."""
        answers: Answers | None = self.request.app.state.answers
        if answers is None:
            return compute()
        asked = (*asked, city_today())
        if self._snapshot is None:
            reads: ReadModels | None = self.request.app.state.read_models
            now = reads.serving_now(*self.projections) if reads is not None else None
            if now is not None and position_of(now) >= self.min_position:
                found = answers.get((*asked, now))
                if found is not None:
                    setattr(self.request.state, POSITION_STATE, position_of(now))
                    return found
        return answers.made_once((*asked, self._opened().generations), compute)


#: What a kept answer costs beyond its key, headers and body: the objects that hold them.
ENTRY_BYTES = 512


class Answers:
    """Answers of the read-model routes, least recently used first out, up to `capacity` bytes in all:
    each counted with its key, headers and body (`cost`)."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.size = capacity, 0
        self._kept: OrderedDict[Hashable, tuple[int, bytes, list[tuple[bytes, bytes]], int]] = OrderedDict()
        self._lock = threading.Lock()
        #: The answers being computed now, each set when it is done.
        self._making: dict[Hashable, threading.Event] = {}

    def made_once(self, key: Hashable, compute: Callable[[], Response]) -> Response:
        """The answer kept for `key`, or `compute`d by one request at a time: after a write, every reader
        of a page asks the same question at once, and those asking what another is computing wait for
        it and are given its answer. One that was not kept (an error, a download too large to keep) is
        computed again by the next of them."""
        while True:
            found = self.get(key)
            if found is not None:
                return found
            with self._lock:
                making = self._making.get(key)
                if making is None:
                    making = self._making[key] = threading.Event()
                    break
            making.wait()
        try:
            made = compute()
            if made.status_code == 200:
                self.put(key, made)
            return made
        finally:
            with self._lock:
                del self._making[key]
            making.set()

    def get(self, key: Hashable) -> Response | None:
        with self._lock:
            found = self._kept.get(key)
            if found is None:
                return None
            self._kept.move_to_end(key)
        status, body, headers, _ = found
        answer = Response(body, status_code=status)
        answer.raw_headers = list(headers)
        return answer

    def put(self, key: Hashable, answer: Response) -> None:
        body, headers = bytes(answer.body), list(answer.raw_headers)
        cost = self.cost(key, body, headers)
        if cost > self.capacity // 4:  # one huge download must not push out everything else
            return
        with self._lock:
            if key in self._kept:
                return
            self._kept[key] = (answer.status_code, body, headers, cost)
            self.size += cost
            while self.size > self.capacity:
                _, (_, _, _, dropped) = self._kept.popitem(last=False)
                self.size -= dropped

    @staticmethod
    def cost(key: Hashable, body: bytes, headers: list[tuple[bytes, bytes]]) -> int:
        """The bytes an answer holds while kept: its key as written out, its headers and body, and the objects."""
        return len(repr(key)) + sum(len(name) + len(value) for name, value in headers) + len(body) + ENTRY_BYTES


def asked_of(request: Request, arguments: dict[str, Any]) -> tuple[Hashable, ...]:
    """What an answer depends on: the route and the values of the parameters it declares, as validated
    (a listing's filters among them).
    Parameters it does not declare change nothing in the answer, so they are not part of it (and
    `min_position`/`wait_ms`, declared by the snapshot, say how long to wait, not what to answer)."""
    route = request.scope["route"]
    names = [field.name for field in (*route.dependant.path_params, *route.dependant.query_params)]
    # A listing's filters are one parameter (`api.listings.Filters`): the values it gathered.
    filters = [(name, value) for name, value in arguments.items() if isinstance(value, Asked)]
    return (route.path, *((name, arguments[name]) for name in names), *filters)


def answered(route: Callable[..., Response] | None = None, *, per_portal: bool = False) -> Any:
    """A read-model route whose answers are kept (`Answers`): its snapshot is its `view` parameter,
    and it takes the request as `request`. With `per_portal`, the answer differs by caller (a portal
    sees the bodies of its own messages only): kept per portal's department, and once for the others.

    The route waits for `min_position` on the event loop, then runs on a worker thread."""

    def decorate(route: Callable[..., Response]) -> Callable[..., Any]:
        @functools.wraps(route)
        async def answer(*args: Any, **kwargs: Any) -> Response:
            view: Reading = kwargs["view"]
            asked = asked_of(kwargs["request"], kwargs)
            if per_portal:
                caller = next(v for v in kwargs.values() if isinstance(v, Principal))
                asked = (*asked, caller.department if caller.role == "portal" else None)
            await view.reached()

            def compute() -> Response:
                try:
                    return view.answer(asked, lambda: route(*args, **kwargs))
                finally:
                    view.close()  # on the route's thread: the connection is back before the answer is sent

            return await run_in_threadpool(compute)

        return answer

    return decorate if route is None else decorate(route)


def reading(*projections: type[Projection]) -> Any:
    """A dependency: one snapshot of these read models, at `min_position` or later."""

    async def snapshot(request: Request, store: Store, min_position: MinPosition = None,
                       wait_ms: WaitMs = 0) -> AsyncIterator[Reading]:
        # Waited for and opened by the route (see `answered`); closed by it once answered.
        view = Reading(request, projections, min_position or 0, wait_ms, store.head)
        try:
            yield view
        finally:
            view.close()  # only if the route failed before closing it: nothing left to wait for

    return Depends(snapshot)


def View(*projections: type[Projection]) -> Any:  # noqa: N802 - reads as a type in a signature
    """`view: View(Stages)` in a route's signature: a snapshot of those read models."""
    return Annotated[Reading, reading(*projections)]
