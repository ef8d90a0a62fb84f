"""A store written by an earlier version: its events replay unchanged, and its read models rebuild.

The fixture `before-v1.1-policies` is a demo year written before the v1.1 policies (library gates,
warnings, re-escalation, responsible leaders on alerts, district rankings); `dump_store.py` beside
it says how it was made. Loaded into each store as it was stored, every project's audit trail must
read as it did then (fields added since may be added, none may change), and every read model must
build from it.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent

from infra.presenter import dumps, event_json
from infra.settings import Settings
from projections.catalog import PROJECTIONS
from projections.runner import Runner
from service.ledger import Ledger

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def load_fixture(ledger: Ledger, name: str) -> dict[str, Any]:
    lines = gzip.decompress((FIXTURES / f"{name}.events.jsonl.gz").read_bytes()).splitlines()
    stored = [orjson.loads(line) for line in lines]
    for start in range(0, len(stored), 500):
        ledger.recorder.insert_events([StoredEvent(originator_id=UUID(e["originator_id"]),
                                                   originator_version=e["originator_version"], topic=e["topic"],
                                                   state=e["state"].encode()) for e in stored[start:start + 500]])
    return orjson.loads(gzip.decompress((FIXTURES / f"{name}.history.json.gz").read_bytes()))  # type: ignore[no-any-return]


def as_then(now: Any, then: Any) -> Any:
    """`now` cut down to what `then` had: what was shown then must be shown the same way now."""
    if isinstance(then, dict) and isinstance(now, dict):
        return {key: as_then(now.get(key), value) for key, value in then.items()}
    if isinstance(then, list) and isinstance(now, list) and len(now) == len(then):
        return [as_then(n, t) for n, t in zip(now, then)]
    return now


def test_an_older_store_reads_the_same_and_its_read_models_rebuild(ledger: Ledger, settings: Settings) -> None:
    then = load_fixture(ledger, "before-v1.1-policies")
    assert len(then) > 20
    for code, trail in then.items():
        now = orjson.loads(dumps([event_json(i) for i in ledger.history(code)]))
        assert as_then(now, trail) == trail, code
        assert not any("render_error" in item for item in now)
    runner = Runner(ledger, settings)
    try:
        runner.run_until_caught_up()
        report = runner.status()
    finally:
        runner.close()
    assert {r["projection"] for r in report} == {p.name for p in PROJECTIONS}
    assert all(r["lag_events"] == 0 and r["state"] == "active" for r in report)
