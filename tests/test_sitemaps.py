"""sitemap.xml and robots.txt: what search engines are told to read, and not to."""

import datetime
from pathlib import Path

import pytest
from django.utils import timezone
from lxml import etree

from carecodes.sitemaps import SITEMAPS
from policies.models import Policy
from procedures.models import Code, Procedure, PublicationStatus

pytestmark = pytest.mark.django_db

ACCEPTANCE = Path(__file__).resolve().parent / "data" / "acceptance"
NS = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
HOST = "http://testserver"


@pytest.fixture(scope="module")
def schemas():
    return {
        name: etree.XMLSchema(etree.parse(str(ACCEPTANCE / f"{name}.xsd")))
        for name in ("siteindex", "sitemap")
    }


def fetch_valid(client, address, schema):
    """The XML at ``address``, after checking it against the sitemaps.org schema."""
    response = client.get(address)
    assert response.status_code == 200, address
    assert response["Content-Type"].startswith("application/xml")
    document = etree.fromstring(response.content)
    assert schema.validate(document), (address, schema.error_log)
    return document


def read_all(client, schemas):
    """{sitemap address: {page URL: lastmod}} for every sitemap the index names."""
    index = fetch_valid(client, "/sitemap.xml", schemas["siteindex"])
    found = {}
    for loc in index.xpath("//s:sitemap/s:loc/text()", namespaces=NS):
        assert loc.startswith(f"{HOST}/sitemap-"), loc
        document = fetch_valid(client, loc.removeprefix(HOST), schemas["sitemap"])
        found[loc] = {
            url.findtext("s:loc", namespaces=NS): url.findtext(
                "s:lastmod", namespaces=NS
            )
            for url in document.xpath("//s:url", namespaces=NS)
        }
    return found


def urls_in(found, kind):
    prefix = f"{HOST}/sitemap-{kind}.xml"
    return {
        url: lastmod
        for loc, urls in found.items()
        if loc == prefix or loc.startswith(f"{prefix}?p=")
        for url, lastmod in urls.items()
    }


def test_the_index_and_every_sitemap_are_valid_sitemaps_org_documents(
    client, sample_data, schemas
):
    found = read_all(client, schemas)
    assert set(found) == {f"{HOST}/sitemap-{kind}.xml" for kind in SITEMAPS}
    for urls in found.values():
        assert urls, "no sitemap is empty"
        for url, lastmod in urls.items():
            assert url.startswith(f"{HOST}/"), url
            assert "?" not in url, url
            assert lastmod, f"{url} has no lastmod"
            datetime.date.fromisoformat(lastmod[:10])


def test_each_kind_of_page_has_its_own_sitemap(client, sample_data, schemas):
    found = read_all(client, schemas)
    write_ups, codes = urls_in(found, "write-ups"), urls_in(found, "codes")
    assert f"{HOST}/codes/cpt/97546/" in write_ups
    assert f"{HOST}/codes/cpt/97546/" not in codes, "each page is listed once"
    assert f"{HOST}/codes/cpt/97545/" in codes
    assert f"{HOST}/codes/icd-10-cm/S52.501A/" in codes
    assert f"{HOST}/policies/aetna/0198/" in urls_in(found, "policies")
    assert f"{HOST}/payers/aetna/" in urls_in(found, "payers")
    assert f"{HOST}/sections/cpt/physical-medicine-and-rehabilitation/" in urls_in(
        found, "sections"
    )
    assert set(urls_in(found, "pages")) == {f"{HOST}/", f"{HOST}/codes/"}
    listed = {url for urls in found.values() for url in urls}
    assert len(listed) == sum(len(urls) for urls in found.values())
    assert len(codes) == Code.objects.count() - Procedure.objects.published().count()


def test_lastmod_comes_from_the_content(client, sample_data, schemas):
    policy = Policy.objects.get(number="0198")
    Policy.objects.filter(pk=policy.pk).update(
        updated_at=datetime.datetime(2025, 3, 4, 12, tzinfo=datetime.UTC)
    )
    later = timezone.now() + datetime.timedelta(days=2)
    Procedure.objects.filter(code__code="97546").update(updated_at=later)
    found = read_all(client, schemas)
    assert urls_in(found, "policies")[f"{HOST}/policies/aetna/0198/"].startswith(
        "2025-03-04"
    )
    assert urls_in(found, "payers")[f"{HOST}/payers/aetna/"].startswith("2025-03-04")
    day = later.date().isoformat()
    assert urls_in(found, "write-ups")[f"{HOST}/codes/cpt/97546/"][:10] == day
    assert urls_in(found, "pages")[f"{HOST}/"][:10] == day


def test_a_draft_write_up_leaves_its_code_page_in_the_codes_sitemap(
    client, sample_data, schemas
):
    Procedure.objects.update(status=PublicationStatus.DRAFT)
    Policy.objects.update(status=PublicationStatus.DRAFT)
    found = read_all(client, schemas)
    assert f"{HOST}/codes/cpt/97546/" in urls_in(found, "codes")
    assert not urls_in(found, "policies")
    assert not urls_in(found, "payers"), "a payer with nothing published is thin"


def test_sitemaps_split_at_their_limit_and_the_index_names_every_part(
    client, sample_data, schemas, monkeypatch
):
    # The real limit is 50,000, which the full ICD-10-CM set passes; the sample data
    # passes 7.
    monkeypatch.setattr(SITEMAPS["codes"], "limit", 7)
    total = Code.objects.count() - Procedure.objects.published().count()
    found = read_all(client, schemas)
    parts = [loc for loc in found if loc.startswith(f"{HOST}/sitemap-codes.xml")]
    assert len(parts) == -(-total // 7) > 1
    assert parts[1] == f"{HOST}/sitemap-codes.xml?p=2"
    assert all(len(found[loc]) <= 7 for loc in parts)
    assert len(urls_in(found, "codes")) == total
    assert client.get(f"/sitemap-codes.xml?p={len(parts) + 1}").status_code == 404


def test_the_real_limit_is_the_protocols_50000(client):
    assert SITEMAPS["codes"].limit == 50_000
    assert SITEMAPS["write-ups"].limit == 50_000


def test_the_index_costs_a_fixed_number_of_queries(
    client, sample_data, django_assert_num_queries
):
    # A latest date for each of the 6 sitemaps, and a count for each of the 5 that
    # read the database, whatever the number of pages.
    with django_assert_num_queries(11):
        assert client.get("/sitemap.xml").status_code == 200


def test_an_unknown_sitemap_is_not_found(client, sample_data):
    assert client.get("/sitemap-nothing.xml").status_code == 404
    for query in ["p=zero", "p=-1", "p=1&p=2", "x=1", "p=1&utm=2"]:
        assert client.get(f"/sitemap-codes.xml?{query}").status_code == 404, query
    assert client.get("/sitemap.xml?x=1").status_code == 404


def test_taking_a_page_off_a_list_moves_the_lists_lastmod(client, sample_data, schemas):
    later = timezone.now() + datetime.timedelta(days=3)
    Procedure.objects.update(status=PublicationStatus.DRAFT, updated_at=later)
    Policy.objects.filter(number="0198").update(updated_at=later)
    Policy.objects.create(
        payer=Policy.objects.get(number="0198").payer,
        number="0001",
        title="Still published",
        status=PublicationStatus.PUBLISHED,
    )
    Policy.objects.filter(number="0198").update(status="withdrawn")
    found = read_all(client, schemas)
    day = later.date().isoformat()
    assert urls_in(found, "pages")[f"{HOST}/"][:10] == day
    assert urls_in(found, "codes")[f"{HOST}/codes/cpt/97546/"][:10] == day
    assert urls_in(found, "payers")[f"{HOST}/payers/aetna/"][:10] == day


def test_robots_txt_keeps_crawlers_out_of_admin_and_search_and_names_the_sitemap(
    client,
):
    response = client.get("/robots.txt")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    lines = response.content.decode().splitlines()
    assert lines[0] == "User-agent: *"
    assert {"Disallow: /admin/", "Disallow: /search/", "Allow: /"} <= set(lines)
    assert "Sitemap: http://testserver/sitemap.xml" in lines


def test_code_addresses_are_the_code_pages_own(client, sample_data, schemas):
    found = read_all(client, schemas)
    expected = {
        f"{HOST}{code.get_absolute_url()}"
        for code in Code.objects.exclude(procedure__status=PublicationStatus.PUBLISHED)
    }
    assert set(urls_in(found, "codes")) == expected
    for url in list(expected)[:20]:
        assert client.get(url.removeprefix(HOST)).status_code == 200


def test_the_index_dates_each_sitemap_by_its_newest_page(client, sample_data, schemas):
    found = read_all(client, schemas)
    index = etree.fromstring(client.get("/sitemap.xml").content)
    for entry in index.xpath("//s:sitemap", namespaces=NS):
        loc = entry.findtext("s:loc", namespaces=NS)
        assert entry.findtext("s:lastmod", namespaces=NS)[:10] == max(
            found[loc].values()
        ), loc
