"""
Time the document importers and the content backup on many bulletins.

Run: .venv/bin/python bench/documents.py [--bulletins 200] [--rows 60]

Builds a scratch database (a SQLite file under /tmp, or a test database on
DATABASE_URL's PostgreSQL server), writes generated bulletins in the seed's layout
(CPT rows, ICD-10-CM 7th-character ranges, add-on rows, references), and times:
the first import of all of them (the baseline), a second import of the same files
(which must write nothing), a dry run, export_content, and import_content of that
export into the same database (which must write nothing). Ratios are against the
first import in the same run.
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
SCRATCH = Path("/tmp/carecodes-bench-documents.sqlite3")
ON_SCRATCH = not os.environ.get("DATABASE_URL")
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


def timed(label, function, baseline=None):
    start = time.perf_counter()
    function()
    seconds = time.perf_counter() - start
    ratio = f"  ({seconds / baseline:.2f}x the first import)" if baseline else ""
    print(f"{label:<44} {seconds:8.3f} s{ratio}")
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bulletins", type=int, default=200)
    parser.add_argument("--rows", type=int, default=60)
    args = parser.parse_args()

    if ON_SCRATCH:
        SCRATCH.unlink(missing_ok=True)
    else:
        test_name = connection.creation.create_test_db(verbosity=0, keepdb=False)
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

            first = timed("import_policy, first import", run)
            print(
                f"  {Policy.objects.count()} policies, "
                f"{PolicyCode.objects.count()} code rows"
            )
            timed("import_policy again (writes nothing)", run, first)
            timed("import_policy --dry-run", lambda: run("--dry-run"), first)
            export = Path(folder) / "content.json"
            timed(
                "export_content",
                lambda: call_command("export_content", str(export), verbosity=0),
                first,
            )
            print(f"  {export.stat().st_size / 1e6:.1f} MB")
            timed(
                "import_content of that export (writes nothing)",
                lambda: call_command("import_content", str(export), verbosity=0),
                first,
            )
    finally:
        if not ON_SCRATCH:
            connection.creation.destroy_test_db(test_name, verbosity=0)


if __name__ == "__main__":
    main()
