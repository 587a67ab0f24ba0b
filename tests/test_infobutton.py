"""
The HL7 Infobutton responder: an EHR asks for a code and gets the write-up, the
nearest ancestor's write-up or the policies naming it, as Atom (checked against RFC
4287's RELAX NG grammar), MedlinePlus Connect-style JSON (checked against our JSON
Schema) or JSONP; a person's browser gets the page itself or a short list.
"""

import json
from pathlib import Path
from urllib.parse import urlencode

import jsonschema
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lxml import etree
from lxml import html as lxml_html

from carecodes.infobutton import MAX_ENTRIES, search_engine
from procedures.models import Code, Procedure, PublicationStatus

from .hostile_text import QUERIES

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parent / "data"
ATOM_GRAMMAR = etree.RelaxNG(etree.parse(str(DATA / "acceptance" / "atom.rng")))
JSON_SCHEMA = json.loads((DATA / "infobutton-feed.schema.json").read_text())
A = {"atom": "http://www.w3.org/2005/Atom"}

CPT_OID = "2.16.840.1.113883.6.12"
ICD10CM_OID = "2.16.840.1.113883.6.90"
SNOMED_OID = "2.16.840.1.113883.6.96"
WRITEUP_TITLE = "Work Hardening/Conditioning; Each Additional Hour"
POLICY_TITLE = "Aetna policy 0198: Work Hardening Programs"
SEED_RANGE = "S00.00X+ - T88.9XX+"


def service(client, **params):
    return client.get("/infobutton/service?" + urlencode(params))


def ask(client, code, system, **params):
    params = {
        "mainSearchCriteria.v.c": code,
        "mainSearchCriteria.v.cs": system,
        **params,
    }
    return client.get("/infobutton/service?" + urlencode(params))


def atom(response):
    """The feed, after checking it against RFC 4287's grammar."""
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/xml; charset=utf-8"
    feed = etree.fromstring(response.content)
    ATOM_GRAMMAR.assertValid(feed)
    return feed


def feed_json(response):
    """The JSON tree, after checking it against the schema."""
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    tree = json.loads(response.content)
    jsonschema.validate(tree, JSON_SCHEMA)
    return tree["feed"]


def entry_titles(feed):
    return [entry.findtext("atom:title", namespaces=A) for entry in entries_of(feed)]


def entries_of(feed):
    return feed.findall("atom:entry", namespaces=A)


def summary_text(entry) -> str:
    """The text a reader sees in an Atom entry's HTML summary."""
    markup = entry.findtext("atom:summary", namespaces=A)
    return " ".join(lxml_html.fromstring(f"<div>{markup}</div>").text_content().split())


@pytest.fixture
def diabetes_codes(db):
    """E11 > E11.6 > E11.65, with a published write-up on E11.6 and one on E11."""
    e11 = Code.objects.create(
        system="icd-10-cm",
        code="E11",
        descriptor="Type 2 diabetes mellitus",
        is_billable=False,
    )
    e116 = Code.objects.create(
        system="icd-10-cm",
        code="E11.6",
        descriptor="Type 2 diabetes mellitus with other specified complications",
        is_billable=False,
        parent=e11,
    )
    Code.objects.create(
        system="icd-10-cm",
        code="E11.65",
        descriptor="Type 2 diabetes mellitus with hyperglycemia",
        parent=e116,
    )
    for code, title, summary in [
        (e11, "Type 2 diabetes", "Type 2 diabetes means the body cannot use insulin."),
        (
            e116,
            "Complications of type 2 diabetes",
            "High blood sugar over years can harm **nerves**, eyes and kidneys.",
        ),
    ]:
        Procedure.objects.create(
            code=code, title=title, summary=summary, status=PublicationStatus.PUBLISHED
        )


# What an EHR gets for a code.


def test_the_issues_curl_for_cpt_97546_returns_the_write_up_entry(client, sample_data):
    feed = feed_json(
        ask(
            client,
            "97546",
            CPT_OID,
            informationRecipient="PAT",
            knowledgeResponseType="application/json",
        )
    )
    first = feed["entry"][0]
    assert first["title"]["_value"] == WRITEUP_TITLE
    assert first["link"][0]["href"] == "http://testserver/codes/cpt/97546/"
    assert first["link"][0]["hreflang"] == "en"
    assert "specialized therapy program" in first["summary"]["_value"]
    assert first["summary"]["_value"].startswith("<p>")
    # The seed bulletin lists 97546 itself: its policy follows the write-up.
    assert [entry["title"]["_value"] for entry in feed["entry"]] == [
        WRITEUP_TITLE,
        POLICY_TITLE,
    ]
    assert feed["title"]["_value"] == "CareCodes"
    assert "CPT 97546" in feed["subtitle"]["_value"]
    assert "American Medical Association" in feed["rights"]["_value"]


def test_the_atom_feed_is_valid_and_echoes_the_request_as_categories(
    client, sample_data
):
    feed = atom(ask(client, "97546", CPT_OID, informationRecipient="PAT"))
    categories = [
        (node.get("scheme"), node.get("term"))
        for node in feed.findall("atom:category", namespaces=A)
    ]
    assert categories == [
        ("mainSearchCriteria.v.c", "97546"),
        ("mainSearchCriteria.v.cs", CPT_OID),
        ("informationRecipient", "PAT"),
    ]
    for element in ("title", "subtitle", "updated", "id", "author/atom:name"):
        assert feed.findtext(f"atom:{element}", namespaces=A), element
    assert entry_titles(feed) == [WRITEUP_TITLE, POLICY_TITLE]
    first = entries_of(feed)[0]
    link = first.find("atom:link", namespaces=A)
    assert link.get("rel") == "alternate"
    assert link.get("hreflang") == "en"
    assert link.get("href") == "http://testserver/codes/cpt/97546/"
    assert first.find("atom:summary", namespaces=A).get("type") == "html"
    assert first.findtext("atom:updated", namespaces=A).endswith("Z")
    assert first.findtext("atom:id", namespaces=A) != entries_of(feed)[1].findtext(
        "atom:id", namespaces=A
    )


def test_jsonp_wraps_the_same_tree_in_the_callback(client, sample_data):
    response = ask(
        client,
        "97546",
        CPT_OID,
        knowledgeResponseType="application/javascript",
        callback="EHR.show_education$1",
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/javascript; charset=utf-8"
    body = response.content.decode()
    assert body.startswith("/**/EHR.show_education$1(")
    assert body.endswith(");")
    tree = json.loads(body[len("/**/EHR.show_education$1(") : -2])
    jsonschema.validate(tree, JSON_SCHEMA)
    plain = feed_json(
        ask(client, "97546", CPT_OID, knowledgeResponseType="application/json")
    )
    assert [entry["title"] for entry in tree["feed"]["entry"]] == [
        entry["title"] for entry in plain["entry"]
    ]
    # Nothing in the text can end the script or a JavaScript line early.
    assert "<" not in body
    assert "\u2028" not in body


@pytest.mark.parametrize(
    "callback",
    [
        "alert(1)//",
        "1up",
        "a" * 65,
        "cb;alert(1)",
        "<script>",
        "cb\u00e9",
        "cb ",
        "",
        "x-y",
    ],
)
def test_jsonp_refuses_a_callback_that_is_not_a_plain_name(
    client, sample_data, callback
):
    response = ask(
        client,
        "97546",
        CPT_OID,
        knowledgeResponseType="application/javascript",
        callback=callback,
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert b"callback" in response.content


def test_an_icd_10_cm_code_reached_only_through_a_range_returns_the_policy(
    client, sample_data
):
    # S52.501A is a code on the site that the bulletin names only within its range.
    feed = atom(ask(client, "S52.501A", ICD10CM_OID))
    assert entry_titles(feed) == [POLICY_TITLE]
    text = summary_text(entries_of(feed)[0])
    assert f"names ICD-10-CM S52.501A through {SEED_RANGE}" in text
    assert "(Not covered)" in text
    href = entries_of(feed)[0].find("atom:link", namespaces=A).get("href")
    assert href == "http://testserver/policies/aetna/0198/"


def test_a_code_in_the_range_that_has_no_row_yet_still_returns_the_policy(
    client, sample_data
):
    assert not Code.objects.filter(code="S82.101A").exists()
    feed = feed_json(
        ask(client, "S82101A", ICD10CM_OID, knowledgeResponseType="application/json")
    )
    assert [entry["title"]["_value"] for entry in feed["entry"]] == [POLICY_TITLE]


def test_an_ehr_style_request_for_e11_65_falls_back_to_the_nearest_ancestor(
    client, diabetes_codes
):
    # What an EHR sends (OpenEMR and others add the patient's context).
    response = service(
        client,
        **{
            "mainSearchCriteria.v.c": "E11.65",
            "mainSearchCriteria.v.cs": ICD10CM_OID,
            "mainSearchCriteria.v.dn": "Type 2 diabetes mellitus with hyperglycemia",
            "informationRecipient": "PAT",
            "informationRecipient.languageCode.c": "en",
            "patientPerson.administrativeGenderCode.c": "F",
            "age.v.v": "54",
            "age.v.u": "a",
            "taskContext.c.c": "PROBLISTREV",
        },
    )
    feed = atom(response)
    assert entry_titles(feed) == ["Complications of type 2 diabetes"]
    entry = entries_of(feed)[0]
    assert entry.find("atom:link", namespaces=A).get("href") == (
        "http://testserver/codes/icd-10-cm/E11.6/"
    )
    text = summary_text(entry)
    assert "No write-up explains ICD-10-CM E11.65 itself yet" in text
    assert "ICD-10-CM E11.6" in text
    assert "can harm nerves" in text
    # Rendered through the site's Markdown renderer: the bold survives as markup.
    assert "<strong>nerves</strong>" in entry.findtext("atom:summary", namespaces=A)


def test_the_code_written_without_its_dot_falls_back_the_same_way(
    client, diabetes_codes
):
    Procedure.objects.filter(code__code="E11.6").update(status=PublicationStatus.DRAFT)
    feed = atom(ask(client, "e1165", "http://hl7.org/fhir/sid/icd-10-cm"))
    # The draft on E11.6 is not public: the next code up answers.
    assert entry_titles(feed) == ["Type 2 diabetes"]


def test_a_hcpcs_code_returns_the_policy_listing_it(client, sample_data):
    feed = atom(ask(client, "s9117", "2.16.840.1.113883.6.285"))
    assert entry_titles(feed) == [POLICY_TITLE]
    assert "lists HCPCS Level II S9117 under" in summary_text(entries_of(feed)[0])


@pytest.mark.parametrize(
    "system",
    [CPT_OID, f"urn:oid:{CPT_OID}", "http://www.ama-assn.org/go/cpt", "CPT"],
)
def test_the_code_system_may_be_an_oid_a_urn_or_a_fhir_uri(client, sample_data, system):
    assert entry_titles(atom(ask(client, "97546", system)))[0] == WRITEUP_TITLE


# A clinician's view.


def test_a_clinician_gets_the_descriptor_add_on_rule_and_coverage_first(
    client, sample_data
):
    feed = atom(ask(client, "97546", CPT_OID, informationRecipient="PROV"))
    titles = entry_titles(feed)
    assert titles[0].startswith("CPT 97546: Work hardening/conditioning")
    assert titles[1:] == [POLICY_TITLE, WRITEUP_TITLE]
    text = summary_text(entries_of(feed)[0])
    assert "each additional hour" in text
    assert "Add-on code" in text
    assert "97545" in text
    assert (
        "Aetna policy 0198: Work Hardening Programs lists it under “CPT codes not "
        "covered for indications listed in the CPB” (Not covered)"
    ) in text
    summary = entries_of(feed)[0].findtext("atom:summary", namespaces=A)
    assert 'href="http://testserver/policies/aetna/0198/"' in summary


# Language.


def test_spanish_is_answered_in_english_and_the_feed_says_so(client, sample_data):
    feed = atom(
        ask(client, "97546", CPT_OID, **{"informationRecipient.languageCode.c": "es"})
    )
    assert feed.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    assert "Spanish is not available yet" in feed.findtext(
        "atom:subtitle", namespaces=A
    )
    assert entry_titles(feed)[0] == WRITEUP_TITLE
    links = feed.findall("atom:entry/atom:link", namespaces=A)
    assert {link.get("hreflang") for link in links} == {"en"}


# No content, and requests that cannot be read.


@pytest.mark.parametrize(
    ("code", "system"),
    [
        ("99999", CPT_OID),  # a valid CPT code the site does not have
        ("Q99.9", ICD10CM_OID),  # a valid ICD-10-CM code nothing names
        ("not a code", CPT_OID),
        ("44054006", SNOMED_OID),  # a code system the site does not carry
        ("97546", "http://example.org/codes"),
    ],
)
def test_an_unknown_code_or_system_gets_an_empty_valid_feed(
    client, sample_data, code, system
):
    feed = atom(ask(client, code, system))
    assert entries_of(feed) == []
    assert "has no page for" in feed.findtext("atom:subtitle", namespaces=A)
    empty = feed_json(
        ask(client, code, system, knowledgeResponseType="application/json")
    )
    assert empty["entry"] == []


def test_an_unknown_code_with_a_display_name_is_looked_up_by_its_name(
    client, sample_data
):
    feed = atom(
        service(
            client,
            **{
                "mainSearchCriteria.v.c": "44054006",
                "mainSearchCriteria.v.cs": SNOMED_OID,
                "mainSearchCriteria.v.dn": "work hardening",
            },
        )
    )
    titles = entry_titles(feed)
    assert titles[0] == WRITEUP_TITLE
    assert POLICY_TITLE in titles
    assert len(titles) <= 3


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({}, "Say what to look up"),
        ({"mainSearchCriteria.v.cs": CPT_OID}, "Say what to look up"),
        ({"mainSearchCriteria.v.c": "97546", "knowledgeResponseType": "text/html"},
         "knowledgeResponseType must be"),
        ({"mainSearchCriteria.v.c": "97546", "informationRecipient": "PAYOR"},
         "informationRecipient must be PAT"),
        ({"mainSearchCriteria.v.c": "97546",
          "informationRecipient.languageCode.c": "<b>"},
         "must be a language code"),
        ({"mainSearchCriteria.v.c": "97546",
          "knowledgeResponseType": "application/javascript"},
         "needs callback="),
        ({"mainSearchCriteria.v.c": "9" * 41}, "too long"),
        ({"mainSearchCriteria.v.dn": "x" * 201}, "too long"),
        # Fits ICD-10-CM and HCPCS alike (S91.17, S9117): the system must be named.
        ({"mainSearchCriteria.v.c": "S9117"}, "Say which code system"),
    ],
)  # fmt: skip
def test_a_malformed_request_gets_a_400_with_a_plain_reason(
    client, db, django_assert_num_queries, params, reason
):
    with django_assert_num_queries(0):
        response = service(client, **params)
    assert response.status_code == 400
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert reason in response.content.decode()
    assert response["Access-Control-Allow-Origin"] == "*"


def test_a_parameter_given_twice_is_refused(client, db):
    response = client.get(
        "/infobutton/service?mainSearchCriteria.v.c=97546&mainSearchCriteria.v.c=97545"
    )
    assert response.status_code == 400
    assert "once" in response.content.decode()


def test_the_summary_goes_through_the_sanitising_renderer(client, sample_data):
    Procedure.objects.filter(code__code="97546").update(
        rendered={}, summary='<script>alert(1)</script><a href="javascript:x">*Hi*</a>'
    )
    feed = atom(ask(client, "97546", CPT_OID))
    summary = entries_of(feed)[0].findtext("atom:summary", namespaces=A)
    assert "<script" not in summary
    assert "javascript:" not in summary
    assert "<em>Hi</em>" in summary


PARAMETER_VALUES = {
    "mainSearchCriteria.v.c": st.one_of(
        QUERIES, st.sampled_from(["97546", "E11.65", "S52501A", "Z85", "*", ""])
    ),
    "mainSearchCriteria.v.cs": st.one_of(
        st.text(max_size=30),
        st.sampled_from(
            [CPT_OID, ICD10CM_OID, SNOMED_OID, "urn:oid:", "http://", "icd-10", "//"]
        ),
    ),
    "mainSearchCriteria.v.dn": QUERIES,
    "mainSearchCriteria.v.ot": QUERIES,
    "informationRecipient": st.sampled_from(["PAT", "PROV", "prov", "", "x"]),
    "informationRecipient.languageCode.c": st.sampled_from(
        ["en", "es", "es-US", "spa", "", "zz-ZZ-x", "1"]
    ),
    "knowledgeResponseType": st.sampled_from(
        ["text/xml", "application/json", "application/javascript", "", "x"]
    ),
    "callback": st.sampled_from(["cb", "a.b$", "", "x()", "ü"]),
}
REQUESTS = st.fixed_dictionaries({}, optional=PARAMETER_VALUES)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(params=REQUESTS)
@example(params={"mainSearchCriteria.v.c": "97546\x00"})
@example(params={"mainSearchCriteria.v.c": "S00.00X+ - T88.9XX+"})
@example(params={"mainSearchCriteria.v.dn": "\x0b\ud7ff\ufffe"})
def test_no_request_gets_a_server_error(client, sample_data, params):
    for view in ("service", "application"):
        response = client.get(f"/infobutton/{view}", params)
        assert response.status_code in {200, 302, 400, 404}, (view, params)
        if view == "service" and response.status_code == 200:
            kind = response["Content-Type"]
            if kind.startswith("text/xml"):
                atom(response)
            elif kind == "application/json":
                feed_json(response)


def test_nothing_sent_comes_back_as_markup(client, sample_data):
    payload = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'
    for view in ("service", "application"):
        response = client.get(
            f"/infobutton/{view}",
            {
                "mainSearchCriteria.v.c": payload[:40],
                "mainSearchCriteria.v.dn": payload,
            },
        )
        assert response.status_code in {200, 404}
        assert b"<script>alert" not in response.content
        assert b"<img" not in response.content


# HTTP.


def test_any_origin_may_read_it_and_shared_caches_may_keep_it(client, sample_data):
    response = ask(client, "97546", CPT_OID)
    assert response["Access-Control-Allow-Origin"] == "*"
    directives = {part.strip() for part in response["Cache-Control"].split(",")}
    assert directives == {"public", "max-age=300"}
    assert response["ETag"]
    again = client.get(
        response.request["PATH_INFO"] + "?" + response.request["QUERY_STRING"],
        headers={"if-none-match": response["ETag"]},
    )
    assert again.status_code == 304
    preflight = client.options("/infobutton/service")
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "*"
    assert "GET" in preflight["Access-Control-Allow-Methods"]
    assert client.post("/infobutton/service").status_code == 405
    head = client.head("/infobutton/service?" + response.request["QUERY_STRING"])
    assert head.status_code == 200
    assert head.content == b""


def test_query_counts_are_pinned(client, sample_data, django_assert_num_queries):
    # The code and the codes above it with their write-ups, then the policies.
    with django_assert_num_queries(2):
        ask(client, "97546", CPT_OID, knowledgeResponseType="application/json")
    with django_assert_num_queries(2):
        ask(client, "S52.501A", ICD10CM_OID)
    with django_assert_num_queries(2):
        ask(client, "99999", CPT_OID)
    # The clinician's view adds the add-on code's primary codes and its add-ons.
    with django_assert_num_queries(4):
        ask(client, "97546", CPT_OID, informationRecipient="PROV")
    # A code system the site does not carry costs nothing.
    with django_assert_num_queries(0):
        ask(client, "44054006", SNOMED_OID)


def test_a_search_by_name_costs_the_engines_queries_plus_one_per_kind_found(
    client, sample_data, django_assert_num_queries
):
    # The engine's own count is its business (pinned in its tests, and not the same
    # on both databases); the responder then reads the write-ups, codes and
    # policies it found, one query for each kind.
    search_engine.search("work hardening", None, 1, MAX_ENTRIES * 3)
    with CaptureQueriesContext(connection) as engine:
        search_engine.search("work hardening", None, 1, MAX_ENTRIES * 3)
    with django_assert_num_queries(len(engine) + 3):
        feed = atom(service(client, **{"mainSearchCriteria.v.dn": "work hardening"}))
    assert len(entries_of(feed)) == 3


def test_the_fallback_costs_the_same_two_queries(
    client, diabetes_codes, django_assert_num_queries
):
    with django_assert_num_queries(2):
        ask(client, "E11.65", ICD10CM_OID)


# A person's browser.


def application(client, **params):
    return client.get("/infobutton/application?" + urlencode(params))


def test_the_application_redirects_to_the_write_up_page(
    client, sample_data, django_assert_num_queries
):
    with django_assert_num_queries(2):
        response = application(
            client,
            **{"mainSearchCriteria.v.c": "97546", "mainSearchCriteria.v.cs": CPT_OID},
        )
    assert response.status_code == 302
    assert response["Location"] == "http://testserver/codes/cpt/97546/"


def test_the_application_takes_a_clinician_to_the_code_page(client, sample_data):
    response = application(
        client,
        **{
            "mainSearchCriteria.v.c": "S52.501A",
            "mainSearchCriteria.v.cs": ICD10CM_OID,
            "informationRecipient": "PROV",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "http://testserver/codes/icd-10-cm/S52.501A/"


def test_the_application_redirects_to_the_ancestors_write_up(client, diabetes_codes):
    response = application(
        client,
        **{"mainSearchCriteria.v.c": "E11.65", "mainSearchCriteria.v.cs": ICD10CM_OID},
    )
    assert response.status_code == 302
    assert response["Location"] == "http://testserver/codes/icd-10-cm/E11.6/"


def test_the_application_lists_the_pages_when_several_fit(client, sample_data):
    response = application(client, **{"mainSearchCriteria.v.dn": "work hardening"})
    assert response.status_code == 200
    page = lxml_html.fromstring(response.content)
    assert page.xpath("//h1")[0].text_content() == "Pages for “work hardening”"
    links = page.xpath("//main//li/h2/a")
    assert [link.text_content() for link in links][:2] == [
        WRITEUP_TITLE,
        POLICY_TITLE,
    ]
    assert links[0].get("href") == "http://testserver/codes/cpt/97546/"
    assert page.xpath("//meta[@name='robots']/@content") == ["noindex"]


def test_the_application_says_when_the_language_asked_for_is_missing(
    client, sample_data
):
    response = application(
        client,
        **{
            "mainSearchCriteria.v.c": "97546",
            "mainSearchCriteria.v.cs": CPT_OID,
            "informationRecipient.languageCode.c": "es",
        },
    )
    assert response.status_code == 200
    assert "Spanish is not available yet" in response.content.decode()


def test_the_application_answers_an_unknown_code_with_a_search(
    client, sample_data, django_assert_num_queries
):
    with django_assert_num_queries(2):
        response = application(
            client,
            **{"mainSearchCriteria.v.c": "99999", "mainSearchCriteria.v.cs": CPT_OID},
        )
    assert response.status_code == 404
    page = lxml_html.fromstring(response.content)
    assert "No page for CPT 99999 yet" in page.xpath("//h1")[0].text_content()
    assert page.xpath("//main//form[@role='search']")


def test_the_application_explains_a_malformed_request(client, db):
    response = application(client, **{"informationRecipient": "PAT"})
    assert response.status_code == 400
    assert "Say what to look up" in response.content.decode()
