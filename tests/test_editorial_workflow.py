"""
Editorial trust: a write-up goes live only after a clinical reviewer approves that
exact text; edits of a live write-up wait in a working revision; a save based on an
old copy is refused; every change is in the history, with a diff and a restore.
"""

import datetime
import json

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from lxml import html

from policies.models import Policy
from procedures.models import Procedure, PublicationStatus

from .admin_forms import form_data, messages

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:procedures_procedure_changelist")


def staff(django_user_model, username, role, **names):
    user = django_user_model.objects.create_user(
        username, password="a long passphrase", is_staff=True, **names
    )
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def ava(django_user_model):
    return staff(django_user_model, "ava", "Author", first_name="Ava", last_name="Ng")


@pytest.fixture
def rui(django_user_model):
    return staff(
        django_user_model,
        "rui",
        "Clinical reviewer",
        first_name="Dr Rui",
        last_name="Costa",
    )


@pytest.fixture
def pia(django_user_model):
    return staff(django_user_model, "pia", "Publisher")


@pytest.fixture
def write_up(sample_data):
    return Procedure.objects.get(code__code="97546")


def as_user(client, user):
    client.force_login(user)
    return client


def change_url(procedure):
    return reverse("admin:procedures_procedure_change", args=[procedure.pk])


def restore_url(procedure, record):
    """The history's form that restores ``record`` of ``procedure``."""
    return reverse(
        "admin:procedures_procedure_simple_history",
        args=[procedure.pk, record.history_id],
    )


def action(client, name, procedure):
    return client.post(
        CHANGELIST, {"action": name, "_selected_action": [procedure.pk]}, follow=True
    )


def public_text(client, address="/codes/cpt/97546/"):
    client.logout()
    return " ".join(html.fromstring(client.get(address).content).text_content().split())


def edit(client, procedure, **changes):
    """Opens the change form, changes fields as a person would, and saves."""
    data = form_data(client.get(change_url(procedure)))
    data.update(changes)
    return client.post(change_url(procedure), data, follow=True)


# Review ------------------------------------------------------------------------------


def test_publishing_needs_a_reviewers_approval_of_that_text(client, write_up, rui, pia):
    write_up.status = PublicationStatus.DRAFT
    write_up.save()
    refused = action(as_user(client, pia), "publish", write_up)
    assert any("has not approved this text" in text for text in messages(refused))
    write_up.refresh_from_db()
    assert write_up.status == PublicationStatus.DRAFT

    action(as_user(client, rui), "approve", write_up)
    action(as_user(client, pia), "publish", write_up)
    write_up.refresh_from_db()
    assert write_up.is_published
    assert write_up.reviewed_by == "Dr Rui Costa"
    assert write_up.reviewed_on == datetime.date.today()
    assert write_up.review_due_on == datetime.date.today() + datetime.timedelta(365)
    page = public_text(client)
    assert f"Last reviewed {datetime.date.today():%-d %B %Y} by Dr Rui Costa." in page


def test_the_publish_action_never_claims_a_review(client, write_up, pia):
    write_up.status = PublicationStatus.DRAFT
    write_up.save()
    action(as_user(client, pia), "publish", write_up)
    write_up.refresh_from_db()
    assert write_up.reviewed_on is None
    assert write_up.reviewed_by == ""


def test_changing_the_approved_text_clears_the_review(write_up, rui):
    write_up.approve(rui)
    write_up.save()
    assert write_up.is_approved
    write_up.title = write_up.title  # saving the same text keeps it
    write_up.save()
    assert write_up.is_approved
    write_up.purpose += " More words."
    write_up.save()
    write_up.refresh_from_db()
    assert not write_up.is_approved
    assert write_up.reviewed_on is None
    assert write_up.reviewed_by == ""


def test_an_import_that_changes_a_drafts_text_clears_its_review(write_up, rui):
    from procedures.importing import WRITEUP_SOURCE, import_procedure
    from procedures.parsing import parse_procedure

    write_up.status = PublicationStatus.DRAFT
    write_up.approve(rui)
    write_up.save()
    seed = _seed_text().replace("specialized therapy", "structured therapy")
    import_procedure(
        parse_procedure(seed, code="97546"), descriptor_source=WRITEUP_SOURCE
    )
    write_up.refresh_from_db()
    assert "structured therapy" in write_up.summary
    assert write_up.reviewed_on is None


def _seed_text():
    from django.conf import settings

    return (
        settings.BASE_DIR
        / "sample_data"
        / "procedure-97546-work-hardening-each-additional-hour.txt"
    ).read_text(encoding="utf-8")


def test_the_page_and_its_json_ld_name_the_reviewer(client, write_up, rui):
    write_up.approve(rui, today=datetime.date(2026, 11, 2))
    write_up.save()
    client.logout()
    tree = html.fromstring(client.get("/codes/cpt/97546/").content)
    line = " ".join(tree.xpath("//p[@class='review-line']")[0].text_content().split())
    assert line == "Last reviewed 2 November 2026 by Dr Rui Costa."
    (page,) = [
        json.loads(node.text)
        for node in tree.xpath("//script[@type='application/ld+json']")
        if "MedicalWebPage" in node.text
    ]
    assert page["lastReviewed"] == "2026-11-02"
    assert page["reviewedBy"]["name"] == "Dr Rui Costa"


def test_the_admin_lists_overdue_never_reviewed_and_policy_changed_write_ups(
    client, write_up, rui, pia
):
    write_up.approve(rui, today=datetime.date(2024, 1, 5))
    write_up.save()
    as_user(client, pia)

    def listed(review):
        page = client.get(CHANGELIST, {"review": review})
        return "97546" in html.fromstring(page.content).text_content()

    assert listed("overdue")
    assert not listed("never")
    policies = Policy.objects.filter(number="0198")
    updated = datetime.datetime(2023, 12, 1, tzinfo=datetime.UTC)
    policies.update(updated_at=updated)
    assert not listed("policy")
    # Aetna reviewed CPB 0198 (which names 97546) after the write-up's review.
    policies.update(last_reviewed_on=datetime.date(2025, 6, 1))
    assert listed("policy")
    policies.update(last_reviewed_on=datetime.date(2023, 12, 1))
    assert not listed("policy")
    # A new version of the bulletin was imported after the review.
    policies.update(updated_at=updated.replace(year=2025))
    assert listed("policy")
    write_up.purpose += " Changed."
    write_up.save()
    assert listed("never")
    assert not listed("overdue")


# Working revisions -------------------------------------------------------------------


def test_an_authors_edit_of_a_live_write_up_waits_in_a_revision(
    client, write_up, ava, rui, pia
):
    live_summary = write_up.summary
    response = edit(
        as_user(client, ava), write_up, summary="A new, plainer summary for patients."
    )
    assert any("working revision" in text for text in messages(response))
    write_up.refresh_from_db()
    assert write_up.summary == live_summary
    assert write_up.revision == {"summary": "A new, plainer summary for patients."}
    assert "A new, plainer summary" not in public_text(client)

    # Staff preview the page as it will be: the new text, marked, never indexed.
    preview = as_user(client, ava).get(
        reverse("admin:procedures_procedure_preview", args=[write_up.pk])
    )
    assert preview.status_code == 200
    assert preview["X-Robots-Tag"] == "noindex"
    tree = html.fromstring(preview.content)
    assert "A new, plainer summary for patients." in tree.text_content()
    assert tree.xpath("//meta[@name='robots']/@content") == ["noindex, nofollow"]
    assert tree.xpath("//p[@class='preview-banner']")

    # The form shows the revision to whoever edits next.
    form = form_data(as_user(client, pia).get(change_url(write_up)))
    assert form["summary"] == "A new, plainer summary for patients."

    action(as_user(client, pia), "publish", write_up)
    write_up.refresh_from_db()
    assert write_up.summary == live_summary  # not approved yet

    action(as_user(client, rui), "approve", write_up)
    write_up.refresh_from_db()
    assert write_up.summary == live_summary
    assert write_up.revision_is_approved

    action(as_user(client, pia), "publish", write_up)
    write_up.refresh_from_db()
    assert write_up.summary == "A new, plainer summary for patients."
    assert write_up.revision == {}
    assert write_up.reviewed_by == "Dr Rui Costa"
    assert "A new, plainer summary for patients." in public_text(client)


def test_a_revision_changed_after_approval_needs_approving_again(write_up, rui):
    write_up.set_revision({"summary": "First try."})
    write_up.save()
    write_up.approve(rui)
    write_up.save()
    assert write_up.revision_is_approved
    write_up.set_revision({"summary": "Second try."})
    write_up.save()
    assert not write_up.revision_is_approved


def test_a_preview_is_for_staff_only(client, write_up):
    address = reverse("admin:procedures_procedure_preview", args=[write_up.pk])
    response = client.get(address)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


# No lost updates ---------------------------------------------------------------------


def test_a_save_based_on_an_old_copy_is_refused_and_says_what_changed(
    client, django_user_model, write_up, ava
):
    ben = staff(django_user_model, "ben", "Author", first_name="Ben", last_name="Ode")
    write_up.status = PublicationStatus.DRAFT
    write_up.save()
    form_a = form_data(as_user(client, ava).get(change_url(write_up)))
    form_b = form_data(as_user(client, ben).get(change_url(write_up)))

    form_a["summary"] = "Ava's summary."
    as_user(client, ava).post(change_url(write_up), form_a)
    form_b["purpose"] = "Ben's purpose."
    response = as_user(client, ben).post(change_url(write_up), form_b)

    assert response.status_code == 200  # the form again, not a redirect
    text = " ".join(messages(response))
    assert "changed by Ava Ng after you opened it" in text
    assert "Summary (added “Ava's summary.”, removed “" in text
    write_up.refresh_from_db()
    assert write_up.summary == "Ava's summary."
    assert write_up.purpose != "Ben's purpose."
    # Ben's text is still in his form.
    assert form_data(response)["purpose"] == "Ben's purpose."


def test_a_save_from_a_fresh_copy_goes_through(client, write_up, ava):
    write_up.status = PublicationStatus.DRAFT
    write_up.save()
    edit(as_user(client, ava), write_up, summary="First.")
    edit(as_user(client, ava), write_up, purpose="Second.")
    write_up.refresh_from_db()
    assert (write_up.summary, write_up.purpose) == ("First.", "Second.")


def test_a_stale_policy_save_is_refused_too(client, sample_data, pia):
    policy = Policy.objects.get(number="0198")
    address = reverse("admin:policies_policy_change", args=[policy.pk])
    as_user(client, pia)
    stale = form_data(client.get(address))
    fresh = dict(stale)
    fresh["title"] = "Work Hardening Programs (revised)"
    client.post(address, fresh)
    stale["scope"] = "Overwritten scope."
    response = client.post(address, stale)
    assert "after you opened it" in " ".join(messages(response))
    policy.refresh_from_db()
    assert policy.title == "Work Hardening Programs (revised)"
    assert policy.scope != "Overwritten scope."


# History -----------------------------------------------------------------------------


def test_history_shows_who_changed_what_as_a_diff_and_restores_it(
    client, write_up, ava
):
    write_up.status = PublicationStatus.DRAFT
    write_up.save()
    old_summary = write_up.summary
    edit(as_user(client, ava), write_up, summary=old_summary + " Added words.")
    history = client.get(
        reverse("admin:procedures_procedure_history", args=[write_up.pk])
    )
    tree = html.fromstring(history.content)
    (row,) = tree.xpath("//table[@id='change-history']//tr[td[contains(., 'ava')]]")
    assert [" ".join(n.text_content().split()) for n in row.xpath(".//ins")] == [
        "Added words."
    ]

    record = write_up.history.order_by("history_date")[0]
    restore = restore_url(write_up, record)
    data = form_data(client.get(restore))
    client.post(restore, data)
    write_up.refresh_from_db()
    assert write_up.summary == old_summary
    latest = write_up.history.latest()
    assert latest.history_user.username == "ava"
    assert latest.summary == old_summary


@pytest.mark.parametrize("model", ["payer", "policycodegroup"])
def test_stale_saves_of_payers_and_code_groups_are_refused(
    client, sample_data, pia, model
):
    from policies.models import Payer, PolicyCodeGroup

    row = {
        "payer": Payer.objects.get(slug="aetna"),
        "policycodegroup": PolicyCodeGroup.objects.filter(system="cpt").first(),
    }[model]
    field = {"payer": "name", "policycodegroup": "heading"}[model]
    address = reverse(f"admin:policies_{model}_change", args=[row.pk])
    as_user(client, pia)
    stale = form_data(client.get(address))
    client.post(address, {**stale, field: "First editor's words"})
    response = client.post(address, {**stale, field: "Second editor's words"})
    assert "after you opened it" in " ".join(messages(response))
    row.refresh_from_db()
    assert getattr(row, field) == "First editor's words"


def test_an_import_confirmed_after_someone_else_saved_is_refused(client, write_up, ava):
    from django.core.files.uploadedfile import SimpleUploadedFile

    write_up.status = PublicationStatus.DRAFT
    write_up.save()
    address = reverse("admin:procedures_procedure_import")
    document = _seed_text().replace("specialized therapy", "structured therapy")
    as_user(client, ava)
    preview = client.post(
        address,
        {
            "document": SimpleUploadedFile(
                "procedure-97546-work-hardening.txt", document.encode()
            )
        },
    )
    confirm = form_data(preview, form="//form[.//input[@name='confirm']]")
    edit(client, write_up, purpose="Saved while the preview was open.")
    response = client.post(address, {**confirm, "confirm": "Save these changes"})
    assert response.status_code == 400
    assert "after you opened it" in response.content.decode()
    write_up.refresh_from_db()
    assert write_up.purpose == "Saved while the preview was open."
    assert "structured therapy" not in write_up.summary


def test_the_change_form_will_not_publish_unapproved_text(client, write_up, pia, rui):
    write_up.status = PublicationStatus.DRAFT
    write_up.save()
    response = edit(as_user(client, pia), write_up, status="published")
    assert any("has not approved this text yet" in text for text in messages(response))
    write_up.refresh_from_db()
    assert write_up.status == PublicationStatus.DRAFT

    write_up.approve(rui)
    write_up.save()
    # Approved, but the publisher changes a word as they publish: not approved.
    response = edit(client, write_up, status="published", purpose="New words.")
    assert any("has not approved this text yet" in text for text in messages(response))
    edit(client, write_up, status="published")
    write_up.refresh_from_db()
    assert write_up.is_published


def test_an_authors_edit_of_a_live_policy_waits_until_a_publisher_publishes_it(
    client, sample_data, ava, pia
):
    policy = Policy.objects.get(number="0198")
    address = reverse("admin:policies_policy_change", args=[policy.pk])
    scope = policy.scope
    as_user(client, ava)
    response = client.post(
        address,
        {**form_data(client.get(address)), "scope": "A plainer scope."},
        follow=True,
    )
    assert any("working revision" in text for text in messages(response))
    policy.refresh_from_db()
    assert (policy.scope, policy.revision) == (scope, {"scope": "A plainer scope."})
    assert "A plainer scope." not in public_text(client, policy.get_absolute_url())

    preview = as_user(client, ava).get(
        reverse("admin:policies_policy_preview", args=[policy.pk])
    )
    assert preview["X-Robots-Tag"] == "noindex"
    assert "A plainer scope." in html.fromstring(preview.content).text_content()

    changelist = reverse("admin:policies_policy_changelist")
    as_user(client, pia).post(
        changelist, {"action": "publish_revision", "_selected_action": [policy.pk]}
    )
    policy.refresh_from_db()
    assert (policy.scope, policy.revision) == ("A plainer scope.", {})
    assert "A plainer scope." in public_text(client, policy.get_absolute_url())


def test_restoring_an_old_version_of_a_live_write_up_keeps_it_live_and_reviewed(
    client, write_up, ava, rui
):
    write_up.status = PublicationStatus.DRAFT
    write_up.save()
    old = write_up.history.latest()
    write_up.summary = "Newer summary."
    write_up.status = PublicationStatus.PUBLISHED
    write_up.approve(rui)
    write_up.save()

    restore = restore_url(write_up, old)
    as_user(client, ava)
    client.post(restore, form_data(client.get(restore)))
    write_up.refresh_from_db()
    # An author cannot unpublish by restoring a draft: the old text waits in the
    # revision, and the live text keeps its review.
    assert write_up.is_published
    assert write_up.summary == "Newer summary."
    assert write_up.revision["summary"] == old.summary
    assert write_up.reviewed_by == "Dr Rui Costa"


def test_restoring_an_approved_old_version_does_not_publish_it_unreviewed(
    client, write_up, rui, pia
):
    # Rui approved the live text once; it was then taken offline and rewritten.
    write_up.approve(rui)
    write_up.save()
    approved = write_up.history.latest()
    write_up.status = PublicationStatus.DRAFT
    write_up.summary = "A rewrite nobody has reviewed."
    write_up.save()

    restore = restore_url(write_up, approved)
    as_user(client, pia)
    data = form_data(client.get(restore))
    assert data["status"] == "published"  # as the record was
    response = client.post(restore, data)
    write_up.refresh_from_db()
    assert write_up.status == PublicationStatus.DRAFT
    # The form checks the review the write-up has now, not the record's old one.
    assert any("has not approved this text yet" in text for text in messages(response))

    client.post(restore, {**data, "status": "draft"})
    write_up.refresh_from_db()
    assert write_up.summary == approved.summary
    assert write_up.status == PublicationStatus.DRAFT
