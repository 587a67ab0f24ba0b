"""
The engine behind ``index.search``: structured lookups first, then full text.

A query is read by ``query.parse``. Codes it names are looked up by key (an exact code
is always first), then the policies that name those codes (by themselves or through
a range), then policies by number ("aetna 0198", "CPB 198"), then codes by prefix or
range, then full text through the backend of the database vendor. Each part counts
its matches through an index, so ``total`` and ``counts`` never need a scan, and a
page is cut from the parts in that order.
"""

import html
import itertools
import math
import string
from dataclasses import dataclass, field

from django.db import connection
from django.utils.safestring import mark_safe

from index.models import (
    KIND_CODE,
    KIND_DIGITS,
    KIND_POLICY,
    KIND_STEP,
    KIND_WRITEUP,
)
from policies.models import PolicyCode
from procedures import codes

from . import KINDS, Filters, Hit, Results, Suggestion, clauses, lay
from .documents import MARK_CLOSE, MARK_OPEN, fold, policy_heading
from .matches import TextMatches
from .query import FILLER, Parsed, demoted_chapters, meaningful, parse, words_in

_FIELDS = clauses.FIELDS
_KIND_OF_DIGIT = {digit: kind for kind, digit in KIND_DIGITS.items()}
MAX_NUMBERS = 8
# Lay phrases offered first in the suggestions.
MAX_LAY_SUGGESTIONS = 3
# Words this long or shorter are corrected by one edit, longer ones by up to two.
SHORT_WORD = 5
# Further than any search's last page (which is shown instead), and an offset that
# SQL takes as a number.
MAX_PAGE = 10_000_000
_SELECT = f"SELECT {clauses.columns()} FROM search_searchdocument"


def _rows(sql: str, params) -> list[dict]:
    # Raw SQL for the key lookups: each costs microseconds in the database, and
    # compiling the same query through the ORM costs about a millisecond.
    rows = backend().fetch_rows(sql, list(params))
    return [dict(zip(_FIELDS, row, strict=False)) for row in rows]


def _marks(values) -> str:
    return ", ".join(["%s"] * len(values))


def _key_condition(pairs) -> tuple[str, list]:
    """(system = ? AND sort_key = ?) OR ... for (system, code) pairs."""
    sql = " OR ".join("(system = %s AND sort_key = %s)" for _ in pairs)
    params = []
    for system, code in pairs:
        params += [system, codes.sort_key(codes.System(system), code)]
    return f"({sql})", params


def _span_condition(spans) -> tuple[str, list]:
    params = []
    return clauses.span_condition(spans, clauses.positional(params)), params


def backend():
    if connection.vendor == "postgresql":
        from . import postgres

        return postgres
    from . import sqlite

    return sqlite


def highlight(text: str) -> str:
    """Escaped text with <mark> around the backend's markers; "" for no text."""
    if not text:
        return ""
    marked = html.escape(text).replace(MARK_OPEN, "<mark>")
    marked = marked.replace(MARK_CLOSE, "</mark>")
    if marked.count("<mark>") != marked.count("</mark>"):
        marked = marked.replace("<mark>", "").replace("</mark>", "")
    return mark_safe(marked)


def _hit(row: dict, snippet: str = "", reason: str = "") -> Hit:
    return Hit(
        kind=row["kind"],
        title=row["title"],
        url=row["url"],
        snippet=highlight(snippet),
        detail=row["detail"],
        system=row["system"],
        code=row["code"] if row["kind"] != KIND_POLICY else "",
        payer=row["payer"],
        reason=reason,
    )


def _passes(row: dict, filters: Filters) -> bool:
    if filters.system and row["system"] != filters.system:
        return False
    return not (filters.payer and row["payer"] != filters.payer)


@dataclass
class _Listed:
    """A part whose hits are few and already known."""

    hits: list[Hit]
    ids: list[int]

    def counts(self) -> dict[str, int]:
        found = dict.fromkeys(KINDS, 0)
        for hit in self.hits:
            found[hit.kind] += 1
        return found

    def fetch(self, kind: str, offset: int, limit: int) -> list[Hit]:
        hits = [hit for hit in self.hits if not kind or hit.kind == kind]
        return hits[offset : offset + limit]


@dataclass
class _Spans:
    """Codes by prefix or range, in code order."""

    spans: list[tuple[str, str, str, str]]
    filters: Filters
    exclude: list[int]
    reason: str
    _counts: dict[str, int] = field(default_factory=dict)

    def _where(self, kind="") -> tuple[str, list]:
        sql, params = _span_condition(self.spans)
        if self.exclude:
            sql += f" AND id NOT IN ({_marks(self.exclude)})"
            params += self.exclude
        if self.filters.system:
            sql += " AND system = %s"
            params.append(self.filters.system)
        if self.filters.payer:
            sql += " AND payer = %s"
            params.append(self.filters.payer)
        if kind:
            sql += " AND kind = %s"
            params.append(kind)
        return sql, params

    def counts(self) -> dict[str, int]:
        sql, params = self._where()
        # The kind is a digit of the id, so the count reads the key index only.
        found = backend().fetch_rows(
            f"SELECT id / {KIND_STEP}, count(*) FROM search_searchdocument "
            f"WHERE {sql} GROUP BY 1",
            params,
        )
        self._counts = {_KIND_OF_DIGIT[digit]: number for digit, number in found}
        return self._counts

    def fetch(self, kind: str, offset: int, limit: int) -> list[Hit]:
        sql, params = self._where(kind)
        rows = _rows(
            f"{_SELECT} WHERE {sql} ORDER BY system, sort_key LIMIT %s OFFSET %s",
            [*params, limit, offset],
        )
        return [_hit(row, reason=self.reason) for row in rows]


@dataclass
class _Text:
    """Full-text matches, ranked by the backend."""

    match: str
    filters: Filters
    exclude: list[int]
    spans: list
    found: TextMatches = field(default_factory=TextMatches)
    # The kind, offset and limit of the hits this part is expected to give the page.
    shown: tuple[str, int, int] = ("", 0, 0)
    # Words to look up in the same query if nothing matches (see ``corrections``).
    checked: list[str] = field(default_factory=list)
    # Match strings to test one by one in the same query if nothing matches: the
    # relaxed search's first lookup (see ``_relaxed``).
    alone: list[str] = field(default_factory=list)
    # Ranking: the ICD-10-CM chapters put back, and the query as a descriptor.
    demoted: str = ""
    exact: str = ""

    def where(self, kind=""):
        return backend().Where(
            self.filters, self.exclude, self.spans, kind, self.demoted, self.exact
        )

    def counts(self) -> dict[str, int]:
        engine = backend()
        where = self.where()
        self.found = engine.matches(
            self.match, where, self.shown, self.checked, self.alone
        )
        return self.found.counts

    def fetch(self, kind: str, offset: int, limit: int) -> list[Hit]:
        engine = backend()
        where = self.where(kind)
        rows = engine.page(self.match, where, self.found, offset, limit)
        return [
            _hit(dict(zip(_FIELDS, row[:-1], strict=True)), row[-1]) for row in rows
        ]


_POLICY_CODES = PolicyCode._meta.db_table


def _exact_codes(parsed: Parsed, filters: Filters) -> tuple[_Listed, str | None, bool]:
    """
    The query's codes, and whether a policy's code table may name one of them: in
    the same query, one row more when a row of any policy (published or not) holds
    a code of the query's key, so a search for a code that no policy names skips
    ``_naming_policies`` and its query (1.5 ms on PostgreSQL).
    """
    if not parsed.codes:
        return _Listed([], []), None, False
    sql, params = _key_condition(parsed.codes)
    # As ``PolicyCode.objects.mentions_of_codes`` reads them, through its index.
    named = " OR ".join(
        "(system = %s AND start_key <= %s AND end_key >= %s)" for _ in parsed.codes
    )
    named_params = []
    for system, code in parsed.codes:
        key = codes.sort_key(codes.System(system), code)
        named_params += [system, key, key]
    blanks = ", ".join(["NULL"] * (len(_FIELDS) - 1))
    found = backend().fetch_rows(
        f"SELECT {clauses.columns()}, 0 FROM search_searchdocument "
        f"WHERE {sql} AND kind IN (%s, %s) UNION ALL SELECT 0, {blanks}, 1 "
        f"WHERE EXISTS (SELECT 1 FROM {_POLICY_CODES} WHERE {named}) ORDER BY 1",
        [*params, KIND_CODE, KIND_WRITEUP, *named_params],
    )
    rows = [dict(zip(_FIELDS, row, strict=False)) for row in found if not row[-1]]
    named_somewhere = any(row[-1] for row in found)
    exact = None
    if len(rows) == 1 and parsed.names_one_code:
        exact = rows[0]["url"]
    hits = [_hit(row, reason="Exact code") for row in rows if _passes(row, filters)]
    return _Listed(hits, [row["id"] for row in rows]), exact, named_somewhere


def _naming_policies(
    parsed: Parsed, filters: Filters, seen: set, named_somewhere: bool
) -> _Listed:
    """Policies that name a code of the query, by listing it or through a range."""
    if not parsed.codes or filters.system or not named_somewhere:
        return _Listed([], [])
    # The code page's own rule (one query for all the codes): a policy that lists
    # a code by itself comes before one that reaches it through a range.
    chosen = {}
    for (_system, code), mentions in PolicyCode.objects.mentions_of_codes(
        parsed.codes
    ).items():
        for mention in mentions:
            current = chosen.get(mention.policy.pk)
            if current is None or (mention.listed and not current[0].listed):
                chosen[mention.policy.pk] = (mention, code)
    rows = sorted(
        (
            (policy_heading(mention.policy), mention, code)
            for mention, code in chosen.values()
        ),
        key=lambda found: (found[0]["payer"], found[0]["code"]),
    )
    hits, ids = [], []
    for row, mention, code in rows:
        if row["id"] in seen:
            continue
        ids.append(row["id"])
        if _passes(row, filters):
            reason = (
                "Policy lists this code"
                if mention.listed
                else f"Policy lists a range containing {code}"
            )
            hits.append(_hit(row, reason=reason))
    return _Listed(hits, ids)


def _numbered_policies(parsed: Parsed, filters: Filters, seen: set) -> _Listed:
    """Policies by number; a payer's name in the query narrows them to that payer."""
    if not parsed.numbers or filters.system:
        return _Listed([], [])
    if parsed.code_tokens and not parsed.policy_marker and seen:
        return _Listed([], [])
    numbers = parsed.numbers[:MAX_NUMBERS]
    rows = [
        row
        for row in _rows(
            f"{_SELECT} WHERE system = '' AND sort_key IN ({_marks(numbers)}) "
            f"ORDER BY payer, code",
            numbers,
        )
        if row["id"] not in seen
    ]
    named = set(parsed.words)
    by_payer = [
        row
        for row in rows
        if named & (set(row["payer"].split("-")) | set(words_in(row["detail"])))
    ]
    if by_payer:
        payer_words = set()
        for row in by_payer:
            payer_words |= set(row["payer"].split("-")) | set(words_in(row["detail"]))
        parsed.words = [word for word in parsed.words if word not in payer_words]
        rows = by_payer
    if rows and (by_payer or parsed.policy_marker):
        # The number was a policy number, not the start of a code.
        keys = {row["code"].upper() for row in rows} | set(parsed.numbers)
        parsed.spans = [
            span
            for span in parsed.spans
            if span[1].lstrip("0") not in keys and span[1] not in keys
        ]
        parsed.code_words = []
    hits = [_hit(row, reason="Policy number") for row in rows if _passes(row, filters)]
    return _Listed(hits, [row["id"] for row in rows])


def _edit_distance(a: str, b: str, bound: int) -> int:
    """
    Optimal string alignment distance (a swap of neighbours counts once), or
    ``bound + 1`` as soon as it must exceed ``bound``.
    """
    if abs(len(a) - len(b)) > bound:
        return bound + 1
    previous2, previous = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(
                previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost
            )
            if (
                previous2 is not None
                and j > 1
                and a[i - 1] == b[j - 2]
                and a[i - 2] == b[j - 1]
            ):
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > bound:
            return bound + 1
        previous2, previous = previous, current
    return min(previous[-1], bound + 1)


def checkable(words: list[str]) -> list[str]:
    """
    The words worth correcting: real words, and few of them. Filler ("keeps",
    "getting") that the index lacks is no typo: correcting it cost candidate
    lookups and a second search on every sentence, and the relaxed search that
    follows leaves it out anyway.
    """
    return [
        w
        for w in words
        if len(w) >= 4 and w.isalpha() and len(w) <= 40 and w not in FILLER
    ][:4]


def corrections(unknown: dict[str, list | None]) -> dict[str, str]:
    """
    Real words from the index for the words it does not know: ``unknown`` is what
    the backend's ``matches`` found of the ``checkable`` words (each with candidate
    words, or None where ``word_candidates`` must find them).
    """
    found = {}
    for word, prefetched in unknown.items():
        allowed = 1 if len(word) <= SHORT_WORD else 2
        for candidates in _candidates(word, prefetched):
            closest = _closest(word, candidates, allowed)
            if closest:
                found[word] = closest
                break
    return found


def _candidates(word: str, prefetched):
    """Lists of (word, documents) to correct ``word`` from, nearest means first."""
    if prefetched is not None:
        yield prefetched
    else:
        engine = backend()
        yield engine.word_candidates(word, broad=False)
        yield engine.word_candidates(word, broad=True)
    if len(word) <= SHORT_WORD:
        # One typo can spoil every trigram of a short word ("wrok" shares none with
        # "work"), so the words one edit away are looked up as they are.
        near = _one_edit_away(word)
        yield backend().fetch_rows(
            "SELECT word, documents FROM search_searchword "
            f"WHERE word IN ({_marks(near)})",
            near,
        )


def _one_edit_away(word: str) -> list[str]:
    """Every string one deletion, swap, change or insertion (a to z) from ``word``."""
    letters = string.ascii_lowercase
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    near = {head + tail[1:] for head, tail in splits if tail}
    near |= {head + tail[1] + tail[0] + tail[2:] for head, tail in splits[:-2]}
    near |= {head + c + tail[1:] for head, tail in splits if tail for c in letters}
    near |= {head + c + tail for head, tail in splits for c in letters}
    return sorted(near - {word})


def _closest(word: str, candidates, allowed: int) -> str | None:
    """
    Fewest edits first, then most documents, then A-Z: each candidate's distance
    is measured once, bounded by ``allowed``.
    """
    near = []
    for candidate, documents in candidates:
        distance = _edit_distance(word, candidate, allowed)
        if distance <= allowed:
            near.append((distance, -documents, candidate))
    return min(near)[2] if near else None


def _groups(words: list[str], synonyms: dict) -> list[list[str]]:
    """Each word with the words it also means ("broken": "fracture")."""
    return [[word, *synonyms.get(word, [])] for word in words]


def _text_part(
    parsed, filters, exclude, words, checked=(), synonyms=None
) -> _Text | None:
    match = backend().match_string(_groups(words, synonyms or {}), parsed.phrases)
    if not match:
        return None
    return _Text(
        match,
        filters,
        exclude,
        parsed.spans,
        checked=list(checked),
        demoted=demoted_chapters(words),
        exact=" ".join(words) if not parsed.phrases else "",
    )


# Counting queries a relaxed search may make before it settles (each a lookup that
# stops at its first match).
MAX_RELAXED_TRIES = 12
# Meaningful words a relaxed search combines.
MAX_RELAXED_WORDS = 6


def _alone(words: list[str], synonyms: dict) -> list[str]:
    """
    The match strings ``_relaxed`` first looks up, one per meaningful word, when
    there are several words; PostgreSQL answers them in the query that finds no
    match for all the words together, which saves a round trip.
    """
    if len(words) < 2:
        return []
    return [
        match
        for word in meaningful(words)[:MAX_RELAXED_WORDS]
        if (match := backend().match_string(_groups([word], synonyms)))
    ]


def _relaxed(
    parsed, filters, exclude, words, synonyms, known=None
) -> tuple[_Text, list] | None:
    """
    When all the words together match nothing: the largest sets of the meaningful
    words that match something, any of them, so documents matching more words rank
    first. Words that match nothing by themselves are left out first. None when no
    word matches. ``known``: match strings already looked up (``_alone``).
    """
    kept = meaningful(words)[:MAX_RELAXED_WORDS]
    engine = backend()
    where = engine.Where(filters, exclude, parsed.spans)
    known = known or {}

    def matching(choices) -> list[tuple[tuple, str]]:
        """The choices that match something, with their strings: one lookup."""
        strings = [engine.match_string(_groups(list(c), synonyms)) for c in choices]
        asked = [m for m in dict.fromkeys(strings) if m and m not in known]
        live = {**known, **dict(zip(asked, engine.exist(asked, where), strict=True))}
        return [(c, m) for c, m in zip(choices, strings, strict=True) if live.get(m)]

    found = matching([(word,) for word in kept])
    live = [chosen[0] for chosen, _match in found]
    if not live:
        return None
    tries = len(kept)
    largest = len(live) - 1 if len(live) == len(words) else len(live)
    for size in range(largest, 1, -1):
        choices = list(
            itertools.islice(
                itertools.combinations(live, size),
                max(0, MAX_RELAXED_TRIES - tries),
            )
        )
        tries += len(choices)
        larger = matching(choices)
        if larger:
            found = larger
            break
    used = list(dict.fromkeys(word for chosen, _match in found for word in chosen))
    part = _Text(
        engine.any_string([match for _chosen, match in found]),
        filters,
        exclude,
        parsed.spans,
        demoted=demoted_chapters(words),
    )
    return part, used


def _text_matches(parsed, filters, seen, words, thesaurus) -> bool:
    """Whether all the words together match a document (for a partial phrase)."""
    if not thesaurus.phrases:
        return False
    engine = backend()
    match = engine.match_string(_groups(words, thesaurus.synonyms), parsed.phrases)
    return bool(match) and engine.exists(
        match, engine.Where(filters, sorted(seen), parsed.spans)
    )


def _lay_part(found: lay.Found, filters: Filters, seen: set) -> _Listed:
    """The codes the query's lay phrases mean, each phrase's main meaning first."""
    hits, ids = [], []
    for phrase, targets in found.phrases:
        for system, code, row in targets[: lay.MAX_TARGETS]:
            rows = [row] if row is not None else _under_prefix(system, code)
            for each in rows:
                if each["id"] in seen or each["id"] in ids:
                    continue
                ids.append(each["id"])
                if _passes(each, filters):
                    hits.append(_hit(each, reason=f"Also called “{phrase}”"))
    return _Listed(hits, ids)


def _under_prefix(system: str, code: str) -> list[dict]:
    """The most general codes that start with a prefix that is no code itself."""
    key = lay.target_key(system, code)
    rows = _rows(
        f"{_SELECT} WHERE system = %s AND sort_key BETWEEN %s AND %s "
        "AND kind IN (%s, %s) ORDER BY length(sort_key), sort_key LIMIT %s",
        [
            system,
            key,
            key + codes.RANGE_END_MARK,
            KIND_CODE,
            KIND_WRITEUP,
            lay.MAX_UNDER_PREFIX,
        ],
    )
    shortest = min((len(row["code"]) for row in rows), default=0)
    return [row for row in rows if len(row["code"]) == shortest]


def _span_labels(spans) -> str:
    """Each span's label once: "A0" starts both HCPCS and ICD-10-CM codes."""
    return ", ".join(dict.fromkeys(label for *_span, label in spans))


def _size(counts: dict[str, int], kind: str) -> int:
    return counts.get(kind, 0) if kind else sum(counts.values())


def _shown(kind: str, before: int, offset: int, limit: int) -> tuple[str, int, int]:
    """
    What ``_cut`` will ask of the last part for the page ``offset``, ``limit`` of
    ``kind``, when the parts before it hold ``before`` hits of that kind.
    """
    taken_before = max(0, min(limit, before - offset))
    return kind, max(0, offset - before), limit - taken_before


def _cut(parts, kind: str, offset: int, limit: int) -> list[Hit]:
    hits = []
    for part, counts in parts:
        size = _size(counts, kind)
        if offset >= size:
            offset -= size
            continue
        taken = part.fetch(kind, offset, limit - len(hits))
        hits.extend(taken)
        offset = 0
        if len(hits) >= limit:
            break
    return hits


def _with_correction(text: str, fixed: dict[str, str]) -> str:
    words = []
    for token in text.split():
        folded = fold(token).strip(".,;:!?\"'()")
        words.append(fixed.get(folded, token))
    return " ".join(words)


def search(query: str, filters: Filters, page: int, per_page: int) -> Results:
    per_page = max(1, min(int(per_page or 20), 100))
    parsed = parse(query)
    filters = Filters(
        system=filters.system if filters.system in codes.SYSTEM_LABELS else "",
        kind=filters.kind if filters.kind in KINDS else "",
        payer=str(filters.payer or "")[:80],
    )
    results = Results(query=parsed.text, filters=filters, per_page=per_page)
    if not parsed.text:
        return results

    exact_part, results.exact, named_somewhere = _exact_codes(parsed, filters)
    seen = set(exact_part.ids)
    naming_part = _naming_policies(parsed, filters, seen, named_somewhere)
    seen |= set(naming_part.ids)
    number_part = _numbered_policies(parsed, filters, seen)
    seen |= set(number_part.ids)
    parts = [exact_part]
    notices = []
    if parsed.systems and not parsed.codes:
        system = parsed.systems[0]
        if not filters.system:
            filters = Filters(system.value, filters.kind, filters.payer)
            results.filters = filters
        notices.append(f"{codes.SYSTEM_LABELS[system]} only")

    words = list(parsed.words)
    found_structured = any(part.hits for part in parts)
    if parsed.spans and not words and not parsed.phrases:
        spans_part = _Spans(parsed.spans, filters, sorted(seen), "Code in range")
        parts.append(spans_part)
        notices.append(f"Codes {_span_labels(parsed.spans)}")
    elif parsed.spans:
        notices.append(f"Codes {_span_labels(parsed.spans)} matching words")
    elif not found_structured:
        words += [word for word in parsed.code_words if word not in words]

    # The lay phrases of the query reach their codes first; its words' synonyms
    # widen the full text.
    thesaurus = lay.Found()
    if parsed.words or parsed.phrases:
        thesaurus = lay.lookup(parsed.text, words, backend().fetch_rows)
    if thesaurus.whole or not _text_matches(parsed, filters, seen, words, thesaurus):
        # A phrase that is the whole query comes first; one that is only part of
        # it ("acute cystitis") answers when all the words together match nothing.
        lay_part = _lay_part(thesaurus, filters, seen)
        seen |= set(lay_part.ids)
        parts.insert(1, lay_part)

    parts += [naming_part, number_part]
    try:
        wanted = min(max(1, int(page)), MAX_PAGE)
    except (TypeError, ValueError):
        wanted = 1
    offset = (wanted - 1) * per_page
    counted = [(part, part.counts()) for part in parts]
    before = sum(_size(counts, filters.kind) for _part, counts in counted)
    synonyms = thesaurus.synonyms
    text = _text_part(parsed, filters, sorted(seen), words, checkable(words), synonyms)
    if text is not None:
        text.shown = _shown(filters.kind, before, offset, per_page)
        text.alone = _alone(words, synonyms)
        counted.append((text, text.counts()))
    totals = {kind: sum(c.get(kind, 0) for _p, c in counted) for kind in KINDS}

    # When nothing matched, the backend said which words it does not know.
    unknown = text.found.unknown if text is not None else None
    if not any(totals.values()) and unknown:
        fixed = corrections(unknown)
        if fixed:
            retry = _text_part(
                parsed,
                filters,
                sorted(seen),
                [fixed.get(w, w) for w in words],
                (),
                synonyms,
            )
            retry.shown = text.shown
            retry_counts = retry.counts()
            if any(retry_counts.values()):
                counted[-1] = (retry, retry_counts)
                totals = {kind: retry_counts.get(kind, 0) for kind in KINDS}
                results.suggestion = _with_correction(parsed.text, fixed)
                notices.append(f"Showing results for “{results.suggestion}”")

    if not any(totals.values()) and text is not None:
        # Never an empty page where some of the words find something.
        relaxed = _relaxed(
            parsed, filters, sorted(seen), words, synonyms, text.found.alone
        )
        if relaxed is not None:
            part, used = relaxed
            part.shown = text.shown
            part_counts = part.counts()
            if any(part_counts.values()):
                counted[-1] = (part, part_counts)
                totals = {kind: part_counts.get(kind, 0) for kind in KINDS}
                notices.append(
                    "Showing results for some of your words: " + " ".join(used)
                )

    results.counts = totals
    shown = counted[-1][0]
    if isinstance(shown, _Text) and shown.found.capped:
        # The counts stopped at the limit, so "more than" what they add up to.
        notices.append(
            f"More than {sum(counted[-1][1].values()):,} matches: "
            "the best are shown first"
        )
    results.total = totals[filters.kind] if filters.kind else sum(totals.values())
    pages = max(1, math.ceil(results.total / per_page))
    results.page = min(wanted, pages)
    results.hits = _cut(counted, filters.kind, (results.page - 1) * per_page, per_page)
    results.notice = "; ".join(notices)
    return results


def suggest(prefix: str, limit: int) -> list[Suggestion]:
    limit = max(1, min(int(limit or 10), 10))
    parsed = parse(prefix)
    if not parsed.text:
        return []
    found: list[dict] = []
    if parsed.codes or parsed.spans:
        conditions, params = [], []
        if parsed.codes:
            sql, values = _key_condition(parsed.codes)
            conditions.append(sql)
            params += values
        if parsed.spans:
            sql, values = _span_condition(parsed.spans)
            conditions.append(sql)
            params += values
        found = _rows(
            f"{_SELECT} WHERE {' OR '.join(conditions)} "
            f"ORDER BY system, sort_key LIMIT %s",
            [*params, limit],
        )
    elif parsed.code_words and not parsed.words:
        # A code typed half way ("975"), which no rule above reads as a prefix: in
        # each code system, so the (system, sort_key) index seeks to it (without a
        # system, SQLite walked the index: 10 ms against 0.06 ms at 100,000 rows).
        key = parsed.text.upper().replace(".", "")[:10]
        sql, params = _span_condition(
            [
                (system.value, key, key + codes.RANGE_END_MARK, "")
                for system in codes.System
            ]
        )
        found = _rows(
            f"{_SELECT} WHERE {sql} ORDER BY system, sort_key LIMIT %s",
            [*params, limit],
        )
    lay_found = []
    if parsed.words and not found:
        # Phrases people use ("heart at": "Heart attack — I21 Acute myocardial
        # infarction"), each leading to its main code.
        for phrase, row in lay.suggestions(
            prefix, min(limit, MAX_LAY_SUGGESTIONS), backend().fetch_rows
        ):
            if any(item.url == row["url"] for item in lay_found):
                continue
            lay_found.append(
                Suggestion(
                    f"{phrase[:1].upper()}{phrase[1:]} — {row['title']}",
                    row["url"],
                    row["kind"],
                    row["detail"],
                )
            )
        limit -= len(lay_found)
    if len(found) < limit:
        words = parsed.words[:-1] if not parsed.text.endswith(" ") else parsed.words
        last = parsed.words[-1] if parsed.words and words != parsed.words else ""
        if len(last) < 2:
            last = ""
        if words or last:
            rows = backend().suggest(words[:6], last, limit - len(found))
            known = {row["id"] for row in found}
            found += [
                dict(zip(_FIELDS, row, strict=True))
                for row in rows
                if row[0] not in known
            ]
    offered = {item.url for item in lay_found}
    return (
        lay_found
        + [
            Suggestion(row["title"], row["url"], row["kind"], row["detail"])
            for row in found
            if row["url"] not in offered
        ][:limit]
    )
