"""The shared shape of the document import commands (import_policy, import_procedure).

Every file is read and parsed before anything is written; a problem in any of them
stops the command with ``file:line: message`` lines and the database untouched. Then
all files are saved in one transaction, and each gets a summary line.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from carecodes.importing import ImportRefused, decode_document


class DocumentImportCommand(BaseCommand):
    # A noun for the messages: "bulletin", "write-up".
    document = "document"

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Report what would change and write nothing.",
        )

    def parse(self, path: Path, text: str, options):
        """The parsed document (with ``.problems``)."""
        raise NotImplementedError

    def save(self, parsed, options, *, dry_run: bool):
        """Save one parsed document; returns its ImportResult."""
        raise NotImplementedError

    def after_all(self, parsed_documents, options, *, dry_run: bool):
        """Work that needs every document saved first."""

    def handle(self, *args, files, dry_run, **options):
        parsed_documents = []
        problems = []
        for path in files:
            try:
                text = decode_document(path.read_bytes())
            except OSError as error:
                problems.append(f"{path}: {error.strerror or error}")
                continue
            except ImportRefused as refused:
                problems += [f"{path}:{p.line}: {p.message}" for p in refused.problems]
                continue
            parsed = self.parse(path, text, options)
            problems += [f"{path}:{p.line}: {p.message}" for p in parsed.problems]
            parsed_documents.append((path, parsed))
        if problems:
            raise CommandError(self.refusal(problems))

        results = []
        try:
            with transaction.atomic():
                for path, parsed in parsed_documents:
                    try:
                        results.append(
                            (path, self.save(parsed, options, dry_run=dry_run))
                        )
                    except ImportRefused as refused:
                        problems += [
                            f"{path}:{p.line}: {p.message}" for p in refused.problems
                        ]
                if problems:
                    raise ImportRefused([])
                self.after_all(parsed_documents, options, dry_run=dry_run)
        except ImportRefused:
            raise CommandError(self.refusal(problems)) from None
        for path, result in results:
            self.stdout.write(f"{path}: {result.summary()}")
            for note in result.notes:
                self.stdout.write(f"  {note}")
            if dry_run and options["verbosity"] > 1:
                for change in result.changed:
                    self.stdout.write(f"  {change.action} {change.label}")

    def refusal(self, problems):
        return (
            "Nothing was imported: fix these problems and run the command again.\n"
            + "\n".join(problems)
        )
