"""The autocomplete endpoint: a few codes and titles as JSON for what has been typed."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

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


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's query plan")
def test_a_half_typed_code_seeks_each_systems_codes_through_the_key_index(
    client, sample_data
):
    # "9754A" fits no code system's pattern, so it is looked up as a key prefix:
    # without the system, SQLite walked the whole key index (10 ms at 100,000 rows).
    with CaptureQueriesContext(connection) as captured:
        suggestions(client, "9754A")
    lookup = captured.captured_queries[-1]["sql"]
    assert "sort_key" in lookup
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {lookup}")
        plan = " ".join(str(row[-1]) for row in cursor.fetchall())
    assert "SEARCH search_searchdocument USING INDEX searchdoc_key_idx" in plan
    assert "SCAN search_searchdocument" not in plan
