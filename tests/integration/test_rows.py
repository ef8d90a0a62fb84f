"""The row cache on real stores: whatever a batch puts, deletes, reads, commits or rolls back, and
however small the cache, the table and every read equal a plain dict (new rows go by `COPY`,
misses of keys never written are answered without a query)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.settings import Settings
from projections import model
from projections.db import Db, NotBuilt
from projections.model import Rows, Table, Written
from service.bootstrap import build_ledger
from service.ledger import Ledger
from tests.conftest import fresh_store

TABLE = Table("kv", {"k": "TEXT", "n": "INTEGER", "v": "BIGINT"}, key=("k", "n"))
OPS = st.lists(st.tuples(st.sampled_from(["put", "delete", "get"]), st.sampled_from("abc"), st.integers(0, 12),
                         st.integers(-(2**40), 2**40)), max_size=25)
BATCHES = st.lists(st.tuples(OPS, st.booleans()), min_size=1, max_size=8)


@pytest.fixture
def db(ledger: Ledger, settings: Settings) -> Iterator[Db]:  # the ledger makes the store (and its schema)
    connection = Db(settings)
    yield connection
    connection.close()


@pytest.fixture
def pg_db(pg_url: str, tmp_path: Path) -> Iterator[Db]:
    settings = Settings(store=fresh_store("postgres", tmp_path, pg_url))
    build_ledger(settings).close()  # makes the schema
    connection = Db(settings)
    yield connection
    connection.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=BATCHES, empty=st.booleans())
def test_rows_equal_a_dict(db: Db, batches: list[tuple[list[tuple[str, str, int, int]], bool]], empty: bool,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model, "MAX_CACHED_ROWS", 4)  # trimmed after nearly every batch
    physical = f"kv_{uuid.uuid4().hex[:12]}"
    for statement in TABLE.create(physical):
        db.execute(statement)
    committed: dict[tuple[str, int], int] = {}
    if not empty:  # rows this runner did not write: it must ask the table for them
        committed = {("a", n): n for n in range(0, 12, 3)}
        db.copy(physical, TABLE.columns, [(k, n, v) for (k, n), v in committed.items()])
    rows = Rows(TABLE, physical, db, empty=empty)
    for ops, commit in batches:
        working = dict(committed)
        try:
            with db.transaction():
                for op, k, n, v in ops:
                    if op == "put":
                        rows.put({"k": k, "n": n, "v": v})
                        working[(k, n)] = v
                    elif op == "delete":
                        rows.delete(k, n)
                        working.pop((k, n), None)
                    else:
                        found = rows.get(k, n)
                        assert (found["v"] if found else None) == working.get((k, n))
                rows.flush()
                if not commit:
                    raise RuntimeError("roll back")
        except RuntimeError:
            rows.forget()
        else:
            committed = working
        stored = {(k, n): v for k, n, v in db.query(f"SELECT k, n, v FROM {physical}")}
        assert stored == committed


@given(st.lists(st.tuples(st.text(max_size=8), st.integers()), max_size=3000))
def test_a_key_written_is_always_among_the_written(keys: list[tuple[str, int]]) -> None:
    written = Written(capacity=64)  # small, so the filter grows by layers
    for key in keys:
        written.add(key)
    assert all(key in written for key in keys)


def test_a_query_for_columns_a_serving_generation_lacks_is_not_built_yet_on_both_stores(db: Db) -> None:
    """While a new version of a read model (with another column) is being built, the serving generation
    cannot answer the new code's query: 503 `read_model_not_ready` on either store, never a 500."""
    db.execute("CREATE TABLE IF NOT EXISTS rm_shape_probe (position BIGINT)")
    with pytest.raises(NotBuilt):
        db.query("SELECT detail_code FROM rm_shape_probe")
    with pytest.raises(NotBuilt):
        db.query("SELECT position FROM rm_no_such_table")


#: Every column type a read model has, each value as PostgreSQL gets it packed in one JSON parameter.
TYPED = Table("typed", {"k": "TEXT", "t": "TEXT", "d": "DATE", "x": "NUMERIC", "i": "INTEGER", "b": "BIGINT"},
              key=("k",))
TEXTS = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)  # what PG stores
TYPED_ROWS = st.lists(st.fixed_dictionaries({
    "k": TEXTS,
    "t": st.none() | TEXTS | st.sampled_from(['{"a": 1}', "[1,2]", "null", "\\u0041", "'; --", "要素沉淀"]),
    "d": st.none() | st.dates(),
    "x": st.none() | st.decimals(allow_nan=False, allow_infinity=False, min_value=-10**15, max_value=10**15)
    | st.sampled_from([Decimal("1E+3"), Decimal("-0.000001"), Decimal("12.50")]),
    "i": st.none() | st.integers(-(2**31), 2**31 - 1),
    "b": st.none() | st.integers(-(2**63), 2**63 - 1),
}), max_size=2 * model.COPY_FROM, unique_by=lambda row: row["k"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=TYPED_ROWS, second=TYPED_ROWS)
def test_every_value_reads_back_as_written_on_postgresql(pg_db: Db, first: list[dict], second: list[dict]) -> None:
    """Written new (a few in the upsert, many by `COPY`), written over, prefetched, deleted: each value of
    each type reads back equal (texts of any script, or looking like JSON; decimals exactly, their scale kept)."""
    physical = f"typed_{uuid.uuid4().hex[:12]}"
    for statement in TYPED.create(physical):
        pg_db.execute(statement)
    writer = Rows(TYPED, physical, pg_db, empty=True)
    expected: dict[str, dict] = {}
    for batch in (first, second):
        with pg_db.transaction():
            for row in batch:
                writer.put(row)
                expected[row["k"]] = row
            for gone in list(expected)[::3]:
                writer.delete(gone)
                expected.pop(gone)
            writer.flush()
    stored = {row["k"]: row for row in map(TYPED.decode, pg_db.query(f"SELECT {', '.join(TYPED.columns)} FROM {physical}"))}
    assert stored == expected
    def scale(x: Decimal | None) -> int | None:  # numeric keeps digits after the point, not an exponent above
        return None if x is None else -min(int(x.as_tuple().exponent), 0)

    assert {k: scale(row["x"]) for k, row in stored.items()} == {k: scale(row["x"]) for k, row in expected.items()}
    reader = Rows(TYPED, physical, pg_db, empty=False)
    reader.prefetch([(k,) for k in [*expected, "never written"]])
    assert {k: reader.get(k) for k in expected} == expected and reader.get("never written") is None
