"""
Every kind of public page is valid HTML by the Nu HTML Checker (vnu.jar).

vnu.jar comes from the npm package vnu-jar (``make browser-tools``) and runs with the
machine's Java; the test fails, never skips, without them.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from policies.models import Payer, Policy, PolicyStatus

pytestmark = pytest.mark.django_db

VNU = Path(__file__).resolve().parents[1] / "node_modules/vnu-jar/build/dist/vnu.jar"
PAGES = {
    "home": ("/", 200),
    "search-results": ("/search/?q=work+hardening", 200),
    "search-misspelt": ("/search/?q=work+hardning", 200),
    "search-refused": ("/search/?q=" + "x" * 300, 400),
    "code": ("/codes/cpt/97546/", 200),
    "code-without-write-up": ("/codes/icd-10-cm/S52.501A/", 200),
    "policy": ("/policies/aetna/0198/", 200),
    "payer": ("/payers/aetna/", 200),
    "similar-codes": ("/codes/cpt/97546/similar/", 200),
    "section": ("/sections/cpt/physical-medicine-and-rehabilitation/", 200),
    "chapter": ("/sections/icd-10-cm/chapter-19/", 200),
    "a-z-index": ("/codes/", 200),
    "not-found": ("/codes/cpt/97547/", 404),
    "withdrawn-policy": ("/policies/aetna/0001/", 410),
}


def nu_errors(paths) -> list[str]:
    """The Nu HTML Checker's errors in ``paths``, as ``name:line: message``."""
    java = shutil.which("java")
    if java is None or not VNU.exists():
        pytest.fail(
            "The Nu HTML Checker needs Java and vnu.jar: run `make browser-tools`."
        )
    checked = subprocess.run(
        [java, "-jar", str(VNU), "--format", "json", "--errors-only", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(checked.stderr)
    errors = [
        f"{Path(message['url']).stem}:{message.get('lastLine')}: {message['message']}"
        for message in report["messages"]
    ]
    if checked.returncode and not errors:
        errors.append(f"vnu.jar exited with {checked.returncode}: {checked.stderr}")
    return errors


def test_the_nu_html_checker_finds_no_errors(client, sample_data, tmp_path):
    Policy.objects.create(
        payer=Payer.objects.get(slug="aetna"),
        number="0001",
        title="An Old Bulletin",
        status=PolicyStatus.WITHDRAWN,
    )
    files = []
    for name, (address, status) in PAGES.items():
        response = client.get(address)
        assert response.status_code == status, address
        path = tmp_path / f"{name}.html"
        path.write_bytes(response.content)
        files.append(path)
    # Empty only when vnu.jar also exits with 0.
    assert nu_errors(files) == []


def test_the_checker_would_report_an_error(tmp_path):
    """The test above can fail: vnu.jar reports a broken page."""
    broken = tmp_path / "broken.html"
    broken.write_text("<!doctype html><html lang=en><title>x</title><p><div></span>")
    checked = subprocess.run(
        ["java", "-jar", str(VNU), "--format", "json", "--errors-only", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert json.loads(checked.stderr)["messages"]
    assert checked.returncode != 0
