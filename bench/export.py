"""
Time manage.py export_site on the database DATABASE_URL names (a `make run` one).

Run: .venv/bin/python bench/export.py [--codes 2000] [--jobs 1 2]

Reads the database and writes only into a temporary directory. Prints, for each
--jobs count: the export of everything but the code and section pages (first run,
then a second run that finds nothing changed), and the rate of a sample of code pages,
their similar lists and section pages; from that rate, the time the full export's
code and section pages would take.
The baseline is robots.txt rendered the same way in the same run.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carecodes.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402

from carecodes.export import Export, Renderer  # noqa: E402
from carecodes.management.commands.export_site import default_base_url  # noqa: E402
from procedures.models import Code, CodeSection  # noqa: E402
from procedures.sitemaps import CodeAddresses  # noqa: E402

# Exported whole; code and section pages (187,000 on a `make run` database) sampled.
WHOLE = {"pages", "policies", "payers", "sitemaps", "static"}


def rate(export, paths) -> float:
    renderer = Renderer(export.target, export.base_url)
    started = time.perf_counter()
    outcomes = list(export._render_all(renderer, paths))
    assert not any(outcome.problem for outcome in outcomes)
    return len(outcomes) / (time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codes", type=int, default=2000)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    base_url = default_base_url()
    total_codes = Code.objects.count()
    # Spread over every system: every n-th code in address order.
    step = max(total_codes // args.codes, 1)
    addresses = CodeAddresses()
    sample = []
    for code in Code.objects.only("system", "code").order_by("system", "sort_key")[
        ::step
    ]:
        page = addresses.code_address(code)
        sample += [(page, "codes"), (f"{page}similar/", "codes")]
    sections = CodeSection.objects.order_by("system", "start_key")
    section_step = max(sections.count() * 2 // len(sample), 1)
    sample += [
        (section.get_absolute_url(), "sections") for section in sections[::section_step]
    ]
    sampled_pages = 2 * total_codes + sections.count()
    print(
        f"{total_codes:,} codes; a sample of {len(sample):,} code, similar and "
        "section pages"
    )
    print(f"database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}")
    for jobs in args.jobs:
        with tempfile.TemporaryDirectory() as folder:
            target = Path(folder)
            runs = []
            for _ in range(2):
                export = Export(target, base_url, WHOLE, jobs)
                started = time.perf_counter()
                summary = export.run()
                runs.append((time.perf_counter() - started, summary))
            export = Export(target, base_url, {"codes"}, jobs)
            robots = rate(export, [("/robots.txt", "sitemaps")] * 200)
            pages = rate(export, sample)
        (first, one), (second, two) = runs
        print(
            f"--jobs {jobs}: all but code pages {one.files:,} files in {first:.1f} s "
            f"({one.files / first:,.0f}/s), second run {second:.1f} s "
            f"({two.written} written, {two.unchanged:,} unchanged)"
        )
        full = sampled_pages / pages
        print(
            f"  sampled pages {pages:,.1f}/s (robots.txt {robots:,.0f}/s, "
            f"{pages / robots:.3f} x); all {sampled_pages:,} of them: "
            f"{full / 60:,.0f} min"
        )


if __name__ == "__main__":
    main()
