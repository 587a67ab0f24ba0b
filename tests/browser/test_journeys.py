"""
Whole journeys in Chromium: a patient finding a code and its payer policy, a staff
member publishing a write-up, narrow phone screens and printing a code page.
"""

import re

import pytest
from playwright.sync_api import expect

from procedures.models import Procedure, PublicationStatus

from .admin_steps import log_in, run_action

pytestmark = pytest.mark.django_db(transaction=True)

PUBLIC_PAGES = [
    "/",
    "/search/?q=work+hardening",
    "/codes/cpt/97546/",
    "/codes/icd-10-cm/S52.501A/",
    "/policies/aetna/0198/",
    "/payers/aetna/",
    "/codes/cpt/97546/similar/",
    "/sections/cpt/physical-medicine-and-rehabilitation/",
    "/codes/",
    "/codes/cpt/97547/",
]


def test_a_patient_finds_a_code_its_policy_and_the_way_back(page, shoot):
    page.goto("/")
    shoot(page, "home")
    box = page.locator("header input[data-suggest]")
    box.press_sequentially("work hardening")
    listbox = page.get_by_role("listbox", name="Suggestions")
    expect(listbox).to_be_visible()
    option = listbox.get_by_role("option").filter(has_text="Each Additional Hour")
    expect(option).to_have_count(1)
    shoot(page, "suggestions")
    # Down the list with the keyboard until the write-up for 97546 is chosen.
    for _ in range(listbox.get_by_role("option").count()):
        box.press("ArrowDown")
        if option.get_attribute("aria-selected") == "true":
            break
    expect(option).to_have_attribute("aria-selected", "true")
    box.press("Enter")
    expect(page).to_have_url(re.compile(r"/codes/cpt/97546/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Work Hardening/Conditioning; Each Additional Hour"
    )
    shoot(page, "code-97546")

    page.get_by_role("link", name="0198: Work Hardening Programs").click()
    expect(page).to_have_url(re.compile(r"/policies/aetna/0198/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Work Hardening Programs")
    shoot(page, "aetna-0198")

    table = page.locator("#codes")
    table.get_by_role("link", name="97545", exact=True).first.click()
    expect(page).to_have_url(re.compile(r"/codes/cpt/97545/$"))
    expect(page.locator("main")).to_contain_text("Work Hardening Programs")
    shoot(page, "code-97545")


def test_staff_edit_a_write_up_with_the_live_preview_and_publish_it(
    page, shoot, admin_user
):
    Procedure.objects.filter(code__code="97546").update(status=PublicationStatus.DRAFT)
    procedure = Procedure.objects.get(code__code="97546")
    page.goto("/codes/cpt/97546/")
    expect(page.locator("main")).to_contain_text("no plain-language write-up")

    log_in(page, "admin", "password")
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    page.goto(f"/admin/procedures/procedure/{procedure.pk}/change/")
    shoot(page, "editor")

    summary = page.locator("textarea[name='summary']")
    summary.fill(
        "Hour by hour, **work hardening** rebuilds what your job asks of you."
        "<script>document.title = 'taken'</script>"
    )
    preview = page.locator(".markdownx", has=summary).locator(".markdownx-preview")
    expect(preview.locator("strong")).to_have_text("work hardening")
    expect(preview.locator("script")).to_have_count(0)
    shoot(page, "live-preview")

    # Publishing waits for a clinical reviewer's approval of this very text.
    page.get_by_label("Status").select_option(label="Published")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".errorlist")).to_contain_text(
        "A clinical reviewer has not approved this text yet"
    )
    page.get_by_label("Status").select_option(label="Draft")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    for action, done in [
        ("Approve the text of the selected write-ups", "1 write-up approved."),
        ("Publish the selected write-ups", "1 write-up published."),
    ]:
        run_action(page, "/admin/procedures/procedure/", "97546", action)
        expect(page.locator(".messagelist")).to_contain_text(done)

    page.goto("/codes/cpt/97546/")
    summary_section = page.locator("section.writeup-section", has_text="Summary")
    expect(summary_section.locator("strong")).to_have_text("work hardening")
    expect(summary_section).to_contain_text("Hour by hour")
    assert page.title() != "taken"
    shoot(page, "published")


@pytest.mark.parametrize("width", [375, 320])
def test_pages_fit_a_phone_screen_without_sideways_scrolling(
    browser, live_server, sample_data, run_folder, width
):
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": width, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    page = context.new_page()
    for address in PUBLIC_PAGES:
        response = page.goto(address)
        assert response.status == (404 if address == "/codes/cpt/97547/" else 200)
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth"
            " - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{address} scrolls sideways by {overflow}px at {width}px"
        name = address.strip("/").replace("/", "-").replace("?q=", "-") or "home"
        page.screenshot(
            path=run_folder / f"phone-{width}px--{name}.png", full_page=True
        )
    # Wide code tables scroll inside their own box, which says so to assistive tech.
    page.goto("/policies/aetna/0198/")
    region = page.locator(".table-scroll").first
    expect(region).to_have_attribute("tabindex", "0")
    expect(region).to_have_attribute("role", "region")
    context.close()


def test_a_code_page_prints_as_a_clean_handout(page, run_folder, live_server):
    Procedure.objects.filter(code__code="97546").update(
        reviewed_on="2026-10-01", reviewed_by="Dr Ana Ruiz, PT"
    )
    page.goto("/codes/cpt/97546/")
    expect(page.locator("footer .print-only")).to_be_hidden()
    page.emulate_media(media="print")
    for hidden in ["header.site-header", "nav.breadcrumbs", "form[role='search']"]:
        expect(page.locator(hidden).first).to_be_hidden()
    expect(page.locator("footer .disclaimer")).to_be_visible()
    expect(page.locator(".review-line")).to_have_text(
        "Last reviewed 1 October 2026 by Dr Ana Ruiz, PT."
    )
    link = page.locator("main a[href='/policies/aetna/0198/']").first
    shown_after = link.evaluate("a => getComputedStyle(a, '::after').content")
    assert "/policies/aetna/0198/" in shown_after
    # The paths are on this site, which the handout names in full.
    expect(page.locator("footer .print-only")).to_have_text(
        f"Printed from {live_server.url}/codes/cpt/97546/"
    )
    page.screenshot(path=run_folder / "print--code-97546.png", full_page=True)
    page.pdf(path=run_folder / "print--code-97546.pdf", format="A4")


def test_the_skip_link_is_the_first_stop_and_focus_is_always_visible(page):
    page.goto("/codes/cpt/97546/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box["y"] >= 0 and box["height"] > 0, "the focused skip link is on screen"
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    for _ in range(6):
        page.keyboard.press("Tab")
        outline = page.evaluate(
            "() => { const s = getComputedStyle(document.activeElement);"
            " return [s.outlineStyle, parseFloat(s.outlineWidth)]; }"
        )
        assert outline[0] != "none" and outline[1] >= 2, outline


def test_reduced_motion_turns_off_animation(browser, live_server, sample_data):
    # The site animates nothing today; a transition added later, here one set from
    # script, must still stop for people who ask for less motion.
    moving = """() => {
        const box = document.querySelector('main');
        box.style.transition = 'opacity 2s';
        box.style.scrollBehavior = 'smooth';
        const style = getComputedStyle(box);
        return [parseFloat(style.transitionDuration), style.scrollBehavior];
    }"""
    for motion, expected in [("no-preference", [2, "smooth"]), ("reduce", [0, "auto"])]:
        context = browser.new_context(base_url=live_server.url, reduced_motion=motion)
        page = context.new_page()
        page.goto("/codes/cpt/97546/")
        assert page.evaluate(moving) == expected, motion
        context.close()
