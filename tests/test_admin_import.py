"""Staff import bulletins and write-ups in the admin: check, preview, then confirm."""

from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from lxml import html

from carecodes.importing import MAX_DOCUMENT_BYTES
from policies.models import Policy, PolicyCode
from procedures.models import Code, Procedure, PublicationStatus

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "sample_data" / "policy-aetna-0198-work-hardening-programs.txt"
WRITEUP = (
    ROOT / "sample_data" / "procedure-97546-work-hardening-each-additional-hour.txt"
)
THERAPY = (
    Path(__file__).resolve().parent
    / "data"
    / ("policy-aetna-0325-physical-therapy-ultrasound.txt")
)
POLICY_IMPORT = reverse("admin:policies_policy_import")
PROCEDURE_IMPORT = reverse("admin:procedures_procedure_import")


@pytest.fixture
def editor_erin(django_user_model):
    """Clinic staff with every admin right."""
    return django_user_model.objects.create_superuser(
        "erin", "erin@clinic.example", "a long passphrase"
    )


@pytest.fixture
def viewer_sam(django_user_model):
    """Staff who may look at policies and write-ups but not add them."""
    sam = django_user_model.objects.create_user("sam", password="a long passphrase")
    sam.is_staff = True
    sam.save()
    sam.user_permissions.set(
        Permission.objects.filter(codename__in=["view_policy", "view_procedure"])
    )
    return sam


@pytest.fixture
def patient_pat(django_user_model):
    """A signed-in member of the public: not staff."""
    return django_user_model.objects.create_user("pat", password="a long passphrase")


@pytest.fixture
def erin(client, editor_erin):
    client.force_login(editor_erin)
    return client


def upload(path_or_bytes, name=None):
    if isinstance(path_or_bytes, Path):
        return SimpleUploadedFile(path_or_bytes.name, path_or_bytes.read_bytes())
    return SimpleUploadedFile(name, path_or_bytes)


def confirm_data(response):
    """The confirm form's fields, as a browser would send them back."""
    tree = html.fromstring(response.content)
    form = tree.xpath("//form[.//input[@name='confirm']]")[0]
    data = {field.name: field.value or "" for field in form.inputs if field.name}
    data["text"] = form.xpath(".//textarea[@name='text']")[0].text
    return data


def texts(response):
    return " ".join(html.fromstring(response.content).text_content().split())


def test_the_changelists_offer_the_import_to_staff_who_may_add(erin):
    for name, target in [
        ("admin:policies_policy_changelist", POLICY_IMPORT),
        ("admin:procedures_procedure_changelist", PROCEDURE_IMPORT),
    ]:
        page = html.fromstring(erin.get(reverse(name)).content)
        assert page.xpath(f"//a[@href='{target}' and text()='Import a document']")


def test_staff_without_add_permission_see_no_import_and_are_refused(client, viewer_sam):
    client.force_login(viewer_sam)
    changelist = client.get(reverse("admin:policies_policy_changelist"))
    assert changelist.status_code == 200
    assert "Import a document" not in changelist.content.decode()
    assert client.get(POLICY_IMPORT).status_code == 403
    response = client.post(PROCEDURE_IMPORT, {"document": upload(WRITEUP)})
    assert response.status_code == 403
    assert not Procedure.objects.exists()


def test_a_member_of_the_public_is_sent_to_the_login_page(client, patient_pat):
    client.force_login(patient_pat)
    response = client.post(POLICY_IMPORT, {"document": upload(SEED)})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert not Policy.objects.exists()


def test_an_upload_without_the_csrf_token_is_refused(editor_erin):
    client = Client(enforce_csrf_checks=True)
    client.force_login(editor_erin)
    response = client.post(POLICY_IMPORT, {"document": upload(SEED)})
    assert response.status_code == 403
    assert not Policy.objects.exists()


def test_the_upload_page_has_the_form(erin):
    response = erin.get(POLICY_IMPORT)
    assert response.status_code == 200
    page = html.fromstring(response.content)
    assert page.xpath("//form[@enctype='multipart/form-data']//input[@type='file']")
    assert page.xpath("//h1[contains(., 'Import a policy bulletin')]")


def test_a_bulletin_is_previewed_and_saved_only_on_confirm(erin):
    response = erin.post(POLICY_IMPORT, {"document": upload(THERAPY)})
    assert response.status_code == 200
    shown = texts(response)
    assert "Preview: Aetna 0325: Physical Therapy and Therapeutic Ultrasound" in shown
    assert "Policy Aetna 0325: created" in shown
    assert "97161 - 97163 Physical therapy evaluation" in shown
    assert "Code CPT 97035: created" in shown
    assert not Policy.objects.exists()
    assert not Code.objects.exists()

    saved = erin.post(POLICY_IMPORT, confirm_data(response))
    policy = Policy.objects.get(number="0325")
    assert saved.status_code == 302
    assert saved["Location"] == reverse(
        "admin:policies_policy_change", args=[policy.pk]
    )
    assert PolicyCode.objects.filter(group__policy=policy).count() == 5
    assert policy.references.count() == 3
    message = texts(erin.get(saved["Location"]))
    assert "Aetna 0325: Physical Therapy and Therapeutic Ultrasound: created" in message


def test_the_preview_of_a_changed_bulletin_shows_old_and_new_values(erin, sample_data):
    changed = SEED.read_bytes().replace(
        b"Work Hardening Programs\n", b"Work Hardening and Conditioning Programs\n", 1
    )
    response = erin.post(
        POLICY_IMPORT, {"document": upload(changed, name="policy-0198.txt")}
    )
    page = html.fromstring(response.content)
    rows = [
        " ".join(row.text_content().split())
        for row in page.xpath(
            "//section[@aria-labelledby='preview-heading']//tr[th[@scope='row']]"
        )
    ]
    assert rows == [
        "Title Work Hardening Programs Work Hardening and Conditioning Programs"
    ]
    assert "Policy Aetna 0198: updated" in texts(response)


def test_an_unchanged_bulletin_is_said_to_change_nothing(erin, sample_data):
    response = erin.post(POLICY_IMPORT, {"document": upload(SEED)})
    assert "saving it would change nothing" in texts(response)


def test_a_broken_bulletin_shows_its_problems_and_saves_nothing(erin):
    broken = THERAPY.read_bytes().replace(b"97161 - 97163", b"97163 - 97161")
    response = erin.post(POLICY_IMPORT, {"document": upload(broken, name="bad.txt")})
    assert response.status_code == 400
    assert "line 55: The range ends (97161) before it starts (97163)." in texts(
        response
    )
    assert not html.fromstring(response.content).xpath("//input[@name='confirm']")
    assert not Policy.objects.exists()


def test_a_confirm_with_a_tampered_document_is_checked_again(erin):
    response = erin.post(POLICY_IMPORT, {"document": upload(THERAPY)})
    data = confirm_data(response)
    data["text"] = data["text"].replace("97161 - 97163", "97163 - 97161")
    refused = erin.post(POLICY_IMPORT, data)
    assert refused.status_code == 400
    assert "The range ends (97161)" in texts(refused)
    assert not Policy.objects.exists()


def test_a_file_that_is_not_utf8_text_is_refused(erin):
    response = erin.post(
        POLICY_IMPORT,
        {"document": upload(b"Title\n\nNumber: \xff\xfe\n", name="policy.txt")},
    )
    assert response.status_code == 400
    assert "line 3: This line is not UTF-8 text." in texts(response)


def test_a_file_over_the_size_limit_is_refused(erin):
    too_big = b"x" * (MAX_DOCUMENT_BYTES + 1)
    response = erin.post(
        POLICY_IMPORT, {"document": upload(too_big, name="policy.txt")}
    )
    assert response.status_code == 400
    assert "a document may be at most 512 kB" in texts(response)


def test_an_upload_without_a_file_is_refused(erin):
    response = erin.post(POLICY_IMPORT, {})
    assert response.status_code == 400
    assert "This field is required." in texts(response)


def test_a_write_up_is_imported_as_a_draft_after_its_preview(erin):
    response = erin.post(PROCEDURE_IMPORT, {"document": upload(WRITEUP)})
    assert response.status_code == 200
    assert "Write-up 97546: Work Hardening/Conditioning; Each Additional Hour" in (
        texts(response)
    )
    assert not Procedure.objects.exists()
    saved = erin.post(PROCEDURE_IMPORT, confirm_data(response))
    procedure = Procedure.objects.get()
    assert saved["Location"] == reverse(
        "admin:procedures_procedure_change", args=[procedure.pk]
    )
    assert procedure.status == PublicationStatus.DRAFT


def test_a_write_up_named_without_its_code_takes_the_code_from_the_form(erin):
    response = erin.post(
        PROCEDURE_IMPORT,
        {"document": upload(WRITEUP.read_bytes(), name="writeup.txt"), "code": ""},
    )
    assert response.status_code == 400
    assert "does not say which code it describes" in texts(response)
    response = erin.post(
        PROCEDURE_IMPORT,
        {"document": upload(WRITEUP.read_bytes(), name="writeup.txt"), "code": "97546"},
    )
    erin.post(PROCEDURE_IMPORT, confirm_data(response))
    assert Procedure.objects.get().code.code == "97546"


def test_a_published_write_up_is_revised_only_when_staff_say_so(
    erin, sample_data, client
):
    edited = WRITEUP.read_bytes().replace(b"specialized therapy", b"structured therapy")
    response = erin.post(
        PROCEDURE_IMPORT, {"document": upload(edited, name=WRITEUP.name)}
    )
    assert response.status_code == 400
    assert "is published, and this document would change its summary" in texts(response)
    response = erin.post(
        PROCEDURE_IMPORT,
        {"document": upload(edited, name=WRITEUP.name), "replace_published": "on"},
    )
    assert response.status_code == 200
    erin.post(PROCEDURE_IMPORT, confirm_data(response))
    procedure = Procedure.objects.get()
    # The new text waits as the working revision; the public keeps the published one.
    assert "structured therapy" in procedure.revision["summary"]
    assert "specialized therapy" in procedure.summary
    assert procedure.status == PublicationStatus.PUBLISHED
    erin.logout()
    public = client.get("/codes/cpt/97546/").content.decode()
    assert "specialized therapy" in public
    assert "structured therapy" not in public
