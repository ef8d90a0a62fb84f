"""The read side as the API sees it: a few connections, and each request reading one snapshot.

A snapshot is one read-only transaction over the serving generations of the read models a
request declares, so an answer is consistent and says exactly which store position it reflects
(the runner moves every read model's position in the transaction that changes its rows).
A reader that needs its own write waits for that position first, holding no connection (and, in
the API, no worker thread): one watcher thread reads the positions for every reader waiting, each
time the in-process runner commits, `NOTIFY` comes from a runner in another process on PostgreSQL,
or otherwise after a short poll. At most `YAOSU_MAX_WAITING` readers wait at once; the next is
refused at once (`TooManyWaiting`) rather than queued.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import psycopg
from prometheus_client import Gauge
from psycopg.sql import SQL, Identifier

from infra.metrics import PROCESS
from infra.settings import Settings
from projections.catalog import Catalog, Generation, Halt, status
from projections.db import Db, NotBuilt
from projections.listing import Tables
from projections.model import Projection
from service.ledger import Ledger

log = logging.getLogger("yaosu.projections")

#: Requests read in parallel on this many connections (the server's thread pool is larger).
CONNECTIONS = 4
#: How often the watcher looks again for waiting readers when nothing wakes it (a runner in another SQLite process).
POLL_SECONDS = 0.05

READERS_WAITING = Gauge("yaosu_readers_waiting", "Readers waiting for the read models to reach their min_position",
                registry=PROCESS)


def read_models_channel(schema: str, prefix: str) -> str:
    """The PostgreSQL channel a runner notifies when read models moved (at most 63 bytes)."""
    return f"yaosu_read_{schema}_{prefix}"[:63]


class ReadModelBehind(Exception):
    """The read models have not reached the position a reader asked for, within its wait."""

    def __init__(self, wanted: int, position: int, head: int | None = None) -> None:
        beyond = f" (the store's head is {head})" if head is not None and wanted > head else ""
        super().__init__(f"the read models are at position {position}, not yet at {wanted}{beyond}")
        self.wanted, self.position = wanted, position


class TooManyWaiting(Exception):
    """As many readers as allowed are waiting for a position already: this one is refused, not queued."""

    def __init__(self, bound: int) -> None:
        super().__init__(f"{bound} readers are waiting for a position already; try again shortly")
        self.bound = bound


Generations = tuple[tuple[str, int, int], ...]


def serving(catalog: Catalog, projections: Sequence[type[Projection]]) -> dict[str, Generation]:
    """The generation serving each of these read models (`NotBuilt` if one has none)."""
    active = {g.name: g for g in catalog.generations() if g.state == "active"}
    missing = [p.name for p in projections if p.name not in active]
    if missing:
        raise NotBuilt(f"the {', '.join(missing)} read model is not built yet")
    return {p.name: active[p.name] for p in projections}


def generations(chosen: dict[str, Generation]) -> Generations:
    """(name, generation, position) of each: what an answer read, exactly."""
    return tuple((g.name, g.gen, g.position) for g in chosen.values())


def position_of(read: Generations) -> int:
    """The store position a reading of these generations reflects: the lowest of their positions."""
    return min((position for _, _, position in read), default=0)


class Snapshot:
    """One consistent reading of some read models: one connection, one transaction."""

    def __init__(self, db: Db, catalog: Catalog, projections: Sequence[type[Projection]]) -> None:
        self.db, self.catalog = db, catalog
        self._serving = serving(catalog, projections)
        #: What it reads, exactly: each read model's generation and position.
        self.generations = generations(self._serving)
        #: The store position this reading reflects: the lowest of its read models'.
        self.position = position_of(self.generations)

    def tables(self, projection: type[Projection]) -> dict[str, str]:
        """Physical table names of the serving generation (of a read model this snapshot declared)."""
        generation = self._serving[projection.name]
        return {t.name: self.catalog.physical(projection.name, generation.gen, t.name) for t in projection.tables}

    def of(self, projection: type[Projection]) -> Tables:
        """A read model's tables in this snapshot, as its query functions take them."""
        return Tables(self.db, self.tables(projection))


@dataclass(eq=False)
class Waiter:
    """A reader waiting for its read models to reach a position; told by the watcher thread."""

    names: tuple[str, ...]
    wanted: int
    #: How to read the store's head, to refuse at once a position beyond it (read once, then None).
    head: Callable[[], int] | None
    #: Called once, on the watcher's thread: None when the position was reached, else why it never will be.
    settle: Callable[[ReadModelBehind | None], None]

    def reached(self, positions: dict[str, int]) -> int:
        return reflected(self.names, positions)


def reflected(names: Sequence[str], positions: dict[str, int]) -> int:
    """The position these read models reflect together (-1: one of them is not built)."""
    return min((positions.get(name, -1) for name in names), default=-1)


class ReadModels:
    def __init__(self, settings: Settings, prefix: str = "rm", connections: int = CONNECTIONS) -> None:
        self.prefix = prefix
        self._idle: queue.LifoQueue[tuple[Db, Catalog]] = queue.LifoQueue()
        for _ in range(connections):
            db = Db(settings)
            self._idle.put((db, Catalog(db, prefix)))
        self.dialect, self.schema = db.dialect, db.schema
        self.channel = read_models_channel(db.schema, prefix) if db.dialect == "postgres" else None
        #: How to open another connection to the read-model database (PostgreSQL; empty on SQLite).
        self.conninfo = db.conninfo() if db.dialect == "postgres" else {}
        #: Readers waiting for a position at once, at most; the next is refused (`TooManyWaiting`).
        self.max_waiting = settings.max_waiting
        #: Counts what makes the watcher look again: a runner moved the read models, or a reader began waiting.
        self._changed = threading.Condition()
        self._changes = 0
        self._waiters: set[Waiter] = set()
        #: Each read model's position as the watcher last read it: a reader asking for less waits not at all.
        self._seen: dict[str, int] = {}
        self._watcher: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        self._closing = threading.Event()

    @contextmanager
    def connection(self) -> Iterator[tuple[Db, Catalog]]:
        """A connection of the pool, to this caller alone until it leaves."""
        taken = self._idle.get()
        try:
            yield taken
        finally:
            self._idle.put(taken)

    @contextmanager
    def snapshot(self, *projections: type[Projection], min_position: int = 0, wait_seconds: float = 0.0,
                 head: Callable[[], int] | None = None) -> Iterator[Snapshot]:
        """Read these read models in one snapshot, once they reflect `min_position`, waiting up to
        `wait_seconds` (but not for a position beyond the store's `head`, if told how to find it).
        The wait holds no connection: the watcher looks for every reader waiting."""
        self.wait_for(projections, min_position, wait_seconds, head)
        with self.connection() as (db, catalog), db.reading():
            view = Snapshot(db, catalog, projections)  # `NotBuilt` also after a wait for a first build
            if view.position < min_position:
                raise ReadModelBehind(min_position, view.position)
            yield view

    def serving_now(self, *projections: type[Projection]) -> Generations | None:
        """The generations serving these read models now, read in one statement without a transaction
        (None: one is not built). An answer kept for exactly these needs no snapshot to be given again."""
        with self.connection() as (_, catalog):
            try:
                return generations(serving(catalog, projections))
            except NotBuilt:
                return None

    def status(self, ledger: Ledger) -> list[dict[str, Any]]:
        """Position, head and lag of every live generation (`yaosu projections status`)."""
        with self.connection() as (_, catalog):
            return status(ledger, catalog)

    def halts(self) -> list[Halt]:
        """The read models stopped at an event they cannot apply (whichever process runs them)."""
        with self.connection() as (_, catalog):
            return catalog.halts()

    # --- waiting for a position, holding nothing ------------------------------------------------

    def wait_for(self, projections: Sequence[type[Projection]], min_position: int, seconds: float,
                 head: Callable[[], int] | None = None) -> None:
        """Wait on this thread, up to `seconds`, for these read models to reflect `min_position`.
        Returns when they do or when the time is up (the snapshot read next says which); raises
        `ReadModelBehind` at once for a position beyond the store's head, `TooManyWaiting` when full."""
        if self._known_to_reach(projections, min_position) or seconds <= 0:
            return
        done, outcome = threading.Event(), []

        def settle(error: ReadModelBehind | None) -> None:
            outcome.append(error)
            done.set()

        waiter = self._enter(projections, min_position, head, settle)
        try:
            done.wait(seconds)
        finally:
            self._leave(waiter)
        if outcome and outcome[0] is not None:
            raise outcome[0]

    async def reached(self, projections: Sequence[type[Projection]], min_position: int, seconds: float,
                      head: Callable[[], int] | None = None) -> None:
        """`wait_for` on the event loop: a waiting request holds neither a connection nor a worker thread."""
        if self._known_to_reach(projections, min_position) or seconds <= 0:
            return
        loop = asyncio.get_running_loop()
        told: asyncio.Future[ReadModelBehind | None] = loop.create_future()

        def settle(error: ReadModelBehind | None) -> None:
            try:
                loop.call_soon_threadsafe(_resolve, told, error)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

        waiter = self._enter(projections, min_position, head, settle)
        try:
            await asyncio.wait({told}, timeout=seconds)
        finally:
            self._leave(waiter)
        if told.done() and told.result() is not None:
            raise told.result()  # type: ignore[misc]

    def _known_to_reach(self, projections: Sequence[type[Projection]], min_position: int) -> bool:
        # Positions only grow: what the watcher last read is a floor of what a snapshot will see.
        return min_position <= 0 or reflected([p.name for p in projections], self._seen) >= min_position

    def _enter(self, projections: Sequence[type[Projection]], min_position: int, head: Callable[[], int] | None,
               settle: Callable[[ReadModelBehind | None], None]) -> Waiter:
        waiter = Waiter(tuple(p.name for p in projections), min_position, head, settle)
        with self._changed:
            if len(self._waiters) >= self.max_waiting:
                raise TooManyWaiting(self.max_waiting)
            self._waiters.add(waiter)
            READERS_WAITING.inc()
            self._changes += 1  # the watcher looks at once, for this one
            self._changed.notify_all()
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._watch, name="read-models-watch", daemon=True)
                self._watcher.start()
        return waiter

    def _leave(self, waiter: Waiter) -> bool:
        with self._changed:
            if waiter not in self._waiters:
                return False
            self._waiters.discard(waiter)
            READERS_WAITING.dec()
            return True

    def _watch(self) -> None:
        """One thread reads the positions for every reader waiting: one statement per change, however many wait."""
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._waiters) or self._closing.is_set())
                if self._closing.is_set():
                    return
                seen, waiting = self._changes, list(self._waiters)
            try:
                self._look(waiting)
            except Exception as error:  # noqa: BLE001 - the waiters wait on; their snapshot will say what fails
                log.warning("reading the read models' positions failed (%s); trying again", error)
                self._closing.wait(POLL_SECONDS)
            self._wait_for_change(seen, POLL_SECONDS if self.channel is None else 0.5)

    def _look(self, waiting: list[Waiter]) -> None:
        with self.connection() as (_, catalog):
            positions = {g.name: g.position for g in catalog.generations() if g.state == "active"}
        self._seen = positions
        heads: dict[Callable[[], int], int] = {}
        for waiter in waiting:
            reached = waiter.reached(positions)
            if reached >= waiter.wanted:
                self._settle(waiter, None)
            elif waiter.head is not None:
                ask, waiter.head = waiter.head, None
                if ask not in heads:
                    heads[ask] = ask()
                if waiter.wanted > heads[ask]:  # nothing stored yet for it to reach
                    self._settle(waiter, ReadModelBehind(waiter.wanted, max(reached, 0), heads[ask]))

    def _settle(self, waiter: Waiter, outcome: ReadModelBehind | None) -> None:
        if self._leave(waiter):
            waiter.settle(outcome)

    # --- being told the read models moved ------------------------------------------------------

    def moved(self) -> None:
        """The read models moved (an in-process runner committed): the watcher looks again."""
        with self._changed:
            self._changes += 1
            self._changed.notify_all()

    def _wait_for_change(self, seen: int, timeout: float) -> None:
        if self.channel is not None and self._listener is None:
            self._listen()
        with self._changed:
            self._changed.wait_for(lambda: self._changes != seen or self._closing.is_set(), timeout)

    def _listen(self) -> None:
        """On PostgreSQL, a runner in any process notifies when it commits: one thread listens."""
        with self._changed:
            if self._listener is not None:
                return
            self._listener = threading.Thread(target=self._follow_notifications, name="read-models-listen", daemon=True)
            self._listener.start()

    def _follow_notifications(self) -> None:
        while not self._closing.is_set():
            try:
                with psycopg.connect(**self.conninfo, autocommit=True) as conn:
                    conn.execute(SQL("LISTEN {}").format(Identifier(self.channel or "")))
                    self.moved()  # anything missed while not listening
                    while not self._closing.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self.moved()
            except psycopg.Error as error:
                log.warning("listening for read-model positions failed (%s); polling until it works again", error)
                self._closing.wait(1.0)

    def close(self) -> None:
        with self._changed:
            self._closing.set()
            self._changed.notify_all()
        while True:
            try:
                db, _ = self._idle.get_nowait()
            except queue.Empty:
                return
            db.close()


def _resolve(told: asyncio.Future[ReadModelBehind | None], outcome: ReadModelBehind | None) -> None:
    if not told.done():
        told.set_result(outcome)
