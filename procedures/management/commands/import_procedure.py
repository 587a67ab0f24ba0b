"""Import procedure write-ups in the layout of the seed (see procedures.parsing)."""

from django.core.management.base import CommandError

from procedures.importing import (
    WRITEUP_SOURCE,
    code_from_file_name,
    import_procedure,
)
from procedures.management.commands._documents import DocumentImportCommand
from procedures.parsing import parse_procedure


class Command(DocumentImportCommand):
    help = (
        "Imports procedure write-ups (plain text, the layout of the seed in "
        "sample_data/) as draft write-ups for review. The code comes from the text, "
        "from --code, or from a file named procedure-<code>-<words>.txt. Every file "
        "is checked first: any problem is listed as FILE:LINE: message and nothing is "
        "written; then all are saved in one transaction, writing only what differs. "
        "A stored draft takes the new text. A PUBLISHED write-up is never unpublished: "
        "if the file would change its text the import is refused, unless "
        "--replace-published is given, which keeps the new text as the write-up's "
        "working revision, for a clinical reviewer to approve and a publisher to put "
        "live."
    )
    document = "write-up"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--code", help="The code the write-up describes (with a single FILE)."
        )
        parser.add_argument(
            "--replace-published",
            action="store_true",
            help="Keep the files' text as the working revision of published "
            "write-ups (the public keeps the published text).",
        )
        parser.add_argument(
            "--source",
            default=WRITEUP_SOURCE,
            help="Recorded as the source of a code descriptor the write-up supplies "
            "(default: %(default)s).",
        )

    def handle(self, *args, **options):
        if options["code"] and len(options["files"]) > 1:
            raise CommandError("--code names the code of a single FILE.")
        super().handle(*args, **options)

    def parse(self, path, text, options):
        code = options["code"] or code_from_file_name(path.name)
        return parse_procedure(text, code=code)

    def save(self, parsed, options, *, dry_run):
        return import_procedure(
            parsed,
            descriptor_source=options["source"],
            replace_published=options["replace_published"],
            dry_run=dry_run,
        )
