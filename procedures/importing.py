"""
Saving parsed documents: write-ups, and the codes every importer names.

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

from carecodes.importing import (
    UNCHANGED,
    Change,
    ImportRefused,
    ImportResult,
    Problem,
    sync,
)

from . import codes
from .models import WRITEUP_SECTIONS, Code, Procedure, PublicationStatus
from .parsing import ParsedProcedure

# Recorded as the source of a code descriptor that an imported write-up supplies.
WRITEUP_SOURCE = "Procedure write-up"


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


def code_from_file_name(name: str) -> str | None:
    """The code in a write-up's file name, ``procedure-<code>-<words>.txt``."""
    stem = name.rsplit("/", 1)[-1].removesuffix(".txt")
    parts = stem.split("-")
    if len(parts) > 1 and parts[0] == "procedure" and codes.systems_for(parts[1]):
        return parts[1]
    return None
