"""
The SQLite backend: FTS5 (external content, Porter stemming, bm25 with field weights
set as the table's ``rank``), ``snippet()`` for highlights, and an FTS5 trigram table
over the word list for typo tolerance.

Very common words: bm25 has to score every match before it can sort, which costs
~3 µs a match (120 ms for a word in 39,000 documents). When a query matches more
than ``WINDOW`` documents, only the first ``WINDOW`` by id are ranked; ids put
policies and write-ups first (see ``models.document_id``), and the remaining matches
follow in id order. Counting stops at ``COUNT_LIMIT`` (the page says "more than").
"""

from django.db import connection

from index.models import KIND_DIGITS, KIND_STEP, SYSTEM_DIGITS, SYSTEM_STEP

from . import clauses
from .matches import TextMatches

WINDOW = 1000
# Counting reads the doclists only, but 39,000 matches still take ~25 ms; beyond this
# many the page says "more than".
COUNT_LIMIT = 5000
# A write-up or a policy is a whole page about its subject, a code's descriptor one
# line: with matches of similar strength, the page goes first. (rank is -bm25.)
PRIOR = 1.5
_PRIOR = (
    f"search_fts.rank * CASE WHEN search_fts.rowid < {3 * KIND_STEP} "
    f"THEN {PRIOR} ELSE 1.0 END"
)
_KINDS = {digit: kind for kind, digit in KIND_DIGITS.items()}
_COLUMNS = clauses.columns("d")


def fts_string(words: list[str], phrases: list[list[str]], prefix: str = "") -> str:
    """An FTS5 query of quoted strings only: no operator from the input survives."""
    parts = [_quote(word) for word in words]
    parts += [_quote(" ".join(phrase)) for phrase in phrases]
    if prefix:
        parts.append(_quote(prefix) + "*")
    return " ".join(parts)


def match_string(groups: list[list[str]], phrases: list[list[str]] = ()) -> str:
    """
    All of ``groups`` (each: a word or any of its synonyms) and ``phrases``, as
    quoted strings. A number of one or two digits ("type 2 diabetes") is matched
    outside the code column, where "E11.2" holds a "2" of its own.
    """
    parts = []
    for group in groups:
        alternatives = [_word(word) for word in group]
        if len(alternatives) == 1:
            parts.append(alternatives[0])
        elif alternatives:
            parts.append("(" + " OR ".join(alternatives) + ")")
    parts += [_quote(" ".join(phrase)) for phrase in phrases]
    return " AND ".join(parts)


def any_string(matches: list[str]) -> str:
    """Documents matching any of ``match_string``'s strings."""
    return " OR ".join(f"({match})" for match in matches if match)


def _word(word: str) -> str:
    if word.isdigit() and len(word) <= 2:
        return "(- {text_a} : " + _quote(word) + ")"
    return _quote(word)


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


class Where:
    """The conditions of a text query beyond MATCH, as SQL over the FTS5 rowid."""

    def __init__(self, filters, exclude=(), spans=(), kind="", demoted="", exact=""):
        self.sql = []
        self.params = []
        self.join = False
        self.kind = kind
        # The ranking's factor beyond bm25 and the kind (see ``clauses.prior``).
        self.prior_params = []
        self.prior = clauses.prior(
            "d", demoted, exact, clauses.positional(self.prior_params)
        )
        if kind:
            self.sql.append(f"search_fts.rowid / {KIND_STEP} = %s")
            self.params.append(KIND_DIGITS[kind])
        if filters.system:
            # The percent sign is doubled: the SQL goes through "%" formatting.
            self.sql.append(f"(search_fts.rowid / {SYSTEM_STEP}) %% 10 = %s")
            self.params.append(SYSTEM_DIGITS.get(filters.system, 9))
        if filters.payer:
            self.join = True
            self.sql.append("d.payer = %s")
            self.params.append(filters.payer)
        if exclude:
            marks = ", ".join(["%s"] * len(exclude))
            self.sql.append(f"search_fts.rowid NOT IN ({marks})")
            self.params.extend(exclude)
        if spans:
            self.join = True
            self.sql.append(
                clauses.span_condition(
                    spans, clauses.positional(self.params), alias="d"
                )
            )

    def clause(self):
        return "".join(f" AND {condition}" for condition in self.sql)


def _from(join: bool) -> str:
    if join:
        return "search_fts JOIN search_searchdocument d ON d.id = search_fts.rowid"
    return "search_fts"


def count(match: str, where: Where) -> dict[str, int]:
    """Matches by kind, up to ``COUNT_LIMIT`` in all (first by id: pages first)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT found / {KIND_STEP}, count(*) FROM (SELECT search_fts.rowid "
            f"AS found FROM {_from(where.join)} WHERE search_fts MATCH %s"
            f"{where.clause()} LIMIT {COUNT_LIMIT}) GROUP BY 1",
            [match, *where.params],
        )
        return {_KINDS[digit]: number for digit, number in cursor.fetchall()}


def exists(match: str, where: Where) -> bool:
    """Whether anything matches (the first match ends the lookup)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {_from(where.join)} WHERE search_fts MATCH %s"
            f"{where.clause()} LIMIT 1",
            [match, *where.params],
        )
        return cursor.fetchone() is not None


def exist(matches: list[str], where: Where) -> list[bool]:
    """``exists`` for each of ``matches``, in one query (none for no matches)."""
    if not matches:
        return []
    lookups = ", ".join(
        f"EXISTS (SELECT 1 FROM {_from(where.join)} WHERE search_fts MATCH %s"
        f"{where.clause()} LIMIT 1)"
        for _match in matches
    )
    params = [value for match in matches for value in (match, *where.params)]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {lookups}", params)
        return [bool(found) for found in cursor.fetchone()]


def fetch_rows(sql: str, params) -> list[tuple]:
    """The rows of one of the engine's key lookups."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def matches(
    match: str,
    where: Where,
    shown: tuple[str, int, int] = ("", 0, 0),
    words=(),
    alone=(),
) -> TextMatches:
    """
    The matches counted by kind; when there are none, which of ``words`` the index
    lacks (``word_candidates`` finds words like them). The page comes from
    ``page``, and ``alone`` is left to ``exist``: in process, a second query costs
    no round trip.
    """
    counts = count(match, where)
    return TextMatches(
        counts=counts,
        capped=sum(counts.values()) >= COUNT_LIMIT,
        unknown=_unknown_words(words) if words and not any(counts.values()) else None,
    )


def page(
    match: str, where: Where, matched: TextMatches, offset: int, limit: int
) -> list[tuple]:
    """
    Rows of one page: ranked inside the window, then in id order.

    The page's ids come first and its rows and snippets after: SQLite computes the
    selected columns before it sorts, so a snippet in the ranking query would be
    made for every ranked match instead of the twenty shown.
    """
    counts = matched.counts
    total = counts.get(where.kind, 0) if where.kind else sum(counts.values())
    ids = []
    with connection.cursor() as cursor:
        cutoff = None
        if total > WINDOW:
            cursor.execute(
                f"SELECT search_fts.rowid FROM {_from(where.join)} "
                f"WHERE search_fts MATCH %s{where.clause()} "
                f"ORDER BY search_fts.rowid LIMIT 1 OFFSET %s",
                [match, *where.params, WINDOW - 1],
            )
            cutoff = cursor.fetchone()[0]
        ranked = min(total, WINDOW)
        if offset < ranked:
            bound = " AND search_fts.rowid <= %s" if cutoff is not None else ""
            cursor.execute(
                f"SELECT search_fts.rowid FROM {_from(True)} "
                f"WHERE search_fts MATCH %s{where.clause()}{bound} "
                f"ORDER BY {_PRIOR} * {where.prior}, search_fts.rowid "
                "LIMIT %s OFFSET %s",
                [
                    match,
                    *where.params,
                    *([cutoff] if cutoff is not None else []),
                    *where.prior_params,
                    min(limit, ranked - offset),
                    offset,
                ],
            )
            ids += [found for (found,) in cursor.fetchall()]
        # The rest in id order, no further than the matches counted.
        rest = min(limit - len(ids), total - max(offset, ranked))
        if cutoff is not None and rest > 0:
            cursor.execute(
                f"SELECT search_fts.rowid FROM {_from(where.join)} "
                f"WHERE search_fts MATCH %s{where.clause()} AND search_fts.rowid > %s "
                f"ORDER BY search_fts.rowid LIMIT %s OFFSET %s",
                [
                    match,
                    *where.params,
                    cutoff,
                    rest,
                    max(0, offset - ranked),
                ],
            )
            ids += [found for (found,) in cursor.fetchall()]
        if not ids:
            return []
        cursor.execute(
            f"SELECT {_COLUMNS}, snippet(search_fts, -1, %s, %s, '…', 14) "
            f"FROM {_from(True)} WHERE search_fts MATCH %s "
            f"AND search_fts.rowid IN ({', '.join(['%s'] * len(ids))})",
            ["\ue000", "\ue001", match, *ids],
        )
        rows = {row[0]: row for row in cursor.fetchall()}
    return [rows[found] for found in ids if found in rows]


def _unknown_words(words: list[str]) -> dict[str, None]:
    """The words the index does not hold (``word_candidates`` finds their matches)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT word FROM search_searchword WHERE word IN "
            f"({', '.join(['%s'] * len(words))})",
            words,
        )
        known = {word for (word,) in cursor.fetchall()}
    return {word: None for word in words if word not in known}


def word_candidates(
    word: str, limit: int = 40, *, broad: bool = False
) -> list[tuple[str, int]]:
    """
    Words sharing trigrams with ``word``, most (and rarest) shared first.

    Narrow: words holding two neighbouring trigrams of ``word`` (an AND is cheap, the
    rarer trigram bounds the scan); one typo spoils at most three trigrams in a row,
    so a word of seven letters or more keeps such a pair. Broad: any shared trigram,
    which ranks many more words; the engine asks for it when narrow finds no word
    close enough.
    """
    trigrams = [word[i : i + 3] for i in range(len(word) - 2)]
    pairs = [
        f"({_quote(trigrams[i])} AND {_quote(trigrams[i + 1])})"
        for i in range(0, len(trigrams) - 1, 2)
    ]
    if broad or len(pairs) < 2:
        if not trigrams:
            return []
        match = " OR ".join(_quote(trigram) for trigram in sorted(set(trigrams)))
    else:
        match = " OR ".join(pairs)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT w.word, w.documents FROM search_word_fts "
            "JOIN search_searchword w ON w.id = search_word_fts.rowid "
            "WHERE search_word_fts MATCH %s ORDER BY search_word_fts.rank LIMIT %s",
            [match, limit],
        )
        return cursor.fetchall()


def suggest(words: list[str], prefix: str, limit: int) -> list[tuple]:
    """Documents holding the words and a word starting with ``prefix``."""
    match = fts_string(words, [], prefix)
    if not match:
        return []
    with connection.cursor() as cursor:
        # Ranked among the first matches by id: write-ups and policies come first.
        cursor.execute(
            f"SELECT {_COLUMNS} FROM {_from(True)} WHERE search_fts MATCH %s "
            f"AND search_fts.rowid <= coalesce((SELECT rowid FROM search_fts "
            f"WHERE search_fts MATCH %s ORDER BY rowid LIMIT 1 OFFSET %s), "
            f"{10 * KIND_STEP}) ORDER BY {_PRIOR} LIMIT %s",
            [match, match, 200, limit],
        )
        return cursor.fetchall()
