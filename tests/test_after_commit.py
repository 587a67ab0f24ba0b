"""
Search and similar codes follow content once it is committed, as on the live site.

The search index and the similar-codes lists are refreshed by ``on_commit`` callbacks.
Elsewhere the tests run those callbacks inside the test's own transaction
(``django_capture_on_commit_callbacks``); here every save really commits: staff work
through the admin's own forms and actions, imports run their commands, and then the
search page and the code pages are read as a visitor would.
"""

import logging
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from lxml import html

from index import similar
from index.search import indexing
from policies.models import Policy
from procedures.models import Code, Procedure

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
BULLETIN = ROOT / "sample_data" / "policy-aetna-0198-work-hardening-programs.txt"
DATA = Path(__file__).resolve().parent / "data"
THERAPY = DATA / "policy-aetna-0325-physical-therapy-ultrasound.txt"
BONE_GROWTH = DATA / "policy-harbor-0712-bone-growth-stimulation.txt"
CPT_FILE = DATA / "cpt_sample.csv"
# A word of the sample write-up that neither its code's descriptor nor the policy
# uses: only the published write-up is found by it (without it, the search's typo
# tolerance offers the policy's nearest words instead).
WRITEUP_WORD = "ergonomic"
# No sample document uses this word.
NEW_WORD = "kettlebell"


@pytest.fixture
def loaded():
    """The sample documents, imported by their command: every callback runs."""
    call_command("load_sample_data", verbosity=0, seeds_only=True)


def staff(django_user_model, name, permissions):
    person = django_user_model.objects.create_user(
        name, f"{name}@clinic.example", "a long passphrase", is_staff=True
    )
    person.user_permissions.set(permissions)
    client = Client()
    client.force_login(person)
    return client


@pytest.fixture
def priya(django_user_model):
    """An editor (not a superuser) with every right over codes, write-ups, policies."""
    # Direct permissions, not the role groups: those come from a data migration,
    # and the flush after each transactional test removes them.
    return staff(
        django_user_model,
        "priya",
        Permission.objects.filter(
            content_type__app_label__in=["procedures", "policies"]
        ),
    )


@pytest.fixture
def rosa(django_user_model):
    """A clinical reviewer, who approves the text of write-ups."""
    return staff(
        django_user_model,
        "rosa",
        Permission.objects.filter(
            content_type__app_label="procedures",
            codename__in=["view_procedure", "change_procedure", "can_review"],
        ),
    )


def admin_form(response, which="//form[contains(@id, '_form')]", **changes):
    """The page's admin form as a browser would post it, with ``changes`` made."""
    assert response.status_code == 200
    form = html.fromstring(response.content).xpath(which)[0]
    data = {}
    for name, value in form.form_values():
        data.setdefault(name, []).append(value)
    data = {
        name: values[0] if len(values) == 1 else values for name, values in data.items()
    }
    data.update(changes)
    return data


def add_code(staff, code, descriptor):
    """Posts the admin's "add code" form, filled in as a person would."""
    add = reverse("admin:procedures_code_add")
    form = admin_form(staff.get(add), system="cpt", code=code, descriptor=descriptor)
    return staff.post(add, form)


def delete_in_admin(staff, instance):
    """Confirms the admin's delete page of ``instance``."""
    meta = instance._meta
    address = reverse(
        f"admin:{meta.app_label}_{meta.model_name}_delete", args=[instance.pk]
    )
    response = staff.post(address, {"post": "yes"})
    assert response.status_code == 302


def search(client, query):
    """The search page's result links, or the address a typed code redirects to."""
    response = client.get("/search/", {"q": query})
    if response.status_code == 302:
        return [response["Location"]]
    assert response.status_code == 200
    return html.fromstring(response.content).xpath("//ol[@class='results']//a/@href")


def page_text(client, address):
    response = client.get(address)
    assert response.status_code == 200
    return " ".join(html.fromstring(response.content).text_content().split())


def similar_links(client, address):
    response = client.get(address)
    assert response.status_code == 200
    tree = html.fromstring(response.content)
    return tree.xpath("//ol[contains(@class,'similar-list')]/li/a/@href")


# --- Imports -------------------------------------------------------------------------


def test_the_sample_documents_loaded_by_command_are_found_and_read(client, loaded):
    assert "/policies/aetna/0198/" in search(client, "work hardening programs")
    assert search(client, WRITEUP_WORD) == ["/codes/cpt/97546/"]
    assert "Work Hardening/Conditioning" in page_text(client, "/codes/cpt/97546/")
    assert similar_links(client, "/codes/cpt/97546/similar/")[0] == "/codes/cpt/97545/"
    assert "All codes similar to 97545" in page_text(client, "/codes/cpt/97545/")


def test_a_policy_imported_by_command_is_found_and_named_on_its_codes_pages(
    client, loaded
):
    assert search(client, "ultrasound") == []
    call_command("import_policy", str(THERAPY), verbosity=0)
    # The policy, and the code the site learnt from its table.
    assert set(search(client, "ultrasound")) == {
        "/policies/aetna/0325/",
        "/codes/cpt/97035/",
    }
    shown = page_text(client, "/codes/cpt/97035/")
    assert "0325: Physical Therapy and Therapeutic Ultrasound" in shown
    assert "/codes/cpt/97110/" in similar_links(client, "/codes/cpt/97035/similar/")
    assert "Listed in the same group of Aetna policy 0325" not in page_text(
        client, "/codes/cpt/97546/similar/"
    )


def test_references_imported_again_with_new_words_are_found_by_them(
    client, loaded, tmp_path
):
    # Only a reference changes: neither the policy nor its code groups are saved,
    # and the new list is written in bulk.
    reference = "Brewer CC, Storms BS. The final phase of rehabilitation"
    text = BULLETIN.read_text(encoding="utf-8")
    assert reference in text
    changed = tmp_path / BULLETIN.name
    changed.write_text(
        text.replace(reference, reference.replace("final", NEW_WORD)),
        encoding="utf-8",
    )
    assert search(client, NEW_WORD) == []
    call_command("import_policy", str(changed), verbosity=0)
    assert search(client, NEW_WORD) == ["/policies/aetna/0198/"]
    assert f"The {NEW_WORD} phase of rehabilitation" in page_text(
        client, "/policies/aetna/0198/"
    )


def test_codes_imported_from_a_code_set_file_are_found_with_similar_codes(
    client, loaded
):
    assert search(client, "cold packs") == []
    call_command("import_cpt", str(CPT_FILE), verbosity=0)
    assert search(client, "cold packs") == ["/codes/cpt/97010/"]
    assert "/codes/cpt/97545/" in similar_links(client, "/codes/cpt/97010/similar/")
    assert "/codes/cpt/97010/" in similar_links(client, "/codes/cpt/97545/similar/")


def test_a_bulletin_imported_in_the_admin_is_found_once_confirmed(
    client, priya, loaded
):
    upload = SimpleUploadedFile(BONE_GROWTH.name, BONE_GROWTH.read_bytes())
    preview = priya.post(reverse("admin:policies_policy_import"), {"document": upload})
    assert search(client, "osteogenesis") == []
    confirm = priya.post(
        reverse("admin:policies_policy_import"),
        admin_form(preview, "//form[.//*[@name='confirm']]", confirm="1"),
    )
    assert confirm.status_code == 302
    # The policy, and the code the site learnt from its table.
    assert set(search(client, "osteogenesis")) == {
        "/policies/harbor-health-plan/0712/",
        "/codes/hcpcs/E0760/",
    }
    assert "0712: Bone Growth Stimulators" in page_text(
        client, "/codes/icd-10-cm/S52.501A/"
    )


# --- The admin -----------------------------------------------------------------------


def act_on_write_up(staff, action, procedure):
    """Runs an action of the write-ups' list on ``procedure``."""
    response = staff.post(
        reverse("admin:procedures_procedure_changelist"),
        {"action": action, "_selected_action": [procedure.pk]},
    )
    assert response.status_code == 302


def test_a_write_up_written_in_the_admin_appears_once_approved_and_published(
    client, priya, rosa, loaded
):
    code = Code.objects.get(system="cpt", code="97545")
    add = reverse("admin:procedures_procedure_add")
    response = priya.post(
        add,
        admin_form(
            priya.get(add),
            code=code.pk,
            title="Work hardening, the first two hours",
            status="draft",
            summary=f"The first two hours of a {NEW_WORD} circuit.",
        ),
    )
    assert response.status_code == 302
    assert search(client, NEW_WORD) == []

    procedure = Procedure.objects.get(code=code)
    act_on_write_up(rosa, "approve", procedure)
    act_on_write_up(priya, "publish", procedure)
    assert search(client, NEW_WORD) == ["/codes/cpt/97545/"]
    shown = page_text(client, "/codes/cpt/97545/")
    assert "Work hardening, the first two hours" in shown
    assert f"The first two hours of a {NEW_WORD} circuit." in shown


def unpublish_from_the_list(staff, procedure):
    act_on_write_up(staff, "unpublish", procedure)


def set_to_draft_in_its_change_form(staff, procedure):
    change = reverse("admin:procedures_procedure_change", args=[procedure.pk])
    response = staff.post(change, admin_form(staff.get(change), status="draft"))
    assert response.status_code == 302


@pytest.mark.parametrize(
    "return_to_draft",
    [unpublish_from_the_list, set_to_draft_in_its_change_form],
    ids=["from the list", "in its change form"],
)
def test_a_write_up_returned_to_draft_leaves_search_and_its_page(
    client, priya, loaded, return_to_draft
):
    procedure = Procedure.objects.get(code__code="97546")
    assert search(client, WRITEUP_WORD) == ["/codes/cpt/97546/"]
    return_to_draft(priya, procedure)
    assert "/codes/cpt/97546/" not in search(client, WRITEUP_WORD)
    shown = page_text(client, "/codes/cpt/97546/")
    assert "There is no plain-language write-up for this code yet." in shown
    assert WRITEUP_WORD not in shown


def test_a_policy_edited_then_unpublished_in_the_admin_follows_in_search(
    client, priya, loaded
):
    policy = Policy.objects.get(number="0198")
    change = reverse("admin:policies_policy_change", args=[policy.pk])
    title = f"Work Hardening and {NEW_WORD.capitalize()} Programs"
    response = priya.post(change, admin_form(priya.get(change), title=title))
    assert response.status_code == 302
    assert search(client, NEW_WORD) == ["/policies/aetna/0198/"]
    assert title in page_text(client, "/codes/cpt/97546/")

    response = priya.post(change, admin_form(priya.get(change), status="draft"))
    assert response.status_code == 302
    assert search(client, NEW_WORD) == []
    assert "No payer policy on this site names 97546 yet." in page_text(
        client, "/codes/cpt/97546/"
    )


def test_a_policy_deleted_in_the_admin_leaves_search_and_the_similar_codes(
    client, priya, loaded
):
    policy = Policy.objects.get(number="0198")
    assert "/policies/aetna/0198/" in search(client, "work hardening programs")
    assert "Aetna policy 0198" in page_text(client, "/codes/cpt/97546/similar/")
    delete_in_admin(priya, policy)
    assert "/policies/aetna/0198/" not in search(client, "work hardening programs")
    assert "Aetna policy 0198" not in page_text(client, "/codes/cpt/97546/similar/")


def test_a_code_added_in_the_admin_is_found_and_gets_similar_codes(
    client, priya, loaded
):
    response = add_code(priya, "97750", "Physical performance test or measurement")
    assert response.status_code == 302
    assert search(client, "97750") == ["/codes/cpt/97750/"]
    assert "/codes/cpt/97750/" in search(client, "performance measurement")
    assert "/codes/cpt/97546/" in similar_links(client, "/codes/cpt/97750/similar/")
    assert "/codes/cpt/97750/" in similar_links(client, "/codes/cpt/97546/similar/")


def test_a_code_deleted_in_the_admin_leaves_search_and_other_codes_lists(
    client, priya, loaded
):
    code = Code.objects.get(system="cpt", code="97545")
    assert search(client, "97545") == ["/codes/cpt/97545/"]
    assert "/codes/cpt/97545/" in search(client, "work hardening")
    assert "/codes/cpt/97545/" in similar_links(client, "/codes/cpt/97546/similar/")
    delete_in_admin(priya, code)
    assert "/codes/cpt/97545/" not in search(client, "97545")
    assert "/codes/cpt/97545/" not in search(client, "work hardening")
    assert "/codes/cpt/97545/" not in similar_links(client, "/codes/cpt/97546/similar/")


# --- When a refresh fails ------------------------------------------------------------


def disk_full(*args, **kwargs):
    raise OSError("disk full")


def errors(caplog):
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.ERROR
    ]


def test_a_failing_search_refresh_keeps_the_save_logs_it_and_a_rebuild_repairs_it(
    client, priya, loaded, monkeypatch, caplog
):
    monkeypatch.setattr(indexing, "reindex_codes", disk_full)
    code = Code.objects.get(system="cpt", code="97545")
    change = reverse("admin:procedures_code_change", args=[code.pk])
    form = admin_form(priya.get(change), descriptor=f"Work hardening with a {NEW_WORD}")
    with caplog.at_level(logging.ERROR):
        response = priya.post(change, form)
    assert response.status_code == 302
    code.refresh_from_db()
    assert code.descriptor == f"Work hardening with a {NEW_WORD}"
    assert code.descriptor in page_text(client, "/codes/cpt/97545/")
    assert errors(caplog) == [
        "The search index was not refreshed after a commit (codes: 1, policies: 0); "
        "search shows them as they were until manage.py rebuild_search_index runs."
    ]
    assert search(client, NEW_WORD) == []

    monkeypatch.undo()
    call_command("rebuild_search_index", verbosity=0)
    assert search(client, NEW_WORD) == ["/codes/cpt/97545/"]


def test_a_failing_similar_refresh_keeps_the_save_logs_it_and_a_rebuild_repairs_it(
    client, priya, loaded, monkeypatch, caplog
):
    monkeypatch.setattr(similar, "refresh", disk_full)
    with caplog.at_level(logging.ERROR):
        response = add_code(priya, "97750", "Physical performance test or measurement")
    assert response.status_code == 302
    assert Code.objects.filter(system="cpt", code="97750").exists()
    assert errors(caplog) == [
        "Similar codes were not refreshed after a commit (codes: 1, policies: 0); "
        "their lists stay as they were until manage.py rebuild_similar_codes runs."
    ]
    # The search index is refreshed all the same.
    assert search(client, "97750") == ["/codes/cpt/97750/"]
    assert "has not been worked out yet" in page_text(
        client, "/codes/cpt/97750/similar/"
    )

    monkeypatch.undo()
    call_command("rebuild_similar_codes", verbosity=0)
    assert "/codes/cpt/97546/" in similar_links(client, "/codes/cpt/97750/similar/")
