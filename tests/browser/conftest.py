"""
Browser tests: Debian's Chromium, driven by Playwright, against pytest-django's
live server. They fail, never skip, when the browser cannot start: ``make test``
installs Chromium first (``make chromium``).
"""

import os
import re
import threading
import time
from pathlib import Path

import pytest
from django.core.servers.basehttp import ThreadedWSGIServer
from django.test.testcases import LiveServerThread
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# Screenshots and print-outs for people to look at, one folder per test run.
ARTIFACTS = ROOT / "test-artifacts" / "browser"

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


class OneRequestAtATime(ThreadedWSGIServer):
    """
    The live server, answering one request at a time.

    With SQLite in memory, every server thread shares the test's one connection, and
    one sqlite3 connection is not safe to use from several threads at once. The
    admin's editors ask for 13 previews as the page opens. Once, a whole error page
    showed inside a preview; 200 concurrent previews did not bring it back, so this
    is a guard against the likely cause, not a proven fix.
    """

    lock = threading.Lock()

    def set_app(self, application):
        def one_at_a_time(environ, start_response):
            with self.lock:
                return application(environ, start_response)

        super().set_app(one_at_a_time)


@pytest.fixture(scope="session", autouse=True)
def _serialised_live_server():
    # Before pytest-django starts its session-wide live server.
    before = LiveServerThread.server_class
    LiveServerThread.server_class = OneRequestAtATime
    yield
    LiveServerThread.server_class = before


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
def new_page(browser, live_server, sample_data):
    """
    new_page() -> a tab in a browser context of its own (its own cookies: one person),
    on the live site, which holds the sample data. A server error on any tab fails
    the test.
    """
    contexts, failures = [], []

    def open_tab():
        context = browser.new_context(base_url=live_server.url)
        contexts.append(context)
        tab = context.new_page()
        tab.on(
            "response",
            lambda response: (
                response.status >= 500
                and failures.append(
                    f"{response.status} {response.request.method} {response.url}"
                )
            ),
        )
        return tab

    yield open_tab
    for context in contexts:
        context.close()
    assert not failures, f"The site answered with a server error: {failures}"


@pytest.fixture
def page(new_page):
    """A fresh browser tab on the live site, which holds the sample data."""
    return new_page()


@pytest.fixture(scope="session")
def run_folder(request):
    """This test run's folder of screenshots: test-artifacts/browser/<start time>/."""
    folder = ARTIFACTS / time.strftime("%Y%m%d-%H%M%S")
    folder = folder.with_name(f"{folder.name}-{os.getpid()}")
    folder.mkdir(parents=True, exist_ok=True)
    # For the summary at the end, which names this run's folder only.
    request.config._carecodes_run_folder = folder
    return folder


@pytest.fixture
def shoot(request, run_folder):
    """shoot(page, "name"): a full-page screenshot, named by the test and step."""
    test = re.sub(r"[^\w-]+", "-", request.node.name).strip("-")
    taken = []

    def take(page, name):
        taken.append(name)
        path = run_folder / f"{test}--{len(taken):02d}-{name}.png"
        page.screenshot(path=path, full_page=True)
        return path

    return take


@pytest.fixture(scope="session")
def axe_source():
    if not AXE.exists():
        pytest.fail(f"No axe-core at {AXE}: run `make browser-tools` (npm ci).")
    return AXE.read_text()


@pytest.fixture
def axe(axe_source):
    """axe(page, impacts) -> the axe-core violations on the page, of those impacts."""

    def run(page, impacts=("minor", "moderate", "serious", "critical")):
        # Evaluated through the DevTools protocol, which the page's CSP does not
        # govern, so the site needs no exception for the checker.
        page.evaluate(axe_source)
        result = page.evaluate(
            """() => axe.run(document, {
                runOnly: {type: "tag", values: [
                    "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa",
                    "best-practice"]},
                resultTypes: ["violations"],
            })"""
        )
        return [
            {
                "id": violation["id"],
                "impact": violation["impact"],
                "help": violation["help"],
                "nodes": [node["target"] for node in violation["nodes"]][:5],
            }
            for violation in result["violations"]
            if violation["impact"] in impacts
        ]

    return run


def pytest_terminal_summary(terminalreporter, config):
    folder = getattr(config, "_carecodes_run_folder", None)
    if folder is not None:
        terminalreporter.write_line(f"Browser screenshots: {folder}")
