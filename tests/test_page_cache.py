"""
The page cache (carecodes/page_cache.py): each kind of edit reaches every page that
shows it through the cache, an unrelated page stays a hit, and a hit costs nothing.

Transactional tests: the cache is skipped inside an open transaction, and versions
are bumped after a real commit, as in production. CI runs them with REDIS_URL set
too (versions in Redis); without it they live in the shared version file.
"""

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connection
from django.db.models.signals import post_init
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from carecodes import page_versions
from policies.models import Payer, Policy, PolicyCode, PolicyStatus
from procedures.models import Code, Procedure, PublicationStatus
from procedures.signals import codes_bulk_saved

pytestmark = pytest.mark.django_db(transaction=True)

DATA = Path(__file__).resolve().parent / "data"
THERAPY = DATA / "policy-aetna-0325-physical-therapy-ultrasound.txt"
CPT_FILE = DATA / "cpt_sample.csv"

PAGES = {
    "code": "/codes/cpt/97546/",
    "similar": "/codes/cpt/97546/similar/",
    "section": "/sections/cpt/physical-medicine-and-rehabilitation/",
    "system": "/codes/cpt/",
    "payer": "/payers/aetna/",
    "policy": "/policies/aetna/0198/",
    "home": "/",
    "index": "/codes/",
    "range code": "/codes/icd-10-cm/S52.501A/",
    "sitemap": "/sitemap-codes.xml",
    "write-up sitemap": "/sitemap-write-ups.xml",
    "search": "/search/?q=work+hardening",
    # A code no policy names, in no section of the sample: nothing below shows it.
    "unrelated": "/codes/hcpcs/J0135/",
}


@pytest.fixture
def site():
    call_command("load_sample_data", verbosity=0, seeds_only=True)
    Code.objects.create(
        system="hcpcs", code="J0135", descriptor="Injection, adalimumab, 20 mg"
    )


@pytest.fixture
def visitor():
    return Client()


@pytest.fixture
def warm(site, visitor):
    """Every page drawn once, then served from the cache."""
    for address in PAGES.values():
        assert visitor.get(address)["X-Page-Cache"] == "miss", address
    assert states(visitor) == dict.fromkeys(PAGES, "hit")
    return visitor


def states(client, names=PAGES) -> dict:
    return {name: client.get(PAGES[name])["X-Page-Cache"] for name in names}


def text(client, name) -> str:
    return re.sub(r"\s+", " ", client.get(PAGES[name]).content.decode())


def assert_reached(client, *names):
    """These pages are drawn again; the unrelated code page is still a hit."""
    found = states(client, [*names, "unrelated"])
    assert found == {**dict.fromkeys(names, "miss"), "unrelated": "hit"}


def test_a_second_visit_is_a_hit_with_the_same_page_and_no_query(warm):
    first = warm.get(PAGES["code"])
    with CaptureQueriesContext(connection) as queries:
        again = warm.get(PAGES["code"])
    assert again["X-Page-Cache"] == "hit"
    assert len(queries) == 0
    assert again.content == first.content


def test_a_write_up_edit_reaches_its_pages(warm):
    writeup = Procedure.objects.get(code__code="97546")
    writeup.title = "Work hardening, every extra hour (edited)"
    writeup.save()
    assert_reached(warm, "code", "home", "index", "search", "write-up sitemap")
    assert "every extra hour (edited)" in text(warm, "code")
    assert "every extra hour (edited)" in text(warm, "home")
    assert "every extra hour (edited)" in text(warm, "index")


@pytest.mark.skipif(
    not page_versions._uses_redis(), reason="Redis's scripts (CI sets REDIS_URL)"
)
def test_a_redis_that_lost_its_scripts_costs_one_miss_not_an_error(warm):
    # A restarted Redis forgets the lookup script the hits run by its digest.
    from django_redis import get_redis_connection

    get_redis_connection("default").script_flush()
    assert states(warm, ["code"]) == {"code": "miss"}
    assert states(warm, ["code"]) == {"code": "hit"}


def test_an_unpublished_write_up_leaves_its_pages(warm):
    writeup = Procedure.objects.get(code__code="97546")
    title = writeup.title
    writeup.status = PublicationStatus.DRAFT
    writeup.save()
    assert_reached(warm, "code", "home", "index")
    assert title not in text(warm, "home")
    assert title not in text(warm, "code")


def test_a_published_write_up_reaches_its_pages(warm):
    Procedure.objects.create(
        code=Code.objects.get(code="97545"),
        title="Work hardening, first two hours",
        summary="A new write-up.",
        status=PublicationStatus.PUBLISHED,
    )
    assert states(warm, ["home", "index", "unrelated"]) == {
        "home": "miss",
        "index": "miss",
        "unrelated": "hit",
    }
    assert "Work hardening, first two hours" in text(warm, "home")
    assert "Work hardening, first two hours" in warm.get("/codes/cpt/97545/").text


def test_a_policy_edit_reaches_its_pages(warm):
    policy = Policy.objects.get(number="0198")
    policy.title = "Work Hardening Programs (revised)"
    policy.save()
    assert_reached(warm, "policy", "payer", "code", "range code", "search")
    for name in ("policy", "payer", "code", "range code"):
        assert "Work Hardening Programs (revised)" in text(warm, name), name


def test_a_withdrawn_policy_leaves_its_pages(warm):
    policy = Policy.objects.get(number="0198")
    policy.status = PolicyStatus.WITHDRAWN
    policy.save()
    assert warm.get(PAGES["policy"]).status_code == 410
    assert_reached(warm, "payer", "code", "range code")


def test_a_range_row_removed_reaches_every_code_it_covered(warm):
    row = PolicyCode.objects.get(start_code="S00.00X")
    row.delete()
    assert_reached(warm, "range code", "policy")
    assert "No payer policy on this site names S52.501A yet." in text(
        warm, "range code"
    )


def test_a_range_row_added_reaches_the_codes_it_now_covers(warm):
    assert "0198" not in text(warm, "unrelated")
    other = Code.objects.create(system="hcpcs", code="J7321", descriptor="Hyaluronan")
    address = other.get_absolute_url()
    # A new code may join the unrelated code's similar list: both drawn again.
    for page in (address, PAGES["unrelated"], address):
        warm.get(page)
    assert warm.get(address)["X-Page-Cache"] == "hit"
    group = PolicyCode.objects.get(start_code="S9117").group
    PolicyCode.objects.create(
        group=group, system="hcpcs", start_code="J7300", end_code="J7399"
    )
    assert warm.get(address)["X-Page-Cache"] == "miss"
    assert "Through the range J7300" in warm.get(address).text
    assert states(warm, ["unrelated"]) == {"unrelated": "hit"}


def test_a_code_descriptor_change_reaches_its_pages(warm):
    code = Code.objects.get(code="97546")
    code.descriptor = "Work hardening; each additional hour (edited)"
    code.save()
    assert_reached(warm, "code", "section", "search")
    assert "each additional hour (edited)" in text(warm, "code")
    assert "each additional hour (edited)" in text(warm, "section")


def test_a_payer_rename_reaches_its_pages(warm):
    payer = Payer.objects.get(slug="aetna")
    payer.name = "Aetna Health (renamed)"
    payer.save()
    assert_reached(warm, "payer", "policy", "code")
    for name in ("payer", "policy", "code"):
        assert "Aetna Health (renamed)" in text(warm, name), name


def test_a_policy_import_reaches_the_codes_it_names(warm):
    call_command("import_policy", str(THERAPY), verbosity=0)
    assert_reached(warm, "payer", "search")
    assert "0325" in text(warm, "payer")


def test_a_code_set_bulk_save_reaches_the_codes_it_changed(warm):
    code = Code.objects.get(code="97546")
    Code.objects.filter(pk=code.pk).update(descriptor="Work hardening, bulk edited")
    codes_bulk_saved.send(sender=Code, system="cpt", ids=[code.pk])
    assert_reached(warm, "code", "section")
    assert "Work hardening, bulk edited" in text(warm, "code")


def test_a_code_set_import_reaches_the_section(warm):
    call_command("import_cpt", str(CPT_FILE), verbosity=0)
    assert states(warm, ["section", "sitemap"]) == {
        "section": "miss",
        "sitemap": "miss",
    }
    assert "/codes/cpt/97010/" in text(warm, "section")


def test_a_deleted_write_up_leaves_its_pages(warm):
    writeup = Procedure.objects.get(code__code="97546")
    title = writeup.title
    writeup.delete()
    assert_reached(warm, "code", "home", "index")
    assert title not in text(warm, "code")


def test_a_deleted_policy_leaves_its_pages(warm):
    Policy.objects.get(number="0198").delete()
    assert warm.get(PAGES["policy"]).status_code == 404
    assert_reached(warm, "payer", "code", "range code")
    assert "No payer policy on this site names S52.501A yet." in text(
        warm, "range code"
    )


def test_a_deleted_code_leaves_its_pages(warm):
    Code.objects.get(code="97537").delete()
    assert warm.get("/codes/cpt/97537/").status_code == 404
    assert_reached(warm, "section", "similar")
    assert "/codes/cpt/97537/" not in text(warm, "section")


def test_a_rebuild_reaches_every_page(warm):
    call_command("rebuild_search_index", verbosity=0)
    assert states(warm, ["search", "unrelated"]) == {
        "search": "miss",
        "unrelated": "miss",
    }


def test_a_page_drawn_while_its_content_changes_is_not_kept(site, visitor):
    code = Code.objects.get(code="97546")
    bumped = []

    def change_while_drawn(sender, instance, **kwargs):
        # Another process commits an edit of the code while this page is drawn.
        if instance.pk == code.pk and not bumped:
            bumped.append(page_versions.store().bump([f"code:{code.pk}"]))

    post_init.connect(change_while_drawn, sender=Code)
    try:
        assert visitor.get(PAGES["code"])["X-Page-Cache"] == "miss"
    finally:
        post_init.disconnect(change_while_drawn, sender=Code)
    assert bumped
    assert visitor.get(PAGES["code"])["X-Page-Cache"] == "miss"
    assert visitor.get(PAGES["code"])["X-Page-Cache"] == "hit"


# --- Who is served from the cache --------------------------------------------------


@pytest.fixture
def priya(django_user_model):
    """An editor (not a superuser) with every right over codes, write-ups, policies."""
    person = django_user_model.objects.create_user(
        "priya", "priya@clinic.example", "a long passphrase", is_staff=True
    )
    person.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label__in=["procedures", "policies"]
        )
    )
    client = Client()
    client.force_login(person)
    return client


def test_staff_see_their_own_save_at_once_and_visitors_too(warm, priya):
    code = Code.objects.get(code="97546")
    change = reverse("admin:procedures_code_change", args=[code.pk])
    form = priya.get(change).context["adminform"].form
    data = {
        name: value
        for name, value in form.initial.items()
        if value is not None and not isinstance(value, list)
    }
    data["descriptor"] = "Work hardening as saved by Priya"
    response = priya.post(change, data)
    assert response.status_code == 302, response.content[:2000]
    staff_view = priya.get(PAGES["code"])
    assert staff_view["X-Page-Cache"] == "bypass"
    assert "private" in staff_view["Cache-Control"]
    assert "as saved by Priya" in staff_view.text
    assert "as saved by Priya" in text(warm, "code")


def test_staff_pages_are_never_stored(site, priya, visitor):
    priya.get(PAGES["code"])
    assert visitor.get(PAGES["code"])["X-Page-Cache"] == "miss"


def test_anonymous_pages_set_no_cookie_and_vary_only_on_encoding(site, visitor):
    for address in PAGES.values():
        for _ in range(2):
            response = visitor.get(address, headers={"accept-encoding": "br"})
            assert "Set-Cookie" not in response, address
            assert not response.cookies, address
            assert response["Vary"] == "Accept-Encoding", address


def test_errors_are_never_stored(site, visitor):
    for _ in range(2):
        response = visitor.get("/codes/cpt/00000/")
        assert response.status_code == 404
        assert response.get("X-Page-Cache") != "hit"


def test_a_query_worth_no_entry_is_drawn_afresh(site, visitor):
    for _ in range(2):
        response = visitor.get(PAGES["code"] + "?utm_source=mail")
        assert response["X-Page-Cache"] == "bypass"


def test_another_spelling_of_a_sitemap_part_is_still_redirected(
    site, visitor, monkeypatch
):
    from carecodes.sitemaps import SITEMAPS

    monkeypatch.setattr(SITEMAPS["codes"], "limit", 7)
    assert visitor.get("/sitemap-codes.xml?p=2")["X-Page-Cache"] == "miss"
    assert visitor.get("/sitemap-codes.xml?p=2")["X-Page-Cache"] == "hit"
    for spelling in ("p=%32", "p=2&", "p=02"):
        response = visitor.get(f"/sitemap-codes.xml?{spelling}")
        assert response.status_code == 301, spelling
        assert response["Location"] == "/sitemap-codes.xml?p=2"


def test_page_cache_off_stores_nothing(site, visitor, settings):
    settings.PAGE_CACHE = False
    assert visitor.get(PAGES["code"])["X-Page-Cache"] == "off"
    assert visitor.get(PAGES["code"])["X-Page-Cache"] == "off"


# --- Versions shared between processes ------------------------------------------


def test_a_bump_in_one_process_is_seen_by_another_at_once(tmp_path):
    path = tmp_path / "versions"
    one, other = page_versions.FileVersions(path), page_versions.FileVersions(path)
    keys = other.keys(["code:1", "code:2"])
    before = other.read(keys).copy()
    one.bump(["code:1"])
    after = other.read(keys)
    assert after[0] > before[0]
    assert after[1] == before[1]
    assert other.counter() == one.counter()
