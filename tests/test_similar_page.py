"""The similar-codes page and the top five on the code page."""

import json

import pytest
from django.core.management import call_command
from lxml import html

from index.models import SimilarCode

pytestmark = pytest.mark.django_db

URL = "/codes/cpt/97546/similar/"


@pytest.fixture
def stored(sample_data):
    call_command("rebuild_similar_codes", verbosity=0)


@pytest.fixture
def not_stored(sample_data):
    """As after a bulk import, before ``rebuild_similar_codes`` has run."""
    SimilarCode.objects.all().delete()


def page(response):
    assert response.status_code == 200
    return html.fromstring(response.content)


def words(node):
    return " ".join(node.text_content().split())


def test_the_page_lists_similar_codes_grouped_by_their_main_reason(client, stored):
    tree = page(client.get(URL))
    assert [words(h) for h in tree.xpath("//h1")] == ["Codes similar to 97546"]
    groups = [words(h) for h in tree.xpath("//section[@class='similar-group']/h2")]
    assert groups[0] == "Billed together"
    assert "Listed together in payer policies" in groups
    first = tree.xpath("//ol[contains(@class,'similar-list')]/li")[0]
    assert first.xpath("a/@href") == ["/codes/cpt/97545/"]
    assert first.get("value") == "1"
    assert words(first.xpath("ul/li")[0]) == "Primary code of this add-on code"
    assert "Listed in the same group of Aetna policy 0198" in words(tree)


def test_every_similar_code_of_the_list_is_shown(client, stored):
    tree = page(client.get(URL))
    links = tree.xpath("//ol[contains(@class,'similar-list')]/li/a/@href")
    assert len(links) == SimilarCode.objects.filter(code__code="97546").count()
    assert "/codes/cpt/97546/" not in links


def test_the_page_carries_its_seo_blocks(client, stored):
    tree = page(client.get(URL))
    assert tree.xpath("//link[@rel='canonical']/@href") == [f"http://testserver{URL}"]
    assert tree.xpath("//title")[0].text.startswith("Codes similar to 97546")
    assert tree.xpath("//meta[@name='description']/@content")[0].startswith(
        "Codes similar to CPT 97546"
    )
    data = json.loads(tree.xpath("//script[@type='application/ld+json']")[0].text)
    crumbs = data["breadcrumb"]["itemListElement"]
    assert [crumb["name"] for crumb in crumbs][-2:] == ["97546", "Similar codes"]
    assert crumbs[-1]["item"] == f"http://testserver{URL}"
    assert tree.xpath("//nav[@aria-label='Breadcrumb']//a[@aria-current='page']")


def test_a_code_without_a_stored_list_shows_its_neighbours(client, not_stored):
    tree = page(client.get(URL))
    assert "has not been worked out yet" in words(tree)
    assert "/codes/cpt/97545/" in tree.xpath("//main//ul[@class='code-list']//a/@href")


def test_the_code_page_shows_the_top_five_and_links_to_the_full_list(client, stored):
    tree = page(client.get("/codes/cpt/97546/"))
    section = tree.xpath("//section[@class='similar-codes']")[0]
    items = section.xpath("ul/li")
    assert len(items) == 5
    assert items[0].xpath("a/@href") == ["/codes/cpt/97545/"]
    assert "(Primary code of this add-on code)" in words(items[0])
    assert section.xpath("p/a/@href") == [URL]


def test_the_code_page_leaves_the_section_out_until_the_list_exists(client, not_stored):
    tree = page(client.get("/codes/cpt/97546/"))
    assert not tree.xpath("//section[@class='similar-codes']")


@pytest.mark.parametrize(
    ("asked", "canonical"),
    [
        ("/codes/icd-10-cm/s52501a/similar/", "/codes/icd-10-cm/S52.501A/similar/"),
        ("/codes/CPT/97546/similar/", URL),
        ("/codes/hcpcs/s9117/similar/", "/codes/hcpcs/S9117/similar/"),
    ],
)
def test_variants_redirect_permanently_to_the_canonical_address(
    client, sample_data, asked, canonical
):
    response = client.get(asked)
    assert response.status_code == 301
    assert response["Location"] == canonical


@pytest.mark.parametrize(
    "address",
    [
        "/codes/cpt/99999/similar/",
        "/codes/cpt/9754/similar/",
        "/codes/nonsense/97546/similar/",
        "/codes/cpt/%3Cscript%3E/similar/",
    ],
)
def test_unknown_or_malformed_codes_get_the_sites_404(client, sample_data, address):
    response = client.get(address)
    assert response.status_code == 404
    tree = html.fromstring(response.content)
    assert tree.xpath("//form[@role='search']")
    assert b"<script>" not in response.content


def test_the_page_costs_two_queries(client, stored, django_assert_num_queries):
    # The code with its sections for the breadcrumbs, and the stored list.
    with django_assert_num_queries(2):
        client.get(URL)
    with django_assert_num_queries(2):
        client.get("/codes/icd-10-cm/S52.501A/similar/")


def test_without_a_stored_list_it_costs_four(
    client, not_stored, django_assert_num_queries
):
    # The empty list, then the codes before and after it in its section.
    with django_assert_num_queries(4):
        client.get(URL)
