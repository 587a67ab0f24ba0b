"""
Browser tests: Debian's Chromium, driven by Playwright, against pytest-django's
live server. They fail, never skip, when the browser cannot start: ``make test``
installs Chromium first (``make chromium``).
"""

import os

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# The flags that work on this project's machines (no sandbox, GPU or network extras).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"No Chromium at {CHROMIUM}: run `make chromium` (as root).")
    # Playwright's synchronous API runs an event loop under the test code; the
    # fixtures' database calls stay synchronous, so Django may make them. Only for
    # this module's tests: the browser closes with the module.
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            yield launched
            launched.close()
    finally:
        if before is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture
def page(browser, live_server, sample_data):
    """A fresh browser tab on the live site, which holds the sample data."""
    context = browser.new_context(base_url=live_server.url)
    tab = context.new_page()
    yield tab
    context.close()
