"""axe-core, run in Chromium, on every kind of public page and the admin editor."""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

PUBLIC_PAGES = {
    "home": "/",
    "search results": "/search/?q=work+hardening",
    "code page": "/codes/cpt/97546/",
    "policy page": "/policies/aetna/0198/",
    "payer page": "/payers/aetna/",
    "similar codes": "/codes/cpt/97546/similar/",
    "not found": "/codes/cpt/97547/",
    "code without a write-up": "/codes/icd-10-cm/S52.501A/",
    "section": "/sections/cpt/physical-medicine-and-rehabilitation/",
    "A-Z index": "/codes/",
}


@pytest.mark.parametrize("address", PUBLIC_PAGES.values(), ids=PUBLIC_PAGES.keys())
def test_axe_finds_no_violations(page, axe, shoot, address):
    response = page.goto(address)
    assert response.status == (404 if address == "/codes/cpt/97547/" else 200)
    shoot(page, "page")
    assert axe(page) == []


def test_axe_finds_nothing_serious_on_the_write_up_editor(
    page, axe, shoot, admin_user, live_server
):
    from procedures.models import Procedure

    procedure = Procedure.objects.get(code__code="97546")
    page.goto("/admin/login/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("password")
    page.get_by_role("button", name="Log in").click()
    statuses = []
    page.on(
        "response",
        lambda response: (
            "/markdownx/" in response.url and statuses.append(response.status)
        ),
    )
    page.goto(f"/admin/procedures/procedure/{procedure.pk}/change/")
    # Each editor with text asks for its preview as the page opens; axe reads the
    # page once every one of them has filled in.
    page.wait_for_function(
        """() => [...document.querySelectorAll('.markdownx')].every(editor =>
            !editor.querySelector('textarea').value.trim()
            || editor.querySelector('.markdownx-preview').innerHTML.trim())"""
    )
    shoot(page, "write-up-editor")
    assert len(statuses) >= 13 and set(statuses) == {200}, statuses
    assert axe(page, impacts=("serious", "critical")) == []
