"""
Whatever is typed into a search box gets a normal page or a clear 400, never a 500,
and nothing typed comes back as markup.
"""

import json
import unicodedata
from pathlib import Path

import pytest
from django.utils.html import escape
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lxml import html

from .hostile_text import QUERIES

pytestmark = pytest.mark.django_db

XSS_PAYLOADS = Path(__file__).resolve().parent / "data/acceptance/xss-payloads.txt"

# Syntax of FTS5 MATCH, PostgreSQL tsquery/websearch and LIKE, mixed with words.
FILTERS = st.fixed_dictionaries(
    {},
    optional={
        "system": st.sampled_from(["cpt", "icd-10-cm", "", "CPT", "x"]),
        "kind": st.sampled_from(["code", "write-up", "policy", "", "codes"]),
        "payer": st.sampled_from(["aetna", "", "nobody"]),
        "page": st.sampled_from(["1", "2", "0", "-1", "1e3", "99999999999999999999"]),
    },
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(query=QUERIES, filters=FILTERS)
@example(query="x" * 2000, filters={})
@example(query=" cpt  97546 ", filters={})
@example(query="work\x00hardening", filters={})
@example(query='"unbalanced (paren AND NOT', filters={"kind": "code"})
@example(query="title:work* ^hard NEAR(a b, 2)", filters={})
@example(query="work & !hard | (a <-> b):*", filters={"system": "cpt"})
@example(query="' OR 1=1 --", filters={"payer": "aetna"})
@example(query="\u202eedoc\u200b 9754\ufe0f6", filters={})
def test_no_search_input_gets_a_server_error(client, sample_data, query, filters):
    response = client.get("/search/", {"q": query, **filters})
    assert response.status_code in {200, 302, 400}
    if response.status_code == 400:
        alert = html.fromstring(response.content).xpath("//*[@role='alert']")
        assert alert and alert[0].text_content().strip()
    elif response.status_code == 200:
        assert html.fromstring(response.content).xpath("//h1")
    else:
        # A code typed alone: its page, on this site.
        assert response["Location"].startswith("/codes/")

    response = client.get("/search/suggest/", {"q": query})
    assert response.status_code in {200, 400}
    assert response["Content-Type"] == "application/json"
    data = response.json()
    if response.status_code == 400:
        assert data["error"]
    else:
        assert len(data["suggestions"]) <= 10


def xss_payloads():
    return [line for line in XSS_PAYLOADS.read_text().splitlines() if line.strip()]


def read_as(text):
    """The query as the results page repeats it: NFKC, one space between words."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def markup_of(tree):
    """Every element name and attribute name on a page."""
    tags, attributes = set(), set()
    for element in tree.iter():
        if isinstance(element.tag, str):
            tags.add(element.tag)
            attributes.update(element.attrib)
    return tags, attributes


@pytest.fixture
def own_pages(client, sample_data):
    """The element and attribute names the search pages draw by themselves, and
    the pages of each status for a query with nothing to escape."""
    pages = {
        "found": client.get("/search/", {"q": "work hardening"}),
        "none found": client.get("/search/", {"q": "qqqzzzxxy"}),
        "refused": client.get("/search/", {"q": "x" * 201}),
        "empty": client.get("/search/", {"q": ""}),
    }
    tags, attributes = set(), set()
    for response in pages.values():
        page_tags, page_attributes = markup_of(html.fromstring(response.content))
        tags |= page_tags
        attributes |= page_attributes
    plain = {
        response.status_code: response.content.decode()
        for response in (pages["none found"], pages["refused"])
    }
    return tags, attributes, plain


def test_the_xss_payloads_come_back_as_text(client, own_pages):
    known_tags, known_attributes, plain = own_pages
    payloads = xss_payloads()
    assert len(payloads) > 500
    for payload in payloads:
        typed = payload.strip()
        response = client.get("/search/", {"q": payload})
        # None is a code, so none is sent on to a code's page.
        assert response.status_code in {200, 400}, payload
        body = response.content.decode()
        tree = html.fromstring(response.content)
        # What was typed is shown as typed: in the search box, and in the heading
        # of a results page.
        (box,) = tree.xpath("//main//input[@name='q']/@value")
        assert box.strip() == typed, payload
        if response.status_code == 200:
            heading = " ".join(tree.xpath("//h1")[0].text_content().split())
            assert heading.endswith(f" for “{read_as(typed)}”"), payload
        # It comes back escaped, never raw: a payload with something to escape is
        # in the page no more often than on a plain query's page ("</div>" is on
        # every page).
        assert escape(typed) in body, payload
        if escape(typed) != typed:
            plain_body = plain[response.status_code]
            assert body.count(typed) == plain_body.count(typed), payload
        tags, attributes = markup_of(tree)
        assert tags <= known_tags, (payload, tags - known_tags)
        assert attributes <= known_attributes, (payload, attributes - known_attributes)
        for address in tree.xpath("//@href | //@src | //@action"):
            assert not address.strip().lower().startswith(("javascript:", "data:")), (
                payload
            )
        scripts = tree.xpath("//script[not(@src)]")
        assert [script.get("type") for script in scripts] in (
            [],
            ["application/ld+json"],
        )


def test_suggestions_for_the_xss_payloads_are_plain_data(client, sample_data):
    for payload in xss_payloads():
        response = client.get("/search/suggest/", {"q": payload})
        assert response.status_code in {200, 400}, payload
        # JSON, and a browser told not to sniff it into something else.
        assert response["Content-Type"] == "application/json"
        assert response["X-Content-Type-Options"] == "nosniff"
        data = json.loads(response.content)
        if response.status_code == 400:
            assert set(data) == {"error"}
            continue
        assert data["query"] == payload.strip()
        for item in data["suggestions"]:
            assert all(isinstance(value, str) for value in item.values())
            assert item["url"].startswith("/") and not item["url"].startswith("//")
