"""
What search engines and link previews read on every public page: titles,
descriptions, canonical addresses, Open Graph and Twitter tags, breadcrumbs,
structured data, status codes and conditional requests.
"""

import datetime
import itertools
import json

import pytest
from lxml import html

from policies.models import Policy
from procedures.models import Procedure

pytestmark = pytest.mark.django_db

HOST = "http://testserver"
PUBLIC_PAGES = [
    "/",
    "/codes/",
    "/codes/cpt/97546/",
    "/codes/cpt/97545/",
    "/codes/icd-10-cm/S52.501A/",
    "/codes/cpt/97546/similar/",
    "/policies/aetna/0198/",
    "/payers/aetna/",
    "/sections/cpt/physical-medicine-and-rehabilitation/",
    "/sections/icd-10-cm/chapter-19/",
    "/search/?q=work+hardening",
]


@pytest.fixture
def pages(client, sample_data):
    """{address: parsed page} for every public page."""
    found = {}
    for address in PUBLIC_PAGES:
        response = client.get(address)
        assert response.status_code == 200, address
        found[address] = html.fromstring(response.content)
    return found


def meta(tree, attribute, name):
    (value,) = tree.xpath(f"//head/meta[@{attribute}='{name}']/@content")
    return value


def structured(tree) -> list[dict]:
    return [
        json.loads(text)
        for text in tree.xpath("//script[@type='application/ld+json']/text()")
    ]


def nodes(data, wanted: str):
    """Every JSON-LD object of type ``wanted``, however deeply nested."""
    if isinstance(data, dict):
        if data.get("@type") == wanted:
            yield data
        for value in data.values():
            yield from nodes(value, wanted)
    elif isinstance(data, list):
        for value in data:
            yield from nodes(value, wanted)


def test_every_page_has_its_own_title_and_description(pages):
    titles = [tree.findtext(".//title") for tree in pages.values()]
    descriptions = [meta(tree, "name", "description") for tree in pages.values()]
    assert len(set(titles)) == len(pages), titles
    assert len(set(descriptions)) == len(pages), descriptions
    for address, description in zip(pages, descriptions, strict=True):
        assert 50 <= len(description) <= 160, (address, description)
        assert "  " not in description and "<" not in description


def test_descriptions_come_from_the_content(pages):
    code_page = meta(pages["/codes/cpt/97546/"], "name", "description")
    assert code_page.startswith("CPT 97546 explained: Work hardening/conditioning")
    policy_page = meta(pages["/policies/aetna/0198/"], "name", "description")
    assert policy_page.startswith("Aetna policy 0198, Work Hardening Programs:")


def test_the_canonical_address_is_absolute_and_drops_the_query(client, sample_data):
    for address in [*PUBLIC_PAGES, "/search/?q=work+hardening&page=2&kind=code"]:
        tree = html.fromstring(client.get(address).content)
        (canonical,) = tree.xpath("//head/link[@rel='canonical']/@href")
        assert canonical == HOST + address.split("?")[0], address


def test_link_previews_get_open_graph_and_twitter_tags(pages):
    for address, tree in pages.items():
        canonical = tree.xpath("//link[@rel='canonical']/@href")[0]
        description = meta(tree, "name", "description")
        title = meta(tree, "property", "og:title")
        assert title and title != "CareCodes", address
        assert meta(tree, "property", "og:url") == canonical
        assert meta(tree, "property", "og:description") == description
        assert meta(tree, "property", "og:site_name") == "CareCodes"
        assert meta(tree, "property", "og:type") in {"website", "article"}
        assert meta(tree, "name", "twitter:card") == "summary"
        assert meta(tree, "name", "twitter:title") == title
        assert meta(tree, "name", "twitter:description") == description
    assert meta(pages["/codes/cpt/97546/"], "property", "og:title") == (
        "CPT 97546: Work Hardening/Conditioning; Each Additional Hour"
    )


def test_every_page_says_its_language(pages):
    for tree in pages.values():
        assert tree.get("lang") == "en"


def test_breadcrumbs_are_visible_and_match_the_breadcrumb_list(pages):
    for address, tree in pages.items():
        if address == "/":
            assert not tree.xpath("//nav[@aria-label='Breadcrumb']")
            continue
        (trail,) = tree.xpath("//nav[@aria-label='Breadcrumb']/ol")
        visible = [
            (link.text_content(), HOST + link.get("href"))
            for link in trail.xpath("li/a")
        ]
        assert visible[0] == ("Home", f"{HOST}/"), address
        assert trail.xpath("li[last()]/a/@aria-current") == ["page"]
        (crumbs,) = [
            crumbs
            for data in structured(tree)
            for crumbs in nodes(data, "BreadcrumbList")
        ]
        listed = [(item["name"], item["item"]) for item in crumbs["itemListElement"]]
        assert listed == visible, address
        positions = [item["position"] for item in crumbs["itemListElement"]]
        assert positions == list(range(1, len(visible) + 1))


def test_headings_go_down_one_level_at_a_time(pages):
    for address, tree in pages.items():
        levels = [
            int(h.tag[1])
            for h in tree.xpath("//main//*")
            if h.tag in {"h1", "h2", "h3", "h4", "h5", "h6"}
        ]
        assert levels[0] == 1 and levels.count(1) == 1, address
        for before, after in itertools.pairwise(levels):
            assert after <= before + 1, (address, levels)


def test_a_write_up_page_describes_a_medical_procedure_for_patients(
    client, sample_data
):
    Procedure.objects.filter(code__code="97546").update(
        reviewed_on=datetime.date(2026, 10, 1), reviewed_by="Dr Ana Ruiz, PT"
    )
    tree = html.fromstring(client.get("/codes/cpt/97546/").content)
    (page,) = structured(tree)
    assert page["@context"] == "https://schema.org"
    assert page["@type"] == "MedicalWebPage"
    assert page["url"] == f"{HOST}/codes/cpt/97546/"
    assert page["audience"] == {"@type": "MedicalAudience", "audienceType": "Patient"}
    assert page["lastReviewed"] == "2026-10-01"
    assert page["reviewedBy"] == {"@type": "Person", "name": "Dr Ana Ruiz, PT"}
    procedure = page["about"]
    assert procedure["@type"] == "MedicalProcedure"
    assert procedure["name"] == "Work Hardening/Conditioning; Each Additional Hour"
    assert procedure["description"].startswith("Work hardening/conditioning is")
    assert procedure["preparation"].startswith("Wear comfortable clothing")
    assert procedure["howPerformed"].startswith("Initial Assessment:")
    assert all(len(procedure[key]) <= 500 for key in ("preparation", "howPerformed"))
    assert procedure["code"] == {
        "@type": "MedicalCode",
        "codeValue": "97546",
        "codingSystem": "CPT",
        "name": "Work hardening/conditioning; each additional hour (List separately "
        "in addition to code for primary procedure)",
        "inCodeSet": {
            "@type": "CategoryCodeSet",
            "name": "CPT",
            "identifier": "urn:oid:2.16.840.1.113883.6.12",
        },
    }


def test_a_code_without_a_write_up_is_a_medical_code_for_clinicians(
    client, sample_data
):
    tree = html.fromstring(client.get("/codes/icd-10-cm/S52.501A/").content)
    (page,) = structured(tree)
    assert page["@type"] == "MedicalWebPage"
    assert page["audience"]["audienceType"] == "Clinician"
    assert page["about"]["@type"] == "MedicalCode"
    assert page["about"]["codeValue"] == "S52.501A"
    assert page["about"]["codingSystem"] == "ICD-10-CM"
    assert "lastReviewed" not in page and "reviewedBy" not in page


def test_a_policy_page_is_a_web_page_citing_its_references(client, sample_data):
    # The seed bulletin states no dates; a reviewed one says when.
    Policy.objects.filter(number="0198").update(
        last_reviewed_on=datetime.date(2026, 4, 9)
    )
    policy = Policy.objects.get(number="0198")
    tree = html.fromstring(client.get("/policies/aetna/0198/").content)
    (page,) = structured(tree)
    assert page["@type"] == "WebPage"
    assert page["url"] == f"{HOST}/policies/aetna/0198/"
    assert page["publisher"] == {"@type": "Organization", "name": "Aetna"}
    assert page["lastReviewed"] == policy.last_reviewed_on.isoformat()
    citations = page["citation"]
    assert len(citations) == policy.references.count() > 10
    assert all(c["@type"] == "CreativeWork" and c["name"] for c in citations)
    first = policy.references.order_by("position").first()
    assert citations[0]["name"] == first.citation


@pytest.mark.parametrize(
    ("address", "target"),
    [
        ("/codes/cpt/97546", "/codes/cpt/97546/"),
        ("/codes/CPT/97546/", "/codes/cpt/97546/"),
        ("/codes/icd-10-cm/s52501a/", "/codes/icd-10-cm/S52.501A/"),
        ("/codes/icd10cm/S52.501A/", "/codes/icd-10-cm/S52.501A/"),
        ("/codes/icd-10-cm/S52.501A/similar", "/codes/icd-10-cm/S52.501A/similar/"),
        ("/codes/cpt/97546/similar", "/codes/cpt/97546/similar/"),
        ("/policies/aetna/0198", "/policies/aetna/0198/"),
        ("/payers/aetna", "/payers/aetna/"),
        ("/payers/Aetna/", "/payers/aetna/"),
        ("/policies/AETNA/0198/", "/policies/aetna/0198/"),
        ("/codes", "/codes/"),
    ],
)
def test_variants_of_an_address_move_permanently_to_the_canonical_one(
    client, sample_data, address, target
):
    response = client.get(address)
    assert response.status_code == 301
    assert response["Location"] == target


def test_an_unknown_code_is_not_found_and_offers_a_search_and_nearby_codes(
    client, sample_data
):
    response = client.get("/codes/cpt/97547/")
    assert response.status_code == 404
    tree = html.fromstring(response.content)
    text = " ".join(tree.xpath("//main")[0].text_content().split())
    assert "CPT 97547 is a valid code, but it is not on this site yet." in text
    (box,) = tree.xpath("//main//form[@role='search']//input[@name='q']")
    assert box.get("value") == "97547"
    links = tree.xpath("//main//section[@class='not-found-suggestions']//a/@href")
    assert "/codes/cpt/97546/" in links and "/codes/cpt/97545/" in links
    assert tree.xpath("//head/meta[@name='robots']/@content") == ["noindex"]
    assert meta(tree, "name", "description").startswith("This page was not found")


def test_not_found_pages_cost_a_fixed_number_of_queries(
    client, sample_data, django_assert_num_queries
):
    # The code, then the codes before and after it.
    with django_assert_num_queries(3):
        assert client.get("/codes/cpt/97547/").status_code == 404
    # The lay-term rows its words can name, then the engine's suggestions.
    with django_assert_num_queries(2):
        assert client.get("/work-hardening/").status_code == 404


def test_a_long_descriptor_is_cut_for_link_previews(client, sample_data):
    tree = html.fromstring(client.get("/codes/icd-10-cm/S52.501A/").content)
    title = meta(tree, "property", "og:title")
    assert len(title) <= 90 and title.endswith("…")
    assert title.startswith("ICD-10-CM S52.501A: Unspecified fracture")


def test_a_missing_page_suggests_pages_its_address_names(client, sample_data):
    response = client.get("/work-hardening/")
    assert response.status_code == 404
    tree = html.fromstring(response.content)
    links = tree.xpath("//main//section[@class='not-found-suggestions']//a/@href")
    assert "/codes/cpt/97546/" in links
    assert "/policies/aetna/0198/" in links


def test_a_missing_page_with_nothing_to_suggest_still_offers_search(
    client, sample_data
):
    response = client.get("/zzqx/")
    assert response.status_code == 404
    tree = html.fromstring(response.content)
    assert tree.xpath("//main//form[@role='search']")
    assert not tree.xpath("//section[@class='not-found-suggestions']")


def test_pages_travel_compressed_and_still_answer_not_modified(client, sample_data):
    first = client.get("/policies/aetna/0198/", headers={"accept-encoding": "gzip"})
    assert first["Content-Encoding"] == "gzip"
    assert len(first.content) < len(client.get("/policies/aetna/0198/").content) / 3
    again = client.get(
        "/policies/aetna/0198/",
        headers={"accept-encoding": "gzip", "if-none-match": first["ETag"]},
    )
    assert again.status_code == 304


@pytest.mark.parametrize("address", PUBLIC_PAGES)
def test_a_browser_asking_again_gets_not_modified(client, sample_data, address):
    first = client.get(address)
    etag = first["ETag"]
    again = client.get(address, headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""


def test_an_edit_changes_the_pages_etag(client, sample_data):
    etag = client.get("/codes/cpt/97546/")["ETag"]
    Procedure.objects.filter(code__code="97546").update(title="Work hardening, hour")
    changed = client.get("/codes/cpt/97546/", headers={"if-none-match": etag})
    assert changed.status_code == 200
    assert changed["ETag"] != etag
