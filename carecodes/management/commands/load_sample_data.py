"""
Load the sample documents in sample_data/ into the database.

Policy bulletins (``policy-*.txt``), policies in the generic layout (``policy-*.json``
and ``policy-*.csv``, see docs/policy-layout.md) and write-ups
(``procedure-<code>-*.txt``) are read with their parsers; any problem stops the
command before anything is written. Then
everything is saved in one transaction, and only what differs is written: a second run
changes no row, not even a timestamp.

Reference data the documents do not carry (code sections, official ICD-10-CM
descriptors, add-on primaries) is listed below; payer web sites and bulletin addresses
are in ``policies.importing.KNOWN_PAYERS``. The documents are saved by the same
importers as ``import_policy`` and ``import_procedure`` use.
"""

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from carecodes.importing import CREATED, UPDATED, ImportResult
from carecodes.importing import sync as sync_row
from policies.generic import parse_generic_policy
from policies.importing import import_policy, link_related
from policies.parsing import parse_policy
from procedures import codes
from procedures.importing import import_procedure
from procedures.models import Code, CodeSection
from procedures.parsing import parse_procedure

CPT, HCPCS, ICD = codes.System.CPT, codes.System.HCPCS, codes.System.ICD10CM
Kind = CodeSection.Kind

# (system, slug, kind, start, end, parent slug, name); parents come first.
# fmt: off
SECTIONS = [
    (CPT, "physical-medicine-and-rehabilitation", Kind.SECTION, "97010", "97799", None,
     "Physical Medicine and Rehabilitation"),
    (HCPCS, "temporary-national-codes-non-medicare", Kind.SECTION, "S0000", "S9999",
     None, "Temporary National Codes (Non-Medicare)"),
    (ICD, "chapter-19", Kind.CHAPTER, "S00", "T88", None,
     "Injury, poisoning and certain other consequences of external causes"),
    (ICD, "chapter-21", Kind.CHAPTER, "Z00", "Z99", None,
     "Factors influencing health status and contact with health services"),
    (ICD, "s00-s09", Kind.BLOCK, "S00", "S09", "chapter-19", "Injuries to the head"),
    (ICD, "s50-s59", Kind.BLOCK, "S50", "S59", "chapter-19",
     "Injuries to the elbow and forearm"),
    (ICD, "z40-z53", Kind.BLOCK, "Z40", "Z53", "chapter-21",
     "Encounters for other specific health care"),
    (ICD, "z77-z99", Kind.BLOCK, "Z77", "Z99", "chapter-21",
     "Persons with potential health hazards related to family and personal history "
     "and certain conditions influencing health status"),
]
# fmt: on

ICD_SOURCE = "ICD-10-CM FY2026"
# Official descriptors (public domain) of the ICD-10-CM codes the sample policy lists,
# the ends of its ranges (Z87.81 is a subcategory: it has a page but is not billable),
# and one code it reaches only through a range (S52.501A).
ICD_DESCRIPTORS = {
    "Z51.89": "Encounter for other specified aftercare",
    "Z86.19": "Personal history of other infectious and parasitic diseases",
    "Z86.59": "Personal history of other mental and behavioral disorders",
    "Z92.3": "Personal history of irradiation",
    "Z85.00": "Personal history of malignant neoplasm of unspecified digestive organ",
    "Z85.9": "Personal history of malignant neoplasm, unspecified",
    "Z87.81": "Personal history of (healed) traumatic fracture",
    "Z87.820": "Personal history of traumatic brain injury",
    "Z87.828": "Personal history of other (healed) physical injury and trauma",
    "Z91.410": "Personal history of adult physical and sexual abuse",
    "Z91.414": "Personal history of adult intimate partner abuse",
    "Z98.870": "Personal history of in utero procedure during pregnancy",
    "Z98.89": "Other specified postprocedural states",
    "S52.501A": (
        "Unspecified fracture of the lower end of right radius, initial encounter "
        "for closed fracture"
    ),
}
WRITEUP_SOURCE = "AMA CPT (sample)"
# Policy files by their ending: the reader of each (policies.generic's formats).
POLICY_READERS = {
    ".txt": parse_policy,
    ".json": lambda text: parse_generic_policy(text, "json"),
    ".csv": lambda text: parse_generic_policy(text, "csv"),
}
# Add-on code -> the primary codes it is billed with.
PRIMARY_CODES = {(CPT, "97546"): [(CPT, "97545")]}


@dataclass
class Tally:
    created: int = 0
    updated: int = 0
    replaced: int = 0
    codes: int = 0

    def add(self, result: ImportResult):
        self.created += result.count(CREATED)
        self.updated += result.count(UPDATED)
        self.replaced += sum(1 for change in result.changed if change.is_table)


def sync(model, tally, lookup, values):
    """Create or update one row, saving only when a value differs."""
    result = ImportResult(str(model))
    instance, _action = sync_row(
        model, lookup, values, result, str(lookup), dry_run=False
    )
    tally.add(result)
    return instance


def load_reference_data(tally=None):
    """Code sections and official ICD-10-CM descriptors; returns the codes' keys."""
    tally = tally or Tally()
    saved = {}
    for system, slug, kind, start, end, parent, name in SECTIONS:
        saved[slug] = sync(
            CodeSection,
            tally,
            {"system": system, "slug": slug},
            {
                "name": name,
                "kind": kind,
                "start_code": start,
                "end_code": end,
                "parent": saved[parent] if parent else None,
            },
        )
    for code, descriptor in ICD_DESCRIPTORS.items():
        sync(
            Code,
            tally,
            {"system": ICD, "code": code},
            {"descriptor": descriptor, "source": ICD_SOURCE, "is_addon": False},
        )
    return {(ICD.value, code) for code in ICD_DESCRIPTORS}


def link_add_on_codes():
    """Add-on codes know their primary codes (set() writes only the difference)."""
    for (system, code), primaries in PRIMARY_CODES.items():
        addon = Code.objects.filter(system=system, code=code).first()
        if addon is not None:
            addon.primary_codes.set(
                Code.objects.filter(
                    system=system, code__in=[code for _s, code in primaries]
                )
            )


class Command(BaseCommand):
    help = "Loads the sample policies and write-up in sample_data/ (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--directory",
            type=Path,
            default=Path(settings.BASE_DIR) / "sample_data",
            help="Folder holding policy-*.txt, policy-*.json, policy-*.csv and "
            "procedure-*.txt files.",
        )
        parser.add_argument(
            "--seeds-only",
            action="store_true",
            help="Load only the seed documents (the .txt files), not the sample "
            "policies in the generic layout (.json and .csv).",
        )

    def handle(self, *args, directory, seeds_only=False, **options):
        policies, writeups = self.read(directory, seeds_only=seeds_only)
        tally = Tally()
        with transaction.atomic():
            known = load_reference_data(tally)
            # The documents go through the importers that import_policy,
            # import_procedure and the admin use, so the sample is what they make.
            results = [import_policy(parsed) for parsed in policies]
            # Once every policy exists, as the samples may name each other.
            for parsed, result in zip(policies, results, strict=True):
                link_related(result.instance, parsed.related_policies)
            results += [
                import_procedure(parsed, descriptor_source=WRITEUP_SOURCE, publish=True)
                for parsed in writeups
            ]
            link_add_on_codes()
        for result in results:
            tally.add(result)
            known |= result.codes
        tally.codes = len(known)
        if options["verbosity"]:
            self.stdout.write(summary(directory, policies, writeups, tally))

    def read(self, directory, *, seeds_only=False):
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a folder.")
        problems = []
        policies = []
        readers = {".txt": parse_policy} if seeds_only else POLICY_READERS
        for path in sorted(directory.glob("policy-*")):
            if path.suffix not in readers:
                continue
            parsed = readers[path.suffix](path.read_text(encoding="utf-8"))
            policies.append(parsed)
            problems += [f"{path.name}, {problem}" for problem in parsed.problems]
        writeups = []
        for path in sorted(directory.glob("procedure-*.txt")):
            # procedure-<code>-<words>.txt: the seed names its code only there.
            code = path.stem.split("-")[1] or None
            parsed = parse_procedure(path.read_text(encoding="utf-8"), code=code)
            writeups.append(parsed)
            problems += [f"{path.name}, {problem}" for problem in parsed.problems]
        if problems:
            raise CommandError(
                "The sample data has problems; nothing was loaded.\n"
                + "\n".join(problems)
            )
        if not policies and not writeups:
            raise CommandError(
                f"{directory} holds no policy-* or procedure-*.txt files."
            )
        return policies, writeups


def summary(directory, policies, writeups, tally):
    rows = sum(len(rows) for parsed in policies for _group, rows in parsed.groups)
    return (
        f"Loaded {directory}: {plural(len(SECTIONS), 'code section')}, "
        f"{plural(tally.codes, 'code')}, "
        f"{plural(len({parsed.payer_name for parsed in policies}), 'payer')}, "
        f"{plural(len(policies), 'policy', 'policies')} "
        f"({plural(sum(len(parsed.groups) for parsed in policies), 'code group')}, "
        f"{plural(rows, 'code row')}, "
        f"{plural(sum(len(parsed.references) for parsed in policies), 'reference')}), "
        f"{plural(len(writeups), 'write-up')}; {tally.created} rows created, "
        f"{tally.updated} updated, {tally.replaced} code tables or reference lists "
        f"replaced."
    )


def plural(number, singular, many=None):
    return f"{number} {singular if number == 1 else many or singular + 's'}"
