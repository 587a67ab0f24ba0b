"""
How often search puts what a person means first: MRR, success@1 and success@10 per
kind of query (lay words, clinical phrases), on SQLite and PostgreSQL.

Run: .venv/bin/python bench/relevance.py [--baseline] [--sqlite FILE]
     [--postgres URL | --no-postgres] [--show-misses]

The judged queries are ``bench/relevance_queries.csv`` (query, kind, the acceptable
codes: a hit is right when its code starts with one of them, so "S42" accepts
S42.001A). They were written from how patients and clinicians speak, not from the
thesaurus rows or the descriptors: misspellings, sentences, partial phrases, codes.

Each backend runs in a process of its own, on a database it reuses when it holds the
full ICD-10-CM set (a SQLite file, by default under /tmp; on PostgreSQL the database
--postgres names, by default ``<name>_relevance`` on DATABASE_URL's server or on
``postgres://postgres@127.0.0.1:5432/carecodes``), else builds: migrate, the sample
data, the full ICD-10-CM set, then the thesaurus (``import_lay_terms``, every run, so
the data in the working tree is what is measured). Nothing is written to the
database DATABASE_URL names.

With --baseline, each backend first runs the queries with the thesaurus, the ranking
priors and query relaxation switched off (the index is the same), then with them on,
and the table shows both.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ROOT / "bench" / "relevance_queries.csv"
DEFAULT_SQLITE = Path("/tmp/carecodes-bench-relevance.sqlite3")
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/carecodes"
POSTGRES_SCHEMES = ("postgres:", "postgresql:", "pgsql:")
# A hit this far down counts as not found (one results page).
DEPTH = 20
FULL_ICD10CM = 90_000


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", action="store_true")
    parser.add_argument("--sqlite", default=str(DEFAULT_SQLITE), metavar="FILE")
    parser.add_argument(
        "--postgres", metavar="URL", help="this database (made when missing)"
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--show-misses", action="store_true")
    parser.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    return parser.parse_args()


def read_queries(path=QUERIES) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as handle:
        return [
            {
                "query": row["query"],
                "kind": row["kind"],
                "acceptable": row["acceptable"].split(),
            }
            for row in csv.DictReader(handle)
        ]


def rank_of(hits, acceptable) -> int | None:
    """The 1-based place of the first hit whose code starts with an acceptable one."""
    for place, hit in enumerate(hits, start=1):
        if hit.code and any(hit.code.startswith(code) for code in acceptable):
            return place
    return None


def scores(ranks) -> dict:
    count = len(ranks)
    return {
        "queries": count,
        "mrr": sum(1 / rank for rank in ranks if rank) / count,
        "at1": sum(1 for rank in ranks if rank == 1) / count,
        "at10": sum(1 for rank in ranks if rank and rank <= 10) / count,
    }


# --- In the worker process, on one database ------------------------------------------


def prepare(url):
    from django.core.management import call_command
    from django.db import connection

    from procedures.models import Code

    if connection.vendor == "postgresql":
        _create_postgres(url)
    call_command("migrate", verbosity=0)
    if not Code.objects.filter(system="cpt").exists():
        call_command("load_sample_data", verbosity=0)
    if Code.objects.filter(system="icd-10-cm").count() < FULL_ICD10CM:
        call_command("import_icd10cm", verbosity=0)
    call_command("import_lay_terms", verbosity=0, stdout=open(os.devnull, "w"))


def _create_postgres(url):
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    server = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(server, autocommit=True) as connection:
        found = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not found:
            connection.execute(f'CREATE DATABASE "{name}"')


def switched_off():
    """The engine without the thesaurus, the ranking priors and relaxation."""
    from index.search import clauses, engine, lay

    engine.lay = _NoThesaurus(lay)
    clauses.prior = lambda *args, **kwargs: "1.0"
    engine._relaxed = lambda *args, **kwargs: None


class _NoThesaurus:
    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        return getattr(self._module, name)

    def lookup(self, *args, **kwargs):
        return self._module.Found()


def missing_codes(queries) -> list[str]:
    from procedures.models import Code

    known = set(Code.objects.values_list("code", flat=True))
    return sorted(
        {
            code
            for row in queries
            for code in row["acceptable"]
            if not any(each.startswith(code) for each in known)
        }
    )


def measure(queries) -> tuple[dict, list]:
    from index.search import search

    ranks: dict[str, list] = {}
    misses = []
    timings = []
    for row in queries:
        started = time.perf_counter()
        results = search(row["query"], per_page=DEPTH)
        timings.append(time.perf_counter() - started)
        rank = rank_of(results.hits, row["acceptable"])
        ranks.setdefault(row["kind"], []).append(rank)
        ranks.setdefault("all", []).append(rank)
        if rank != 1:
            misses.append([row["query"], rank, [hit.code for hit in results.hits[:3]]])
    table = {kind: scores(found) for kind, found in ranks.items()}
    timings.sort()
    table["all"]["p50_ms"] = timings[len(timings) // 2] * 1000
    return table, misses


def worker(options):
    os.environ["DATABASE_URL"] = options.worker
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carecodes.settings")
    os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection

    started = time.process_time()
    prepare(options.worker)
    queries = read_queries()
    report = {"vendor": connection.vendor, "missing": missing_codes(queries)}
    # The thesaurus' size, as measured.
    from procedures.models import LaySynonym, LayTerm

    report["phrases"] = LayTerm.objects.count()
    report["synonyms"] = LaySynonym.objects.count()
    if options.baseline:
        from index.search import clauses, engine

        saved = (engine.lay, clauses.prior, engine._relaxed)
        switched_off()
        report["before"], _misses = measure(queries)
        engine.lay, clauses.prior, engine._relaxed = saved
    cpu = time.process_time()
    report["after"], report["misses"] = measure(queries)
    report["cpu_s"] = time.process_time() - cpu
    report["prepare_cpu_s"] = cpu - started
    print(json.dumps(report))


# --- The driver ----------------------------------------------------------------------


def postgres_url(options) -> str | None:
    if options.no_postgres:
        return None
    if options.postgres:
        return options.postgres
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(POSTGRES_SCHEMES):
        base = DEFAULT_POSTGRES
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{parts.path.lstrip('/')}_relevance"))


def run(url, options) -> dict:
    command = [sys.executable, __file__, "--worker", url]
    if options.baseline:
        command.append("--baseline")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"the run on {url} failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_report(report, options):
    measured = report["after"]["all"]
    print(
        f"\n{report['vendor']}: thesaurus {report['phrases']:,} phrases, "
        f"{report['synonyms']:,} synonyms; queries {measured['queries']}; "
        f"p50 {measured['p50_ms']:.1f} ms; CPU {report['cpu_s']:.1f} s for the "
        "measured run"
    )
    if report["missing"]:
        print(f"  acceptable codes matching no code: {', '.join(report['missing'])}")
    columns = ["before", "after"] if "before" in report else ["after"]
    print(f"  {'kind':<9}{'n':>5}" + "".join(f"  {c:>20}" for c in columns))
    print(f"  {'':<14}" + "".join("  MRR    @1    @10   " for _ in columns))
    for kind in ("lay", "clinical", "all"):
        if kind not in report["after"]:
            continue
        line = f"  {kind:<9}{report['after'][kind]['queries']:>5}"
        for column in columns:
            found = report[column][kind]
            line += f"  {found['mrr']:.3f} {found['at1']:.3f} {found['at10']:.3f}"
        print(line)
    if options.show_misses:
        for query, rank, first in report["misses"]:
            print(f"  miss: {query!r} rank {rank} first {first}")


def main():
    options = arguments()
    if options.worker:
        worker(options)
        return
    targets = [f"sqlite:///{Path(options.sqlite).resolve()}"]
    url = postgres_url(options)
    if url:
        targets.append(url)
    for target in targets:
        started = time.perf_counter()
        report = run(target, options)
        print_report(report, options)
        print(f"  ({time.perf_counter() - started:.0f} s wall in all)")


if __name__ == "__main__":
    main()
