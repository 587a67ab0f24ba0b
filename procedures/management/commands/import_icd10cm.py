"""
Load the official ICD-10-CM tabular list (FY2026) from the simple-icd-10-cm package.

    manage.py import_icd10cm                     # the whole list; skipped when loaded
    manage.py import_icd10cm --force             # compare every row again
    manage.py import_icd10cm --categories S52,B10
    manage.py import_icd10cm --chapters 19,21

The package is imported here, inside ``handle()``, and nowhere else: it costs
seconds and about 200 MB, which a web process must never pay.
"""

import importlib
import time

from django.core.management.base import BaseCommand, CommandError

from procedures.codesets import icd10cm
from procedures.codesets.saving import Progress, save_code_set
from procedures.models import Code


def _names(text):
    return [part.strip() for part in text.split(",") if part.strip()]


class Command(BaseCommand):
    help = (
        "Loads the ICD-10-CM FY2026 code set (chapters, blocks, categories, codes and "
        "notes) from the simple-icd-10-cm package. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--categories",
            type=_names,
            help="Only these categories, comma-separated (S52,Z47,B10).",
        )
        parser.add_argument(
            "--chapters",
            type=_names,
            help="Only these chapters by number, comma-separated (19,21).",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Compare every row even when the full set looks loaded already.",
        )

    def handle(self, *args, categories, chapters, force, verbosity, **options):
        whole = not categories and not chapters
        if whole and not force and self.fully_loaded():
            if verbosity:
                self.stdout.write(
                    f"ICD-10-CM FY{icd10cm.YEAR} is already loaded "
                    f"({icd10cm.FULL_SET_CODES:,} codes); skipped. "
                    "Use --force to compare every row again."
                )
            return
        started = time.monotonic()
        parsed = icd10cm.parse_package(
            self.load_package(verbosity), categories=categories, chapters=chapters
        )
        if parsed.problems:
            raise CommandError(
                "The ICD-10-CM data has problems; nothing was loaded.\n"
                + "\n".join(str(problem) for problem in parsed.problems)
            )
        if whole and len(parsed.codes) != icd10cm.FULL_SET_CODES and verbosity:
            self.stderr.write(
                f"Note: the package holds {len(parsed.codes):,} codes, not the "
                f"{icd10cm.FULL_SET_CODES:,} expected; update FULL_SET_CODES."
            )
        progress = Progress(
            "Saving ICD-10-CM", len(parsed.codes), enabled=verbosity > 0
        )
        result = save_code_set(parsed, icd10cm.FIELDS, progress)
        if verbosity:
            self.stdout.write(
                f"ICD-10-CM FY{icd10cm.YEAR}: {len(parsed.sections):,} chapters and "
                f"blocks, {len(parsed.codes):,} codes read; {result.summary()} "
                f"({time.monotonic() - started:.1f} s)."
            )

    def fully_loaded(self):
        # One indexed count answers "is this year's set here?" in milliseconds,
        # without loading the package.
        loaded = Code.objects.filter(
            system=icd10cm.ICD, code_set_year=icd10cm.YEAR, source=icd10cm.SOURCE
        ).count()
        return loaded >= icd10cm.FULL_SET_CODES

    def load_package(self, verbosity):
        if verbosity:
            self.stderr.write("Reading the ICD-10-CM tabular list …")
        try:
            return importlib.import_module(icd10cm.PACKAGE)
        except ImportError as error:
            raise CommandError(
                "The simple-icd-10-cm package is not installed: run "
                "`pip install -e .` (it is pinned in pyproject.toml)."
            ) from error
