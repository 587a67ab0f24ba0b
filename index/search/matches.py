"""What a backend's ``matches`` hands back for one full-text query."""

from dataclasses import dataclass, field


@dataclass
class TextMatches:
    # Matches by kind, counted through the index up to the backend's COUNT_LIMIT.
    counts: dict[str, int] = field(default_factory=dict)
    # Counting stopped at the limit: there are more matches than ``counts`` says.
    capped: bool = False
    # PostgreSQL: the rows of the page the engine expected to show, as ``page``
    # returns them, read in the same query, and that page's (kind, offset, limit).
    shown: list[tuple] = field(default_factory=list)
    window: tuple[str, int, int] | None = None
    # When nothing matched: the words the index lacks, each with candidate words
    # (PostgreSQL) or None (SQLite: its ``word_candidates`` finds them).
    unknown: dict[str, list[tuple[str, int]]] | None = None
    # When nothing matched (PostgreSQL): whether each of the ``alone`` strings it
    # was given matches something, for the relaxed search that follows.
    alone: dict[str, bool] | None = None
