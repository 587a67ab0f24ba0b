"""
Load the sample documents in sample_data/ into the database.

Policy bulletins (``policy-*.txt``) and write-ups (``procedure-<code>-*.txt``) are read
with their parsers; any problem stops the command before anything is written. Then
everything is saved in one transaction, and only what differs is written: a second run
changes no row, not even a timestamp.

Reference data the documents do not carry (code sections, official ICD-10-CM
descriptors, add-on primaries, payer web sites) is listed below.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.text import slugify

from policies.models import Payer, Policy, PolicyCode, PolicyCodeGroup, PolicyReference
from policies.parsing import parse_policy
from procedures import codes
from procedures.models import (
    WRITEUP_SECTIONS,
    Code,
    CodeSection,
    Procedure,
    PublicationStatus,
)
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
# Add-on code -> the primary codes it is billed with.
PRIMARY_CODES = {(CPT, "97546"): [(CPT, "97545")]}
PAYER_WEBSITES = {"aetna": "https://www.aetna.com/"}


def aetna_source_url(number: str) -> str:
    if not number.isdigit():
        return ""
    # Aetna files bulletins in folders of a hundred: 1_99, 100_199, ...
    hundred = int(number) // 100 * 100
    folder = f"{hundred or 1}_{hundred + 99}"
    return f"https://www.aetna.com/cpb/medical/data/{folder}/{number}.html"


SOURCE_URLS = {"aetna": aetna_source_url}
# "CPB 0325 - Physical Therapy": the number of a related bulletin.
RELATED_NUMBER = re.compile(r"\b(\d{4})\b")


@dataclass
class Tally:
    created: int = 0
    updated: int = 0
    replaced: int = 0
    codes: int = 0


def sync(model, tally, lookup, values):
    """Create or update one row, saving only when a value differs."""
    instance = model.objects.filter(**lookup).first()
    if instance is None:
        instance = model(**lookup, **values)
        instance.save()
        tally.created += 1
        return instance
    changed = {
        name: value
        for name, value in values.items()
        if getattr(instance, name) != value
    }
    if changed:
        for name, value in changed.items():
            setattr(instance, name, value)
        instance.save()
        tally.updated += 1
    return instance


class Command(BaseCommand):
    help = "Loads the sample policy and write-up in sample_data/ (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--directory",
            type=Path,
            default=Path(settings.BASE_DIR) / "sample_data",
            help="Folder holding policy-*.txt and procedure-*.txt files.",
        )

    def handle(self, *args, directory, **options):
        policies, writeups = self.read(directory)
        tally = Tally()
        with transaction.atomic():
            self.save_sections(tally)
            self.save_codes(policies, writeups, tally)
            saved = [self.save_policy(parsed, tally) for parsed in policies]
            for policy, parsed in zip(saved, policies, strict=True):
                link_related(policy, parsed.related_policies)
            for parsed in writeups:
                self.save_writeup(parsed, tally)
        if options["verbosity"]:
            self.stdout.write(summary(directory, policies, writeups, tally))

    def read(self, directory):
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a folder.")
        problems = []
        policies = []
        for path in sorted(directory.glob("policy-*.txt")):
            parsed = parse_policy(path.read_text(encoding="utf-8"))
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
            raise CommandError(f"{directory} holds no policy-*.txt or procedure-*.txt.")
        return policies, writeups

    def save_sections(self, tally):
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

    def save_codes(self, policies, writeups, tally):
        # Later sources win: a policy row's text, then the write-up, then the
        # official ICD-10-CM descriptor.
        wanted = {}
        for parsed in policies:
            source = f"{parsed.payer_name} CPB {parsed.number}"
            for group, rows in parsed.groups:
                if group.system == ICD:
                    continue
                for row in rows:
                    if not row.is_range and row.description:
                        wanted[(group.system, row.start_code)] = {
                            "descriptor": row.description,
                            "source": source,
                            "is_addon": row.is_addon,
                        }
        for parsed in writeups:
            key = (parsed.system, parsed.code)
            is_addon = parsed.is_addon or wanted.get(key, {}).get("is_addon", False)
            wanted[key] = {
                "descriptor": parsed.descriptor,
                "source": WRITEUP_SOURCE,
                "is_addon": is_addon,
            }
        for code, descriptor in ICD_DESCRIPTORS.items():
            wanted[(ICD, code)] = {
                "descriptor": descriptor,
                "source": ICD_SOURCE,
                "is_addon": False,
            }

        saved = {}
        for (system, code), values in sorted(
            wanted.items(), key=lambda item: codes.code_sort_tuple(*item[0])
        ):
            saved[(system, code)] = sync(
                Code, tally, {"system": system, "code": code}, values
            )
        for addon, primaries in PRIMARY_CODES.items():
            if addon in saved:
                saved[addon].primary_codes.set([saved[key] for key in primaries])
        tally.codes = len(saved)

    def save_policy(self, parsed, tally):
        slug = slugify(parsed.payer_name)
        payer = sync(
            Payer,
            tally,
            {"slug": slug},
            {"name": parsed.payer_name, "website": PAYER_WEBSITES.get(slug, "")},
        )
        source_url = SOURCE_URLS[slug](parsed.number) if slug in SOURCE_URLS else ""
        values = {
            name: getattr(parsed.policy, name)
            for name in (
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
        }
        values |= {"status": PublicationStatus.PUBLISHED, "source_url": source_url}
        policy = sync(Policy, tally, {"payer": payer, "number": parsed.number}, values)
        self.save_code_groups(policy, parsed.groups, tally)
        self.save_references(policy, parsed.references, tally)
        return policy

    def save_code_groups(self, policy, groups, tally):
        """Replaces the policy's code table, unless it already reads the same."""
        wanted = [
            (_group_fields(group), [_row_fields(row) for row in rows])
            for group, rows in groups
        ]
        stored = [
            (_group_fields(group), [_row_fields(row) for row in group.codes.all()])
            for group in policy.code_groups.prefetch_related("codes")
        ]
        if wanted == stored:
            return
        policy.code_groups.all().delete()
        for group, rows in groups:
            group.policy = policy
            group.save()
            for row in rows:
                row.group = group
                row.save()
        tally.replaced += 1

    def save_references(self, policy, references, tally):
        wanted = [(ref.position, ref.citation) for ref in references]
        stored = list(policy.references.values_list("position", "citation"))
        if wanted == stored:
            return
        policy.references.all().delete()
        for reference in references:
            reference.policy = policy
        PolicyReference.objects.bulk_create(references)
        tally.replaced += 1

    def save_writeup(self, parsed, tally):
        code = Code.objects.get(system=parsed.system, code=parsed.code)
        values = {
            name: getattr(parsed.procedure, name) for name, _label in WRITEUP_SECTIONS
        }
        values |= {"title": parsed.title, "status": PublicationStatus.PUBLISHED}
        sync(Procedure, tally, {"code": code}, values)


def link_related(policy, lines):
    """Links the payer's policies whose numbers its "Related Policies" lines give."""
    numbers = {number for line in lines for number in RELATED_NUMBER.findall(line)}
    related = Policy.objects.filter(payer=policy.payer, number__in=numbers).exclude(
        pk=policy.pk
    )
    # set() adds and removes only the difference, so a second run writes nothing.
    policy.related_policies.set(related)


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
