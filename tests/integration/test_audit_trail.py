"""The audit trail on both stores: the search answers as a filter over the whole history does; the
hash chain catches a stored event changed behind the application's back, at exactly its position,
and the checkpoint it contradicts; the store refuses to change or remove an event."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from typing import Any, Iterator

import psycopg
import pytest

from consumers.relay import BOOKKEEPING
from domain.reference import CITY_TZ
from infra.chain import GENESIS, link
from infra.presenter import event_json
from infra.settings import Settings
from projections import audit, chain
from projections.read import ReadModels
from projections.runner import Runner
from service.ledger import Ledger
from tests.conftest import submit
from tests.portal import admitted
from tests.readmodels import demo_store


@pytest.fixture
def loaded(settings: Settings) -> Iterator[tuple[Ledger, ReadModels]]:
    with demo_store(settings, projects=25) as loaded:
        yield loaded


def history(ledger: Ledger) -> list[dict[str, Any]]:
    """Every domain event, with what each filter of the search means, computed from the events alone:
    a project's events are those about it (its own, its quota draws) and those of its history."""
    subjects: dict[int, str] = {}
    codes = {i.event.audit.subject for i in ledger.feed(0, 10**6).items
             if i.event is not None and type(i.event).__qualname__ == "Project.Registered"}
    for code in codes:
        for item in ledger.history(code):
            subjects[item.position] = code
    rows = []
    for item in ledger.feed(0, 10**6).items:
        if item.topic.startswith(BOOKKEEPING) or item.event is None:
            continue
        e: Any = item.event
        a = getattr(e, "audit", None)
        about = event_json(item)["subject"] or subjects.get(item.position)
        recorded = e.timestamp.astimezone(CITY_TZ).date()
        happened = a.business_date if a else recorded
        rows.append({"position": item.position, "department": a.department if a else None,
                     "actor": a.user if a else None, "submitted_by": a.submitted_by if a else None,
                     "type": a.message_type if a else None, "message_id": a.message_id if a else None,
                     "project": about, "district": ledger.district_of(e),
                     "happened": happened, "recorded": recorded, "late": (recorded - happened).days})
    return rows


def search(reads: ReadModels, **filters: Any) -> list[int]:
    """Every position the search gives, page by page."""
    found, after = [], 0
    with reads.snapshot(audit.AuditTrail) as view:
        while page := audit.searched(view.of(audit.AuditTrail), filters, after, 37):
            found += [row["position"] for row in page]
            after = page[-1]["position"]
    return found


def test_search_by_each_filter_equals_a_filter_over_the_full_history(loaded: tuple[Ledger, ReadModels]) -> None:
    ledger, reads = loaded
    rows = history(ledger)
    assert search(reads) == [r["position"] for r in rows]
    pick = random.Random(7)
    checked = Counter[str]()
    for name in ("department", "actor", "submitted_by", "type", "project", "district", "message_id"):
        values = sorted({r[name] for r in rows if r[name] is not None})
        for value in pick.sample(values, min(4, len(values))):
            assert search(reads, **{name: value}) == [r["position"] for r in rows if r[name] == value], (name, value)
            checked[name] += 1
    happened = sorted({r["happened"] for r in rows})
    first, last = happened[len(happened) // 3], happened[2 * len(happened) // 3]
    assert search(reads, **{"from": first, "to": last}) == [r["position"] for r in rows
                                                            if first <= r["happened"] <= last]
    today = rows[-1]["recorded"]
    assert search(reads, recorded_from=today, recorded_to=today) == [r["position"] for r in rows
                                                                     if r["recorded"] == today]
    # The demo is recorded as portals send: the day a message happened or a few days after.
    assert search(reads, recorded_to=today - timedelta(days=1)) == [r["position"] for r in rows
                                                                    if r["recorded"] <= today - timedelta(days=1)]
    for late in sorted({r["late"] for r in rows})[::50]:
        assert search(reads, late_days=late) == [r["position"] for r in rows if r["late"] >= late]
    some = pick.choice([r for r in rows if r["department"] and r["project"]])
    both = {"department": some["department"], "project": some["project"], "late_days": 1}
    assert search(reads, **both) == [r["position"] for r in rows if r["department"] == some["department"]
                                     and r["project"] == some["project"] and r["late"] >= 1]
    assert len(checked) == 7 and len(search(reads, late_days=1)) > 0


def chain_tables(reads: ReadModels) -> tuple[Any, dict[str, str]]:
    with reads.snapshot(chain.HashChain) as view:
        return view.db, view.tables(chain.HashChain)


def tamper(settings: Settings, ledger: Ledger, position: int) -> None:
    """Change one stored event's state in place, as a superuser could: the trigger disabled meanwhile."""
    where = settings.location
    if where.kind == "postgres":
        table = f"{where.schema}.{ledger.recorder.events_table_name}"
        with psycopg.connect(**where.conninfo, autocommit=True) as conn, conn.transaction():
            conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            # One space more at the end: the JSON still reads, the meaning looks the same.
            conn.execute(f"UPDATE {table} SET state = state || '\\x20'::bytea WHERE notification_id = %s", [position])
            conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    else:
        conn = sqlite3.connect(where.sqlite_path)
        try:
            triggers = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
            for name, _ in triggers:
                conn.execute(f"DROP TRIGGER {name}")
            conn.execute(f"UPDATE {ledger.recorder.events_table_name} SET state = CAST(state || ' ' AS BLOB) "
                         "WHERE rowid = ?", [position])
            for _, sql in triggers:
                conn.execute(sql)
            conn.commit()
        finally:
            conn.close()


def test_verify_names_the_changed_position_and_the_checkpoint_it_contradicts(
        loaded: tuple[Ledger, ReadModels], settings: Settings) -> None:
    ledger, reads = loaded
    db, tables = chain_tables(reads)
    today = ledger.feed(0, 1).items[0].event.timestamp.astimezone(CITY_TZ).date()  # type: ignore[union-attr]
    assert chain.record_checkpoints(ledger, db, tables, today) == []  # the day is not closed yet
    assert chain.record_checkpoints(ledger, db, tables, today + timedelta(days=1)) == [today]
    assert chain.record_checkpoints(ledger, db, tables, today + timedelta(days=1)) == []  # once per day
    Runner(ledger, settings).run_until_caught_up()
    db, tables = chain_tables(reads)
    assert chain.last_checkpoint(db, tables)["day"] in (today, today.isoformat())  # type: ignore[index]

    clean = chain.verify(ledger, db, tables)
    assert clean.ok and clean.checked == ledger.head() and clean.head_position == ledger.head()
    expected = GENESIS
    for n, originator_id, version, topic, state in ledger.stored_after(0, 10**7):
        expected = link(expected, n, originator_id, version, topic, state)
    assert clean.head_hash == expected.hex()
    assert chain.verify(ledger, db, tables, start=clean.head_position // 2).ok

    [checkpoint] = chain.checkpoints(ledger)
    position = random.Random(3).randrange(1, checkpoint.position)
    tamper(settings, ledger, position)
    found = chain.verify(ledger, db, tables)
    assert (found.first_bad, found.contradicts) == (position, checkpoint), found.why
    assert not chain.verify(ledger, db, tables, start=position - 1).ok
    # Without the links kept beside the log, the checkpoint alone still catches it (where it stands).
    alone = chain.verify(ledger, None, None)
    assert (alone.first_bad, alone.contradicts) == (checkpoint.position, checkpoint)

    chain.remember(db, found)
    assert chain.last_verified(db)["first_bad"] == position  # type: ignore[index]


def test_yaosu_audit_verify_confirms_the_head_or_fails_naming_the_position(
        loaded: tuple[Ledger, ReadModels], settings: Settings, store: str) -> None:
    ledger, _ = loaded
    env = {"YAOSU_STORE": store, "PATH": "/usr/bin:/bin"}
    ok = subprocess.run([sys.executable, "-m", "yaosu", "audit", "verify"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert f"verified positions 1-{ledger.head()}" in ok.stdout and "events/s" in ok.stdout
    tamper(settings, ledger, 17)
    bad = subprocess.run([sys.executable, "-m", "yaosu", "audit", "verify"], env=env, capture_output=True, text=True)
    assert bad.returncode == 1 and "position 17" in bad.stdout, bad.stdout + bad.stderr


def test_the_store_refuses_to_change_or_remove_an_event(ledger: Ledger, settings: Settings, store: str) -> None:
    submit(ledger, *admitted("2021-620102-48-01-000001", "annual"))
    head = ledger.head()
    assert head > 0
    if settings.location.kind == "postgres":
        table = f"{settings.location.schema}.{ledger.recorder.events_table_name}"
        for statement in (f"UPDATE {table} SET state = state WHERE notification_id = %s",
                          f"DELETE FROM {table} WHERE notification_id = %s"):
            with ledger.recorder.datastore.get_connection() as conn:  # the application's own connection
                with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                    conn.execute(statement, [head])
                conn.rollback()
    else:
        conn = sqlite3.connect(settings.location.sqlite_path)
        try:
            table = ledger.recorder.events_table_name
            for statement in (f"UPDATE {table} SET state = state WHERE rowid = ?", f"DELETE FROM {table} WHERE rowid = ?"):
                with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                    conn.execute(statement, [head])
        finally:
            conn.close()
    assert ledger.head() == head and len(ledger.stored_after(0, 10**6)) == head
