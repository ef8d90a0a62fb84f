"""The row cache on real stores: whatever a batch puts, deletes, reads, commits or rolls back, and
however small the cache, the table and every read equal a plain dict (new rows go by `COPY`,
misses of keys never written are answered without a query)."""

from __future__ import annotations

import uuid
from typing import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.settings import Settings
from projections import model
from projections.db import Db, NotBuilt
from projections.model import Rows, Table, Written
from service.ledger import Ledger

TABLE = Table("kv", {"k": "TEXT", "n": "INTEGER", "v": "BIGINT"}, key=("k", "n"))
OPS = st.lists(st.tuples(st.sampled_from(["put", "delete", "get"]), st.sampled_from("abc"), st.integers(0, 12),
                         st.integers(-(2**40), 2**40)), max_size=25)
BATCHES = st.lists(st.tuples(OPS, st.booleans()), min_size=1, max_size=8)


@pytest.fixture
def db(ledger: Ledger, settings: Settings) -> Iterator[Db]:  # the ledger makes the store (and its schema)
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
