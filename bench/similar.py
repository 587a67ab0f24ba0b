"""
Time ``rebuild_similar_codes`` on a full-size ICD-10-CM code set, old way and new.

Run: .venv/bin/python bench/similar.py [--codes 98000] [--keep] [--sample 5] [--no-old]

Builds a scratch database (a SQLite file under /tmp, or a test database on
DATABASE_URL's PostgreSQL server) holding about 98,000 ICD-10-CM codes with their
parent links: the real code set shipped inside the installed ``simple-icd-10-cm``
package when it is there (nothing is downloaded), otherwise a generated set of the same
shape (categories, subcategories, 7th characters, descriptor text). Then, in the same
run and on the same database, it times two full rebuilds of every list, each in a
process of its own so that its peak memory is its own:

- new: ``manage.py rebuild_similar_codes``, which scores all candidates in arrays
  (``similar.compute_all``);
- old: the way it was done before, one code at a time in Python
  (``similar.compute`` for each code, written through the same ``Writer``).

It checks that both store the same rows, then times the per-save refresh
(``similar.refresh``, as the change queue runs it after an admin save) for three kinds
of save, each on --sample codes drawn at random, with the sample data loaded (Aetna
policy 0198 and its write-up):

- a code edit (a new descriptor), a write-up published for a code, and a policy save
  (policy 0198's code table gets a row listing the code);
- cold: the cached corpus dropped first, so the refresh loads the whole corpus, as
  every refresh did before the cache;
- warm: the refresh brings the corpus this process keeps up to date (the rows that
  changed) and recomputes the lists the save touches.

Only the similar-codes refresh is timed (the change queue is held off while the rows
change; its search reindex is not part of the number). With --keep, a SQLite scratch
file is kept and reused by the next run.
"""

import argparse
import hashlib
import json
import os
import random
import resource
import statistics
import subprocess
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
from django.core.management.color import no_style  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from index import changes, similar  # noqa: E402
from index.models import SimilarCode  # noqa: E402
from policies.models import Policy, PolicyCode, PolicyCodeGroup  # noqa: E402
from procedures import codes  # noqa: E402
from procedures.models import Code, Procedure, PublicationStatus  # noqa: E402

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
    # The ids were given: PostgreSQL's sequence must move past them before the
    # sample data adds codes of its own.
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), [Code]):
            cursor.execute(sql)
    return len(objects), source


def edit_code(code_id, _rng):
    code = Code.objects.get(pk=code_id)
    Code.objects.filter(pk=code_id).update(descriptor=code.descriptor + ", revised")
    return [code_id], []


WRITEUP = (
    "Exercises and splinting after the injury",
    "A therapist shows the patient exercises that bring back strength and movement, "
    "and fits a splint when needed.",
)


def publish_writeup(code_id, _rng):
    Procedure.objects.filter(code_id=code_id).delete()
    title, summary = WRITEUP
    Procedure.objects.create(
        code_id=code_id,
        title=title,
        summary=summary,
        status=PublicationStatus.PUBLISHED,
    )
    return [code_id], []


def save_policy(code_id, rng):
    policy = Policy.objects.get(number="0198")
    group = PolicyCodeGroup.objects.filter(policy=policy, system=ICD).first()
    PolicyCode.objects.create(
        group=group,
        start_code=Code.objects.get(pk=code_id).code,
        position=rng.randrange(100, 30_000),
    )
    return [], [policy.pk]


SAVES = {
    "code edit": edit_code,
    "write-up publish": publish_writeup,
    "policy save": save_policy,
}


def per_save(corpus, size):
    """Times the refresh after each kind of save, cold and warm (see the module)."""
    rng = random.Random(1)
    icd_ids = corpus.ids[ICD.value]
    held = changes.note
    changes.note = lambda *args, **kwargs: None  # only the refresh is timed
    print(
        f"per-save refresh (similar.refresh; {size} saves of each kind, codes drawn "
        "at random): cold = the corpus loaded again first, as every refresh did "
        "before the cache; warm = the cached corpus brought up to date"
    )
    worst = 0.0
    try:
        for name, save in SAVES.items():
            cold, warm, warm_cpu, redone = [], [], [], []
            for _ in range(size):
                code_ids, policy_ids = save(rng.choice(icd_ids), rng)
                similar.forget()
                started = time.perf_counter()
                similar.refresh(code_ids, policy_ids)
                cold.append(time.perf_counter() - started)
                code_ids, policy_ids = save(rng.choice(icd_ids), rng)
                started, cpu = time.perf_counter(), time.process_time()
                redone.append(similar.refresh(code_ids, policy_ids))
                warm.append(time.perf_counter() - started)
                warm_cpu.append(time.process_time() - cpu)
            median_cold, median_warm = statistics.median(cold), statistics.median(warm)
            worst = max(worst, max(warm))
            print(
                f"  {name}: cold median {median_cold:.2f} s, max {max(cold):.2f} s; "
                f"warm median {median_warm * 1000:.0f} ms, max {max(warm) * 1000:.0f} "
                f"ms ({median_cold / median_warm:.0f}x faster; this process's CPU "
                f"median {statistics.median(warm_cpu) * 1000:.0f} ms, max "
                f"{max(warm_cpu) * 1000:.0f} ms); lists redone per save: median "
                f"{statistics.median(redone):.0f}, max {max(redone)}; load average "
                f"{os.getloadavg()[0]:.1f}"
            )
    finally:
        changes.note = held
    print(
        f"goal 200 ms per save, warm: the slowest used {worst / 0.2:.0%} (load "
        f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )


def rebuild_old():
    """Every ICD-10-CM list, one code at a time: the rebuild before the arrays."""
    corpus = similar.Corpus.load()
    with transaction.atomic():
        SimilarCode.objects.all().delete()
        writer = similar.Writer()
        for code_id in corpus.ids[ICD.value]:
            writer.add(code_id, similar.compute(corpus, code_id))
        writer.flush()


def child(way):
    """Runs one rebuild in this process; prints its time and a digest of the rows."""
    started, cpu = time.perf_counter(), time.process_time()
    if way == "new":
        call_command("rebuild_similar_codes", "--system", ICD.value, verbosity=0)
    else:
        rebuild_old()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    digest = hashlib.sha256()
    rows = SimilarCode.objects.order_by("code_id", "rank").values_list(
        "code_id", "similar_id", "rank", "score", "reasons"
    )
    count = 0
    for row in rows.iterator(chunk_size=20_000):
        digest.update(repr(row).encode())
        count += 1
    report = {"seconds": seconds, "cpu": cpu, "rows": count}
    print(json.dumps(report | {"digest": digest.hexdigest()}))


def timed_child(way):
    """
    One rebuild in a child process: (its report, its peak memory in MB). Next to the
    wall time, the report gives the rebuild's CPU time (user and system, which other
    work on the machine does not lengthen as it does the wall time; on PostgreSQL the
    server's own work is not in it), the whole child's (start-up and the digest of
    the rows included) and the load average it ran under.
    """
    # Each starts from an empty table, so neither pays for deleting the other's rows.
    SimilarCode.objects.all().delete()
    connection.close()
    env = dict(os.environ)
    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        # The child works on this run's test database, not the one named outside.
        env["DATABASE_URL"] = (
            f"postgres://{settings['USER']}:{settings['PASSWORD'] or ''}@"
            f"{settings['HOST'] or ''}:{settings['PORT'] or 5432}/{settings['NAME']}"
        )
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", way], env=env, stdout=subprocess.PIPE
    )
    output = process.stdout.read()
    _pid, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"the {way} rebuild failed (status {status})")
    report = json.loads(output.decode().strip().splitlines()[-1])
    report["child_cpu"] = usage.ru_utime + usage.ru_stime
    report["load"] = os.getloadavg()[0]
    return report, usage.ru_maxrss / 1024


def cpu_note(report):
    return (
        f"CPU {report['cpu']:.1f} s (user and system; the whole child "
        f"{report['child_cpu']:.1f} s), load average {report['load']:.1f} on "
        f"{os.cpu_count()} cores"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codes", type=int, default=98_000)
    parser.add_argument(
        "--sample",
        type=int,
        default=5,
        help="codes on which the per-save refresh is timed",
    )
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--no-old", action="store_true", help="skip the one-code-at-a-time rebuild"
    )
    parser.add_argument("--child", choices=["new", "old"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

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
        call_command("load_sample_data", verbosity=0)
        print(
            f"{vendor}: {count:,} ICD-10-CM codes from {source}, and the sample "
            f"data, ready in "
            f"{time.perf_counter() - started:.1f} s"
        )

        started = time.perf_counter()
        corpus = similar.Corpus.load()
        load = time.perf_counter() - started
        print(f"load corpus (codes, policies, TF-IDF model): {load:.1f} s")

        new, new_memory = timed_child("new")
        print(
            f"new, in arrays (rebuild_similar_codes): {new['seconds']:.1f} s wall, "
            f"{cpu_note(new)}, {count / new['seconds']:,.0f} codes/s, peak memory "
            f"{new_memory:,.0f} MB, {new['rows']:,} rows written "
            f"({new['rows'] / count:.1f} per code)"
        )
        if not args.no_old:
            old, old_memory = timed_child("old")
            same = "the same rows"
            if old["digest"] != new["digest"]:
                same = "DIFFERENT rows"
            print(
                f"old, one code at a time: {old['seconds']:.1f} s wall, "
                f"{cpu_note(old)}, {count / old['seconds']:,.0f} codes/s, peak memory "
                f"{old_memory:,.0f} MB, {old['rows']:,} rows written"
            )
            print(
                f"new / old: {new['seconds'] / old['seconds']:.0%} of the time "
                f"({old['seconds'] / new['seconds']:.1f}x faster), {same}"
            )
        print(
            f"goal 60 s, used {new['seconds'] / 60:.0%} of it in wall time, "
            f"{new['cpu'] / 60:.0%} in CPU time"
        )

        per_save(corpus, args.sample)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"this process's peak memory, the cached corpus included: {peak:,.0f} MB")
    finally:
        if test_name is not None:
            connection.creation.destroy_test_db(test_name, verbosity=0)


if __name__ == "__main__":
    main()
