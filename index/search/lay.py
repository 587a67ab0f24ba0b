"""
The lay-term thesaurus as search reads it: phrases people use ("broken arm") that
reach their codes directly, and word synonyms ("broken" also means "fracture") that
widen the full-text match.

Nothing is cached in the process. A search reads only the rows its own words can
name, through the unique indexes on the phrase and the word, in one query (with the
documents of the codes the phrases mean); a staff edit in the admin, made through
any process, is therefore seen by the next search everywhere, and the index holds
nothing derived from the thesaurus that would need refreshing.
"""

import re
from dataclasses import dataclass, field

from django.db import connection

from procedures import codes
from procedures.lay_terms import normalize_phrase
from procedures.models import LaySynonym, LayTerm, LayTermTarget

from . import clauses

# The longest phrase looked for, in words ("pain in the lower back" is five).
MAX_PHRASE_WORDS = 6
# Codes shown for one prefix target that is no code itself (ICD-10-PCS "0DTJ").
MAX_UNDER_PREFIX = 3
# Targets of one phrase shown as hits (the main meanings come first).
MAX_TARGETS = 6
# Words of a query read for phrases (the parser reads twelve).
MAX_WORDS = 12
_TOKEN = re.compile(r"\w+(?:['-]\w+)*")
_TERMS = LayTerm._meta.db_table
_TARGETS = LayTermTarget._meta.db_table
_SYNONYMS = LaySynonym._meta.db_table


@dataclass
class Found:
    """What the thesaurus says about one query."""

    # (phrase, [(system, code or prefix, document row or None)]), longest first;
    # phrases inside a longer one found are left out.
    phrases: list = field(default_factory=list)
    # word -> the words it also means.
    synonyms: dict = field(default_factory=dict)
    # The phrase that is the whole query, if one is.
    whole: str = ""


def tokens(text: str) -> list[str]:
    """The query's words as phrases are stored: lower case, apostrophes kept."""
    return _TOKEN.findall(normalize_phrase(text).replace("_", " "))[:MAX_WORDS]


def _singular(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def candidates(words: list[str]) -> dict[str, tuple[int, int]]:
    """Every run of up to ``MAX_PHRASE_WORDS`` words -> (start, end) in ``words``."""
    found = {}
    for start in range(len(words)):
        for end in range(start + 1, min(len(words), start + MAX_PHRASE_WORDS) + 1):
            run = words[start:end]
            for last in dict.fromkeys([run[-1], _singular(run[-1])]):
                found.setdefault(" ".join([*run[:-1], last]), (start, end))
            # "gastro-esophageal" as it is written, and with a space.
            spaced = " ".join(run).replace("-", " ")
            found.setdefault(spaced, (start, end))
    return found


def target_key(system: str, code: str) -> str:
    """The sort key a target names when it is a whole code ("H53.0" -> "H530")."""
    try:
        return codes.sort_key(codes.System(system), code)
    except (codes.CodeError, ValueError):
        return code.upper().replace(".", "")


def lookup(text: str, words: list[str], fetch_rows) -> Found:
    """
    The phrases and synonyms of a query, in one query: each phrase's targets come
    with the document of the code they name (None for a prefix that is no code).
    ``fetch_rows(sql, params)`` is the backend's.
    """
    said = tokens(text)
    runs = candidates(said)
    found = Found()
    synonym_words = sorted({word for word in words if word.isalpha()})[:12]
    if not runs and not synonym_words:
        return found
    phrases = sorted(runs)[:200]
    params: list = []
    blanks = ", ".join(["NULL"] * len(clauses.FIELDS))
    sql = (
        f"SELECT 0, t.phrase, g.system, g.code, g.position, {clauses.columns('d')} "
        f"FROM {_among(_TERMS, 'phrase', phrases, params)} t "
        f"JOIN {_TARGETS} g ON g.term_id = t.id "
        "LEFT JOIN search_searchdocument d ON d.system = g.system "
        f"AND d.sort_key = {_KEY} AND d.kind IN ('code', 'write-up') UNION ALL "
        f"SELECT 1, s.word, s.means, '', 0, {blanks} "
        f"FROM {_among(_SYNONYMS, 'word', synonym_words, params)} s"
    )
    rows = fetch_rows(sql, params)
    by_phrase: dict[str, list] = {}
    for kind, phrase, system, code, position, *document in rows:
        if kind == 1:
            means = [word for word in tokens(system) if word != phrase]
            if means:
                found.synonyms[phrase] = means
            continue
        row = dict(zip(clauses.FIELDS, document, strict=True)) if document[0] else None
        by_phrase.setdefault(phrase, []).append((position, system, code, row))
    # Longest first; a phrase inside a longer one found says less. Of two phrases
    # of the same words ("cochlear implants", "cochlear implant"), the one as typed
    # comes first (``candidates`` order), whatever order the rows came in.
    order = {phrase: number for number, phrase in enumerate(runs)}
    taken: list[tuple[int, int]] = []
    for phrase in sorted(
        by_phrase, key=lambda p: (-len(p.split()), runs[p][0], order[p])
    ):
        start, end = runs[phrase]
        if any(start >= s and end <= e for s, e in taken):
            continue
        taken.append((start, end))
        targets = sorted(by_phrase[phrase], key=lambda target: target[0])
        found.phrases.append(
            (phrase, [(system, code, row) for _p, system, code, row in targets])
        )
        if (start, end) == (0, len(said)):
            found.whole = phrase
    return found


def _among(table: str, column: str, values: list[str], params: list) -> str:
    """
    The rows of ``table`` whose ``column`` is one of ``values`` (a unique column),
    as a subquery: one statement, planned once. On PostgreSQL each value is looked
    up through the unique index (a lateral lookup per element of one array
    parameter): the prepared statement's generic plan of ``= ANY(array)`` compared
    every thesaurus row with every value instead (an array parameter is not
    hashed): 1.1 ms for a sentence's 43 phrases against 2,261 rows, and a
    semi-join on ``unnest()`` still read all the rows (0.2-0.4 ms for one word).
    """
    if connection.vendor == "postgresql":
        params.append(list(values))
        return (
            f"(SELECT x.* FROM unnest(%s::text[]) AS w(value) CROSS JOIN LATERAL "
            f"(SELECT * FROM {table} WHERE {column} = w.value OFFSET 0) x)"
        )
    params.extend(values)
    marks = ", ".join(["%s"] * len(values)) if values else "NULL"
    return f"(SELECT * FROM {table} WHERE {column} IN ({marks}))"


# A target's code as a sort key in SQL: ICD-10-CM without its dot; the other
# systems' codes are their own keys (the thesaurus names no CPT Category II codes).
_KEY = "replace(g.code, '.', '')"


def suggestions(prefix: str, limit: int, fetch_rows) -> list[tuple[str, dict]]:
    """(phrase, document of its main code) for phrases starting with ``prefix``."""
    typed = " ".join(tokens(prefix))
    if len(typed) < 3:
        return []
    if prefix.endswith(" "):
        typed += " "
    # A range on the phrase, compared byte-wise on either database.
    upper = typed[:-1] + chr(ord(typed[-1]) + 1)
    # CROSS JOIN fixes the order on SQLite (PostgreSQL plans it as an inner join):
    # the few phrases in the range first, then their targets, then each target's
    # document by its key. Left to itself, SQLite without statistics scanned every
    # code document by kind and joined the thesaurus to each: 52 s for "diab" on a
    # make-run database (176,800 documents) against 2 ms in this order.
    rows = fetch_rows(
        f"SELECT t.phrase, {clauses.columns('d')} FROM {_TERMS} t "
        f"CROSS JOIN {_TARGETS} g CROSS JOIN search_searchdocument d "
        "WHERE t.phrase >= %s AND t.phrase < %s "
        "AND g.term_id = t.id AND g.position = "
        f"(SELECT min(position) FROM {_TARGETS} f WHERE f.term_id = t.id) "
        f"AND d.system = g.system AND d.sort_key = {_KEY} "
        "AND d.kind IN ('code', 'write-up') "
        "ORDER BY length(t.phrase), t.phrase LIMIT %s",
        [typed, upper, limit],
    )
    return [
        (phrase, dict(zip(clauses.FIELDS, rest, strict=True)))
        for phrase, *rest in rows
        if phrase.startswith(typed)
    ]
