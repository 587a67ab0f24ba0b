"""The API's interactive docs (Swagger UI) in a real browser, under the site's CSP."""

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_api_docs_run_under_the_sites_content_security_policy(page, shoot):
    refused, requested = [], []
    page.on(
        "console",
        lambda message: (
            message.type == "error"
            and "Content Security Policy" in message.text
            and refused.append(message.text)
        ),
    )
    page.on("request", lambda request: requested.append(request.url))
    page.goto("/api/v1/docs")
    expect(page.get_by_role("heading", name="CareCodes API")).to_be_visible()
    lookup = page.locator("#operations-codes-code_detail")
    expect(lookup).to_contain_text("/api/v1/codes/{system}/{code}")
    # Try it out: the page calls the API and shows the answer.
    lookup.locator(".opblock-summary").click()
    lookup.get_by_role("button", name="Try it out").click()
    lookup.locator("input[placeholder='system']").fill("cpt")
    lookup.locator("input[placeholder='code']").fill("97546")
    lookup.get_by_role("button", name="Execute").click()
    expect(lookup.locator(".live-responses-table")).to_contain_text(
        "Work hardening/conditioning; each additional hour"
    )
    shoot(page, "docs")
    assert refused == []
    site = page.url.split("/api/")[0]
    assert all(url.startswith((site, "data:")) for url in requested), requested
