"""A listing's API, derived from its declaration (`projections.listing.Listing`): its query parameters
with their bounds and descriptions (so OpenAPI states them, and a value outside is a 400), and the
pydantic models of its rows and of its answer."""

from __future__ import annotations

import inspect
from datetime import date
from typing import Annotated, Any, Iterator, Literal, Mapping, Optional

from fastapi import Depends, Query
from pydantic import BaseModel, Field, create_model

from api.params import After, Limit
from projections.listing import DATE_PATTERN, Filter, Listing


class Asked(Mapping[str, Any]):
    """The filters a request gave (each None if not), by the query parameter's name: hashable, so an
    answer can be kept by them (`api.reading.Answers`)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)
        self._key = tuple(sorted(self._values.items(), key=lambda item: item[0]))

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Asked) and self._key == other._key

    def __repr__(self) -> str:
        return f"Asked({self._values!r})"


def parameter(f: Filter) -> inspect.Parameter:
    """A filter as a query parameter, bounded as declared (a date's pattern is stated for OpenAPI only)."""
    base: Any = Literal[f.choices] if f.choices is not None else f.type  # type: ignore[valid-type]
    query = Query(alias=f.name if f.argument != f.name else None, ge=f.ge, le=f.le,
                  pattern=f.pattern if f.type is str else None, min_length=f.min_length, max_length=f.max_length,
                  description=f.description, json_schema_extra={"pattern": DATE_PATTERN} if f.type is date else None)
    if f.required:
        return inspect.Parameter(f.argument, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[base, query])
    return inspect.Parameter(f.argument, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[Optional[base], query])


def Filters(listing: Listing) -> Any:  # noqa: N802 - reads as a type in a signature
    """`asked: Filters(AUDIT)` in a route's signature: the listing's filters (and `after`/`limit` if it is
    paged) as query parameters, given to the route as one `Asked`."""
    parameters = [parameter(f) for f in listing.filters]
    if listing.paging is not None:
        parameters += [inspect.Parameter("after", inspect.Parameter.KEYWORD_ONLY, default=0, annotation=After),
                       inspect.Parameter("limit", inspect.Parameter.KEYWORD_ONLY, default=listing.paging.limit,
                                         annotation=Limit)]

    async def asked(**given: Any) -> Asked:
        values = listing.defaulted({f.name: given[f.argument] for f in listing.filters})
        if listing.paging is not None:
            values.update(after=given["after"], limit=given["limit"])
        return Asked(values)

    asked.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    asked.__name__ = f"{listing.name.replace('-', '_')}_filters"
    return Annotated[Asked, Depends(asked)]


def item_model(listing: Listing) -> type[BaseModel]:
    """The model of a row, named as the listing says (e.g. `AuditEntry`): every field it gives, with a
    text's code and parameters beside it when it says one."""
    fields: dict[str, Any] = {c.key: (c.type, Field(None if c.optional else ..., description=c.description))
                              for c in listing.item_fields}
    if any(c.kind == "said" for c in listing.item_fields):
        fields["detail_code"] = (Optional[str], Field(None, description="the code of the text (its catalogue's)"))
        fields["detail_params"] = (Optional[dict[str, Any]], Field(None, description="the text's parameters"))
    return create_model(listing.item, **fields)


def response_model(listing: Listing, item: type[BaseModel]) -> type[BaseModel]:
    """The model of the answer: what it echoes, its rows, and where a paged list continues."""
    fields: dict[str, Any] = {name: (listing.filter(name).type, ...) for name in listing.echo}
    fields[listing.rows if isinstance(listing.rows, str) else listing.name] = (list[item], ...)  # type: ignore[valid-type]
    if listing.paging is not None:
        fields["next_after"] = (int, ...)
    return create_model(listing.response, **fields)
