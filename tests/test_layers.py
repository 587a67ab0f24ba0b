"""
The layers of the design, checked by a tool rather than by memory: codes <- content
(procedures, policies) <- index <- pages, with the project's settings and URLs on top.
The contracts are in ``.importlinter``; import-linter reads the imports of every module.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("carecodes", "procedures", "policies", "index")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(where: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(where)},
    )


def copy_of_the_code(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            tmp_path / package,
            ignore=shutil.ignore_patterns("__pycache__", "migrations"),
        )
    shutil.copy(ROOT / ".importlinter", tmp_path)
    return tmp_path


def test_every_layer_contract_is_kept():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    "module, added, broken",
    [
        (
            "procedures/models.py",
            "from index import similar",
            "Content (procedures, policies) never imports the index",
        ),
        (
            "policies/importing.py",
            "import index.changes",
            "Content (procedures, policies) never imports the index",
        ),
        (
            "index/changes.py",
            "from procedures import views",
            "The index imports content and codes, never a page",
        ),
        (
            "procedures/codes.py",
            "from django.db import models",
            "Code rules (procedures.codes) are plain Python",
        ),
        (
            "carecodes/markdown.py",
            "from procedures import models",
            "Helpers every layer shares",
        ),
    ],
)
def test_an_import_across_the_layers_fails_the_check(tmp_path, module, added, broken):
    tree = copy_of_the_code(tmp_path)
    path = tree / module
    path.write_text(path.read_text() + f"\n{added}  # noqa\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert f"{broken}" in result.stdout
    assert "BROKEN" in result.stdout
