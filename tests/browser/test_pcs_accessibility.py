"""
ICD-10-PCS pages for everyone: axe-core (in Chromium) and the Nu HTML Checker find
nothing on a PCS code page, the system index and a table's browse page.
"""

import pytest
from django.core.management import call_command

from tests.test_html_validity import nu_errors

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = {
    "pcs-code": "/codes/icd-10-pcs/0SRC0J9/",
    "pcs-index": "/codes/icd-10-pcs/",
    "pcs-table": "/sections/icd-10-pcs/pcs-0sr/",
    "pcs-not-found": "/codes/icd-10-pcs/0SRC0J0/",
}


@pytest.fixture
def pcs_codes(db):
    call_command("import_icd10pcs", tables=["0SR"], verbosity=0)


@pytest.mark.parametrize("address", PAGES.values(), ids=PAGES.keys())
def test_axe_finds_no_violations_on_pcs_pages(pcs_codes, page, axe, shoot, address):
    response = page.goto(address)
    assert response.status == (404 if address.endswith("0SRC0J0/") else 200)
    shoot(page, "page")
    assert axe(page) == []


def test_the_nu_html_checker_finds_no_errors_on_pcs_pages(pcs_codes, client, tmp_path):
    files = []
    for name, address in PAGES.items():
        response = client.get(address)
        assert response.status_code == (404 if name == "pcs-not-found" else 200)
        path = tmp_path / f"{name}.html"
        path.write_bytes(response.content)
        files.append(path)
    assert nu_errors(files) == []
