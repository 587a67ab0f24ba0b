"""
Query parameters that key a cache: only one address per answer is ever cached.

The sitemaps sit in the page cache, keyed by their whole address; search
suggestions are marked for shared caches. Another spelling of the same query is
redirected to the canonical address or refused, never built and stored again.
"""

import pytest
from django.core.cache import cache

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _countable_cache(settings):
    # The tests count what is stored, which a local-memory cache can list; CI also
    # runs the suite with REDIS_URL set.
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    }
    cache.clear()


@pytest.fixture
def two_part_code_sitemap(sample_data, monkeypatch):
    from carecodes.sitemaps import SITEMAPS

    monkeypatch.setattr(SITEMAPS["codes"], "limit", 7)


def cached_entries() -> int:
    return len(cache._cache)


@pytest.mark.parametrize(
    ("query", "canonical"),
    [
        ("p=01", "/sitemap-codes.xml"),
        ("p=1", "/sitemap-codes.xml"),
        ("p=02", "/sitemap-codes.xml?p=2"),
        ("p=%32", "/sitemap-codes.xml?p=2"),
        ("p=2&", "/sitemap-codes.xml?p=2"),
    ],
)
def test_another_spelling_of_a_part_number_redirects_to_the_canonical_address(
    client, two_part_code_sitemap, query, canonical
):
    response = client.get(f"/sitemap-codes.xml?{query}")
    assert response.status_code == 301
    assert response["Location"] == canonical


@pytest.mark.parametrize(
    "query",
    ["p=١", "p=٢", "p=²", "p=0", "p=00", "p=1e1", "p= 2", "p=2&p=2", "q=2"],
)
def test_a_part_number_in_no_canonical_form_is_not_found(
    client, two_part_code_sitemap, query
):
    assert client.get(f"/sitemap-codes.xml?{query}").status_code == 404


def test_spellings_of_a_part_build_no_copy_of_it(client, two_part_code_sitemap):
    assert client.get("/sitemap-codes.xml?p=2").status_code == 200
    assert client.get("/sitemap-codes.xml").status_code == 200
    entries = cached_entries()
    for query in ["p=01", "p=١", "p=02", "p=%32", "p=1", "x=1"]:
        assert client.get(f"/sitemap-codes.xml?{query}").status_code in {301, 404}
    assert cached_entries() == entries


def test_the_sitemap_index_has_one_address(client, sample_data):
    assert client.get("/sitemap.xml").status_code == 200
    entries = cached_entries()
    for query in ["p=1", "p=2", "p=١"]:
        assert client.get(f"/sitemap.xml?{query}").status_code == 404, query
    assert cached_entries() == entries


def test_suggestions_refuse_parameters_that_would_only_multiply_the_cache(
    client, sample_data
):
    for query in ["q=work&x=1", "q=work&q=work", "q=work&utm_source=mail"]:
        response = client.get(f"/search/suggest/?{query}")
        assert response.status_code == 400, query
        assert "one parameter" in response.json()["error"]
        assert "public" not in response.get("Cache-Control", "")


@pytest.mark.parametrize("words", [" work", "work ", "work  hardening", "work\thard"])
def test_suggestions_for_untidy_words_are_answered_but_not_shared(
    client, sample_data, words
):
    response = client.get("/search/suggest/", {"q": words})
    assert response.status_code == 200
    assert response.json()["suggestions"]
    directives = {part.strip() for part in response["Cache-Control"].split(",")}
    assert directives == {"private", "no-store"}


def test_suggestions_for_tidy_words_may_be_shared(client, sample_data):
    response = client.get("/search/suggest/", {"q": "work hardening"})
    assert "public" in response["Cache-Control"]
