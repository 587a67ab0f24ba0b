"""
Saving a parsed policy bulletin: payer, policy, code table, references, listed codes.

``import_policy`` writes only what differs from the database (a second import writes
no row), and with ``dry_run=True`` reports what would change without writing. A code
table or reference list that differs is replaced as a whole, in bulk, and
``policy_content_changed`` is sent for it, so derived data (search, similar codes)
follows once the transaction commits.

Every single code the table lists with a description gets a ``Code`` row if the site
does not know it yet, with the bulletin's description and the bulletin as its source
("Aetna CPB 0198"), so every listed code has a page (see ``procedures.importing`` for
which descriptor wins).
"""

from __future__ import annotations

import re
from collections import defaultdict

from django.db.models import Q
from django.utils.text import slugify
from simple_history.utils import bulk_create_with_history

from carecodes.importing import (
    CREATED,
    REPLACED,
    UNCHANGED,
    UPDATED,
    Change,
    ImportRefused,
    ImportResult,
    sync,
)
from procedures.importing import ensure_code
from procedures.models import Code, PublicationStatus

from .models import Payer, Policy, PolicyCode, PolicyCodeGroup, PolicyReference
from .parsing import ParsedPolicy
from .signals import policy_content_changed
from .versions import record_version

__all__ = [
    "KNOWN_PAYERS",
    "ImportRefused",
    "ImportResult",
    "import_policy",
    "link_related",
    "link_related_policies",
    "sync_policy_content",
]


def aetna_source_url(number: str) -> str:
    if not number.isdigit():
        return ""
    # Aetna files bulletins in folders of a hundred: 1_99, 100_199, ...
    hundred = int(number) // 100 * 100
    folder = f"{hundred or 1}_{hundred + 99}"
    return f"https://www.aetna.com/cpb/medical/data/{folder}/{number}.html"


# What the bulletins do not say about payers the site knows: their web site and where
# a bulletin is published, from its number.
KNOWN_PAYERS = {
    "aetna": {"website": "https://www.aetna.com/", "source_url": aetna_source_url},
}
# "CPB 0325 - Physical Therapy": the number of a related bulletin.
RELATED_NUMBER = re.compile(r"\b(\d{4})\b")
POLICY_FIELDS = (
    "title",
    "scope",
    "limitations",
    "notes",
    "code_table_note",
    "background",
    "effective_on",
    "last_reviewed_on",
    "next_review_on",
)


def bulletin_source(parsed: ParsedPolicy) -> str:
    """Where a descriptor taken from this bulletin comes from: "Aetna CPB 0198"."""
    return f"{parsed.payer_name} CPB {parsed.number}"


def import_policy(parsed: ParsedPolicy, *, dry_run: bool = False) -> ImportResult:
    """Save a parsed bulletin; see the module docstring.

    A new policy is published (a bulletin is the payer's own text, shown as the payer
    wrote it); a stored policy keeps its status. Call inside a transaction: the code
    table is replaced with several statements.
    """
    if parsed.problems:
        raise ImportRefused(parsed.problems)
    result = ImportResult(
        f"{parsed.payer_name} {parsed.number}: {parsed.title}", dry_run=dry_run
    )
    slug = slugify(parsed.payer_name)
    known = KNOWN_PAYERS.get(slug, {})
    payer = Payer.objects.filter(slug=slug).first()
    if payer is None:
        payer, _action = sync(
            Payer,
            {"slug": slug},
            {"name": parsed.payer_name, "website": known.get("website", "")},
            result,
            f"Payer {parsed.payer_name}",
            dry_run=dry_run,
            known_new=True,
        )

    values = {name: getattr(parsed.policy, name) for name in POLICY_FIELDS}
    stored = (
        Policy.objects.filter(payer=payer, number=parsed.number).first()
        if payer.pk
        else None
    )
    if "source_url" in known:
        values["source_url"] = known["source_url"](parsed.number)
    if stored is None:
        values["status"] = PublicationStatus.PUBLISHED
    policy, result.action = sync(
        Policy,
        {"payer": payer, "number": parsed.number},
        values,
        result,
        f"Policy {parsed.payer_name} {parsed.number}",
        dry_run=dry_run,
        instance=stored,
        known_new=stored is None,
    )

    replaced = sync_policy_content(
        policy, parsed.groups, parsed.references, result, dry_run=dry_run
    )
    _sync_listed_codes(parsed, result, dry_run=dry_run)
    if policy.pk:
        link_related(policy, parsed.related_policies, result, dry_run=dry_run)
    if result.action == UNCHANGED and replaced:
        result.action = UPDATED
    result.instance = policy
    return result


def _group_text(group: PolicyCodeGroup) -> str:
    return f"{group.heading} ({group.get_coverage_display().lower()})"


def _row_text(row: PolicyCode) -> str:
    mark = "+ " if row.is_addon else ""
    return f"{mark}{row.display} {row.description}".rstrip()


def _table_text(groups) -> list[str]:
    lines = []
    for group, rows in groups:
        lines.append(_group_text(group))
        lines += [f"    {_row_text(row)}" for row in rows]
    return lines


def _group_fields(group: PolicyCodeGroup):
    return (group.heading, group.coverage, group.system, group.position)


def _row_fields(row: PolicyCode):
    return (
        row.start_code,
        row.end_code,
        row.seventh_character,
        row.is_addon,
        row.description,
        row.position,
    )


def stored_groups(policy: Policy) -> list[tuple[PolicyCodeGroup, list[PolicyCode]]]:
    if not policy.pk:
        return []
    return [
        (group, list(group.codes.all()))
        for group in policy.code_groups.prefetch_related("codes")
    ]


def sync_policy_content(
    policy, groups, references, result, *, dry_run, note="Imported"
) -> bool:
    """Replaces the code table and references where they differ; True if either did.

    Then records a version of the policy if its content (fields already set on
    ``policy`` included) differs from its latest version (``policies.versions``):
    every import, whatever its format, goes through here.

    The rows are written in bulk, so ``policy_content_changed`` is sent for them.
    """
    replaced = _sync_code_table(policy, groups, result, dry_run=dry_run)
    replaced |= _sync_references(policy, references, result, dry_run=dry_run)
    record_version(
        policy, groups, references, result=result, dry_run=dry_run, note=note
    )
    if replaced and not dry_run:
        # The rows went in bulk, past post_save: say so. The index queues the policy
        # and refreshes it once, when the transaction commits.
        policy_content_changed.send(sender=Policy, policy=policy)
    return replaced


def _sync_code_table(policy, groups, result, *, dry_run) -> bool:
    """Replaces the policy's code table unless it already reads the same."""
    stored = stored_groups(policy)

    def fields(table):
        return [
            (_group_fields(group), [_row_fields(row) for row in rows])
            for group, rows in table
        ]

    label = f"Code table of {policy.payer} {policy.number}"
    if fields(groups) == fields(stored):
        result.changes.append(Change(label, UNCHANGED))
        return False
    result.changes.append(
        Change(
            label,
            REPLACED if stored else CREATED,
            before=_table_text(stored),
            after=_table_text(groups),
            is_table=True,
        )
    )
    if dry_run:
        return True
    policy.code_groups.all().delete()
    for group, rows in groups:
        # The parser's objects are the caller's: save copies, so that a rolled-back
        # transaction does not leave primary keys on them.
        saved = PolicyCodeGroup(
            policy=policy,
            heading=group.heading,
            coverage=group.coverage,
            system=group.system,
            position=group.position,
        )
        saved.save()
        # The code table's history records each row (carecodes.admin's history view).
        bulk_create_with_history(
            [
                PolicyCode(
                    group=saved,
                    system=saved.system,
                    start_code=row.start_code,
                    end_code=row.end_code,
                    seventh_character=row.seventh_character,
                    is_addon=row.is_addon,
                    description=row.description,
                    start_key=row.start_key,
                    end_key=row.end_key,
                    position=row.position,
                )
                for row in rows
            ],
            PolicyCode,
        )
    return True


def _sync_references(policy, references, result, *, dry_run) -> bool:
    wanted = [(ref.position, ref.citation) for ref in references]
    stored = (
        list(policy.references.values_list("position", "citation")) if policy.pk else []
    )
    label = f"References of {policy.payer} {policy.number}"
    if wanted == stored:
        result.changes.append(Change(label, UNCHANGED))
        return False
    result.changes.append(
        Change(
            label,
            REPLACED if stored else CREATED,
            before=[f"{position}. {citation}" for position, citation in stored],
            after=[f"{position}. {citation}" for position, citation in wanted],
            is_table=True,
        )
    )
    if not dry_run:
        policy.references.all().delete()
        bulk_create_with_history(
            [
                PolicyReference(policy=policy, position=position, citation=citation)
                for position, citation in wanted
            ],
            PolicyReference,
        )
    return True


def _sync_listed_codes(parsed, result, *, dry_run):
    source = bulletin_source(parsed)
    listed = [
        (group.system, row)
        for group, rows in parsed.groups
        for row in rows
        # A range's description speaks of the range, not of its end codes, and
        # "S62.0XX+" stands for a family of codes that each need a 7th character.
        if not (row.is_range or row.seventh_character or not row.description)
    ]
    # One query for the codes a bulletin lists, rather than one per row.
    by_system = defaultdict(set)
    for system, row in listed:
        by_system[system].add(row.start_code)
    wanted = Q(pk__in=[])
    for system, numbers in by_system.items():
        wanted |= Q(system=system, code__in=numbers)
    known = {(code.system, code.code): code for code in Code.objects.filter(wanted)}
    for system, row in listed:
        known[(system, row.start_code)] = ensure_code(
            system,
            row.start_code,
            descriptor=row.description,
            source=source,
            is_addon=row.is_addon,
            result=result,
            dry_run=dry_run,
            known=known,
        )


def link_related(policy, lines, result=None, *, dry_run=False):
    """Links the payer's policies whose numbers the "Related Policies" lines give."""
    numbers = {number for line in lines for number in RELATED_NUMBER.findall(line)}
    related = Policy.objects.filter(payer=policy.payer, number__in=numbers)
    link_related_policies(policy, related, result, dry_run=dry_run)


def link_related_policies(policy, related, result=None, *, dry_run=False):
    """Makes ``related`` the policy's related policies, writing only the difference."""
    related = {other for other in related if other.pk != policy.pk}
    current = set(policy.related_policies.all())
    if related == current:
        return
    if result is not None:
        result.changes.append(
            Change(
                f"Related policies of {policy.payer} {policy.number}",
                REPLACED,
                before=sorted(str(other) for other in current),
                after=sorted(str(other) for other in related),
                is_table=True,
            )
        )
    if not dry_run:
        # set() adds and removes only the difference.
        policy.related_policies.set(related)
