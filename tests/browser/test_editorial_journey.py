"""
The editorial journey in Chromium, as the people who make it: Ava the author revises
a live write-up while the public keeps the published text, Ben's save from an older
copy is refused, Rui the clinical reviewer approves, Pia the publisher publishes,
then restores the earlier text from the history. Each logs in through the admin.
"""

import datetime

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from procedures.models import Procedure

from .admin_steps import log_in, run_action

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a long passphrase"
PUBLIC = "/codes/cpt/97546/"
CHANGELIST = "/admin/procedures/procedure/"
OLD_WORDS = "a specialized therapy program"
NEW_WORDS = "Sessions start with a short warm-up and end with a plan for home."
BEN_WORDS = "Ben's purpose: getting back to the job you had."


def person(django_user_model, username, role, first_name, last_name=""):
    user = django_user_model.objects.create_user(
        username,
        password=PASSWORD,
        is_staff=True,
        first_name=first_name,
        last_name=last_name,
    )
    user.groups.add(Group.objects.get(name=role))
    return user


def summary_on(page):
    return page.locator("section.writeup-section", has_text="Summary")


def test_a_revision_of_a_live_write_up_is_reviewed_published_and_restored(
    new_page, shoot, axe, django_user_model
):
    person(django_user_model, "ava", "Author", "Ava", "Ng")
    person(django_user_model, "ben", "Author", "Ben", "Ode")
    rui = person(django_user_model, "rui", "Clinical reviewer", "Dr Rui", "Costa")
    person(django_user_model, "pia", "Publisher", "Pia", "Lund")
    # 1. The write-up is live, approved by Rui last year.
    write_up = Procedure.objects.get(code__code="97546")
    assert write_up.is_published
    write_up.approve(rui, today=datetime.date(2025, 3, 14))
    write_up.save()
    change = f"/admin/procedures/procedure/{write_up.pk}/change/"
    today = f"{datetime.date.today():%-d %B %Y}"

    public = new_page()
    public.goto(PUBLIC)
    expect(summary_on(public)).to_contain_text(OLD_WORDS)
    expect(public.locator(".review-line")).to_have_text(
        "Last reviewed 14 March 2025 by Dr Rui Costa."
    )

    # Ben opens the write-up first and goes for a coffee.
    ben_page = new_page()
    log_in(ben_page, "ben", PASSWORD, change)

    # 2. Ava adds a sentence to the Summary and saves: it waits in a revision.
    ava_page = new_page()
    log_in(ava_page, "ava", PASSWORD, change)
    summary = ava_page.locator("textarea[name='summary']")
    summary.click()
    ava_page.keyboard.press("Control+End")
    ava_page.keyboard.type(" " + NEW_WORDS)
    preview = ava_page.locator(".markdownx", has=summary).locator(".markdownx-preview")
    expect(preview).to_contain_text(NEW_WORDS)
    shoot(ava_page, "ava-edits-the-summary")
    ava_page.get_by_role("button", name="Save", exact=True).click()
    expect(ava_page.locator(".messagelist")).to_contain_text(
        "Your changes are kept as a working revision. The public page shows the "
        "published text until a clinical reviewer approves the revision"
    )
    shoot(ava_page, "ava-saved-a-revision")

    public.goto(PUBLIC)
    expect(summary_on(public)).to_contain_text(OLD_WORDS)
    expect(public.locator("main")).not_to_contain_text(NEW_WORDS)

    # The list's review column links to the preview of the page as it will be.
    ava_page.goto(CHANGELIST)
    row = ava_page.locator("#result_list tbody tr", has_text="97546")
    expect(row).to_contain_text("Revision waiting, not yet approved")
    row.get_by_role("link", name="preview").click()
    expect(ava_page.locator(".preview-banner")).to_contain_text("Preview for staff")
    expect(summary_on(ava_page)).to_contain_text(NEW_WORDS)
    expect(ava_page.locator(".review-line")).to_have_text(
        "Not yet reviewed by a clinician: read it as general information."
    )
    shoot(ava_page, "ava-previews-the-revision")
    # 6. The preview, a public page drawn for staff, passes axe.
    assert axe(ava_page) == []

    # 3. Ben, on his old copy, changes the Purpose and saves: refused.
    purpose = ben_page.locator("textarea[name='purpose']")
    purpose.fill(BEN_WORDS)
    ben_page.get_by_role("button", name="Save", exact=True).click()
    refusal = ben_page.locator(".errorlist.nonfield")
    expect(refusal).to_contain_text("was changed by Ava Ng after you opened it")
    expect(refusal).to_contain_text("Summary in the working revision")
    expect(refusal).to_contain_text("Your changes are not saved")
    expect(ben_page.locator("textarea[name='purpose']")).to_have_value(BEN_WORDS)
    shoot(ben_page, "ben-is-refused")
    write_up.refresh_from_db()
    assert BEN_WORDS not in write_up.revised_text()["purpose"]

    # 4. Rui approves the revision, Pia publishes it.
    rui_page = new_page()
    log_in(rui_page, "rui", PASSWORD, CHANGELIST)
    run_action(
        rui_page, CHANGELIST, "97546", "Approve the text of the selected write-ups"
    )
    expect(rui_page.locator(".messagelist")).to_contain_text("1 write-up approved.")
    row = rui_page.locator("#result_list tbody tr", has_text="97546")
    expect(row).to_contain_text("Revision waiting, approved by Dr Rui Costa")
    shoot(rui_page, "rui-approved")
    public.goto(PUBLIC)
    expect(public.locator("main")).not_to_contain_text(NEW_WORDS)

    pia_page = new_page()
    log_in(pia_page, "pia", PASSWORD, CHANGELIST)
    run_action(pia_page, CHANGELIST, "97546", "Publish the selected write-ups")
    expect(pia_page.locator(".messagelist")).to_contain_text("1 write-up published.")
    shoot(pia_page, "pia-published")

    public.goto(PUBLIC)
    expect(summary_on(public)).to_contain_text(NEW_WORDS)
    expect(public.locator(".review-line")).to_have_text(
        f"Last reviewed {today} by Dr Rui Costa."
    )
    shoot(public, "the-public-page-after-publishing")

    # 5. Pia reads the history: each change, who made it, the words put in.
    pia_page.goto(change)
    pia_page.get_by_role("link", name="History").click()
    rows = pia_page.locator("#change-history tbody tr")
    by_ava = rows.filter(has_text="Summary (working revision)").filter(
        has=pia_page.get_by_role("link", name="ava", exact=True)
    )
    expect(by_ava.locator("ins")).to_have_text(NEW_WORDS)
    published = rows.filter(has_text="Summary:").filter(
        has=pia_page.get_by_role("link", name="pia", exact=True)
    )
    expect(published.locator("ins")).to_have_text(NEW_WORDS)
    shoot(pia_page, "history")

    # She restores the first record. The write-up is live, so the old text comes
    # back as the working revision; the public keeps Ava's reviewed summary.
    rows.last.get_by_role("link").click()
    old_summary = pia_page.locator("textarea[name='summary']").input_value()
    assert OLD_WORDS in old_summary and NEW_WORDS not in old_summary
    shoot(pia_page, "the-first-record")
    pia_page.get_by_role("button", name="Revert").click()
    expect(pia_page.locator(".messagelist")).to_contain_text(
        "Your changes are kept as a working revision."
    )
    row = pia_page.locator("#result_list tbody tr", has_text="97546")
    expect(row).to_contain_text("Revision waiting, not yet approved")
    shoot(pia_page, "restored-as-the-working-revision")
    row.get_by_role("link", name="preview").click()
    expect(summary_on(pia_page)).to_contain_text(OLD_WORDS)
    expect(summary_on(pia_page)).not_to_contain_text(NEW_WORDS)
    public.goto(PUBLIC)
    expect(summary_on(public)).to_contain_text(NEW_WORDS)
    expect(public.locator(".review-line")).to_have_text(
        f"Last reviewed {today} by Dr Rui Costa."
    )

    # Ben's form still holds the copy he opened: the restore did not make it new.
    ben_page.get_by_role("button", name="Save", exact=True).click()
    expect(ben_page.locator(".errorlist.nonfield")).to_contain_text(
        "after you opened it"
    )
    write_up.refresh_from_db()
    assert BEN_WORDS not in write_up.revised_text()["purpose"]
