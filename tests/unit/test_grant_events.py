"""GRANT_EVENTS is what the read models that count grants follow: every event that grants a factor is in it.

The map is derived from the `@grant_event` declarations; these tests apply every event of a project and
check that exactly the events that add a grant are in the map, each with the factor and the quantity the
grant it adds really has, so a grant event declared with plain `@event` fails here instead of silently
missing from the stages, factor ledger and sedimentation read models.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timezone
from decimal import Decimal
from itertools import count
from typing import Any

import pytest
from eventsourcing.domain import Aggregate, CanInitAggregate

from domain.audit import Audit
from domain.project import GRANT_EVENTS, Grant, Project, grant_event, grant_events

_message_ids = count()


def audit() -> Audit:
    return Audit(message_id=f"m-{next(_message_ids)}", message_type="test", source="test",
                 occurred_at=datetime(2026, 3, 2, 10, tzinfo=timezone.utc), department="ndrc", user="u",
                 submitted_by="test", subject="P")


def registered() -> Project:
    return Project(code="P", name="p", district="d", sector="s", department="ndrc", owner="o",
                   total_investment=Decimal(10), planned_start=date(2026, 1, 1),
                   planned_completion=date(2027, 1, 1), revenue_generating=False, priority="normal", nature=None,
                   audit=audit())


#: A value for each parameter type an event carries; a new type fails `sample` clearly, to be added here.
SAMPLES: dict[str, Any] = {"str": "x", "Decimal": Decimal("2.5"), "date": date(2026, 3, 1), "int": 2026,
                           "bool": True}


def sample(event_class: type, field: dataclasses.Field[Any]) -> Any:
    if field.name == "audit":
        return audit()
    annotation = str(field.type).split(" | ")[0]
    assert annotation in SAMPLES, f"{event_class.__name__}.{field.name}: no sample for {field.type!r}"
    return SAMPLES[annotation]


EVENT_FIELDS = {"originator_id", "originator_version", "timestamp"}
PROJECT_EVENTS = sorted((cls for cls in vars(Project).values()
                         if isinstance(cls, type) and issubclass(cls, Project.Event)
                         and not issubclass(cls, CanInitAggregate) and cls is not Project.Event),
                        key=lambda cls: cls.__name__)


def test_the_project_events_are_all_found() -> None:
    # Guards the discovery below: a rename of the library's base class must not make the next test vacuous.
    assert len(PROJECT_EVENTS) >= 20
    assert set(GRANT_EVENTS) <= set(PROJECT_EVENTS)


@pytest.mark.parametrize("event_class", PROJECT_EVENTS, ids=lambda cls: cls.__name__)
def test_an_event_grants_a_factor_exactly_when_grant_events_says_so(event_class: type) -> None:
    project = registered()
    values = {f.name: sample(event_class, f) for f in dataclasses.fields(event_class) if f.name not in EVENT_FIELDS}
    project.trigger_event(event_class, **values)
    added: list[Grant] = list(project.grants.values())
    if event_class not in GRANT_EVENTS:
        assert added == [], f"{event_class.__name__} grants {added[0].factor} but is not declared @grant_event"
        return
    factor, quantity = GRANT_EVENTS[event_class]
    assert [(g.factor, g.quantity) for g in added] == [(factor, values[quantity] if quantity else None)]


def test_a_quantity_that_is_not_an_attribute_of_the_event_fails_where_the_map_is_derived() -> None:
    class Pool(Aggregate):
        @grant_event("MisDeclared", "emission", quantity="tones")
        def advance(self, tonnes: Decimal, audit: Audit) -> None: ...

    with pytest.raises(TypeError, match="no attribute 'tones'"):
        grant_events(Pool)
