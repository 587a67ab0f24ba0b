"""
Time the document importers and the content backup on many bulletins.

Run: .venv/bin/python bench/documents.py [--bulletins 200] [--rows 60]

Builds a scratch database (a SQLite file under /tmp, removed at the end, or a test
database on DATABASE_URL's PostgreSQL server), writes generated bulletins in the
seed's layout (CPT rows, ICD-10-CM 7th-character ranges, add-on rows, references),
and times: the first import of all of them (the baseline), a second import of the
same files (which should write nothing), a dry run, export_content, and
import_content of that export into the same database (which should write nothing).
Ratios are against the first import in the same run. Every step also prints the
rows it changed (on-commit work included), as the database counts them: on
PostgreSQL the rows inserted, updated and deleted in its tables
(``pg_stat_user_tables``, COPY included); on SQLite the connection's
``total_changes``, which also counts the rows that the full-text index's triggers
write into the FTS5 tables.
"""

import argparse
import os
import sys
import tempfile
import time
from io import StringIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carecodes.settings")
POSTGRES_SCHEMES = ("postgres:", "postgresql:", "pgsql:")
SCRATCH = Path("/tmp/carecodes-bench-documents.sqlite3")
# A throw-away SQLite file unless DATABASE_URL names a PostgreSQL server (which
# gets a test database): the database DATABASE_URL names is never written.
ON_SCRATCH = not os.environ.get("DATABASE_URL", "").startswith(POSTGRES_SCHEMES)
if ON_SCRATCH:
    os.environ["DATABASE_URL"] = f"sqlite:///{SCRATCH}"

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from policies.models import Policy, PolicyCode  # noqa: E402


def bulletin(number: int, rows: int) -> str:
    cpt = "\n".join(
        f"{'+ ' if i % 10 == 9 else ''}{90000 + number * 7 + i:05d} "
        f"Generated service {i} of bulletin {number}, each 15 minutes"
        for i in range(rows)
    )
    references = "\n".join(
        f"  {i}. Author {i}. A study of service {number}. J Bench. 2026;{i}:1-9."
        for i in range(1, 11)
    )
    return f"""Generated Bulletin {number}

Number: {number:04d}

Table Of Contents

Policy
Applicable CPT / HCPCS / ICD-10 Codes
Background
References


Policy

Scope of Policy

This Clinical Policy Bulletin addresses generated services.

  1. Policy Limitations and Exclusions

    Aetna does not cover generated service {number} for maintenance.


Table:

CPT Codes / HCPCS Codes / ICD-10 Codes

Code Code Description

CPT codes covered if selection criteria are met:

{cpt}

ICD-10 codes not covered for indications listed in the CPB:

S52.00X+ - S52.99X+ Fracture of forearm
Z85.00 - Z85.9 Personal history of malignant neoplasm

Background

Generated background text for bulletin {number}.

References

{references}
"""


def changes():
    """Rows inserted, updated or deleted so far, as the database counts them."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # The server counts a session's writes when it next waits for a query;
            # this makes that happen before the totals are read.
            cursor.execute("SELECT pg_stat_force_next_flush()")
            cursor.execute(
                "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) "
                "FROM pg_stat_user_tables"
            )
            return cursor.fetchone()[0]
    connection.ensure_connection()
    return connection.connection.total_changes


def timed(label, function, baseline=None, expect_none=False):
    before = changes()
    start = time.perf_counter()
    function()
    seconds = time.perf_counter() - start
    written = changes() - before
    ratio = f"{seconds / baseline:6.2f}x" if baseline else f"{'':7}"
    warning = "  (expected none)" if expect_none and written else ""
    print(f"{label:<38} {seconds:8.3f} s {ratio} {written:>12,}{warning}")
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bulletins", type=int, default=200)
    parser.add_argument("--rows", type=int, default=60)
    args = parser.parse_args()

    if ON_SCRATCH:
        SCRATCH.unlink(missing_ok=True)
    else:
        test_name = connection.creation.create_test_db(
            verbosity=0, autoclobber=True, serialize=False
        )
        print(f"Scratch database {test_name}")
    try:
        call_command("migrate", verbosity=0)
        call_command("load_sample_data", verbosity=0)
        with tempfile.TemporaryDirectory() as folder:
            files = []
            for number in range(1000, 1000 + args.bulletins):
                path = Path(folder) / f"policy-{number}.txt"
                path.write_text(bulletin(number, args.rows), encoding="utf-8")
                files.append(str(path))
            print(
                f"{connection.vendor}: {args.bulletins} bulletins of {args.rows} CPT "
                f"rows, 2 ICD-10-CM ranges and 10 references"
            )

            def run(*extra):
                call_command("import_policy", *files, *extra, stdout=StringIO())

            print(f"{'step':<38} {'time':>10} {'x first':>7} {'rows changed':>12}")
            first = timed("import_policy, first import", run)
            print(
                f"  {Policy.objects.count()} policies, "
                f"{PolicyCode.objects.count()} code rows"
            )
            timed("import_policy again, same files", run, first, expect_none=True)
            timed(
                "import_policy --dry-run",
                lambda: run("--dry-run"),
                first,
                expect_none=True,
            )
            export = Path(folder) / "content.json"
            timed(
                "export_content",
                lambda: call_command("export_content", str(export), verbosity=0),
                first,
                expect_none=True,
            )
            print(f"  {export.stat().st_size / 1e6:.1f} MB")
            timed(
                "import_content of that export",
                lambda: call_command("import_content", str(export), verbosity=0),
                first,
                expect_none=True,
            )
    finally:
        if ON_SCRATCH:
            connection.close()
            SCRATCH.unlink(missing_ok=True)
        else:
            connection.creation.destroy_test_db(test_name, verbosity=0)


if __name__ == "__main__":
    main()
