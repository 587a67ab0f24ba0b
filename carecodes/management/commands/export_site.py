"""Write the public site as static files (see carecodes.export)."""

import time
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.http.request import validate_host

from carecodes.export import KINDS, Export, ExportError, check_target
from procedures.codesets.saving import Progress


def default_base_url() -> str:
    hosts = [host for host in settings.ALLOWED_HOSTS if host not in {"*", ""}]
    host = hosts[0].lstrip(".") if hosts else "localhost"
    return f"{'https' if settings.HTTPS else 'http'}://{host}"


class Command(BaseCommand):
    help = (
        "Writes every public page (codes, similar codes, write-ups, policies and "
        "their versions and feeds, payers, sections, indexes, home, sitemaps, "
        "robots.txt, 404.html) and the collected static files into DIR, for nginx "
        "or a CDN to serve as they are. A second run writes only the files whose "
        "bytes changed and removes those of pages that are gone. Search, suggest, "
        "the API and the admin stay on the app server."
    )

    def add_arguments(self, parser):
        parser.add_argument("dir", type=Path, help="The export directory.")
        parser.add_argument(
            "--only",
            default=",".join(KINDS),
            help=f"Comma-separated kinds to export (default: all): {', '.join(KINDS)}.",
        )
        parser.add_argument(
            "--jobs",
            type=int,
            default=1,
            help="Processes that render pages (default 1).",
        )
        parser.add_argument(
            "--base-url",
            default=None,
            help=(
                "The site's public address, for canonical links and the sitemap "
                "(default: the first ALLOWED_HOSTS, https when HTTPS is set)."
            ),
        )
        parser.add_argument(
            "--quiet", action="store_true", help="No progress bar and no summary."
        )

    def handle(self, *args, dir, only, jobs, base_url, quiet, **options):
        kinds = {kind.strip() for kind in only.split(",") if kind.strip()}
        if unknown := sorted(kinds - KINDS.keys()):
            raise CommandError(
                f"Unknown kind {', '.join(unknown)}: choose from {', '.join(KINDS)}."
            )
        if jobs < 1:
            raise CommandError("--jobs must be 1 or more.")
        base_url = self.checked_base_url(base_url or default_base_url())
        quiet = quiet or not options["verbosity"]
        started = time.perf_counter()
        try:
            target = check_target(dir)
            summary = Export(target, base_url, kinds, jobs).run(self.progress(quiet))
            if self.bar:
                self.bar.close()
        except ExportError as error:
            raise CommandError(str(error)) from error
        except OSError as error:
            raise CommandError(f"{error.filename}: {error.strerror}") from error
        seconds = time.perf_counter() - started
        for problem in summary.problems[:20]:
            self.stderr.write(f"Not exported: {problem}")
        if not quiet:
            self.stdout.write(
                f"{summary.written:,} written, {summary.unchanged:,} unchanged, "
                f"{summary.removed:,} removed in {seconds:.1f} s "
                f"({summary.files / max(seconds, 0.001):,.0f} files/s) into {target}."
            )
        if summary.problems:
            raise CommandError(
                f"{len(summary.problems):,} linked addresses did not answer 200 "
                "(the first are listed above)."
            )

    def checked_base_url(self, base_url: str) -> str:
        parts = urlsplit(base_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname or parts.path:
            raise CommandError(
                f"--base-url {base_url!r} must be a scheme and host only, such as "
                "https://carecodes.example."
            )
        if not validate_host(parts.hostname, settings.ALLOWED_HOSTS):
            raise CommandError(
                f"{parts.hostname} is not in ALLOWED_HOSTS: the site would refuse "
                "to render its pages for it."
            )
        return base_url.rstrip("/")

    bar = None

    def progress(self, quiet: bool):
        if quiet:
            return None
        self.bar = bar = Progress(
            "Exporting",
            0,
            stream=self.stderr._out,
            unit="files",
            redraw=self.stderr.isatty(),
        )

        def advance(done, total):
            bar.total = total
            bar.advance(1)

        return advance
