"""The autocomplete endpoint: a few codes and titles as JSON for what has been typed."""

import pytest

from procedures.models import Code, CodeSystem

pytestmark = pytest.mark.django_db

KINDS = {"code", "write-up", "policy"}


def suggestions(client, query):
    response = client.get("/search/suggest/", {"q": query})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    return response.json()


def test_it_suggests_codes_and_titles_for_words(client, sample_data):
    data = suggestions(client, "work hard")
    assert data["query"] == "work hard"
    items = data["suggestions"]
    assert items
    for item in items:
        assert set(item) == {"label", "url", "kind", "detail"}
        assert item["kind"] in KINDS
        assert item["url"].startswith("/")
    urls = [item["url"] for item in items]
    assert "/codes/cpt/97546/" in urls
    assert "/policies/aetna/0198/" in urls


def test_it_gives_at_most_ten_suggestions(
    client, sample_data, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        for number in range(15):
            Code.objects.create(
                system=CodeSystem.HCPCS,
                code=f"L{3900 + number:04d}",
                sort_key=f"L{3900 + number:04d}",
                descriptor=f"Wrist splint, prefabricated, model {number}",
            )
    items = suggestions(client, "wrist splint")["suggestions"]
    assert len(items) == 10


@pytest.mark.parametrize("query", ["", " ", "w", "  9 "])
def test_empty_or_one_letter_input_gets_no_suggestions(client, sample_data, query):
    assert suggestions(client, query) == {"query": query.strip(), "suggestions": []}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "x" * 201,
            "That search is too long: use at most 200 characters (it has 201).",
        ),
        ("work\x00hardening", "The search contains characters it can’t use."),
    ],
)
def test_oversized_or_binary_input_gets_a_json_400(client, sample_data, query, message):
    response = client.get("/search/suggest/", {"q": query})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": message}


def test_suggestions_may_be_cached_for_five_minutes(client, sample_data):
    response = client.get("/search/suggest/", {"q": "work"})
    directives = {part.strip() for part in response["Cache-Control"].split(",")}
    assert directives == {"public", "max-age=300"}


def test_only_get_is_allowed(client, sample_data):
    assert client.post("/search/suggest/", {"q": "work"}).status_code == 405


@pytest.mark.parametrize("query", ["work hard", "9754", "s52.5"])
def test_suggestions_cost_one_or_two_queries(
    client, sample_data, django_assert_max_num_queries, query
):
    with django_assert_max_num_queries(2):
        client.get("/search/suggest/", {"q": query})


def test_a_short_prefix_costs_no_query(client, sample_data, django_assert_num_queries):
    with django_assert_num_queries(0):
        client.get("/search/suggest/", {"q": "w"})
