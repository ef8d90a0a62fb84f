"""What the domain says (措辞): a code and its parameters, never a sentence.

The domain decides *what* is said — `not_started.late` with the planned start, the days and the
factors held — and one catalogue (`infra.catalogue`, Babel `.po` files) says it in Chinese and in
English. Parameters are language-neutral JSON values: codes, numbers, dates as ISO text, and lists
of them; the catalogue's wording names how a code is shown (`{factors:factor}`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class Detail:
    code: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        """`detail_code` and `detail_params`, as the API gives them beside the rendered `detail`."""
        return {"detail_code": self.code, "detail_params": dict(self.params)}
