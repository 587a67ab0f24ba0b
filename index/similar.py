"""
Similar codes: for each code, a ranked list of other codes with reasons in plain words.

The lists are derived data, computed ahead of time into ``SimilarCode`` rows (by
``manage.py rebuild_similar_codes`` and, for single edits, by the one change queue in
``index.changes``), so that a page reads a code's list with one query.

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
    ICD-10-PCS, in place of the section:
    the same procedure on the other side      0.60    "The same procedure on the
    (Right/Left body parts of one table)              other side: Knee Joint, Left"
    same body part, other characters 5-7      0.30    "Same body part (Knee Joint,
                                                      Right), another device"
    same table (first three characters)       0.10    "Same table (0SR), another
                                                      body part"
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
    never from all pairs. A rebuild (:func:`rebuild`, :func:`compute_all`) scores the
    candidates of 10,000 codes at a time in numpy arrays, the text signal as row-wise
    products of a scipy sparse TF-IDF matrix, and stores the same lists as scoring
    each code by itself (:func:`compute`) would: the full ICD-10-CM set (about 98,000
    codes, two million rows) in well under a minute (``bench/similar.py``). Each
    candidate is ranked on numbers alone; only the entries kept get their reasons
    written out. A refresh after a save scores its few codes one by one on a corpus
    kept in the process and updated from the rows that changed ("The cached corpus"
    below), so it reads a few rows instead of the whole corpus; a bulk import larger
    than ``REFRESH_LIMIT`` codes rebuilds every list once it commits instead.

Codes with nothing similar
    A code whose list came out empty gets an ``EmptySimilarList`` row, so that
    ``rebuild_similar_codes --missing`` tells it from a code never computed.
"""

from __future__ import annotations

import array
import bisect
import heapq
import json
import logging
import math
import re
import secrets
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from procedures import codes
from procedures.models import WRITEUP_SECTIONS, Code, CodeSection, Procedure

from .models import ContentChange, EmptySimilarList, SimilarCode

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
PCS_OTHER_SIDE_WEIGHT = 0.6
PCS_SAME_PART_WEIGHT = 0.3
PCS_SAME_TABLE_WEIGHT = 0.1
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
VECTOR_CACHE = 20_000
"""Word vectors the cached corpus keeps (it lives as long as its process)."""
REFRESH_LIMIT = 2_000
"""Bulk saves of more codes than this rebuild every list instead of refreshing."""

ICD = codes.System.ICD10CM
PCS = codes.System.ICD10PCS
# The characters an ICD-10-PCS code's 4th (body part) and 5th-7th may take.
PCS_CHARACTERS = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_SIDE = re.compile(r"\b(Right|Left)\b")
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
    "pcs-side",
    "pcs-part",
    "pcs-table",
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
    "pcs-side": "Same code family",
    "pcs-part": "Same code family",
    "pcs-table": "Nearby in the code set",
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

CODE_COLUMNS = ("system", "code", "sort_key", "descriptor", "parent_id", "section_id")


def _chunks(values, size=500):
    for start in range(0, len(values), size):
        yield values[start : start + size]


def read_policies(policy_ids=None) -> dict[int, tuple[str, list[tuple]]]:
    """
    The code-table rows of the published policies (of ``policy_ids``, if given): policy
    id -> (its name in reasons, [(row id, group id, system, start key, end key, is a
    range, display)] in the order of the table).
    """
    # Imported here: policies sit beside procedures in the content layer, and
    # procedures.models must not import them.
    from policies.models import PolicyCode, PublicationStatus

    rows = PolicyCode.objects.filter(group__policy__status=PublicationStatus.PUBLISHED)
    if policy_ids is not None:
        rows = rows.filter(group__policy_id__in=list(policy_ids))
    rows = rows.select_related("group__policy__payer").order_by(
        "group__policy_id", "group__position", "group_id", "position", "id"
    )
    found = {}
    for row in rows:
        policy = row.group.policy
        name = f"{policy.payer.name} policy {policy.number} ({policy.title})"
        _name, listed = found.setdefault(policy.id, (name, []))
        listed.append(
            (
                row.id,
                row.group_id,
                row.system,
                row.start_key,
                row.end_key,
                row.is_range,
                row.display,
            )
        )
    return found


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
    # ("group" or "policy", id) -> its index in ``bags``; indices of emptied bags
    bag_index: dict[tuple[str, int], int] = field(default_factory=dict)
    free_bags: list[int] = field(default_factory=list)
    # policy id -> (name, its published rows in order), from ``read_policies``
    policy_rows: dict[int, tuple[str, list[tuple]]] = field(default_factory=dict)
    text: TextModel | None = None

    @classmethod
    def load(cls) -> Corpus:
        corpus = cls()
        rows = Code.objects.values_list("id", *CODE_COLUMNS).order_by(
            "system", "sort_key"
        )
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
            corpus._number(system)
        corpus.section_names = dict(CodeSection.objects.values_list("id", "name"))
        pairs = Code.primary_codes.through.objects.values_list(
            "from_code_id", "to_code_id"
        )
        for addon, primary in pairs:
            corpus.primaries[addon].add(primary)
            corpus.addons[primary].add(addon)
        corpus.policy_rows = read_policies()
        corpus._derive_policies()
        corpus.text = text_model(corpus)
        return corpus

    def _number(self, system):
        for index, code_id in enumerate(self.ids[system]):
            self.position[code_id] = index

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

    def _derive_policies(self, policy_ids=None, before=None):
        """
        The policy signals, from ``policy_rows`` and the codes as they are now: of
        every policy, or only of ``policy_ids`` (a policy save), whose rows were
        ``before`` ({policy id: (name, rows)}, as last derived; the codes have not
        moved under any of them since).

        Only the changed policies are taken out and put back, so a save does not
        rebuild the signals of every other policy (a range such as ``S00.00X+ -
        T88.9XX+`` marks some 40,000 codes, whose sets would all be made again).
        """
        every = policy_ids is None
        if every:
            self.policies = defaultdict(dict)
            self.large_rows = defaultdict(set)
            self.policy_names, self.row_display, self.row_policy = {}, {}, {}
            self.bags, self.bag_of, self.bag_index = [], defaultdict(list), {}
            self.free_bags = []
            policy_ids, before = sorted(self.policy_rows), {}
        bags, named = defaultdict(list), set()
        for policy_id in sorted(policy_ids):
            unchanged = self._drop_policy(policy_id, before.get(policy_id))
            if policy_id in self.policy_rows:
                named.update(self._add_policy(policy_id, bags, unchanged))
        for bag, members in bags.items():
            unique = sorted(set(members), key=self.order)
            index = self.free_bags.pop() if self.free_bags else len(self.bags)
            if index == len(self.bags):
                self.bags.append(unique)
            else:
                self.bags[index] = unique
            self.bag_index[bag] = index
            for position, code_id in enumerate(unique):
                self.bag_of[code_id].append((index, position))
        if not every:
            # Each code's policies in id order, as a full derive adds them.
            for code_id in named:
                self.policies[code_id] = dict(sorted(self.policies[code_id].items()))

    def _large_spans(self, rows) -> dict[int, tuple]:
        """The rows covering more than RANGE_LISTING_CAP codes: row id -> span."""
        found = {}
        for row_id, _group, system, start_key, end_key, _range, _display in rows:
            keys = self.keys.get(system, [])
            count = bisect.bisect_right(keys, end_key) - bisect.bisect_left(
                keys, start_key
            )
            if count > RANGE_LISTING_CAP:
                found[row_id] = (system, start_key, end_key)
        return found

    def _drop_policy(self, policy_id, before) -> set[int]:
        """
        Takes out what ``before``, a policy's rows as last derived, put in; returns
        the large rows it keeps unchanged (their codes still hold them).
        """
        if before is None:
            return set()
        _name, rows = before
        now = self._large_spans(self.policy_rows.get(policy_id, (None, []))[1])
        unchanged = set()
        for row_id, span in self._large_spans(rows).items():
            if now.get(row_id) == span:
                unchanged.add(row_id)
                continue
            for code_id in self.covered(*span):
                holding = self.large_rows.get(code_id)
                if holding is not None:
                    holding.discard(row_id)
                    if not holding:
                        del self.large_rows[code_id]
        self.policy_names.pop(policy_id, None)
        for row in rows:
            self.row_display.pop(row[0], None)
            self.row_policy.pop(row[0], None)
        keys = [("policy", policy_id), *(("group", row[1]) for row in rows)]
        for bag in dict.fromkeys(keys):
            index = self.bag_index.pop(bag, None)
            if index is None:
                continue
            for code_id in self.bags[index]:
                entries = [e for e in self.bag_of[code_id] if e[0] != index]
                if entries:
                    self.bag_of[code_id] = entries
                else:
                    del self.bag_of[code_id]
                if bag[0] == "policy":
                    named = self.policies.get(code_id)
                    if named is not None:
                        named.pop(policy_id, None)
                        if not named:
                            del self.policies[code_id]
            self.bags[index] = []
            self.free_bags.append(index)
        return unchanged

    def _add_policy(self, policy_id, bags, unchanged) -> set[int]:
        """Puts in one policy's signals, its bags into ``bags``; returns its codes."""
        name, rows = self.policy_rows[policy_id]
        self.policy_names[policy_id] = name
        named = set()
        for row_id, group_id, system, start_key, end_key, is_range, display in rows:
            self.row_display[row_id] = display
            self.row_policy[row_id] = policy_id
            covered = self.covered(system, start_key, end_key)
            listed = None
            if not is_range:
                listed = self.by_key.get((system, start_key))
            if len(covered) > RANGE_LISTING_CAP:
                if row_id not in unchanged:
                    for code_id in covered:
                        self.large_rows[code_id].add(row_id)
                covered = [listed] if listed is not None else []
            for code_id in covered:
                named.add(code_id)
                groups = self.policies[code_id].setdefault(policy_id, {})
                mode = None if code_id == listed else row_id
                if groups.get(group_id, row_id) is not None:
                    groups[group_id] = mode
                for bag in (("group", group_id), ("policy", policy_id)):
                    bags[bag].append(code_id)
        return named

    def members(self, policy_ids) -> set[int]:
        """Codes the published policies list, or name through a range small enough."""
        found = set()
        for policy_id in policy_ids:
            index = self.bag_index.get(("policy", policy_id))
            if index is not None:
                found.update(self.bags[index])
        return found

    def _spanned(self, system, key) -> bool:
        """Whether a policy row of the corpus reaches ``key`` (or would, if a code)."""
        return any(
            row[2] == system and row[3] <= key <= row[4]
            for _name, rows in self.policy_rows.values()
            for row in rows
        )

    # --- Keeping a cached corpus current (see "The cached corpus" below) ---------

    def update(self, code_ids=(), policy_ids=()) -> None:
        """
        Re-reads the given codes (with their write-ups and add-on links) and policies
        and updates everything derived from them, so that the corpus is the one
        ``load`` would now give: a few queries instead of the whole corpus.
        """
        code_ids, policy_ids = set(code_ids), set(policy_ids)
        derive = False
        if code_ids:
            derive = self._update_codes(code_ids)
        before = {}
        if policy_ids:
            fresh = read_policies(policy_ids)
            for policy_id in policy_ids:
                old = self.policy_rows.pop(policy_id, None)
                if old is not None:
                    before[policy_id] = old
                if policy_id in fresh:
                    self.policy_rows[policy_id] = fresh[policy_id]
        if derive:  # a code moved under a policy row: every policy is derived again
            self._derive_policies()
        elif policy_ids:
            rows = self.policy_rows
            changed = [p for p in policy_ids if before.get(p) != rows.get(p)]
            if changed:
                self._derive_policies(changed, before)

    def _update_codes(self, code_ids) -> bool:
        """Updates the given codes; says whether the policy signals need deriving."""
        fresh = {}
        for chunk in _chunks(sorted(code_ids)):
            rows = Code.objects.filter(id__in=chunk).values_list("id", *CODE_COLUMNS)
            fresh.update((row[0], row[1:]) for row in rows)
        moved, systems, derive = [], set(), False
        for code_id in sorted(code_ids):
            old, new = self.codes.get(code_id), fresh.get(code_id)
            if old == new:
                continue
            if old is None or new is None or old[0] != new[0] or old[2] != new[2]:
                moved.append((code_id, old, new))
            elif old[4] != new[4]:
                self.lineage.clear()  # a new parent: its lineage and its children's
        for code_id, old, _new in moved:
            if old is not None:
                system, key = old[0], old[2]
                keys, ids = self.keys[system], self.ids[system]
                index = bisect.bisect_left(keys, key)
                while ids[index] != code_id:
                    index += 1
                del keys[index], ids[index]
                if self.by_key.get((system, key)) == code_id:
                    del self.by_key[(system, key)]
                self.position.pop(code_id, None)
                del self.codes[code_id]
                systems.add(system)
                derive = derive or self._spanned(system, key)
        for code_id, _old, new in moved:
            if new is not None:
                system, key = new[0], new[2]
                keys = self.keys.setdefault(system, [])
                ids = self.ids.setdefault(system, [])
                index = bisect.bisect_left(keys, key)
                keys.insert(index, key)
                ids.insert(index, code_id)
                self.by_key[(system, key)] = code_id
                systems.add(system)
                derive = derive or self._spanned(system, key)
        for code_id in code_ids:
            if code_id in fresh:
                self.codes[code_id] = fresh[code_id]
        for system in systems:
            if not self.ids[system]:
                del self.keys[system], self.ids[system]
            else:
                self._number(system)
        if moved:
            self.lineage.clear()
        self.section_names = dict(CodeSection.objects.values_list("id", "name"))
        self._update_addons(code_ids)
        gone = [code_id for code_id in code_ids if code_id not in fresh]
        self.text.update(
            {
                code_id: Counter(words(text))
                for code_id, text in public_text(self, code_ids & fresh.keys()).items()
            }
            | dict.fromkeys(gone)
        )
        return derive

    def _update_addons(self, code_ids):
        through = Code.primary_codes.through.objects
        pairs = []
        for chunk in _chunks(sorted(code_ids)):
            pairs += through.filter(
                Q(from_code_id__in=chunk) | Q(to_code_id__in=chunk)
            ).values_list("from_code_id", "to_code_id")
        for code_id in code_ids:
            for primary in self.primaries.pop(code_id, ()):
                self.addons[primary].discard(code_id)
                if not self.addons[primary]:
                    del self.addons[primary]
            for addon in self.addons.pop(code_id, ()):
                self.primaries[addon].discard(code_id)
                if not self.primaries[addon]:
                    del self.primaries[addon]
        for addon, primary in pairs:
            self.primaries[addon].add(primary)
            self.addons[primary].add(addon)

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
        self.frequency = Counter()
        for counter in counts.values():
            self.frequency.update(counter.keys())
        self.idf = {}
        self._weigh(self.frequency)
        # Every word held by at most TEXT_DF_CAP texts, with its holders (a word in
        # one text too: an edit that adds it to a second needs no search).
        self.postings = defaultdict(list)
        for code_id, counter in counts.items():
            for word in counter:
                if self.frequency[word] <= TEXT_DF_CAP:
                    self.postings[word].append(code_id)
        self._vectors = {}
        # None while a rebuild runs (it wants every vector); VECTOR_CACHE once cached.
        self.vector_limit = None

    def _weigh(self, words):
        total = max(len(self.counts), 1)
        frequency = self.frequency
        for word in words:
            self.idf[word] = math.log(1 + total / frequency[word])

    def update(self, changed: dict[int, Counter | None]) -> None:
        """
        New word counts for some codes (None: the code is gone), with the document
        frequencies, weights and postings they change: the model ``__init__`` would
        build from the new counts, at the cost of the words that changed.
        """
        before = len(self.counts)
        touched = set()
        for code_id, counter in changed.items():
            old = self.counts.get(code_id)
            if old == counter:
                continue
            if old is not None:
                del self.counts[code_id]
                for word in old:
                    self.frequency[word] -= 1
                    if word in self.postings:
                        self.postings[word].remove(code_id)
                touched.update(old)
            if counter is not None:
                self.counts[code_id] = counter
                for word in counter:
                    self.frequency[word] += 1
                    if word in self.postings:
                        self.postings[word].append(code_id)
                    elif self.frequency[word] == 1:
                        self.postings[word] = [code_id]
                touched.update(counter)
        if not touched and len(self.counts) == before:
            return
        for word in touched:
            frequency = self.frequency[word]
            if frequency <= 0:
                del self.frequency[word]
                self.idf.pop(word, None)
                self.postings.pop(word, None)
            elif frequency > TEXT_DF_CAP:
                self.postings.pop(word, None)
            elif word not in self.postings:  # fell back under the cap: rare again
                self.postings[word] = [
                    code_id for code_id, counts in self.counts.items() if word in counts
                ]
        touched = [word for word in touched if word in self.frequency]
        if len(self.counts) != before:
            # The weight of every word depends on the number of texts.
            self._weigh(self.frequency)
            self._vectors.clear()
            return
        self._weigh(touched)
        # The vectors holding a reweighed word go: a rare word's holders are known,
        # a common one's are looked for among the few vectors kept.
        stale = set(changed)
        common = []
        for word in touched:
            if word in self.postings:
                stale.update(self.postings[word])
            else:
                common.append(word)
        if common:
            stale.update(
                code_id
                for code_id, vector in self._vectors.items()
                if any(word in vector for word in common)
            )
        for code_id in stale:
            self._vectors.pop(code_id, None)

    def vector(self, code_id: int) -> dict[str, float]:
        vector = self._vectors.get(code_id)
        if vector is None:
            if self.vector_limit and len(self._vectors) >= self.vector_limit:
                self._vectors.clear()  # a long-lived process keeps only so many
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
        frequency = self.frequency
        rare = [w for w in vector if w in self.postings and frequency[w] >= 2]
        rare.sort(key=vector.__getitem__, reverse=True)
        found = set()
        for word in rare[:TEXT_SEED_TERMS]:
            found.update(self.postings[word])
        return found


def words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]


def public_text(corpus: Corpus, code_ids=None) -> dict[int, str]:
    """
    Descriptor plus the published write-up of each code (of ``code_ids``, if given):
    never a draft's text.
    """
    if code_ids is None:
        texts = {code_id: row[3] for code_id, row in corpus.codes.items()}
        writeups = Procedure.objects.published()
    else:
        texts = {code_id: corpus.codes[code_id][3] for code_id in code_ids}
        writeups = Procedure.objects.published().filter(code_id__in=list(texts))
    fields = ["code_id", "title", *(name for name, _heading in WRITEUP_SECTIONS)]
    for writeup in writeups.values_list(*fields):
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
        if system_a == PCS:
            score += _pcs_structure(corpus, key_a, key_b, section_a, section_b, found)
        elif section_a is not None and section_a == section_b:
            text = found is not None and (
                f"Same section: {corpus.section_names.get(section_a, '')}"
            )
            score += _reason(found, SECTION_WEIGHT, "section", text)
    return score


def _other_side(name_a, name_b) -> bool:
    """ "Knee Joint, Right" and "Knee Joint, Left" (ICD-10-PCS body parts)."""
    if not name_a or not name_b or not _SIDE.search(name_a):
        return False
    swapped = _SIDE.sub(lambda m: "Left" if m[1] == "Right" else "Right", name_a)
    return swapped == name_b


def _pcs_structure(corpus, key_a, key_b, section_a, section_b, found):
    """ICD-10-PCS codes of one table: the other side, the same body part, the table."""
    if len(key_a) != 7 or len(key_b) != 7 or key_a[:3] != key_b[:3]:
        return 0.0
    names = corpus.section_names
    if key_a[3] == key_b[3]:
        text = found is not None and _part_text(key_a, key_b, names.get(section_a))
        return _reason(found, PCS_SAME_PART_WEIGHT, "pcs-part", text)
    if key_a[4:] == key_b[4:] and _other_side(
        names.get(section_a), names.get(section_b)
    ):
        text = f"The same procedure on the other side: {names.get(section_b)}"
        return _reason(found, PCS_OTHER_SIDE_WEIGHT, "pcs-side", text)
    text = f"Same table ({key_a[:3]}), another body part"
    return _reason(found, PCS_SAME_TABLE_WEIGHT, "pcs-table", text)


def _part_text(key_a, key_b, name):
    # Characters 5-7 are the approach, device and qualifier in the Medical and
    # Surgical and the Obstetrics sections; other sections name them otherwise.
    axes = ("approach", "device", "qualifier")
    if key_a[0] not in "01":
        axes = ("5th character", "6th character", "7th character")
    changed = [
        axis
        for axis, mine, theirs in zip(axes, key_a[4:], key_b[4:], strict=True)
        if mine != theirs
    ]
    part = f" ({name})" if name else ""
    return f"Same body part{part}, another {' and '.join(changed)}"


def _other_sides(corpus, a):
    """The ICD-10-PCS code for the same procedure on the other side, if any."""
    system, _code, key, _desc, _parent, section = corpus.codes[a]
    name = corpus.section_names.get(section)
    if len(key) != 7 or not name or not _SIDE.search(name):
        return []
    found = []
    for character in PCS_CHARACTERS:
        b = corpus.by_key.get((system, key[:3] + character + key[4:]))
        if b is not None and _other_side(
            name, corpus.section_names.get(corpus.codes[b][5])
        ):
            found.append(b)
    return found


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
        both = large & corpus.large_rows.get(b, set())
        if both and found is None:
            score += LARGE_RANGE_WEIGHT
        elif both:  # the first row, whatever order the sets were filled in
            row_id = min(both)
            name = corpus.policy_names[corpus.row_policy[row_id]]
            text = f"Both inside the range {corpus.row_display[row_id]} of {name}"
            score += _reason(found, LARGE_RANGE_WEIGHT, "large-range", text)
    return min(score, POLICY_CAP)


def _one_policy(corpus, policy_id, mine, theirs, b, found):
    same_group = mine.keys() & theirs.keys()
    if any(mine[g] is None and theirs[g] is None for g in same_group):
        kind, weight = "policy-group", GROUP_LISTED_WEIGHT
    elif None in mine.values() and None in theirs.values():
        kind, weight = "policy", POLICY_LISTED_WEIGHT
    else:
        kind = "policy-range"
        weight = GROUP_RANGE_WEIGHT if same_group else POLICY_RANGE_WEIGHT
    if found is None:  # ranking: the words are written for the entries kept only
        return weight
    name = corpus.policy_names[policy_id]
    if kind == "policy-group":
        text = f"Listed in the same group of {name}"
    elif kind == "policy":
        text = f"Listed in {name}"
    elif same_group:
        text = f"In the same group of {name}, {_through(corpus, mine, theirs, b)}"
    else:
        text = f"Named in {name}, {_through(corpus, mine, theirs, b)}"
    return _reason(found, weight, kind, text)


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
    if system == PCS:
        found.update(_other_sides(corpus, a))
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


# --- The bulk computation, in arrays ---------------------------------------------
#
# ``rebuild`` ranks every code's candidates at once instead of one code at a time. The
# candidates are the ones ``candidates`` proposes (a few per code, found by Python
# look-ups that cost a second or two on the full set); what took the time was scoring
# them, about sixty per code, one pair at a time. Here each signal is one array
# operation over all the pairs: the text signal is the row-wise dot product of a
# sparse TF-IDF matrix, and the ICD-10-CM family signals are arithmetic on the codes'
# lengths and shared prefixes. Pairs the arrays do not describe (other code systems,
# whose broader codes come from parent links; add-on codes; codes named in policies)
# are scored by the functions above, so every score is the one ``compute`` gives.
# Only the entries kept have their reasons written out, again from the arrays.

PAIR_BLOCK = 500_000
"""Pairs whose text similarity is worked out in one sparse product."""


class Arrays:
    """The corpus as arrays indexed by a code's place in ``order`` (0 … n-1)."""

    def __init__(self, corpus: Corpus):
        self.ids = np.array(
            sorted(corpus.codes, key=corpus.order), dtype=np.int64
        )  # ids by (system, sort key): the tie-break of a ranking
        self.index = {int(code_id): i for i, code_id in enumerate(self.ids)}
        n = len(self.ids)
        self.length = np.zeros(n, dtype=np.int64)
        self.position = np.zeros(n, dtype=np.int64)
        self.section = np.full(n, -1, dtype=np.int64)
        self.keys = np.zeros((n, FULL_ICD_KEY + 1), dtype=np.uint8)
        # Codes whose broader codes are exactly the shorter ICD-10-CM prefixes of
        # their key: their family signals are worked out from the keys alone.
        self.prefixed = np.zeros(n, dtype=bool)
        self.addon = np.zeros(n, dtype=bool)
        self.policy = np.zeros(n, dtype=bool)
        # The set of large range rows covering each code, numbered (-1: none): two
        # codes with the same number are both inside a large range.
        self.large_rows = np.full(n, -1, dtype=np.int64)
        numbered = {}
        for i, code_id in enumerate(self.ids.tolist()):
            system, _code, key, _desc, _parent, section = corpus.codes[code_id]
            self.position[i] = corpus.position[code_id]
            if section is not None:
                self.section[i] = section
            self.length[i] = len(key)
            if system == ICD and 3 <= len(key) <= FULL_ICD_KEY and key.isascii():
                prefixes = {key[:length] for length in range(3, len(key))}
                self.prefixed[i] = corpus.lineage_of(code_id) == prefixes
                self.keys[i, : len(key)] = np.frombuffer(key.encode(), np.uint8)
            self.addon[i] = bool(
                corpus.primaries.get(code_id) or corpus.addons.get(code_id)
            )
            self.policy[i] = bool(corpus.policies.get(code_id))
            rows = corpus.large_rows.get(code_id)
            if rows:
                self.large_rows[i] = numbered.setdefault(frozenset(rows), len(numbered))
        self.large = self.large_rows >= 0
        self.text = self._tfidf(corpus)

    def _tfidf(self, corpus):
        """Unit-length TF-IDF rows: ``TextModel.vector``, the very same numbers."""
        from scipy import sparse

        model = corpus.text
        columns = {word: column for column, word in enumerate(model.idf)}
        indptr, indices, data = [0], [], []
        for code_id in self.ids.tolist():
            vector = model.vector(code_id)
            indices.extend(columns[word] for word in vector)
            data.extend(vector.values())
            indptr.append(len(indices))
        shape = (len(self.ids), max(len(columns), 1))
        text = sparse.csr_matrix(
            (np.array(data, dtype=np.float64), indices, indptr), shape
        )
        # Where each word comes in its text (1, 2, …): ``TextModel.shared`` breaks
        # ties by it. Same structure as ``text``, so both sort the same way.
        sizes = np.diff(indptr)
        places = np.arange(len(data)) - np.repeat(indptr[:-1], sizes) + 1
        self.places = sparse.csr_matrix(
            (places.astype(np.float64), indices, indptr), shape
        )
        self.present = sparse.csr_matrix((np.ones(len(data)), indices, indptr), shape)
        self.words = list(columns)
        for matrix in (text, self.places, self.present):
            matrix.sort_indices()
        return text

    def cosine(self, a, b):
        """Text similarity of each pair (a[i], b[i]): row-wise dot products."""
        found = np.empty(len(a), dtype=np.float64)
        for start in range(0, len(a), PAIR_BLOCK):
            end = start + PAIR_BLOCK
            rows = self.text[a[start:end]].multiply(self.text[b[start:end]])
            found[start:end] = np.asarray(rows.sum(axis=1)).ravel()
        return found


def _pairs(corpus, arrays, targets):
    """Every (code, candidate) pair of the targets, as two index arrays."""

    first, second = array.array("q"), array.array("q")
    index = arrays.index
    for code_id in targets:
        found = [index[b] for b in candidates(corpus, code_id)]
        first.extend([index[code_id]] * len(found))
        second.extend(found)
    return np.frombuffer(first, dtype=np.int64), np.frombuffer(second, dtype=np.int64)


def _level_weights(lengths):
    """``LEVEL_WEIGHTS.get(min(length, 6), 0.2)`` for an array of lengths."""
    table = np.full(7, LEVEL_WEIGHTS[3])
    for length, weight in LEVEL_WEIGHTS.items():
        table[length] = weight
    return table[np.minimum(lengths, 6)]


@dataclass
class Scored:
    """The signals of each pair, kept to write the reasons of the entries kept."""

    family: np.ndarray  # 0 none, 1 broader, 2 narrower, 3 shared parent
    family_weight: np.ndarray
    depth: np.ndarray  # length of the deepest shared key, for kind 3
    seventh: np.ndarray
    nearby: np.ndarray
    section: np.ndarray
    cosine: np.ndarray
    python: np.ndarray  # structure scored by ``_structure``
    policy: np.ndarray  # policy scored by ``_policy``
    score: np.ndarray


def _score_pairs(corpus, arrays, a, b) -> Scored:
    """Each pair's score, the sum ``_score`` gives, signal by signal in arrays."""
    n = len(a)
    length_a, length_b = arrays.length[a], arrays.length[b]
    keys_a, keys_b = arrays.keys[a], arrays.keys[b]
    same = np.cumprod(keys_a == keys_b, axis=1).sum(axis=1)
    shared = np.minimum(same, np.minimum(length_a, length_b))
    del same

    family = np.zeros(n, dtype=np.int8)
    broader = (length_b >= 3) & (length_b < length_a) & (shared >= length_b)
    narrower = ~broader & (length_a >= 3) & (length_a < length_b) & (shared >= length_a)
    depth = np.minimum(shared, np.minimum(length_a, length_b) - 1)
    parent = ~broader & ~narrower & (depth >= 3)
    family[broader], family[narrower], family[parent] = 1, 2, 3
    weight = np.zeros(n)
    weight[broader] = _level_weights(length_b[broader])
    weight[narrower] = _level_weights(length_a[narrower]) * NARROWER_FACTOR
    full = (length_a == FULL_ICD_KEY) & (length_b == FULL_ICD_KEY)
    weight[parent] = np.where(
        (depth[parent] == 6) & full[parent],
        SEVENTH_SIBLING_WEIGHT,
        np.where(depth[parent] <= 3, LEVEL_WEIGHTS[3], _level_weights(depth[parent])),
    )

    last = FULL_ICD_KEY - 1
    seventh = full & (keys_a[:, last] == keys_b[:, last]) & (shared >= 3)
    del keys_a, keys_b
    distance = np.abs(arrays.position[a] - arrays.position[b])
    section_a, section_b = arrays.section[a], arrays.section[b]
    loose = (family == 0) & (section_a == section_b)
    nearby = np.where(
        loose & (distance <= NEARBY_DISTANCE),
        NEARBY_WEIGHT * (1 - (distance - 1) / NEARBY_DISTANCE),
        0.0,
    )
    section = loose & (section_a >= 0)

    structure = 0.0 + weight
    structure = np.where(seventh, structure + SAME_SEVENTH_WEIGHT, structure)
    structure = np.where(nearby > 0, structure + nearby, structure)
    structure = np.where(section, structure + SECTION_WEIGHT, structure)

    python = ~(arrays.prefixed[a] & arrays.prefixed[b]) | arrays.addon[a]
    ids = arrays.ids
    for i in np.flatnonzero(python).tolist():
        structure[i] = _structure(corpus, int(ids[a[i]]), int(ids[b[i]]), None)
    shared = arrays.policy[a] & arrays.policy[b]
    large = ~shared & arrays.large[a] & arrays.large[b]
    # Not both named in policies, but inside the same large ranges: the range's
    # small weight, without asking ``_policy`` (some 40,000 codes sit inside the
    # seed's S00.00X+ - T88.9XX+, and so do most of their candidates).
    inside = large & (arrays.large_rows[a] == arrays.large_rows[b])
    policy_score = np.where(inside, LARGE_RANGE_WEIGHT, 0.0)
    for i in np.flatnonzero(shared | (large & ~inside)).tolist():
        policy_score[i] = _policy(corpus, int(ids[a[i]]), int(ids[b[i]]), None)
    policy = shared | large  # the pairs whose reasons ask ``_policy``

    base = structure + policy_score
    cosine = arrays.cosine(a, b)
    score = base + _text_weight(cosine)
    # A sparse product adds a pair's word weights in another order than
    # ``TextModel.cosine``, so a similarity can differ from it in the last bits.
    # Where those bits could matter (a tie with another candidate, a weight at a
    # threshold or equal to another reason's, a score halfway between two stored
    # values), the pair's similarity is worked out the way ``compute`` does, so
    # the lists are the ones it stores.
    close = _close_calls(a, b, cosine, score)
    for i in close.tolist():
        cosine[i] = corpus.text.cosine(int(ids[a[i]]), int(ids[b[i]]))
    score[close] = base[close] + _text_weight(cosine[close])
    return Scored(
        family, weight, depth, seventh, nearby, section, cosine, python, policy, score
    )


def _text_weight(cosine):
    return np.where(cosine >= TEXT_MIN_COSINE, TEXT_WEIGHT * cosine, 0.0)


NEAR = 1e-9


def _close_calls(a, b, cosine, score):
    """Pairs whose ranking or reasons could turn on the last bits of ``cosine``."""
    texty = cosine >= TEXT_MIN_COSINE - NEAR
    order = np.lexsort((b, -score, a))
    tied = (a[order][1:] == a[order][:-1]) & (np.abs(np.diff(score[order])) < NEAR)
    close = np.zeros(len(a), dtype=bool)
    close[order[1:][tied]] = close[order[:-1][tied]] = True
    weight = TEXT_WEIGHT * cosine
    # Every other weight, and every stored score's rounding step, is a round number.
    close |= np.abs(weight - np.round(weight, 6)) < NEAR
    close |= np.abs(cosine - TEXT_MIN_COSINE) < NEAR
    close |= np.abs(score - MIN_SCORE) < NEAR
    close |= np.abs(score * 1e4 - np.floor(score * 1e4) - 0.5) < 1e-6
    return np.flatnonzero(close & texty)


def _shared_words(arrays, a, b):
    """
    For each pair, the columns of the three words that weigh most in both texts, -1
    where there are fewer: ``TextModel.shared`` for all the pairs at once.
    """
    product = arrays.text[a].multiply(arrays.text[b]).tocsr()
    places = arrays.places[a].multiply(arrays.present[b]).tocsr()
    found = np.full((len(a), 3), -1, dtype=np.int64)
    if not np.array_equal(product.indptr, places.indptr) or not np.array_equal(
        product.indices, places.indices
    ):
        return None  # not expected: the caller asks TextModel.shared instead
    row = np.repeat(np.arange(len(a)), np.diff(product.indptr))
    order = np.lexsort((places.data, -product.data, row))
    row = row[order]
    place = np.arange(len(order)) - product.indptr[row]
    top = place < 3
    found[row[top], place[top]] = product.indices[order[top]]
    return found


def _kept(arrays, a, b, score):
    """Indices of the pairs kept: each code's best MAX_SIMILAR, as ``compute``."""
    good = np.flatnonzero(score >= MIN_SCORE)
    # Best score first, then the candidate's place in the code order (its index).
    order = good[np.lexsort((b[good], -score[good], a[good]))]
    code = a[order]
    starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]])
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    return order[rank < MAX_SIMILAR]


_FAMILY_TEXT = {
    1: ("broader", "Broader code it belongs to"),
    2: ("narrower", "More specific code under it"),
}


def _reasons(corpus, pair, wording, parents) -> list[tuple]:
    """The reasons of one kept pair, strongest first, as ``_score`` writes them."""
    code_a, code_b, family, weight, depth, seventh, nearby, section = pair[:8]
    python, policy, cosine = pair[8:]
    found = []
    if python:
        _structure(corpus, code_a, code_b, found)
    else:
        if family == 3:
            key_a, key_b = corpus.codes[code_a][2], corpus.codes[code_b][2]
            full = len(key_a) == len(key_b) == FULL_ICD_KEY
            reason = parents.get((key_a[:depth], full))
            if reason is None:
                _shared_parent(ICD, key_a, key_b, key_a[:depth], found)
                parents[(key_a[:depth], full)] = found[-1]
            else:
                found.append(reason)
        elif family:
            kind, text = _FAMILY_TEXT[family]
            found.append((weight, kind, text))
        if seventh:
            text = f"Same 7th character ({corpus.codes[code_a][2][-1]})"
            found.append((SAME_SEVENTH_WEIGHT, "seventh", text))
        if nearby > 0:
            distance = abs(corpus.position[code_a] - corpus.position[code_b])
            text = "Next to it in the code set"
            if distance > 1:
                text = "Nearby in the code set"
            found.append((nearby, "nearby", text))
        if section:
            name = corpus.section_names.get(corpus.codes[code_a][5], "")
            found.append((SECTION_WEIGHT, "section", f"Same section: {name}"))
    if policy:
        _policy(corpus, code_a, code_b, found)
    if cosine >= TEXT_MIN_COSINE:
        if wording is None:
            wording = _wording(corpus.text.shared(code_a, code_b))
        found.append((TEXT_WEIGHT * cosine, "text", wording))
    if len(found) > 1:
        found.sort(key=lambda reason: -reason[0])
    return found


def _wording(words):
    return "Similar wording: " + ", ".join(f"“{word}”" for word in words)


class _Encoded(dict):
    """Each reason's JSON, encoded once: the same reasons recur across many lists."""

    def __missing__(self, reason):
        kind, text = reason
        value = self[reason] = json.dumps({"kind": kind, "text": text})
        return value

    def list(self, found):
        # A list, not a generator: join() makes one of it anyway, more slowly.
        return "[" + ", ".join([self[(kind, text)] for _w, kind, text in found]) + "]"


FEW = 100
"""Up to this many codes, ``rebuild`` scores each code by itself (``compute``)."""
BLOCK = 10_000
"""Codes whose candidates are scored together: bounds the memory of the arrays."""


def compute_all(corpus: Corpus, targets, writer, progress=None) -> None:
    """Ranks the candidates of the target codes in blocks and writes their lists."""
    arrays = Arrays(corpus)
    encoded, parents, wordings = _Encoded(), {}, {}
    ids, words = arrays.ids, arrays.words
    for start in range(0, len(targets), BLOCK):
        block = targets[start : start + BLOCK]
        a, b = _pairs(corpus, arrays, block)
        scored = _score_pairs(corpus, arrays, a, b)
        kept = _kept(arrays, a, b, scored.score)
        texts = kept[scored.cosine[kept] >= TEXT_MIN_COSINE]
        shared = _shared_words(arrays, a[texts], b[texts])
        wording = [None] * len(a)
        if shared is not None:
            for i, top in zip(texts.tolist(), map(tuple, shared.tolist()), strict=True):
                text = wordings.get(top)
                if text is None:
                    text = wordings[top] = _wording(words[w] for w in top if w >= 0)
                wording[i] = text
        columns = zip(
            ids[a[kept]].tolist(),
            ids[b[kept]].tolist(),
            scored.family[kept].tolist(),
            scored.family_weight[kept].tolist(),
            scored.depth[kept].tolist(),
            scored.seventh[kept].tolist(),
            scored.nearby[kept].tolist(),
            scored.section[kept].tolist(),
            scored.python[kept].tolist(),
            scored.policy[kept].tolist(),
            scored.cosine[kept].tolist(),
            np.round(scored.score[kept], 4).tolist(),
            [wording[i] for i in kept.tolist()],
            strict=True,
        )
        del a, b, scored, wording
        rows, previous = [], None
        for *pair, score, text in columns:
            if pair[0] != previous:
                if rows:
                    writer.add_encoded(previous, rows)
                rows, previous = [], pair[0]
            found = _reasons(corpus, pair, text, parents)
            rows.append((pair[1], score, encoded.list(found)))
        if rows:
            writer.add_encoded(previous, rows)
        if progress is not None:
            progress(start + len(block), len(targets))


# --- Storing ---------------------------------------------------------------------

BATCH = 5_000


class Writer:
    """
    Streams lists into ``SimilarCode`` in batches, without model instances.

    A full rebuild writes about two million rows; building a model instance for each
    (``bulk_create``) took most of the run, so rows go in as tuples with their JSON
    already encoded, the way ``JSONField`` would encode it (``COPY`` on PostgreSQL).

    Used as a context manager with ``stream=True`` (as ``rebuild`` does), a writer
    on PostgreSQL keeps one ``COPY`` open until the block ends, so the server stores
    rows while the next ones are computed rather than after each batch. Nothing else
    may use the connection inside the block.
    """

    COLUMNS = "code_id, similar_id, rank, score, reasons, computed_at"

    def __init__(self, stream=False):
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
        self.listed = set()  # codes given a list of at least one entry
        self.stream = stream and self.copy
        self._copying = None  # (cursor, COPY context, COPY) while one is open

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        try:
            if exc_info[0] is None:
                self.flush()
        finally:
            self._end_copy(*exc_info)

    def add(self, code_id, entries):
        if entries:
            self.listed.add(code_id)
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

    def add_encoded(self, code_id, entries):
        """A list given as (similar id, score, reasons already encoded as JSON)."""
        if entries:
            self.listed.add(code_id)
        for rank, (similar_id, score, reasons) in enumerate(entries, start=1):
            self.rows.append((code_id, similar_id, rank, score, reasons, self.now))
        if len(self.rows) >= BATCH:
            self.flush()

    def flush(self):
        if self.rows:
            if self.copy:
                copy = self._copy()
                for row in self.rows:
                    copy.write_row(row)
                if not self.stream:
                    self._end_copy(None, None, None)
            else:
                with connection.cursor() as cursor:
                    cursor.executemany(self.sql, self.rows)
            self.written += len(self.rows)
            self.rows = []

    def _copy(self):
        if self._copying is None:
            cursor = connection.cursor()
            context = cursor.cursor.copy(self.sql)
            self._copying = (cursor, context, context.__enter__())
        return self._copying[2]

    def _end_copy(self, *exc_info):
        if self._copying is not None:
            cursor, context, _copy = self._copying
            self._copying = None
            try:
                context.__exit__(*exc_info)  # on an error, the COPY is abandoned
            finally:
                cursor.close()


def _delete_lists(code_ids):
    for chunk in _chunks(list(code_ids)):
        SimilarCode.objects.filter(code_id__in=chunk).delete()
        EmptySimilarList.objects.filter(code_id__in=chunk).delete()


def _mark_empty(code_ids):
    """Remembers codes computed with nothing similar: ``--missing`` skips them."""
    EmptySimilarList.objects.bulk_create(
        [EmptySimilarList(code_id=code_id) for code_id in sorted(code_ids)],
        batch_size=500,
    )


@dataclass
class Rebuilt:
    codes: int
    rows: int


def rebuild(systems=None, progress=None, missing_only=False) -> Rebuilt:
    """
    Recompute and store the lists of every code (of ``systems``, if given); with
    ``missing_only``, only of the codes that have no stored list yet and were never
    computed empty.

    A full rebuild follows a bulk import or repairs what bypassed the change queue, so
    it also tells every process to load its cached corpus again.
    """
    if missing_only:
        # NOT EXISTS, not NOT IN: PostgreSQL turns NOT IN (subquery) into a scan of
        # the subquery per code once it outgrows work_mem (176,000 codes against
        # 3.5 million rows ran for over half an hour); NOT EXISTS is an anti-join.
        unlisted = Code.objects.exclude(
            Exists(SimilarCode.objects.filter(code_id=OuterRef("pk")))
        ).exclude(Exists(EmptySimilarList.objects.filter(code_id=OuterRef("pk"))))
        if systems:
            unlisted = unlisted.filter(system__in=systems)
        if not unlisted.exists():
            return Rebuilt(0, 0)  # quick: the corpus is not even read
    else:
        record_change(everything=True)
    corpus = Corpus.load()
    systems = [s for s in (systems or corpus.ids) if s in corpus.ids]
    targets = [code_id for system in systems for code_id in corpus.ids[system]]
    with transaction.atomic():
        if missing_only:
            listed = set(SimilarCode.objects.values_list("code_id", flat=True))
            listed.update(EmptySimilarList.objects.values_list("code_id", flat=True))
            targets = [code_id for code_id in targets if code_id not in listed]
        elif set(systems) >= set(corpus.ids):
            # Every list goes: one plain DELETE, which SQLite empties in one step
            # instead of row by row through the join on the code's system.
            SimilarCode.objects.all().delete()
            EmptySimilarList.objects.all().delete()
        else:
            SimilarCode.objects.filter(code__system__in=systems).delete()
            EmptySimilarList.objects.filter(code__system__in=systems).delete()
        with Writer(stream=True) as writer:
            if len(targets) > FEW:
                compute_all(corpus, targets, writer, progress)
            else:  # not worth building the arrays: the same lists, one at a time
                for done, code_id in enumerate(targets, start=1):
                    writer.add(code_id, compute(corpus, code_id))
                    if progress is not None:
                        progress(done, len(targets))
        _mark_empty(set(targets) - writer.listed)
    return Rebuilt(len(targets), writer.written)


def refresh(code_ids=(), policy_ids=(), into: Refreshed | None = None) -> int:
    """
    Recompute the lists a change may have changed; returns the number of codes redone.

    ``into``, when given, is filled with which codes' lists were recomputed and which
    codes the changed policies named before or after the change (the page cache
    invalidates exactly those pages).

    For changed codes: their lists, the lists that name them, and the lists of the
    codes their new lists name (similarity runs both ways, so those lists may now
    want them). For changed policies: the lists of the codes they name, before and
    after the change; no other list has a policy signal from them (but see
    ``RANGE_LISTING_CAP``).

    Reads the cached corpus (see "The cached corpus" below), brought up to date with
    these changes and with those other processes recorded.
    """
    code_ids, policy_ids = set(code_ids), set(policy_ids)
    with _cached.lock:
        change = record_change(code_ids, policy_ids)
        try:
            members = None
            if _cached.corpus is not None:
                members = _cached.corpus.members(policy_ids)
            corpus = _current(change)
            if members is None:  # what they named before is not known
                members = policy_members(corpus, policy_ids)
            members |= corpus.members(policy_ids)
            relisted = _refresh_lists(corpus, code_ids, members)
            if into is not None:
                into.lists.update(relisted)
                into.members.update(members)
            return len(relisted)
        except BaseException:
            _cached.corpus = None  # it may be half updated: the next refresh reloads
            raise


@dataclass
class Refreshed:
    """What one refresh recomputed (``refresh(..., into=)``)."""

    lists: set = field(default_factory=set)  # codes whose lists were recomputed
    members: set = field(default_factory=set)  # codes the policies named, then or now


def _refresh_lists(corpus, code_ids, members) -> set:
    changed = {code_id for code_id in code_ids if code_id in corpus.codes}
    wanted = changed | set(listers(changed))
    wanted |= {code_id for code_id in members if code_id in corpus.codes}
    lists = {code_id: compute(corpus, code_id) for code_id in sorted(wanted)}
    for code_id in sorted(changed):
        for entry in lists[code_id]:
            if entry.similar_id not in lists:
                lists[entry.similar_id] = compute(corpus, entry.similar_id)
    with transaction.atomic():
        _delete_lists(lists)
        writer = Writer()
        for code_id, entries in lists.items():
            writer.add(code_id, entries)
        writer.flush()
        _mark_empty(lists.keys() - writer.listed)
    return set(lists)


# --- The cached corpus -----------------------------------------------------------
#
# A refresh after a save reads the corpus kept in this process rather than loading
# it again (a second or two on the full ICD-10-CM set), and brings it up to date
# first by re-reading only the rows that changed:
#
# - each refresh records what it was given in a ``ContentChange`` row, before it
#   reads anything;
# - a process applies every row it has not applied yet, its own and other
#   processes' (gunicorn workers, import commands): it re-reads those codes, their
#   write-ups and add-on links, and those policies' code tables (``Corpus.update``),
#   and takes out and puts back the signals of those policies only (all of them
#   when a code moved under a policy's row);
# - a row that says "everything" (a full rebuild, which a bulk import runs), more
#   than REFRESH_LIMIT codes to re-read, or a missing anchor (the oldest row the
#   process remembers is gone: pruned after LOG_KEEP, rolled back, another
#   database) makes it load the whole corpus again.
#
# The updated corpus is the one ``Corpus.load`` would give (tests/
# test_similar_refresh.py compares them), word weights included: a word's IDF is
# recomputed when its document frequency changes, and every IDF when the number of
# codes does, so a refreshed list is the list a full recompute gives. What is not
# recomputed are lists the refresh does not touch (as before the cache): their
# text scores keep the old weights of the words that changed until a rebuild.
#
# A change that bypasses the change queue (an ``update()`` in a shell, an add-on
# link changed without saving the code, a section renamed) is not recorded: a
# process learns it at its next full load, and ``rebuild_similar_codes`` (which
# records "everything") makes every process load again.

LOG_WINDOW = 50
"""Rows a process remembers having applied: rows committed out of id order land
among them, and the oldest is the anchor checked at each refresh."""
LOG_KEEP = timedelta(days=1)
"""Older change rows are pruned; a process idle that long loads everything again."""
PRUNE_EVERY = 200


class _Cached:
    def __init__(self):
        self.lock = threading.RLock()
        self.corpus = None
        self.window = []  # (id, nonce) of the last change rows applied, by id


_cached = _Cached()


def record_change(codes=(), policies=(), everything=False) -> ContentChange:
    """Records a change for every process's cached corpus; prunes now and then."""
    change = ContentChange.objects.create(
        nonce=secrets.token_hex(8),
        codes=sorted(codes),
        policies=sorted(policies),
        everything=everything,
    )
    if change.id % PRUNE_EVERY == 0:
        ContentChange.objects.filter(created_at__lt=timezone.now() - LOG_KEEP).delete()
    return change


def forget() -> None:
    """Drops this process's cached corpus: the next refresh loads it again."""
    with _cached.lock:
        _cached.corpus = None
        _cached.window = []


def _current(change) -> Corpus:
    """The cached corpus, brought up to date: one query when nobody else wrote."""
    corpus = _cached.corpus
    if corpus is not None and _cached.window:
        anchor = _cached.window[0]
        rows = list(
            ContentChange.objects.filter(id__gte=anchor[0])
            .order_by("id")
            .values_list("id", "nonce", "codes", "policies", "everything")
        )
        applied = dict(_cached.window)
        new = [row for row in rows if row[0] not in applied]
        code_ids = {code_id for row in new for code_id in row[2]}
        policy_ids = {policy_id for row in new for policy_id in row[3]}
        if (
            rows
            and (rows[0][0], rows[0][1]) == anchor
            and not any(row[4] for row in new)
            and len(code_ids) <= REFRESH_LIMIT
        ):
            corpus.update(code_ids, policy_ids)
            seen = sorted([*_cached.window, *((row[0], row[1]) for row in new)])
            _cached.window = seen[-LOG_WINDOW:]
            return corpus
    _cached.corpus = None
    corpus = Corpus.load()
    corpus.text.vector_limit = VECTOR_CACHE
    _cached.corpus, _cached.window = corpus, [(change.id, change.nonce)]
    return corpus


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


# --- What a deletion touches (for index.changes) --------------------------------


def listers(code_ids) -> list[int]:
    """Codes whose stored list names any of ``code_ids``."""
    found = []
    for chunk in _chunks(list(code_ids)):
        # Unordered: the model's ordering would join the codes table.
        rows = SimilarCode.objects.filter(similar_id__in=chunk).order_by()
        found += rows.values_list("code_id", flat=True)
    return found


def reached_by_row(row) -> list[int]:
    """
    The codes a policy row reaches and the codes listing them, when few enough to
    count (a very large range only ever added a small weight).
    """
    reached = list(
        Code.objects.filter(
            system=row.system, sort_key__gte=row.start_key, sort_key__lte=row.end_key
        ).values_list("id", flat=True)[: RANGE_LISTING_CAP + 1]
    )
    if len(reached) > RANGE_LISTING_CAP:
        return []
    return [*reached, *listers(reached)]
