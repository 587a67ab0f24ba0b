"""import_icd10cm: the official ICD-10-CM list, loaded from real package data in slices.

The full set takes half a minute; these tests load a few categories of the real
FY2026 data (bench/import_icd10cm.py times the whole list).
"""

import os
import subprocess
import sys
import textwrap
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from lxml import html

from policies.models import PolicyCode
from procedures import codes
from procedures.codesets import icd10cm
from procedures.models import Code, CodeSection
from procedures.signals import codes_bulk_saved

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
SLICE = "S52,Z47,B10,C7A"


def import_slice(categories=SLICE, **options):
    out = StringIO()
    call_command(
        "import_icd10cm", categories=categories.split(","), stdout=out, **options
    )
    return out.getvalue()


def page(client, address):
    response = client.get(address)
    assert response.status_code == 200, address
    return html.fromstring(response.content)


def test_a_slice_creates_codes_with_their_official_descriptors_and_notes():
    import_slice(verbosity=0)
    code = Code.objects.get(system="icd-10-cm", code="S52.501A")
    assert code.descriptor == (
        "Unspecified fracture of the lower end of right radius, initial encounter "
        "for closed fracture"
    )
    assert (code.code_set_year, code.source, code.is_billable) == (
        2026,
        "ICD-10-CM FY2026",
        True,
    )
    category = Code.objects.get(system="icd-10-cm", code="S52")
    assert category.descriptor == "Fracture of forearm"
    assert category.notes["excludes1"] == ["traumatic amputation of forearm (S58.-)"]
    assert "fracture at wrist and hand level (S62.-)" in category.notes["excludes2"]
    assert (
        "A: initial encounter for closed fracture"
        in (category.notes["seventh_characters"])
    )
    assert Code.objects.get(code="S52.5").notes == {
        "inclusion_terms": ["Fracture of distal end of radius"],
        "excludes2": ["physeal fractures of lower end of radius (S59.2-)"],
    }


def test_b10_and_c7a_are_both_a_block_and_a_category():
    import_slice(verbosity=0)
    for name, descriptor in [
        ("B10", "Other human herpesviruses"),
        ("C7A", "Malignant neuroendocrine tumors"),
    ]:
        block = CodeSection.objects.get(
            system="icd-10-cm", slug=f"{name.lower()}-{name.lower()}"
        )
        assert (block.kind, block.name, block.start_code, block.end_code) == (
            "block",
            descriptor,
            name,
            name,
        )
        category = Code.objects.get(system="icd-10-cm", code=name)
        assert category.descriptor == descriptor
        assert not category.is_billable
        assert category.section == block
        assert category.children.exists()
    assert Code.objects.get(code="B10.0").parent.code == "B10"


def test_seventh_character_codes_hang_under_their_subcategory():
    import_slice(verbosity=0)
    subcategory = Code.objects.get(system="icd-10-cm", code="S52.501")
    assert not subcategory.is_billable
    children = list(subcategory.children.order_by("sort_key"))
    assert [child.code[-1] for child in children] == list("ABCDEFGHJKMNPQRS")
    assert all(child.is_billable for child in children)
    assert Code.objects.get(code="S52.501D").descriptor.endswith(
        "subsequent encounter for closed fracture with routine healing"
    )
    chain, node = [], subcategory
    while node:
        chain.append(node.code)
        node = node.parent
    assert chain == ["S52.501", "S52.50", "S52.5", "S52"]


def test_chapters_and_blocks_keep_the_sample_data_slugs(sample_data):
    import_slice(verbosity=0)
    chapter = CodeSection.objects.get(system="icd-10-cm", slug="chapter-19")
    block = CodeSection.objects.get(system="icd-10-cm", slug="s50-s59")
    assert block.parent == chapter
    assert chapter.name == (
        "Injury, poisoning and certain other consequences of external causes"
    )
    assert not CodeSection.objects.filter(slug__in=["S50-S59", "19"]).exists()


def test_blocks_nest_as_the_tabular_list_orders_them():
    import_slice("C00,C7A,C76,D3A,D37", verbosity=0)
    parents = dict(
        CodeSection.objects.filter(system="icd-10-cm").values_list(
            "slug", "parent__slug"
        )
    )
    assert parents["c00-c14"] == "c00-c75"
    assert parents["c00-c75"] == "c00-c96"
    # C7A sorts inside C76-C80 but is listed before it, under C00-C96.
    assert parents["c7a-c7a"] == "c00-c96"
    assert parents["c76-c80"] == "c00-c96"
    sections = dict(
        Code.objects.filter(
            code__in=["C7A.00", "C76.0", "D3A.00", "D37.01"]
        ).values_list("code", "section__slug")
    )
    assert sections == {
        "C7A.00": "c7a-c7a",
        "C76.0": "c76-c80",
        "D3A.00": "d3a-d3a",
        "D37.01": "d37-d48",
    }
    for code in Code.objects.filter(code__in=sections):
        assert code.section == code.find_section()


def test_sort_keys_and_sections_are_what_save_would_set(sample_data):
    import_slice(verbosity=0)
    for code in Code.objects.filter(system="icd-10-cm").order_by("?")[:200]:
        assert code.sort_key == codes.sort_key(code.system, code.code)
        assert code.section == code.find_section(), code.code


def test_a_second_import_changes_nothing_not_even_timestamps(sample_data):
    import_slice(verbosity=0)
    before = list(Code.objects.order_by("pk").values_list())
    sections = list(CodeSection.objects.order_by("pk").values_list())
    summary = import_slice()
    assert "0 codes created, 0 updated" in summary
    assert "0 sections created, 0 updated" in summary
    assert list(Code.objects.order_by("pk").values_list()) == before
    assert list(CodeSection.objects.order_by("pk").values_list()) == sections


def test_loading_the_sample_data_after_the_import_changes_nothing(sample_data):
    import_slice(verbosity=0)
    before = list(Code.objects.order_by("pk").values_list())
    out = StringIO()
    call_command("load_sample_data", stdout=out, seeds_only=True)
    assert "0 rows created, 0 updated" in out.getvalue()
    assert list(Code.objects.order_by("pk").values_list()) == before


def test_a_code_a_bulletin_listed_first_gets_the_official_descriptor():
    Code.objects.create(
        system="icd-10-cm",
        code="Z47.1",
        descriptor="Aftercare after joint replacement (as the bulletin words it)",
        source="Aetna CPB 0198",
    )
    import_slice("Z47", verbosity=0)
    code = Code.objects.get(system="icd-10-cm", code="Z47.1")
    assert code.descriptor == "Aftercare following joint replacement surgery"
    assert (code.source, code.code_set_year) == ("ICD-10-CM FY2026", 2026)
    assert code.parent.code == "Z47"


def test_the_written_codes_are_announced_once_committed(
    django_capture_on_commit_callbacks,
):
    received = []

    def receiver(sender, system, ids, **kwargs):
        received.append((system, set(ids)))

    codes_bulk_saved.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            import_slice("C7A", verbosity=0)
        with django_capture_on_commit_callbacks(execute=True):
            import_slice("C7A", verbosity=0)
    finally:
        codes_bulk_saved.disconnect(receiver)
    stored = set(Code.objects.filter(system="icd-10-cm").values_list("pk", flat=True))
    # The second, unchanged import writes nothing and so announces nothing.
    assert received == [("icd-10-cm", stored)]


def test_an_unknown_category_is_refused_and_nothing_is_saved():
    with pytest.raises(CommandError) as error:
        import_slice("S52,Z99.1,ZZ9", verbosity=0)
    assert "Z99.1 is not a category" in str(error.value)
    assert "ZZ9" in str(error.value)
    assert not Code.objects.exists()
    assert not CodeSection.objects.exists()


def test_the_full_import_is_skipped_when_the_year_is_loaded(monkeypatch):
    import_slice("C7A", verbosity=0)
    loaded = Code.objects.filter(system="icd-10-cm").count()
    monkeypatch.setattr(icd10cm, "FULL_SET_CODES", loaded)
    out = StringIO()
    call_command("import_icd10cm", stdout=out)
    assert "already loaded" in out.getvalue()


def test_imported_codes_get_pages_and_sections_browse_pages(client):
    import_slice(verbosity=0)
    tree = page(client, "/codes/icd-10-cm/S52.501A/")
    assert tree.xpath("//h1")[0].text_content().startswith("Unspecified fracture")
    block = page(client, "/sections/icd-10-cm/b10-b10/")
    assert "/codes/icd-10-cm/B10.81/" in block.xpath("//main//a/@href")
    chapter = page(client, "/sections/icd-10-cm/chapter-19/")
    assert "/sections/icd-10-cm/s50-s59/" in chapter.xpath("//main//a/@href")


def test_policy_0198_is_found_from_an_imported_code_in_its_range(client, sample_data):
    import_slice("S52", verbosity=0)
    code = Code.objects.get(system="icd-10-cm", code="S52.521A")
    assert [m.policy.number for m in PolicyCode.objects.mentions_of(code)] == ["0198"]
    tree = page(client, code.get_absolute_url())
    rows = tree.xpath("//table[contains(@class,'policy-table')]/tbody/tr")
    assert "Through the range S00.00X+ - T88.9XX+" in rows[0].text_content()


def test_a_code_page_shows_the_codes_above_and_the_official_notes(client):
    import_slice("S52", verbosity=0)
    tree = page(client, "/codes/icd-10-cm/S52.501A/")
    assert tree.xpath("//nav[@class='code-lineage']//a/@href") == [
        "/codes/icd-10-cm/S52/",
        "/codes/icd-10-cm/S52.5/",
        "/codes/icd-10-cm/S52.50/",
        "/codes/icd-10-cm/S52.501/",
    ]
    assert not tree.xpath("//*[@class='billable-note']")
    category = page(client, "/codes/icd-10-cm/S52/")
    headings = category.xpath("//section[@class='official-notes']/h3/text()")
    assert "Excludes1: never coded together with this code" in headings
    assert "7th characters" in headings
    assert "traumatic amputation of forearm (S58.-)" in category.text_content()


def test_a_code_that_is_not_billable_says_so_and_links_its_children(client):
    import_slice("S52", verbosity=0)
    tree = page(client, "/codes/icd-10-cm/S52.501/")
    note = " ".join(tree.xpath("//*[@class='billable-note']")[0].text_content().split())
    assert note.startswith("Not billable: use a more specific code.")
    links = tree.xpath("//section[@class='child-codes']//a/@href")
    assert len(links) == 16
    assert links[0] == "/codes/icd-10-cm/S52.501A/"


def test_a_code_page_costs_one_more_query_only_when_it_lists_children(
    client, django_assert_num_queries
):
    import_slice("S52", verbosity=0)
    # A billable code costs what test_code_page pins; the child list is one query.
    with django_assert_num_queries(9):
        client.get(reverse("procedures:code", args=["icd-10-cm", "S52.501A"]))
    with django_assert_num_queries(10):
        client.get(reverse("procedures:code", args=["icd-10-cm", "S52.501"]))


def test_codes_and_sections_three_blocks_deep_cost_no_extra_query(
    client, django_assert_num_queries
):
    import_slice("C00", verbosity=0)
    with django_assert_num_queries(9):
        response = client.get("/codes/icd-10-cm/C00.0/")
    crumbs = html.fromstring(response.content).xpath("//nav[@aria-label]//a/text()")
    assert "Malignant neoplasms of lip, oral cavity and pharynx" in crumbs
    # Its codes' lay phrases are one query (procedures/templatetags/lay_phrases.py).
    with django_assert_num_queries(5):
        client.get("/sections/icd-10-cm/c00-c14/")
    # No list is stored after a bulk import: the code, its (empty) list and the
    # neighbours either side, whatever the depth of its sections.
    with django_assert_num_queries(4):
        response = client.get("/codes/icd-10-cm/C00.0/similar/")
    crumbs = html.fromstring(response.content).xpath("//nav[@aria-label]//a/text()")
    assert "Malignant neoplasms of lip, oral cavity and pharynx" in crumbs


WEB_PROCESS = textwrap.dedent(
    """
    import sys
    import django
    django.setup()
    from django.conf import settings
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    settings.WHITENOISE_USE_FINDERS = True
    from django.core.management import call_command
    call_command("migrate", verbosity=0)
    call_command("load_sample_data", verbosity=0)
    import carecodes.urls, carecodes.wsgi
    import procedures.management.commands.import_icd10cm
    from django.test import Client
    status = Client().get("/codes/icd-10-cm/S52.501A/").status_code
    print(status, "simple_icd_10_cm" in sys.modules)
    """
)


def test_web_processes_never_load_the_code_set_package(tmp_path):
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "carecodes.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'web.sqlite3'}",
        "ALLOWED_HOSTS": "testserver",
    }
    environment.pop("REDIS_URL", None)
    finished = subprocess.run(
        [sys.executable, "-c", WEB_PROCESS],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.split()[-2:] == ["200", "False"]
