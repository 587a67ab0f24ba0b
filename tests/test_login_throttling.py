"""Guessing an admin password is throttled: django-axes locks username and address."""

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

PASSWORD = "a long passphrase for erin"


@pytest.fixture
def editor_erin(django_user_model):
    """A clinic staff member with full admin rights."""
    return django_user_model.objects.create_superuser(
        "erin", "erin@clinic.example", PASSWORD
    )


def sign_in(client, password, username="erin", address="203.0.113.7"):
    return client.post(
        reverse("admin:login") + "?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )


def is_signed_in(client) -> bool:
    return client.get(reverse("admin:index")).status_code == 200


def test_the_right_password_signs_in(client, editor_erin):
    response = sign_in(client, PASSWORD)
    assert response.status_code == 302
    assert is_signed_in(client)


def test_thirty_wrong_passwords_lock_the_account_out_of_that_address(
    client, editor_erin, settings
):
    answers = [sign_in(client, f"guess {n}").status_code for n in range(30)]
    # The first four wrong guesses get the sign-in form back; the fifth locks.
    assert answers[: settings.AXES_FAILURE_LIMIT - 1] == [200] * 4
    assert set(answers[settings.AXES_FAILURE_LIMIT - 1 :]) == {429}

    response = sign_in(client, PASSWORD)
    assert response.status_code == 429
    assert not is_signed_in(client)
    text = response.content.decode()
    assert "Sign-in paused" in text
    assert "after 5 failed attempts for “erin”" in text
    assert "paused for 15 minutes" in text


def test_the_lockout_is_logged_for_the_admin(client, editor_erin):
    for n in range(7):
        sign_in(client, f"guess {n}")
    attempt = AccessAttempt.objects.get(username="erin")
    assert attempt.ip_address == "203.0.113.7"
    assert attempt.failures_since_start >= 5
    assert AccessFailureLog.objects.filter(username="erin", locked_out=True).exists()

    client.force_login(editor_erin)
    listing = client.get(reverse("admin:axes_accessattempt_changelist"))
    assert listing.status_code == 200
    assert "203.0.113.7" in listing.content.decode()


def test_the_lock_holds_only_that_username_from_that_address(
    client, editor_erin, django_user_model
):
    django_user_model.objects.create_superuser("nora", "nora@clinic.example", PASSWORD)
    for n in range(5):
        sign_in(client, f"guess {n}")
    assert sign_in(client, PASSWORD).status_code == 429

    # Erin at her own desk, and a colleague at the attacked address, still sign in.
    assert sign_in(Client(), PASSWORD, address="198.51.100.20").status_code == 302
    assert sign_in(Client(), PASSWORD, username="nora").status_code == 302


def test_the_lock_lifts_after_the_cool_off(client, editor_erin, settings):
    for n in range(5):
        sign_in(client, f"guess {n}")
    assert sign_in(client, PASSWORD).status_code == 429

    attempt = AccessAttempt.objects.get(username="erin")
    attempt.attempt_time -= settings.AXES_COOLOFF_TIME
    attempt.save()
    assert sign_in(client, PASSWORD).status_code == 302


def test_a_right_password_before_the_limit_starts_the_count_again(client, editor_erin):
    for n in range(4):
        sign_in(client, f"guess {n}")
    assert sign_in(client, PASSWORD).status_code == 302
    client.logout()
    for n in range(4):
        assert sign_in(client, f"guess again {n}").status_code == 200
    assert sign_in(client, PASSWORD).status_code == 302


def test_the_admin_session_lasts_a_working_day(settings):
    assert settings.SESSION_COOKIE_AGE == 8 * 60 * 60
