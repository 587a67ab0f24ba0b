"""
All editorial content as one versioned JSON document, and back: the backup path.

``export_content()`` gathers payers, policies (with their code groups, rows,
references, related policies and replacements), write-ups, their editorial history
(carecodes.content_history), and the codes that content
names whose descriptor does not come from an official code set (bulletin- or
write-up-sourced codes), so a restore into a database with only the official code
sets loses nothing.
Rows are keyed by natural keys (payer slug, payer and policy number, code system and
code), never database ids, and listed in a stable order, so two exports of the same
content are the same file apart from ``exported_at``.

``import_content(data)`` checks the whole document first (format, version, shape,
codes and choices) and raises :class:`ContentError` listing every problem by its
place in the document. It then writes only what differs, timestamps included, so
importing an export into the database it came from writes nothing. It removes
nothing unless ``replace=True``. Call it inside a transaction.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Q
from django.utils import timezone

from carecodes.content_history import check_history, export_history, import_history
from carecodes.importing import UNCHANGED, UPDATED, Change, ImportResult, sync
from policies.importing import link_related_policies, sync_policy_content
from policies.models import (
    Coverage,
    Payer,
    Policy,
    PolicyCode,
    PolicyCodeGroup,
    PolicyReference,
    PolicyStatus,
)
from policies.versions import export_versions, restore_versions
from procedures import codes
from procedures.models import (
    WRITEUP_SECTIONS,
    Code,
    CodeSystem,
    Procedure,
    PublicationStatus,
)

FORMAT = "carecodes-content"
VERSION = 1

PAYER_FIELDS = ("name", "website", "description")
POLICY_FIELDS = (
    "title",
    "status",
    "scope",
    "limitations",
    "notes",
    "code_table_note",
    "background",
    "effective_on",
    "last_reviewed_on",
    "next_review_on",
    "withdrawn_on",
    "source_url",
)
POLICY_DATES = ("effective_on", "last_reviewed_on", "next_review_on", "withdrawn_on")
PROCEDURE_FIELDS = (
    "title",
    *(name for name, _heading in WRITEUP_SECTIONS),
    "status",
    "reviewed_on",
    "reviewed_by",
)
# The review's bookkeeping: which text it approved, when it is due again, and a
# working revision with its own approval. A file from before they existed has none.
PROCEDURE_REVIEW_FIELDS = {
    "reviewed_text_sha256": "",
    "review_due_on": None,
    "revision": {},
    "revision_review": {},
}
PROCEDURE_DATES = ("reviewed_on", "review_due_on")
CODE_FIELDS = ("descriptor", "is_addon", "is_billable", "source", "notes")
ROW_FIELDS = (
    "start_code",
    "end_code",
    "seventh_character",
    "is_addon",
    "description",
    "position",
)


class ContentError(Exception):
    """The document cannot be imported; ``problems`` say where and why."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


# Export ------------------------------------------------------------------------------


def _date(value):
    return value.isoformat() if value else None


def _code_key(code: Code) -> list[str]:
    return [code.system, code.code]


def export_content() -> dict:
    """The whole editorial content as a JSON-ready dict (see the module docstring)."""
    policies = list(
        Policy.objects.select_related("payer", "replaced_by__payer")
        .prefetch_related(
            "code_groups__codes", "references", "related_policies__payer", "versions"
        )
        .order_by("payer__slug", "number")
    )
    procedures = sorted(
        Procedure.objects.select_related("code"),
        key=lambda p: codes.code_sort_tuple(codes.System(p.code.system), p.code.code),
    )
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": timezone.now().isoformat(),
        "payers": [
            {
                "slug": payer.slug,
                **{name: getattr(payer, name) for name in PAYER_FIELDS},
            }
            for payer in Payer.objects.order_by("slug")
        ],
        "policies": [_export_policy(policy) for policy in policies],
        "procedures": [_export_procedure(procedure) for procedure in procedures],
        "codes": [_export_code(code) for code in _content_codes(policies, procedures)],
        "history": export_history(),
    }


def _export_policy(policy: Policy) -> dict:
    values = {name: getattr(policy, name) for name in POLICY_FIELDS}
    for name in POLICY_DATES:
        values[name] = _date(values[name])
    return {
        "payer": policy.payer.slug,
        "number": policy.number,
        **values,
        "created_at": policy.created_at.isoformat(),
        "updated_at": policy.updated_at.isoformat(),
        "related_policies": sorted(
            [related.payer.slug, related.number]
            for related in policy.related_policies.all()
        ),
        "replaced_by": (
            [policy.replaced_by.payer.slug, policy.replaced_by.number]
            if policy.replaced_by
            else None
        ),
        "groups": [
            {
                "heading": group.heading,
                "coverage": group.coverage,
                "system": group.system,
                "position": group.position,
                "rows": [
                    {name: getattr(row, name) for name in ROW_FIELDS}
                    for row in group.codes.all()
                ],
            }
            for group in policy.code_groups.all()
        ],
        "references": [
            {"position": reference.position, "citation": reference.citation}
            for reference in policy.references.all()
        ],
        # Its versions (policies.versions), oldest first; a file without them is
        # read as before versions existed.
        "versions": export_versions(policy),
    }


def _export_procedure(procedure: Procedure) -> dict:
    values = {
        name: getattr(procedure, name)
        for name in (*PROCEDURE_FIELDS, *PROCEDURE_REVIEW_FIELDS)
    }
    for name in PROCEDURE_DATES:
        values[name] = _date(values[name])
    return {
        "code": _code_key(procedure.code),
        **values,
        "created_at": procedure.created_at.isoformat(),
        "updated_at": procedure.updated_at.isoformat(),
    }


def _content_codes(policies, procedures) -> list[Code]:
    """Codes without an official descriptor that a write-up or a policy row names."""
    by_system = defaultdict(set)
    for policy in policies:
        for group in policy.code_groups.all():
            for row in group.codes.all():
                by_system[row.system].add(row.start_code)
                if row.end_code:
                    by_system[row.system].add(row.end_code)
    # One term per system keeps the SQL shallow however many rows there are.
    named = Q(pk__in=[procedure.code_id for procedure in procedures])
    for system, numbers in by_system.items():
        named |= Q(system=system, code__in=numbers)
    found = (
        Code.objects.filter(named, code_set_year__isnull=True)
        .select_related("parent")
        .prefetch_related("primary_codes")
    )
    return sorted(
        found,
        key=lambda code: codes.code_sort_tuple(codes.System(code.system), code.code),
    )


def _export_code(code: Code) -> dict:
    return {
        "system": code.system,
        "code": code.code,
        **{name: getattr(code, name) for name in CODE_FIELDS},
        "parent": _code_key(code.parent) if code.parent else None,
        "primary_codes": sorted(
            _code_key(primary) for primary in code.primary_codes.all()
        ),
        "updated_at": code.updated_at.isoformat(),
    }


# Validation --------------------------------------------------------------------------


@dataclass
class _Checker:
    problems: list[str] = field(default_factory=list)

    def fail(self, where: str, message: str):
        self.problems.append(f"{where}: {message}")

    def items(self, data, key: str, where: str = "") -> list:
        place = f"{where}.{key}" if where else key
        value = data.get(key)
        if not isinstance(value, list):
            self.fail(place, "should be a list.")
            return []
        good = []
        for index, item in enumerate(value):
            if isinstance(item, dict):
                good.append((f"{place}[{index}]", item))
            else:
                self.fail(f"{place}[{index}]", "should be an object.")
        return good

    def text(self, item, where, key, *, blank=True, limit=None):
        value = item.get(key)
        if not isinstance(value, str):
            self.fail(f"{where}.{key}", "should be text.")
        elif not blank and not value.strip():
            self.fail(f"{where}.{key}", "should not be empty.")
        elif limit and len(value) > limit:
            self.fail(f"{where}.{key}", f"is longer than {limit} characters.")
        elif "\x00" in value:
            self.fail(f"{where}.{key}", "holds a NUL character.")

    def flag(self, item, where, key):
        if not isinstance(item.get(key), bool):
            self.fail(f"{where}.{key}", "should be true or false.")

    def number(self, item, where, key):
        value = item.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            self.fail(f"{where}.{key}", "should be a whole number, 0 or more.")

    def choice(self, item, where, key, choices):
        if item.get(key) not in choices:
            self.fail(f"{where}.{key}", f"should be one of {', '.join(choices)}.")

    def date(self, item, where, key, *, kind=datetime.date, null=True):
        value = item.get(key)
        if value is None and null:
            return
        try:
            parsed = kind.fromisoformat(value)
        except (TypeError, ValueError):
            self.fail(f"{where}.{key}", "should be an ISO date (2026-01-31).")
            return
        if kind is datetime.datetime and timezone.is_naive(parsed):
            self.fail(f"{where}.{key}", "should give its time zone.")

    def code_key(self, value, where, *, null=False) -> tuple[str, str] | None:
        if value is None and null:
            return None
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(isinstance(part, str) for part in value)
        ):
            self.fail(
                where, 'should be a [system, code] pair, such as ["cpt", "97546"].'
            )
            return None
        system = codes.system_from_slug(value[0])
        if system is None:
            self.fail(where, f"“{value[0]}” is not a code system.")
            return None
        try:
            return system.value, codes.normalize(system, value[1])
        except codes.CodeError as error:
            self.fail(where, str(error))
            return None


def validate(data) -> None:
    """Raises ContentError listing every problem of the document, or returns."""
    check = _Checker()
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ContentError([f"This is not a {FORMAT} file (its “format” is missing)."])
    if data.get("version") != VERSION:
        raise ContentError(
            [
                f"This file is version {data.get('version')!r}; this site reads "
                f"version {VERSION} only."
            ]
        )
    slugs = set()
    for where, payer in check.items(data, "payers"):
        check.text(payer, where, "slug", blank=False, limit=80)
        check.text(payer, where, "name", blank=False, limit=200)
        check.text(payer, where, "website")
        check.text(payer, where, "description")
        slugs.add(payer.get("slug"))
    for where, policy in check.items(data, "policies"):
        _check_policy(check, where, policy, slugs)
    for where, procedure in check.items(data, "procedures"):
        check.code_key(procedure.get("code"), f"{where}.code")
        for name in PROCEDURE_FIELDS:
            if name == "status":
                check.choice(procedure, where, name, PublicationStatus.values)
            elif name == "reviewed_on":
                check.date(procedure, where, name)
            else:
                check.text(procedure, where, name, blank=name != "title")
        check.date(procedure, where, "review_due_on")
        if "reviewed_text_sha256" in procedure:
            check.text(procedure, where, "reviewed_text_sha256", limit=64)
        for name in ("revision", "revision_review"):
            value = procedure.get(name, {})
            if not isinstance(value, dict) or not all(
                isinstance(text, str | int) for text in value.values()
            ):
                check.fail(f"{where}.{name}", "should be an object of texts.")
        _check_timestamps(check, where, procedure)
    for where, code in check.items(data, "codes"):
        check.code_key([code.get("system"), code.get("code")], where)
        check.text(code, where, "descriptor", blank=False)
        check.text(code, where, "source", limit=200)
        check.flag(code, where, "is_addon")
        check.flag(code, where, "is_billable")
        if not isinstance(code.get("notes"), dict):
            check.fail(f"{where}.notes", "should be an object.")
        check.code_key(code.get("parent"), f"{where}.parent", null=True)
        primaries = code.get("primary_codes")
        if not isinstance(primaries, list):
            check.fail(f"{where}.primary_codes", "should be a list.")
        else:
            for index, key in enumerate(primaries):
                check.code_key(key, f"{where}.primary_codes[{index}]")
        check.date(code, where, "updated_at", kind=datetime.datetime, null=False)
    check_history(check, data)
    if check.problems:
        raise ContentError(check.problems)


def _check_timestamps(check, where, item):
    for name in ("created_at", "updated_at"):
        check.date(item, where, name, kind=datetime.datetime, null=False)


def _check_policy(check, where, policy, slugs):
    if policy.get("payer") not in slugs:
        check.fail(f"{where}.payer", "names no payer of the file.")
    check.text(policy, where, "number", blank=False, limit=30)
    for name in POLICY_FIELDS:
        if name == "status":
            check.choice(policy, where, name, PolicyStatus.values)
        elif name in POLICY_DATES:
            check.date(policy, where, name)
        else:
            check.text(policy, where, name, blank=name != "title")
    _check_timestamps(check, where, policy)
    related = policy.get("related_policies")
    if not isinstance(related, list) or not all(
        isinstance(pair, list) and len(pair) == 2 for pair in related
    ):
        check.fail(f"{where}.related_policies", "should be a list of [payer, number].")
    replaced_by = policy.get("replaced_by")
    if replaced_by is not None and not (
        isinstance(replaced_by, list) and len(replaced_by) == 2
    ):
        check.fail(f"{where}.replaced_by", "should be [payer, number] or null.")
    for group_at, group in check.items(policy, "groups", where):
        check.text(group, group_at, "heading", blank=False, limit=300)
        check.choice(group, group_at, "coverage", Coverage.values)
        check.choice(group, group_at, "system", CodeSystem.values)
        check.number(group, group_at, "position")
        for row_at, row in check.items(group, "rows", group_at):
            for name in ("seventh_character", "is_addon"):
                check.flag(row, row_at, name)
            check.number(row, row_at, "position")
            check.text(row, row_at, "description")
            check.text(row, row_at, "start_code", blank=False)
            check.text(row, row_at, "end_code")
            if group.get("system") in CodeSystem.values:
                try:
                    _range_of(group["system"], row)
                except codes.CodeError as error:
                    check.fail(row_at, str(error))
                except (KeyError, TypeError, AttributeError):
                    pass  # A missing or mistyped field, reported above.
    for ref_at, reference in check.items(policy, "references", where):
        check.number(reference, ref_at, "position")
        check.text(reference, ref_at, "citation", blank=False)
    if "versions" in policy:
        _check_versions(check, where, policy)


def _check_versions(check, where, policy):
    numbers = set()
    for at, version in check.items(policy, "versions", where):
        number = version.get("number")
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            check.fail(f"{at}.number", "should be a whole number, 1 or more.")
        elif number in numbers:
            check.fail(f"{at}.number", f"repeats version {number}.")
        numbers.add(number)
        check.date(version, at, "created_at", kind=datetime.datetime, null=False)
        check.date(version, at, "last_reviewed_on")
        check.text(version, at, "note", limit=200)
        content = version.get("content")
        if not isinstance(content, dict):
            check.fail(f"{at}.content", "should be an object.")
            continue
        check.text(content, f"{at}.content", "title")
        if not isinstance(content.get("sections"), dict):
            check.fail(f"{at}.content.sections", "should be an object.")
        if not isinstance(content.get("references"), list):
            check.fail(f"{at}.content.references", "should be a list.")
        for group_at, group in check.items(content, "groups", f"{at}.content"):
            check.choice(group, group_at, "system", CodeSystem.values)
            check.choice(group, group_at, "coverage", Coverage.values)
            check.text(group, group_at, "heading")
            for row_at, row in check.items(group, "rows", group_at):
                for name in ("start_code", "end_code", "description"):
                    check.text(row, row_at, name)
                for name in ("start_key", "end_key"):
                    check.text(row, row_at, name, blank=False, limit=13)
                for name in ("seventh_character", "is_addon"):
                    check.flag(row, row_at, name)


def _range_of(system: str, row: dict) -> codes.CodeRange:
    # Read the row as a bulletin writes it, markers included, as PolicyCode does.
    mark = "+" if row["seventh_character"] else ""
    written = f"{row['start_code']}{mark}"
    if row["end_code"]:
        written += f" - {row['end_code']}{mark}"
    if row["is_addon"]:
        written = f"+ {written}"
    return codes.parse_range(codes.System(system), written)


# Import ------------------------------------------------------------------------------


def _stamp(value):
    return datetime.datetime.fromisoformat(value) if value else None


def _day(value):
    return datetime.date.fromisoformat(value) if value else None


def _restore_timestamps(instance, item, result, label):
    """Puts back the file's timestamps, which ``save()`` has just set to now."""
    wanted = {
        name: _stamp(item[name])
        for name in ("created_at", "updated_at")
        if name in item and hasattr(instance, name)
    }
    differs = {
        name: value
        for name, value in wanted.items()
        if getattr(instance, name) != value
    }
    if differs:
        type(instance).objects.filter(pk=instance.pk).update(**differs)
        if result.changes and result.changes[-1].label == label:
            result.changes[-1].fields.update(
                {
                    name: (getattr(instance, name), value)
                    for name, value in differs.items()
                }
            )
            if result.changes[-1].action == UNCHANGED:
                result.changes[-1].action = UPDATED
        for name, value in differs.items():
            setattr(instance, name, value)


def import_content(data, *, replace: bool = False) -> ImportResult:
    """Upsert the document's content; see the module docstring."""
    validate(data)
    result = ImportResult("content")
    code_items = {_key(item["system"], item["code"]): item for item in data["codes"]}
    stored_codes = _codes_by_key(code_items)
    saved_codes = {
        key: _import_code(key, item, stored_codes.get(key), result)
        for key, item in code_items.items()
    }

    payers = {}
    for item in data["payers"]:
        payers[item["slug"]], _action = sync(
            Payer,
            {"slug": item["slug"]},
            {name: item[name] for name in PAYER_FIELDS},
            result,
            f"Payer {item['slug']}",
            dry_run=False,
        )
    policies = {}
    for item in data["policies"]:
        policies[(item["payer"], item["number"])] = _import_policy(
            item, payers[item["payer"]], result, replace=replace
        )
    for (slug, number), policy in policies.items():
        item = next(
            p for p in data["policies"] if (p["payer"], p["number"]) == (slug, number)
        )
        link_related_policies(
            policy,
            Policy.objects.filter(
                _pairs_filter(item["related_policies"], "payer__slug", "number")
            ),
            result,
        )
        _link_replacement(policy, item.get("replaced_by"), result)
    procedures = set()
    for item in data["procedures"]:
        procedures.add(_import_procedure(item, result))

    _link_codes(code_items, saved_codes, result)

    if replace:
        Procedure.objects.exclude(pk__in=procedures).delete()
        Policy.objects.exclude(pk__in=[p.pk for p in policies.values()]).delete()
        Payer.objects.exclude(pk__in=[p.pk for p in payers.values()]).delete()
    import_history(data)
    return result


def _link_replacement(policy, pair, result):
    """Points the policy at the replacement the file names, writing only a change."""
    replacement = None
    if pair:
        replacement = Policy.objects.filter(payer__slug=pair[0], number=pair[1]).first()
    if policy.replaced_by_id == (replacement.pk if replacement else None):
        return
    result.changes.append(
        Change(
            f"Replacement of {policy.payer} {policy.number}",
            UPDATED,
            fields={
                "replaced_by": (
                    str(policy.replaced_by) if policy.replaced_by else None,
                    str(replacement) if replacement else None,
                )
            },
        )
    )
    # update(): the file's updated_at, restored already, stays as it is.
    Policy.objects.filter(pk=policy.pk).update(replaced_by=replacement)
    policy.replaced_by = replacement


def _pairs_filter(pairs, first: str, second: str) -> Q:
    """Matches rows whose (first, second) is one of ``pairs``; matches none if empty."""
    query = Q(pk__in=[])
    for one, two in pairs:
        query |= Q(**{first: one, second: two})
    return query


def _key(system: str, code: str) -> tuple[str, str]:
    """The canonical (system, code) of a pair the document gives (validated)."""
    system = codes.system_from_slug(system)
    return system.value, codes.normalize(system, code)


def _codes_by_key(keys) -> dict[tuple[str, str], Code]:
    """The stored codes among ``keys``, in one query."""
    by_system = defaultdict(set)
    for system, code in keys:
        by_system[system].add(code)
    wanted = Q(pk__in=[])
    for system, numbers in by_system.items():
        wanted |= Q(system=system, code__in=numbers)
    found = Code.objects.filter(wanted).prefetch_related("primary_codes")
    return {(code.system, code.code): code for code in found}


def _import_code(key, item, stored, result):
    """The saved code, or None when an official code set now owns it."""
    label = f"Code {key}"
    if stored is not None and stored.code_set_year is not None:
        # An official code set has replaced the text since: it wins.
        result.changes.append(Change(label, UNCHANGED))
        return None
    code, _action = sync(
        Code,
        {"system": key[0], "code": key[1]},
        {name: item[name] for name in CODE_FIELDS},
        result,
        label,
        dry_run=False,
        instance=stored,
        known_new=stored is None,
    )
    _restore_timestamps(code, item, result, label)
    return code


def _link_codes(code_items, saved_codes, result):
    """Parents and primary codes, once every code of the file exists."""
    linked = set()
    for item in code_items.values():
        if item["parent"]:
            linked.add(_key(*item["parent"]))
        linked.update(_key(*pair) for pair in item["primary_codes"])
    targets = _codes_by_key(linked)
    for key, item in code_items.items():
        code = saved_codes[key]
        if code is None:
            continue
        parent = targets.get(_key(*item["parent"])) if item["parent"] else None
        if code.parent_id != (parent.pk if parent else None):
            code.parent = parent
            code.save()
            _restore_timestamps(code, item, result, f"Code {key}")
        wanted = {
            targets[_key(*pair)].pk
            for pair in item["primary_codes"]
            if _key(*pair) in targets
        }
        if {primary.pk for primary in code.primary_codes.all()} != wanted:
            code.primary_codes.set(wanted)


def _import_policy(item, payer, result, *, replace=False):
    values = {name: item[name] for name in POLICY_FIELDS}
    for name in POLICY_DATES:
        values[name] = _day(values[name])
    label = f"Policy {item['payer']} {item['number']}"
    policy, _action = sync(
        Policy,
        {"payer": payer, "number": item["number"]},
        values,
        result,
        label,
        dry_run=False,
    )
    if "versions" in item:
        # Before the content: its latest version then matches, and none is added.
        restore_versions(policy, item["versions"], result, replace=replace)
    groups = []
    for group_item in item["groups"]:
        group = PolicyCodeGroup(
            heading=group_item["heading"],
            coverage=group_item["coverage"],
            system=group_item["system"],
            position=group_item["position"],
        )
        rows = []
        for row_item in group_item["rows"]:
            found = _range_of(group.system, row_item)
            rows.append(
                PolicyCode(
                    system=group.system,
                    **{name: row_item[name] for name in ROW_FIELDS},
                    start_key=found.start_key,
                    end_key=found.end_key,
                )
            )
        groups.append((group, rows))
    references = [
        PolicyReference(position=ref["position"], citation=ref["citation"])
        for ref in item["references"]
    ]
    sync_policy_content(
        policy, groups, references, result, dry_run=False, note="Restored from a backup"
    )
    _restore_timestamps(policy, item, result, label)
    return policy


def _import_procedure(item, result):
    system, number = _key(*item["code"])
    code = Code.objects.filter(system=system, code=number).first()
    if code is None:
        raise ContentError(
            [
                f"The write-up of {system} {number} names a code this site does not "
                f"have, and the file does not carry it."
            ]
        )
    values = {name: item[name] for name in PROCEDURE_FIELDS}
    values |= {
        name: item.get(name, default)
        for name, default in PROCEDURE_REVIEW_FIELDS.items()
    }
    for name in PROCEDURE_DATES:
        values[name] = _day(values[name])
    label = f"Write-up {system} {number}"
    procedure, _action = sync(
        Procedure, {"code": code}, values, result, label, dry_run=False
    )
    _restore_timestamps(procedure, item, result, label)
    return procedure.pk
