"""The policy page: every section, the code table as the source groups it."""

import json

import pytest
from lxml import html

from policies.models import Policy, PublicationStatus

pytestmark = pytest.mark.django_db

URL = "/policies/aetna/0198/"


@pytest.fixture
def tree(client, sample_data):
    response = client.get(URL)
    assert response.status_code == 200
    return html.fromstring(response.content)


def cell_texts(row):
    return [" ".join(td.text_content().split()) for td in row.xpath("td")]


def test_the_code_table_keeps_the_groups_of_the_source(tree):
    headings = [
        h.text_content().strip() for h in tree.xpath("//section[@id='codes']//h3")
    ]
    assert headings == [
        "CPT codes not covered for indications listed in the CPB",
        "HCPCS codes not covered for indications listed in the CPB",
        "ICD-10 codes not covered for indications listed in the CPB"
        " (not all-inclusive)",
    ]


def test_every_code_and_range_is_listed_with_its_markers(tree):
    codes = [
        cell_texts(row)[0]
        for row in tree.xpath("//section[@id='codes']//table/tbody/tr")
    ]
    assert codes == [
        "97537",
        "97545",
        "+ 97546",
        "S9117",
        "S00.00X+ – T88.9XX+",
        "Z51.89",
        "Z85.00 – Z85.9",
        "Z86.19",
        "Z86.59",
        "Z87.81 – Z87.828",
        "Z91.410 – Z91.414",
        "Z92.3",
        "Z98.870 – Z98.89",
    ]


def test_codes_link_to_their_pages(tree):
    links = tree.xpath("//section[@id='codes']//table//a/@href")
    for address in [
        "/codes/cpt/97537/",
        "/codes/cpt/97545/",
        "/codes/cpt/97546/",
        "/codes/hcpcs/S9117/",
        "/codes/icd-10-cm/Z51.89/",
    ]:
        assert address in links


def test_all_twelve_references_are_numbered(tree):
    references = tree.xpath("//ol[@class='references']/li")
    assert len(references) == 12
    assert references[0].get("value") == "1"
    assert (
        references[0]
        .text_content()
        .startswith("American Occupational Therapy Association.")
    )
    assert references[11].text_content().startswith("Wyman DO.")


def test_scope_exclusions_note_and_background_are_shown(tree):
    text = " ".join(tree.text_content().split())
    assert "This Clinical Policy Bulletin addresses work hardening programs." in text
    assert "Aetna does not cover back school for occupational purposes" in text
    assert "Aetna medical benefit plans provide coverage only for treatment" in text
    assert "Cognitive Work Hardening for Return-to-Work Following Depression" in text
    assert "Codes requiring a 7th character are represented by" in text


def test_the_policy_is_structured_data_with_citations(tree):
    data = json.loads(tree.xpath("//script[@type='application/ld+json']")[0].text)
    assert data["@type"] == "WebPage"
    assert len(data["citation"]) == 12


def test_a_draft_policy_is_not_public(client, sample_data):
    Policy.objects.update(status=PublicationStatus.DRAFT)
    assert client.get(URL).status_code == 404
    codes_page = client.get("/codes/cpt/97546/").content.decode()
    assert "/policies/aetna/0198/" not in codes_page


def test_the_payer_page_lists_the_policy(client, sample_data):
    response = client.get("/payers/aetna/")
    assert response.status_code == 200
    tree = html.fromstring(response.content)
    assert URL in tree.xpath("//main//a/@href")


def test_the_policy_page_costs_a_fixed_number_of_queries(
    client, sample_data, django_assert_num_queries
):
    # 7: the policy, related policies, groups, rows, references, code pages and
    # the versions list (policies.versions).
    with django_assert_num_queries(7):
        client.get(URL)
