"""
SQL that the engine and both backends share, written once: the columns a hit is
read from, and the clause that keeps documents inside code ranges ("spans").
"""

import itertools

# The document columns a hit is built from, in this order (``engine._hit``).
FIELDS = ("id", "kind", "system", "code", "payer", "title", "detail", "url")


def columns(alias: str = "") -> str:
    """``d.id, d.kind, …`` for ``alias`` "d"; the bare names without one."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + name for name in FIELDS)


def span_condition(spans, mark, alias: str = "") -> str:
    """
    ``((system = ? AND sort_key BETWEEN ? AND ?) OR …)`` for (system, first, last,
    label) spans. ``mark(value)`` keeps the value as a parameter and returns its
    placeholder, so one clause serves positional and named parameter styles.
    """
    prefix = f"{alias}." if alias else ""
    return (
        "("
        + " OR ".join(
            f"({prefix}system = {mark(system)} "
            f"AND {prefix}sort_key BETWEEN {mark(first)} AND {mark(last)})"
            for system, first, last, _label in spans
        )
        + ")"
    )


def positional(params: list):
    """A ``mark`` for ``%s`` placeholders, appending to ``params``."""

    def mark(value) -> str:
        params.append(value)
        return "%s"

    return mark


def named(params: dict, stem: str):
    """A ``mark`` for ``%(stem0)s``, ``%(stem1)s``… placeholders, kept in ``params``."""
    numbers = itertools.count()

    def mark(value) -> str:
        name = f"{stem}{next(numbers)}"
        params[name] = value
        return f"%({name})s"

    return mark


# Ranking priors for ICD-10-CM codes, as factors on a backend's text score (larger
# is better). A category or subcategory is what a general query means ("asthma" is
# J45 before J45.998); chapters O (pregnancy), P (newborn) and V-Y (external
# causes) answer only queries that say so.
DEPTH_PRIOR = {3: 1.6, 4: 1.3, 5: 1.1}
DEMOTED = 0.4
# A descriptor that is the query itself ("Asthma").
EXACT_PRIOR = 2.0


def prior(alias: str, demoted: str, exact: str, mark) -> str:
    """The factor for one document: depth, demoted chapters, exact descriptor."""
    prefix = f"{alias}." if alias else ""
    icd = f"{prefix}system = 'icd-10-cm'"
    depth = " ".join(
        f"WHEN {length} THEN {factor}" for length, factor in DEPTH_PRIOR.items()
    )
    factors = [
        f"CASE WHEN {icd} THEN CASE length({prefix}sort_key) {depth} ELSE 1.0 END "
        "ELSE 1.0 END"
    ]
    letters = ", ".join(f"'{letter}'" for letter in demoted if letter.isalpha())
    if letters:
        factors.append(
            f"CASE WHEN {icd} AND substr({prefix}sort_key, 1, 1) IN ({letters}) "
            f"THEN {DEMOTED} ELSE 1.0 END"
        )
    if exact:
        factors.append(
            f"CASE WHEN lower({prefix}text_b) = {mark(exact)} THEN {EXACT_PRIOR} "
            "ELSE 1.0 END"
        )
    return " * ".join(f"({factor})" for factor in factors)
