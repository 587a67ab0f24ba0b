"""The search page: results by kind, filters, pagination; bad input is a clear 400."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.html import format_html
from lxml import html

from index import search as search_engine
from procedures.models import Code, CodeSystem

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


def results_page(response):
    assert response.status_code == 200
    return html.fromstring(response.content)


def words(node):
    return " ".join(node.text_content().split())


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ('"unbalanced', None),
        ("-diabetes", None),
        ("E11.9*", None),
        ("NEAR(a b)", None),
        ("%", None),
        ("_", None),
        ("🙂", None),
        # Around words, the same syntax still finds them.
        ('"work hardening', "/codes/cpt/97546/"),
        ("work (hardening", "/codes/cpt/97546/"),
        ("NEAR(work hardening)", "/codes/cpt/97546/"),
        ("%hardening%", "/codes/cpt/97546/"),
        ("🙂 hardening", "/codes/cpt/97546/"),
    ],
)
def test_odd_queries_get_a_normal_page(client, sample_data, query, found):
    tree = results_page(client.get("/search/", {"q": query}))
    assert tree.xpath("//main//input[@name='q']/@value") == [query]
    items = tree.xpath("//ol[@class='results']/li")
    plural = "" if len(items) == 1 else "s"
    assert words(tree.xpath("//h1")[0]) == f"{len(items)} result{plural} for “{query}”"
    if found is None:
        assert not items
        assert f"Nothing matched “{query}”" in words(tree.xpath("//main")[0])
    else:
        assert found in tree.xpath("//ol[@class='results']//a/@href")


def test_the_heading_counts_the_results_and_each_result_says_its_kind(
    client, sample_data
):
    tree = results_page(client.get("/search/", {"q": "work hardening"}))
    (heading,) = tree.xpath("//h1")
    total = len(tree.xpath("//ol[@class='results']/li"))
    assert words(heading) == f"{total} results for “work hardening”"
    kinds = {
        words(node) for node in tree.xpath("//ol[@class='results']//*[@class='kind']")
    }
    assert {"Code", "Write-up", "Policy"} <= kinds
    for item in tree.xpath("//ol[@class='results']/li"):
        assert item.xpath(".//*[@class='kind']"), words(item)


def test_the_results_page_is_kept_out_of_search_engines(client, sample_data):
    tree = results_page(client.get("/search/", {"q": "work hardening", "page": "1"}))
    assert tree.xpath("//meta[@name='robots']/@content") == ["noindex, follow"]
    assert tree.xpath("//link[@rel='canonical']/@href") == ["http://testserver/search/"]
    assert len(tree.xpath("//h1")) == 1


def test_the_filters_work_as_a_plain_form_and_show_counts_per_kind(client, sample_data):
    tree = results_page(client.get("/search/", {"q": "work hardening"}))
    (form,) = tree.xpath("//main//form[@role='search']")
    assert form.get("method") == "get"
    assert form.get("action") == "/search/"
    labels = [
        words(label) for label in form.xpath(".//fieldset[@class='kind-filter']//label")
    ]
    assert labels[0].startswith("Everything (")
    assert any(label.startswith("Policies (") for label in labels)
    assert form.xpath(".//select[@name='system']/option/@value")[:2] == ["", "cpt"]
    assert "aetna" in form.xpath(".//select[@name='payer']/option/@value")
    assert form.xpath(".//input[@name='q']/@value") == ["work hardening"]


def test_a_kind_filter_keeps_only_that_kind_and_stays_chosen(client, sample_data):
    tree = results_page(
        client.get("/search/", {"q": "work hardening", "kind": "policy"})
    )
    kinds = {
        words(node) for node in tree.xpath("//ol[@class='results']//*[@class='kind']")
    }
    assert kinds == {"Policy"}
    assert tree.xpath("//ol[@class='results']//a/@href") == ["/policies/aetna/0198/"]
    assert tree.xpath("//input[@name='kind'][@checked]/@value") == ["policy"]
    assert tree.xpath("//a[normalize-space()='Clear filters']/@href") == [
        "?q=work+hardening"
    ]


def test_a_code_system_filter_keeps_only_that_system(client, sample_data):
    # "procedure" is in the text of an ICD-10-CM code and of a CPT write-up.
    everything = results_page(client.get("/search/", {"q": "procedure"}))
    assert {"/codes/icd-10-cm/Z98.870/", "/codes/cpt/97546/"} <= set(
        everything.xpath("//ol[@class='results']//a/@href")
    )
    tree = results_page(
        client.get("/search/", {"q": "procedure", "system": "icd-10-cm"})
    )
    assert tree.xpath("//ol[@class='results']//a/@href") == [
        "/codes/icd-10-cm/Z98.870/"
    ]
    assert words(tree.xpath("//h1")[0]) == "1 result for “procedure”"
    assert tree.xpath("//select[@name='system']/option[@selected]/@value") == [
        "icd-10-cm"
    ]


def test_an_exact_code_with_a_filter_shows_results_instead_of_redirecting(
    client, sample_data
):
    tree = results_page(client.get("/search/", {"q": "97546", "kind": "write-up"}))
    assert words(tree.xpath("//h1")[0]) == "1 result for “97546”"
    (item,) = tree.xpath("//ol[@class='results']/li")
    assert item.xpath(".//a/@href") == ["/codes/cpt/97546/"]
    assert words(item.xpath(".//*[@class='kind']")[0]) == "Write-up"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"system": "snomed"}, "“snomed” is not a code system this site knows."),
        ({"kind": "person"}, "“person” is not a kind of result"),
        ({"payer": "acme"}, "“acme” is not a payer this site has."),
        ({"page": "two"}, "The page number must be a whole number"),
        ({"page": "0"}, "The page number must be 1 or more."),
        ({"page": "9" * 5000}, "The page number must be a whole number"),
    ],
)
def test_unknown_filter_values_get_a_clear_400(client, sample_data, params, message):
    response = client.get("/search/", {"q": "work hardening", **params})
    assert response.status_code == 400
    (alert,) = html.fromstring(response.content).xpath("//*[@role='alert']")
    assert message in words(alert)


def test_an_oversized_query_says_how_long_a_search_may_be(client, sample_data):
    response = client.get("/search/", {"q": "x" * 250})
    (alert,) = html.fromstring(response.content).xpath("//*[@role='alert']")
    assert words(alert) == (
        "That search is too long: use at most 200 characters (it has 250)."
    )


def test_a_page_past_the_end_shows_the_last_page(client, sample_data):
    tree = results_page(client.get("/search/", {"q": "work hardening", "page": "999"}))
    assert tree.xpath("//ol[@class='results']/li")


@pytest.fixture
def paged(client, sample_data, monkeypatch, django_capture_on_commit_callbacks):
    """Results one to a page, with enough CPT matches for several pages."""
    monkeypatch.setattr("carecodes.views.RESULTS_PER_PAGE", 1)
    with django_capture_on_commit_callbacks(execute=True):
        for number in range(3):
            Code.objects.create(
                system=CodeSystem.CPT,
                code=f"9759{number}",
                descriptor=f"Work hardening exercise variant {number}",
            )

    def get(**params):
        return results_page(client.get("/search/", {"q": "work hardening", **params}))

    return get


def test_pagination_keeps_the_query_and_filters(paged):
    tree = paged(system="cpt", page="2")
    (nav,) = tree.xpath("//nav[@class='pagination']")
    assert nav.get("aria-label") == "Pages"
    (previous,) = nav.xpath(".//a[@rel='prev']/@href")
    assert previous == "?q=work+hardening&system=cpt"
    (following,) = nav.xpath(".//a[@rel='next']/@href")
    assert following == "?q=work+hardening&system=cpt&page=3"
    (current,) = nav.xpath(".//a[@aria-current='page']")
    assert words(current) == "Page 2"
    assert tree.xpath("//ol[@class='results']/@start") == ["2"]


def test_the_first_page_has_no_previous_link_and_the_last_no_next(paged):
    first = paged()
    assert not first.xpath("//a[@rel='prev']")
    assert first.xpath("//a[@rel='next']")
    last = paged(page="999")
    assert last.xpath("//a[@rel='prev']")
    assert not last.xpath("//a[@rel='next']")
    assert "page" in last.findtext(".//title")


def test_nothing_found_still_offers_examples(client, sample_data):
    tree = results_page(client.get("/search/", {"q": "qqqzzzxxy"}))
    assert words(tree.xpath("//h1")[0]) == "0 results for “qqqzzzxxy”"
    assert "Nothing matched" in words(tree.xpath("//main")[0])
    examples = tree.xpath("//ul[@class='search-examples']//a/@href")
    assert "/search/?q=97546" in examples


def test_an_empty_search_offers_examples(client, sample_data):
    tree = results_page(client.get("/search/", {"q": "  "}))
    assert words(tree.xpath("//h1")[0]) == "Search"
    assert tree.xpath("//ul[@class='search-examples']//a")


def fake_results(query, filters=None, page=1, per_page=20):
    return search_engine.Results(
        query=query,
        filters=filters or search_engine.Filters(),
        hits=[
            search_engine.Hit(
                kind="code",
                title="97546 <b>Work</b> hardening",
                url="/codes/cpt/97546/",
                snippet=format_html("… each additional <mark>{}</mark> …", "hour"),
                detail="CPT 97546",
                system="cpt",
                code="97546",
                reason="Code in range 97545–97546",
            )
        ],
        total=1,
        page=1,
        per_page=per_page,
        suggestion="work hardening",
        counts={"code": 1, "write-up": 0, "policy": 0},
        notice="Codes from 97545 to 97546",
    )


def test_snippets_keep_their_marks_and_everything_else_is_escaped(
    client, sample_data, monkeypatch
):
    monkeypatch.setattr(search_engine, "search", fake_results)
    tree = results_page(client.get("/search/", {"q": "wrok", "kind": "code"}))
    (item,) = tree.xpath("//ol[@class='results']/li")
    assert item.xpath(".//p[@class='snippet']/mark/text()") == ["hour"]
    assert not item.xpath(".//b"), "a title is text, never markup"
    assert words(item.xpath(".//a")[0]) == "97546 <b>Work</b> hardening"
    assert words(item.xpath(".//*[@class='reason']")[0]) == "Code in range 97545–97546"
    assert words(tree.xpath("//*[@class='search-notice']")[0]) == (
        "Codes from 97545 to 97546"
    )
    (did_you_mean,) = tree.xpath("//*[@class='did-you-mean']")
    assert words(did_you_mean) == "Did you mean work hardening?"
    assert did_you_mean.xpath(".//a/@href") == ["?q=work+hardening&kind=code"]


def test_the_search_box_and_its_script_are_on_every_page(client, sample_data):
    for address in ["/", "/codes/cpt/97546/", "/policies/aetna/0198/", "/search/"]:
        tree = html.fromstring(client.get(address).content)
        (box,) = tree.xpath("//header//form[@role='search']//input[@name='q']")
        assert box.get("data-suggest") == "/search/suggest/"
        (script,) = tree.xpath("//script[@src]")
        assert script.get("src") == "/static/js/autocomplete.js"
        assert script.get("defer") is not None
        assert not tree.xpath(
            "//script[not(@src) and not(@type='application/ld+json')]"
        )
        assert not tree.xpath("//@style")


def test_the_home_page_declares_a_search_action(client, sample_data):
    tree = html.fromstring(client.get("/").content)
    (json_ld,) = tree.xpath("//script[@type='application/ld+json']/text()")
    site = json.loads(json_ld)
    assert site["@type"] == "WebSite"
    action = site["potentialAction"]
    assert action["@type"] == "SearchAction"
    assert action["target"] == "http://testserver/search/?q={search_term_string}"
    assert action["query-input"] == "required name=search_term_string"
    filled = action["target"].replace("{search_term_string}", "work+hardening")
    assert client.get(filled).status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"q": "work hardening"},
        {"q": "work hardening", "kind": "policy", "payer": "aetna", "page": "1"},
        {"q": "fracture", "system": "icd-10-cm", "page": "2"},
    ],
)
def test_the_results_page_costs_the_engines_queries_plus_one_for_payers(
    client, sample_data, django_assert_num_queries, params
):
    # The engine's own count is its business (and pinned in its tests); the page
    # adds exactly one query, the payer filter's choices.
    filters = search_engine.Filters(
        system=params.get("system", ""),
        kind=params.get("kind", ""),
        payer=params.get("payer", ""),
    )
    page = int(params.get("page", 1))
    search_engine.search(params["q"], filters, page)
    with CaptureQueriesContext(connection) as engine:
        search_engine.search(params["q"], filters, page)
    with django_assert_num_queries(len(engine) + 1):
        client.get("/search/", params)


@pytest.mark.parametrize(
    "params", [{"q": ""}, {"q": "x" * 201}, {"q": "work", "kind": "nonsense"}]
)
def test_an_empty_or_refused_search_costs_no_query(
    client, sample_data, django_assert_num_queries, params
):
    with django_assert_num_queries(0):
        client.get("/search/", params)
