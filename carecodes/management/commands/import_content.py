"""Read back a file written by export_content (see carecodes.content)."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from carecodes.content import ContentError, import_content


class Command(BaseCommand):
    help = (
        "Reads a content file written by export_content. The whole file is checked "
        "first; a broken file or an unknown version is refused and nothing is "
        "written. Then, in one transaction, every payer, policy, write-up and code "
        "of the file is created or updated, writing only what differs (timestamps "
        "included), so importing an export into its own database changes nothing. "
        "Nothing is removed unless --replace is given: then payers, policies and "
        "write-ups that the file does not hold are deleted."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--replace",
            action="store_true",
            help="Delete payers, policies and write-ups the file does not hold.",
        )

    def handle(self, *args, file, replace, **options):
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except OSError as error:
            raise CommandError(f"{file}: {error.strerror or error}") from error
        except UnicodeDecodeError as error:
            raise CommandError(f"{file} is not UTF-8 text.") from error
        except json.JSONDecodeError as error:
            raise CommandError(
                f"{file}:{error.lineno}: not valid JSON: {error.msg}."
            ) from error
        try:
            with transaction.atomic():
                result = import_content(data, replace=replace)
        except ContentError as error:
            raise CommandError(
                f"{file} was not imported; nothing was written.\n"
                + "\n".join(error.problems)
            ) from error
        if options["verbosity"]:
            self.stdout.write(
                f"{file}: {result.count('created')} rows created, "
                f"{result.count('updated')} updated, "
                f"{sum(1 for change in result.changed if change.is_table)} tables "
                f"written."
            )
