"""
Load HCPCS Level II codes from a CMS release file (the fixed-width ANWEB layout).

    manage.py import_hcpcs HCPC2026_JAN_ANWEB_v2.txt

The year and month come from the CMS file name, or from --year and --release.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from procedures.codesets import hcpcs
from procedures.codesets.files import read_text, refuse
from procedures.codesets.saving import Progress, save_code_set


class Command(BaseCommand):
    help = "Loads HCPCS Level II codes from a CMS ANWEB release file. Safe to rerun."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="The CMS ANWEB file.")
        parser.add_argument("--year", type=int, help="Year, if not in the name.")
        parser.add_argument(
            "--release", help="Release month such as JAN, if not in the name."
        )

    def handle(self, *args, file, year, release, verbosity, **options):
        named = hcpcs.release_of(file.name)
        year = year or (named and named[0])
        release = (release or (named and named[1]) or "").upper()
        if not year:
            raise CommandError(
                f"{file.name} does not say its year (CMS names files like "
                "HCPC2026_JAN_ANWEB.txt): give it with --year 2026."
            )
        source = f"CMS HCPCS {year} {release}".rstrip()
        parsed = hcpcs.parse_hcpcs(read_text(file), year=year, source=source)
        if parsed.problems:
            raise refuse(file.name + ",", file, parsed.problems)
        progress = Progress("Saving HCPCS", len(parsed.codes), enabled=verbosity > 0)
        result = save_code_set(parsed, hcpcs.FIELDS, progress)
        if verbosity:
            self.stdout.write(
                f"{source}: {len(parsed.codes):,} codes read, {parsed.skipped:,} "
                f"modifiers and dental codes skipped; {result.summary()}."
            )
