"""
Time the full ICD-10-CM import on SQLite and PostgreSQL: cold, second run, forced.

Run: .venv/bin/python bench/import_icd10cm.py [--postgres URL | --no-postgres]

Each step is a real `manage.py` process, as `make run` starts them, on a scratch
database made for the run (a SQLite file under /tmp; a PostgreSQL database named
cc_codesets_bench on the server of --postgres, dropped afterwards). The database is
migrated and loaded with the sample data first. Prints each step's wall time and its
ratio to `manage.py check` timed in the same run (the cost of starting Django at
all). The goal: the cold import under two minutes on SQLite, the second run about as
cheap as starting Django.
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
BENCH_DATABASE = "cc_codesets_bench"

STEPS = [
    ("manage.py check (baseline)", ["check"]),
    ("import_icd10cm, cold", ["import_icd10cm"]),
    ("import_icd10cm, second run (skipped)", ["import_icd10cm"]),
    (
        "import_icd10cm --force (compares, writes nothing)",
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


def postgres_admin(url, sql):
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(sql)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postgres",
        default="postgres://postgres@127.0.0.1:5432/postgres",
        help="A PostgreSQL server to create the scratch database on.",
    )
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    SQLITE_FILE.unlink(missing_ok=True)
    try:
        bench("SQLite (scratch file)", f"sqlite:///{SQLITE_FILE}")
    finally:
        SQLITE_FILE.unlink(missing_ok=True)

    if not args.no_postgres:
        url = urlunsplit(urlsplit(args.postgres)._replace(path=f"/{BENCH_DATABASE}"))
        postgres_admin(args.postgres, f"DROP DATABASE IF EXISTS {BENCH_DATABASE}")
        postgres_admin(args.postgres, f"CREATE DATABASE {BENCH_DATABASE}")
        try:
            bench("PostgreSQL (scratch database)", url)
        finally:
            postgres_admin(args.postgres, f"DROP DATABASE IF EXISTS {BENCH_DATABASE}")


if __name__ == "__main__":
    main()
