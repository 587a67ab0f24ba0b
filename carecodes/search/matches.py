"""What a backend's ``matches`` hands back for one full-text query."""

from dataclasses import dataclass, field


@dataclass
class TextMatches:
    # Matches by kind, counted through the index up to the backend's COUNT_LIMIT.
    counts: dict[str, int] = field(default_factory=dict)
    # Counting stopped at the limit: there are more matches than ``counts`` says.
    capped: bool = False
    # PostgreSQL: each counted match's (id, score), which its ``page`` sorts.
    scored: list[tuple[int, float]] = field(default_factory=list)
