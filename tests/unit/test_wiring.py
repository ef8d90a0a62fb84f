"""The composition root closes what it opened when used in a `with` block (as `bench/` uses it)."""

from __future__ import annotations

import pytest

from infra.settings import Settings
from yaosu.wiring import Wiring


def test_a_wiring_in_a_with_block_closes_its_ledger_even_when_the_block_fails() -> None:
    with pytest.raises(RuntimeError), Wiring(Settings(store="memory://")) as wiring:
        opened = wiring.ledger
        assert wiring.ledger is opened  # one ledger per wiring
        raise RuntimeError("the benchmark failed")
    assert wiring.ledger is not opened  # closed and forgotten: asking again opens another
    wiring.close()
