"""
The lay-term thesaurus: phrases people use, the codes they mean, word synonyms.

The data is the project's own (``procedures/data/lay_terms/*.csv`` with the header
``phrase,kind,icd10cm,icd10pcs,hcpcs,cpt`` and ``procedures/data/lay_synonyms.csv``
with ``word,means``), reviewed like code. ``load_thesaurus`` reads it, refuses each
row that cannot stand (naming file, line and code) and writes the rest in one
transaction; loading the same files again writes nothing. Staff add rows in the admin.
"""

import bisect
import csv
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Count, OuterRef, Subquery
from django.utils import timezone
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from carecodes import page_tags

from . import codes
from .models import (
    Code,
    CodeSystem,
    LaySynonym,
    LayTerm,
    LayTermKind,
    LayTermTarget,
)
from .signals import lay_terms_bulk_saved

DATA_DIR = Path(settings.BASE_DIR) / "procedures" / "data"
TERMS_DIR = DATA_DIR / "lay_terms"
SYNONYMS_FILE = DATA_DIR / "lay_synonyms.csv"

HEADER = ["phrase", "kind", "icd10cm", "icd10pcs", "hcpcs", "cpt"]
SYNONYMS_HEADER = ["word", "means"]
# The CSV column of each code system.
COLUMNS = {
    "icd10cm": codes.System.ICD10CM,
    "icd10pcs": codes.System.ICD10PCS,
    "hcpcs": codes.System.HCPCS,
    "cpt": codes.System.CPT,
}
ALSO_CALLED_LIMIT = 5
PHRASE_MAX = 120
STAFF = "staff"
IMPORT_REASON = "Loaded from the thesaurus files (import_lay_terms)"
THESAURUS = "thesaurus"

_SPACES = re.compile(r"\s+")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})


def normalize_phrase(text: str) -> str:
    """Lower case, straight apostrophes, single spaces: for phrases and queries."""
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    return _SPACES.sub(" ", text).strip().lower()


def normalize_target(system, text: str) -> str:
    """A code or prefix as stored: upper case, ICD-10-CM with its dot (S52.501)."""
    text = text.strip().upper()
    if (
        codes.System(system) == codes.System.ICD10CM
        and "." not in text
        and len(text) > 3
    ):
        text = f"{text[:3]}.{text[3:]}"
    return text


def default_paths() -> list[Path]:
    return sorted(TERMS_DIR.glob("*.csv"))


class CodeList:
    """The codes of each system, sorted, to ask "does any code start with this?"."""

    def __init__(self, codes_by_system):
        self._codes = {
            codes.System(system): sorted(values)
            for system, values in codes_by_system.items()
        }

    @classmethod
    def from_database(cls, systems):
        return cls(
            {
                system: list(
                    Code.objects.filter(system=system).values_list("code", flat=True)
                )
                for system in systems
            }
        )

    def has_codes(self, system) -> bool:
        return bool(self._codes.get(codes.System(system)))

    def matches(self, system, prefix: str) -> bool:
        values = self._codes.get(codes.System(system), [])
        at = bisect.bisect_left(values, prefix)
        return at < len(values) and values[at].startswith(prefix)


@dataclass
class Row:
    phrase: str
    kind: str
    targets: list  # [(system, code)], main meaning first
    where: str  # "file.csv:12"


@dataclass
class ParsedThesaurus:
    rows: list = field(default_factory=list)
    synonyms: dict = field(default_factory=dict)  # word -> means
    problems: list = field(default_factory=list)
    # System -> how many targets were left out because no code of it is loaded.
    unloaded: dict = field(default_factory=lambda: defaultdict(int))


def _where(path, line):
    return f"{Path(path).name}:{line}"


def _read_csv(path, header, problems):
    """(line number, row dict) for each data row; the file refused on a wrong header."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        first = next(reader, None)
        if first is None:
            problems.append(f"{_where(path, 1)}: the file is empty.")
            return
        first = [name.strip().lstrip("\ufeff") for name in first]
        if first != header:
            unknown = [name for name in first if name not in header]
            detail = f" (unknown column {', '.join(unknown)})" if unknown else ""
            problems.append(
                f"{_where(path, 1)}: the header must be {','.join(header)}, not "
                f"{','.join(first)}{detail}; the file was not loaded."
            )
            return
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                problems.append(
                    f"{_where(path, reader.line_num)}: {len(row)} fields, expected "
                    f"{len(header)}; the row was refused."
                )
                continue
            yield reader.line_num, dict(zip(header, row, strict=True))


def parse_thesaurus(paths, synonyms_path=None, code_list=None) -> ParsedThesaurus:
    """Read the CSV files into rows and problems, checking each code against
    ``code_list`` (by default the codes in the database)."""
    parsed = ParsedThesaurus()
    if code_list is None:
        code_list = CodeList.from_database(codes.System)
    seen = {}
    for path in paths:
        for line, cells in _read_csv(path, HEADER, parsed.problems):
            where = _where(path, line)
            row = _parse_row(cells, where, code_list, parsed, LayTermKind.values)
            if row is None:
                continue
            if row.phrase in seen:
                parsed.problems.append(
                    f"{where}: “{row.phrase}” is already at {seen[row.phrase]}; "
                    "a phrase appears once across all files. The row was refused."
                )
                continue
            seen[row.phrase] = where
            parsed.rows.append(row)
    if synonyms_path is not None:
        _parse_synonyms(synonyms_path, parsed)
    return parsed


def _parse_row(cells, where, code_list, parsed, kinds):
    phrase = normalize_phrase(cells["phrase"])
    if not phrase:
        parsed.problems.append(f"{where}: the phrase is empty; the row was refused.")
        return None
    if len(phrase) > PHRASE_MAX:
        parsed.problems.append(
            f"{where}: “{phrase[:40]}…” is longer than {PHRASE_MAX} characters; "
            "the row was refused."
        )
        return None
    kind = cells["kind"].strip().lower()
    if kind not in kinds:
        parsed.problems.append(
            f"{where}: “{phrase}” has an unknown kind “{cells['kind'].strip()}” "
            f"(one of {', '.join(kinds)}); the row was refused."
        )
        return None
    targets, dead = [], []
    for column, system in COLUMNS.items():
        for written in cells[column].split():
            code = normalize_target(system, written)
            if not code_list.has_codes(system):
                parsed.unloaded[system] += 1
            elif len(code) > 10 or not code_list.matches(system, code):
                dead.append(f"{column} {written}")
            elif (system, code) not in targets:
                targets.append((system, code))
    if dead:
        parsed.problems.append(
            f"{where}: “{phrase}”: {', '.join(dead)} "
            f"{'matches' if len(dead) == 1 else 'match'} no code of its system; "
            "the row was refused."
        )
        return None
    if not targets:
        if not any(cells[column].split() for column in COLUMNS):
            parsed.problems.append(
                f"{where}: “{phrase}” names no code; the row was refused."
            )
        return None
    return Row(phrase, kind, targets, where)


def _parse_synonyms(path, parsed):
    seen = {}
    for line, cells in _read_csv(path, SYNONYMS_HEADER, parsed.problems):
        where = _where(path, line)
        word = normalize_phrase(cells["word"])
        means = normalize_phrase(cells["means"])
        if not word or not means:
            parsed.problems.append(
                f"{where}: a synonym needs a word and what it means; "
                "the row was refused."
            )
        elif len(word) > 60 or len(means) > 200:
            parsed.problems.append(
                f"{where}: “{word[:40]}” is too long (word 60, means 200 characters "
                "at most); the row was refused."
            )
        elif word in seen:
            parsed.problems.append(
                f"{where}: “{word}” is already at {seen[word]}; the row was refused."
            )
        else:
            seen[word] = where
            parsed.synonyms[word] = means


@dataclass
class Tally:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0

    @property
    def written(self) -> int:
        return self.created + self.updated + self.deleted

    def __str__(self):
        return (
            f"{self.created} created, {self.updated} updated, {self.unchanged} "
            f"unchanged, {self.deleted} deleted"
        )


@dataclass
class LoadResult:
    phrases: Tally = field(default_factory=Tally)
    synonyms: Tally = field(default_factory=Tally)
    problems: list = field(default_factory=list)
    unloaded: dict = field(default_factory=dict)
    changed_phrases: list = field(default_factory=list)
    kept: list = field(default_factory=list)  # "file:line" of rows staff edited

    @property
    def written(self) -> int:
        return self.phrases.written + self.synonyms.written

    def summary(self) -> str:
        lines = [f"Lay phrases: {self.phrases}.", f"Word synonyms: {self.synonyms}."]
        for system, count in sorted(self.unloaded.items()):
            lines.append(
                f"No {CodeSystem(system).label} codes are loaded: {count} targets "
                "were left out; import that code set, then run this again."
            )
        if self.kept:
            lines.append(
                f"Kept as staff edited them in the admin ({len(self.kept)}): "
                + ", ".join(self.kept)
            )
        if self.problems:
            lines.append(f"Refused ({len(self.problems)}):")
            lines += [f"  {problem}" for problem in self.problems]
        return "\n".join(lines)


def load_thesaurus(
    paths=None, synonyms_path=None, *, prune=False, code_list=None
) -> LoadResult:
    """Write the thesaurus rows of ``paths`` (and the synonyms) in one transaction.

    With ``prune``, thesaurus rows and synonyms no longer in the files are deleted
    (rows staff added or edited in the admin never are). A row staff added or
    edited is kept as they left it, even when a file holds the phrase too; the
    summary names those rows.
    """
    if paths is None:
        paths = default_paths()
    parsed = parse_thesaurus(paths, synonyms_path, code_list)
    result = LoadResult(problems=parsed.problems, unloaded=dict(parsed.unloaded))
    touched = set()  # (system, code) of targets added or removed
    with transaction.atomic():
        stored = {term.phrase: term for term in LayTerm.objects.all()}
        stored_targets = defaultdict(list)
        for target in LayTermTarget.objects.order_by("term_id", "position"):
            stored_targets[target.term_id].append((target.system, target.code))
        new, changed = [], []
        for row in parsed.rows:
            term = stored.pop(row.phrase, None)
            if term is None:
                new.append((LayTerm(phrase=row.phrase, kind=row.kind), row))
                touched.update(row.targets)
                continue
            if term.source != THESAURUS:
                # Staff added or edited it in the admin: their row stands, and the
                # summary says so, for the file to be brought in line.
                result.kept.append(row.where)
                continue
            before = stored_targets[term.pk]
            if term.kind == row.kind and before == row.targets:
                result.phrases.unchanged += 1
                continue
            term.kind = row.kind
            changed.append((term, row))
            touched.update(before)
            touched.update(row.targets)
        if changed:
            now = timezone.now()
            for term, _ in changed:
                term.updated_at = now
            _update(LayTerm, [term for term, _ in changed], ["kind", "updated_at"])
            # Deleted one by one (post_delete), so their history records it.
            LayTermTarget.objects.filter(
                term__in=[term for term, _ in changed]
            ).delete()
        _create(LayTerm, [term for term, _ in new])
        _create(
            LayTermTarget,
            [
                LayTermTarget(term=term, system=system, code=code, position=position)
                for term, row in new + changed
                for position, (system, code) in enumerate(row.targets)
            ],
        )
        result.phrases.created, result.phrases.updated = len(new), len(changed)
        result.changed_phrases = [row.phrase for _, row in new + changed]
        if prune:
            gone = [term for term in stored.values() if term.source == THESAURUS]
            for term in gone:
                touched.update(stored_targets[term.pk])
            LayTerm.objects.filter(pk__in=[term.pk for term in gone]).delete()
            result.phrases.deleted = len(gone)
            result.changed_phrases += [term.phrase for term in gone]
        if synonyms_path is not None:
            _save_synonyms(parsed.synonyms, result.synonyms, prune)
        if result.written:
            # Past post_save: the index learns what changed and catches up on commit.
            lay_terms_bulk_saved.send(
                sender=LayTerm,
                phrases=list(result.changed_phrases),
                targets=sorted(touched),
                synonyms_changed=bool(result.synonyms.written),
            )
    return result


def _create(model, rows):
    """bulk_create, with a history record for each row (simple-history)."""
    if rows:
        bulk_create_with_history(rows, model, default_change_reason=IMPORT_REASON)


def _update(model, rows, fields):
    if rows:
        bulk_update_with_history(
            rows, model, fields, default_change_reason=IMPORT_REASON
        )


def _save_synonyms(synonyms, tally, prune):
    model = LaySynonym
    stored = {row.word: row for row in model.objects.all()}
    new, changed = [], []
    for word, means in synonyms.items():
        row = stored.pop(word, None)
        if row is None:
            new.append(model(word=word, means=means))
        elif row.means != means:
            row.means = means
            changed.append(row)
        else:
            tally.unchanged += 1
    _create(model, new)
    _update(model, changed, ["means"])
    tally.created, tally.updated = len(new), len(changed)
    if prune and stored:
        model.objects.filter(pk__in=[row.pk for row in stored.values()]).delete()
        tally.deleted = len(stored)


# --- Reading, for pages and search --------------------------------------------------


def _prefixes(code: str) -> list[str]:
    return [code[:end] for end in range(1, len(code) + 1)]


def phrases_for_codes(
    system, code_values, limit=ALSO_CALLED_LIMIT, *, exact=False
) -> dict:
    """{code: [phrase, …]} for codes of one system, in one query.

    A phrase belongs to a code when one of its targets is the code or a prefix of it
    (only the code itself when ``exact``, as a list of many codes wants); the most
    specific target comes first, then the phrase's main meaning.
    """
    page_tags.add("lay")  # a page showing them changes with the thesaurus
    code_values = list(code_values)
    if exact:
        wanted = set(code_values)
    else:
        wanted = {prefix for code in code_values for prefix in _prefixes(code)}
    # How many targets each phrase has: a phrase meaning only this (type 2 diabetes)
    # comes before one that also means others (diabetes), on a par otherwise.
    spread = (
        LayTermTarget.objects.filter(term=OuterRef("term"))
        .order_by()
        .values("term")
        .annotate(count=Count("pk"))
        .values("count")
    )
    rows = (
        LayTermTarget.objects.filter(system=system, code__in=wanted)
        .annotate(spread=Subquery(spread))
        .values_list("code", "position", "spread", "term__phrase")
        .order_by()
    )
    by_prefix = defaultdict(list)
    for target, position, count, phrase in rows:
        by_prefix[target].append((position, count, phrase))
    found = {}
    for code in code_values:
        ranked = []
        for prefix in reversed(_prefixes(code)):
            ranked += sorted(by_prefix.get(prefix, ()))
        phrases = list(dict.fromkeys(phrase for *_, phrase in ranked))
        if phrases:
            found[code] = phrases[:limit]
    return found


def also_called(code) -> list[str]:
    """Up to five lay phrases for a ``Code``, most specific first (one query)."""
    return phrases_for_codes(code.system, [code.code]).get(code.code, [])
