"""The project directory (项目名录): every project by name, owner (项目单位) and code, with where it stands,
for the console's search (`/console/search?q=`) and wherever a page names a project by its code.

A search matches a part of the name, of the owner or of the code (`000157` finds `2026-620102-...-000157`).
The name and owner are kept folded (`folded`: NFKC, then case-folded) beside the words as registered, so
that a full-width `０００１５７` or `ABC` typed in another case match, and both stores compare the same
strings: the query is a `LIKE` on this table, never a load of aggregates.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any, Collection, Final

from domain.project import Project, project_status
from projections.listing import Tables
from projections.model import SUBJECT, Projection, Table

PROJECTS = Table("projects", {"code": "TEXT", "name": "TEXT", "owner": "TEXT", "district": "TEXT", "sector": "TEXT",
                              "department": "TEXT", "stage": "TEXT", "status": "TEXT", "name_key": "TEXT",
                              "owner_key": "TEXT"},
                 key=("code",), indexes=(("district",),))
#: The longest text searched for: a name or owner is shorter than this.
LONGEST_QUERY: Final = 50
#: Results per page of the console's search.
PAGE: Final = 50


class Directory(Projection):
    name = "directory"
    version = 1
    tables = (PROJECTS,)
    handlers = {Project.Registered: "registered", Project.StageAdvanced: "advanced",
                Project.ConstructionStarted: "started", Project.Completed: "completed",
                Project.Cancelled: "cancelled"}
    lookups = {"projects": SUBJECT}

    def registered(self, e: Any) -> None:
        self.rows["projects"].put({
            "code": e.code, "name": e.name, "owner": e.owner, "district": e.district, "sector": e.sector,
            "department": e.department, "stage": "planning", "status": project_status(None, None, None),
            "name_key": folded(e.name), "owner_key": folded(e.owner)})

    def advanced(self, e: Any) -> None:
        self.rows["projects"].update(e.audit.subject, stage=e.stage)

    def started(self, e: Any) -> None:
        self.rows["projects"].update(e.audit.subject, status=project_status(e.date, None, None))

    def completed(self, e: Any) -> None:
        self.rows["projects"].update(e.audit.subject, status=project_status(None, e.date, None))

    def cancelled(self, e: Any) -> None:
        self.rows["projects"].update(e.audit.subject, status=project_status(None, None, e.audit.business_date))


def folded(text: str | None) -> str:
    """A text as search compares it: compatibility forms unified (full-width digits and letters are
    ASCII), case folded."""
    return unicodedata.normalize("NFKC", text or "").casefold()


def pattern(query: str) -> str:
    """A `LIKE` pattern (escape `\\`) matching any text that contains `query` as it is written."""
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class Found:
    """A page of a search: its projects (as `PROJECTS` rows, without the folded keys) and how many in all."""

    projects: list[dict[str, Any]]
    total: int
    page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE))


def search(tables: Tables, query: str, page: int = 1) -> Found:
    """The projects whose name, owner or code contains `query` (folded as `folded`), by code, page by page
    (`page` from 1). An empty query finds nothing."""
    wanted = folded(query).strip()
    if not wanted:
        return Found([], 0, 1)
    like = pattern(wanted)
    where = "(name_key LIKE ? ESCAPE '\\' OR owner_key LIKE ? ESCAPE '\\' OR code LIKE ? ESCAPE '\\')"
    params = [like, like, like]
    (total,), = tables.db.query(f"SELECT COUNT(*) FROM {tables['projects']} WHERE {where}", params)
    page = min(max(page, 1), max(1, -(-int(total) // PAGE)))
    shown = [c for c in PROJECTS.columns if not c.endswith("_key")]
    rows = tables.db.query(f"SELECT {', '.join(shown)} FROM {tables['projects']} WHERE {where} ORDER BY code "
                           "LIMIT ? OFFSET ?", [*params, PAGE, (page - 1) * PAGE])
    return Found([dict(zip(shown, r)) for r in rows], int(total), page)


def names(tables: Tables, codes: Collection[str]) -> dict[str, str]:
    """The names of these projects (those registered), by code."""
    return names_in(tables, tables["projects"], codes)


def names_in(tables: Tables, table: str, codes: Collection[str]) -> dict[str, str]:
    """`code → name` from any read-model table with those two columns, a few hundred codes a statement
    (SQLite's variables are limited)."""
    wanted, found = sorted({c for c in codes if c}), {}
    for start in range(0, len(wanted), 400):
        scope, params = tables.db.among("code", wanted[start:start + 400])
        found.update(tables.db.query(f"SELECT code, name FROM {table} WHERE {scope}", params))
    return found
