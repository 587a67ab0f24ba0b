"""
Write a PDF handout of every published write-up to a folder, for an EHR to read.

    manage.py export_handouts DIR --lang en [--site-url URL] [--openemr-names]

Files are named ``{codetype}_{code}_{lang}.pdf`` (``CPT_97546_en.pdf``,
``ICD10_E11.9_en.pdf``); ``--openemr-names`` writes the lower-case names with
OpenEMR's code types that its patient education opens (``cpt4_97546_en.pdf``).
Each file is written beside its final name and then renamed, so a reader never sees
half a PDF. Files already in DIR that no write-up names are left alone.
"""

import contextlib
import os
import tempfile
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import URLValidator

from procedures import handouts
from procedures.models import Procedure


class Command(BaseCommand):
    help = (
        "Write a PDF handout of every published write-up to DIR, named "
        "{codetype}_{code}_{lang}.pdf (the layout of OpenEMR's local patient "
        "education content)."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", metavar="DIR", help="An existing folder.")
        parser.add_argument(
            "--lang",
            default="en",
            help="The handouts' language: "
            + ", ".join(sorted(handouts.LANGUAGES))
            + " (default en).",
        )
        parser.add_argument(
            "--site-url",
            default="",
            help="This site's public address (https://carecodes.example.org); each "
            "handout then names its code page. Without it, handouts name no address.",
        )
        parser.add_argument(
            "--openemr-names",
            action="store_true",
            help="Name files as OpenEMR's education.php looks them up: lower case, "
            "with its code types CPT4, HCPCS, ICD10 and ICD10-PCS.",
        )

    def handle(self, *args, directory, lang, site_url, openemr_names, **options):
        folder = self.writable_folder(directory)
        if lang not in handouts.LANGUAGES:
            raise CommandError(
                f"There are no write-ups in “{lang}”. Languages: "
                + ", ".join(sorted(handouts.LANGUAGES))
                + "."
            )
        site_url = self.checked_site_url(site_url)

        writeups = (
            Procedure.objects.published()
            .select_related("code")
            .order_by("code__system", "code__sort_key")
        )
        written = 0
        for procedure in writeups.iterator():
            address = site_url + procedure.code.get_absolute_url() if site_url else ""
            name = handouts.file_name(procedure, lang, openemr=openemr_names)
            html = handouts.handout_html(procedure, address=address, lang=lang)
            try:
                pdf = handouts.render_pdf(html)
            except Exception as error:
                raise CommandError(
                    f"The handout for {procedure.code} could not be drawn "
                    f"({error}); {written} handouts were written before it."
                ) from error
            self.write_file(folder / name, pdf)
            written += 1
            if options["verbosity"] >= 2:
                self.stdout.write(f"{name}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Wrote {written} handout{'s' if written != 1 else ''} to {folder}."
            )
        )

    def writable_folder(self, directory: str) -> Path:
        folder = Path(directory)
        if not folder.exists():
            raise CommandError(f"The folder {folder} does not exist: create it first.")
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder.")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise CommandError(f"The folder {folder} cannot be written to.")
        return folder.resolve()

    def checked_site_url(self, site_url: str) -> str:
        if not site_url:
            return ""
        try:
            URLValidator(schemes=["http", "https"])(site_url)
        except ValidationError as error:
            raise CommandError(
                f"--site-url “{site_url}” is not an http(s) address."
            ) from error
        return site_url.rstrip("/")

    def write_file(self, path: Path, data: bytes) -> None:
        temporary = None
        try:
            handle, temporary = tempfile.mkstemp(
                dir=path.parent, prefix=".handout-", suffix=".pdf"
            )
            with os.fdopen(handle, "wb") as output:
                output.write(data)
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except OSError as error:
            if temporary is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
            raise CommandError(f"Could not write {path}: {error.strerror}.") from error
