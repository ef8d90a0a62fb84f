"""The composition root: settings → event store → `Ledger`."""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from typing import Iterator

from infra.ledger import Ledger
from infra.settings import Settings


def build_ledger(settings: Settings) -> Ledger:
    env = settings.persistence_env()
    if env["PERSISTENCE_MODULE"] != "eventsourcing.postgres":
        return Ledger(env=env)
    with schema_lock(env):
        return Ledger(env=env)  # creates the tables on first use


@contextmanager
def schema_lock(env: dict[str, str]) -> Iterator[None]:
    """Create the schema, and let one process at a time create tables in it.

    Processes started together (two consumers, say) would otherwise race on CREATE TABLE IF NOT
    EXISTS, which PostgreSQL answers with "tuple concurrently updated".
    """
    import psycopg
    from psycopg.sql import SQL, Identifier

    schema = env.get("POSTGRES_SCHEMA", "public")
    key = int.from_bytes(hashlib.sha256(f"yaosu-schema:{schema}".encode()).digest()[:8], "big", signed=True)
    with psycopg.connect(
        dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"] or None, autocommit=True,
    ) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", [key])
        try:
            conn.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(schema)))
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [key])
