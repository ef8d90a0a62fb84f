"""An allocation that departs from the advice is listed among the warnings (`GET /v1/warnings`) once,
about no project, under the district it departs for; its pools' events carry the warning too."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from infra.settings import Settings
from projections import warnings
from projections.read import ReadModels
from projections.runner import Runner
from service.bootstrap import build_ledger
from tests.conftest import submit
from tests.unit.test_v12_messages import adopt


def test_an_allocation_departing_from_the_advice_is_listed_once_by_its_district(settings: Settings) -> None:
    def advisor(year: int, factor: str, total: Decimal, as_of: date) -> list[tuple[str, Decimal]]:
        return [("620102", total / 2), ("620103", total / 2)]

    ledger = build_ledger(settings, advisor=advisor)
    reads = ReadModels(settings)
    try:
        (result,) = submit(ledger, adopt())
        assert [w.code for w in result.warnings] == ["allocation_deviates"]
        Runner(ledger, settings).run_until_caught_up()
        with reads.snapshot(warnings.Warnings) as view:
            listed = warnings.listed(view.of(warnings.Warnings), {"code": "allocation_deviates"}, 0, 100)
        district = result.warnings[0].reason.params["district"]
        assert [(w["project_code"], w["district"], w["type"], w["detail_code"]) for w in listed] == [
            (None, district, "allocation.adopted", "allocation_deviates.from_advice")]
    finally:
        reads.close()
        ledger.close()
