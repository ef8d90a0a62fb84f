"""Opening the event store: settings → `Ledger`, its tables made once even when processes start together."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from typing import Callable, Iterator

import psycopg
from psycopg.sql import SQL, Identifier

from infra.settings import Settings, StoreLocation
from infra.turns import lock_key
from service.ledger import Ledger


def build_ledger(settings: Settings, *,
                 advisor: Callable[[int, str, Decimal, date], list[tuple[str, Decimal]] | None] | None = None) -> Ledger:
    # `advisor`: the allocation advice of the read side (decision 6); the service layer's port takes it over.
    env = settings.persistence_env()
    if settings.location.kind != "postgres":
        return Ledger(env=env, policy=settings.policy)
    with schema_lock(settings.location):
        return Ledger(env=env, policy=settings.policy)  # creates the tables on first use


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
