"""
What the page cache's versions cost: a hit's version check, and the bumps after a
policy save whose range reaches ~40,000 codes (``S00.00X+ - T88.9XX+``).

Run: .venv/bin/python bench/page_cache.py [--tags 60] [--reached 40000] [--redis URL]

Both stores (carecodes/page_versions.py) in the same run: the memory-mapped version
file (a scratch file under /tmp) and, with --redis (e.g. redis://127.0.0.1:6379/5),
Redis under a scratch key prefix that is deleted afterwards. Prints medians of
--repeat runs in microseconds or milliseconds, and the ratio of Redis to the file.
The bump timed is what ``page_cache.index_refreshed`` does after such a save: build
the tags of every reached code and write them in one MSET (one locked write to the
file).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def median_time(work, repeat) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(store, tags, reached, repeat) -> dict:
    keys = store.keys(tags)
    stored = store.read(keys)
    codes = range(1_000_000, 1_000_000 + reached)
    return {
        "hit check": median_time(
            lambda: store.same(stored, store.read(keys)), repeat * 20
        ),
        "policy save bump": median_time(
            lambda: store.bump([f"cov:{pk}" for pk in codes]), repeat
        ),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tags", type=int, default=60, help="tags of one page")
    parser.add_argument("--reached", type=int, default=40_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--redis", help="a Redis URL to time as well")
    options = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="page-cache-bench-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carecodes.settings")
    os.environ["PAGE_CACHE_VERSIONS_DIR"] = scratch
    if options.redis:
        os.environ["REDIS_URL"] = options.redis
        os.environ["CACHE_KEY_PREFIX"] = f"page-cache-bench-{os.getpid()}"
    else:
        os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from carecodes import page_versions

    tags = [f"code:{pk}" for pk in range(options.tags)]
    results = {
        "file": measure(
            page_versions.FileVersions(Path(scratch) / "bench.versions"),
            tags,
            options.reached,
            options.repeat,
        )
    }
    if options.redis:
        store = page_versions.RedisVersions()
        try:
            results["redis"] = measure(store, tags, options.reached, options.repeat)
        finally:
            prefix = os.environ["CACHE_KEY_PREFIX"]
            for key in store._redis.scan_iter(f"{prefix}:*", count=10_000):
                store._redis.delete(key)

    print(f"{options.tags} tags a page, {options.reached:,} codes reached")
    print(f"{'':18}{'file':>12}{'redis':>12}{'redis/file':>12}")
    rows = (("hit check", "µs", 1e6), ("policy save bump", "ms", 1e3))
    for name, unit, scale in rows:
        file_time = results["file"][name]
        line = f"{name:18}{file_time * scale:>10.1f}{unit}"
        if "redis" in results:
            redis_time = results["redis"][name]
            line += f"{redis_time * scale:>10.1f}{unit}{redis_time / file_time:>12.1f}"
        print(line)


if __name__ == "__main__":
    main()
