"""
Time the search pages and the autocomplete endpoint on about 100,000 documents.

Run: .venv/bin/python bench/search_pages.py [--postgres URL | --no-postgres]
     [--requests 200] [--keep]

Builds a scratch database (a SQLite file under /tmp; on the PostgreSQL server of
--postgres, by default DATABASE_URL's, a database named test_<its name>_searchpages,
dropped afterwards), migrates it,
loads the sample data and the full ICD-10-CM code set (``import_icd10cm``, from the
installed package: nothing is downloaded), so the index holds about 98,000 codes
plus the seed write-up and policy. Then, in a fresh process on that database, it
requests each address through Django's full request stack and prints the median and
95th-percentile times, the query count, and each one's ratio to robots.txt (a
near-empty request) timed in the same run. The goal: suggestions under 10 ms. Then
the first part of the codes sitemap (50,000 addresses), which the site caches for an
hour, timed with the cache emptied before each request.

With --keep, the SQLite scratch file is kept and reused by the next run.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
MANAGE = [sys.executable, str(ROOT / "manage.py")]
SQLITE_FILE = Path("/tmp/cc_searchpages_bench.sqlite3")
POSTGRES_SCHEMES = ("postgres:", "postgresql:", "pgsql:")
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/carecodes"
UNCACHED = ["/sitemap-codes.xml"]
UNCACHED_REQUESTS = 5

ADDRESSES = [
    "/robots.txt",
    "/search/suggest/?q=97",
    "/search/suggest/?q=9754",
    "/search/suggest/?q=S52.5",
    "/search/suggest/?q=work+h",
    "/search/suggest/?q=fractu",
    "/search/suggest/?q=diabetes+mel",
    "/search/suggest/?q=left+ankle+spr",
    "/search/?q=work+hardening",
    "/search/?q=fracture+of+radius",
    "/search/?q=fracture&kind=code&system=icd-10-cm&page=3",
    "/search/?q=diabetis",
]


def manage(url, *args):
    finished = subprocess.run(
        [*MANAGE, *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=False,
    )
    if finished.returncode:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{finished.stderr}")


def prepare(url):
    started = time.perf_counter()
    for args in (["migrate", "--noinput"], ["load_sample_data"], ["import_icd10cm"]):
        manage(url, *args)
    print(f"(database ready in {time.perf_counter() - started:.0f} s)")


def measure(requests):
    """Runs in a child process whose DATABASE_URL names the prepared database."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carecodes.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from index.models import SearchDocument

    setup_test_environment()
    settings.ALLOWED_HOSTS = ["testserver"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {
            "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        },
    }
    print(f"{connection.vendor}: {SearchDocument.objects.count():,} documents indexed")
    client = Client()
    print(
        f"{'address':58} {'status':>6} {'median ms':>9} {'p95 ms':>7} {'queries':>7} "
        f"{'x base':>6}"
    )
    baseline = None
    for address in ADDRESSES:
        for _ in range(5):  # warm caches and connections
            client.get(address)
        times = []
        for _ in range(requests):
            start = time.perf_counter()
            response = client.get(address)
            times.append((time.perf_counter() - start) * 1000)
        queries = []

        def count(execute, sql, params, many, context, queries=queries):
            queries.append(sql)
            return execute(sql, params, many, context)

        # A wrapper counts without switching on the debug cursor, which would
        # change what is measured.
        with connection.execute_wrapper(count):
            client.get(address)
        median = statistics.median(times)
        p95 = statistics.quantiles(times, n=20)[-1]
        baseline = baseline or median
        print(
            f"{address:58} {response.status_code:6} {median:9.2f} {p95:7.2f} "
            f"{len(queries):7} {median / baseline:6.1f}"
        )
    print(f"uncached: the cache emptied before each of {UNCACHED_REQUESTS} requests")
    for address in UNCACHED:
        times = []
        for _ in range(UNCACHED_REQUESTS):
            cache.clear()
            start = time.perf_counter()
            response = client.get(address)
            times.append(time.perf_counter() - start)
        urls = response.content.count(b"<url>")
        print(
            f"{address:58} {response.status_code:6} {urls:,} addresses, median "
            f"{statistics.median(times):.2f} s (min {min(times):.2f}, max "
            f"{max(times):.2f})"
        )


def run(label, url, requests):
    print(f"\n{label}")
    finished = subprocess.run(
        [sys.executable, __file__, "--measure", "--requests", str(requests)],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        check=False,
    )
    if finished.returncode:
        sys.exit("measuring failed")


def postgres_admin(url, sql):
    import psycopg

    admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(sql)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    named = os.environ.get("DATABASE_URL", "")
    parser.add_argument(
        "--postgres",
        default=named if named.startswith(POSTGRES_SCHEMES) else DEFAULT_POSTGRES,
        help="A PostgreSQL server to create the scratch database on, named after "
        "this address's database (default: DATABASE_URL when it is PostgreSQL, else "
        f"{DEFAULT_POSTGRES}).",
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--keep", action="store_true", help="Keep the SQLite file.")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.requests)
        return

    sqlite_url = f"sqlite:///{SQLITE_FILE}"
    if not (args.keep and SQLITE_FILE.exists()):
        SQLITE_FILE.unlink(missing_ok=True)
        prepare(sqlite_url)
    try:
        run("SQLite (scratch file)", sqlite_url, args.requests)
    finally:
        if not args.keep:
            SQLITE_FILE.unlink(missing_ok=True)

    if not args.no_postgres:
        parts = urlsplit(args.postgres)
        scratch = f"test_{parts.path.strip('/') or 'postgres'}_searchpages"
        url = urlunsplit(parts._replace(path=f"/{scratch}"))
        postgres_admin(args.postgres, f'DROP DATABASE IF EXISTS "{scratch}"')
        postgres_admin(args.postgres, f'CREATE DATABASE "{scratch}"')
        try:
            prepare(url)
            run(f"PostgreSQL (scratch database {scratch})", url, args.requests)
        finally:
            postgres_admin(args.postgres, f'DROP DATABASE IF EXISTS "{scratch}"')


if __name__ == "__main__":
    main()
