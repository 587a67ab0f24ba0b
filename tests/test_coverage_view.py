"""Coverage across payers: the coverage address and the code page's summary."""

import json

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from lxml import html

from policies.models import (
    Coverage,
    Payer,
    Policy,
    PolicyCode,
    PolicyCodeGroup,
    PolicyStatus,
)

from .test_html_validity import nu_errors

pytestmark = pytest.mark.django_db

URL = "/codes/cpt/97546/coverage/"


@pytest.fixture
def three_payers(db, django_capture_on_commit_callbacks):
    """What ``make run`` loads: the seeds and the two sample payers' policies."""
    with django_capture_on_commit_callbacks(execute=True):
        call_command("load_sample_data", verbosity=0)


def page(response, status=200):
    assert response.status_code == status
    return html.fromstring(response.content)


def words(node):
    return " ".join(node.text_content().split())


def rows(tree):
    """(payer, policy, coverage, last reviewed, how named) for each table row."""
    found = []
    for row in tree.xpath("//table[@class='coverage-table']/tbody/tr"):
        header = row.xpath("th")[0]
        cells = row.xpath("td")
        found.append(
            (
                words(header.xpath(".//a[@class='payer-name']")[0]),
                words(header.xpath(".//a[@class='policy-name']")[0]),
                words(cells[0].xpath(".//span[contains(@class,'coverage ')]")[0]),
                words(cells[1]),
                words(cells[2]),
            )
        )
    return found


def test_the_two_sample_payers_appear_beside_aetna_for_a_shared_code(
    client, three_payers
):
    tree = page(client.get(URL))
    assert rows(tree) == [
        (
            "Aetna",
            "0198: Work Hardening Programs",
            "Not covered",
            "Not stated",
            "Listed by itself",
        ),
        (
            "Cigna (sample)",
            "0135: Physical Therapy (sample policy)",
            "Not covered",
            "20 Nov 2025",
            "Listed by itself",
        ),
        (
            "UnitedHealthcare (sample)",
            "0026: Outpatient Rehabilitation Therapy (sample guideline)",
            "Covered when criteria are met",
            "12 Jan 2026",
            "Listed by itself",
        ),
    ]
    links = tree.xpath("//table[@class='coverage-table']//a/@href")
    assert "/policies/cigna-sample/0135/" in links
    assert "/payers/unitedhealthcare-sample/" in links
    assert "3 policies from 3 payers on this site name 97546" in words(tree)


def test_each_row_says_whether_the_policy_reaches_the_code_through_a_range(
    client, three_payers
):
    tree = page(client.get("/codes/icd-10-cm/S52.501A/coverage/"))
    named = {payer: how for payer, _policy, _status, _date, how in rows(tree)}
    assert named == {
        "Aetna": "Through the range S00.00X+ - T88.9XX+",
        "Cigna (sample)": "Through the range S52.001+ - S52.92X+",
        "UnitedHealthcare (sample)": "Through S52.5, which includes it",
    }
    statuses = [status for _p, _n, status, _d, _h in rows(tree)]
    # Strictest first.
    assert statuses == [
        "Not covered",
        "Covered when criteria are met",
        "Listed for information",
    ]


def test_a_code_only_the_samples_name_lists_only_them(client, three_payers):
    tree = page(client.get("/codes/cpt/97110/coverage/"))
    assert [row[0] for row in rows(tree)] == [
        "Cigna (sample)",
        "UnitedHealthcare (sample)",
    ]


def test_a_code_no_policy_names_says_so(client, three_payers):
    Policy.objects.filter(payer__slug="aetna").update(status=PolicyStatus.DRAFT)
    tree = page(client.get("/codes/cpt/97537/coverage/"))
    assert rows(tree) == []
    assert "No payer policy on this site names 97537 yet" in words(tree)


def test_the_page_carries_its_seo_blocks(client, three_payers):
    tree = page(client.get(URL + "?utm_source=mail"))
    assert [words(h) for h in tree.xpath("//h1")] == ["Coverage of 97546 across payers"]
    assert tree.xpath("//link[@rel='canonical']/@href") == [f"http://testserver{URL}"]
    title = tree.xpath("//title")[0].text
    assert title.startswith("97546 coverage across payers")
    description = tree.xpath("//meta[@name='description']/@content")[0]
    assert description.startswith("How 3 payers treat CPT 97546")
    assert len(description) <= 155
    data = json.loads(tree.xpath("//script[@type='application/ld+json']")[0].text)
    assert data["@type"] == "MedicalWebPage"
    assert data["about"]["codeValue"] == "97546"
    assert data["lastReviewed"] == "2026-01-12"
    crumbs = data["breadcrumb"]["itemListElement"]
    assert [crumb["name"] for crumb in crumbs][-2:] == [
        "97546",
        "Coverage across payers",
    ]
    assert crumbs[-1]["item"] == f"http://testserver{URL}"
    assert "CPT © " in words(tree.xpath("//footer")[0])
    assert "Medical disclaimer" in words(tree.xpath("//footer")[0])


def test_an_unknown_code_gets_the_sites_not_found_page(client, three_payers):
    for address in [
        "/codes/cpt/97547/coverage/",
        "/codes/cpt/not-a-code/coverage/",
        "/codes/loinc/1234-5/coverage/",
    ]:
        tree = page(client.get(address), status=404)
        assert tree.xpath("//main//form[@role='search']"), address
        assert len(tree.xpath("//h1")) == 1
    # The not-found page names the nearest codes the site has.
    tree = page(client.get("/codes/cpt/97547/coverage/"), status=404)
    assert "/codes/cpt/97546/" in tree.xpath("//main//a/@href")


def test_a_variant_of_the_code_redirects_to_the_canonical_address(client, three_payers):
    response = client.get("/codes/icd-10-cm/s52501a/coverage/")
    assert response.status_code == 301
    assert response["Location"] == "/codes/icd-10-cm/S52.501A/coverage/"


def test_the_code_page_has_a_compact_summary_linking_to_the_comparison(
    client, three_payers
):
    tree = page(client.get("/codes/cpt/97546/"))
    section = tree.xpath("//section[@class='coverage-summary']")[0]
    assert [words(h) for h in section.xpath("h2")] == ["Coverage across payers"]
    items = [words(item) for item in section.xpath("ul/li")]
    # Strictest first, as on the comparison page.
    assert items == [
        "Not covered: Aetna 0198, Cigna (sample) 0135",
        "Covered when criteria are met: UnitedHealthcare (sample) 0026",
    ]
    assert URL in section.xpath(".//a/@href")
    assert len(tree.xpath("//h1")) == 1


def _add_policies(count, start=0):
    """``count`` more published policies, each of its own payer, naming 97546."""
    for index in range(start, start + count):
        payer = Payer.objects.create(name=f"Payer {index:03}", slug=f"payer-{index:03}")
        policy = Policy.objects.create(
            payer=payer,
            number=f"{index:04}",
            title=f"Policy {index}",
            status=PolicyStatus.PUBLISHED,
        )
        group = PolicyCodeGroup.objects.create(
            policy=policy,
            heading="CPT codes covered when criteria are met",
            coverage=Coverage.CRITERIA,
            system="cpt",
        )
        # Half list it, half reach it through a range.
        written = "97546" if index % 2 else "97545 - 97546"
        start_code, _, end_code = written.partition(" - ")
        PolicyCode.objects.create(group=group, start_code=start_code, end_code=end_code)


def test_the_page_costs_two_queries_however_many_policies_name_the_code(
    client, three_payers, django_assert_num_queries
):
    # 2: the code (with its section's ancestors) and the policies naming it, with
    # their groups and payers.
    with django_assert_num_queries(2):
        response = client.get(URL)
    assert len(rows(page(response))) == 3
    _add_policies(30)
    with django_assert_num_queries(2):
        response = client.get(URL)
    assert len(rows(page(response))) == 33


def test_the_code_page_summary_adds_no_query(client, three_payers):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            client.get("/codes/cpt/97546/")
        return len(captured)

    before = queries()
    _add_policies(10)
    assert queries() == before


def test_the_page_is_valid_html(client, three_payers, tmp_path):
    files = []
    for name, address, status in [
        ("coverage", URL, 200),
        ("coverage-range", "/codes/icd-10-cm/S52.501A/coverage/", 200),
        ("coverage-hcpcs", "/codes/hcpcs/S9117/coverage/", 200),
        ("code-with-summary", "/codes/cpt/97546/", 200),
    ]:
        response = client.get(address)
        assert response.status_code == status
        path = tmp_path / f"{name}.html"
        path.write_bytes(response.content)
        files.append(path)
    assert nu_errors(files) == []
