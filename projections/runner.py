"""The projection runner: reads the notification log in batches, applies each batch to every read
model it owns and moves each one's position, all in one transaction.

Exactly-once: a batch's row changes and the new positions commit together, and a position only
moves by compare-and-set from the value this runner last read, so a crash at any point resumes
from the last committed position, and a runner that lost its turn cannot write. Nothing is
skipped: the notification log is read "after position N", and the store gives positions in
commit order (PostgreSQL: an EXCLUSIVE table lock around inserts; SQLite: one writer).

Generations: each projection's tables are named `<prefix>_<name>_g<gen>_<table>`. When a
projection's `version` changes, or on `rebuild`, a new generation is built beside the serving one
and swapped in once it has caught up with the store; the old tables are then dropped.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterable, Sequence

import psycopg
from eventsourcing.utils import get_topic
from psycopg.sql import SQL, Identifier

from infra.ledger import Ledger
from infra.resilience import keep_running
from infra.settings import Settings
from infra.turns import Turns
from projections.catalog import BY_NAME, PROJECTIONS, Catalog, Generation, status
from projections.db import Db
from projections.model import Projection, Rows

log = logging.getLogger("yaosu.projections")



class ProjectionFailed(Exception):
    def __init__(self, name: str, position: int, event_type: str, error: Exception) -> None:
        super().__init__(f"projection {name} stopped at position {position} ({event_type}): {error!r}")
        self.name, self.position, self.event_type = name, position, event_type


class LostTurn(Exception):
    """Another runner moved this projection's position: this one must not write."""


class LiveGeneration:
    """One generation of one projection as this runner feeds it: its row caches and committed position."""

    def __init__(self, catalog: Catalog, projection: type[Projection], generation: Generation) -> None:
        self.catalog, self.cls, self.generation = catalog, projection, generation
        self.position = generation.position
        self.pending = self.position
        complete = self.position == 0  # nothing committed yet: the tables are empty
        self.rows = {t.name: Rows(t, catalog.physical(projection.name, generation.gen, t.name), catalog.db,
                                  complete=complete) for t in projection.tables}
        self.projection = projection(self.rows)
        self.failed: ProjectionFailed | None = None

    @property
    def name(self) -> str:
        return self.cls.name

    def apply(self, events: Sequence[tuple[int, Any]]) -> None:
        last = self.position
        for position, event in events:
            if position <= self.position:
                continue
            last = position
            if event is None:
                continue
            self.projection.position = position
            try:
                self.projection.apply(event)
            except Exception as error:
                raise ProjectionFailed(self.name, position, type(event).__qualname__, error) from error
        if last == self.position:
            return
        for rows in self.rows.values():
            rows.flush()
        moved = self.catalog.db.execute(
            f"UPDATE {self.catalog.meta} SET position = ? WHERE name = ? AND gen = ? AND position = ? "
            "AND state <> 'retired'", [last, self.name, self.generation.gen, self.position])
        if moved != 1:
            raise LostTurn(f"projection {self.name} generation {self.generation.gen} moved on or was retired elsewhere")
        self.pending = last

    def committed(self) -> None:
        self.position = self.pending

    def rolled_back(self) -> None:
        for rows in self.rows.values():
            rows.forget()
        self.pending = self.position


class Runner:
    def __init__(self, ledger: Ledger, settings: Settings, *, prefix: str = "rm", batch_size: int = 1000,
                 projections: Iterable[type[Projection]] = PROJECTIONS, poll_seconds: float = 0.5) -> None:
        self.ledger, self.settings, self.batch_size, self.poll_seconds = ledger, settings, batch_size, poll_seconds
        self.db = Db(settings)
        self.catalog = Catalog(self.db, prefix)
        self.projections = list(projections)
        self.generations: dict[str, LiveGeneration] = {}
        self._owned: set[str] = set()
        self._turns = Turns(self.db.conninfo() if self.db.dialect == "postgres" else {}, "yaosu-projections")
        self._listen_conn: Any = None
        self.stopping = threading.Event()
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="projections-read")
        self._ahead: tuple[tuple[int, int], Future[Any]] | None = None

    # --- ownership ---------------------------------------------------------------------------

    def _own(self, name: str) -> bool:
        """PostgreSQL: hold a session advisory lock per projection, so one runner alone is active."""
        if name in self._owned:
            return True
        if self.db.dialect == "postgres" and not self._turns.take(f"{self.db.schema}:{self.catalog.prefix}:{name}"):
            return False  # on SQLite one runner per store is the rule; compare-and-set guards the rest
        self._owned.add(name)
        log.info("projection %s: this runner is now active", name)
        return True

    # --- preparing generations -----------------------------------------------------------------

    def _prepare(self, projection: type[Projection], *, fresh: bool = False) -> None:
        with self.db.transaction():
            current = [g for g in self.catalog.generations(projection.name)
                       if g.state != "retired" and g.built_by(projection)]
            if fresh or not current:
                generation = self.catalog.create(projection)
            else:
                generation = current[-1]
        self.generations[projection.name] = LiveGeneration(self.catalog, projection, generation)

    def _refresh(self) -> None:
        if not self._turns.still_held():  # the locks died with their connection: take them again
            self._owned.clear()
            self.generations.clear()
        for projection in self.projections:
            if projection.name not in self.generations and self._own(projection.name):
                self._prepare(projection)

    # --- the loop ------------------------------------------------------------------------------

    def _read_after(self, start: int, limit: int) -> Sequence[Any]:
        """The notifications after `start`. When a full batch comes back, the next one is read
        while this one is applied: the log is immutable and ids are in commit order, so a batch
        read early is the same batch read later, less what was committed after it (read next)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == (start, limit):
            notifications = ahead[1].result()
        else:
            notifications = self._select(start, limit)
        if len(notifications) == limit:
            following = (notifications[-1].id, limit)
            self._ahead = (following, self._reader.submit(self._select, *following))
        return notifications

    def _select(self, start: int, limit: int) -> Sequence[Any]:
        return self.ledger.notifications_after(start, limit)

    def step(self, batch_size: int | None = None) -> int:
        """Apply the next batch to every owned, working projection. Returns events read."""
        self._refresh()
        live_generations = [w for w in self.generations.values() if w.failed is None and w.name in self._owned]
        if not live_generations:
            return 0
        head = self.ledger.head()
        start = min(w.position for w in live_generations)
        notifications = self._read_after(start, batch_size or self.batch_size)
        # Decode only what some projection handles (receipts are half the log); positions still move
        # over every notification, so a batch of receipts alone advances the tracking too.
        wanted = {get_topic(cls) for live in live_generations for cls in live.cls.handlers}
        events = [(n.id, self.ledger.decode(n) if n.topic in wanted else None) for n in notifications]
        if events:
            try:
                with self.db.transaction():
                    for live in live_generations:
                        live.apply(events)
            except ProjectionFailed as failure:
                for live in live_generations:
                    live.rolled_back()
                log.error("%s; fix the projection and restart: it will resume from there", failure)
                self.generations[failure.name].failed = failure
                return self.step(batch_size)  # the others go on without it
            except LostTurn as lost:
                log.warning("%s; re-reading positions", lost)
                self.generations.clear()
                if self.db.dialect == "postgres":
                    self._owned.clear()
                return 0
            except BaseException:
                for live in live_generations:
                    live.rolled_back()
                raise
            for live in live_generations:
                live.committed()
        for live in live_generations:
            if live.generation.state == "building" and live.position >= head:
                with self.db.transaction():
                    self.catalog.swap_in(live.cls, live.generation.gen)
                live.generation.state = "active"
        return len(events)

    def run_until_caught_up(self, progress: Callable[[int], None] | None = None, batch_size: int | None = None) -> int:
        total = 0
        while n := self.step(batch_size):
            total += n
            if progress is not None:
                progress(n)
        return total

    def run_forever(self) -> None:
        """Follow the store until `stop()`; survive the database going away and coming back."""
        def follow() -> None:
            if self.step() < self.batch_size:
                self._wait()

        keep_running(follow, self.stopping, log, recover=self._reset_connections)

    def _wait(self) -> None:
        if self.db.dialect == "sqlite":
            self.stopping.wait(self.poll_seconds)
            return
        if self._listen_conn is None:
            self._listen_conn = psycopg.connect(**self.db.conninfo(), autocommit=True)
            channel = self.ledger.notify_channel or "yaosu_events"
            self._listen_conn.execute(SQL("LISTEN {}").format(Identifier(channel)))
        for _ in self._listen_conn.notifies(timeout=1.0, stop_after=1):
            pass

    def _reset_connections(self) -> None:
        """Drop every connection and what was owned; the next step connects afresh."""
        self._turns.drop()
        self._ahead = None
        if self._listen_conn is not None:
            try:
                self._listen_conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
        self._listen_conn = None
        self._owned.clear()
        self.generations.clear()
        self.db.reconnect()

    def stop(self) -> None:
        self.stopping.set()

    def close(self) -> None:
        self.stop()
        self._reader.shutdown(wait=True)
        self._turns.drop()
        if self._listen_conn is not None:
            self._listen_conn.close()
        self.db.close()

    # --- operations ----------------------------------------------------------------------------

    def rebuild(self, names: Sequence[str], progress: Callable[[int], None] | None = None,
                batch_size: int = 10_000) -> int:
        """Build fresh generations from zero; each swaps in when caught up, the old serving meanwhile."""
        self.projections = [BY_NAME[n] for n in names]
        for projection in self.projections:
            if not self._own(projection.name):
                raise RuntimeError(f"another runner is active for {projection.name}; stop it first")
            self._prepare(projection, fresh=True)
        return self.run_until_caught_up(progress, batch_size)

    def status(self) -> list[dict[str, Any]]:
        return status(self.ledger, self.catalog)
