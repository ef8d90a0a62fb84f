"""The catalogue of read models (读模型目录): which projections exist, and where each one's tables are.

Each projection's tables are named `<prefix>_<name>_g<gen>_<table>`, one set per generation;
the generations table says which generation serves, which is being built, and each one's
position in the store.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Sequence

from projections.audit import AuditTrail
from projections.chain import HashChain
from projections.cockpit import Cockpit
from projections.db import Db, NotBuilt
from projections.directory import Directory
from projections.factor_ledger import FactorLedger
from projections.investment import Investment
from projections.libraries import Libraries
from projections.model import Projection
from projections.parked import Parked
from projections.sedimentation import Sedimentation
from projections.stages import Stages
from projections.supervision import Supervision
from projections.warnings import Warnings
from service.ledger import Ledger

log = logging.getLogger("yaosu.projections")

PROJECTIONS: tuple[type[Projection], ...] = (Libraries, Stages, FactorLedger, Investment, Sedimentation, Parked,
                                               Warnings, AuditTrail, HashChain, Supervision, Directory,
                                               Cockpit)
BY_NAME = {p.name: p for p in PROJECTIONS}


@dataclass
class Generation:
    name: str
    gen: int
    version: int
    position: int
    state: str  # building | active | retired
    shape: str | None = None  # `Projection.shape()` of the tables it was made with

    def built_by(self, projection: type[Projection]) -> bool:
        """Was it built by this code: the same version, and tables of the same shape?"""
        return self.version == projection.version and self.shape == projection.shape()


@dataclass(frozen=True)
class Halt:
    """A read model stopped by a stored event it cannot apply (停止): where, on what, and why.

    Kept in the read-model database, so every process serving the store sees it (`/readyz`,
    `/metrics`, the console), whichever process runs the projection.
    """

    name: str
    gen: int
    #: The last position the read model applied: it answers as of there.
    position: int
    #: The event it cannot apply, and what went wrong.
    event_position: int
    event_type: str
    error: str
    since: str
    retries: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"read_model": self.name, "generation": self.gen, "position": self.position,
                "event_position": self.event_position, "event_type": self.event_type, "error": self.error,
                "since": self.since, "retries": self.retries}


class Catalog:
    """Where each read model's tables are: the generations table and the physical names."""

    def __init__(self, db: Db, prefix: str = "rm") -> None:
        self.db, self.prefix = db, prefix
        self.meta = f"{prefix}_generations"
        with db.transaction():
            if db.dialect == "postgres":  # processes starting together must not race on CREATE TABLE
                db.execute("SELECT pg_advisory_xact_lock(hashtext(?))", [f"{db.schema}:{self.meta}"])
            db.execute(f"CREATE TABLE IF NOT EXISTS {self.meta} (name TEXT, gen INTEGER, version INTEGER, "
                       "position BIGINT, state TEXT, shape TEXT, PRIMARY KEY (name, gen))")
            if "shape" not in db.columns(self.meta):  # made before generations had a shape
                db.execute(f"ALTER TABLE {self.meta} ADD COLUMN shape TEXT")
            db.execute(f"CREATE TABLE IF NOT EXISTS {self.halts_table} (name TEXT, gen INTEGER, position BIGINT, "
                       "event_position BIGINT, event_type TEXT, error TEXT, since TEXT, retries INTEGER, "
                       "PRIMARY KEY (name, gen))")

    @property
    def halts_table(self) -> str:
        return f"{self.prefix}_halts"

    def halts(self) -> list[Halt]:
        """The read models stopped at an event they cannot apply, of generations not retired."""
        rows = self.db.query(f"SELECT h.name, h.gen, h.position, h.event_position, h.event_type, h.error, h.since, "
                             f"h.retries FROM {self.halts_table} h JOIN {self.meta} g ON g.name = h.name "
                             "AND g.gen = h.gen WHERE g.state <> 'retired' ORDER BY h.name, h.gen")
        return [Halt(*row) for row in rows]

    def halt(self, halt: Halt) -> None:
        self.db.execute(f"DELETE FROM {self.halts_table} WHERE name = ? AND gen = ?", [halt.name, halt.gen])
        self.db.execute(f"INSERT INTO {self.halts_table} (name, gen, position, event_position, event_type, error, "
                        "since, retries) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [halt.name, halt.gen, halt.position, halt.event_position, halt.event_type, halt.error,
                         halt.since, halt.retries])

    def resume(self, name: str, gen: int) -> None:
        self.db.execute(f"DELETE FROM {self.halts_table} WHERE name = ? AND gen = ?", [name, gen])

    def physical(self, name: str, gen: int, table: str) -> str:
        return f"{self.prefix}_{name}_g{gen}_{table}"

    def generations(self, name: str | None = None) -> list[Generation]:
        where, params = ("WHERE name = ?", [name]) if name else ("", [])
        rows = self.db.query(f"SELECT name, gen, version, position, state, shape FROM {self.meta} {where} "
                             "ORDER BY name, gen", params)
        return [Generation(*row) for row in rows]

    def active(self, projection: type[Projection]) -> dict[str, str]:
        """Physical table names of the serving generation, for queries."""
        serving = [g for g in self.generations(projection.name) if g.state == "active"]
        if not serving:
            raise NotBuilt(f"the {projection.name} read model is not built yet")
        return {t.name: self.physical(projection.name, serving[-1].gen, t.name) for t in projection.tables}

    def create(self, projection: type[Projection]) -> Generation:
        existing = self.generations(projection.name)
        gen = max((g.gen for g in existing), default=0) + 1
        state = "building" if any(g.state == "active" for g in existing) else "active"
        for table in projection.tables:
            for statement in table.create(self.physical(projection.name, gen, table.name),
                                          indexed=not projection.defer_indexes):
                self.db.execute(statement)
        self.db.execute(f"INSERT INTO {self.meta} (name, gen, version, position, state, shape) VALUES (?, ?, ?, 0, ?, ?)",
                        [projection.name, gen, projection.version, state, projection.shape()])
        log.info("projection %s: generation %d (version %d) created, %s", projection.name, gen, projection.version, state)
        return Generation(projection.name, gen, projection.version, 0, state, projection.shape())

    def move(self, moves: Sequence[tuple[str, int, int, int]]) -> int:
        """Move generations' positions, each (name, gen, from, to) only if it is still at `from` and not
        retired, in one statement; how many moved."""
        values = ", ".join("(?, ?, ?, ?)" for _ in moves)
        return self.db.execute(
            f"UPDATE {self.meta} SET position = v.column4 FROM (VALUES {values}) AS v WHERE name = v.column1 "
            "AND gen = v.column2 AND position = v.column3 AND state <> 'retired'", [x for move in moves for x in move])

    def index(self, projection: type[Projection], gen: int) -> None:
        """Make a generation's secondary indexes (those a projection defers until it has caught up)."""
        for table in projection.tables:
            for statement in table.index(self.physical(projection.name, gen, table.name)):
                self.db.execute(statement)

    def swap_in(self, projection: type[Projection], gen: int) -> None:
        for old in self.generations(projection.name):
            if old.gen != gen and old.state != "retired":
                self.db.execute(f"UPDATE {self.meta} SET state = 'retired' WHERE name = ? AND gen = ?", [old.name, old.gen])
                for table in projection.tables:
                    self.db.execute(f"DROP TABLE IF EXISTS {self.physical(old.name, old.gen, table.name)}")
        self.db.execute(f"UPDATE {self.meta} SET state = 'active' WHERE name = ? AND gen = ?", [projection.name, gen])
        log.info("projection %s: generation %d is now serving", projection.name, gen)


def status(ledger: Ledger, catalog: Catalog) -> list[dict[str, Any]]:
    """Position, store head and lag (events and seconds behind) of every live generation, and where
    one is halted, at which event and why."""
    head = ledger.head()
    halted = {(h.name, h.gen): h for h in catalog.halts()}
    report = []
    for g in catalog.generations():
        if g.state == "retired":
            continue
        behind = max(head - g.position, 0)
        seconds = 0.0
        recorded = ledger.recorded_after(g.position) if behind else None
        if recorded is not None:
            seconds = max((datetime.now(timezone.utc) - recorded).total_seconds(), 0.0)
        report.append({"projection": g.name, "generation": g.gen, "version": g.version, "state": g.state,
                       "position": g.position, "head": head, "lag_events": behind, "lag_seconds": round(seconds, 3),
                       "current": g.name in BY_NAME and g.built_by(BY_NAME[g.name]),
                       "halted": halted[g.name, g.gen].as_json() if (g.name, g.gen) in halted else None})
    return report
