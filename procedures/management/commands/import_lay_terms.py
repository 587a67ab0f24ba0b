"""
Load the lay-term thesaurus: procedures/data/lay_terms/*.csv and lay_synonyms.csv.

    manage.py import_lay_terms

Run it after the code sets: each row's codes are checked against the codes loaded, a
row naming an unknown code is refused (file, line and code are printed) and the rest
loads. The files are the truth: thesaurus rows no longer in them are deleted (rows
staff added in the admin are kept). Running it again writes nothing.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from procedures import lay_terms


class Command(BaseCommand):
    help = "Loads the lay-term thesaurus and word synonyms. Safe to rerun."

    def add_arguments(self, parser):
        parser.add_argument(
            "files",
            nargs="*",
            type=Path,
            help="Thesaurus CSV files (default: procedures/data/lay_terms/*.csv).",
        )
        parser.add_argument(
            "--synonyms",
            type=Path,
            default=lay_terms.SYNONYMS_FILE,
            help="The word synonyms CSV (default: procedures/data/lay_synonyms.csv).",
        )
        parser.add_argument(
            "--strict",
            action="store_true",
            help="Fail (exit status 1, nothing written) if any row is refused.",
        )

    def handle(self, *args, files, synonyms, strict, verbosity, **options):
        paths = files or lay_terms.default_paths()
        missing = [path for path in paths if not path.is_file()]
        if missing:
            raise CommandError(f"No such file: {', '.join(map(str, missing))}.")
        if not paths:
            raise CommandError(f"No thesaurus files in {lay_terms.TERMS_DIR}.")
        if not synonyms.is_file():
            self.stderr.write(f"No synonyms file at {synonyms}; synonyms left alone.")
            synonyms = None
        if strict:
            parsed = lay_terms.parse_thesaurus(paths, synonyms)
            if parsed.problems:
                raise CommandError(
                    "Refused rows, nothing written:\n" + "\n".join(parsed.problems)
                )
        result = lay_terms.load_thesaurus(paths, synonyms, prune=not files)
        if verbosity:
            self.stdout.write(result.summary())
