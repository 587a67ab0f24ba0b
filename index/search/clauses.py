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
