"""
Every public address answers HEAD wherever it answers GET, refuses TRACE, and sends
the site's Permissions-Policy; public pages' style policy allows no inline styles.
"""

import pytest
from django.urls import reverse

from procedures.models import CodeSection

pytestmark = pytest.mark.django_db


@pytest.fixture
def public_addresses(sample_data):
    section = CodeSection.objects.filter(parent=None).first()
    return [
        "/",
        "/codes/",
        "/codes/cpt/97546/",
        "/codes/cpt/97546/similar/",
        section.get_absolute_url(),
        "/payers/aetna/",
        "/policies/aetna/0198/",
        "/search/?q=work+hardening",
        "/search/suggest/?q=wo",
        "/robots.txt",
        "/sitemap.xml",
        "/sitemap-codes.xml",
        "/favicon.ico",
    ]


def test_head_is_answered_wherever_get_is(client, public_addresses):
    for address in public_addresses:
        get = client.get(address)
        head = client.head(address)
        assert head.status_code == get.status_code, address
        assert head.content == b"", address


def test_trace_is_refused_everywhere(client, public_addresses):
    for address in [*public_addresses, "/admin/", "/no-such-page/"]:
        response = client.generic("TRACE", address)
        assert response.status_code == 405, address
        assert "TRACE" not in response["Allow"]


def test_every_response_switches_off_unused_browser_features(client, public_addresses):
    for address in [*public_addresses, "/admin/login/", "/no-such-page/"]:
        policy = client.get(address)["Permissions-Policy"]
        for feature in ("camera", "microphone", "geolocation", "payment"):
            assert f"{feature}=()" in policy, address


def style_policy(response) -> list[str]:
    directives = dict(
        part.strip().split(" ", 1)
        for part in response["Content-Security-Policy"].split(";")
    )
    return directives["style-src"].split()


def test_public_pages_allow_no_inline_styles(client, public_addresses):
    for address in [*public_addresses, "/no-such-page/"]:
        response = client.get(address)
        assert style_policy(response) == ["'self'"], address


def test_the_admin_keeps_the_inline_styles_it_needs(client, admin_user):
    assert "'unsafe-inline'" in style_policy(client.get(reverse("admin:login")))
    client.force_login(admin_user)
    for name in ("admin:index", "admin:procedures_procedure_add"):
        assert "'unsafe-inline'" in style_policy(client.get(reverse(name))), name
    preview = client.post(reverse("markdownx_markdownify"), {"content": "*hi*"})
    assert "'unsafe-inline'" in style_policy(preview)


def test_public_templates_carry_no_inline_styles(client, public_addresses):
    for address in public_addresses:
        body = client.get(address).content.decode()
        assert " style=" not in body, address
        assert "<style" not in body, address
