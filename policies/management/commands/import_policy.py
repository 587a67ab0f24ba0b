"""
Import payer policies: bulletins in the layout of the seed (policies.parsing), or,
with ``--format json`` or ``--format csv``, files in the generic layout
(policies.generic, described in docs/policy-layout.md).
"""

from django.core.management.base import CommandError
from django.utils.text import slugify

from policies.generic import FORMATS, parse_generic_policy
from policies.importing import import_policy, link_related
from policies.models import Policy
from policies.parsing import Problem, parse_policy
from procedures.management.commands._documents import DocumentImportCommand


class Command(DocumentImportCommand):
    help = (
        "Imports payer policy bulletins (plain text, the layout of the Aetna seed in "
        "sample_data/) into payers, policies, code groups, code rows and references. "
        "Every file is checked first: any problem is listed as FILE:LINE: message and "
        "nothing is written. Then all files are saved in one transaction, writing "
        "only what differs, so importing the same file again changes nothing. A new "
        "policy is published; a stored one keeps its status. A listed code the site "
        "does not know becomes a code with the bulletin's description. With "
        "--format json or --format csv, the files are policies in the generic layout "
        "(docs/policy-layout.md) and are saved the same way."
    )
    document = "bulletin"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--payer",
            help="The payer's name, for bulletins that do not say whose they are.",
        )
        parser.add_argument(
            "--format",
            choices=["bulletin", *FORMATS],
            default="bulletin",
            help="bulletin (the default): plain-text bulletins in the layout of the "
            "Aetna seed; json or csv: policies in the generic layout "
            "(docs/policy-layout.md).",
        )

    def handle(self, *args, **options):
        if options["format"] != "bulletin" and options.get("payer"):
            raise CommandError(
                "--payer is for bulletins: a file in the generic layout names its "
                "payer itself."
            )
        # (payer slug, number) -> the file that gave it, to refuse a policy twice.
        self.seen = {}
        super().handle(*args, **options)

    def parse(self, path, text, options):
        if options["format"] == "bulletin":
            parsed = parse_policy(text, payer=options.get("payer"))
        else:
            parsed = parse_generic_policy(text, options["format"])
        key = (slugify(parsed.payer_name), parsed.number)
        if parsed.number and key in self.seen:
            parsed.problems.append(
                Problem(
                    1,
                    f"This is {parsed.payer_name} policy {parsed.number} again, "
                    f"as in {self.seen[key]}: import one of the two.",
                )
            )
        self.seen.setdefault(key, path)
        return parsed

    def save(self, parsed, options, *, dry_run):
        return import_policy(parsed, dry_run=dry_run)

    def after_all(self, parsed_documents, options, *, dry_run):
        if dry_run:
            return
        # Bulletins imported together may name each other: link once all exist.
        for _path, parsed in parsed_documents:
            policy = Policy.objects.get(
                payer__slug=slugify(parsed.payer_name), number=parsed.number
            )
            link_related(policy, parsed.related_policies)
