"""Opening the event store: settings → `Ledger`, its tables made once even when processes start together."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import psycopg
from psycopg.sql import SQL, Identifier

from infra.settings import Settings, StoreLocation
from infra.turns import lock_key
from service.ledger import Ledger
from service.unit_of_work import Advisor, no_advice


def build_ledger(settings: Settings, *, advisor: Advisor | None = None) -> Ledger:
    """The ledger of these settings; `advisor` gives the allocation advice an `allocation.adopted` is
    compared with (v1.2; the composition root passes the read model's, None: no advice)."""
    env = settings.persistence_env()
    options = {"policy": settings.policy, "thresholds": settings.thresholds, "advisor": advisor or no_advice}
    if settings.location.kind != "postgres":
        return Ledger(env=env, **options)
    with schema_lock(settings.location):
        return Ledger(env=env, **options)  # creates the tables on first use


@contextmanager
def schema_lock(where: StoreLocation) -> Iterator[None]:
    """Create the schema, and let one process at a time create tables in it.

    Processes started together (two consumers, say) would otherwise race on CREATE TABLE IF NOT
    EXISTS, which PostgreSQL answers with "tuple concurrently updated".
    """
    key = lock_key(f"yaosu-schema:{where.schema}")
    with psycopg.connect(**where.conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", [key])
        try:
            conn.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(where.schema)))
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [key])
