"""The code page: a write-up, its add-on relationship and the policies naming it."""

import json

import pytest
from django.urls import reverse
from lxml import html

from procedures.models import Code, Procedure, PublicationStatus

pytestmark = pytest.mark.django_db

SEED_SECTION_HEADINGS = [
    "Summary",
    "Purpose",
    "Indications",
    "Preparation",
    "Procedure description",
    "Duration",
    "Setting",
    "Personnel",
    "Risks and complications",
    "Benefits",
    "Recovery",
    "Alternatives",
    "Patient experience",
]


def page(response):
    assert response.status_code == 200
    return html.fromstring(response.content)


def text_of(tree, xpath):
    return " ".join(" ".join(node.itertext()) for node in tree.xpath(xpath)).split()


def test_the_write_up_shows_every_seed_section_in_order(client, sample_data):
    tree = page(client.get("/codes/cpt/97546/"))
    headings = [" ".join(h.itertext()).strip() for h in tree.xpath("//main//h2")]
    writeup = [h for h in headings if h in SEED_SECTION_HEADINGS]
    assert writeup == SEED_SECTION_HEADINGS
    assert tree.xpath("//h1")[0].text_content().strip() == (
        "Work Hardening/Conditioning; Each Additional Hour"
    )
    assert len(tree.xpath("//h1")) == 1
    body = tree.text_content()
    assert "Wear comfortable clothing suitable for physical activity." in body
    assert "Progress Monitoring" in body


def test_an_add_on_code_says_which_code_it_is_billed_with(client, sample_data):
    tree = page(client.get("/codes/cpt/97546/"))
    note = " ".join(text_of(tree, "//*[@class='addon-note']"))
    assert "billed with 97545" in note
    assert tree.xpath("//*[@class='addon-note']//a/@href") == ["/codes/cpt/97545/"]


def test_the_primary_code_lists_its_add_on(client, sample_data):
    tree = page(client.get("/codes/cpt/97545/"))
    assert "/codes/cpt/97546/" in tree.xpath("//*[@class='addon-note']//a/@href")


def test_the_aetna_policy_is_listed_as_not_covered(client, sample_data):
    tree = page(client.get("/codes/cpt/97546/"))
    rows = tree.xpath("//table[contains(@class,'policy-table')]/tbody/tr")
    assert len(rows) == 1
    cells = [" ".join(td.text_content().split()) for td in rows[0].xpath("td")]
    assert cells[0] == "Aetna"
    assert cells[1] == "0198: Work Hardening Programs"
    assert cells[2] == "Not covered"
    assert cells[4] == "Listed by itself"
    assert rows[0].xpath(".//a/@href")[1] == "/policies/aetna/0198/"
    assert "does not by itself decide coverage" in tree.text_content()


def test_a_diagnosis_reached_only_through_a_range_names_the_range(client, sample_data):
    tree = page(client.get("/codes/icd-10-cm/S52.501A/"))
    rows = tree.xpath("//table[contains(@class,'policy-table')]/tbody/tr")
    assert len(rows) == 1
    how = " ".join(rows[0].xpath("td")[4].text_content().split())
    assert how == "Through the range S00.00X+ - T88.9XX+"


def test_a_code_without_a_write_up_still_has_a_page(client, sample_data):
    tree = page(client.get("/codes/hcpcs/S9117/"))
    assert tree.xpath("//h1")[0].text_content().strip() == "Back school, per visit"
    assert "no plain-language write-up" in tree.text_content()
    assert tree.xpath("//table[contains(@class,'policy-table')]/tbody/tr")


def test_a_draft_write_up_is_not_shown(client, sample_data):
    Procedure.objects.filter(code__code="97546").update(status=PublicationStatus.DRAFT)
    tree = page(client.get("/codes/cpt/97546/"))
    assert "Wear comfortable clothing" not in tree.text_content()
    assert "no plain-language write-up" in tree.text_content()


def test_neighbouring_codes_in_the_section_are_linked(client, sample_data):
    tree = page(client.get("/codes/cpt/97546/"))
    links = tree.xpath("//section[contains(@class,'neighbours')]//a/@href")
    assert "/codes/cpt/97545/" in links
    assert "/codes/cpt/97537/" in links
    assert "/codes/cpt/97546/" not in links


def test_pages_with_cpt_descriptors_carry_the_ama_notice(client, sample_data, settings):
    settings.CPT_COPYRIGHT_YEAR = 2026
    body = client.get("/codes/cpt/97546/").content.decode()
    assert "CPT © 2026 American Medical Association. All rights reserved." in body
    other = client.get("/codes/icd-10-cm/S52.501A/").content.decode()
    assert "American Medical Association" not in other


@pytest.mark.parametrize(
    ("asked", "canonical"),
    [
        ("/codes/icd-10-cm/s52501a/", "/codes/icd-10-cm/S52.501A/"),
        ("/codes/icd-10-cm/S52501A/", "/codes/icd-10-cm/S52.501A/"),
        ("/codes/icd-10-cm/s52.501a/", "/codes/icd-10-cm/S52.501A/"),
        ("/codes/CPT/97546/", "/codes/cpt/97546/"),
        ("/codes/hcpcs/s9117/", "/codes/hcpcs/S9117/"),
        ("/codes/cpt/97546", "/codes/cpt/97546/"),
    ],
)
def test_code_variants_redirect_permanently_to_the_canonical_address(
    client, sample_data, asked, canonical
):
    response = client.get(asked)
    assert response.status_code == 301
    assert response["Location"] == canonical


@pytest.mark.parametrize(
    "address",
    [
        "/codes/cpt/99999/",
        "/codes/cpt/9754/",
        "/codes/icd-10-cm/S52.501AA/",
        "/codes/nonsense/97546/",
        "/codes/cpt/%3Cscript%3E/",
    ],
)
def test_unknown_or_malformed_codes_get_a_helpful_404(client, sample_data, address):
    response = client.get(address)
    assert response.status_code == 404
    tree = html.fromstring(response.content)
    assert tree.xpath("//form[@role='search']")
    assert b"<script>" not in response.content


def test_the_page_declares_structured_data(client, sample_data):
    tree = page(client.get("/codes/cpt/97546/"))
    data = json.loads(tree.xpath("//script[@type='application/ld+json']")[0].text)
    assert data["@type"] == "MedicalWebPage"
    assert data["about"]["@type"] == "MedicalProcedure"
    assert data["about"]["code"] == {
        "@type": "MedicalCode",
        "codeValue": "97546",
        "codingSystem": "CPT",
        "name": Code.objects.get(code="97546").descriptor,
        "inCodeSet": {
            "@type": "CategoryCodeSet",
            "name": "CPT",
            "identifier": "urn:oid:2.16.840.1.113883.6.12",
        },
    }
    assert data["breadcrumb"]["@type"] == "BreadcrumbList"
    canonical = tree.xpath("//link[@rel='canonical']/@href")[0]
    assert canonical == "http://testserver/codes/cpt/97546/"


def test_the_canonical_address_drops_the_query_string(client, sample_data):
    tree = page(client.get("/codes/cpt/97546/?utm_source=mail"))
    assert tree.xpath("//link[@rel='canonical']/@href") == [
        "http://testserver/codes/cpt/97546/"
    ]


def test_the_code_page_costs_a_fixed_number_of_queries(
    client, sample_data, django_assert_num_queries
):
    # 9: the code, its primary and add-on codes, the policies naming it, the codes
    # before and after it, its top similar codes (one query, stored or not), the
    # policy versions that changed its coverage (policies.versions), and the
    # phrases people use for it (procedures.lay_terms.also_called).
    with django_assert_num_queries(9):
        client.get(reverse("procedures:code", args=["cpt", "97546"]))
    with django_assert_num_queries(9):
        client.get(reverse("procedures:code", args=["icd-10-cm", "S52.501A"]))


@pytest.mark.parametrize(
    "address",
    ["/codes/icd-10-cm/Z85.%00/", "/policies/aetna/0198%00/", "/search/?q=%00"],
)
def test_a_nul_character_in_the_address_gets_a_clear_400(client, sample_data, address):
    response = client.get(address)
    assert response.status_code == 400
    tree = html.fromstring(response.content)
    assert "can’t use" in tree.text_content()
    assert tree.xpath("//main//form[@role='search']")


def test_a_write_up_has_a_review_line_and_a_bare_code_has_none(client, sample_data):
    tree = page(client.get("/codes/cpt/97546/"))
    assert tree.xpath("//p[@class='review-line']")
    # The official descriptor alone was never a clinician's to review.
    tree = page(client.get("/codes/hcpcs/S9117/"))
    assert not tree.xpath("//p[@class='review-line']")
    assert "Not yet reviewed" not in tree.text_content()


def test_a_reviewed_write_up_says_when_and_by_whom(client, sample_data):
    Procedure.objects.filter(code__code="97546").update(
        reviewed_on="2026-10-01", reviewed_by="Dana Reyes, OTR/L"
    )
    tree = page(client.get("/codes/cpt/97546/"))
    line = " ".join(tree.xpath("//p[@class='review-line']")[0].text_content().split())
    assert line == "Last reviewed 1 October 2026 by Dana Reyes, OTR/L."


def test_staff_text_cannot_break_out_of_the_structured_data(client, sample_data):
    Procedure.objects.filter(code__code="97546").update(
        title="Work hardening</script><script>alert(1)</script>"
    )
    response = client.get("/codes/cpt/97546/")
    body = response.content.decode()
    assert "<script>alert(1)</script>" not in body
    tree = html.fromstring(response.content)
    # Inline scripts only: the autocomplete is a static file loaded by src.
    scripts = tree.xpath("//script[not(@src)]")
    assert [script.get("type") for script in scripts] == ["application/ld+json"]
    data = json.loads(scripts[0].text)
    assert data["name"] == "Work hardening</script><script>alert(1)</script>"


def test_an_edited_section_shows_on_the_page_once_saved(client, sample_data):
    procedure = Procedure.objects.get(code__code="97546")
    procedure.recovery = "Rest **two days** before the next session."
    procedure.save()
    tree = page(client.get("/codes/cpt/97546/"))
    assert tree.xpath("//section[h2='Recovery']//strong/text()") == ["two days"]
    assert "Follow-up appointments to monitor progress" not in tree.text_content()


def test_text_changed_without_save_is_still_rendered_and_sanitised(client, sample_data):
    Procedure.objects.filter(code__code="97546").update(
        rendered={}, setting="<script>alert(1)</script>Clinic *gym*"
    )
    body = client.get("/codes/cpt/97546/").content.decode()
    assert "<em>gym</em>" in body
    assert "<script>alert(1)" not in body
