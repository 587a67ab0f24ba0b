"""
Load CPT descriptors from a clinic's licensed CSV file (code, descriptor).

    manage.py import_cpt cpt-2026.csv --year 2026
"""

from pathlib import Path

from django.core.management.base import BaseCommand

from procedures.codesets import cpt
from procedures.codesets.files import read_text, refuse
from procedures.codesets.saving import Progress, save_code_set


class Command(BaseCommand):
    help = "Loads CPT descriptors from a licensed CSV file (code, descriptor)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="CSV: code, descriptor.")
        parser.add_argument("--year", type=int, help="The CPT edition, such as 2026.")

    def handle(self, *args, file, year, verbosity, **options):
        source = (
            f"AMA CPT {year} (licensed file)" if year else "AMA CPT (licensed file)"
        )
        parsed = cpt.parse_cpt_csv(read_text(file), source=source, year=year)
        if parsed.problems:
            raise refuse(file.name + ",", file, parsed.problems)
        progress = Progress("Saving CPT", len(parsed.codes), enabled=verbosity > 0)
        result = save_code_set(parsed, cpt.FIELDS, progress)
        if verbosity:
            self.stdout.write(
                f"{source}: {len(parsed.codes):,} codes read; {result.summary()}."
            )
