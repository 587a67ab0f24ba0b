"""
Time the public pages on the sample data, through Django's full request stack.

Run: .venv/bin/python bench/pages.py [--requests 300]

Builds a throw-away SQLite database (or uses DATABASE_URL's server, in a test
database), loads the sample data, then requests each page repeatedly and prints
median and 95th-percentile times, query counts, and each page's cost as a ratio of a
near-empty request (robots.txt) timed in the same run.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carecodes.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

PAGES = [
    "/robots.txt",
    "/",
    "/codes/cpt/97546/",
    "/codes/icd-10-cm/S52.501A/",
    "/policies/aetna/0198/",
    "/sections/cpt/physical-medicine-and-rehabilitation/",
    "/search/?q=work+hardening",
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    setup_test_environment()
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {
            "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        },
    }
    old_name = connection.creation.create_test_db(verbosity=0)
    try:
        call_command("load_sample_data", verbosity=0)
        run(args.requests)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def count_queries(client, address):
    # The request signals close and reopen the connection, which empties a
    # CaptureQueriesContext; counting the executed statements survives that.
    executed = []

    def count(execute, sql, params, many, context):
        executed.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        client.get(address)
    return len(executed)


def run(requests):
    client = Client()
    print(f"{connection.vendor}, {requests} requests per page, Django test client")
    print(f"{'page':55} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8} {'x base':>7}")
    baseline = None
    for address in PAGES:
        for _ in range(10):  # warm caches and template loading
            client.get(address)
        queries = count_queries(client, address)
        timings = []
        for _ in range(requests):
            start = time.perf_counter()
            response = client.get(address)
            timings.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, (address, response.status_code)
        timings.sort()
        p50 = statistics.median(timings)
        p95 = timings[int(len(timings) * 0.95) - 1]
        baseline = baseline or p50
        print(f"{address:55} {p50:8.2f} {p95:8.2f} {queries:8d} {p50 / baseline:7.1f}")


if __name__ == "__main__":
    main()
