"""
Time the full ICD-10-CM import on SQLite and PostgreSQL: cold, second run, forced.

Run: .venv/bin/python bench/import_icd10cm.py [--postgres URL | --no-postgres]

Each step is a real `manage.py` process, as `make run` starts them, on a scratch
database made for the run (a SQLite file under /tmp; on the PostgreSQL server of
--postgres, by default DATABASE_URL's, a database named test_<its name>_codesets,
dropped afterwards). The database is migrated and loaded with the sample data first.
Prints each step's wall time and its ratio to `manage.py check` timed in the same run
(the cost of starting Django at all), then what the database holds after the import
(codes, billable codes, chapters, blocks). First, the time and peak memory of
importing the simple-icd-10-cm package in a Python process of its own, against an
empty Python. The goal: the cold import under two minutes on SQLite, the second run
about as cheap as starting Django.
"""

import argparse
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
MANAGE = [sys.executable, str(ROOT / "manage.py")]
SQLITE_FILE = Path("/tmp/cc_codesets_bench.sqlite3")
POSTGRES_SCHEMES = ("postgres:", "postgresql:", "pgsql:")
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/carecodes"
# Run after the steps, in the scratch database.
HOLDS = """
from procedures.models import Code, CodeSection
codes = Code.objects.filter(system="icd-10-cm")
sections = CodeSection.objects.filter(system="icd-10-cm")
print(
    f"holds {codes.count():,} ICD-10-CM codes "
    f"({codes.filter(is_billable=True).count():,} billable), "
    f"{sections.filter(kind='chapter').count()} chapters and "
    f"{sections.filter(kind='block').count()} blocks"
)
"""
# Peak memory (ru_maxrss, KiB on Linux) of a Python process, with and without the
# package, as the import command loads it.
PACKAGE = """
import resource, sys, time
started = time.perf_counter()
if sys.argv[1:]:
    import simple_icd_10_cm
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

STEPS = [
    ("manage.py check (baseline)", ["check"]),
    ("import_icd10cm, cold", ["import_icd10cm"]),
    ("import_icd10cm, second run (skipped)", ["import_icd10cm"]),
    (
        "import_icd10cm --force (compares every row)",
        ["import_icd10cm", "--force"],
    ),
    ("load_sample_data after the import", ["load_sample_data"]),
]


def manage(url, *args, quiet=False):
    env = {**os.environ, "DATABASE_URL": url}
    start = time.perf_counter()
    finished = subprocess.run(
        [*MANAGE, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if finished.returncode:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{finished.stderr}")
    last = finished.stdout.strip().splitlines()[-1:] if not quiet else []
    return elapsed, last[0] if last else ""


def bench(label, url):
    manage(url, "migrate", "--noinput", quiet=True)
    manage(url, "load_sample_data", quiet=True)
    print(f"\n{label}")
    print(f"{'step':52} {'seconds':>8} {'x base':>7}")
    baseline = None
    for name, args in STEPS:
        elapsed, said = manage(url, *args)
        baseline = baseline or elapsed
        print(f"{name:52} {elapsed:8.2f} {elapsed / baseline:7.1f}")
        if said and args[0] != "check":
            print(
                textwrap.fill(said, 88, initial_indent="    ", subsequent_indent="    ")
            )
    print(manage(url, "shell", "--command", HOLDS)[1])


def package_cost():
    measured = []
    for extra in ([], ["with the package"]):
        finished = subprocess.run(
            [sys.executable, "-c", PACKAGE, *extra],
            capture_output=True,
            text=True,
            check=True,
        )
        seconds, kib = finished.stdout.split()
        measured.append((float(seconds), int(kib) / 1024))
    (_, bare), (seconds, peak) = measured
    print(
        f"import simple_icd_10_cm: {seconds:.1f} s, peak memory {peak:.0f} MiB "
        f"(an empty Python: {bare:.0f} MiB)"
    )


def postgres_admin(url, sql):
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(sql)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    named = os.environ.get("DATABASE_URL", "")
    parser.add_argument(
        "--postgres",
        default=named if named.startswith(POSTGRES_SCHEMES) else DEFAULT_POSTGRES,
        help="A PostgreSQL server to create the scratch database on, named after "
        "this address's database (default: DATABASE_URL when it is PostgreSQL, else "
        f"{DEFAULT_POSTGRES}).",
    )
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    package_cost()
    SQLITE_FILE.unlink(missing_ok=True)
    try:
        bench("SQLite (scratch file)", f"sqlite:///{SQLITE_FILE}")
    finally:
        SQLITE_FILE.unlink(missing_ok=True)

    if not args.no_postgres:
        parts = urlsplit(args.postgres)
        scratch = f"test_{parts.path.strip('/') or 'postgres'}_codesets"
        url = urlunsplit(parts._replace(path=f"/{scratch}"))
        postgres_admin(args.postgres, f'DROP DATABASE IF EXISTS "{scratch}"')
        postgres_admin(args.postgres, f'CREATE DATABASE "{scratch}"')
        try:
            bench(f"PostgreSQL (scratch database {scratch})", url)
        finally:
            postgres_admin(args.postgres, f'DROP DATABASE IF EXISTS "{scratch}"')


if __name__ == "__main__":
    main()
