"""The coverage-across-payers table in Chromium: a phone at 320 px, and on paper."""

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/codes/icd-10-cm/S52.501A/coverage/"


@pytest.fixture
def three_payers(sample_data):
    """What ``make run`` loads: the seeds and the two sample payers' policies."""
    call_command("load_sample_data", verbosity=0)


def test_each_policy_reads_as_a_labelled_card_on_a_320px_phone(
    browser, live_server, three_payers, run_folder, axe
):
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": 320, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    page = context.new_page()
    page.goto(URL)
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth"
        " - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"
    table = page.locator("table.coverage-table")
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(3)
    # Cards, one under the other, each within the screen.
    boxes = [rows.nth(index).bounding_box() for index in range(3)]
    for box in boxes:
        assert box["x"] >= 0 and box["x"] + box["width"] <= 320
    assert boxes[0]["y"] + boxes[0]["height"] <= boxes[1]["y"]
    # Without the column headings on screen, each cell names itself.
    expect(table.locator("thead")).not_to_be_in_viewport()
    first_cell = rows.first.locator("td").first
    expect(first_cell).to_have_attribute("data-label", "Coverage")
    label = first_cell.evaluate("td => getComputedStyle(td, '::before').content")
    assert label not in ("", "none", "normal")
    expect(rows.first).to_contain_text("Not covered")
    expect(rows.nth(2)).to_contain_text("Through S52.5, which includes it")
    # A card's region does not scroll, so nothing hides to its right.
    region = page.locator(".table-scroll")
    assert region.evaluate("r => r.scrollWidth - r.clientWidth") <= 0
    assert axe(page, impacts=("serious", "critical")) == []
    page.screenshot(path=run_folder / "phone-320px--coverage.png", full_page=True)
    context.close()


def test_the_coverage_table_prints_as_a_table(page, three_payers, run_folder):
    page.set_viewport_size({"width": 320, "height": 740})
    page.goto(URL)
    page.emulate_media(media="print")
    table = page.locator("table.coverage-table")
    assert table.evaluate("t => getComputedStyle(t).display") == "table"
    expect(table.locator("thead")).to_be_visible()
    header = table.locator("thead th").first.bounding_box()
    cell = table.locator("tbody tr").first.locator("th").bounding_box()
    # The column headings sit above the first row's cells, in one column.
    assert abs(header["x"] - cell["x"]) < 2 and header["y"] < cell["y"]
    for hidden in ["header.site-header", "nav.breadcrumbs"]:
        expect(page.locator(hidden)).to_be_hidden()
    expect(page.locator("footer .disclaimer")).to_be_visible()
    page.pdf(path=run_folder / "print--coverage-S52.501A.pdf", format="A4")
