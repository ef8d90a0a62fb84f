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

import dataclasses
import logging
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import cache
from typing import Any, Callable, Iterable, Iterator, Sequence

import psycopg
from eventsourcing.utils import get_topic
from psycopg.sql import SQL, Identifier

from domain.envelope import shown
from infra.clock import city_today
from infra.resilience import TRANSIENT, keep_running
from infra.settings import Settings
from infra.turns import Turns
from projections.catalog import BY_NAME, PROJECTIONS, Catalog, Generation, Halt, status
from projections.chain import HashChain, record_checkpoints
from projections.db import Db
from projections.model import Appended, Projection, Rows
from projections.read import read_models_channel
from service.ledger import Ledger

log = logging.getLogger("yaosu.projections")
#: How often a following runner looks for closed days to checkpoint.
CLOSE_DAYS_SECONDS = 60.0
#: A halted read model tries its event again after this long, doubling up to `RETRY_MOST_SECONDS`.
RETRY_FIRST_SECONDS = 5.0
RETRY_MOST_SECONDS = 300.0
#: A NUL escaped in a stored event's JSON (not an escaped backslash followed by `u0000`).
_ESCAPED_NUL = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")


class ProjectionFailed(Exception):
    def __init__(self, name: str, position: int, event_type: str, error: BaseException) -> None:
        super().__init__(f"projection {name} stopped at position {position} ({event_type}): {error!r}")
        self.name, self.position, self.event_type, self.error = name, position, event_type, error


class Undecodable:
    """A stored event this code cannot decode: it fails the read models that handle its topic, there."""

    def __init__(self, topic: str, error: Exception) -> None:
        self.topic, self.error = topic, error


def printable(error: BaseException, limit: int = 1000) -> str:
    """What went wrong, as one line any store can keep and any log can show (no control characters)."""
    return shown(f"{type(error).__name__}: {error}")[:limit]


class LostTurn(Exception):
    """Another runner moved this projection's position: this one must not write."""


class LiveGeneration:
    """One generation of one projection as this runner feeds it: its row caches and committed position."""

    def __init__(self, catalog: Catalog, projection: type[Projection], generation: Generation,
                 settings: Settings) -> None:
        self.catalog, self.cls, self.generation = catalog, projection, generation
        self.position = generation.position
        self.pending = self.position
        self.rows: dict[str, Rows | Appended] = {}
        for table in projection.tables:
            physical = catalog.physical(projection.name, generation.gen, table.name)
            if table.appends:
                self.rows[table.name] = Appended(table, physical, catalog.db)
                continue
            # Settling may write before the position first moves: an empty table is looked at, not assumed.
            empty = self.position == 0 and not catalog.db.query(f"SELECT 1 FROM {physical} LIMIT 1")
            self.rows[table.name] = Rows(table, physical, catalog.db, empty=empty)
        self.settings = settings
        self.projection = projection(self.rows, settings)
        #: Stopped at an event it cannot apply (kept in the catalogue, so every process sees it); while
        #: set, this read model alone tries that event again from time to time (at once after a restart).
        self.halt = next((h for h in catalog.halts() if h.name == projection.name and h.gen == generation.gen), None)
        self.next_try = 0.0
        self.backoff = RETRY_FIRST_SECONDS
        #: A batch failed: its events are applied one by one, alone, to find the one that cannot be.
        self.isolating = False
        #: Where the batch being applied ends, and whether it reaches the head (set by `take`).
        self.batch_end, self.batch_caught_up = self.position, False
        #: Positions an operator decided this read model goes on without (`domain.skips`).
        self.skipping: set[int] = set()
        #: Derived work left for later batches (`Projection.settle`).
        self.unsettled = True
        #: Deferred indexes made (once caught up; made again by each runner: `IF NOT EXISTS`).
        self.indexed = False

    @property
    def name(self) -> str:
        return self.cls.name

    def apply(self, events: Sequence[tuple[Any, Any]], last: int, caught_up: bool) -> None:
        """Apply this projection's share of a batch (`_route`), the batch ending at position `last`
        (none: only settle), and move the position there, with compare-and-set: alone, each step
        written in a round trip of its own (`Runner.step` writes every read model's together)."""
        if self.take(events, last, caught_up):
            flushed(self.catalog.db, [self])
            self.settle()
            flushed(self.catalog.db, [self])

    def take(self, events: Sequence[tuple[Any, Any]], last: int, caught_up: bool) -> bool:
        """Apply the events in memory; False if there is nothing to write nor to settle. Then `settle`
        (after the rows are written, if `settles`), and the batch is to be written."""
        last = max(last, self.position)
        records = self.cls.records
        if self.skipping:
            events = [pair for pair in events if pair[0].id not in self.skipping]
        self.projection.prefetch(event for _, event in events if event is not None and not isinstance(event, Undecodable))
        for stored, event in events:
            self.projection.position = position = stored.id
            try:
                if isinstance(event, Undecodable):
                    raise event.error
                if records:
                    self.projection.record(stored)
                if event is not None:
                    self.projection.apply(event)
            except Exception as error:
                what = type(event).__qualname__ if event is not None else stored.topic
                raise ProjectionFailed(self.name, position, what, error) from error
        self.batch_end, self.batch_caught_up = last, caught_up
        return last != self.position or (caught_up and self.unsettled)

    @property
    def settles(self) -> bool:
        """Does its settling query its tables (so they must hold the batch's rows first)?"""
        return self.cls.settle is not Projection.settle

    def settle(self) -> None:
        try:
            self.unsettled = self.projection.settle(self.batch_caught_up)
        except Exception as error:
            raise ProjectionFailed(self.name, self.batch_end, "settle", error) from error
        self.pending = self.batch_end  # moved with the others' by `moved`, in the same transaction

    def committed(self) -> None:
        self.position = self.pending

    def rolled_back(self) -> None:
        for rows in self.rows.values():
            rows.forget()
        self.pending = self.position
        self.projection = self.cls(self.rows, self.settings)  # what it kept in memory may be undone too
        self.unsettled = True


class Tangled(Exception):
    """The database refused a write of several read models sent together: whose is not known yet."""


def flushed(db: Db, lives: Sequence[LiveGeneration]) -> None:
    """Write what these read models changed: many new rows by `COPY` first (each read model's own, since a
    pipeline cannot carry one), then the rest in one pipeline, one round trip (none if nothing changed: a
    pipeline's end is a round trip even when empty). What the database refuses there, of more than one
    read model, is `Tangled`."""
    writing = [live for live in lives if any(rows.pending for rows in live.rows.values())]
    for live in writing:
        with blamed(live, live.batch_end):
            for rows in live.rows.values():
                if rows.pending:
                    rows.copy_many()
    tables = [rows for live in writing for rows in live.rows.values() if rows.pending]
    if not tables:
        return
    try:
        with db.pipeline():
            for rows in tables:
                rows.flush()
    except (ProjectionFailed, LostTurn, *TRANSIENT):
        raise
    except Exception as error:
        if len(writing) == 1:
            raise ProjectionFailed(writing[0].name, writing[0].batch_end, "flush", error) from error
        raise Tangled(error) from error


@contextmanager
def blamed(live: LiveGeneration, last: int) -> Iterator[None]:
    """Any failure but a passing one (the database away) blamed on this read model, at the flush."""
    try:
        yield
    except (ProjectionFailed, LostTurn, Tangled, *TRANSIENT):
        raise
    except Exception as error:  # a row it cannot write (e.g. a value its table refuses)
        raise ProjectionFailed(live.name, last, "flush", error) from error


#: An event class's topic, worked out once (each batch asks for every class a read model handles).
topic_of = cache(get_topic)


@cache
def handled_topics(projection: type[Projection]) -> frozenset[str]:
    """The topics of the events a read model handles."""
    return frozenset(map(topic_of, projection.handlers))


def _route(events: Sequence[tuple[Any, Any]], lives: Sequence[LiveGeneration]) -> dict[str, list[tuple[Any, Any]]]:
    """Each projection's share of a batch of (notification, event or None), in one pass: the events
    it handles, or with `records` every notification (its event if handled); less what one behind
    the others has applied already."""
    by_type: dict[type, list[list[tuple[Any, Any]]]] = {}
    by_topic: dict[str, list[list[tuple[Any, Any]]]] = {}
    routed: dict[str, list[tuple[Any, Any]]] = {}
    for live in lives:
        routed[live.name] = share = []
        handled = live.cls.handlers
        if live.cls.records:
            topics = handled_topics(live.cls)
            share.extend((n, e if type(e) in handled or (isinstance(e, Undecodable) and e.topic in topics) else None)
                         for n, e in events)
            continue
        for cls in handled:
            by_type.setdefault(cls, []).append(share)
            by_topic.setdefault(topic_of(cls), []).append(share)
    for pair in events:
        event = pair[1]
        for share in (by_topic.get(event.topic, ()) if isinstance(event, Undecodable) else by_type.get(type(event), ())):
            share.append(pair)
    for live in lives:
        share = routed[live.name]
        if share and share[0][0].id <= live.position:
            routed[live.name] = [(n, e) for n, e in share if n.id > live.position]
    return routed


def moved(catalog: Catalog, lives: Sequence[LiveGeneration]) -> None:
    """Move the positions of these generations to what they applied (`pending`), in one statement; each
    only from the position this runner left it at, or none at all (`LostTurn`)."""
    moving = [live for live in lives if live.pending != live.position]
    if moving and catalog.move([(live.name, live.generation.gen, live.position, live.pending)
                                for live in moving]) != len(moving):
        raise LostTurn(f"projection {', '.join(live.name for live in moving)} moved on or was retired elsewhere")


def _took(live: LiveGeneration, events: Sequence[tuple[Any, Any]], last: int, caught_up: bool) -> bool:
    """`live.take`, with any failure but a passing one blamed on that read model."""
    with blamed(live, last):
        return live.take(events, last, caught_up)


def _applied(live: LiveGeneration, events: Sequence[tuple[Any, Any]], last: int, caught_up: bool) -> None:
    """`live.apply`, with any failure but a passing one (the database away) blamed on that read model."""
    with blamed(live, last):
        live.apply(events, last, caught_up)


def _without_nul(stored: Any) -> Any:
    """The stored event with every NUL character in its strings replaced by U+FFFD: PostgreSQL's text
    cannot hold NUL, and a read model must be able to show any text the store holds (the store itself
    keeps the original, which the history and the feed give)."""
    state = stored.state
    if b"\\u0000" not in state:
        return stored
    return dataclasses.replace(stored, state=_ESCAPED_NUL.sub(rb"\1\\ufffd", state))


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
        # Woken by a commit of this process's ledger, so the embedded default needs no poll interval.
        self._written = threading.Event()
        ledger.on_commit(self._written.set)
        self._moved_listeners: list[Callable[[], None]] = []
        #: Writing each read model's rows in a round trip of its own (`_write`): finding whose were refused.
        self._one_by_one = False
        self._channel = read_models_channel(self.db.schema, prefix) if self.db.dialect == "postgres" else None
        self._next_close = 0.0
        #: What keeps this runner from following the store, while it does (None: it follows).
        self.trouble: str | None = None

    def wake(self) -> None:
        """Events were stored by another process (the server this one follows beside says so): step now
        rather than at the next poll."""
        self._written.set()

    def on_moved(self, listener: Callable[[], None]) -> None:
        """Call `listener` after each commit that moved the read models (readers in this process wait on it)."""
        self._moved_listeners.append(listener)

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
            halted = {h.gen for h in self.catalog.halts() if h.name == projection.name}
            current = [g for g in self.catalog.generations(projection.name)
                       if g.state != "retired" and g.built_by(projection)]
            # A build halted at an event never catches up: follow the serving generation, not it.
            current = [g for g in current if not (g.state == "building" and g.gen in halted)] or current
            if fresh or not current:
                generation = self.catalog.create(projection)
            else:
                generation = current[-1]
        self.generations[projection.name] = LiveGeneration(self.catalog, projection, generation, self.settings)

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

    def _decoded(self, notifications: Sequence[Any], wanted: set[str]) -> list[tuple[Any, Any]]:
        """(notification, event) of a batch: decoded only where some projection handles the topic
        (receipts are half the log); an event that cannot be decoded fails those projections, there."""
        decoded = []
        for n in notifications:
            event = None
            if n.topic in wanted:
                try:
                    event = self.ledger.decode(_without_nul(n))
                except Exception as error:  # noqa: BLE001 - stops the read models that need it, loudly
                    event = Undecodable(n.topic, error)
            decoded.append((n, event))
        return decoded

    def step(self, batch_size: int | None = None) -> int:
        """Apply the next batch to every owned, working projection. Returns events read.

        A projection that fails on the batch is left out of it (the others go on, the batch is
        applied again without it) and then finds, alone, the event it cannot apply: it stops there,
        halted, until that event applies or an operator records the decision to skip it."""
        self._refresh()
        owned = [w for w in self.generations.values() if w.name in self._owned]
        for live in owned:
            if live.halt is not None or live.isolating:
                try:
                    self._recover(live, batch_size or self.batch_size)
                except LostTurn as lost:
                    return self._lost(lost)
        live_generations = [w for w in owned if w.halt is None and not w.isolating]
        if not live_generations:
            return 0
        head = self.ledger.head()
        start = min(w.position for w in live_generations)
        notifications = self._read_after(start, batch_size or self.batch_size)
        # Positions still move over every notification, so a batch of receipts alone advances the tracking too.
        events = self._decoded(notifications, set().union(*(handled_topics(live.cls) for live in live_generations)))
        caught_up = len(notifications) < (batch_size or self.batch_size)
        working = live_generations if events else [w for w in live_generations if w.unsettled and caught_up]
        if working:
            try:
                with self.db.transaction():
                    last = notifications[-1].id if notifications else 0
                    routed = _route(events, working)
                    taken = [live for live in working if _took(live, routed[live.name], last, caught_up)]
                    self._write([live for live in taken if live.settles])  # what they settle from
                    for live in taken:
                        live.settle()
                    self._write(taken)
                    moved(self.catalog, working)
                    if self._channel is not None:  # readers in other processes: delivered on commit
                        self.db.execute("SELECT pg_notify(?, '')", [self._channel])
            except ProjectionFailed as failure:
                for live in working:
                    live.rolled_back()
                log.warning("%s; applying its events one by one to find the one it cannot apply", failure)
                self.generations[failure.name].isolating = True
                self._ahead = None
                return self.step(batch_size)  # the others go on without it
            except Tangled as tangled:
                for live in working:
                    live.rolled_back()
                log.warning("the read models' writes were refused (%s); writing each alone to find whose", tangled)
                self._one_by_one, self._ahead = True, None
                try:
                    return self.step(batch_size)
                finally:
                    self._one_by_one = False
            except LostTurn as lost:
                return self._lost(lost)
            except BaseException:
                for live in working:
                    live.rolled_back()
                raise
            for live in working:
                live.committed()
            self._moved()
        for live in live_generations:
            if live.position < head or live.unsettled:
                continue
            if live.cls.defer_indexes and not live.indexed:
                with self.db.transaction():
                    self.catalog.index(live.cls, live.generation.gen)
                live.indexed = True
            if live.generation.state == "building":
                with self.db.transaction():
                    self.catalog.swap_in(live.cls, live.generation.gen)
                live.generation.state = "active"
        return len(events)

    def _write(self, lives: Sequence[LiveGeneration]) -> None:
        """Write what these read models changed in one round trip, or each in its own while finding whose
        writes the database refused."""
        if self._one_by_one:
            for live in lives:
                flushed(self.db, [live])
        else:
            flushed(self.db, lives)

    def _lost(self, lost: LostTurn) -> int:
        log.warning("%s; re-reading positions", lost)
        self.generations.clear()
        if self.db.dialect == "postgres":
            self._owned.clear()
        return 0

    def _moved(self) -> None:
        for listener in self._moved_listeners:
            listener()

    # --- a read model that cannot apply an event ----------------------------------------------

    def _recover(self, live: LiveGeneration, limit: int) -> None:
        """Apply one read model's next events alone, each in a transaction of its own: up to the event
        it cannot apply (it halts there, or stays halted), or, all applied, back among the others."""
        if live.halt is not None and time.monotonic() < live.next_try and not self._skip_decided(live):
            return
        notifications = self.ledger.notifications_after(live.position, limit)
        share = _route(self._decoded(notifications, handled_topics(live.cls)), [live])[live.name]
        for pair in share:
            if pair[0].id in live.skipping:
                continue
            failure = self._alone(live, [pair], pair[0].id, False)
            if failure is None or self._skip_decided(live, pair[0].id):
                continue
            if pair[0].id - 1 > live.position:  # all before it applied: readers are told exactly that
                self._alone(live, [], pair[0].id - 1, False)  # (what would fail here is this event's to answer for)
            self._halt(live, pair, failure)
            return
        if notifications:
            # Settling once caught up is derived work of its own: what fails there halts it too, never the runner.
            failure = self._alone(live, [], notifications[-1].id, len(notifications) < limit)
            if failure is not None:
                self._halt(live, (notifications[-1], None), failure)
                return
        if live.halt is not None:
            with self.db.transaction():
                self.catalog.resume(live.name, live.generation.gen)
            log.warning("projection %s: applies again from position %d (it was halted at event %d)",
                        live.name, live.position, live.halt.event_position)
        live.halt, live.isolating, live.backoff = None, False, RETRY_FIRST_SECONDS

    def _alone(self, live: LiveGeneration, events: list[tuple[Any, Any]], last: int,
               caught_up: bool) -> ProjectionFailed | None:
        """Apply to one read model in a transaction of its own; what it cannot apply is returned, undone."""
        try:
            with self.db.transaction():
                _applied(live, events, last, caught_up)
                moved(self.catalog, [live])
        except ProjectionFailed as failure:
            live.rolled_back()
            return failure
        except BaseException:
            live.rolled_back()
            raise
        live.committed()
        self._moved()
        return None

    def _skip_decided(self, live: LiveGeneration, position: int | None = None) -> bool:
        """Has an operator decided this read model goes on without the event at `position` (default:
        the one it is halted at)? Then it will, from now on, and the log says so."""
        if position is None:
            if live.halt is None:
                return False
            position = live.halt.event_position
        if position in live.skipping:
            return True
        decision = self.ledger.skip_decision(live.name, position)
        if decision is None:
            return False
        live.skipping.add(position)
        log.warning("projection %s: goes on without the event at position %d (%s), as %s decided: %s",
                    live.name, position, decision.event_type, decision.audit.user, decision.reason)
        return True

    def _halt(self, live: LiveGeneration, pair: tuple[Any, Any], failure: ProjectionFailed) -> None:
        stored, event = pair
        error = printable(failure.error)
        what = (event.topic if isinstance(event, Undecodable) else type(event).__qualname__) if event is not None \
            else failure.event_type if failure.event_type == "settle" else stored.topic
        earlier = live.halt if live.halt is not None and live.halt.event_position == stored.id else None
        if earlier is None:
            live.backoff = RETRY_FIRST_SECONDS
        live.halt = Halt(live.name, live.generation.gen, live.position, stored.id, what, error,
                         earlier.since if earlier else datetime.now(timezone.utc).isoformat(timespec="seconds"),
                         earlier.retries + 1 if earlier else 0)
        with self.db.transaction():
            self.catalog.halt(live.halt)
        live.next_try = time.monotonic() + live.backoff
        log.error("projection %s halted at position %d: it cannot apply the event at position %d (%s): %s; "
                  "the other read models go on; it tries again in %.0f s (attempt %d); to go on without that event: "
                  "yaosu projections skip %s --position %d --reason '...'", live.name, live.position, stored.id,
                  what, error, live.backoff, live.halt.retries + 1, live.name, stored.id)
        live.backoff = min(live.backoff * 2, RETRY_MOST_SECONDS)

    @property
    def settling(self) -> bool:
        """Is derived work left (`Projection.settle`) that the next steps do, events or not?"""
        return any(live.unsettled and live.halt is None and not live.isolating for live in self.generations.values())

    def run_until_caught_up(self, progress: Callable[[int], None] | None = None, batch_size: int | None = None) -> int:
        total = 0
        while (n := self.step(batch_size)) or self.settling:
            total += n
            if progress is not None and n:
                progress(n)
        return total

    def run_forever(self) -> None:
        """Follow the store until `stop()`; survive the database going away and coming back, and keep
        going, loudly, through anything else that fails outside a read model (`trouble` says what)."""
        def follow() -> None:
            self._written.clear()
            try:
                read = self.step()
            except TRANSIENT:
                raise
            except Exception as error:  # a fault of the runner itself: never a silent stop
                self.trouble = printable(error)
                log.exception("the projections runner failed (%s); it starts again in %.0f s", self.trouble,
                              RETRY_FIRST_SECONDS)
                self.stopping.wait(RETRY_FIRST_SECONDS)
                self._reset_connections()
                return
            self.trouble = None
            if read < self.batch_size and not self.settling:
                self._close_days()
                self._wait()

        try:
            keep_running(follow, self.stopping, log, recover=self._reset_connections)
        finally:
            if not self.stopping.is_set():
                self.trouble = "the projections runner stopped"

    def _close_days(self) -> None:
        """Checkpoint the audit chain's closed days, looked at once a minute while following."""
        live = self.generations.get(HashChain.name)
        now = time.monotonic()
        if live is None or live.generation.state != "active" or now < self._next_close:
            return
        self._next_close = now + CLOSE_DAYS_SECONDS
        tables = {t.name: self.catalog.physical(HashChain.name, live.generation.gen, t.name) for t in HashChain.tables}
        record_checkpoints(self.ledger, self.db, tables, city_today())

    def _wait(self) -> None:
        if self.db.dialect == "sqlite":
            # Written through this process: woken at once; by another process: seen within the poll.
            self._written.wait(self.poll_seconds)
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
        self._written.set()

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
