"""
Similar codes: for each code, a ranked list of other codes with reasons in plain words.

The lists are derived data, computed ahead of time into ``SimilarCode`` rows (by
``manage.py rebuild_similar_codes`` and, for single edits, by the receivers at the end
of this module), so that a page reads a code's list with one query.

Signals and weights
    A candidate's score is the sum of the signals below; reasons are listed strongest
    first. The weights are chosen so that structure the code set states outright (an
    add-on and its primary, one code's 7th-character variants) outranks structure that
    is only implied (same category), and so that a payer listing two codes side by side
    counts about as much as sharing a subcategory.

    ========================================  ======  ===============================
    Signal                                    Weight  Reason shown
    ========================================  ======  ===============================
    add-on ↔ primary code                     1.00    "Primary code of this add-on
                                                      code" / "Add-on code billed
                                                      with this code"
    same code, other 7th character (ICD)      0.80    "Same code, another 7th
                                                      character: S52.501"
    deepest shared ICD-10-CM parent, by       0.65 …  "Same subcategory: S52.50",
    length of the shared code (6, 5, 4, 3)    0.20    "Same category: S52"
    broader / narrower code (the parent       level   "Broader code it belongs to",
    chain or the code text)                   weight  "More specific code under it"
    same 7th character (ICD)                  +0.10   "Same 7th character (A)"
    next to it in the code set (CPT, HCPCS,   0.25 …  "Next to it in the code set" /
    ICD-10-PCS; d positions apart, d ≤ 5)     0.05    "Nearby in the code set"
    same section                              0.15    "Same section: Physical …"
    listed in the same group of a policy      0.60    "Listed in the same group of
                                                      Aetna policy 0198 (…)"
    listed in the same policy                 0.35    "Listed in Aetna policy 0198 …"
    the same, one code through a range        0.30 /  "In the same group of …, this
    (same group / same policy)                0.15    code through the range …"
    both inside one very large range row      0.05    "Both inside the range … of …"
    similar descriptor or write-up text       0.50 ×  "Similar wording: “work”,
    (TF-IDF cosine ≥ 0.2)                     cosine  “hardening”"
    ========================================  ======  ===============================

    Policy signals add up over policies, to at most 1.0. Only published policies count.
    A range row that covers more than ``RANGE_LISTING_CAP`` codes (``S00.00X+ -
    T88.9XX+`` covers about 40,000) never proposes candidates; it only adds its small
    weight to a pair that another signal proposed.

Text
    The text signal is one function, :func:`text_model`, a TF-IDF model built from the
    codes' descriptors and the text of *published* write-ups only, so that a draft never
    shows through a "Similar wording" reason. It could later be swapped for the search
    engine's "more like this" without touching the rest.

Stored reasons
    ``SimilarCode.reasons`` is a list of ``{"kind": ..., "text": ...}`` dicts, strongest
    first. ``kind`` is one of :data:`REASON_KINDS`; pages group a list by the kind of
    each entry's first reason (:data:`REASON_GROUPS`).

Scale
    Everything is read with a few bulk queries into memory and candidates come from the
    sorted code list (neighbours by sort key), the policy tables and rare shared words,
    never from all pairs, so the full ICD-10-CM set (about 98,000 codes, two million
    rows) is rebuilt in about five minutes on SQLite (``bench/similar.py``). Each
    candidate is ranked on numbers alone; only the entries kept get their reasons
    written out. A refresh reads the same corpus (about three seconds on the full set),
    so a bulk import larger than ``REFRESH_LIMIT`` codes is not refreshed inline: run
    ``rebuild_similar_codes`` afterwards. Until then pages show the code's neighbours.
"""

from __future__ import annotations

import bisect
import heapq
import json
import logging
import math
import re
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save, pre_delete
from django.utils import timezone

from . import codes
from .models import WRITEUP_SECTIONS, Code, CodeSection, Procedure, SimilarCode

logger = logging.getLogger(__name__)

MAX_SIMILAR = 20
"""How many similar codes a code's stored list holds."""
MIN_SCORE = 0.1
TOP_ON_CODE_PAGE = 5

ADDON_WEIGHT = 1.0
SEVENTH_SIBLING_WEIGHT = 0.8
# Deepest shared ICD-10-CM code (without its dot) by length -> weight.
LEVEL_WEIGHTS = {6: 0.65, 5: 0.5, 4: 0.35, 3: 0.2}
NARROWER_FACTOR = 0.8
SAME_SEVENTH_WEIGHT = 0.1
NEARBY_WEIGHT = 0.25
NEARBY_DISTANCE = 5
SECTION_WEIGHT = 0.15
GROUP_LISTED_WEIGHT = 0.6
POLICY_LISTED_WEIGHT = 0.35
GROUP_RANGE_WEIGHT = 0.3
POLICY_RANGE_WEIGHT = 0.15
LARGE_RANGE_WEIGHT = 0.05
POLICY_CAP = 1.0
TEXT_WEIGHT = 0.5
TEXT_MIN_COSINE = 0.2

RANGE_LISTING_CAP = 60
"""A range row covering more codes than this is a weak signal only (see above)."""
# Codes either side in sort order that are considered; ICD codes sit in deep families.
WINDOW = {codes.System.ICD10CM: 24}
DEFAULT_WINDOW = 8
# A code's candidates from a long policy group: this many members either side of it.
POLICY_WINDOW = 60
# Words shared by at most this many codes propose candidates (commoner words would
# propose thousands); every candidate's wording is still compared.
TEXT_DF_CAP = 60
TEXT_SEED_TERMS = 4
REFRESH_LIMIT = 2_000
"""Bulk saves of more codes than this wait for ``rebuild_similar_codes``."""

ICD = codes.System.ICD10CM
_SYSTEM_ORDER = {system.value: index for index, system in enumerate(codes.System)}
FULL_ICD_KEY = 7

REASON_KINDS = (
    "addon",
    "family",
    "broader",
    "narrower",
    "subcategory",
    "category",
    "seventh",
    "policy-group",
    "policy",
    "policy-range",
    "large-range",
    "nearby",
    "section",
    "text",
)
# Page headings for a list grouped by each entry's strongest reason, in this order.
REASON_GROUPS = {
    "addon": "Billed together",
    "family": "Same code family",
    "broader": "Same code family",
    "narrower": "Same code family",
    "subcategory": "Same code family",
    "category": "Same code family",
    "seventh": "Same code family",
    "policy-group": "Listed together in payer policies",
    "policy": "Listed together in payer policies",
    "policy-range": "Listed together in payer policies",
    "large-range": "Listed together in payer policies",
    "nearby": "Nearby in the code set",
    "section": "Nearby in the code set",
    "text": "Similar wording",
}

_WORD = re.compile(r"[a-z][a-z0-9]+")
_STOPWORDS = frozenset(
    """
    a an and any are as at be been by can each eg for from has have in into is it its
    may not of on or per such than that the their them then there these this those to
    was were which while who will with within without you your also more most other
    """.split()
)


# --- Loading ---------------------------------------------------------------------


@dataclass
class Corpus:
    """Everything the computation reads, loaded with a few bulk queries."""

    # id -> (system, code, sort_key, descriptor, parent_id, section_id)
    codes: dict[int, tuple] = field(default_factory=dict)
    # system -> sorted keys, and the ids in the same order
    keys: dict[str, list[str]] = field(default_factory=dict)
    ids: dict[str, list[int]] = field(default_factory=dict)
    position: dict[int, int] = field(default_factory=dict)
    by_key: dict[tuple[str, str], int] = field(default_factory=dict)
    section_names: dict[int, str] = field(default_factory=dict)
    primaries: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    addons: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    lineage: dict[int, frozenset[str]] = field(default_factory=dict)
    # code id -> {policy id: {group id: row id or None (listed by itself)}}
    policies: dict[int, dict] = field(default_factory=lambda: defaultdict(dict))
    # code id -> ids of the large range rows covering it
    large_rows: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    # policy id -> name for reasons; row id -> display; bag -> sorted member ids
    policy_names: dict[int, str] = field(default_factory=dict)
    row_display: dict[int, str] = field(default_factory=dict)
    row_policy: dict[int, int] = field(default_factory=dict)
    bags: list[list[int]] = field(default_factory=list)
    bag_of: dict[int, list[tuple[int, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    text: TextModel | None = None

    @classmethod
    def load(cls) -> Corpus:
        corpus = cls()
        rows = Code.objects.values_list(
            "id", "system", "code", "sort_key", "descriptor", "parent_id", "section_id"
        ).order_by("system", "sort_key")
        for row in rows.iterator(chunk_size=5_000):
            code_id, system, _code, key = row[:4]
            corpus.codes[code_id] = row[1:]
            corpus.keys.setdefault(system, []).append(key)
            corpus.ids.setdefault(system, []).append(code_id)
            corpus.by_key[(system, key)] = code_id
        for system, keys in corpus.keys.items():
            # Python compares str by code point, as the binary collation of the keys.
            order = sorted(range(len(keys)), key=keys.__getitem__)
            corpus.keys[system] = [keys[i] for i in order]
            ids = corpus.ids[system]
            corpus.ids[system] = [ids[i] for i in order]
            for index, code_id in enumerate(corpus.ids[system]):
                corpus.position[code_id] = index
        corpus.section_names = dict(CodeSection.objects.values_list("id", "name"))
        pairs = Code.primary_codes.through.objects.values_list(
            "from_code_id", "to_code_id"
        )
        for addon, primary in pairs:
            corpus.primaries[addon].add(primary)
            corpus.addons[primary].add(addon)
        corpus._load_policies()
        corpus.text = text_model(corpus)
        return corpus

    def lineage_of(self, code_id) -> frozenset[str]:
        """The keys of a code's broader codes: from its text and its parent links."""
        found = self.lineage.get(code_id)
        if found is not None:
            return found
        system, _code, key, _desc, parent_id, _sec = self.codes[code_id]
        keys = set()
        if system == ICD:
            keys.update(key[:length] for length in range(3, len(key)))
        seen = 0
        while parent_id is not None and parent_id in self.codes and seen < 8:
            parent = self.codes[parent_id]
            keys.add(parent[2])
            parent_id = parent[4]
            seen += 1
        keys.discard(key)
        found = self.lineage[code_id] = frozenset(keys)
        return found

    def _load_policies(self):
        # Imported here: policies sit beside procedures in the content layer, and
        # procedures.models must not import them.
        from policies.models import PolicyCode, PublicationStatus

        rows = (
            PolicyCode.objects.filter(group__policy__status=PublicationStatus.PUBLISHED)
            .select_related("group__policy__payer")
            .order_by("group__policy_id", "group__position", "group_id", "position")
        )
        bags = defaultdict(list)
        for row in rows:
            group, policy = row.group, row.group.policy
            self.policy_names[policy.id] = (
                f"{policy.payer.name} policy {policy.number} ({policy.title})"
            )
            self.row_display[row.id] = row.display
            self.row_policy[row.id] = policy.id
            covered = self.covered(row.system, row.start_key, row.end_key)
            listed = None
            if not row.is_range:
                listed = self.by_key.get((row.system, row.start_key))
            if len(covered) > RANGE_LISTING_CAP:
                for code_id in covered:
                    self.large_rows[code_id].add(row.id)
                covered = [listed] if listed is not None else []
            for code_id in covered:
                groups = self.policies[code_id].setdefault(policy.id, {})
                mode = None if code_id == listed else row.id
                if groups.get(group.id, row.id) is not None:
                    groups[group.id] = mode
                for bag in (("group", group.id), ("policy", policy.id)):
                    bags[bag].append(code_id)
        for members in bags.values():
            unique = sorted(set(members), key=self.order)
            index = len(self.bags)
            self.bags.append(unique)
            for position, code_id in enumerate(unique):
                self.bag_of[code_id].append((index, position))

    def covered(self, system, start_key, end_key) -> list[int]:
        keys = self.keys.get(system, [])
        low = bisect.bisect_left(keys, start_key)
        high = bisect.bisect_right(keys, end_key)
        return self.ids[system][low:high]

    def order(self, code_id):
        system, _code, key = self.codes[code_id][:3]
        return _SYSTEM_ORDER.get(system, 99), key


# --- Text ------------------------------------------------------------------------


class TextModel:
    """
    TF-IDF over each code's public text, with postings of the rarer words.

    Only word counts are built up front (document frequencies need every text); a
    code's unit-length vector is worked out when first asked for, so a refresh of a
    few codes does not pay for 98,000 vectors.
    """

    def __init__(self, counts: dict[int, Counter]):
        self.counts = counts
        frequency = Counter()
        for counter in counts.values():
            frequency.update(counter.keys())
        total = max(len(counts), 1)
        self.idf = {word: math.log(1 + total / df) for word, df in frequency.items()}
        self.postings = defaultdict(list)
        for code_id, counter in counts.items():
            for word in counter:
                if 2 <= frequency[word] <= TEXT_DF_CAP:
                    self.postings[word].append(code_id)
        self._vectors = {}

    def vector(self, code_id: int) -> dict[str, float]:
        vector = self._vectors.get(code_id)
        if vector is None:
            counter = self.counts.get(code_id, {})
            raw = {w: (1 + math.log(n)) * self.idf[w] for w, n in counter.items()}
            norm = math.sqrt(sum(value * value for value in raw.values())) or 1.0
            vector = self._vectors[code_id] = {w: v / norm for w, v in raw.items()}
        return vector

    def cosine(self, a: int, b: int) -> float:
        first, second = self.vector(a), self.vector(b)
        if len(first) > len(second):
            first, second = second, first
        return sum(weight * second[w] for w, weight in first.items() if w in second)

    def shared(self, a: int, b: int, limit: int = 3) -> list[str]:
        """The words that weigh most in both texts."""
        first, second = self.vector(a), self.vector(b)
        common = [w for w in first if w in second]
        common.sort(key=lambda w: first[w] * second[w], reverse=True)
        return common[:limit]

    def candidates(self, code_id: int) -> set[int]:
        """Codes sharing one of this code's weightiest rare words."""
        vector = self.vector(code_id)
        rare = [w for w in vector if w in self.postings]
        rare.sort(key=vector.__getitem__, reverse=True)
        found = set()
        for word in rare[:TEXT_SEED_TERMS]:
            found.update(self.postings[word])
        return found


def words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]


def public_text(corpus: Corpus) -> dict[int, str]:
    """Descriptor plus the published write-up of each code: never a draft's text."""
    texts = {code_id: row[3] for code_id, row in corpus.codes.items()}
    fields = ["code_id", "title", *(name for name, _heading in WRITEUP_SECTIONS)]
    for writeup in Procedure.objects.published().values_list(*fields):
        code_id, *parts = writeup
        if code_id in texts:
            texts[code_id] += "\n" + "\n".join(parts)
    return texts


def text_model(corpus: Corpus) -> TextModel:
    """The text signal: TF-IDF over our own public text, no outside model or data."""
    texts = public_text(corpus)
    return TextModel({code_id: Counter(words(text)) for code_id, text in texts.items()})


# --- Scoring ---------------------------------------------------------------------


@dataclass
class Entry:
    similar_id: int
    score: float
    reasons: list[dict]


# Each signal adds its weight and, when ``found`` is a list, its reason. Ranking runs
# without reasons (``found`` None) over every candidate; only the entries kept are
# scored again with their reasons written out, which saves most of the string work.


def _reason(found, weight, kind, text):
    if found is not None:
        found.append((weight, kind, text))
    return weight


def _code_text(system, key):
    return key[:3] + "." + key[3:] if system == ICD and len(key) > 3 else key


def _structure(corpus, a, b, found):
    system_a, _code_a, key_a, _d, _p, section_a = corpus.codes[a]
    system_b, _code_b, key_b, _d, _p, section_b = corpus.codes[b]
    score = 0.0
    if b in corpus.primaries.get(a, ()):
        text = "Primary code of this add-on code"
        score += _reason(found, ADDON_WEIGHT, "addon", text)
    if b in corpus.addons.get(a, ()):
        text = "Add-on code billed with this code"
        score += _reason(found, ADDON_WEIGHT, "addon", text)
    if system_a != system_b:
        return score
    lineage_a, lineage_b = corpus.lineage_of(a), corpus.lineage_of(b)
    family = False
    if lineage_a or lineage_b:
        if key_b in lineage_a:
            family = True
            weight = LEVEL_WEIGHTS.get(min(len(key_b), 6), 0.2)
            text = "Broader code it belongs to"
            score += _reason(found, weight, "broader", text)
        elif key_a in lineage_b:
            family = True
            weight = LEVEL_WEIGHTS.get(min(len(key_a), 6), 0.2) * NARROWER_FACTOR
            text = "More specific code under it"
            score += _reason(found, weight, "narrower", text)
        else:
            shared = lineage_a & lineage_b
            if shared:
                family = True
                deepest = max(shared, key=len)
                score += _shared_parent(system_a, key_a, key_b, deepest, found)
    if system_a == ICD and len(key_a) == len(key_b) == FULL_ICD_KEY:
        if key_a[-1] == key_b[-1] and key_a[:3] == key_b[:3]:
            text = found is not None and f"Same 7th character ({key_a[-1]})"
            score += _reason(found, SAME_SEVENTH_WEIGHT, "seventh", text)
    if not family:
        distance = abs(corpus.position[a] - corpus.position[b])
        if distance <= NEARBY_DISTANCE and section_a == section_b:
            weight = NEARBY_WEIGHT * (1 - (distance - 1) / NEARBY_DISTANCE)
            text = "Next to it in the code set"
            if distance > 1:
                text = "Nearby in the code set"
            score += _reason(found, weight, "nearby", text)
        if section_a is not None and section_a == section_b:
            text = found is not None and (
                f"Same section: {corpus.section_names.get(section_a, '')}"
            )
            score += _reason(found, SECTION_WEIGHT, "section", text)
    return score


def _shared_parent(system, key_a, key_b, deepest, found):
    length = len(deepest)
    label = found is not None and _code_text(system, deepest)
    if length == 6 and len(key_a) == len(key_b) == FULL_ICD_KEY:
        text = f"Same code, another 7th character: {label}"
        return _reason(found, SEVENTH_SIBLING_WEIGHT, "family", text)
    if length <= 3:
        return _reason(found, LEVEL_WEIGHTS[3], "category", f"Same category: {label}")
    weight = LEVEL_WEIGHTS.get(min(length, 6), 0.2)
    return _reason(found, weight, "subcategory", f"Same subcategory: {label}")


def _policy(corpus, a, b, found):
    mine, theirs = corpus.policies.get(a), corpus.policies.get(b)
    score = 0.0
    if mine and theirs:
        for policy_id in mine.keys() & theirs.keys():
            score += _one_policy(
                corpus, policy_id, mine[policy_id], theirs[policy_id], b, found
            )
    large = corpus.large_rows.get(a)
    if large and score == 0:
        for row_id in large & corpus.large_rows.get(b, set()):
            name = corpus.policy_names[corpus.row_policy[row_id]]
            text = f"Both inside the range {corpus.row_display[row_id]} of {name}"
            score += _reason(found, LARGE_RANGE_WEIGHT, "large-range", text)
            break
    return min(score, POLICY_CAP)


def _one_policy(corpus, policy_id, mine, theirs, b, found):
    name = corpus.policy_names[policy_id]
    same_group = mine.keys() & theirs.keys()
    if any(mine[g] is None and theirs[g] is None for g in same_group):
        text = f"Listed in the same group of {name}"
        return _reason(found, GROUP_LISTED_WEIGHT, "policy-group", text)
    if None in mine.values() and None in theirs.values():
        return _reason(found, POLICY_LISTED_WEIGHT, "policy", f"Listed in {name}")
    through = _through(corpus, mine, theirs, b)
    if same_group:
        text = f"In the same group of {name}, {through}"
        return _reason(found, GROUP_RANGE_WEIGHT, "policy-range", text)
    text = f"Named in {name}, {through}"
    return _reason(found, POLICY_RANGE_WEIGHT, "policy-range", text)


def _through(corpus, mine, theirs, b):
    """Which side of the pair a policy names through a range, in words."""
    my_rows = {row for row in mine.values() if row is not None}
    their_rows = {row for row in theirs.values() if row is not None}
    if my_rows and my_rows == their_rows:
        return f"both through the range {corpus.row_display[min(my_rows)]}"
    code = corpus.codes[b][1]
    mine_through = my_rows and None not in mine.values()
    theirs_through = their_rows and None not in theirs.values()
    if mine_through and theirs_through:
        return (
            f"this code through the range {corpus.row_display[min(my_rows)]} and "
            f"{code} through {corpus.row_display[min(their_rows)]}"
        )
    if mine_through:
        return f"this code through the range {corpus.row_display[min(my_rows)]}"
    return f"{code} through the range {corpus.row_display[min(their_rows)]}"


def _text(corpus, a, b, found):
    cosine = corpus.text.cosine(a, b)
    if cosine < TEXT_MIN_COSINE:
        return 0.0
    text = found is not None and "Similar wording: " + ", ".join(
        f"“{word}”" for word in corpus.text.shared(a, b)
    )
    return _reason(found, TEXT_WEIGHT * cosine, "text", text)


def _score(corpus, a, b, found=None):
    return (
        _structure(corpus, a, b, found)
        + _policy(corpus, a, b, found)
        + _text(corpus, a, b, found)
    )


def candidates(corpus: Corpus, a: int) -> set[int]:
    system = corpus.codes[a][0]
    ids = corpus.ids[system]
    position = corpus.position[a]
    window = WINDOW.get(system, DEFAULT_WINDOW)
    found = set(ids[max(0, position - window) : position + window + 1])
    for broader in corpus.lineage_of(a):
        code_id = corpus.by_key.get((system, broader))
        if code_id is not None:
            found.add(code_id)
    found.update(corpus.primaries.get(a, ()))
    found.update(corpus.addons.get(a, ()))
    for bag, index in corpus.bag_of.get(a, ()):
        members = corpus.bags[bag]
        found.update(members[max(0, index - POLICY_WINDOW) : index + POLICY_WINDOW + 1])
    found.update(corpus.text.candidates(a))
    found.discard(a)
    return found


def compute(corpus: Corpus, a: int) -> list[Entry]:
    """The ranked list for code id ``a``: at most MAX_SIMILAR entries."""
    scored = []
    for b in candidates(corpus, a):
        score = _score(corpus, a, b)
        if score >= MIN_SCORE:
            scored.append((-score, corpus.order(b), b))
    entries = []
    for _negative, _order, b in heapq.nsmallest(MAX_SIMILAR, scored):
        found = []
        score = _score(corpus, a, b, found)
        found.sort(key=lambda reason: -reason[0])
        reasons = [{"kind": kind, "text": text} for _weight, kind, text in found]
        entries.append(Entry(b, round(score, 4), reasons))
    return entries


# --- Storing ---------------------------------------------------------------------

BATCH = 5_000


class Writer:
    """
    Streams lists into ``SimilarCode`` in batches, without model instances.

    A full rebuild writes about two million rows; building a model instance for each
    (``bulk_create``) took most of the run, so rows go in as tuples with their JSON
    already encoded, the way ``JSONField`` would encode it (``COPY`` on PostgreSQL).
    """

    COLUMNS = "code_id, similar_id, rank, score, reasons, computed_at"

    def __init__(self):
        table = connection.ops.quote_name(SimilarCode._meta.db_table)
        self.copy = connection.vendor == "postgresql"
        # PostgreSQL takes rows fastest through COPY; SQLite through executemany.
        self.sql = (
            f"COPY {table} ({self.COLUMNS}) FROM STDIN"
            if self.copy
            else f"INSERT INTO {table} ({self.COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)"
        )
        self.now = connection.ops.adapt_datetimefield_value(timezone.now())
        self.rows = []
        self.written = 0

    def add(self, code_id, entries):
        for rank, entry in enumerate(entries, start=1):
            self.rows.append(
                (
                    code_id,
                    entry.similar_id,
                    rank,
                    entry.score,
                    json.dumps(entry.reasons),
                    self.now,
                )
            )
        if len(self.rows) >= BATCH:
            self.flush()

    def flush(self):
        if self.rows:
            with connection.cursor() as cursor:
                if self.copy:
                    with cursor.cursor.copy(self.sql) as copy:
                        for row in self.rows:
                            copy.write_row(row)
                else:
                    cursor.executemany(self.sql, self.rows)
            self.written += len(self.rows)
            self.rows = []


def _delete_lists(code_ids):
    code_ids = list(code_ids)
    for start in range(0, len(code_ids), 500):
        SimilarCode.objects.filter(code_id__in=code_ids[start : start + 500]).delete()


@dataclass
class Rebuilt:
    codes: int
    rows: int


def rebuild(systems=None, progress=None, missing_only=False) -> Rebuilt:
    """
    Recompute and store the lists of every code (of ``systems``, if given); with
    ``missing_only``, only of the codes that have no stored list yet.
    """
    corpus = Corpus.load()
    systems = [s for s in (systems or corpus.ids) if s in corpus.ids]
    targets = [code_id for system in systems for code_id in corpus.ids[system]]
    with transaction.atomic():
        if missing_only:
            listed = set(SimilarCode.objects.values_list("code_id", flat=True))
            targets = [code_id for code_id in targets if code_id not in listed]
        else:
            SimilarCode.objects.filter(code__system__in=systems).delete()
        writer = Writer()
        for done, code_id in enumerate(targets, start=1):
            writer.add(code_id, compute(corpus, code_id))
            if progress is not None:
                progress(done, len(targets))
        writer.flush()
    return Rebuilt(len(targets), writer.written)


def refresh(code_ids=(), policy_ids=()) -> int:
    """
    Recompute the lists of the given codes, the codes of the given policies, the codes
    whose lists name any of them, and the codes their new lists name (similarity runs
    both ways, so those lists may now want them). Returns the number of codes redone.
    """
    corpus = Corpus.load()
    wanted = {code_id for code_id in code_ids if code_id in corpus.codes}
    wanted |= policy_members(corpus, policy_ids)
    wanted |= set(
        SimilarCode.objects.filter(similar_id__in=wanted).values_list(
            "code_id", flat=True
        )
    )
    lists = {code_id: compute(corpus, code_id) for code_id in wanted}
    for entries in list(lists.values()):
        for entry in entries:
            if entry.similar_id not in lists:
                lists[entry.similar_id] = compute(corpus, entry.similar_id)
    with transaction.atomic():
        _delete_lists(lists)
        writer = Writer()
        for code_id, entries in lists.items():
            writer.add(code_id, entries)
        writer.flush()
    return len(lists)


def policy_members(corpus, policy_ids) -> set[int]:
    """Codes a policy lists or names through a range small enough to count."""
    if not policy_ids:
        return set()
    from policies.models import PolicyCode

    members = set()
    rows = PolicyCode.objects.filter(group__policy_id__in=policy_ids).values_list(
        "system", "start_key", "end_key"
    )
    for system, start_key, end_key in rows:
        covered = corpus.covered(system, start_key, end_key)
        if len(covered) <= RANGE_LISTING_CAP:
            members.update(covered)
        elif (system, start_key) in corpus.by_key:
            members.add(corpus.by_key[(system, start_key)])
    return members


def stored_for(code):
    """A code's stored list, best first, with the similar codes: one query."""
    return (
        SimilarCode.objects.filter(code=code)
        .select_related("similar")
        .only(
            "rank",
            "reasons",
            "code_id",
            "similar__system",
            "similar__code",
            "similar__descriptor",
        )
        .order_by("rank")
    )


def grouped(entries) -> list[tuple[str, list]]:
    """Entries grouped by their strongest reason, the groups in order of best rank."""
    groups = {}
    for entry in entries:
        kind = entry.reasons[0]["kind"] if entry.reasons else "text"
        groups.setdefault(REASON_GROUPS.get(kind, "Other similar codes"), []).append(
            entry
        )
    return list(groups.items())


# --- Keeping the lists current ---------------------------------------------------
#
# Receivers note what changed; one flush after the commit recomputes it. Each change
# registers its own on_commit callback, and whichever runs first flushes everything
# noted so far (the rest find nothing to do), so a transaction of many saves is
# recomputed once.

_pending = threading.local()


def _note(code_ids=(), policy_ids=()):
    if not hasattr(_pending, "codes"):
        _pending.codes, _pending.policies = set(), set()
    _pending.codes.update(code_ids)
    _pending.policies.update(policy_ids)
    # Similar codes are derived data: a failure to refresh them is logged, and must
    # not turn a committed save into an error page, nor stop the callbacks after it
    # (the search index's).
    transaction.on_commit(flush, robust=True)


def flush():
    code_ids = set(getattr(_pending, "codes", ()))
    policy_ids = set(getattr(_pending, "policies", ()))
    _pending.codes, _pending.policies = set(), set()
    if not (code_ids or policy_ids):
        return
    try:
        refresh(code_ids, policy_ids)
    except Exception:
        # The save has committed. Say what is stale and how to repair it: Django's
        # own message for a failed robust callback names only "flush".
        logger.exception(
            "Similar codes were not refreshed after a commit (codes: %d, "
            "policies: %d); their lists stay as they were until manage.py "
            "rebuild_similar_codes runs.",
            len(code_ids),
            len(policy_ids),
        )


def _listers(code_ids):
    return SimilarCode.objects.filter(similar_id__in=code_ids).values_list(
        "code_id", flat=True
    )


def code_saved(sender, instance, raw=False, **kwargs):
    if not raw:
        _note([instance.pk])


def code_deleting(sender, instance, **kwargs):
    # The rows naming the code go with it (CASCADE): note who listed it first.
    _note(list(_listers([instance.pk])))


def procedure_changed(sender, instance, raw=False, **kwargs):
    if not raw:
        _note([instance.code_id])


def policy_changed(sender, instance, raw=False, **kwargs):
    if not raw:
        _note(policy_ids=[instance.pk])


def group_changed(sender, instance, raw=False, **kwargs):
    if not raw:
        _note(policy_ids=[instance.policy_id])


def row_changed(sender, instance, raw=False, **kwargs):
    if not raw:
        _note(policy_ids=[instance.group.policy_id])


def row_deleting(sender, instance, **kwargs):
    # Deleting a group or a policy deletes its rows one by one through the cascade,
    # each sending this: note the codes the row reached, and who listed them, while
    # the row still exists. A very large range only ever added a small weight.
    reached = list(
        Code.objects.filter(
            system=instance.system,
            sort_key__gte=instance.start_key,
            sort_key__lte=instance.end_key,
        ).values_list("id", flat=True)[: RANGE_LISTING_CAP + 1]
    )
    if len(reached) <= RANGE_LISTING_CAP:
        _note([*reached, *_listers(reached)])


def codes_bulk_saved(sender, system=None, ids=(), **kwargs):
    ids = list(ids)
    if len(ids) > REFRESH_LIMIT:
        logger.warning(
            "%s %s codes were saved in bulk; run manage.py rebuild_similar_codes "
            "to refresh their similar codes.",
            len(ids),
            system,
        )
        return
    _note(ids)


def policy_content_changed(sender, policy=None, **kwargs):
    if policy is not None:
        _note(policy_ids=[policy.pk])


def connect():
    """Connects the receivers; called once from ProceduresConfig.ready()."""
    from policies.models import Policy, PolicyCode, PolicyCodeGroup
    from policies.signals import policy_content_changed as policy_signal

    from .signals import codes_bulk_saved as codes_signal

    uid = "procedures.similar."
    post_save.connect(code_saved, sender=Code, dispatch_uid=uid + "code")
    pre_delete.connect(code_deleting, sender=Code, dispatch_uid=uid + "code_del")
    post_save.connect(procedure_changed, sender=Procedure, dispatch_uid=uid + "p")
    post_delete.connect(procedure_changed, sender=Procedure, dispatch_uid=uid + "p_del")
    post_save.connect(policy_changed, sender=Policy, dispatch_uid=uid + "policy")
    post_save.connect(group_changed, sender=PolicyCodeGroup, dispatch_uid=uid + "group")
    post_save.connect(row_changed, sender=PolicyCode, dispatch_uid=uid + "row")
    pre_delete.connect(row_deleting, sender=PolicyCode, dispatch_uid=uid + "row_del")
    codes_signal.connect(codes_bulk_saved, dispatch_uid=uid + "bulk")
    policy_signal.connect(policy_content_changed, dispatch_uid=uid + "policy_content")
