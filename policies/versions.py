"""
Versions of a policy: what it said after each import or edit, and what changed.

A version (``PolicyVersion``) keeps the policy's whole content in one JSON record, the
*snapshot*: title, dates, Markdown sections, the complete code table (groups with
their heading, coverage and system; rows with their codes, markers, description and
sort keys) and the references. ``record_version`` is called by every path that
writes a policy's content (``policies.importing.sync_policy_content``, which every
import format and the backup restore use, and the admin's saves); it records a new
version only when the snapshot differs from the latest one, so an unchanged import
records nothing. Drafts are not versioned: a version is what the public could read.

``compare(old, new)`` says what changed between two snapshots in the terms a reader
uses: codes and ranges added or removed per coverage group, codes that moved between
groups, ranges that changed (as written; ``range_effects`` counts the codes on the
site that entered or left, one query for them all), dates, and each text section
word by word.

Each version also stores the sort-key spans of the rows it added, removed or moved
(``PolicyCodeChange``), so ``code_history`` finds, in one indexed query, the versions
that may have changed one code's status, and reads the exact status before and
after from their snapshots.
"""

from __future__ import annotations

import datetime
import difflib
import hashlib
import json
import re
from dataclasses import dataclass, field

from django.db.models import Count, Exists, F, OuterRef, Q

from carecodes.importing import CREATED, UPDATED, Change
from procedures import codes
from procedures.models import Code

from .models import (
    Coverage,
    Policy,
    PolicyCodeChange,
    PolicyStatus,
    PolicyVersion,
)

DATE_FIELDS = (
    ("effective_on", "Effective"),
    ("last_reviewed_on", "Last reviewed"),
    ("next_review_on", "Next review"),
)
SECTIONS = (
    ("scope", "Scope of policy"),
    ("limitations", "Policy limitations and exclusions"),
    ("notes", "Note"),
    ("code_table_note", "Note on the code table"),
    ("background", "Background"),
)
ROW_FIELDS = (
    "start_code",
    "end_code",
    "seventh_character",
    "is_addon",
    "description",
    "start_key",
    "end_key",
)


# Snapshots ---------------------------------------------------------------------------


def _day(value) -> str | None:
    return value.isoformat() if value else None


def snapshot(policy, groups, references) -> dict:
    """
    The policy's content as plain JSON values.

    ``groups`` is a list of (group, rows) in table order and ``references`` a list
    of objects with ``citation``, saved or not: an import snapshots what it is about
    to write, the admin what it wrote.
    """
    return {
        "title": policy.title,
        **{name: _day(getattr(policy, name)) for name, _label in DATE_FIELDS},
        "sections": {name: getattr(policy, name) or "" for name, _label in SECTIONS},
        "groups": [
            {
                "heading": group.heading,
                "coverage": group.coverage,
                "system": group.system,
                "rows": [
                    {name: getattr(row, name) for name in ROW_FIELDS} for row in rows
                ],
            }
            for group, rows in groups
        ],
        "references": [reference.citation for reference in references],
    }


def stored_snapshot(policy) -> dict:
    """The snapshot of what the database holds for ``policy`` (three queries)."""
    groups = [
        (group, list(group.codes.all()))
        for group in policy.code_groups.order_by("position", "id").prefetch_related(
            "codes"
        )
    ]
    return snapshot(policy, groups, policy.references.order_by("position"))


def content_digest(content: dict) -> str:
    return hashlib.sha256(
        json.dumps(content, ensure_ascii=False, sort_keys=True).encode()
    ).hexdigest()


def display(row: dict) -> str:
    """A snapshot row as the bulletin writes it: “S00.00X+ - T88.9XX+”."""
    mark = "+" if row["seventh_character"] else ""
    text = f"{row['start_code']}{mark}"
    if row["end_code"]:
        text += f" - {row['end_code']}{mark}"
    return text


def coverage_label(value: str) -> str:
    try:
        return Coverage(value).label
    except ValueError:
        return value


# Recording ---------------------------------------------------------------------------


def record_version(
    policy,
    groups=None,
    references=None,
    *,
    result=None,
    dry_run: bool = False,
    note: str = "",
) -> PolicyVersion | None:
    """
    Records the policy's content as a new version if it differs from the latest.

    Without ``groups`` and ``references`` the stored ones are read. With ``result``
    (an ImportResult) the version is named among its changes, in a dry run too.
    Returns the new version (unsaved in a dry run), or None.
    """
    if policy.status == PolicyStatus.DRAFT:
        return None
    if groups is None or references is None:
        content = stored_snapshot(policy)
    else:
        content = snapshot(policy, groups, references)
    digest = content_digest(content)
    latest = policy.versions.order_by("-number").first() if policy.pk else None
    if latest is not None and latest.digest == digest:
        return None
    version = PolicyVersion(
        policy=policy,
        number=latest.number + 1 if latest else 1,
        last_reviewed_on=policy.last_reviewed_on,
        content=content,
        digest=digest,
        note=note[:200],
    )
    if result is not None:
        # Only an import's summary names the changes: an admin save records the
        # version without comparing it (the pages compare when asked).
        lines = ["First version recorded on this site."]
        if latest is not None:
            comparison = compare(latest.content, content)
            range_effects(comparison.ranges)
            lines = comparison.lines()
        label = f"Version {version.number} of {policy.payer} {policy.number}"
        result.changes.append(Change(label, CREATED, after=lines))
        result.notes += [
            f"{'Would record' if dry_run else 'Recorded'} version {version.number} "
            f"of {policy.payer} {policy.number}: {line}"
            for line in lines
        ]
    if not dry_run:
        version.save()
        save_spans(version, latest.content if latest else None)
    return version


def save_spans(version, previous: dict | None):
    """Stores the sort-key spans of the rows ``version`` changed (all, if first)."""
    PolicyCodeChange.objects.bulk_create(
        PolicyCodeChange(
            version=version,
            system=system,
            start_key=start_key,
            end_key=end_key,
        )
        for system, start_key, end_key in changed_spans(previous, version.content)
    )


def _row_keys(content: dict | None) -> set[tuple]:
    if not content:
        return set()
    return {
        (
            group["system"],
            group["coverage"],
            group["heading"],
            display(row),
            row["start_key"],
            row["end_key"],
        )
        for group in content["groups"]
        for row in group["rows"]
    }


def changed_spans(old: dict | None, new: dict) -> list[tuple[str, str, str]]:
    """(system, start key, end key) of rows in one snapshot and not the other."""
    differ = _row_keys(old) ^ _row_keys(new)
    return sorted({(key[0], key[4], key[5]) for key in differ})


# Comparing two snapshots -------------------------------------------------------------


@dataclass
class Group:
    system: str
    coverage: str
    heading: str

    @property
    def label(self) -> str:
        return coverage_label(self.coverage)

    @property
    def system_label(self) -> str:
        return codes.SYSTEM_LABELS[codes.System(self.system)]


@dataclass
class RangeChange:
    group: Group
    before: dict
    after: dict
    # Filled by range_effects: codes on the site that left and entered.
    left: int | None = None
    entered: int | None = None

    @property
    def written(self) -> str:
        return f"{display(self.before)} became {display(self.after)}"


@dataclass
class Move:
    row: dict
    source: Group
    target: Group

    @property
    def text(self) -> str:
        if self.source.coverage != self.target.coverage:
            where = f"from {self.source.label} to {self.target.label}"
        else:
            where = f"from “{self.source.heading}” to “{self.target.heading}”"
        return f"{display(self.row)} moved {where}"


@dataclass
class GroupChanges:
    group: Group
    added: list[dict] = field(default_factory=list)
    removed: list[dict] = field(default_factory=list)
    ranges: list[RangeChange] = field(default_factory=list)
    reworded: list[tuple[dict, dict]] = field(default_factory=list)

    def __bool__(self):
        return bool(self.added or self.removed or self.ranges or self.reworded)


@dataclass
class SectionChange:
    name: str
    heading: str
    # Paragraphs as lists of (kind, text) pieces, kind "same", "del" or "ins".
    paragraphs: list[dict]

    @property
    def summary(self) -> str:
        counts = {}
        for paragraph in self.paragraphs:
            counts[paragraph["kind"]] = counts.get(paragraph["kind"], 0) + 1
        parts = [
            f"{count} paragraph{'s' if count > 1 else ''} {kind}"
            for kind, count in counts.items()
        ]
        return ", ".join(parts)


@dataclass
class Comparison:
    title: tuple[str, str] | None = None
    dates: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    groups: list[GroupChanges] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    sections: list[SectionChange] = field(default_factory=list)
    references_added: list[str] = field(default_factory=list)
    references_removed: list[str] = field(default_factory=list)

    @property
    def ranges(self) -> list[RangeChange]:
        return [change for group in self.groups for change in group.ranges]

    def __bool__(self):
        return bool(
            self.title
            or self.dates
            or self.groups
            or self.moves
            or self.sections
            or self.references_added
            or self.references_removed
        )

    def lines(self) -> list[str]:
        """Every change as one plain sentence: dry runs, the feed, the admin."""
        lines = []
        if self.title:
            lines.append(f"Title changed from “{self.title[0]}” to “{self.title[1]}”.")
        for label, old, new in self.dates:
            lines.append(f"{label}: {old or 'not stated'} → {new or 'not stated'}.")
        lines += [f"{move.text}." for move in self.moves]
        for changes in self.groups:
            where = f"{changes.group.label} ({changes.group.heading})"
            lines += [f"{display(row)} added to {where}." for row in changes.added]
            lines += [
                f"{display(row)} removed from {where}." for row in changes.removed
            ]
            for change in changes.ranges:
                effect = ""
                if change.left is not None:
                    effect = (
                        f" ({change.left} {change.group.system_label} codes on this "
                        f"site left, {change.entered} entered)"
                    )
                lines.append(f"Range {change.written} in {where}{effect}.")
            lines += [
                f"{display(after)}: description reworded in {where}."
                for _before, after in changes.reworded
            ]
        for section in self.sections:
            lines.append(f"{section.heading}: {section.summary}.")
        if self.references_added:
            lines.append(f"{len(self.references_added)} references added.")
        if self.references_removed:
            lines.append(f"{len(self.references_removed)} references removed.")
        return lines or ["No change in the policy's content."]


def _group_of(group: dict) -> Group:
    return Group(group["system"], group["coverage"], group["heading"])


def _group_key(group: Group) -> tuple[str, str, str]:
    return (group.system, group.coverage, group.heading)


def _rows_by_group(content: dict) -> dict[tuple, tuple[Group, dict[str, dict]]]:
    table = {}
    for group in content["groups"]:
        found = _group_of(group)
        _group, rows = table.setdefault(_group_key(found), (found, {}))
        for row in group["rows"]:
            rows.setdefault(display(row), row)
    return table


def _overlap(one: dict, two: dict) -> bool:
    return one["start_key"] <= two["end_key"] and two["start_key"] <= one["end_key"]


def compare(old: dict, new: dict) -> Comparison:
    """What changed from snapshot ``old`` to snapshot ``new``."""
    result = Comparison()
    if old["title"] != new["title"]:
        result.title = (old["title"], new["title"])
    for name, label in DATE_FIELDS:
        if old.get(name) != new.get(name):
            result.dates.append((label, old.get(name), new.get(name)))

    before, after = _rows_by_group(old), _rows_by_group(new)
    changes = {
        key: GroupChanges(group) for key, (group, _rows) in {**before, **after}.items()
    }
    gone, came = [], []  # (group key, display, row)
    for key, (_group, rows) in before.items():
        kept = after.get(key, (None, {}))[1]
        for shown, row in rows.items():
            if shown not in kept:
                gone.append((key, shown, row))
            elif kept[shown]["description"] != row["description"]:
                changes[key].reworded.append((row, kept[shown]))
    for key, (_group, rows) in after.items():
        kept = before.get(key, (None, {}))[1]
        came += [(key, shown, row) for shown, row in rows.items() if shown not in kept]

    # The same code or range in another group: a move.
    for item in list(gone):
        key, shown, row = item
        target = next((other for other in came if other[1] == shown), None)
        if target is None:
            continue
        gone.remove(item)
        came.remove(target)
        result.moves.append(Move(row, changes[key].group, changes[target[0]].group))
    # A range replaced by an overlapping one in the same group: a range change.
    for item in list(gone):
        key, _shown, row = item
        target = next(
            (
                other
                for other in came
                if other[0] == key
                and (row["end_code"] or other[2]["end_code"])
                and _overlap(row, other[2])
            ),
            None,
        )
        if target is None:
            continue
        gone.remove(item)
        came.remove(target)
        changes[key].ranges.append(RangeChange(changes[key].group, row, target[2]))
    for key, _shown, row in gone:
        changes[key].removed.append(row)
    for key, _shown, row in came:
        changes[key].added.append(row)
    result.groups = [change for change in changes.values() if change]

    for name, heading in SECTIONS:
        old_text, new_text = (
            old["sections"].get(name, ""),
            new["sections"].get(name, ""),
        )
        if old_text != new_text:
            result.sections.append(
                SectionChange(name, heading, paragraph_diff(old_text, new_text))
            )
    old_refs, new_refs = old.get("references", []), new.get("references", [])
    result.references_added = [ref for ref in new_refs if ref not in old_refs]
    result.references_removed = [ref for ref in old_refs if ref not in new_refs]
    return result


_PARAGRAPHS = re.compile(r"\n\s*\n")
_WORDS = re.compile(r"\s+|[^\s]+")


def _paragraphs(text: str) -> list[str]:
    return [part.strip() for part in _PARAGRAPHS.split(text or "") if part.strip()]


def paragraph_diff(old: str, new: str) -> list[dict]:
    """
    The paragraphs that changed, each {"kind": "changed"|"added"|"removed",
    "pieces": [(kind, text)]}: words taken out are "del", put in "ins".
    """
    old_parts, new_parts = _paragraphs(old), _paragraphs(new)
    matcher = difflib.SequenceMatcher(a=old_parts, b=new_parts, autojunk=False)
    changed = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        pairs = list(zip(old_parts[i1:i2], new_parts[j1:j2], strict=False))
        for one, two in pairs:
            changed.append({"kind": "changed", "pieces": word_pieces(one, two)})
        for one in old_parts[i1 + len(pairs) : i2]:
            changed.append({"kind": "removed", "pieces": [("del", one)]})
        for two in new_parts[j1 + len(pairs) : j2]:
            changed.append({"kind": "added", "pieces": [("ins", two)]})
    return changed


def word_pieces(old: str, new: str) -> list[tuple[str, str]]:
    """
    One text from ``old`` to ``new``: ("same"|"del"|"ins", words) in order. A
    stretch of two words or fewer kept between two changes joins them, so that a
    rewritten sentence reads as one change, not as scattered words.
    """
    old_words, new_words = _WORDS.findall(old), _WORDS.findall(new)
    matcher = difflib.SequenceMatcher(a=old_words, b=new_words, autojunk=False)
    runs = []  # ["same", text] or ["change", taken out, put in]
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        taken, added = "".join(old_words[i1:i2]), "".join(new_words[j1:j2])
        if tag == "equal":
            runs.append(["same", taken])
        elif runs and runs[-1][0] == "change":
            runs[-1][1] += taken
            runs[-1][2] += added
        else:
            runs.append(["change", taken, added])
    merged = []
    for index, run in enumerate(runs):
        between = 0 < index < len(runs) - 1 and merged and merged[-1][0] == "change"
        if run[0] == "same" and between and len(run[1].split()) <= 2:
            merged[-1][1] += run[1]
            merged[-1][2] += run[1]
        elif run[0] == "change" and merged and merged[-1][0] == "change":
            merged[-1][1] += run[1]
            merged[-1][2] += run[2]
        else:
            merged.append(list(run))
    pieces = []
    for run in merged:
        if run[0] == "same":
            pieces.append(("same", run[1]))
            continue
        if run[1]:
            pieces.append(("del", run[1]))
        if run[2]:
            pieces.append(("ins", run[2]))
    return pieces


def range_effects(changes: list[RangeChange]) -> None:
    """
    Counts, for each range change, the codes on the site that left and entered it,
    by sort key, in one query for all of them.
    """
    if not changes:
        return
    where = Q()
    counts = {}
    for index, change in enumerate(changes):
        system = change.group.system
        old = Q(
            system=system,
            sort_key__gte=change.before["start_key"],
            sort_key__lte=change.before["end_key"],
        )
        new = Q(
            system=system,
            sort_key__gte=change.after["start_key"],
            sort_key__lte=change.after["end_key"],
        )
        where |= old | new
        counts[f"left_{index}"] = Count("pk", filter=old & ~new)
        counts[f"entered_{index}"] = Count("pk", filter=new & ~old)
    totals = Code.objects.filter(where).aggregate(**counts)
    for index, change in enumerate(changes):
        change.left = totals[f"left_{index}"]
        change.entered = totals[f"entered_{index}"]


# One code across versions ------------------------------------------------------------


def status_in(content: dict, system: str, key: str, code: str) -> tuple | None:
    """
    The code's (coverage, heading) in a snapshot, or None if no row names it: a
    row listing the code itself wins over a range, as in ``PolicyCode.mentions_of``.
    """
    found = None
    for group in content["groups"]:
        if group["system"] != system:
            continue
        for row in group["rows"]:
            if not row["start_key"] <= key <= row["end_key"]:
                continue
            status = (group["coverage"], group["heading"], display(row))
            if not row["end_code"] and row["start_code"] == code:
                return status
            found = found or status
    return found


@dataclass
class StatusChange:
    """A version in which one code's coverage in a policy changed."""

    policy: Policy
    version: PolicyVersion
    # (coverage, heading, row as written) or None where no row named the code.
    before: tuple | None
    after: tuple | None

    @property
    def before_label(self) -> str:
        return coverage_label(self.before[0]) if self.before else ""

    @property
    def after_label(self) -> str:
        return coverage_label(self.after[0]) if self.after else ""

    @property
    def text(self) -> str:
        if self.before is None:
            return f"Listed as {self.after_label}"
        if self.after is None:
            return f"Removed (was {self.before_label})"
        return f"Moved from {self.before_label} to {self.after_label}"


def code_history(system: str, code: str) -> list[StatusChange]:
    """
    Every version of a published policy that changed ``code``'s coverage, newest
    first. One query: the versions whose changed rows reach the code's sort key
    (``PolicyCodeChange``), with the version before each.
    """
    key = codes.sort_key(codes.System(system), code)
    reaching = PolicyCodeChange.objects.filter(
        system=system, start_key__lte=key, end_key__gte=key
    )
    # Both sets start from the spans' index, so the query reads the few versions
    # that reach the key, not every version of every policy.
    before_touched = PolicyVersion.objects.filter(
        policy__versions__number=F("number") + 1,
        policy__versions__code_changes__system=system,
        policy__versions__code_changes__start_key__lte=key,
        policy__versions__code_changes__end_key__gte=key,
    ).values("pk")
    versions = (
        PolicyVersion.objects.filter(
            Q(pk__in=reaching.values("version_id")) | Q(pk__in=before_touched),
            policy__status=PolicyStatus.PUBLISHED,
        )
        .annotate(touched=Exists(reaching.filter(version=OuterRef("pk"))))
        .select_related("policy__payer")
        # No ORDER BY: the history is sorted below, and ordering would make Django
        # hash every selected column (about 10% of this function's time).
        .order_by()
    )
    by_number = {(v.policy_id, v.number): v for v in versions}
    history = []
    for version in by_number.values():
        if not version.touched:
            continue
        previous = by_number.get((version.policy_id, version.number - 1))
        before = status_in(previous.content, system, key, code) if previous else None
        after = status_in(version.content, system, key, code)
        if (before and before[0]) != (after and after[0]):
            history.append(StatusChange(version.policy, version, before, after))
    history.sort(key=lambda change: (change.version.created_at, change.version.pk))
    return history[::-1]


def attach_last_changes(mentions, history: list[StatusChange]) -> None:
    """Sets ``status_change`` on each mention's policy: its latest change, or None."""
    latest = {}
    for change in history:
        latest.setdefault(change.policy.pk, change)
    for mention in mentions:
        mention.policy.status_change = latest.get(mention.policy.pk)


# Addresses ---------------------------------------------------------------------------


class BadVersion(ValueError):
    """A version's address that is neither a number nor a date."""


def parse_address(text: str) -> int | datetime.date:
    """A version's part of an address: its number (3) or review date (2026-03-01)."""
    text = (text or "").strip()
    if text.isdigit() and len(text) <= 9:
        return int(text)
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise BadVersion(
            f"“{text[:40]}” is not a version: give its number (such as 2) or the "
            "date it was reviewed (such as 2026-03-01)."
        ) from None


def find(versions, wanted: int | datetime.date):
    """The version with that number, or the latest reviewed on that date; or None."""
    if isinstance(wanted, int):
        return next((v for v in versions if v.number == wanted), None)
    dated = [v for v in versions if v.last_reviewed_on == wanted]
    return max(dated, key=lambda v: v.number) if dated else None


# The content backup (carecodes.content) ---------------------------------------------


def export_versions(policy) -> list[dict]:
    """The policy's versions as JSON values, oldest first (``versions`` prefetched)."""
    return [
        {
            "number": version.number,
            "created_at": version.created_at.isoformat(),
            "last_reviewed_on": _day(version.last_reviewed_on),
            "note": version.note,
            "content": version.content,
        }
        for version in sorted(policy.versions.all(), key=lambda v: v.number)
    ]


def restore_versions(policy, items, result, *, replace=False) -> bool:
    """
    Writes the backup's versions of ``policy`` that the database lacks or holds
    otherwise (validated by the caller); with ``replace``, removes the versions the
    backup does not have. True if anything was written.
    """
    stored = {version.number: version for version in policy.versions.all()}
    changed = False
    for item in sorted(items, key=lambda item: item["number"]):
        values = {
            "created_at": datetime.datetime.fromisoformat(item["created_at"]),
            "last_reviewed_on": (
                datetime.date.fromisoformat(item["last_reviewed_on"])
                if item.get("last_reviewed_on")
                else None
            ),
            "note": item.get("note", ""),
            "content": item["content"],
            "digest": content_digest(item["content"]),
        }
        version = stored.get(item["number"])
        action = UPDATED if version else CREATED
        if version is None:
            version = PolicyVersion(policy=policy, number=item["number"], **values)
        elif all(getattr(version, name) == value for name, value in values.items()):
            continue
        for name, value in values.items():
            setattr(version, name, value)
        version.save()
        changed = True
        result.changes.append(
            Change(
                f"Version {version.number} of {policy.payer} {policy.number}", action
            )
        )
    if replace:
        wanted = {item["number"] for item in items}
        extra = [number for number in stored if number not in wanted]
        if extra:
            policy.versions.filter(number__in=extra).delete()
            changed = True
    if changed:
        # The spans follow from each version and the one before it.
        PolicyCodeChange.objects.filter(version__policy=policy).delete()
        previous = None
        for version in policy.versions.order_by("number"):
            save_spans(version, previous)
            previous = version.content
    return changed
