"""An author sees the reading grade of a write-up section change as they type."""

import re

import pytest
from django.conf import settings
from playwright.sync_api import expect

from carecodes import readability
from procedures.models import Procedure
from tests.test_readability import HARD_SENTENCE, SIMPLE, staff_member

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def author_alex(django_user_model):
    """Writes and edits write-ups: may view and change them, not add or publish."""
    return staff_member(django_user_model, "alex", "view_procedure", "change_procedure")


def test_the_summary_grade_follows_the_typing_and_warns_on_a_hard_sentence(
    page, shoot, client, live_server, author_alex
):
    procedure = Procedure.objects.get(code__code="97546")
    # Signed in as the author: the session the test client makes, in the browser.
    client.force_login(author_alex)
    name = settings.SESSION_COOKIE_NAME
    page.context.add_cookies(
        [{"name": name, "value": client.cookies[name].value, "url": live_server.url}]
    )
    asked = []
    page.on(
        "request",
        lambda request: "/readability/" in request.url and asked.append(request),
    )
    page.goto(f"/admin/procedures/procedure/{procedure.pk}/change/")

    summary = page.locator("textarea[name='summary']")
    note = page.locator("#id_summary_helptext .reading-grade")
    # The saved text's grade is there before any typing.
    expect(note).to_have_text(re.compile(r"reading grade \d+\.\d \(Flesch–Kincaid\)"))
    assert note.get_attribute("aria-live") == "polite"

    summary.fill(SIMPLE)
    expect(note).to_have_text(readability.grade(SIMPLE).message)
    expect(note).not_to_have_class(re.compile("reading-grade--hard"))
    shoot(page, "plain-summary")

    # Typing waits for a pause before it asks: a request or two, not one a key.
    asked.clear()
    summary.press_sequentially(" " + HARD_SENTENCE, delay=10)
    hard = readability.grade(f"{SIMPLE} {HARD_SENTENCE}")
    assert hard.is_hard
    expect(note).to_have_text(hard.message)
    expect(note).to_contain_text("Hard to read")
    expect(note).to_have_class(re.compile("reading-grade--hard"))
    assert len(asked) <= 3, [request.url for request in asked]
    # The warning stands out: the admin's error colour, not the help text's grey.
    assert note.evaluate("node => getComputedStyle(node).fontWeight") == "700"
    shoot(page, "hard-summary")

    # A warning, not a block: the text saves.
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    expect(note).to_have_text(hard.message)
