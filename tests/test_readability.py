"""Reading grades for authors: the measure, its endpoint, the change form and list."""

import time

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from lxml import html

from carecodes import readability
from carecodes.readability_admin import MAX_TEXT_LENGTH
from procedures.admin import ProcedureAdmin
from procedures.models import (
    WRITEUP_SECTIONS,
    Code,
    CodeSystem,
    Procedure,
    PublicationStatus,
)

SIMPLE = (
    "You lie on a bed. The nurse puts cool gel on your skin. It may feel cold. "
    "The test does not hurt. You can go home when it is done."
)
DENSE = (
    "Percutaneous transluminal coronary angioplasty with intracoronary stent "
    "placement is indicated for hemodynamically significant atherosclerotic stenosis "
    "refractory to optimal pharmacological management. Periprocedural "
    "anticoagulation necessitates meticulous monitoring of activated clotting time. "
    "Contraindications include uncorrected coagulopathy and contrast hypersensitivity."
)
# One long, hard sentence: what an author types when a section turns clinical.
HARD_SENTENCE = (
    "Postoperative rehabilitation necessitates individualized multidisciplinary "
    "interventions addressing musculoskeletal deconditioning."
)


def test_a_simple_text_is_below_grade_8():
    grade = readability.grade(SIMPLE)
    assert grade.flesch_kincaid < 4
    assert grade.smog < 8
    assert not grade.is_hard
    assert grade.message.startswith("Reading grade ")
    assert grade.message.endswith("— aim for 8 or below")


def test_a_dense_clinical_text_is_above_grade_8():
    grade = readability.grade(DENSE)
    assert grade.flesch_kincaid > 12
    assert grade.smog > 12
    assert grade.is_hard
    assert grade.message.startswith("Hard to read: reading grade ")


def test_the_message_names_both_grades():
    grade = readability.grade(DENSE)
    assert f"{grade.flesch_kincaid:.1f} (Flesch–Kincaid)" in grade.message
    assert f"{grade.smog:.1f} (SMOG)" in grade.message
    assert grade.value == max(grade.flesch_kincaid, grade.smog)


def test_smog_waits_for_three_sentences():
    # SMOG counts long words per sentence; on one sentence a word or two decide it.
    grade = readability.grade("Physical therapy helps you move again after surgery.")
    assert grade.smog is None
    assert grade.flesch_kincaid is not None
    assert "SMOG needs 3 sentences" in grade.message


def test_an_empty_text_has_no_grade_and_is_not_hard():
    for text in ["", "   \n\n", "---", "| --- | --- |"]:
        grade = readability.grade(text)
        assert grade.value is None
        assert not grade.is_hard
        assert grade.message.startswith("No text to grade yet")


def test_markdown_syntax_is_not_counted():
    markdown = (
        "## What happens\n\n"
        "Read [the guide](https://example.com/extraordinarily-complicated-"
        "pathophysiological-documentation) **first**.\n\n"
        "| Step | What you do |\n"
        "| ---- | ----------- |\n"
        "| One  | You rest    |\n\n"
        "> Call us if you feel *unwell*.\n"
    )
    plain = readability.plain_text(markdown)
    assert plain == (
        "What happens. Read the guide first. Step. What you do. One. You rest. "
        "Call us if you feel unwell."
    )
    assert readability.grade(markdown) == readability.grade(plain)


def test_each_heading_and_list_item_is_a_sentence_of_its_own():
    as_list = "Before the test\n\n- Wear loose clothes\n- Eat a light meal\n- Rest"
    as_sentences = "Before the test. Wear loose clothes. Eat a light meal. Rest."
    assert readability.grade(as_list) == readability.grade(as_sentences)


def test_code_blocks_and_link_addresses_are_left_out():
    plain = readability.plain_text(
        "See <https://example.com/catheterization> or www.example.com/x.\n\n"
        "```\nelectroencephalography\n```\n\n[1]: https://example.com/y\n"
    )
    assert plain == "See or."


@pytest.mark.parametrize(
    "hostile",
    [
        "[" * MAX_TEXT_LENGTH,
        "[a](" * (MAX_TEXT_LENGTH // 4),
        "<" * MAX_TEXT_LENGTH,
        "`" * MAX_TEXT_LENGTH,
        "> " * (MAX_TEXT_LENGTH // 2),
        "| - " * (MAX_TEXT_LENGTH // 4),
        " " * (MAX_TEXT_LENGTH - 1) + "x",
        "word " * (MAX_TEXT_LENGTH // 5),
        "a" * MAX_TEXT_LENGTH,
    ],
    ids=lambda text: repr(text[:6]),
)
def test_the_longest_text_is_graded_quickly_whatever_it_holds(hostile):
    readability.grade("warm up the syllable dictionary.")
    started = time.perf_counter()
    readability.grade(hostile)
    assert time.perf_counter() - started < 1


def test_a_write_up_is_judged_by_its_hardest_section():
    texts = {"summary": SIMPLE, "purpose": "", "risks": DENSE, "benefits": "  \n"}
    grades = readability.writeup_grades(texts, WRITEUP_SECTIONS)
    assert [section.name for section in grades.sections] == ["summary", "risks"]
    assert grades.hardest.name == "risks"
    assert grades.hardest.heading == "Risks and complications"
    assert grades.hardest.grade.is_hard


def test_a_write_up_without_text_has_no_hardest_section():
    assert readability.writeup_grades({}, WRITEUP_SECTIONS).hardest is None


# The admin: the endpoint, the change form and the list.


def permissions(*codenames):
    return Permission.objects.filter(
        content_type__app_label="procedures", codename__in=codenames
    )


def staff_member(django_user_model, username, *codenames, password="p"):
    user = django_user_model.objects.create_user(
        username, password=password, is_staff=True
    )
    user.user_permissions.set(permissions(*codenames))
    return user


@pytest.fixture
def author_alex(django_user_model):
    """Writes and edits write-ups: may view and change them, not add or publish."""
    return staff_member(django_user_model, "alex", "view_procedure", "change_procedure")


@pytest.fixture
def drafter_dana(django_user_model):
    """Starts new write-ups only: may add them, not change existing ones."""
    return staff_member(django_user_model, "dana", "add_procedure")


@pytest.fixture
def reader_vic(django_user_model):
    """Staff who may read write-ups in the admin but not write them."""
    return staff_member(django_user_model, "vic", "view_procedure")


@pytest.fixture
def staff_sam(django_user_model):
    """Staff with no rights on write-ups at all (a payer-policy clerk, say)."""
    return staff_member(django_user_model, "sam")


@pytest.fixture
def endpoint():
    return reverse("admin:procedures_procedure_readability")


@pytest.mark.django_db
def test_an_anonymous_visitor_is_sent_to_log_in(client, endpoint):
    response = client.post(endpoint, {"text": SIMPLE})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "who, allowed",
    [
        ("staff_sam", False),
        ("reader_vic", False),
        ("author_alex", True),
        ("drafter_dana", True),
    ],
)
def test_only_staff_who_may_write_write_ups_get_grades(
    client, request, endpoint, who, allowed
):
    client.force_login(request.getfixturevalue(who))
    response = client.post(endpoint, {"text": DENSE})
    if not allowed:
        assert response.status_code == 403
        assert "grade" not in response.json()
        return
    assert response.status_code == 200
    expected = readability.grade(DENSE)
    assert response.json() == {
        "flesch_kincaid": expected.flesch_kincaid,
        "smog": expected.smog,
        "grade": expected.value,
        "hard": True,
        "message": expected.message,
    }


@pytest.mark.django_db
def test_the_endpoint_answers_post_only(client, author_alex, endpoint):
    client.force_login(author_alex)
    assert client.get(endpoint, {"text": SIMPLE}).status_code == 405


@pytest.mark.django_db
def test_the_endpoint_needs_the_csrf_token(author_alex, endpoint):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(author_alex)
    assert client.post(endpoint, {"text": SIMPLE}).status_code == 403


@pytest.mark.django_db
def test_an_oversized_text_is_refused_with_a_message(client, author_alex, endpoint):
    client.force_login(author_alex)
    response = client.post(endpoint, {"text": "a" * (MAX_TEXT_LENGTH + 1)})
    assert response.status_code == 400
    assert response.json() == {
        "error": "Too long to grade: the limit is 20,000 characters a section."
    }
    at_the_limit = client.post(endpoint, {"text": "a " * (MAX_TEXT_LENGTH // 2)})
    assert at_the_limit.status_code == 200


def change_form(client, procedure):
    response = client.get(
        reverse("admin:procedures_procedure_change", args=[procedure.pk])
    )
    assert response.status_code == 200
    return html.fromstring(response.content.decode())


def grade_note(tree, name):
    (note,) = tree.xpath(
        f"//div[@id='id_{name}_helptext']//span[contains(@class, 'reading-grade')]"
    )
    return note


@pytest.mark.django_db
def test_the_change_form_shows_each_sections_saved_grade(
    client, sample_data, author_alex
):
    procedure = Procedure.objects.get(code__code="97546")
    Procedure.objects.filter(pk=procedure.pk).update(summary=SIMPLE, purpose=DENSE)
    client.force_login(author_alex)
    tree = change_form(client, procedure)

    summary = grade_note(tree, "summary")
    assert summary.text_content() == readability.grade(SIMPLE).message
    assert "reading-grade--hard" not in summary.get("class")
    assert summary.get("aria-live") == "polite"
    assert summary.get("data-readability-input") == "id_summary"
    assert summary.get("data-readability-url") == reverse(
        "admin:procedures_procedure_readability"
    )
    purpose = grade_note(tree, "purpose")
    assert purpose.text_content().startswith("Hard to read: reading grade ")
    assert "reading-grade--hard" in purpose.get("class")
    # Screen readers read the grade with the field.
    (textarea,) = tree.xpath("//textarea[@name='summary']")
    assert "id_summary_helptext" in textarea.get("aria-describedby").split()
    # Every section has one, and the page loads the script that keeps them current.
    for name, _heading in WRITEUP_SECTIONS:
        grade_note(tree, name)
    assert tree.xpath("//script[contains(@src, 'js/readability.js')]")
    assert tree.xpath("//link[contains(@href, 'css/readability.css')]")


@pytest.mark.django_db
def test_the_empty_add_form_invites_a_grade(client, drafter_dana):
    client.force_login(drafter_dana)
    response = client.get(reverse("admin:procedures_procedure_add"))
    note = grade_note(html.fromstring(response.content.decode()), "summary")
    assert note.text_content() == (
        "No text to grade yet — aim for reading grade 8 or below"
    )


@pytest.mark.django_db
def test_a_hard_text_is_a_warning_and_saves(client, sample_data, author_alex):
    # A draft: its text is saved as it is (a published one keeps a revision).
    Procedure.objects.filter(code__code="97546").update(status=PublicationStatus.DRAFT)
    procedure = Procedure.objects.get(code__code="97546")
    client.force_login(author_alex)
    (form,) = change_form(client, procedure).xpath("//form[@id='procedure_form']")
    data = dict(form.form_values())
    data["summary"] = DENSE
    data["_save"] = "Save"
    response = client.post(
        reverse("admin:procedures_procedure_change", args=[procedure.pk]), data
    )
    if response.status_code != 302:
        pytest.fail(
            html.fromstring(response.content.decode()).xpath(
                "string(//*[contains(@class, 'errorlist')]/..)"
            )
        )
    procedure.refresh_from_db()
    assert procedure.summary == DENSE


def add_write_ups(count):
    """``count`` more write-ups on new codes, the hardest section of each differing."""
    for number in range(count):
        code = Code.objects.create(
            system=CodeSystem.CPT,
            code=f"9990{number}",
            descriptor=f"Test procedure {number}",
        )
        Procedure.objects.create(
            code=code,
            title=f"Test procedure {number}",
            summary=SIMPLE,
            risks=DENSE if number % 2 else "",
        )


@pytest.mark.django_db
def test_the_list_shows_each_write_ups_hardest_section(
    client, sample_data, author_alex
):
    add_write_ups(2)
    client.force_login(author_alex)
    response = client.get(reverse("admin:procedures_procedure_changelist"))
    tree = html.fromstring(response.content.decode())
    assert tree.xpath(
        "//th[contains(@class, 'column-reading_grade')]"
        "[contains(., 'Reading grade (hardest section)')]"
    )
    cells = {
        row.xpath("string(.//th[contains(@class, 'field-code')])").strip(): row.xpath(
            "string(.//td[contains(@class, 'field-reading_grade')])"
        )
        for row in tree.xpath("//table[@id='result_list']/tbody/tr")
    }
    dense = readability.grade(DENSE).value
    simple = readability.grade(SIMPLE).value
    assert cells["CPT 99901"] == f"Hard: {dense:.1f} (Risks and complications)"
    assert cells["CPT 99900"] == f"{simple:.1f} (Summary)"
    sample = Procedure.objects.get(code__code="97546")
    hardest = readability.writeup_grades(
        {name: getattr(sample, name) for name, _heading in WRITEUP_SECTIONS},
        WRITEUP_SECTIONS,
    ).hardest
    assert cells["CPT 97546"].endswith(f"{hardest.grade.value:.1f} ({hardest.heading})")


@pytest.mark.django_db
def test_the_column_adds_no_query_to_the_list(
    client, sample_data, author_alex, monkeypatch
):
    add_write_ups(6)
    client.force_login(author_alex)
    address = reverse("admin:procedures_procedure_changelist")

    def count_queries():
        with CaptureQueriesContext(connection) as queries:
            assert client.get(address).status_code == 200
        return len(queries)

    with_column = count_queries()
    without = [name for name in ProcedureAdmin.list_display if name != "reading_grade"]
    assert without != ProcedureAdmin.list_display
    monkeypatch.setattr(ProcedureAdmin, "list_display", without)
    assert count_queries() == with_column
