"""The read side as the API sees it: one connection and the serving generation of each model."""

from __future__ import annotations

from infra.settings import Settings
from projections.catalog import Catalog
from projections.db import Db
from projections.model import Projection


class ReadModels:
    def __init__(self, settings: Settings, prefix: str = "rm") -> None:
        self.db = Db(settings)
        self.catalog = Catalog(self.db, prefix)

    def tables(self, projection: type[Projection]) -> dict[str, str]:
        return self.catalog.active(projection)

    def close(self) -> None:
        self.db.close()
