"""The search box's autocomplete, used with the keyboard in a real browser."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.django_db(transaction=True)

SEARCH_BOX = "header input[data-suggest]"


def suggest(page, text):
    box = page.locator(SEARCH_BOX)
    box.fill("")
    box.press_sequentially(text)
    listbox = page.get_by_role("listbox", name="Suggestions")
    expect(listbox).to_be_visible()
    return box, listbox


def test_typing_opens_a_list_of_suggestions_that_says_what_it_holds(page):
    page.goto("/")
    box, listbox = suggest(page, "work hard")
    expect(box).to_have_attribute("role", "combobox")
    expect(box).to_have_attribute("aria-expanded", "true")
    expect(box).to_have_attribute("aria-controls", listbox.get_attribute("id"))
    options = listbox.get_by_role("option")
    expect(options.first).to_be_visible()
    assert 1 <= options.count() <= 10
    expect(listbox).to_contain_text("Work Hardening")
    # Screen readers hear how many there are.
    expect(page.locator("header").get_by_role("status")).to_contain_text("suggestion")


def test_the_arrow_keys_choose_a_suggestion_and_enter_opens_it(page):
    page.goto("/")
    box, listbox = suggest(page, "work hard")
    options = listbox.get_by_role("option")
    assert options.count() >= 2
    box.press("ArrowDown")
    first = options.nth(0)
    expect(first).to_have_attribute("aria-selected", "true")
    expect(box).to_have_attribute("aria-activedescendant", first.get_attribute("id"))
    box.press("ArrowDown")
    expect(first).to_have_attribute("aria-selected", "false")
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    box.press("ArrowUp")
    expect(first).to_have_attribute("aria-selected", "true")
    label = first.locator(".suggestion-label").inner_text()
    box.press("Enter")
    expect(page).not_to_have_url(re.compile(r"/search/"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(label.split()[0])


def test_escape_closes_the_list_and_enter_then_searches(page):
    page.goto("/")
    box, listbox = suggest(page, "work hard")
    box.press("Escape")
    expect(listbox).to_be_hidden()
    expect(box).to_have_attribute("aria-expanded", "false")
    expect(box).not_to_have_attribute("aria-activedescendant", re.compile(".*"))
    box.press("Enter")
    expect(page).to_have_url(re.compile(r"/search/\?q=work\+hard"))
    expect(page.get_by_role("heading", level=1)).to_be_visible()


def test_the_search_form_works_without_javascript(browser, live_server, sample_data):
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    page.goto("/")
    page.locator(SEARCH_BOX).fill("work hardening")
    page.locator("header").get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"/search/\?q=work\+hardening"))
    expect(page.locator("main")).to_contain_text("Work Hardening Programs")
    context.close()
