"""
Who may do what in the admin: every admin address of the content models, and every
action and writing path, tried by each editorial role and by the two thinnest
accounts (view only, add only). The observed matrix must equal the intended one.
"""

from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.urls import reverse

from policies.models import Policy, PolicyCodeGroup, PolicyStatus
from procedures.models import Code, LaySynonym, LayTerm, Procedure, PublicationStatus

from .admin_forms import form_data

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
BULLETIN = ROOT / "sample_data" / "policy-aetna-0198-work-hardening-programs.txt"
WRITEUP = (
    ROOT / "sample_data" / "procedure-97546-work-hardening-each-additional-hour.txt"
)

MODELS = [
    "procedure",
    "code",
    "codesection",
    "payer",
    "policy",
    "policycodegroup",
    "layterm",
    "laysynonym",
]
STAFF = ("ava", "rui", "pia", "vic", "ada")
VIEWERS = {"ava", "rui", "pia", "vic"}

# Who gets the page, by (model, address kind). Everyone else gets 403 (or is sent to
# the login page). Nobody but a superuser may delete.
PAGES = {
    ("procedure", "changelist"): VIEWERS,
    ("procedure", "add"): {"ava", "ada"},
    ("procedure", "change"): VIEWERS,
    ("procedure", "delete"): set(),
    ("procedure", "history"): VIEWERS,
    ("procedure", "simple_history"): VIEWERS,
    ("procedure", "import"): {"ava", "rui", "pia", "ada"},
    ("procedure", "preview"): VIEWERS,
    ("procedure", "readability"): {"ava", "rui", "pia", "ada"},
    ("code", "changelist"): VIEWERS,
    ("code", "add"): set(),
    ("code", "change"): VIEWERS,
    ("code", "delete"): set(),
    ("code", "history"): VIEWERS,
    ("codesection", "changelist"): VIEWERS,
    ("codesection", "add"): set(),
    ("codesection", "change"): VIEWERS,
    ("codesection", "delete"): set(),
    ("codesection", "history"): VIEWERS,
    ("payer", "changelist"): VIEWERS,
    ("payer", "add"): set(),
    ("payer", "change"): VIEWERS,
    ("payer", "delete"): set(),
    ("payer", "history"): VIEWERS,
    ("payer", "simple_history"): VIEWERS,
    ("policy", "changelist"): VIEWERS,
    ("policy", "add"): {"ava", "ada"},
    ("policy", "change"): VIEWERS,
    ("policy", "delete"): set(),
    ("policy", "history"): VIEWERS,
    ("policy", "simple_history"): VIEWERS,
    ("policy", "import"): {"ava", "pia", "ada"},
    ("policy", "preview"): VIEWERS,
    ("policycodegroup", "changelist"): VIEWERS,
    ("policycodegroup", "add"): {"ava"},
    ("policycodegroup", "change"): VIEWERS,
    ("policycodegroup", "delete"): set(),
    ("policycodegroup", "history"): VIEWERS,
    ("policycodegroup", "simple_history"): VIEWERS,
    # The lay-term thesaurus: authors keep it.
    ("layterm", "changelist"): VIEWERS,
    ("layterm", "add"): {"ava"},
    ("layterm", "change"): VIEWERS,
    ("layterm", "delete"): set(),
    ("layterm", "history"): VIEWERS,
    ("layterm", "simple_history"): VIEWERS,
    ("laysynonym", "changelist"): VIEWERS,
    ("laysynonym", "add"): {"ava"},
    ("laysynonym", "change"): VIEWERS,
    ("laysynonym", "delete"): set(),
    ("laysynonym", "history"): VIEWERS,
    ("laysynonym", "simple_history"): VIEWERS,
}


def staff(django_user_model, username, *, role=None, permissions=()):
    user = django_user_model.objects.create_user(
        username, password="a long passphrase", is_staff=True
    )
    if role:
        user.groups.add(Group.objects.get(name=role))
    for dotted in permissions:
        app_label, codename = dotted.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


@pytest.fixture
def people(django_user_model, sample_data):
    """Ava the author, Rui the reviewer, Pia the publisher, Vic who may only look,
    and Ada who may only add."""
    return {
        "ava": staff(django_user_model, "ava", role="Author"),
        "rui": staff(django_user_model, "rui", role="Clinical reviewer"),
        "pia": staff(django_user_model, "pia", role="Publisher"),
        "vic": staff(
            django_user_model,
            "vic",
            permissions=[
                f"{app}.view_{model}"
                for app, models in {
                    "procedures": [
                        "procedure",
                        "code",
                        "codesection",
                        "layterm",
                        "laytermtarget",
                        "laysynonym",
                    ],
                    "policies": ["payer", "policy", "policycodegroup"],
                }.items()
                for model in models
            ],
        ),
        "ada": staff(
            django_user_model,
            "ada",
            permissions=["procedures.add_procedure", "policies.add_policy"],
        ),
    }


def admin_addresses():
    """{(model, kind): address} for every admin URL of the content models."""
    procedure = Procedure.objects.get(code__code="97546")
    objects = {
        "procedure": procedure,
        "code": procedure.code,
        "codesection": procedure.code.section,
        "payer": Policy.objects.get(number="0198").payer,
        "policy": Policy.objects.get(number="0198"),
        "policycodegroup": PolicyCodeGroup.objects.filter(system="cpt").first(),
        "layterm": LayTerm.objects.get_or_create(phrase="job skills", kind="other")[0],
        "laysynonym": LaySynonym.objects.get_or_create(word="job", means="work")[0],
    }
    addresses = {}
    for model, model_admin in admin.site._registry.items():
        name = model._meta.model_name
        if name not in MODELS:
            continue
        target = objects[name]
        for pattern in model_admin.get_urls():
            prefix = f"{model._meta.app_label}_{name}_"
            if not (pattern.name or "").startswith(prefix):
                continue
            kind = pattern.name.removeprefix(prefix)
            arguments = {
                "changelist": [],
                "add": [],
                "import": [],
                "readability": [],
                "simple_history": [target.pk, target.history.latest().history_id]
                if hasattr(target, "history")
                else None,
            }.get(kind, [target.pk])
            addresses[(name, kind)] = reverse(f"admin:{pattern.name}", args=arguments)
    return addresses


def may_open(client, kind, address):
    if kind == "readability":
        response = client.post(address, {"text": "A short sentence."})
    else:
        response = client.get(address)
    assert response.status_code in (200, 302, 403), (address, response.status_code)
    return response.status_code == 200


def test_every_admin_address_answers_only_those_allowed(client, people):
    addresses = admin_addresses()
    # A new admin address must be given its row in PAGES.
    assert set(addresses) == set(PAGES)
    observed = {}
    for key, address in addresses.items():
        allowed = set()
        for name, user in people.items():
            client.force_login(user)
            if may_open(client, key[1], address):
                allowed.add(name)
        observed[key] = allowed
    assert observed == PAGES


def test_the_code_picker_answers_an_author(client, people):
    client.force_login(people["ava"])
    response = client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "procedures",
            "model_name": "procedure",
            "field_name": "code",
            "term": "975",
        },
    )
    assert response.status_code == 200
    assert "97546" in response.content.decode()


# Writing paths: each is tried by each person, and rolled back after. -----------------


def write_up():
    return Procedure.objects.get(code__code="97546")


def approved_draft():
    procedure = write_up()
    procedure.status = PublicationStatus.DRAFT
    procedure.reviewed_text_sha256 = procedure.text_digest()
    procedure.reviewed_on, procedure.reviewed_by = "2026-11-01", "Dr Test"
    procedure.save()
    return procedure


def run_action(client, name, procedure):
    client.post(
        reverse("admin:procedures_procedure_changelist"),
        {"action": name, "_selected_action": [procedure.pk]},
    )
    return Procedure.objects.get(pk=procedure.pk)


def approve(client):
    return run_action(client, "approve", write_up()).is_approved


def publish(client):
    return run_action(client, "publish", approved_draft()).is_published


def unpublish(client):
    return not run_action(client, "unpublish", write_up()).is_published


def discard_revision(client):
    procedure = write_up()
    procedure.set_revision({"summary": "Pending words."})
    procedure.save()
    return run_action(client, "discard_revision", procedure).revision == {}


def delete_selected(client):
    procedure = write_up()
    client.post(
        reverse("admin:procedures_procedure_changelist"),
        {
            "action": "delete_selected",
            "_selected_action": [procedure.pk],
            "post": "yes",
        },
    )
    return not Procedure.objects.filter(pk=procedure.pk).exists()


def change_form_post(client, address, **changes):
    page = client.get(address)
    if page.status_code != 200:
        return None
    data = form_data(page)
    data.update(changes)
    return client.post(address, data)


def edit_live_text(client):
    """An edit of the published write-up (kept as its working revision)."""
    procedure = write_up()
    response = change_form_post(
        client,
        reverse("admin:procedures_procedure_change", args=[procedure.pk]),
        summary="Edited words.",
    )
    procedure.refresh_from_db()
    return response is not None and procedure.revision == {"summary": "Edited words."}


def publish_in_the_form(client):
    procedure = approved_draft()
    change_form_post(
        client,
        reverse("admin:procedures_procedure_change", args=[procedure.pk]),
        status=PublicationStatus.PUBLISHED,
    )
    return Procedure.objects.get(pk=procedure.pk).is_published


def restore_from_history(client):
    procedure = write_up()
    procedure.status = PublicationStatus.DRAFT
    procedure.save()
    draft = procedure.history.latest()
    procedure.summary = "A later summary."
    procedure.save()
    address = reverse(
        "admin:procedures_procedure_simple_history",
        args=[procedure.pk, draft.history_id],
    )
    change_form_post(client, address)
    return Procedure.objects.get(pk=procedure.pk).summary == draft.summary


def withdraw_policy(client):
    policy = Policy.objects.get(number="0198")
    change_form_post(
        client,
        reverse("admin:policies_policy_change", args=[policy.pk]),
        status=PolicyStatus.WITHDRAWN,
    )
    return Policy.objects.get(pk=policy.pk).status == PolicyStatus.WITHDRAWN


def revise_policy_text(client):
    """An edit of a published policy's text kept as its working revision."""
    policy = Policy.objects.get(number="0198")
    change_form_post(
        client,
        reverse("admin:policies_policy_change", args=[policy.pk]),
        scope="Revised scope.",
    )
    return Policy.objects.get(pk=policy.pk).revision == {"scope": "Revised scope."}


def publish_policy_revision(client):
    policy = Policy.objects.get(number="0198")
    policy.set_revision({"scope": "Revised scope."})
    policy.save()
    client.post(
        reverse("admin:policies_policy_changelist"),
        {"action": "publish_revision", "_selected_action": [policy.pk]},
    )
    return Policy.objects.get(pk=policy.pk).scope == "Revised scope."


def import_document(client, model, content, name, **options):
    address = reverse(f"admin:{model}_import")
    preview = client.post(
        address, {"document": SimpleUploadedFile(name, content), **options}
    )
    if preview.status_code != 200:
        return False
    data = form_data(preview, form="//form[.//input[@name='confirm']]")
    client.post(address, {**data, "confirm": "Confirm"})  # the button pressed
    return True


def import_changed_policy(client):
    text = BULLETIN.read_bytes().replace(
        b"Work Hardening Programs", b"Work Hardening Programmes", 1
    )
    import_document(client, "policies_policy", text, BULLETIN.name)
    return Policy.objects.get(number="0198").title == "Work Hardening Programmes"


def import_new_write_up(client):
    Code.objects.get_or_create(
        system="cpt", code="97545", defaults={"descriptor": "Work hardening"}
    )
    text = WRITEUP.read_bytes()
    import_document(
        client, "procedures_procedure", text, "procedure-97545-work-hardening.txt"
    )
    return Procedure.objects.filter(code__code="97545").exists()


def import_revision(client):
    text = WRITEUP.read_bytes().replace(b"specialized therapy", b"structured therapy")
    import_document(
        client,
        "procedures_procedure",
        text,
        WRITEUP.name,
        replace_published="on",
    )
    return "structured therapy" in write_up().revision.get("summary", "")


WRITES = {
    approve: {"rui"},
    publish: {"pia"},
    unpublish: {"pia"},
    discard_revision: {"ava", "rui", "pia"},
    delete_selected: set(),
    edit_live_text: {"ava", "rui", "pia"},
    publish_in_the_form: {"pia"},
    restore_from_history: {"ava", "rui", "pia"},
    withdraw_policy: {"pia"},
    # A publisher's edit goes live at once; an author's waits.
    revise_policy_text: {"ava"},
    publish_policy_revision: {"pia"},
    import_changed_policy: {"pia"},
    import_new_write_up: {"ava", "ada"},
    import_revision: {"ava", "rui", "pia"},
}


def test_every_writing_path_is_open_only_to_those_allowed(client, people):
    observed = {}
    for attempt in WRITES:
        allowed = set()
        for name, user in people.items():
            with transaction.atomic():
                client.force_login(user)
                if attempt(client):
                    allowed.add(name)
                transaction.set_rollback(True)
        observed[attempt] = allowed
    assert observed == WRITES


@pytest.mark.django_db(transaction=True)
def test_the_editorial_groups_survive_an_emptied_database():
    from django.core.management import call_command

    call_command("flush", "--noinput", verbosity=0)
    publisher = Group.objects.get(name="Publisher")
    assert publisher.permissions.filter(codename="can_publish").count() == 2
    assert set(Group.objects.values_list("name", flat=True)) == {
        "Author",
        "Clinical reviewer",
        "Publisher",
    }
