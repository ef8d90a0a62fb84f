"""The composition root: settings → event store → `Ledger`."""

from __future__ import annotations

from infra.ledger import Ledger
from infra.settings import Settings


def build_ledger(settings: Settings) -> Ledger:
    env = settings.persistence_env()
    if "POSTGRES_SCHEMA" in env:
        ensure_schema(env)
    return Ledger(env=env)


def ensure_schema(env: dict[str, str]) -> None:
    # The library creates tables, not schemas: make the schema first.
    import psycopg
    from psycopg.sql import SQL, Identifier

    with psycopg.connect(
        dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"] or None, autocommit=True,
    ) as conn:
        conn.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(env["POSTGRES_SCHEMA"])))
