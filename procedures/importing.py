"""
Saving parsed documents: write-ups here, the shared bookkeeping for every importer.

A parser (``procedures.parsing``, ``policies.parsing``) turns a document into unsaved
objects and problems; the functions here and in ``policies.importing`` save those
objects, writing only what differs, so importing the same document twice writes no
row, not even a timestamp. With ``dry_run=True`` they read the database and report
what would change without writing anything: the admin's preview and the commands use
the same code path.

Descriptors of codes follow one rule of precedence. A descriptor from an official code
set (``Code.code_set_year`` set) is never overwritten by a document. A write-up's
descriptor (its page repeats the code's full descriptor) replaces any other unofficial
one. A bulletin only fills in codes the site does not know yet, and later refreshes
the descriptors it gave itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import codes
from .models import WRITEUP_SECTIONS, Code, Procedure, PublicationStatus
from .parsing import ParsedProcedure, Problem

# Recorded as the source of a code descriptor that an imported write-up supplies.
WRITEUP_SOURCE = "Procedure write-up"

CREATED = "created"
UPDATED = "updated"
UNCHANGED = "unchanged"
REPLACED = "replaced"


class ImportRefused(Exception):
    """The document cannot be saved as it stands; ``problems`` say why."""

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(str(problem) for problem in problems))
        self.problems = problems


@dataclass
class Change:
    """One row (or one table of rows) an import creates, updates or leaves alone."""

    label: str
    action: str
    # For an update: {field name: (stored value, new value)}; for a creation the
    # stored value is None.
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    # For a replaced table: its rows as text, before and after.
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    # A code table, reference list or set of links, rather than one row.
    is_table: bool = False
    # The model of a row, for the fields' verbose names.
    model: Any = None

    def field_rows(self) -> list[tuple[str, str, str]]:
        """(field name as staff read it, stored value, new value) for a preview."""
        rows = []
        for name, (old, new) in self.fields.items():
            label = name
            if self.model is not None:
                label = str(self.model._meta.get_field(name).verbose_name)
            rows.append((label.capitalize(), _shown(old), _shown(new)))
        return rows


def _shown(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


@dataclass
class ImportResult:
    """What an import did, or with ``dry_run`` what it would do."""

    label: str
    dry_run: bool = False
    changes: list[Change] = field(default_factory=list)
    # The main object's own action (the policy or the write-up), for the summary.
    action: str = UNCHANGED
    # Codes the document names, created or not: (system, code).
    codes: set[tuple[str, str]] = field(default_factory=set)
    # The saved policy or write-up (unsaved in a dry run).
    instance: Any = None
    # Sentences the commands print under the summary, in a dry run too: the policy
    # versions an import records (policies.versions.record_version).
    notes: list[str] = field(default_factory=list)

    def count(self, action: str, *, tables: bool = False) -> int:
        return sum(
            1
            for change in self.changes
            if change.action == action and change.is_table == tables
        )

    @property
    def changed(self) -> list[Change]:
        return [change for change in self.changes if change.action != UNCHANGED]

    def summary(self) -> str:
        """One line: what happened to the main object and to the rows around it."""
        tables = sum(1 for change in self.changed if change.is_table)
        parts = [
            f"{self.count(CREATED)} rows created",
            f"{self.count(UPDATED)} updated",
            f"{tables} tables written",
        ]
        verb = {CREATED: "created", UPDATED: "updated"}.get(self.action, "unchanged")
        if self.dry_run:
            verb = f"would be {verb}" if self.action != UNCHANGED else "unchanged"
        return f"{self.label}: {verb} ({', '.join(parts)})"


def sync(
    model,
    lookup: dict,
    values: dict,
    result: ImportResult,
    label: str,
    *,
    dry_run: bool,
    instance=None,
    known_new: bool = False,
):
    """Create or update one row, saving only when a value differs.

    ``known_new`` skips the lookup when the row cannot exist yet (its parent is
    new in a dry run, so it has no primary key to look up by).
    """
    if instance is None and not known_new:
        instance = model.objects.filter(**lookup).first()
    if instance is None:
        instance = model(**lookup, **values)
        if not dry_run:
            instance.save()
        result.changes.append(
            Change(
                label,
                CREATED,
                {name: (None, value) for name, value in values.items()},
                model=model,
            )
        )
        return instance, CREATED
    changed = {
        name: (getattr(instance, name), value)
        for name, value in values.items()
        if getattr(instance, name) != value
    }
    if not changed:
        result.changes.append(Change(label, UNCHANGED))
        return instance, UNCHANGED
    for name, (_old, value) in changed.items():
        setattr(instance, name, value)
    if not dry_run:
        instance.save()
    result.changes.append(Change(label, UPDATED, changed, model=model))
    return instance, UPDATED


def code_label(system: str, code: str) -> str:
    return f"Code {codes.SYSTEM_LABELS[codes.System(system)]} {code}"


def ensure_code(
    system: str,
    code: str,
    *,
    descriptor: str,
    source: str,
    is_addon: bool,
    result: ImportResult,
    dry_run: bool,
    replace_unofficial: bool = False,
    known: dict | None = None,
) -> Code:
    """The code, created from a document's text when the site does not know it.

    An existing code's descriptor is replaced only when it is unofficial and either
    ``replace_unofficial`` is set (a write-up) or it came from the same ``source``
    (the bulletin refreshing its own text). An official descriptor is never touched.
    ``known`` maps (system, code) to the stored codes, when the caller has read
    them all at once; a code missing from it does not exist.
    """
    result.codes.add((system, code))
    label = code_label(system, code)
    if known is None:
        instance = Code.objects.filter(system=system, code=code).first()
    else:
        instance = known.get((system, code))
    values = {"descriptor": descriptor, "source": source, "is_addon": is_addon}
    if instance is None:
        instance, _action = sync(
            Code,
            {"system": system, "code": code},
            values | {"code_set_year": None},
            result,
            label,
            dry_run=dry_run,
            known_new=True,
        )
        return instance
    owned = instance.source == source or replace_unofficial
    if instance.code_set_year is not None or not owned:
        result.changes.append(Change(label, UNCHANGED))
        return instance
    if instance.descriptor == descriptor:
        # Same words: keep the recorded source, so that a document repeating a
        # descriptor does not claim it.
        values = {"is_addon": is_addon or instance.is_addon}
    sync(Code, {}, values, result, label, dry_run=dry_run, instance=instance)
    return instance


def procedure_label(parsed: ParsedProcedure) -> str:
    return f"Write-up {parsed.code}: {parsed.title}"


def import_procedure(
    parsed: ParsedProcedure,
    *,
    descriptor_source: str,
    publish: bool = False,
    replace_published: bool = False,
    dry_run: bool = False,
) -> ImportResult:
    """Save a parsed write-up as a draft, or update the stored one.

    A new write-up is a draft for review (published at once only with ``publish``,
    which the sample data uses). A stored draft takes the new text. A published
    write-up whose text would change is refused unless ``replace_published``: the new
    text then becomes its working revision, which a clinical reviewer approves and a
    publisher puts live; the public keeps the published text until then.
    """
    if parsed.problems:
        raise ImportRefused(parsed.problems)
    result = ImportResult(procedure_label(parsed), dry_run=dry_run)
    code = ensure_code(
        parsed.system,
        parsed.code,
        descriptor=parsed.descriptor,
        source=descriptor_source,
        is_addon=parsed.is_addon,
        result=result,
        dry_run=dry_run,
        replace_unofficial=True,
    )
    values = {name: getattr(parsed.procedure, name) for name, _h in WRITEUP_SECTIONS}
    values["title"] = parsed.title
    stored = Procedure.objects.filter(code=code).first() if code.pk else None
    if publish:
        values["status"] = PublicationStatus.PUBLISHED
    elif stored is None:
        values["status"] = PublicationStatus.DRAFT
    elif stored.is_published:
        differs = [
            name for name, value in values.items() if getattr(stored, name) != value
        ]
        if differs and not replace_published:
            raise ImportRefused(
                [
                    Problem(
                        1,
                        f"The write-up of {code} is published, and this document "
                        f"would change its {', '.join(differs)}. Import it with "
                        f"“revise a published write-up” (--replace-published) to "
                        f"keep the new text as its working revision for review.",
                    )
                ]
            )
        revised = Procedure(**{name: getattr(stored, name) for name in values})
        revised.set_revision(values)
        values = {"revision": revised.revision}
    result.instance, result.action = sync(
        Procedure,
        {"code": code},
        values,
        result,
        result.label,
        dry_run=dry_run,
        instance=stored,
        known_new=stored is None,
    )
    return result


# Documents are small: the seed bulletin is 10 kB. A limit keeps a wrong file (a PDF,
# a database dump) from being read into memory and parsed.
MAX_DOCUMENT_BYTES = 512 * 1024


def decode_document(data: bytes) -> str:
    """The text of an uploaded or read document; refuses what is not UTF-8 text."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ImportRefused(
            [
                Problem(
                    1,
                    f"The file is {len(data) // 1024} kB; a document may be at most "
                    f"{MAX_DOCUMENT_BYTES // 1024} kB.",
                )
            ]
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ImportRefused(
            [
                Problem(
                    line,
                    "This line is not UTF-8 text. Save the document as plain text "
                    "(UTF-8) and try again.",
                )
            ]
        ) from error
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise ImportRefused(
            [Problem(line, "The file holds binary data, not a text document.")]
        )
    return text


def code_from_file_name(name: str) -> str | None:
    """The code in a write-up's file name, ``procedure-<code>-<words>.txt``."""
    stem = name.rsplit("/", 1)[-1].removesuffix(".txt")
    parts = stem.split("-")
    if len(parts) > 1 and parts[0] == "procedure" and codes.systems_for(parts[1]):
        return parts[1]
    return None
