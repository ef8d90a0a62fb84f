"""The read side as the API sees it: a few connections, and each request reading one snapshot.

A snapshot is one read-only transaction over the serving generations of the read models a
request declares, so an answer is consistent and says exactly which store position it reflects
(the runner moves every read model's position in the transaction that changes its rows).
A reader that needs its own write waits for that position first: woken by the in-process runner
when it commits, by `NOTIFY` from a runner in another process on PostgreSQL, and otherwise by a
short poll.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import psycopg
from psycopg.sql import SQL, Identifier

from infra.ledger import Ledger
from infra.settings import Settings
from projections.catalog import Catalog, Generation, Halt, status
from projections.db import Db, NotBuilt
from projections.model import Projection

log = logging.getLogger("yaosu.projections")

#: Requests read in parallel on this many connections (the server's thread pool is larger).
CONNECTIONS = 4
#: How often a waiting reader looks again when nothing wakes it (a runner in another SQLite process).
POLL_SECONDS = 0.05


def read_models_channel(schema: str, prefix: str) -> str:
    """The PostgreSQL channel a runner notifies when read models moved (at most 63 bytes)."""
    return f"yaosu_read_{schema}_{prefix}"[:63]


class ReadModelBehind(Exception):
    """The read models have not reached the position a reader asked for, within its wait."""

    def __init__(self, wanted: int, position: int, head: int | None = None) -> None:
        beyond = f" (the store's head is {head})" if head is not None and wanted > head else ""
        super().__init__(f"the read models are at position {position}, not yet at {wanted}{beyond}")
        self.wanted, self.position = wanted, position


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
        self._moved = threading.Condition()
        self._moves = 0
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
        `wait_seconds` (but not for a position beyond the store's `head`, if told how to find it)."""
        deadline = time.monotonic() + wait_seconds
        last_head: int | None = None
        with self.connection() as (db, catalog):
            while True:
                moves = self._moves
                with db.reading():
                    try:
                        view = Snapshot(db, catalog, projections)
                    except NotBuilt:
                        # A reader waiting for its write waits for a first build too.
                        if min_position <= 0 or time.monotonic() >= deadline:
                            raise
                        view = None
                    if view is not None and view.position >= min_position:
                        yield view
                        return
                remaining = deadline - time.monotonic()
                stored = head() if head is not None and last_head is None else last_head
                last_head = stored
                if remaining <= 0 or (stored is not None and min_position > stored):
                    raise ReadModelBehind(min_position, view.position if view else 0, stored)
                self._wait_for_move(moves, min(remaining, POLL_SECONDS if self.channel is None else 0.5))

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

    # --- being told the read models moved ------------------------------------------------------

    def moved(self) -> None:
        """The read models moved (an in-process runner committed): wake the readers waiting."""
        with self._moved:
            self._moves += 1
            self._moved.notify_all()

    def _wait_for_move(self, seen: int, timeout: float) -> None:
        if self.channel is not None and self._listener is None:
            self._listen()
        with self._moved:
            self._moved.wait_for(lambda: self._moves != seen, timeout)

    def _listen(self) -> None:
        """On PostgreSQL, a runner in any process notifies when it commits: one thread listens."""
        with self._moved:
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
        self._closing.set()
        while True:
            try:
                db, _ = self._idle.get_nowait()
            except queue.Empty:
                return
            db.close()
