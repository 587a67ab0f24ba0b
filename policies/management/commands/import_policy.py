"""Import payer policy bulletins in the layout of the seed (see policies.parsing)."""

from django.utils.text import slugify

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
        "does not know becomes a code with the bulletin's description."
    )
    document = "bulletin"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--payer",
            help="The payer's name, for bulletins that do not say whose they are.",
        )

    def handle(self, *args, **options):
        # (payer slug, number) -> the file that gave it, to refuse a policy twice.
        self.seen = {}
        super().handle(*args, **options)

    def parse(self, path, text, options):
        parsed = parse_policy(text, payer=options.get("payer"))
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
