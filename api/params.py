"""Query and path parameters, each bounded, as OpenAPI publishes them (a value outside is a 400)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal, Optional

from fastapi import Path, Query

from domain import reference
from projections.listing import DATE_PATTERN, FIRST_DAY, LAST_DAY, LAST_POSITION

ProjectCodePath = Annotated[str, Path(pattern=reference.PROJECT_CODE_PATTERN, description="national project code",
                                      examples=["2021-620102-48-01-000123"])]
LibraryPath = Annotated[Literal[tuple(reference.LIBRARIES)], Path(description="a reserve library")]  # type: ignore[misc]

AsOf = Annotated[Optional[date], Query(ge=FIRST_DAY, le=LAST_DAY, description="a business date (city time)",
                                       json_schema_extra={"pattern": DATE_PATTERN})]
Year = Annotated[Optional[int], Query(ge=reference.FIRST_YEAR, le=reference.LAST_YEAR)]
After = Annotated[int, Query(ge=0, le=LAST_POSITION, description="the position to read after")]
Limit = Annotated[int, Query(ge=1, le=1000)]
By = Annotated[Literal["sector", "district"], Query()]
RequiredYear = Annotated[int, Query(ge=reference.FIRST_YEAR, le=reference.LAST_YEAR, description="the plan's year")]
AdviceFactor = Annotated[Literal["land", "energy", "special_bond"], Query(description="what the total is of")]
Total = Annotated[float, Query(gt=0, lt=1e12, description="the city's total to split (亩, 吨标煤 or 万元)")]

Format = Annotated[Literal["json", "csv", "xlsx"], Query(description="`csv` or `xlsx` to download the list")]
Lang = Annotated[Literal["zh", "en"], Query(description="the language of a download's headers and names")]
#: Months of the business years, as a pattern OpenAPI can state.
MONTH_PATTERN = r"^(199[0-9]|20[0-9][0-9]|2100)-(0[1-9]|1[0-2])$"
Month = Annotated[str, Query(pattern=MONTH_PATTERN, description="the report's month, YYYY-MM",
                             examples=["2021-09"])]
ReportFormat = Annotated[Literal["xlsx"], Query(description="the report is a workbook")]
