"""
Recompute every code's stored similar-codes list (see index.similar).

A bulk import of more than ``similar.REFRESH_LIMIT`` codes already rebuilds every
list once it commits; run this on a database whose lists predate that, or after a
change made outside the app. ``--missing`` does only the codes never computed (no
list, and not remembered as computed empty), and asks one query when there are none
(``make run`` runs it). Running it twice stores the same lists. A full rebuild also
makes every process reload its cached corpus at its next refresh.
"""

import time

from django.core.management.base import BaseCommand, CommandError

from index import changes, similar
from procedures import codes


class Command(BaseCommand):
    help = "Recomputes the similar-codes lists of all codes, or of one code system."

    def add_arguments(self, parser):
        parser.add_argument(
            "--system",
            action="append",
            dest="systems",
            metavar="SYSTEM",
            help="Only codes of this system (cpt, hcpcs, icd-10-cm, icd-10-pcs); "
            "may be repeated.",
        )
        parser.add_argument(
            "--missing",
            action="store_true",
            help="Only codes never computed, such as codes a bulk import just "
            "added; quick when there are none.",
        )

    def handle(self, *args, systems=None, missing=False, verbosity=1, **options):
        chosen = None
        if systems:
            chosen = []
            for name in systems:
                system = codes.system_from_slug(name)
                if system is None:
                    raise CommandError(
                        f"“{name}” is not a code system: use cpt, hcpcs, icd-10-cm "
                        "or icd-10-pcs."
                    )
                chosen.append(system.value)
        bar = ProgressBar(self.stderr) if verbosity else None
        started = time.perf_counter()
        result = similar.rebuild(chosen, progress=bar, missing_only=missing)
        changes.rebuilt()  # pages showing the old index are out of date
        if bar is not None:
            bar.finish()
        if verbosity:
            codes_done = f"{result.codes:,} code{'' if result.codes == 1 else 's'}"
            self.stdout.write(
                f"Stored {result.rows:,} similar codes for {codes_done} "
                f"in {time.perf_counter() - started:.1f} s."
            )


class ProgressBar:
    """A one-line bar on the command's stderr, redrawn each whole percent."""

    WIDTH = 30

    def __init__(self, stream):
        self.stream = stream
        self.shown = -1

    def __call__(self, done, total):
        percent = done * 100 // max(total, 1)
        if percent == self.shown:
            return
        self.shown = percent
        filled = self.WIDTH * percent // 100
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.stream.write(
            f"\rSimilar codes [{bar}] {percent:3d}% {done:,}/{total:,}", ending=""
        )
        self.stream.flush()

    def finish(self):
        if self.shown >= 0:
            self.stream.write("")
            self.stream.flush()
