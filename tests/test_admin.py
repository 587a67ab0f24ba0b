"""Clinic staff edit write-ups and policies in the admin, with plain-words errors."""

import pytest
from django.urls import reverse
from lxml import html

from policies.models import PolicyCode, PolicyCodeGroup
from procedures.models import WRITEUP_SECTIONS, Code, Procedure

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor_erin(django_user_model):
    """A clinic staff member with full admin rights."""
    return django_user_model.objects.create_superuser(
        "erin", "erin@clinic.example", "a long passphrase"
    )


@pytest.fixture
def staff_client(client, editor_erin):
    client.force_login(editor_erin)
    return client


def management_form(prefix, total=0, initial=0):
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


@pytest.mark.parametrize(
    "name",
    [
        "admin:procedures_procedure_changelist",
        "admin:procedures_code_changelist",
        "admin:procedures_codesection_changelist",
        "admin:policies_policy_changelist",
        "admin:policies_payer_changelist",
        "admin:policies_policycodegroup_changelist",
        "admin:procedures_procedure_add",
        "admin:policies_policy_add",
    ],
)
def test_staff_can_open_every_admin_page(staff_client, sample_data, name):
    assert staff_client.get(reverse(name)).status_code == 200


def test_every_write_up_field_has_a_live_preview_editor(staff_client, sample_data):
    procedure = Procedure.objects.get(code__code="97546")
    response = staff_client.get(
        reverse("admin:procedures_procedure_change", args=[procedure.pk])
    )
    tree = html.fromstring(response.content)
    editors = tree.xpath("//*[contains(@class,'markdownx')]//textarea/@name")
    writeup_fields = {name for name, _heading in WRITEUP_SECTIONS}
    assert len(writeup_fields) == 13
    assert set(editors) >= writeup_fields
    assert tree.xpath("//*[contains(@class,'markdownx-preview')]")


def test_the_policy_change_form_shows_groups_and_references_inline(
    staff_client, sample_data
):
    from policies.models import Policy

    policy = Policy.objects.get(number="0198")
    response = staff_client.get(
        reverse("admin:policies_policy_change", args=[policy.pk])
    )
    body = response.content.decode()
    assert "CPT codes not covered for indications listed in the CPB" in body
    assert "Wyman DO. Evaluating patients for return to work." in body


def test_an_unparseable_code_is_refused_with_the_reason(staff_client):
    response = staff_client.post(
        reverse("admin:procedures_code_add"),
        {"system": "cpt", "code": "97A4", "descriptor": "Nonsense"},
    )
    assert response.status_code == 200
    assert "is not a CPT code" in response.content.decode()
    assert not Code.objects.exists()


def test_a_code_is_saved_in_its_canonical_form(staff_client):
    staff_client.post(
        reverse("admin:procedures_code_add"),
        {"system": "icd-10-cm", "code": "s52501a", "descriptor": "A fracture"},
    )
    assert Code.objects.get().code == "S52.501A"


def test_a_range_that_ends_before_it_starts_is_refused(staff_client, sample_data):
    group = PolicyCodeGroup.objects.get(system="icd-10-cm")
    backwards = PolicyCode(
        start_code="Z85.9", end_code="Z85.00", position=99, description="Backwards"
    )
    response = staff_client.post(
        reverse("admin:policies_policycodegroup_change", args=[group.pk]),
        group_form(group, list(group.codes.all()), [backwards]),
    )
    assert response.status_code == 200
    assert "before it starts" in response.content.decode()
    assert not PolicyCode.objects.filter(description="Backwards").exists()


def test_publishing_from_the_list_makes_an_approved_draft_public(
    staff_client, sample_data, client
):
    procedure = Procedure.objects.get(code__code="97546")
    procedure.status = "draft"
    procedure.save()
    changelist = reverse("admin:procedures_procedure_changelist")
    staff_client.post(
        changelist, {"action": "publish", "_selected_action": [procedure.pk]}
    )
    procedure.refresh_from_db()
    assert not procedure.is_published  # nobody approved the text
    staff_client.post(
        changelist, {"action": "approve", "_selected_action": [procedure.pk]}
    )
    staff_client.post(
        changelist, {"action": "publish", "_selected_action": [procedure.pk]}
    )
    procedure.refresh_from_db()
    assert procedure.is_published
    assert procedure.reviewed_by == "erin"


def test_patients_cannot_reach_the_admin(client, sample_data):
    response = client.get(reverse("admin:procedures_procedure_changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def group_form(group, rows, extra=()):
    """The group change form as the admin posts it: the group, its rows, new rows."""
    data = {
        "policy": group.policy_id,
        "heading": group.heading,
        "coverage": group.coverage,
        "system": group.system,
        "position": group.position,
        **management_form("codes", total=len(rows) + len(extra), initial=len(rows)),
    }
    for index, row in enumerate([*rows, *extra]):
        prefix = f"codes-{index}-"
        if getattr(row, "pk", None):
            data[prefix + "id"] = row.pk
        data.update(
            {
                prefix + "group": group.pk,
                prefix + "position": row.position,
                prefix + "start_code": row.start_code,
                prefix + "end_code": row.end_code,
                prefix + "seventh_character": "on" if row.seventh_character else "",
                prefix + "is_addon": "on" if row.is_addon else "",
                prefix + "description": row.description,
            }
        )
    return data


def test_a_seventh_character_mark_on_a_cpt_code_is_refused(staff_client, sample_data):
    group = PolicyCodeGroup.objects.get(system="cpt")
    rows = list(group.codes.all())
    wrong = PolicyCode(
        start_code="97010",
        end_code="",
        seventh_character=True,
        position=9,
        description="Marked wrongly",
    )
    response = staff_client.post(
        reverse("admin:policies_policycodegroup_change", args=[group.pk]),
        group_form(group, rows, [wrong]),
    )
    assert response.status_code == 200
    assert "7th character" in response.content.decode()
    assert not PolicyCode.objects.filter(description="Marked wrongly").exists()


def test_a_group_with_codes_cannot_switch_code_system(staff_client, sample_data):
    group = PolicyCodeGroup.objects.get(system="hcpcs")
    rows = list(group.codes.all())
    data = group_form(group, rows)
    data["system"] = "cpt"
    response = staff_client.post(
        reverse("admin:policies_policycodegroup_change", args=[group.pk]), data
    )
    assert response.status_code == 200
    assert "already lists codes of another system" in response.content.decode()
    group.refresh_from_db()
    assert group.system == "hcpcs"
    assert set(group.codes.values_list("system", flat=True)) == {"hcpcs"}


def test_a_code_section_without_a_system_is_refused_not_a_crash(staff_client):
    response = staff_client.post(
        reverse("admin:procedures_codesection_add"),
        {
            "system": "",
            "slug": "x",
            "name": "X",
            "kind": "section",
            "start_code": "97010",
            "end_code": "97799",
        },
    )
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()


def test_stored_html_is_not_editable_in_the_admin(staff_client, sample_data):
    procedure = Procedure.objects.get(code__code="97546")
    response = staff_client.get(
        reverse("admin:procedures_procedure_change", args=[procedure.pk])
    )
    tree = html.fromstring(response.content)
    assert not tree.xpath("//*[@name='rendered']")
