"""
The PostgreSQL backend: a stored weighted ``tsvector`` with a GIN index (made by the
migration), ``websearch_to_tsquery`` over quoted words, ``ts_rank_cd``,
``ts_headline``, ``unaccent`` in the text search configuration, and ``pg_trgm`` over
the word list for typo tolerance.

As on SQLite, a query matching more than ``WINDOW`` documents ranks the first
``WINDOW`` by id and lists the rest in id order, so a very common word costs a
bounded amount of ranking.
"""

from django.db import connection

from .models import KIND_STEP

WINDOW = 500
# Beyond this many matches the page says "more than" (see sqlite.COUNT_LIMIT).
COUNT_LIMIT = 2000
# Pages (write-ups, policies) before one-line code descriptors of similar strength.
PRIOR = 1.5
_PRIOR = f"CASE WHEN d.kind = 'code' THEN 1.0 ELSE {PRIOR} END"
CONFIG = "carecodes_english"
_COLUMNS = "d.id, d.kind, d.system, d.code, d.payer, d.title, d.detail, d.url"
_QUERY = f"websearch_to_tsquery('{CONFIG}', %s)"


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
    def __init__(self, filters, exclude=(), spans=(), kind=""):
        self.sql = []
        self.params = []
        if kind:
            self.sql.append("d.kind = %s")
            self.params.append(kind)
        if filters.system:
            self.sql.append("d.system = %s")
            self.params.append(filters.system)
        if filters.payer:
            self.sql.append("d.payer = %s")
            self.params.append(filters.payer)
        if exclude:
            self.sql.append("NOT (d.id = ANY(%s))")
            self.params.append(list(exclude))
        if spans:
            self.sql.append(
                "("
                + " OR ".join(
                    "(d.system = %s AND d.sort_key BETWEEN %s AND %s)" for _ in spans
                )
                + ")"
            )
            for system, first, last, _label in spans:
                self.params.extend([system, first, last])

    def clause(self):
        return "".join(f" AND {condition}" for condition in self.sql)


def count(match: str, where: Where) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.kind, count(*) FROM (SELECT d.kind FROM search_searchdocument d "
            f"WHERE d.search_vector @@ {_QUERY}{where.clause()} "
            f"LIMIT {COUNT_LIMIT}) s GROUP BY s.kind",
            [match, *where.params],
        )
        return dict(cursor.fetchall())


def page(match: str, where: Where, total: int, offset: int, limit: int) -> list[tuple]:
    rows = []
    headline = (
        f"ts_headline('{CONFIG}', p.text, {_QUERY}, "
        "'StartSel=\ue000, StopSel=\ue001, MaxWords=24, MinWords=10, "
        'MaxFragments=2, FragmentDelimiter=" … "\')'
    )
    text = (
        "translate(concat_ws(' ', d.text_b, d.text_c, left(d.text_d, 20000)), "
        "'/', ' ') AS text"
    )
    with connection.cursor() as cursor:
        cutoff = None
        if total > WINDOW:
            cursor.execute(
                f"SELECT d.id FROM search_searchdocument d "
                f"WHERE d.search_vector @@ {_QUERY}{where.clause()} "
                f"ORDER BY d.id LIMIT 1 OFFSET %s",
                [match, *where.params, WINDOW - 1],
            )
            cutoff = cursor.fetchone()[0]
        ranked = min(total, WINDOW)
        if offset < ranked:
            bound = " AND d.id <= %s" if cutoff is not None else ""
            cursor.execute(
                f"SELECT p.id, p.kind, p.system, p.code, p.payer, p.title, p.detail, "
                f"p.url, {headline} FROM (SELECT {_COLUMNS}, {text}, "
                f"ts_rank_cd(d.search_vector, {_QUERY}, 1) * {_PRIOR} AS score "
                f"FROM search_searchdocument d "
                f"WHERE d.search_vector @@ {_QUERY}{where.clause()}{bound} "
                f"ORDER BY score DESC, d.id LIMIT %s OFFSET %s) p "
                f"ORDER BY p.score DESC, p.id",
                [
                    match,
                    match,
                    match,
                    *where.params,
                    *([cutoff] if cutoff is not None else []),
                    min(limit, ranked - offset),
                    offset,
                ],
            )
            rows.extend(cursor.fetchall())
        if cutoff is not None and offset + limit > ranked:
            cursor.execute(
                f"SELECT p.id, p.kind, p.system, p.code, p.payer, p.title, p.detail, "
                f"p.url, {headline} FROM (SELECT {_COLUMNS}, {text} "
                f"FROM search_searchdocument d "
                f"WHERE d.search_vector @@ {_QUERY}{where.clause()} AND d.id > %s "
                f"ORDER BY d.id LIMIT %s OFFSET %s) p ORDER BY p.id",
                [
                    match,
                    match,
                    *where.params,
                    cutoff,
                    limit - len(rows),
                    max(0, offset - ranked),
                ],
            )
            rows.extend(cursor.fetchall())
    return rows


def word_candidates(
    word: str, limit: int = 40, *, broad: bool = False
) -> list[tuple[str, int]]:
    """Words by trigram similarity (pg_trgm's GIN index); one pass is enough."""
    if not broad:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT word, documents FROM search_searchword WHERE word %% %s "
            "ORDER BY similarity(word, %s) DESC LIMIT %s",
            [word, word, limit],
        )
        return cursor.fetchall()


def suggest(words: list[str], prefix: str, limit: int) -> list[tuple]:
    terms = [f"'{word}'" for word in words]
    # A two-letter prefix expands to thousands of lexemes in the GIN index (tens of
    # milliseconds); SQLite's FTS5 table keeps a prefix index for those instead.
    if len(prefix) >= 3:
        terms.append(f"'{prefix}':*")
    if not terms:
        return []
    tsquery = " & ".join(terms)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM (SELECT * FROM search_searchdocument d "
            f"WHERE d.search_vector @@ to_tsquery('{CONFIG}', %s) "
            f"ORDER BY d.id LIMIT 200) d "
            f"ORDER BY ts_rank_cd(d.search_vector, to_tsquery('{CONFIG}', %s), 1) "
            f"* {_PRIOR} "
            f"DESC, d.id LIMIT %s",
            [tsquery, tsquery, limit],
        )
        return cursor.fetchall()


__all__ = ["KIND_STEP"]
