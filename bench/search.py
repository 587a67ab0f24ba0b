"""
Time the search engine on a corpus of at least 100,000 documents, against two
baselines run on the same queries.

Run: .venv/bin/python bench/search.py [--queries 100] [--documents 100000]
     [--no-icd10cm] [--database URL [--keep-index]]

The run builds a throw-away database and removes it at the end: a SQLite file in a
temporary folder, or, when DATABASE_URL names PostgreSQL, a test database on that
server (``test_<name>``, as the test runner makes it). Nothing is written to the
database DATABASE_URL names. The scratch database is migrated and given the sample
data and the full ICD-10-CM code set (``import_icd10cm``, from the installed package;
--no-icd10cm skips it), then generated codes up to --documents: code-like keys and
descriptor-like text drawn from a Zipf vocabulary, so common words are really common.
With --database URL, that database is used as it is instead, and generated codes are
added to it when it holds fewer than --documents codes.

Prints the index build time and size, then, per class of query, p50 / p95 over the
same distinct queries (no result cache) for three functions, each warmed up on the
same queries first and run in turn on each query:

- engine: ``index.search.search()``, the first page of 20 with everything the
  results page shows (query reading, code lookups, ranked full text, snippets,
  corrections);
- fts: the plain full-text query a developer would write over the same index tables,
  without the engine's query reading: the query's words quoted (FTS5 MATCH, or
  ``websearch_to_tsquery``), all matches counted, the first 20 by the table's ranking
  (bm25 with the same column weights; ``ts_rank_cd``) with snippets; no code
  lookups, no typo tolerance, no ranking window;
- icontains: ``Code`` rows whose code or descriptor contains every word
  (``icontains``), counted, the first 20 by id: codes only, no write-ups or
  policies, no ranking, no snippets.

Ratios are a baseline's p50 over the engine's (above 1: the engine is faster). A
second table says, per class, on how many queries each function found anything.
"""

import argparse
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carecodes.settings")


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100, help="per class")
    parser.add_argument(
        "--no-icd10cm",
        action="store_true",
        help="do not import ICD-10-CM into the scratch database (generated codes only)",
    )
    parser.add_argument(
        "--database",
        metavar="URL",
        help="use this database as it is (generated codes are added to it) instead "
        "of a throw-away one",
    )
    parser.add_argument(
        "--keep-index",
        action="store_true",
        help="with --database: reuse an index that covers the corpus instead of "
        "timing a rebuild",
    )
    options = parser.parse_args()
    if options.keep_index and not options.database:
        parser.error("--keep-index needs --database")
    return options


OPTIONS = arguments()
POSTGRES_SCHEMES = ("postgres:", "postgresql:", "pgsql:")
SCRATCH_FOLDER = None
if OPTIONS.database:
    os.environ["DATABASE_URL"] = OPTIONS.database
elif not os.environ.get("DATABASE_URL", "").startswith(POSTGRES_SCHEMES):
    SCRATCH_FOLDER = tempfile.mkdtemp(prefix="carecodes-bench-search-")
    os.environ["DATABASE_URL"] = f"sqlite:///{SCRATCH_FOLDER}/bench.sqlite3"

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import Q  # noqa: E402

from index.models import (  # noqa: E402
    KIND_CODE,
    KIND_DIGITS,
    KIND_STEP,
    SearchDocument,
    SearchWord,
)
from index.search import search, suggest  # noqa: E402
from index.search.engine import highlight  # noqa: E402
from index.search.indexing import rebuild  # noqa: E402
from policies.models import Policy  # noqa: E402
from procedures import codes  # noqa: E402
from procedures.models import Code, LayTerm  # noqa: E402

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
# Run through every function before timing, and left out of the timed mix.
WARM_UP = ["warm up", "fractures of the wrist", "E11.9", "S52", "aetna 0198"]
PER_PAGE = 20
MARKS = ("\ue000", "\ue001")


def zipf_words(rng, count):
    weights = [1 / (rank + 1) for rank in range(len(WORDS))]
    return rng.choices(WORDS, weights=weights, k=count)


def prepare_scratch():
    """Migrate the scratch database and load the sample data and ICD-10-CM."""
    started = time.perf_counter()
    if connection.vendor == "postgresql":
        name = connection.creation.create_test_db(
            verbosity=0, autoclobber=True, serialize=False
        )
        print(f"scratch database: {name} (dropped at the end)")
    else:
        call_command("migrate", verbosity=0)
        print("scratch database: a SQLite file in a temporary folder (removed)")
    call_command("load_sample_data", verbosity=0)
    if not OPTIONS.no_icd10cm:
        call_command("import_icd10cm", verbosity=0)
    loaded = Code.objects.count()
    print(
        f"sample data{'' if OPTIONS.no_icd10cm else ' and ICD-10-CM'}: "
        f"{loaded:,} codes in {time.perf_counter() - started:.0f} s"
    )


def ensure_corpus(target, rng):
    have = Code.objects.count()
    if have >= target:
        return have, 0
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
    total = Code.objects.count()
    return total, total - have


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
    phrases = list(LayTerm.objects.order_by("phrase").values_list("phrase", flat=True))
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
        # The thesaurus' phrases, as typed (none when it is not loaded).
        "lay phrase": rng.sample(phrases, min(per_class, len(phrases))),
        # Sentences whose words rarely match together: query relaxation's path.
        "sentence": [
            "my {} {} keeps getting worse after the {}".format(*rng.sample(common, 3))
            for _ in range(per_class)
        ],
    }
    # Distinct queries only, so nothing is timed twice (nor warmed up on).
    return {
        name: [q for q in dict.fromkeys(qs) if q not in WARM_UP][:per_class]
        for name, qs in classes.items()
    }


def misspell(rng, word):
    if len(word) < 5:
        return word + "x"
    i = rng.randrange(1, len(word) - 1)
    return word[:i] + word[i + 1 :]


def engine(query):
    return search(query, per_page=PER_PAGE).total


def icontains(query):
    words = [w for w in query.replace('"', " ").split() if w][:8]
    condition = Q()
    for word in words:
        condition &= Q(descriptor__icontains=word) | Q(code__icontains=word)
    found = Code.objects.filter(condition)
    total = found.count()
    list(found.order_by("id")[:PER_PAGE])
    return total


# A quoted phrase or a run of other characters: each becomes one quoted FTS5 string,
# the least a plain query needs so that input such as E11.9 or -word is no error.
_PIECES = re.compile(r'"[^"]*"|[^\s"]+')
# websearch_to_tsquery reads input of any shape; the two partial GIN indexes
# (search/migrations/0004) are used when the condition names both id ranges.
_CODES_FROM = KIND_DIGITS[KIND_CODE] * KIND_STEP


def fts(query):
    if connection.vendor == "sqlite":
        return fts_sqlite(query)
    return fts_postgres(query)


def fts_sqlite(query):
    pieces = [piece.strip('"') for piece in _PIECES.findall(query)]
    match = " ".join(
        '"' + piece.replace('"', '""') + '"' for piece in pieces if piece.strip()
    )
    if not match:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM search_fts WHERE search_fts MATCH %s", [match]
        )
        total = cursor.fetchone()[0]
        # Snippets for the page's rows only: in the ranking query, SQLite would make
        # one for every match.
        cursor.execute(
            "SELECT d.id, d.title, d.url, snippet(search_fts, -1, %s, %s, '…', 14) "
            "FROM search_fts JOIN search_searchdocument d ON d.id = search_fts.rowid "
            "WHERE search_fts MATCH %s AND search_fts.rowid IN (SELECT rowid "
            "FROM search_fts WHERE search_fts MATCH %s ORDER BY rank LIMIT %s) "
            "ORDER BY rank",
            [*MARKS, match, match, PER_PAGE],
        )
        for row in cursor.fetchall():
            highlight(row[-1])
    return total


def fts_postgres(query):
    tsquery = "websearch_to_tsquery('carecodes_english', %(query)s)"
    where = (
        f"d.search_vector @@ {tsquery} "
        f"AND (d.id < {_CODES_FROM} OR d.id >= {_CODES_FROM})"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM search_searchdocument d WHERE {where}",
            {"query": query},
        )
        total = cursor.fetchone()[0]
        cursor.execute(
            "SELECT best.id, best.title, best.url, ts_headline('carecodes_english', "
            "concat_ws(' ', best.text_b, best.text_c, best.text_d), "
            f"{tsquery}, 'StartSel=\ue000, StopSel=\ue001, MaxFragments=2') "
            f"FROM (SELECT d.*, ts_rank_cd(d.search_vector, {tsquery}, 1) AS score "
            f"FROM search_searchdocument d WHERE {where} "
            "ORDER BY score DESC, d.id LIMIT %(limit)s) best "
            "ORDER BY best.score DESC, best.id",
            {"query": query, "limit": PER_PAGE},
        )
        for row in cursor.fetchall():
            highlight(row[-1])
    return total


FUNCTIONS = {"engine": engine, "fts": fts, "icontains": icontains}


def timed_in_turn(queries):
    """Each function's times (ms) and how many queries found anything, in turn."""
    times = {name: [] for name in FUNCTIONS}
    answered = dict.fromkeys(FUNCTIONS, 0)
    for query in queries:
        for name, function in FUNCTIONS.items():
            started = time.perf_counter()
            total = function(query)
            times[name].append((time.perf_counter() - started) * 1000)
            answered[name] += bool(total)
    return times, answered


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


def ratio(value):
    return f"{value:.2f}x" if value < 1 else f"{value:.1f}x"


def build_index(total):
    if OPTIONS.keep_index and SearchDocument.objects.count() >= total:
        print("index build: not timed (--keep-index)")
        return
    started = time.perf_counter()
    documents = rebuild()
    built = time.perf_counter() - started
    print(f"index build: {documents:,} documents in {built:.1f} s")


def report(mix):
    print(f"queries: {sum(len(q) for q in mix.values()):,} distinct, per class below")
    print(
        f"{'':<14}{'':>5}{'engine':>16}{'fts':>16}{'icontains':>16}"
        f"{'fts /':>9}{'icont. /':>10}"
    )
    print(
        f"{'class':<14}{'n':>5}"
        + f"{'p50 ms':>8}{'p95 ms':>8}" * len(FUNCTIONS)
        + f"{'engine':>9}{'engine':>10}"
    )
    worst = (0.0, "")
    found = {}
    for name, queries in mix.items():
        times, found[name] = timed_in_turn(queries)
        line = f"{name:<14}{len(queries):>5}"
        p50s = {}
        for function, each in times.items():
            p50s[function], p95, _top = summary(each)
            line += f"{p50s[function]:>8.2f}{p95:>8.2f}"
        slowest = max(times["engine"])
        worst = max(worst, (slowest, name))
        line += f"{ratio(p50s['fts'] / p50s['engine']):>9}"
        line += f"{ratio(p50s['icontains'] / p50s['engine']):>10}"
        print(line)
    print(f"slowest engine query: {worst[0]:.1f} ms ({worst[1]})")
    print("queries that found anything:")
    print(f"{'class':<14}{'n':>5}" + "".join(f"{f:>11}" for f in FUNCTIONS))
    for name, answered in found.items():
        counts = "".join(f"{answered[f]:>11}" for f in FUNCTIONS)
        print(f"{name:<14}{len(mix[name]):>5}{counts}")
    prefixes = sorted({q[:n] for q in mix["two words"] for n in (2, 3, 5, 8)})
    p50, p95, top = summary(timed(suggest, prefixes))
    print(
        f"suggest (engine only, no baseline): {len(prefixes)} prefixes, "
        f"p50 {p50:.2f} ms, p95 {p95:.2f} ms, max {top:.1f} ms"
    )


def main():
    rng = random.Random(7)
    total, generated = ensure_corpus(OPTIONS.documents, rng)
    print(f"backend: {connection.vendor}; codes: {total:,} ({generated:,} generated)")
    build_index(total)
    print(f"index size: {index_size() / 1e6:.1f} MB")
    commonest = SearchWord.objects.order_by("-documents", "word").first()
    if commonest:
        print(
            f"commonest word: {commonest.word!r}, in {commonest.documents:,} documents"
        )
    mix = query_mix(rng, OPTIONS.queries)
    # Connection set-up and first-use costs are not a query's.
    for function in (*FUNCTIONS.values(), suggest):
        for query in WARM_UP:
            function(query)
    print(f"warm-up: {len(WARM_UP)} queries through each function first")
    report(mix)


def on_scratch():
    original = connection.settings_dict["NAME"]
    try:
        prepare_scratch()
        main()
    finally:
        if SCRATCH_FOLDER:
            connection.close()
            shutil.rmtree(SCRATCH_FOLDER, ignore_errors=True)
        elif connection.settings_dict["NAME"] != original:
            connection.creation.destroy_test_db(original, verbosity=0)


if __name__ == "__main__":
    if OPTIONS.database:
        main()
    else:
        on_scratch()
