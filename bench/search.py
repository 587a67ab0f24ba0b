"""
Time the search engine on a corpus of at least 100,000 documents.

Run: .venv/bin/python bench/search.py [--queries 200] [--documents 100000]
[--keep-index]

Uses DATABASE_URL's database as it is (SQLite file or PostgreSQL). When it holds
fewer than ``--documents`` codes, generated codes are added: code-like keys and
descriptor-like text drawn from a Zipf vocabulary, so common words are really common
(the ICD-10-CM set from ``manage.py import_icd10cm`` counts towards the total and is
used when present). Prints the index build time and size, then p50 / p95 / max per
query class over distinct queries (no result cache), and the same mix through a
naive ``icontains`` baseline in the same run, as a ratio.
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

import django

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.db.models import Q  # noqa: E402

from carecodes.search import search, suggest  # noqa: E402
from carecodes.search.indexing import rebuild  # noqa: E402
from carecodes.search.models import SearchDocument, SearchWord  # noqa: E402
from policies.models import Policy  # noqa: E402
from procedures import codes  # noqa: E402
from procedures.models import Code  # noqa: E402

WORDS = (
    "encounter initial subsequent sequela fracture displaced nondisplaced unspecified "
    "right left bilateral injury closed open chronic acute disorder disease history "
    "personal malignant neoplasm therapy training work hardening conditioning "
    "rehabilitation strength endurance shoulder elbow forearm wrist hand finger hip "
    "knee ankle foot spine cervical thoracic lumbar sacral muscle tendon ligament "
    "sprain strain contusion laceration abrasion burn corrosion infection "
    "inflammation diabetes mellitus hypertension kidney liver heart lung vessel "
    "artery vein nerve brain spinal cord eye ear nose throat mouth tooth skin "
    "pregnancy delivery newborn complication poisoning adverse effect underdosing "
    "accidental intentional assault undetermined drug medicament biological "
    "substance toxic contact exposure screening examination observation aftercare "
    "follow-up counseling procedure device implant graft prosthesis radius ulna "
    "humerus femur tibia fibula patella clavicle scapula vertebra pelvis"
).split()


def zipf_words(rng, count):
    weights = [1 / (rank + 1) for rank in range(len(WORDS))]
    return rng.choices(WORDS, weights=weights, k=count)


def ensure_corpus(target, rng):
    have = Code.objects.count()
    if have >= target:
        return have, 0.0
    started = time.perf_counter()
    new = []
    # Generated CPT-like and HCPCS-like keys outside the sample data's codes.
    for number in range(target - have):
        if number % 2:
            system, code = "cpt", f"{10000 + number // 2:05d}"
        else:
            system, code = (
                "hcpcs",
                f"{'ABCEGHJKLMPQRTUV'[number // 20000]}{number // 2 % 10000:04d}",
            )
        text = " ".join(zipf_words(rng, rng.randint(5, 14))).capitalize()
        new.append(
            Code(
                system=system,
                code=code,
                sort_key=codes.sort_key(codes.System(system), code),
                descriptor=text,
            )
        )
    with transaction.atomic():
        Code.objects.bulk_create(new, batch_size=2000, ignore_conflicts=True)
    return Code.objects.count(), time.perf_counter() - started


def index_size():
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'search%%'")
        else:
            cursor.execute(
                "SELECT pg_total_relation_size('search_searchdocument') "
                "+ pg_total_relation_size('search_searchword')"
            )
        return cursor.fetchone()[0] or 0


def query_mix(rng, per_class):
    # In a fixed order, so that every run (on either backend) asks the same queries.
    code_rows = list(
        SearchDocument.objects.exclude(kind="policy")
        .order_by("id")
        .values_list("system", "code")
    )
    vocabulary = list(
        SearchWord.objects.order_by("word").values_list("word", flat=True)
    )
    common = [w for w in WORDS if len(w) > 3]
    policies = list(Policy.objects.published().select_related("payer"))
    sample = rng.sample(code_rows, min(len(code_rows), per_class * 2))
    classes = {
        "exact code": [code for _system, code in sample[:per_class]],
        "code prefix": list(
            dict.fromkeys(
                code.replace(".", "")[: rng.randint(3, 4)] for _s, code in sample
            )
        )[:per_class],
        "one word": rng.sample(vocabulary, min(per_class, len(vocabulary))),
        "two words": [" ".join(rng.sample(common, 2)) for _ in range(per_class)],
        "phrase": [
            f'"{a} {b}"' for a, b in (rng.sample(common, 2) for _ in range(per_class))
        ],
        "misspelling": [
            misspell(rng, w) for w in rng.sample(common, min(per_class, len(common)))
        ]
        + [misspell(rng, w) for w in rng.sample(vocabulary, per_class)],
        "policy number": [f"{p.payer.name} {p.number}" for p in policies]
        + [f"CPB {n}" for n in range(per_class)],
    }
    # Distinct queries only, so nothing is timed twice.
    return {name: list(dict.fromkeys(qs))[:per_class] for name, qs in classes.items()}


def misspell(rng, word):
    if len(word) < 5:
        return word + "x"
    i = rng.randrange(1, len(word) - 1)
    return word[:i] + word[i + 1 :]


def baseline(query):
    words = [w for w in query.replace('"', " ").split() if w][:8]
    condition = Q()
    for word in words:
        condition &= Q(descriptor__icontains=word) | Q(code__icontains=word)
    found = Code.objects.filter(condition)
    return found.count(), list(found[:20])


def timed(function, queries):
    times = []
    for query in queries:
        started = time.perf_counter()
        function(query)
        times.append((time.perf_counter() - started) * 1000)
    return times


def summary(times):
    times = sorted(times)
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    return statistics.median(times), p95, times[-1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200, help="per class")
    parser.add_argument("--baseline", type=int, default=40, help="per class")
    parser.add_argument(
        "--keep-index",
        action="store_true",
        help="reuse an index that covers the corpus instead of timing a rebuild",
    )
    options = parser.parse_args()
    rng = random.Random(7)

    total, _generated = ensure_corpus(options.documents, rng)
    print(f"backend: {connection.vendor}; codes: {total:,}")
    if options.keep_index and SearchDocument.objects.count() >= total:
        print("index build: not timed (--keep-index)")
    else:
        started = time.perf_counter()
        documents = rebuild()
        built = time.perf_counter() - started
        print(f"index build: {documents:,} documents in {built:.1f} s")
    print(f"index size: {index_size() / 1e6:.1f} MB")

    mix = query_mix(rng, options.queries)
    # Connection set-up and first-use costs are not a query's.
    search("warm up")
    suggest("warm")
    print(f"queries: {sum(len(q) for q in mix.values()):,} distinct")
    print(
        f"{'class':<14}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}"
        f"{'base p50':>10}{'ratio':>8}"
    )
    worst = 0.0
    for name, queries in mix.items():
        p50, p95, top = summary(timed(search, queries))
        base = summary(timed(baseline, queries[: options.baseline]))[0]
        worst = max(worst, top)
        print(
            f"{name:<14}{len(queries):>5}{p50:>9.2f}{p95:>9.2f}{top:>9.1f}"
            f"{base:>10.1f}{base / p50:>7.0f}x"
        )
    prefixes = sorted({q[:n] for q in mix["two words"] for n in (2, 3, 5, 8)})
    p50, p95, top = summary(timed(suggest, prefixes))
    print(f"{'suggest':<14}{len(prefixes):>5}{p50:>9.2f}{p95:>9.2f}{top:>9.1f}")
    print(f"worst query: {worst:.1f} ms")


if __name__ == "__main__":
    main()
