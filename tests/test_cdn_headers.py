"""
Headers a CDN and a browser can cache public pages by (carecodes/page_cache.py):
Cache-Control, a strong ETag, Last-Modified, 304s, and brotli, gzip or identity bodies
of the same page. Both from the cache and drawn afresh.
"""

import gzip

import brotli
import pytest
from django.core.management import call_command
from django.test import Client
from django.utils.http import http_date, parse_http_date

from procedures.models import Procedure

pytestmark = pytest.mark.django_db(transaction=True)

CODE_PAGE = "/codes/cpt/97546/"


@pytest.fixture
def visitor():
    call_command("load_sample_data", verbosity=0, seeds_only=True)
    return Client()


def directives(response) -> set[str]:
    return {part.strip() for part in response["Cache-Control"].split(",")}


def test_public_pages_may_be_kept_briefly_by_a_cdn_and_revalidated_by_browsers(
    visitor,
):
    for state in ("miss", "hit"):
        response = visitor.get(CODE_PAGE)
        assert response["X-Page-Cache"] == state
        assert directives(response) == {
            "public",
            "max-age=0",
            "s-maxage=60",
            "stale-while-revalidate=300",
        }
        assert response["Vary"] == "Accept-Encoding"


def test_brotli_gzip_and_identity_bodies_are_the_same_page(visitor):
    plain = visitor.get(CODE_PAGE, headers={"accept-encoding": "identity"})
    assert "Content-Encoding" not in plain
    for state in ("miss", "hit"):
        squeezed = visitor.get(CODE_PAGE, headers={"accept-encoding": "gzip, br"})
        assert squeezed["Content-Encoding"] == "br"
        assert brotli.decompress(squeezed.content) == plain.content, state
        zipped = visitor.get(CODE_PAGE, headers={"accept-encoding": "gzip"})
        assert zipped["Content-Encoding"] == "gzip"
        assert gzip.decompress(zipped.content) == plain.content, state
    assert int(squeezed["Content-Length"]) < len(plain.content) / 3


def test_the_etag_is_strong_stable_and_says_which_encoding(visitor):
    tags = {
        encoding: visitor.get(CODE_PAGE, headers={"accept-encoding": encoding})["ETag"]
        for encoding in ("identity", "gzip", "br", "br")
    }
    assert not any(tag.startswith("W/") for tag in tags.values())
    assert len(set(tags.values())) == 3
    assert (
        visitor.get(CODE_PAGE, headers={"accept-encoding": "br"})["ETag"]
        == (tags["br"])
    )


@pytest.mark.parametrize("drawn", ["miss", "hit"])
def test_an_unchanged_page_answers_not_modified(visitor, drawn):
    first = visitor.get(CODE_PAGE, headers={"accept-encoding": "br"})
    if drawn == "miss":
        call_command("rebuild_search_index", verbosity=0)  # the next visit draws it
    again = visitor.get(
        CODE_PAGE, headers={"accept-encoding": "br", "if-none-match": first["ETag"]}
    )
    assert again["X-Page-Cache"] == drawn
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == first["ETag"]
    since = visitor.get(
        CODE_PAGE, headers={"if-modified-since": first["Last-Modified"]}
    )
    assert since.status_code == 304


def test_last_modified_is_the_newest_change_of_what_the_page_shows(visitor):
    writeup = Procedure.objects.get(code__code="97546")
    response = visitor.get(CODE_PAGE)
    assert parse_http_date(response["Last-Modified"]) >= int(
        writeup.updated_at.timestamp()
    )
    writeup.title += " (edited)"
    writeup.save()
    writeup.refresh_from_db()
    edited = visitor.get(CODE_PAGE)
    assert edited["Last-Modified"] == http_date(writeup.updated_at.timestamp())


def test_an_edited_page_answers_with_its_new_body(visitor):
    first = visitor.get(CODE_PAGE)
    writeup = Procedure.objects.get(code__code="97546")
    writeup.title += " (edited)"
    writeup.save()
    again = visitor.get(CODE_PAGE, headers={"if-none-match": first["ETag"]})
    assert again.status_code == 200
    assert again["ETag"] != first["ETag"]
    assert b"(edited)" in again.content
