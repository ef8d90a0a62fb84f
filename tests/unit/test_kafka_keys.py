"""The recommended Kafka key of a portal message (contract v1.2): the district of what it draws on."""

from __future__ import annotations

from infra.kafka import district_key
from tests.portal import CODE, energy_quota, msg, reduction

ELSEWHERE = {**reduction("RD-9"), "payload": {**reduction("RD-9")["payload"], "district": "620103"}}
DISTRICTS = {"RD-9": "620103", "RD-1": "620100"}


def advance(reduction_id: str) -> dict:
    return msg("emission.advanced", {"reduction_id": reduction_id, "pollutant": "SO2", "tonnes": 1},
               dept="ecology_environment")


def test_an_advance_is_keyed_by_the_district_of_the_reduction_it_draws_on_not_of_its_project() -> None:
    assert CODE[5:11] == "620102"
    assert district_key(advance("RD-9"), DISTRICTS) == district_key(ELSEWHERE, DISTRICTS) == b"620103"
    assert district_key(advance("RD-1"), DISTRICTS) == district_key(reduction("RD-1"), DISTRICTS) == b"620100"
    assert district_key(advance("RD-UNKNOWN"), DISTRICTS) == b"620100"  # a reduction registered without one: the city


def test_every_other_message_keeps_its_key() -> None:
    assert district_key(msg("data.provided", {"kind": "k", "reference": "r"}, dept="big_data")) == b"620102"
    assert district_key(energy_quota(5, district="620104")) == b"620104"
    assert district_key(msg("emission.reduction_completed", {"reduction_id": "RD-9"}, code=None), DISTRICTS) == b"620103"
    assert district_key(b"not json") == b"620100"
