"""django-markdownx's preview and upload endpoints answer staff only."""

import io

import pytest
from django.urls import reverse
from PIL import Image

pytestmark = pytest.mark.django_db


@pytest.fixture
def nurse_nora(django_user_model):
    """A clinic staff member who edits write-ups."""
    return django_user_model.objects.create_user(
        "nora", password="correct horse battery", is_staff=True
    )


@pytest.fixture
def patient_pat(django_user_model):
    """A signed-in member of the public, not staff."""
    return django_user_model.objects.create_user("pat", password="another horse")


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_anonymous_visitor_cannot_use_the_preview(client):
    response = client.post(
        reverse("markdownx_markdownify"), {"content": "<script>alert(1)</script>"}
    )
    assert response.status_code == 403
    assert b"<script>" not in response.content


def test_a_signed_in_patient_cannot_use_the_preview(client, patient_pat):
    client.force_login(patient_pat)
    response = client.post(reverse("markdownx_markdownify"), {"content": "**hi**"})
    assert response.status_code == 403


def test_staff_see_a_sanitised_preview(client, nurse_nora):
    client.force_login(nurse_nora)
    response = client.post(
        reverse("markdownx_markdownify"),
        {"content": "## Recovery\n\n<script>alert(1)</script>\n\n- rest"},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "<h3>Recovery</h3>" in body
    assert "<li>rest</li>" in body
    assert "<script>" not in body


def test_a_preview_request_without_content_is_not_an_error(client, nurse_nora):
    client.force_login(nurse_nora)
    response = client.post(reverse("markdownx_markdownify"), {})
    assert response.status_code == 200


def test_the_preview_refuses_get(client, nurse_nora):
    client.force_login(nurse_nora)
    assert client.get(reverse("markdownx_markdownify")).status_code == 405


@pytest.mark.parametrize("who", [None, "patient_pat", "nurse_nora"])
def test_image_uploads_are_switched_off_for_everyone(
    client, request, settings, who, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    if who:
        client.force_login(request.getfixturevalue(who))
    upload = io.BytesIO(png_bytes())
    upload.name = "photo.png"
    response = client.post(reverse("markdownx_upload"), {"image": upload})
    assert response.status_code == 403
    assert not list(tmp_path.rglob("*")), "nothing may be stored"
