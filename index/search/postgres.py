"""
The PostgreSQL backend: a stored weighted ``tsvector`` with a GIN index per kind
(pages, codes; made by the migrations), ``to_tsquery`` over quoted lexemes,
``ts_rank_cd``, ``ts_headline``, ``unaccent`` in the text search configuration, and
``pg_trgm`` over the word list for typo tolerance.

A search is one round trip: ``matches`` counts the matches by kind, ranks them and
reads the page the engine expects to show, with headlines, in one query (and, when
nothing matches, the candidates for "did you mean"). A very common word costs a
bounded amount of ranking: at most ``COUNT_LIMIT`` matching pages and as many codes
are read and scored, in one pass that stops there (the results page says "more
than" beyond them). SQLite ranks a window in the same way; there the first matches
by id come cheaply, here the first in table order (see ``_ranked``).
"""

from django.db import connection
from django.db.backends.postgresql.base import ServerBindingCursor

from index.models import KIND_CODE, KIND_DIGITS, KIND_STEP

from . import clauses
from .matches import TextMatches

# Reading and scoring a match costs ~1 µs (500 codes ~0.5 ms), on top of the
# bitmap of the word's index entries (~60 ns each: 2.4 ms for "encounter"'s 38,768).
COUNT_LIMIT = 500
# Pages (write-ups, policies) before one-line code descriptors of similar strength.
PRIOR = 1.5
_PRIOR = f"CASE WHEN d.kind = 'code' THEN 1.0 ELSE {PRIOR} END"
# Suggestions are ranked among this many pages and as many codes.
SUGGEST_CANDIDATES = 200
CONFIG = "carecodes_english"
_COLUMNS = clauses.columns("d")
# The query as a subquery: the planner cannot see its words, so it never trades
# the GIN index for a scan, and one plan serves every search (see ``_prepared``).
_QUERY = f"(SELECT to_tsquery('{CONFIG}', %(query)s))"
# Ids below this are pages (policies, write-ups), from here on codes.
CODES_FROM = KIND_DIGITS[KIND_CODE] * KIND_STEP


def fts_string(words: list[str], phrases: list[list[str]], prefix: str = "") -> str:
    """Every word and phrase, as ``match_string`` writes them."""
    return match_string([[word] for word in words], phrases)


def match_string(groups: list[list[str]], phrases: list[list[str]] = ()) -> str:
    """
    A ``to_tsquery`` string of quoted lexemes only: all of ``groups`` (each a word
    or any of its synonyms) and ``phrases``. The words are letters, digits and
    underscores (``query.words_in``), so no operator from the input survives.
    """
    parts = []
    for group in groups:
        alternatives = [_lexeme(word) for word in group if _lexeme(word)]
        if alternatives:
            parts.append("(" + " | ".join(alternatives) + ")")
    for phrase in phrases:
        lexemes = [_lexeme(word) for word in phrase if _lexeme(word)]
        if lexemes:
            parts.append("(" + " <-> ".join(lexemes) + ")")
    return " & ".join(parts)


def any_string(matches: list[str]) -> str:
    """Documents matching any of ``match_string``'s strings."""
    return " | ".join(f"({match})" for match in matches if match)


def _lexeme(word: str) -> str:
    cleaned = "".join(char for char in word if char.isalnum())
    return f"'{cleaned}'" if cleaned else ""


class Where:
    """Conditions beyond the text match, with named parameters."""

    def __init__(self, filters, exclude=(), spans=(), kind="", demoted="", exact=""):
        self.sql = []
        self.params = {}
        self.kind = kind
        # The ranking's factor beyond ts_rank_cd and the kind (``clauses.prior``).
        self.prior = clauses.prior(
            "d", demoted, exact, clauses.named(self.params, "prior")
        )
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
            self.sql.append(
                clauses.span_condition(
                    spans, clauses.named(self.params, "span"), alias="d"
                )
            )

    def clause(self):
        return "".join(f" AND {condition}" for condition in self.sql)


# Snippets come from an excerpt: ts_headline parses all the text it is given (0.8 ms
# for a 7,000-character policy, 0.1 ms for 1,000 characters), so a long text is cut
# to the stretch from a little before the first word of the query that it holds,
# found as a word starting with its stem, written or capitalised ("harden" in
# "Hardening"); when none is found, the whole text is used.
EXCERPT = 1000
# The query's stems: "work hardening" is {harden,work}.
_STEMS = f"(SELECT tsvector_to_array(to_tsvector('{CONFIG}', %(query)s)))"
# Any of them is marked: an excerpt may hold one word of the query and not the rest.
_MARKED = (
    "(SELECT string_agg(quote_literal(stem), ' | ')::tsquery "
    f"FROM unnest({_STEMS}) stem)"
)
_EXCERPT = (
    # OFFSET 0 keeps each value computed once: otherwise each use recomputed it.
    "CROSS JOIN LATERAL (SELECT concat_ws(' ', '', d.text_b, d.text_c, "
    "left(d.text_d, 20000)) AS text OFFSET 0) whole "
    # Only for a long text, where a word starts with a stem ("function" in
    # "dysfunction" is no match).
    f"CROSS JOIN LATERAL (SELECT CASE WHEN length(whole.text) > {EXCERPT} THEN "
    "(SELECT min(least(nullif(strpos(whole.text, ' ' || stem), 0), "
    "nullif(strpos(whole.text, ' ' || initcap(stem)), 0))) "
    f"FROM unnest({_STEMS}) stem) END AS first OFFSET 0) found "
    # "Work Hardening/Conditioning" is three words to the parser.
    "CROSS JOIN LATERAL (SELECT translate(CASE WHEN found.first IS NULL "
    f"THEN whole.text ELSE substr(whole.text, "
    f"greatest(1, found.first - {EXCERPT // 4}), {EXCERPT}) "
    "END, '/', ' ') AS text) excerpt"
)
_HEADLINE = (
    f"ts_headline('{CONFIG}', excerpt.text, {_MARKED}, "
    "'StartSel=\ue000, StopSel=\ue001, MaxWords=24, MinWords=10, "
    'MaxFragments=2, FragmentDelimiter=" … "\')'
)


def matches(
    match: str,
    where: Where,
    shown: tuple[str, int, int] = ("", 0, 0),
    words=(),
    alone=(),
) -> TextMatches:
    """
    The matches counted by kind, and the rows of the page the engine expects to
    show (``shown``: its kind, offset and limit), in one query. When nothing
    matches, the same query finds which of ``words`` the index lacks, with the
    words most like them, and whether each of the ``alone`` strings matches
    anything (as ``exist`` says).
    """
    rows = _ranked(match, where, *shown, words, alone)
    counts = {
        kind: number
        for kind, number in zip(KIND_DIGITS, rows[0], strict=False)
        if number
    }
    pages = sum(number for kind, number in counts.items() if kind != KIND_CODE)
    return TextMatches(
        counts=counts,
        capped=COUNT_LIMIT in (pages, counts.get(KIND_CODE, 0)),
        shown=_page_rows(rows),
        window=shown,
        unknown=(
            _unknown(words, rows[0][_CANDIDATES_AT] or [])
            if words and not counts
            else None
        ),
        alone=(
            dict(zip(alone, rows[0][_ALONE_AT], strict=True))
            if alone and not counts
            else None
        ),
    )


def page(
    match: str, where: Where, matched: TextMatches, offset: int, limit: int
) -> list[tuple]:
    """Rows of one page, best first, with highlighted snippets."""
    if matched.window == (where.kind, offset, limit):
        return matched.shown
    return _page_rows(_ranked(match, where, where.kind, offset, limit))


# A row of ``_ranked``: the counts by kind, the candidates, the ``alone`` answers,
# then the page's columns.
_CANDIDATES_AT = len(KIND_DIGITS)
_ALONE_AT = _CANDIDATES_AT + 1
_PAGE_AT = _ALONE_AT + 1


def _page_rows(rows) -> list[tuple]:
    """The page's rows of ``_ranked``, without the counts (none if it has no id)."""
    return [row[_PAGE_AT:] for row in rows if row[_PAGE_AT]]


def _ranked(
    match: str, where: Where, kind: str, offset: int, limit: int, words=(), alone=()
) -> list[tuple]:
    """
    On every row, the matches counted by kind (one column per kind, in
    ``KIND_DIGITS`` order) and, when there are none and ``words`` are given, the
    ``(word, candidate, documents)`` of ``_CANDIDATES``, and when there are none
    and ``alone`` is given, whether each of its strings matches (an array of
    booleans, found as ``exist`` finds them); then a page of matches of
    ``kind`` (any if blank), best first, with headlines: one row with blank columns
    when the page is empty.

    The matches are the first ``COUNT_LIMIT`` pages (policies, write-ups: ids below
    ``CODES_FROM``) by id and as many codes in table order, each branch read through
    its own GIN index's bitmap and stopping at the limit; taking the first codes by
    id instead would read every match (39,000 rows and ~80 ms for "encounter"). The
    query text reaches the planner only through a subquery (``_QUERY``), so it cannot
    choose a sequential scan instead: for a word clustered late in the table
    ("fracture"), the first 1,000 matches took a scan of 50,000 rows (29 ms) against
    5 ms through the bitmap. Ranking, counting and the page stay in the database:
    fetching 500 scored rows into Python cost ~0.4 ms more.
    """
    condition = f"d.search_vector @@ {_QUERY}{where.clause()}"
    # ts_rank would cost a third (0.4 against 1.1 ms for 284 rows), but it scores
    # a page that says "work" forty times as one that says it once: pages would
    # fall behind every one-line code descriptor.
    score = (
        f"ts_rank_cd(d.search_vector, {_QUERY}, 1) * {_PRIOR} * {where.prior} AS score"
    )
    matching = _pages_then_codes(f"d.id, {score}", condition, COUNT_LIMIT)
    counting = ", ".join(
        f"count(*) FILTER (WHERE {_kind_range('id', each)}) AS n{digit}"
        for each, digit in KIND_DIGITS.items()
    )
    counted = ", ".join(f"counted.n{digit}" for digit in KIND_DIGITS.values())
    # Evaluated only when nothing matched (a subquery runs when first needed).
    candidates = (
        f"CASE WHEN counted.total = 0 THEN (SELECT json_agg(json_build_array("
        f"c.asked, c.word, c.documents)) FROM ({_CANDIDATES}) c) END"
        if words
        else "NULL"
    )
    found, lookups, alone_params = _lookups(alone, where, "alone")
    answers = (
        f"CASE WHEN counted.total = 0 THEN ARRAY[{lookups}] END" if alone else "NULL"
    )
    return _prepared(
        f"WITH matching AS MATERIALIZED ({matching}), "
        + "".join(f"{each}, " for each in found)
        + "best AS (SELECT id, score FROM matching "
        f"WHERE {_kind_range('id', kind)} "
        "ORDER BY score DESC, id OFFSET %(offset)s LIMIT %(limit)s) "
        f"SELECT {counted}, {candidates}, {answers}, "
        f"{_COLUMNS}, {_HEADLINE} "
        f"FROM (SELECT {counting}, count(*) AS total FROM matching) counted "
        "LEFT JOIN (best JOIN search_searchdocument d ON d.id = best.id "
        f"{_EXCERPT}) ON true "
        "ORDER BY best.score DESC, best.id",
        {
            "query": match,
            "offset": offset,
            "limit": limit,
            "words": list(words),
            **alone_params,
            **where.params,
        },
    )


def exists(match: str, where: Where) -> bool:
    """Whether anything matches."""
    # Planned as the ranked search's matches are, behind a fence: through the
    # partial GIN indexes (a condition on the id picks one), and never walking an
    # index in id order, which a LIMIT 1 outside made the planner choose (~45 ms
    # for a word in no document, against 0.2 ms).
    found = _pages_then_codes(
        "d.id", f"d.search_vector @@ {_QUERY}{where.clause()}", COUNT_LIMIT
    )
    return bool(
        _prepared(
            f"WITH found AS MATERIALIZED ({found}) SELECT 1 FROM found LIMIT 1",
            {"query": match, **where.params},
        )
    )


def exist(matches: list[str], where: Where) -> list[bool]:
    """``exists`` for each of ``matches``, in one query (none for no matches)."""
    if not matches:
        return []
    found, lookups, params = _lookups(matches, where, "query")
    rows = _prepared(
        f"WITH {', '.join(found)} SELECT {lookups}", {**where.params, **params}
    )
    return [bool(value) for value in rows[0]]


def _lookups(matches: list[str], where: Where, stem: str) -> tuple[list, str, dict]:
    """
    For ``exist``: a materialized CTE per match (``found0``…, its string the
    parameter ``<stem>0``…), the ``EXISTS`` of each, and the parameters.
    """
    found, params = [], {}
    for number, match in enumerate(matches):
        params[f"{stem}{number}"] = match
        query = _QUERY.replace("(query)", f"({stem}{number})")
        condition = f"d.search_vector @@ {query}{where.clause()}"
        found.append(
            f"found{number} AS MATERIALIZED "
            f"({_pages_then_codes('d.id', condition, COUNT_LIMIT)})"
        )
    lookups = ", ".join(
        f"EXISTS (SELECT 1 FROM found{number})" for number in range(len(matches))
    )
    return found, lookups, params


class _PreparedCursor(ServerBindingCursor):
    """Binds parameters on the server, and prepares each statement there once."""

    def execute(self, query, params=None, *, prepare=True, binary=None):
        return super().execute(query, params, prepare=prepare, binary=binary)


def fetch_rows(sql: str, params) -> list[tuple]:
    """The rows of one of the engine's key lookups, prepared as a search is."""
    return _prepared(sql, params)


def _prepared(sql: str, params) -> list[tuple]:
    """
    The rows of a statement parsed and planned once per connection, not once per
    search: for a search's statement that was ~0.5 ms of ~0.7 (psycopg keeps up to
    100 statements a connection). Through Django's cursor wrapper, so the query is
    logged and counted as any other.
    """
    connection.ensure_connection()
    connection.validate_thread_sharing()
    cursor = _PreparedCursor(connection.connection)
    if connection.queries_logged:
        wrapped = connection.make_debug_cursor(cursor)
    else:
        wrapped = connection.make_cursor(cursor)
    with wrapped:
        wrapped.execute(sql, params)
        return wrapped.fetchall()


def _kind_range(column: str, kind: str) -> str:
    """SQL true for the ids of ``kind`` (its digit leads the id), or for any id."""
    if not kind:
        return "true"
    digit = KIND_DIGITS[kind]
    return f"{column} >= {digit * KIND_STEP} AND {column} < {(digit + 1) * KIND_STEP}"


def _pages_then_codes(columns: str, condition: str, limit: int) -> str:
    """The first ``limit`` matching pages by id, then as many codes in table order."""
    return (
        f"(SELECT {columns} FROM search_searchdocument d "
        f"WHERE d.id < {CODES_FROM} AND {condition} ORDER BY d.id LIMIT {limit}) "
        f"UNION ALL (SELECT {columns} FROM search_searchdocument d "
        f"WHERE d.id >= {CODES_FROM} AND {condition} LIMIT {limit})"
    )


def _array(ids) -> str:
    # One text parameter: psycopg adapts a list of 1,000 ints one by one (~1.5 ms).
    return "{" + ",".join(str(int(found)) for found in ids) + "}"


# Each word with itself if the index holds it, else with the words most like it by
# trigram similarity (pg_trgm's GIN index): a known word costs one probe.
_CANDIDATES = (
    "SELECT w.asked, s.word, s.documents FROM unnest(%(words)s::text[]) AS w(asked) "
    "CROSS JOIN LATERAL ("
    "SELECT word, documents FROM search_searchword WHERE word = w.asked "
    "UNION ALL (SELECT word, documents FROM search_searchword "
    "WHERE word %% w.asked AND NOT EXISTS "
    "(SELECT FROM search_searchword k WHERE k.word = w.asked) "
    "ORDER BY similarity(word, w.asked) DESC LIMIT 40)) s"
)


def _unknown(words, rows) -> dict[str, list[tuple[str, int]]]:
    """The words without a row of their own in ``_CANDIDATES``, with their rows."""
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
    return _prepared(
        f"SELECT {_COLUMNS} FROM ({candidates}) d "
        f"ORDER BY ts_rank_cd(d.search_vector, {query}, 1) * {_PRIOR} DESC, d.id "
        f"LIMIT %(limit)s",
        {"query": " & ".join(terms), "limit": limit},
    )


__all__ = ["KIND_STEP"]
