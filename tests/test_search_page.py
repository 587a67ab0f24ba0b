"""The first search page: a typed code goes to its page; bad input is a 400."""

import pytest
from lxml import html

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("query", "address"),
    [
        ("97546", "/codes/cpt/97546/"),
        ("CPT 97545", "/codes/cpt/97545/"),
        ("s52501a", "/codes/icd-10-cm/S52.501A/"),
        ("S9117", "/codes/hcpcs/S9117/"),
    ],
)
def test_a_typed_code_goes_straight_to_its_page(client, sample_data, query, address):
    response = client.get("/search/", {"q": query})
    assert response.status_code == 302
    assert response["Location"] == address


def test_words_find_the_write_up_and_the_policy(client, sample_data):
    response = client.get("/search/", {"q": "work hardening"})
    assert response.status_code == 200
    tree = html.fromstring(response.content)
    links = tree.xpath("//ol[@class='results']//a/@href")
    assert "/codes/cpt/97546/" in links
    assert "/policies/aetna/0198/" in links
    assert tree.xpath("//meta[@name='robots']/@content") == ["noindex, follow"]


@pytest.mark.parametrize("query", ["x" * 201, "a\x00b", "work" * 100])
def test_oversized_or_binary_queries_get_a_clear_400(client, sample_data, query):
    response = client.get("/search/", {"q": query})
    assert response.status_code == 400
    assert html.fromstring(response.content).xpath("//*[@role='alert']")


@pytest.mark.parametrize(
    "query", ['"unbalanced', "-diabetes", "E11.9*", "NEAR(a b)", "%", "_", "🙂", "   "]
)
def test_odd_queries_get_a_normal_page(client, sample_data, query):
    assert client.get("/search/", {"q": query}).status_code == 200
