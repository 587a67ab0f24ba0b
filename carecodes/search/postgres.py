"""
The PostgreSQL backend: a stored weighted ``tsvector`` with a GIN index (made by the
migration), ``websearch_to_tsquery`` over quoted words, ``ts_rank_cd``,
``ts_headline``, ``unaccent`` in the text search configuration, and ``pg_trgm`` over
the word list for typo tolerance.

A very common word costs a bounded amount of ranking: ``matches`` reads and scores
at most ``COUNT_LIMIT`` matching pages and as many codes, in one pass that stops
there, and ``page`` is cut from those (the results page says "more than" beyond
them). SQLite ranks a window in the same way; there the first matches by id come
cheaply, here the first in table order (see ``matches``).
"""

from collections import Counter

from django.db import connection

from .matches import TextMatches
from .models import KIND_CODE, KIND_DIGITS, KIND_STEP

# Reading and scoring a match costs ~3 µs (a bitmap over a common word's 20,000
# index entries ~2.5 ms more), and every match read is sorted in Python: 1,000
# codes made a common word's search ~6 ms, 500 make it ~3 ms.
COUNT_LIMIT = 500
# Pages (write-ups, policies) before one-line code descriptors of similar strength.
PRIOR = 1.5
_PRIOR = f"CASE WHEN d.kind = 'code' THEN 1.0 ELSE {PRIOR} END"
# Suggestions are ranked among this many pages and as many codes.
SUGGEST_CANDIDATES = 200
CONFIG = "carecodes_english"
_COLUMNS = "d.id, d.kind, d.system, d.code, d.payer, d.title, d.detail, d.url"
_QUERY = f"websearch_to_tsquery('{CONFIG}', %(query)s)"
# Ids below this are pages (policies, write-ups), from here on codes.
CODES_FROM = KIND_DIGITS[KIND_CODE] * KIND_STEP
_KIND_OF_DIGIT = {digit: kind for kind, digit in KIND_DIGITS.items()}


def websearch_string(
    words: list[str], phrases: list[list[str]], prefix: str = ""
) -> str:
    """Each word and phrase in double quotes, so "or" and "-" are not operators."""
    parts = [f'"{word}"' for word in words]
    parts += ['"' + " ".join(phrase) + '"' for phrase in phrases]
    return " ".join(parts)


# The engine passes the same string to either backend's functions.
fts_string = websearch_string


class Where:
    """Conditions beyond the text match, with named parameters."""

    def __init__(self, filters, exclude=(), spans=(), kind=""):
        self.sql = []
        self.params = {}
        self.kind = kind
        if filters.system:
            self.sql.append("d.system = %(system)s")
            self.params["system"] = filters.system
        if filters.payer:
            self.sql.append("d.payer = %(payer)s")
            self.params["payer"] = filters.payer
        if exclude:
            self.sql.append("NOT (d.id = ANY(%(exclude)s::bigint[]))")
            self.params["exclude"] = _array(exclude)
        if spans:
            conditions = []
            for number, (system, first, last, _label) in enumerate(spans):
                conditions.append(
                    f"(d.system = %(span{number})s "
                    f"AND d.sort_key BETWEEN %(first{number})s AND %(last{number})s)"
                )
                self.params |= {
                    f"span{number}": system,
                    f"first{number}": first,
                    f"last{number}": last,
                }
            self.sql.append("(" + " OR ".join(conditions) + ")")

    def clause(self):
        return "".join(f" AND {condition}" for condition in self.sql)


_HEADLINE = (
    f"ts_headline('{CONFIG}', translate(concat_ws(' ', d.text_b, d.text_c, "
    f"left(d.text_d, 20000)), '/', ' '), {_QUERY}, "
    "'StartSel=\ue000, StopSel=\ue001, MaxWords=24, MinWords=10, "
    'MaxFragments=2, FragmentDelimiter=" … "\')'
)


def matches(match: str, where: Where) -> TextMatches:
    """
    The matching pages (policies, write-ups: ids below ``CODES_FROM``) and codes, up
    to ``COUNT_LIMIT`` of each, with their scores, read once: ``page`` sorts them.

    The codes are the first in table order, read through the GIN index's bitmap,
    which stops after ``COUNT_LIMIT`` rows; taking the first by id instead would read
    every match (39,000 rows and ~80 ms for "encounter"). The query text reaches
    the planner as a parameter, so it cannot choose a sequential scan instead: for
    a word clustered late in the table ("fracture"), the first 1,000 matches took
    a scan of 50,000 rows (29 ms) against 5 ms through the bitmap.
    """
    query = f"(SELECT websearch_to_tsquery('{CONFIG}', %(query)s))"
    condition = f"d.search_vector @@ {query}{where.clause()}"
    # ts_rank would cost a third (0.4 against 1.1 ms for 284 rows), but it scores
    # a page that says "work" forty times as one that says it once: pages would
    # fall behind every one-line code descriptor.
    score = f"ts_rank_cd(d.search_vector, {query}, 1)"
    with connection.cursor() as cursor:
        cursor.execute(
            _pages_then_codes(f"d.id, {score}", condition, COUNT_LIMIT),
            {"query": match, **where.params},
        )
        scored = cursor.fetchall()
    counts = _by_kind(scored)
    pages = sum(number for kind, number in counts.items() if kind != KIND_CODE)
    return TextMatches(
        counts=counts,
        capped=COUNT_LIMIT in (pages, counts.get(KIND_CODE, 0)),
        scored=scored,
    )


def _pages_then_codes(columns: str, condition: str, limit: int) -> str:
    """The first ``limit`` matching pages by id, then as many codes in table order."""
    return (
        f"(SELECT {columns} FROM search_searchdocument d "
        f"WHERE d.id < {CODES_FROM} AND {condition} ORDER BY d.id LIMIT {limit}) "
        f"UNION ALL (SELECT {columns} FROM search_searchdocument d "
        f"WHERE d.id >= {CODES_FROM} AND {condition} LIMIT {limit})"
    )


def _by_kind(scored) -> dict[str, int]:
    counts = Counter(found // KIND_STEP for found, _score in scored)
    return {_KIND_OF_DIGIT[digit]: number for digit, number in counts.items()}


def _order(scored) -> list[int]:
    """Ids best first; pages before one-line code descriptors of similar strength."""
    ranked = sorted(
        scored,
        key=lambda pair: (-pair[1] * (PRIOR if pair[0] < CODES_FROM else 1.0), pair[0]),
    )
    return [found for found, _score in ranked]


def page(
    match: str, where: Where, matched: TextMatches, offset: int, limit: int
) -> list[tuple]:
    """Rows of one page, best first, with highlighted snippets."""
    scored = matched.scored
    if where.kind:
        digit = KIND_DIGITS[where.kind]
        scored = [pair for pair in scored if pair[0] // KIND_STEP == digit]
    wanted = _order(scored)[offset : offset + limit]
    if not wanted:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS}, {_HEADLINE} FROM search_searchdocument d "
            f"WHERE d.id = ANY(%(ids)s::bigint[])",
            {"query": match, "ids": _array(wanted)},
        )
        rows = {row[0]: row for row in cursor.fetchall()}
    return [rows[found] for found in wanted if found in rows]


def _array(ids) -> str:
    # One text parameter: psycopg adapts a list of 1,000 ints one by one (~1.5 ms).
    return "{" + ",".join(str(int(found)) for found in ids) + "}"


def unknown_words(words: list[str]) -> dict[str, list[tuple[str, int]]]:
    """
    The words the index does not hold, each with the words most like it by trigram
    similarity (pg_trgm's GIN index), in one query: a known word returns itself
    and costs one probe.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT w.q, s.word, s.documents FROM unnest(%(words)s::text[]) AS w(q) "
            "CROSS JOIN LATERAL ("
            "SELECT word, documents FROM search_searchword WHERE word = w.q "
            "UNION ALL (SELECT word, documents FROM search_searchword "
            "WHERE word %% w.q AND NOT EXISTS "
            "(SELECT FROM search_searchword k WHERE k.word = w.q) "
            "ORDER BY similarity(word, w.q) DESC LIMIT 40)) s",
            {"words": list(words)},
        )
        rows = cursor.fetchall()
    known = {word for asked, word, _documents in rows if word == asked}
    found = {word: [] for word in words if word not in known}
    for asked, word, documents in rows:
        if asked in found:
            found[asked].append((word, documents))
    return found


def suggest(words: list[str], prefix: str, limit: int) -> list[tuple]:
    terms = [f"'{word}'" for word in words]
    # A two-letter prefix expands to thousands of lexemes in the GIN index (tens of
    # milliseconds); SQLite's FTS5 table keeps a prefix index for those instead.
    if len(prefix) >= 3:
        terms.append(f"'{prefix}':*")
    if not terms:
        return []
    query = f"(SELECT to_tsquery('{CONFIG}', %(query)s))"
    # Candidates read as in ``matches``: pages by id, codes in table order.
    candidates = _pages_then_codes(
        f"{_COLUMNS}, d.search_vector",
        f"d.search_vector @@ {query}",
        SUGGEST_CANDIDATES,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM ({candidates}) d "
            f"ORDER BY ts_rank_cd(d.search_vector, {query}, 1) * {_PRIOR} DESC, d.id "
            f"LIMIT %(limit)s",
            {"query": " & ".join(terms), "limit": limit},
        )
        return cursor.fetchall()


__all__ = ["KIND_STEP"]
