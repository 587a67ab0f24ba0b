"""Recreate the search index from the content tables, with a progress bar."""

import sys
import time

from django.core.management.base import BaseCommand

from index import changes
from index.search.indexing import rebuild


class Command(BaseCommand):
    help = "Rebuild the search index (codes, write-ups, policies) from scratch."

    def handle(self, *args, **options):
        started = time.perf_counter()
        show = options["verbosity"] > 0
        tty = show and sys.stdout.isatty()

        def progress(done, total):
            if not show:
                return
            width = 30
            filled = width * done // total if total else width
            bar = "#" * filled + "-" * (width - filled)
            line = f"[{bar}] {done:,}/{total:,}"
            if tty:
                self.stdout.write("\r" + line, ending="")
            elif done == total or done == 0:
                self.stdout.write(line)

        written = rebuild(progress=progress)
        changes.rebuilt()  # pages showing the old index are out of date
        if tty:
            self.stdout.write("")
        if show:
            seconds = time.perf_counter() - started
            self.stdout.write(
                self.style.SUCCESS(f"Indexed {written:,} documents in {seconds:.1f} s.")
            )
