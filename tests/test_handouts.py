"""PDF handouts: one per published write-up, on the site and exported for an EHR."""

import http.server
import io
import re
import threading
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils.http import http_date
from lxml import html
from pypdf import PdfReader

from procedures import handouts
from procedures.models import Code, CodeSystem, Procedure, PublicationStatus

from .test_code_page import SEED_SECTION_HEADINGS as SECTION_HEADINGS

pytestmark = pytest.mark.django_db

HANDOUT = "/codes/cpt/97546/handout.pdf"
TITLE = "Work Hardening/Conditioning; Each Additional Hour"


def pdf_text(data: bytes) -> str:
    """The words of every page, one space between each."""
    assert data.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(data))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


@pytest.fixture
def diabetes_writeup(db):
    """A published write-up on an ICD-10-CM code, whose file name has a dot."""
    code = Code.objects.create(
        system=CodeSystem.ICD10CM,
        code="E11.9",
        descriptor="Type 2 diabetes mellitus without complications",
    )
    return Procedure.objects.create(
        code=code,
        title="Type 2 diabetes without complications",
        summary="Your body does not use insulin well.",
        purpose="The code records diabetes that has not harmed other organs.",
        status=PublicationStatus.PUBLISHED,
    )


@pytest.fixture
def no_drawing(monkeypatch):
    """Fail the test if a handout is drawn (it should come from the cache)."""

    def refuse(html):
        raise AssertionError("the handout was drawn again")

    monkeypatch.setattr(handouts, "render_pdf", refuse)


# The handout on the site


def test_the_handout_is_a_pdf_with_the_write_ups_headings(client, sample_data):
    response = client.get(HANDOUT)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    text = pdf_text(response.content)
    assert TITLE in text
    for heading in SECTION_HEADINGS:
        assert heading in text
    # The body is the code page's write-up, not a summary of it.
    assert "Wear comfortable clothing suitable for physical activity." in text
    assert "Official descriptor:" in text
    assert "Printed from http://testserver/codes/cpt/97546/" in text
    assert "Medical disclaimer" in text
    assert "American Medical Association" in text
    assert "Page 1 of" in text


def test_the_pdf_opens_in_the_browser_named_dated_and_cacheable(client, sample_data):
    procedure = Procedure.objects.select_related("code").get(code__code="97546")
    response = client.get(HANDOUT)
    assert response["Content-Disposition"] == (
        'inline; filename="carecodes-cpt-97546-handout.pdf"'
    )
    assert response["Link"] == '<http://testserver/codes/cpt/97546/>; rel="canonical"'
    changed = max(procedure.updated_at, procedure.code.updated_at)
    assert response["Last-Modified"] == http_date(changed.timestamp())
    directives = {part.strip() for part in response["Cache-Control"].split(",")}
    assert {"public", f"max-age={handouts.MAX_AGE_SECONDS}"} <= directives


def test_an_unchanged_handout_is_not_sent_or_drawn_again(
    client, sample_data, no_drawing
):
    procedure = Procedure.objects.select_related("code").get(code__code="97546")
    since = http_date(procedure.updated_at.timestamp() + 60)
    response = client.get(HANDOUT, headers={"if-modified-since": since})
    assert response.status_code == 304
    assert response.content == b""


def test_a_handout_is_drawn_once_and_then_served_from_the_cache(
    client, sample_data, monkeypatch
):
    first = client.get(HANDOUT)

    def refuse(html):
        raise AssertionError("drawn twice")

    monkeypatch.setattr(handouts, "render_pdf", refuse)
    second = client.get(HANDOUT)
    assert second.status_code == 200
    assert second.content == first.content


def test_an_edited_write_up_gets_a_new_handout(client, sample_data):
    client.get(HANDOUT)
    procedure = Procedure.objects.get(code__code="97546")
    procedure.title = "Work hardening: one more hour"
    procedure.save()
    assert "Work hardening: one more hour" in pdf_text(client.get(HANDOUT).content)


@pytest.mark.parametrize("cached", [False, True], ids=["drawn", "cached"])
def test_the_handout_costs_one_query(
    client, sample_data, django_assert_num_queries, cached
):
    if cached:
        client.get(HANDOUT)
    with django_assert_num_queries(1):
        response = client.get(HANDOUT)
    assert response.status_code == 200
    assert TITLE in pdf_text(response.content)


def test_an_address_variant_redirects_to_the_canonical_handout(
    client, diabetes_writeup
):
    response = client.get("/codes/icd-10-cm/e119/handout.pdf")
    assert response.status_code == 301
    assert response["Location"] == "/codes/icd-10-cm/E11.9/handout.pdf"
    text = pdf_text(client.get(response["Location"]).content)
    assert "Type 2 diabetes without complications" in text
    assert "Summary" in text and "Purpose" in text
    # No CPT code, so no AMA notice.
    assert "American Medical Association" not in text


# No handout


def test_a_code_without_a_write_up_has_no_handout(
    client, sample_data, django_assert_num_queries
):
    assert not Procedure.objects.filter(code__code="97545").exists()
    with django_assert_num_queries(1):
        response = client.get("/codes/cpt/97545/handout.pdf")
    assert response.status_code == 404
    tree = html.fromstring(response.content)
    assert "CPT 97545 has no published write-up" in tree.text_content()
    assert "/codes/cpt/97545/" in tree.xpath("//main//a/@href")


def test_a_draft_write_up_has_no_handout(client, sample_data):
    Procedure.objects.filter(code__code="97546").update(status=PublicationStatus.DRAFT)
    assert client.get(HANDOUT).status_code == 404
    page = html.fromstring(client.get("/codes/cpt/97546/").content)
    assert not page.xpath("//a[contains(@href, 'handout.pdf')]")


def test_an_unknown_code_or_system_gets_a_404_page(client, sample_data):
    for address, message in [
        ("/codes/cpt/12/handout.pdf", "“12” is not a CPT code"),
        ("/codes/snomed/97546/handout.pdf", "“snomed” is not a code system"),
        ("/codes/cpt/97547/handout.pdf", "not on this site yet"),
    ]:
        response = client.get(address)
        assert response.status_code == 404
        assert message in html.fromstring(response.content).text_content(), address


def test_a_handout_only_answers_reads(client, sample_data):
    assert client.post(HANDOUT).status_code == 405


# When drawing fails


def test_a_failed_drawing_gives_a_503_page_that_points_to_the_code_page(
    client, sample_data, monkeypatch
):
    def broken(html):
        raise OSError("Pango went away")

    monkeypatch.setattr(handouts, "render_pdf", broken)
    response = client.get(HANDOUT)
    assert response.status_code == 503
    assert response["Retry-After"] == str(handouts.RETRY_AFTER_SECONDS)
    assert "no-store" in response["Cache-Control"]
    tree = html.fromstring(response.content)
    assert "could not be made" in tree.text_content()
    assert "/codes/cpt/97546/" in tree.xpath("//main//a/@href")


def test_a_missing_stylesheet_gives_the_503_page_not_a_server_error(
    client, sample_data, monkeypatch
):
    monkeypatch.setattr(handouts.finders, "find", lambda name: None)
    handouts.stylesheet.cache_clear()
    try:
        response = client.get(HANDOUT)
        assert response.status_code == 503
        assert "could not be made" in html.fromstring(response.content).text_content()
    finally:
        handouts.stylesheet.cache_clear()


def test_a_slow_drawing_gives_a_503_and_is_kept_for_the_next_request(
    client, sample_data, monkeypatch
):
    release = threading.Event()
    draw = handouts.render_pdf

    def slow(html):
        release.wait(10)
        return draw(html)

    monkeypatch.setattr(handouts, "render_pdf", slow)
    monkeypatch.setattr(handouts, "RENDER_TIMEOUT_SECONDS", 0.05)
    assert client.get(HANDOUT).status_code == 503
    release.set()
    # One drawing at a time: this returns once the slow one has finished.
    handouts._renderer.submit(lambda: None).result(timeout=30)
    monkeypatch.setattr(handouts, "render_pdf", lambda html: b"not drawn again")
    response = client.get(HANDOUT)
    assert response.status_code == 200
    assert TITLE in pdf_text(response.content)


def test_drawing_fetches_nothing_but_data_addresses():
    requests = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    here = f"http://127.0.0.1:{server.server_port}"
    pixel = (
        "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
    )
    try:
        pdf = handouts.render_pdf(
            f'<html><head><link rel="stylesheet" href="{here}/x.css">'
            f"<style>@import url({here}/y.css);"
            f"body {{ background: url({here}/z.png) }}"
            f'</style></head><body><p>Fetched nothing</p><img src="{here}/a.png">'
            f'<img src="file:///etc/hostname" alt="local"><img src="{pixel}" alt="">'
            "</body></html>"
        )
    finally:
        server.shutdown()
        server.server_close()
    assert requests == []
    assert "Fetched nothing" in pdf_text(pdf)


# The code page's link


def test_the_code_page_links_to_its_handout(client, sample_data):
    tree = html.fromstring(client.get("/codes/cpt/97546/").content)
    (link,) = tree.xpath("//main//a[contains(@href, 'handout.pdf')]")
    assert link.get("href") == HANDOUT
    assert link.get("type") == "application/pdf"
    # The words say what it is and that it is a PDF, out of context too.
    assert " ".join(link.text_content().split()) == (
        "Printable handout of this write-up (PDF)"
    )


def test_a_code_page_without_a_write_up_offers_no_handout(client, sample_data):
    tree = html.fromstring(client.get("/codes/cpt/97545/").content)
    assert not tree.xpath("//a[contains(@href, 'handout.pdf')]")


# export_handouts


def export(folder, *args):
    out = io.StringIO()
    call_command("export_handouts", str(folder), *args, stdout=out)
    return out.getvalue()


def test_export_writes_one_pdf_per_published_write_up_by_the_pattern(
    tmp_path, sample_data, diabetes_writeup
):
    Procedure.objects.create(
        code=Code.objects.get(system=CodeSystem.CPT, code="97537"),
        title="A draft",
        status=PublicationStatus.DRAFT,
    )
    output = export(tmp_path, "--lang", "en")
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["CPT_97546_en.pdf", "ICD10_E11.9_en.pdf"]
    assert f"Wrote 2 handouts to {tmp_path}" in output
    text = pdf_text((tmp_path / "CPT_97546_en.pdf").read_bytes())
    assert TITLE in text
    assert all(heading in text for heading in SECTION_HEADINGS)
    # No site address given, so the handout names none.
    assert "Printed from" not in text


def test_export_can_name_files_as_openemr_opens_them(
    tmp_path, sample_data, diabetes_writeup, monkeypatch
):
    monkeypatch.setattr(handouts, "render_pdf", lambda html: b"%PDF-1.7 test")
    export(tmp_path, "--openemr-names")
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["cpt4_97546_en.pdf", "icd10_e11.9_en.pdf"]


def test_export_names_the_code_page_when_given_the_site_address(tmp_path, sample_data):
    export(tmp_path, "--site-url", "https://carecodes.example.org/")
    text = pdf_text((tmp_path / "CPT_97546_en.pdf").read_bytes())
    assert "Printed from https://carecodes.example.org/codes/cpt/97546/" in text


def test_export_replaces_an_older_file_and_leaves_no_temporary_ones(
    tmp_path, sample_data
):
    (tmp_path / "CPT_97546_en.pdf").write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("the clinic's own file")
    export(tmp_path)
    assert (tmp_path / "CPT_97546_en.pdf").read_bytes().startswith(b"%PDF-")
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "CPT_97546_en.pdf",
        "notes.txt",
    ]


@pytest.mark.parametrize(
    ("folder", "args", "message"),
    [
        ("missing", [], "does not exist"),
        ("a-file", [], "is not a folder"),
        ("", ["--lang", "es"], "no write-ups in “es”"),
        ("", ["--lang", ""], "no write-ups in “”"),
        ("", ["--site-url", "carecodes.example.org"], "not an http(s) address"),
    ],
)
def test_export_refuses_what_it_cannot_do(tmp_path, sample_data, folder, args, message):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(CommandError, match=re.escape(message)):
        export(tmp_path / folder, *args)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a-file"]


def test_export_refuses_a_folder_it_cannot_write_to(tmp_path, sample_data, monkeypatch):
    # The tests run as root, whom file modes do not stop; ask as a user would be told.
    monkeypatch.setattr("os.access", lambda path, mode: False)
    with pytest.raises(CommandError, match="cannot be written to"):
        export(tmp_path)
    assert list(Path(tmp_path).iterdir()) == []
