"""Write all editorial content to one JSON file (see carecodes.content)."""

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from carecodes.content import export_content


class Command(BaseCommand):
    help = (
        "Writes every write-up, payer and policy (code tables, references, related "
        "policies) and the codes they name that no official code set supplies to one "
        "versioned JSON file, keyed by natural keys in a stable order. import_content "
        "reads it back; together they are the content backup."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "file", nargs="?", type=Path, help="Where to write it (default: stdout)."
        )

    def handle(self, *args, file, **options):
        text = json.dumps(export_content(), ensure_ascii=False, indent=1) + "\n"
        if file is None:
            sys.stdout.write(text)
            return
        try:
            file.write_text(text, encoding="utf-8")
        except OSError as error:
            raise CommandError(f"{file}: {error.strerror or error}") from error
        if options["verbosity"]:
            self.stderr.write(f"Wrote {file}.")
