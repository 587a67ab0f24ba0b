"""Home, browse, payer and error pages; robots.txt and the sitemap."""

import json

import pytest
from django.db import connection
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lxml import html

pytestmark = pytest.mark.django_db


def test_home_explains_the_site_and_offers_search_and_browsing(client, sample_data):
    response = client.get("/")
    assert response.status_code == 200
    tree = html.fromstring(response.content)
    assert len(tree.xpath("//h1")) == 1
    assert tree.xpath("//main//form[@role='search']/@action") == ["/search/"]
    links = tree.xpath("//main//a/@href")
    assert "/sections/cpt/physical-medicine-and-rehabilitation/" in links
    assert "/codes/cpt/97546/" in links, "recently reviewed write-ups are listed"


@pytest.mark.parametrize(
    "address",
    [
        "/",
        "/codes/",
        "/codes/cpt/97546/",
        "/policies/aetna/0198/",
        "/payers/aetna/",
        "/sections/cpt/physical-medicine-and-rehabilitation/",
        "/sections/icd-10-cm/chapter-21/",
    ],
)
def test_every_public_page_has_the_basics(client, sample_data, address):
    response = client.get(address)
    assert response.status_code == 200
    tree = html.fromstring(response.content)
    assert tree.get("lang") == "en"
    assert len(tree.xpath("//h1")) == 1
    assert tree.xpath("//a[@class='skip-link']/@href") == ["#main"]
    assert tree.xpath("//main[@id='main']")
    description = tree.xpath("//meta[@name='description']/@content")[0]
    assert 50 <= len(description) <= 160, description
    canonical = tree.xpath("//link[@rel='canonical']/@href")[0]
    assert canonical == f"http://testserver{address}"
    og_title = tree.xpath("//meta[@property='og:title']/@content")[0]
    assert og_title != "CareCodes", "each page names itself to social previews"
    (json_ld,) = tree.xpath("//script[@type='application/ld+json']/text()")
    assert json.loads(json_ld)["@context"] == "https://schema.org"
    assert "not medical advice" in tree.xpath("//footer")[0].text_content()


def test_titles_differ_from_page_to_page(client, sample_data):
    titles = {
        html.fromstring(client.get(address).content).findtext(".//title")
        for address in [
            "/",
            "/codes/",
            "/codes/cpt/97546/",
            "/codes/cpt/97545/",
            "/policies/aetna/0198/",
            "/payers/aetna/",
        ]
    }
    assert len(titles) == 6


def test_a_section_page_lists_its_codes(client, sample_data):
    response = client.get("/sections/cpt/physical-medicine-and-rehabilitation/")
    tree = html.fromstring(response.content)
    links = tree.xpath("//main//a/@href")
    assert {"/codes/cpt/97537/", "/codes/cpt/97545/", "/codes/cpt/97546/"} <= set(links)


def test_a_chapter_page_lists_its_blocks(client, sample_data):
    response = client.get("/sections/icd-10-cm/chapter-19/")
    tree = html.fromstring(response.content)
    names = " ".join(tree.xpath("//main")[0].text_content().split())
    assert "Injuries to the elbow and forearm" in names


def test_error_pages_look_like_the_site(client, sample_data):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    tree = html.fromstring(response.content)
    assert tree.xpath("//header[@class='site-header']")
    assert tree.xpath("//main//form[@role='search']")


def test_the_500_page_renders_without_a_request(client):
    from django.template.loader import render_to_string

    body = render_to_string("500.html")
    assert "Something went wrong" in body


@pytest.mark.parametrize(
    ("address", "queries"),
    [
        ("/", 2),
        ("/codes/", 2),
        ("/payers/aetna/", 2),
        # The section, its children, the count and page of its codes, their phrases.
        ("/sections/cpt/physical-medicine-and-rehabilitation/", 5),
        ("/sections/icd-10-cm/chapter-21/", 2),
        # The lay-term thesaurus rows the words can name, the engine's queries
        # (SQLite: count, rank, page; PostgreSQL all three in one), plus the payer
        # filter's choices.
        ("/search/?q=work+hardening", {"sqlite": 5, "postgresql": 3}),
        # The engine looks up the code, then the policies naming it, before the
        # redirect.
        ("/search/?q=97546", 2),
    ],
)
def test_pages_cost_a_fixed_number_of_queries(
    client, sample_data, django_assert_num_queries, address, queries
):
    if isinstance(queries, dict):
        queries = queries[connection.vendor]
    with django_assert_num_queries(queries):
        client.get(address)


def test_reviewed_write_ups_come_first_on_the_home_page(client, sample_data):
    from procedures.models import Code, Procedure, PublicationStatus

    newer = Code.objects.get(system="cpt", code="97537")
    Procedure.objects.create(
        code=newer,
        title="Community reintegration",
        status=PublicationStatus.PUBLISHED,
    )
    Procedure.objects.filter(code=newer).update(
        reviewed_on="2026-09-01", reviewed_by="Dana Reyes"
    )
    tree = html.fromstring(client.get("/").content)
    items = [
        " ".join(li.text_content().split())
        for li in tree.xpath("//main//ul[@class='code-list']/li")
    ]
    assert items[0] == "97537 Community reintegration reviewed 1 Sep 2026"
    assert items[1].endswith("not yet reviewed")


url_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(system=url_text, code=url_text)
@example(system="aetna", code="0198\x00")
@example(system="cpt", code="%00")
@example(system="icd-10-cm", code="Z85.\x00")
@example(system="aetna", code="0" * 31)
@example(system="ICD-10-CM", code="s52.501a")
@example(system="aetna", code="' OR 1=1 --")
def test_no_url_shaped_input_gets_a_server_error(client, sample_data, system, code):
    for address in [
        f"/codes/{system}/{code}/",
        f"/codes/cpt/{code}/",
        f"/policies/{system}/{code}/",
        f"/payers/{code}/",
        f"/sections/icd-10-cm/{code}/",
        f"/search/?q={code}",
    ]:
        response = client.get(address)
        assert response.status_code < 500, address


AMA_NOTICE = "CPT © 2026 American Medical Association. All rights reserved."


@pytest.mark.parametrize(
    ("address", "shows_notice"),
    [
        ("/sections/cpt/physical-medicine-and-rehabilitation/", True),
        ("/search/?q=work+hardening", True),
        ("/policies/aetna/0198/", True),
        ("/sections/icd-10-cm/chapter-21/", False),
        ("/payers/aetna/", False),
    ],
)
def test_the_ama_notice_appears_wherever_cpt_descriptors_do(
    client, sample_data, settings, address, shows_notice
):
    settings.CPT_COPYRIGHT_YEAR = 2026
    body = client.get(address).content.decode()
    assert (AMA_NOTICE in body) is shows_notice


def test_the_favicon_address_leads_to_the_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith(".svg")
    assert client.get(response["Location"]).status_code == 200


def test_a_request_for_a_host_this_site_does_not_serve_gets_a_400_page(sample_data):
    from django.test import Client

    response = Client(raise_request_exception=False).get(
        "/", headers={"host": "x.test"}
    )
    assert response.status_code == 400
    tree = html.fromstring(response.content)
    assert tree.findtext(".//h1") == "We couldn’t read that request"
    description = tree.xpath("//meta[@name='description']/@content")[0]
    assert description.startswith("The address or search could not be read.")
    assert tree.xpath("//link[@rel='canonical']/@href") == ["/"]
