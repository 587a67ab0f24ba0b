"""
Search across codes, write-ups and policies.

The interface the pages build on: ``search()``, ``suggest()`` and the dataclasses they
return. The work is done in ``engine`` (query reading in ``query``, the index rows in
``documents`` and ``indexing``, and one backend per database vendor: ``sqlite`` for
FTS5, ``postgres`` for tsvector and pg_trgm). Models are imported lazily, because
this package is also the ``search`` app, loaded before the app registry is ready.
"""

import math
from dataclasses import dataclass, field

__all__ = [
    "MAX_QUERY_LENGTH",
    "Filters",
    "Hit",
    "Results",
    "Suggestion",
    "search",
    "suggest",
]

# Long enough for any code list or phrase a person types; the form refuses longer.
MAX_QUERY_LENGTH = 200

KINDS = ("code", "write-up", "policy")


@dataclass(frozen=True)
class Filters:
    system: str = ""  # a CodeSystem value or ""
    kind: str = ""  # "code", "write-up", "policy" or ""
    payer: str = ""  # a Payer slug or ""


@dataclass(frozen=True)
class Hit:
    kind: str  # "code", "write-up" or "policy"
    title: str  # plain text
    url: str
    snippet: str = ""  # SafeString: escaped text with <mark> around matches, or ""
    detail: str = ""  # plain text: "CPT 97546", "Aetna CPB 0198", "ICD-10-CM"
    system: str = ""  # code system of a code or write-up hit
    code: str = ""  # canonical code of a code or write-up hit
    payer: str = ""  # payer slug of a policy hit
    reason: str = ""  # plain words when not a text match ("Exact code")


@dataclass
class Results:
    query: str
    filters: "Filters" = field(default_factory=Filters)
    hits: list[Hit] = field(default_factory=list)  # the requested page only
    total: int = 0  # all matches, counted through the index
    page: int = 1
    per_page: int = 20
    exact: str | None = None  # address of the one code the query names exactly
    suggestion: str = ""  # a "did you mean" query, or ""
    counts: dict[str, int] = field(default_factory=dict)  # matches by kind
    notice: str = ""  # how the query was understood

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page)) if self.per_page else 1

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def previous_page(self) -> int | None:
        return self.page - 1 if self.has_previous else None

    @property
    def next_page(self) -> int | None:
        return self.page + 1 if self.has_next else None


@dataclass(frozen=True)
class Suggestion:
    label: str
    url: str
    kind: str  # "code", "write-up", "policy"
    detail: str = ""


def search(
    query: str, filters: Filters | None = None, page: int = 1, per_page: int = 20
) -> Results:
    """One page of matches for ``query``; never raises on any string."""
    from . import engine

    return engine.search(query, filters or Filters(), page, per_page)


def suggest(prefix: str, limit: int = 10) -> list[Suggestion]:
    """Autocomplete entries for what has been typed so far (at most ``limit``)."""
    from . import engine

    return engine.suggest(prefix, limit)
