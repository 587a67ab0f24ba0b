"""
manage.py export_site: the public site as files that a plain file server serves
with every link working and every page the live site's own bytes.
"""

import functools
import re
import threading
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urlsplit
from urllib.request import urlopen

import pytest
from django.core.management import CommandError, call_command

from carecodes.export import (
    MANIFEST,
    Export,
    check_target,
    file_for,
    sitemap_index_for_files,
)
from carecodes.sitemaps import SITEMAPS
from policies.models import Policy, PolicyStatus
from procedures.models import Procedure

pytestmark = pytest.mark.django_db

# The test client's host: canonical links and sitemap addresses name it.
BASE_URL = "http://testserver"
# Addresses a page may link to that answer each visitor and stay on the app server.
DYNAMIC = ("/search/", "/search/suggest/", "/admin/", "/api/", "/infobutton/")


@pytest.fixture
def collected(settings, tmp_path):
    """collectstatic's output in a folder of the test's own."""
    settings.STATIC_ROOT = tmp_path / "collected"
    call_command("collectstatic", interactive=False, verbosity=0)
    return settings.STATIC_ROOT


def export(target, **options):
    """The command's run, with what it wrote, kept unchanged and removed."""
    options.setdefault("only", "pages,codes,policies,payers,sections,sitemaps,static")
    summary = Export(target, BASE_URL, set(options["only"].split(","))).run()
    assert not summary.problems
    return summary


@pytest.fixture
def site(sample_data, collected, tmp_path):
    target = tmp_path / "site"
    target.mkdir()
    return target, export(target)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def file_server(site):
    """The export behind Python's plain file server, as nginx would serve it."""
    handler = functools.partial(QuietHandler, directory=str(site[0]))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def fetch(server, path):
    """(status, body) from the file server."""
    try:
        with urlopen(f"{server}{path}") as response:
            return response.status, response.read()
    except HTTPError as error:
        return error.code, b""


class Links(HTMLParser):
    """
    Every href, src and form action of a page (a parser of its own, not the
    exporter's regex).
    """

    def __init__(self):
        super().__init__()
        self.found = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in {"href", "src", "action"} and value:
                self.found.add(value)


def site_links(page: bytes) -> set[str]:
    parser = Links()
    parser.feed(page.decode())
    inside = set()
    for link in parser.found:
        if link.startswith(BASE_URL):
            link = link[len(BASE_URL) :] or "/"
        if link.startswith("/") and not link.startswith("//"):
            inside.add(urlsplit(link).path)
    return inside


def exported_pages(target: Path) -> dict[str, Path]:
    """Site address -> exported file, for every page (not static, not the 404)."""
    pages = {}
    for file in target.rglob("*"):
        relative = file.relative_to(target).as_posix()
        if (
            file.is_dir()
            or relative.startswith("static/")
            or relative
            in {
                MANIFEST,
                "404.html",
            }
        ):
            continue
        address = "/" + relative.removesuffix("index.html")
        assert file_for(address) == relative
        pages[address] = file
    return pages


def test_every_link_on_every_exported_page_resolves_under_a_file_server(
    site, file_server
):
    target, _ = site
    pages = exported_pages(target)
    html_pages = {a: f for a, f in pages.items() if f.suffix == ".html"}
    assert "/codes/cpt/97546/" in html_pages
    assert "/policies/aetna/0198/" in html_pages
    checked, dynamic = set(), set()
    for page in html_pages.values():
        for link in site_links(page.read_bytes()):
            if link.startswith(DYNAMIC):
                dynamic.add(link)
            else:
                checked.add(link)
    missing = {link for link in checked if fetch(file_server, link)[0] != 200}
    assert not missing
    # The search form's address is the one dynamic address the pages name.
    assert dynamic == {"/search/"}
    # Static files (hashed or not) and the handout PDF are among the links followed.
    assert any(link.startswith("/static/css/") for link in checked)
    assert "/codes/cpt/97546/handout.pdf" in checked


def test_each_exported_page_is_the_live_sites_response_byte_for_byte(
    client, site, file_server
):
    # No public page shows a build date or time: the bytes match exactly.
    target, _ = site
    pages = exported_pages(target)
    assert len(pages) > 60
    for address in pages:
        live = client.get(address)
        assert live.status_code == 200, address
        status, served = fetch(file_server, address)
        assert status == 200, address
        assert served == live.content, address
    status, served = fetch(file_server, "/no-such-page/")
    assert status == 404
    assert (target / "404.html").read_bytes() == client.get("/-/").content


def test_the_sitemaps_name_only_addresses_the_export_holds(site, file_server):
    status, index = fetch(file_server, "/sitemap.xml")
    assert status == 200
    parts = re.findall(r"<loc>([^<]*)</loc>", index.decode())
    assert len(parts) >= 4
    locations = []
    for part in parts:
        status, sitemap = fetch(file_server, part.removeprefix(BASE_URL))
        assert status == 200, part
        locations += re.findall(r"<loc>([^<]*)</loc>", sitemap.decode())
    assert f"{BASE_URL}/codes/cpt/97546/" in locations
    for location in locations:
        assert fetch(file_server, location.removeprefix(BASE_URL))[0] == 200, location
    assert (
        b"Sitemap: http://testserver/sitemap.xml"
        in fetch(file_server, "/robots.txt")[1]
    )


def test_a_split_sitemaps_parts_get_files_the_index_names(
    sample_data, collected, tmp_path, file_server, monkeypatch, site
):
    monkeypatch.setattr(SITEMAPS["codes"], "limit", 7)
    target, _ = site
    export(target)
    _, index = fetch(file_server, "/sitemap.xml")
    assert b"/sitemap-codes-p2.xml</loc>" in index
    assert b"?p=" not in index
    assert b"<loc>" in fetch(file_server, "/sitemap-codes-p2.xml")[1]
    assert sitemap_index_for_files(b"/sitemap-codes.xml?p=12<") == (
        b"/sitemap-codes-p12.xml<"
    )


def test_a_second_run_rewrites_only_what_an_edit_changed(
    site, django_capture_on_commit_callbacks
):
    target, first = site
    assert first.written == first.files and not first.unchanged
    unrelated = target / "codes/hcpcs/index.html"
    before = (unrelated.stat().st_mtime_ns, unrelated.read_bytes())

    again = export(target)
    assert (again.written, again.removed) == (0, 0)
    assert again.unchanged == first.files

    with django_capture_on_commit_callbacks(execute=True):
        writeup = Procedure.objects.get(code__code="97546")
        writeup.title = "Work hardening, the first two hours"
        writeup.save()
        policy = Policy.objects.get(number="0198")
        policy.title = "Work hardening and work conditioning programs"
        policy.save()
    edited = export(target)
    changed = set(edited.changed)
    assert "codes/cpt/97546/index.html" in changed
    assert "policies/aetna/0198/index.html" in changed
    assert (
        "Work hardening, the first two hours"
        in (target / "codes/cpt/97546/index.html").read_text()
    )
    # Only the pages that show the new words (every code page, similar list and
    # coverage page of the codes the policy names shows its title), the handout of
    # the write-up and the sitemap index (its lastmod); none of the static files.
    for file in changed - {"sitemap.xml", "codes/cpt/97546/handout.pdf"}:
        text = (target / file).read_text()
        assert writeup.title in text or policy.title in text, file
    assert 2 <= edited.written < first.files // 2
    assert not any(file.startswith("static/") for file in changed)
    assert edited.written + edited.unchanged == first.files
    assert (unrelated.stat().st_mtime_ns, unrelated.read_bytes()) == before


def test_the_pages_of_a_deleted_policy_are_removed(site):
    target, _ = site
    policy = target / "policies/aetna/0198/index.html"
    assert policy.exists()
    Policy.objects.get(number="0198").delete()
    after = export(target)
    assert after.removed >= 1
    assert "policies/aetna/0198/index.html" in after.changed
    assert not policy.exists()
    assert not (target / "policies/aetna/0198").exists()


def test_a_withdrawn_policy_leaves_the_export(site, django_capture_on_commit_callbacks):
    # Its address answers 410 Gone, which a file cannot say: a file server's 404 is
    # the nearest, and the export has no problem to report.
    target, _ = site
    with django_capture_on_commit_callbacks(execute=True):
        policy = Policy.objects.get(number="0198")
        policy.status = PolicyStatus.WITHDRAWN
        policy.save()
    after = export(target)
    assert "policies/aetna/0198/index.html" in after.changed
    assert not (target / "policies/aetna/0198/index.html").exists()


def test_only_exports_the_kinds_named_and_keeps_the_rest(site):
    target, _ = site
    policy = target / "policies/aetna/0198/index.html"
    Procedure.objects.all().delete()
    after = export(target, only="policies")
    assert after.removed == 0
    assert policy.exists()
    assert (target / "codes/cpt/97546/index.html").exists()


def test_the_command_reports_counts(sample_data, collected, tmp_path, capsys):
    call_command("export_site", tmp_path / "out", base_url=BASE_URL)
    out, err = capsys.readouterr()
    assert re.search(r"[0-9,]+ written, 0 unchanged, 0 removed in", out)
    assert "Exporting [" in err
    call_command("export_site", tmp_path / "out", base_url=BASE_URL, quiet=True)
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(
    ("make_target", "message"),
    [
        (lambda tmp: (tmp / "file").write_text("x") and tmp / "file", "is a file"),
        (lambda tmp: Path("/proc/carecodes-export"), "Cannot create"),
        (lambda tmp: Path(__file__).parent.parent / "static/export", "static files"),
    ],
    ids=["a-file", "unwritable", "inside-static"],
)
def test_a_directory_it_cannot_use_is_a_clear_error(
    sample_data, collected, tmp_path, make_target, message
):
    with pytest.raises(CommandError, match=message):
        call_command("export_site", make_target(tmp_path), base_url=BASE_URL)


def test_unknown_kinds_hosts_and_job_counts_are_clear_errors(sample_data, tmp_path):
    with pytest.raises(CommandError, match="Unknown kind nope"):
        call_command("export_site", tmp_path, only="codes,nope")
    with pytest.raises(CommandError, match="not in ALLOWED_HOSTS"):
        call_command("export_site", tmp_path, base_url="https://elsewhere.example")
    with pytest.raises(CommandError, match="scheme and host only"):
        call_command("export_site", tmp_path, base_url="carecodes.example/x")
    with pytest.raises(CommandError, match="--jobs must be 1 or more"):
        call_command("export_site", tmp_path, jobs=0)


@pytest.mark.django_db(transaction=True)
def test_two_processes_write_the_same_files_as_one(
    sample_data, collected, tmp_path, monkeypatch
):
    # Batches of five, so the sample data's pages are shared between the processes.
    monkeypatch.setattr("carecodes.export.BATCH", 5)
    one, two = tmp_path / "one", tmp_path / "two"
    kinds = {"pages", "codes", "policies", "payers", "sections", "sitemaps"}
    alone = Export(check_target(one), BASE_URL, kinds, jobs=1).run()
    together = Export(check_target(two), BASE_URL, kinds, jobs=2).run()
    assert not together.problems
    assert sorted(together.changed) == sorted(alone.changed)
    assert (one / MANIFEST).read_bytes() == (two / MANIFEST).read_bytes()
