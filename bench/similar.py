"""
Time ``rebuild_similar_codes`` on a full-size ICD-10-CM code set.

Run: .venv/bin/python bench/similar.py [--codes 98000] [--keep] [--sample 5]

Builds a scratch database (a SQLite file under /tmp, or a test database on
DATABASE_URL's PostgreSQL server) holding about 98,000 ICD-10-CM codes with their
parent links: the real code set shipped inside the installed ``simple-icd-10-cm``
package when it is there (nothing is downloaded), otherwise a generated set of the same
shape (categories, subcategories, 7th characters, descriptor text). Then it times the
whole bulk rebuild and, as the baseline in the same run, the naive way: one
``refresh`` per code (each reads the whole corpus again). The naive way would take
hours on the whole set, so it is timed on --sample codes drawn at random and
multiplied up: the baseline and the ratio are printed as estimates, with the sample
size and the spread of the sampled times.

With --keep, a SQLite scratch file is kept and reused by the next run.
"""

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carecodes.settings")
POSTGRES_SCHEMES = ("postgres:", "postgresql:", "pgsql:")
SCRATCH = Path("/tmp/carecodes-bench-similar.sqlite3")
# A throw-away SQLite file unless DATABASE_URL names a PostgreSQL server (which
# gets a test database): the database DATABASE_URL names is never written.
ON_SCRATCH = not os.environ.get("DATABASE_URL", "").startswith(POSTGRES_SCHEMES)
if ON_SCRATCH:
    os.environ["DATABASE_URL"] = f"sqlite:///{SCRATCH}"

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from procedures import codes, similar  # noqa: E402
from procedures.models import Code, SimilarCode  # noqa: E402

ICD = codes.System.ICD10CM


def real_code_set(limit):
    """(code, descriptor, parent code) from the packaged code set, parents first."""
    try:
        import simple_icd_10_cm as icd
    except ImportError:
        return None
    rows = []
    for code in icd.get_all_codes(True):
        if icd.is_chapter_or_block(code):
            continue
        parent = icd.get_parent(code)
        if parent and icd.is_chapter_or_block(parent):
            parent = None
        rows.append((code, icd.get_description(code), parent))
    return rows[:limit]


def generated_code_set(limit):
    """A code set of the same shape: categories, subcategories, 7th characters."""
    rng = random.Random(7)
    sites = ["radius", "ulna", "humerus", "femur", "tibia", "fibula", "wrist", "ankle"]
    kinds = ["Displaced", "Nondisplaced", "Unspecified", "Torus", "Greenstick"]
    sides = {"1": "right", "2": "left", "9": "unspecified"}
    encounters = {
        "A": "initial encounter for closed fracture",
        "B": "initial encounter for open fracture",
        "D": "subsequent encounter with routine healing",
        "G": "subsequent encounter with delayed healing",
        "K": "subsequent encounter with nonunion",
        "S": "sequela",
    }
    rows = []
    for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        for number in range(100):
            category = f"{letter}{number:02d}"
            site = rng.choice(sites)
            rows.append((category, f"Injury of {site}", None))
            for sub in "0123":
                kind = rng.choice(kinds)
                subcategory = f"{category}.{sub}"
                rows.append((subcategory, f"{kind} fracture of {site}", category))
                for side, side_text in sides.items():
                    code = f"{subcategory}{side}"
                    text = f"{kind} fracture of {side_text} {site}"
                    rows.append((code, text, subcategory))
                    for seventh, enc in encounters.items():
                        rows.append((f"{code}X{seventh}", f"{text}, {enc}", code))
                if len(rows) >= limit:
                    return rows[:limit]
    return rows[:limit]


def build(limit):
    rows = real_code_set(limit)
    source = "the code set packaged in simple-icd-10-cm"
    if rows is None:
        rows, source = generated_code_set(limit), "a generated code set"
    ids = {}
    objects = []
    for index, (code, descriptor, parent) in enumerate(rows, start=1):
        canonical = codes.normalize(ICD, code)
        ids[canonical] = index
        parent_id = ids.get(codes.normalize(ICD, parent)) if parent else None
        objects.append(
            Code(
                id=index,
                system=ICD,
                code=canonical,
                sort_key=codes.sort_key(ICD, canonical),
                descriptor=descriptor,
                parent_id=parent_id,
                is_billable=len(canonical) > 3,
                code_set_year=2026,
            )
        )
    Code.objects.bulk_create(objects, batch_size=2_000)
    return len(objects), source


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codes", type=int, default=98_000)
    parser.add_argument(
        "--sample",
        type=int,
        default=5,
        help="codes on which the one-refresh-per-code baseline is timed",
    )
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    vendor = connection.vendor
    test_name = None
    if ON_SCRATCH and not args.keep:
        SCRATCH.unlink(missing_ok=True)
    if vendor == "postgresql":
        test_name = connection.creation.create_test_db(
            verbosity=0, autoclobber=True, serialize=False
        )
    else:
        call_command("migrate", verbosity=0)
    try:
        started = time.perf_counter()
        if Code.objects.filter(system=ICD).count() < args.codes * 0.9:
            count, source = build(args.codes)
        else:
            count, source = Code.objects.filter(system=ICD).count(), "the kept file"
        print(
            f"{vendor}: {count:,} ICD-10-CM codes from {source}, ready in "
            f"{time.perf_counter() - started:.1f} s"
        )

        started = time.perf_counter()
        corpus = similar.Corpus.load()
        load = time.perf_counter() - started
        print(f"load corpus (codes, policies, TF-IDF model): {load:.1f} s")

        started = time.perf_counter()
        call_command("rebuild_similar_codes", "--system", ICD.value, verbosity=0)
        total = time.perf_counter() - started
        rows = SimilarCode.objects.count()
        print(
            f"rebuild_similar_codes: {total:.1f} s, {count / total:,.0f} codes/s, "
            f"{rows:,} rows written ({rows / count:.1f} per code)"
        )

        print(f"budget 600 s, used {total / 600:.0%}")

        sample = random.Random(1).sample(corpus.ids[ICD.value], args.sample)
        times = []
        for code_id in sample:
            started = time.perf_counter()
            similar.refresh([code_id])
            times.append(time.perf_counter() - started)
        per_code = statistics.mean(times)
        naive = per_code * count
        print(
            f"baseline, one refresh per code: ESTIMATE, not run on the whole set: "
            f"timed on {len(sample)} codes drawn at random, {min(times):.2f} to "
            f"{max(times):.2f} s each (mean {per_code:.2f} s); "
            f"mean x {count:,} codes = {naive / 3600:.1f} h"
        )
        print(
            f"ratio one refresh per code / bulk: about {naive / total:,.0f}x "
            f"(ESTIMATE from those {len(sample)} codes; "
            f"{min(times) * count / total:,.0f}x to {max(times) * count / total:,.0f}x "
            f"from the fastest and slowest of them)"
        )
    finally:
        if test_name is not None:
            connection.creation.destroy_test_db(test_name, verbosity=0)


if __name__ == "__main__":
    main()
