"""Today, in the city's time: the business date that "as of today" means."""

from __future__ import annotations

from datetime import date, datetime

from domain.reference import CITY_TZ


def city_today() -> date:
    return datetime.now(CITY_TZ).date()
