"""
The suite needs nothing outside the clone: a user's `git clone` has no folder beside
it, and `make test` must pass there.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What the tests, benchmarks and build read at run time.
RUN_TIME_FILES = ["Makefile", ".ci/run", "scripts", "tests", "bench"]
# A path that climbs out of the repository to the project's source material.
OUTSIDE = re.compile(r"\.\./shared|[\"']shared[\"']|shared/(seeds|accept)")


def tracked_files():
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--", *RUN_TIME_FILES],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [ROOT / name for name in listed.split("\0") if name]


def test_no_test_benchmark_or_build_file_reads_the_shared_folder():
    readers = [
        str(path.relative_to(ROOT))
        for path in tracked_files()
        if path.suffix not in {".md", ".txt", ".xsd", ".rng", ".rnc", ".csv", ".json"}
        and path != Path(__file__)
        and OUTSIDE.search(path.read_text(encoding="utf-8", errors="replace"))
    ]
    assert readers == []


def test_the_acceptance_data_travels_with_its_provenance():
    sources = (ROOT / "tests" / "data" / "SOURCES.md").read_text()
    for path in (ROOT / "tests" / "data").rglob("*"):
        if path.is_file() and path.name != "SOURCES.md":
            assert f"`{path.name}`" in sources, path.name
    assert "MIT License" in sources
    assert "Copyright (c) 2019 Swissky" in sources


@pytest.fixture(scope="module")
def alone(tmp_path_factory):
    """A copy of the repository's files in a folder with nothing beside it."""
    alone = tmp_path_factory.mktemp("nothing-beside") / "carecodes"
    for path in [*tracked_files(), ROOT / "pyproject.toml", ROOT / "manage.py"]:
        target = alone / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    for folder in ("carecodes", "procedures", "policies", "templates", "static"):
        shutil.copytree(
            ROOT / folder, alone / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copytree(ROOT / "sample_data", alone / "sample_data")
    return alone


def pytest_in(folder, *arguments):
    environment = {**os.environ, "SECRET_KEY": "x" * 60, "PYTHONDONTWRITEBYTECODE": "1"}
    environment.pop("DATABASE_URL", None)
    environment.pop("REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *arguments],
        cwd=folder,
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
    )


def test_the_suite_collects_from_a_copy_of_the_repository_alone(alone):
    # Collecting imports every test module, so module-level reads of data files run.
    result = pytest_in(alone, "--collect-only", "-q")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # One line per test file with its count, and no collection error.
    assert "tests/test_policy_parsing.py: " in result.stdout
    assert "tests/test_sitemaps.py: " in result.stdout


def test_the_tests_that_read_data_files_pass_from_a_copy_alone(alone):
    result = pytest_in(
        alone,
        "tests/test_markdown.py",
        "tests/test_policy_parsing.py",
        "tests/test_sitemaps.py",
        "tests/test_search_hostile_input.py",
        "-k",
        "payload or xss or seed or schema or valid or byte",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout
    assert "skipped" not in result.stdout
