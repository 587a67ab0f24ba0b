"""
Saving a parsed code set in bulk: only rows that differ are written.

A full ICD-10-CM release is about 98,000 codes, too many for one ``save()`` each (a
section lookup and an insert per row). Here the sort key and section that
``Code.save()`` would set are computed in Python, new rows are inserted with
``bulk_create`` and changed rows rewritten with ``bulk_update``, in batches. A row whose
stored values already match is not written at all, so a second import of the same
release changes nothing, not even ``updated_at``. ``codes_bulk_saved`` is sent on
commit with the ids written, so the search index and similar codes can follow.
"""

from __future__ import annotations

import bisect
import heapq
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from procedures import codes
from procedures.models import Code, CodeSection
from procedures.signals import codes_bulk_saved

BATCH_SIZE = 2000
# bulk_update writes one CASE branch per row and field; SQLite caps a statement's
# parameters, and long CASE lists get slow, so updates go in smaller batches.
UPDATE_BATCH_SIZE = 500


@dataclass
class ParsedCodeSet:
    """What a code-set parser read: unsaved rows, and problems instead of raising.

    ``parents`` maps a code to the code above it (ICD-10-CM categories and
    subcategories); ``section_parents`` maps a section slug to its parent's slug.
    Sections come parents first.
    """

    system: str
    codes: list[Code] = field(default_factory=list)
    parents: dict[str, str] = field(default_factory=dict)
    sections: list[CodeSection] = field(default_factory=list)
    section_parents: dict[str, str] = field(default_factory=dict)
    problems: list = field(default_factory=list)
    # Records read but deliberately left out (such as modifiers), for the summary.
    skipped: int = 0


@dataclass
class SaveResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    sections_created: int = 0
    sections_updated: int = 0
    ids: list[int] = field(default_factory=list)
    # Wall time of the writes, and of the commit with the on-commit receivers (the
    # search index and similar codes catching up), which the import waits for.
    writing_seconds: float = 0.0
    following_seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.created:,} codes created, {self.updated:,} updated, "
            f"{self.unchanged:,} unchanged; {self.sections_created} sections created, "
            f"{self.sections_updated} updated; writing took "
            f"{self.writing_seconds:.1f} s, committing and updating derived data "
            f"{self.following_seconds:.1f} s"
        )


class SectionFinder:
    """``Code.find_section`` for many codes at once, without a query per code.

    The section boundaries cut the key space into segments inside which the set of
    sections holding a key does not change; each segment's narrowest section is
    worked out once, and a code's segment is found by bisection.
    """

    def __init__(self, sections):
        sections = list(sections)
        # A key is past a section once it sorts after end_key; end_key + NUL is the
        # first string that does, and no key contains NUL.
        points = sorted(
            {s.start_key for s in sections} | {s.end_key + "\0" for s in sections}
        )
        self._points = points
        self._sections = []
        # One sweep over the points (thousands of ICD-10-PCS sections made a scan of
        # every section at every point take seconds): the sections started so far
        # wait in a heap in the order of Code.find_section (deepest, then latest
        # start, then earliest end, then as given), and one whose end has passed is
        # dropped when it reaches the top.
        start_rank = {
            key: rank
            for rank, key in enumerate(sorted({s.start_key for s in sections}))
        }
        by_start = sorted(range(len(sections)), key=lambda i: sections[i].start_key)
        heap, started = [], 0
        for point in points:
            while started < len(by_start) and (
                sections[by_start[started]].start_key <= point
            ):
                index = by_start[started]
                section = sections[index]
                heapq.heappush(
                    heap,
                    (
                        -section.depth,
                        -start_rank[section.start_key],
                        section.end_key,
                        index,
                    ),
                )
                started += 1
            while heap and heap[0][2] < point:
                heapq.heappop(heap)
            self._sections.append(sections[heap[0][3]].pk if heap else None)

    def find(self, key: str) -> int | None:
        index = bisect.bisect_right(self._points, key) - 1
        return self._sections[index] if index >= 0 else None


class Progress:
    """
    A plain-text progress bar on stderr, redrawn in place; silent when disabled.

    Off a terminal (``redraw=False``) it writes a line at each tenth instead, so a
    log keeps readable lines rather than carriage returns.
    """

    WIDTH = 30

    def __init__(
        self,
        label: str,
        total: int,
        *,
        enabled=True,
        stream=None,
        unit="codes",
        redraw=True,
    ):
        self.label, self.total, self.enabled = label, total, enabled
        self.stream = stream or sys.stderr
        self.unit, self.redraw = unit, redraw
        self.done = 0
        self._shown = -1

    def advance(self, count: int) -> None:
        self.done += count
        percent = self.done * 100 // self.total if self.total else 100
        step = percent if self.redraw else percent // 10 * 10
        if self.enabled and step != self._shown:
            self._shown = step
            filled = self.WIDTH * percent // 100
            bar = "#" * filled + "." * (self.WIDTH - filled)
            self.stream.write(
                f"{'\r' if self.redraw else ''}{self.label} [{bar}] {percent:3d}% "
                f"({self.done:,}/{self.total:,} {self.unit})"
                + ("" if self.redraw else "\n")
            )
            self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._shown >= 0 and self.redraw:
            self.stream.write("\n")
            self.stream.flush()


def save_code_set(
    parsed: ParsedCodeSet, fields: list[str], progress: Progress | None = None
) -> SaveResult:
    """Write ``parsed`` in one transaction; ``fields`` are the Code attnames to sync.

    ``sort_key`` and ``section_id`` are always synced. Codes of the system that the
    set does not name are left alone.
    """
    fields = [*fields, "sort_key", "section_id"]
    result = SaveResult()
    system = codes.System(parsed.system)
    started = time.monotonic()
    with transaction.atomic():
        _save_sections(parsed, result)
        finder = SectionFinder(CodeSection.objects.filter(system=system))
        stored = {
            row["code"]: row
            for row in Code.objects.filter(system=system).values("id", "code", *fields)
        }
        ids = {code: row["id"] for code, row in stored.items()}
        # Parents have shorter keys than their children: saving level by level means
        # every parent has an id by the time its children are written.
        levels = defaultdict(list)
        for code in parsed.codes:
            code.sort_key = codes.sort_key(system, code.code)
            levels[len(code.sort_key)].append(code)
        now = timezone.now()
        for level in sorted(levels):
            new, changed = [], []
            for code in levels[level]:
                code.section_id = finder.find(code.sort_key)
                parent = parsed.parents.get(code.code)
                code.parent_id = ids[parent] if parent else None
                row = stored.get(code.code)
                if row is None:
                    new.append(code)
                elif any(getattr(code, name) != row[name] for name in fields):
                    code.pk = row["id"]
                    code.updated_at = now
                    changed.append(code)
                else:
                    result.unchanged += 1
            for start in range(0, len(new), BATCH_SIZE):
                batch = Code.objects.bulk_create(new[start : start + BATCH_SIZE])
                ids.update((code.code, code.pk) for code in batch)
                if progress:
                    progress.advance(len(batch))
            for start in range(0, len(changed), UPDATE_BATCH_SIZE):
                batch = changed[start : start + UPDATE_BATCH_SIZE]
                Code.objects.bulk_update(batch, [*fields, "updated_at"])
                if progress:
                    progress.advance(len(batch))
            if progress:
                progress.advance(len(levels[level]) - len(new) - len(changed))
            result.created += len(new)
            result.updated += len(changed)
            result.ids += [code.pk for code in new + changed]
        if result.ids:
            # Past post_save: say which rows changed. The index queues them and
            # catches up once the transaction commits.
            codes_bulk_saved.send(sender=Code, system=system, ids=list(result.ids))
        written_at = time.monotonic()
    result.writing_seconds = written_at - started
    result.following_seconds = time.monotonic() - written_at
    if progress:
        progress.close()
    return result


def _save_sections(parsed: ParsedCodeSet, result: SaveResult) -> None:
    stored = {
        section.slug: section
        for section in CodeSection.objects.filter(system=parsed.system)
    }
    for wanted in parsed.sections:
        parent_slug = parsed.section_parents.get(wanted.slug)
        parent = stored[parent_slug] if parent_slug else None
        values = {
            "name": wanted.name,
            "kind": wanted.kind,
            "start_code": wanted.start_code,
            "end_code": wanted.end_code,
            "parent": parent,
        }
        section = stored.get(wanted.slug)
        if section is None:
            section = CodeSection(system=parsed.system, slug=wanted.slug, **values)
            section.save()
            stored[section.slug] = section
            result.sections_created += 1
            continue
        parent_id = parent.pk if parent else None
        # A parent that moved changes the depth of the blocks inside it too.
        depth = parent.depth + 1 if parent else 0
        differs = (section.parent_id, section.depth) != (parent_id, depth) or any(
            getattr(section, name) != value
            for name, value in values.items()
            if name != "parent"
        )
        if differs:
            for name, value in values.items():
                setattr(section, name, value)
            section.save()
            result.sections_updated += 1
