"""The lay-term thesaurus: loading its CSV files, refusing bad rows, staff editing it in
the admin, and the "Also called" names on code pages, section pages and in JSON-LD."""

import csv
import json
import re
from collections import defaultdict
from io import StringIO
from pathlib import Path

import pytest
import simple_icd_10_cm as cm
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.urls import reverse
from lxml import html

from procedures import lay_terms
from procedures.codesets import icd10pcs
from procedures.models import Code, LaySynonym, LayTerm, LayTermTarget
from procedures.signals import lay_terms_bulk_saved
from tests.admin_forms import form_data, messages


def stored_targets(phrase):
    """[(system, code or prefix)] a stored phrase means, main meaning first."""
    return list(
        LayTermTarget.objects.filter(term__phrase=lay_terms.normalize_phrase(phrase))
        .order_by("position")
        .values_list("system", "code")
    )


def stored_thesaurus():
    """{phrase: [(system, code), …]} as stored."""
    found = defaultdict(list)
    rows = LayTermTarget.objects.order_by("term__phrase", "position").values_list(
        "term__phrase", "system", "code"
    )
    for phrase, system, code in rows:
        found[phrase].append((system, code))
    return dict(found)


def stored_synonyms():
    """{word: [word it means, …]} as stored."""
    return {
        word: means.split()
        for word, means in LaySynonym.objects.values_list("word", "means")
    }


ROOT = Path(__file__).resolve().parent.parent
HEADER = "phrase,kind,icd10cm,icd10pcs,hcpcs,cpt\n"
SECTION_PAGE_QUERIES = 4


def write(directory, name, text):
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def icd_slice(db, django_capture_on_commit_callbacks):
    """One category of the real FY2026 ICD-10-CM set (H53), plus the sample's codes
    (S52.5, S52.501A, Z85.9 …)."""
    with django_capture_on_commit_callbacks(execute=True):
        call_command("load_sample_data", verbosity=0)
        call_command("import_icd10cm", categories=["H53"], stdout=StringIO())


@pytest.fixture
def thesaurus_files(tmp_path):
    return [
        write(
            tmp_path,
            "eyes.csv",
            HEADER + "lazy eye,condition,H53.0,,,\n"
            "Blurry  Vision,symptom,H53.8 H53.1,,,\n",
        ),
        write(
            tmp_path,
            "bones.csv",
            HEADER + "broken wrist,injury,S52.5 S52.501A,,,\n"
            "back to work program,procedure,,,,97545 97546\n",
        ),
    ]


# --- Loading ------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_thesaurus_loads_each_phrase_with_its_codes_main_meaning_first(
    icd_slice, thesaurus_files
):
    result = lay_terms.load_thesaurus(thesaurus_files)

    assert result.problems == []
    assert result.phrases.created == 4
    assert stored_thesaurus() == {
        "back to work program": [("cpt", "97545"), ("cpt", "97546")],
        "blurry vision": [("icd-10-cm", "H53.8"), ("icd-10-cm", "H53.1")],
        "broken wrist": [("icd-10-cm", "S52.5"), ("icd-10-cm", "S52.501A")],
        "lazy eye": [("icd-10-cm", "H53.0")],
    }
    assert set(LayTerm.objects.values_list("source", flat=True)) == {"thesaurus"}
    # Each row leaves a history entry saying where it came from.
    assert set(LayTerm.history.values_list("history_change_reason", flat=True)) == {
        lay_terms.IMPORT_REASON
    }
    assert LayTermTarget.history.count() == 7
    assert stored_targets("Lazy  Eye") == [("icd-10-cm", "H53.0")]


@pytest.mark.django_db
def test_loading_the_same_files_again_writes_nothing(icd_slice, thesaurus_files):
    lay_terms.load_thesaurus(thesaurus_files)
    stamps = dict(LayTerm.objects.values_list("phrase", "updated_at"))
    targets = list(LayTermTarget.objects.values_list("pk", flat=True))

    sent = []

    def receiver(sender, **kwargs):
        sent.append(kwargs)

    lay_terms_bulk_saved.connect(receiver)
    try:
        again = lay_terms.load_thesaurus(thesaurus_files)
    finally:
        lay_terms_bulk_saved.disconnect(receiver)

    assert (again.written, again.phrases.unchanged) == (0, 4)
    assert dict(LayTerm.objects.values_list("phrase", "updated_at")) == stamps
    assert list(LayTermTarget.objects.values_list("pk", flat=True)) == targets
    assert sent == []


@pytest.mark.django_db
def test_a_changed_row_is_updated_and_pruning_deletes_only_thesaurus_rows(
    icd_slice, thesaurus_files, tmp_path
):
    lay_terms.load_thesaurus(thesaurus_files)
    LayTerm.objects.create(phrase="Pirate eye", kind="condition", source="staff")
    changed = write(
        tmp_path, "eyes.csv", HEADER + "lazy eye,condition,H53.0 H53.1,,,\n"
    )

    result = lay_terms.load_thesaurus([changed], prune=True)

    assert (result.phrases.updated, result.phrases.deleted) == (1, 3)
    assert stored_thesaurus()["lazy eye"] == [
        ("icd-10-cm", "H53.0"),
        ("icd-10-cm", "H53.1"),
    ]
    assert sorted(LayTerm.objects.values_list("phrase", flat=True)) == [
        "lazy eye",
        "pirate eye",
    ]


@pytest.mark.django_db
def test_a_row_staff_edited_in_the_admin_is_kept_and_named_in_the_summary(
    icd_slice, thesaurus_files
):
    lay_terms.load_thesaurus(thesaurus_files)
    term = LayTerm.objects.get(phrase="lazy eye")
    term.targets.update(code="H53.1")
    LayTerm.objects.filter(pk=term.pk).update(source="staff")

    result = lay_terms.load_thesaurus(thesaurus_files, prune=True)

    assert result.written == 0
    assert stored_targets("lazy eye") == [("icd-10-cm", "H53.1")]
    assert "Kept as staff edited them in the admin (1): eyes.csv:2" in (
        result.summary()
    )


@pytest.mark.django_db
def test_the_import_tells_the_index_what_changed_inside_its_transaction(
    icd_slice, thesaurus_files
):
    sent = []

    def receiver(sender, **kwargs):
        sent.append(kwargs)

    lay_terms_bulk_saved.connect(receiver)
    try:
        lay_terms.load_thesaurus(thesaurus_files)
    finally:
        lay_terms_bulk_saved.disconnect(receiver)

    assert len(sent) == 1
    assert sorted(sent[0]["phrases"]) == sorted(
        ["lazy eye", "blurry vision", "broken wrist", "back to work program"]
    )
    assert ("icd-10-cm", "S52.5") in sent[0]["targets"]


@pytest.mark.django_db
def test_a_failure_during_the_import_writes_nothing(icd_slice, thesaurus_files):
    def receiver(sender, **kwargs):
        raise RuntimeError("the index is down")

    lay_terms_bulk_saved.connect(receiver)
    try:
        with pytest.raises(RuntimeError):
            lay_terms.load_thesaurus(thesaurus_files)
    finally:
        lay_terms_bulk_saved.disconnect(receiver)

    assert not LayTerm.objects.exists()
    assert not LayTermTarget.objects.exists()


@pytest.mark.django_db
def test_bad_rows_are_refused_by_file_and_line_and_the_rest_loads(icd_slice, tmp_path):
    good = write(
        tmp_path,
        "a.csv",
        HEADER + "lazy eye,condition,H53.0,,,\n"
        ",condition,H53.0,,,\n"  # line 3: no phrase
        "blurry vision,feeling,H53.8,,,\n"  # line 4: unknown kind
        "crooked wrist,injury,S52.5 S99.9,,,\n"  # line 5: S99.9 is not a code
        "bad back,symptom,,,,99999\n"  # line 6: no CPT 99999
        "nothing at all,other,,,,\n",  # line 7: no code
    )
    again = write(tmp_path, "b.csv", HEADER + "Lazy Eye,condition,H53.0,,,\n")
    wrong_header = write(
        tmp_path, "c.csv", "phrase,kind,icd10cm,snomed\nsore,symptom,H53.0,1\n"
    )

    result = lay_terms.load_thesaurus([good, again, wrong_header])

    assert result.problems == [
        "a.csv:3: the phrase is empty; the row was refused.",
        "a.csv:4: “blurry vision” has an unknown kind “feeling” (one of condition, "
        "injury, symptom, procedure, test, device, other); the row was refused.",
        "a.csv:5: “crooked wrist”: icd10cm S99.9 matches no code of its system; "
        "the row was refused.",
        "a.csv:6: “bad back”: cpt 99999 matches no code of its system; the row was "
        "refused.",
        "a.csv:7: “nothing at all” names no code; the row was refused.",
        "b.csv:2: “lazy eye” is already at a.csv:2; a phrase appears once across "
        "all files. The row was refused.",
        "c.csv:1: the header must be phrase,kind,icd10cm,icd10pcs,hcpcs,cpt, not "
        "phrase,kind,icd10cm,snomed (unknown column snomed); the file was not loaded.",
    ]
    assert list(LayTerm.objects.values_list("phrase", flat=True)) == ["lazy eye"]


@pytest.mark.django_db
def test_codes_of_a_system_not_loaded_at_all_are_reported_not_dropped_silently(
    icd_slice, tmp_path
):
    path = write(tmp_path, "a.csv", HEADER + "knee replacement,procedure,,0SRC,,\n")

    result = lay_terms.load_thesaurus([path])

    assert result.unloaded == {"icd-10-pcs": 1}
    assert "No ICD-10-PCS codes are loaded: 1 targets were left out" in (
        result.summary()
    )
    assert not LayTerm.objects.exists()


@pytest.mark.django_db
def test_word_synonyms_load_and_a_second_run_writes_nothing(icd_slice, tmp_path):
    synonyms = write(
        tmp_path,
        "syn.csv",
        "word,means\nBroken,fracture\nbelly,abdominal  abdomen\nbroken,break\n",
    )

    first = lay_terms.load_thesaurus([], synonyms)
    second = lay_terms.load_thesaurus([], synonyms)

    assert stored_synonyms() == {
        "belly": ["abdominal", "abdomen"],
        "broken": ["fracture"],
    }
    assert first.problems == [
        "syn.csv:4: “broken” is already at syn.csv:2; the row was refused."
    ]
    assert (first.synonyms.created, second.written) == (2, 0)


@pytest.mark.django_db
def test_the_command_loads_the_project_files_and_prints_the_summary(icd_slice):
    out = StringIO()
    call_command("import_lay_terms", stdout=out, stderr=StringIO())

    assert "Lay phrases:" in out.getvalue()
    assert LayTerm.objects.filter(phrase="work hardening").exists()
    again = StringIO()
    call_command("import_lay_terms", stdout=again, stderr=StringIO())
    assert "0 created, 0 updated" in again.getvalue()


@pytest.mark.django_db
def test_the_strict_command_refuses_to_write_when_a_row_is_refused(icd_slice, tmp_path):
    path = write(tmp_path, "a.csv", HEADER + "lazy eye,condition,H53.0 Q99.99,,,\n")

    with pytest.raises(CommandError, match=r"a.csv:2: .*Q99.99 matches no code"):
        call_command("import_lay_terms", str(path), "--strict", stderr=StringIO())
    assert not LayTerm.objects.exists()


# --- Admin --------------------------------------------------------------------------


@pytest.fixture
def author_ava(django_user_model, icd_slice):
    ava = django_user_model.objects.create_user(
        "ava", password="a long passphrase", is_staff=True
    )
    ava.groups.add(Group.objects.get(name="Author"))
    return ava


def add_phrase(client, phrase, system, code):
    address = reverse("admin:procedures_layterm_add")
    data = form_data(client.get(address))
    data.update(
        {
            "phrase": phrase,
            "kind": "condition",
            "targets-0-system": system,
            "targets-0-code": code,
            "targets-0-position": "0",
        }
    )
    return client.post(address, data)


@pytest.mark.django_db
def test_an_author_adds_and_edits_phrases_in_the_admin_as_staff(
    client, author_ava, tmp_path
):
    client.force_login(author_ava)

    response = add_phrase(client, "  Wonky  Eye ", "icd-10-cm", "h53.0")

    assert response.status_code == 302
    term = LayTerm.objects.get()
    assert (term.phrase, term.source) == ("wonky eye", "staff")
    assert stored_targets("wonky eye") == [("icd-10-cm", "H53.0")]

    # Editing a row the import wrote makes it the staff's.
    lay_terms.load_thesaurus(
        [write(tmp_path, "a.csv", HEADER + "lazy eye,condition,H53.0,,,\n")]
    )
    term = LayTerm.objects.get(phrase="lazy eye")
    address = reverse("admin:procedures_layterm_change", args=[term.pk])
    data = form_data(client.get(address))
    data["targets-0-code"] = "H53.00"
    assert client.post(address, data).status_code == 302
    term.refresh_from_db()
    assert term.source == "staff"
    assert stored_targets("lazy eye") == [("icd-10-cm", "H53.00")]
    # The history says who changed what, old and new.
    target = term.targets.get().history.latest()
    assert (target.history_user, target.code) == (author_ava, "H53.00")
    assert target.prev_record.code == "H53.0"


@pytest.mark.django_db
def test_the_admin_refuses_a_phrase_pointing_at_a_code_that_does_not_exist(
    client, author_ava
):
    client.force_login(author_ava)

    response = add_phrase(client, "wonky eye", "icd-10-cm", "H54.99")

    assert response.status_code == 200
    assert (
        "No ICD-10-CM code is or starts with H54.99: a phrase may only point at "
        "codes that exist." in messages(response)
    )
    assert not LayTerm.objects.exists()


@pytest.mark.django_db
def test_an_author_adds_a_word_synonym_and_a_viewer_may_not(
    client, author_ava, django_user_model
):
    client.force_login(author_ava)
    address = reverse("admin:procedures_laysynonym_add")
    response = client.post(address, {"word": "Tummy", "means": "abdominal  stomach"})
    assert response.status_code == 302
    assert stored_synonyms() == {"tummy": ["abdominal", "stomach"]}

    reviewer = django_user_model.objects.create_user(
        "rui", password="a long passphrase", is_staff=True
    )
    reviewer.groups.add(Group.objects.get(name="Clinical reviewer"))
    client.force_login(reviewer)
    assert client.get(address).status_code == 403
    changelist = reverse("admin:procedures_laysynonym_changelist")
    assert client.get(changelist).status_code == 200
    assert client.get(reverse("admin:procedures_layterm_add")).status_code == 403


# --- Also called --------------------------------------------------------------------


@pytest.fixture
def loaded(icd_slice, thesaurus_files, tmp_path):
    extra = write(
        tmp_path,
        "more.csv",
        HEADER + "wrist fracture,injury,S52.501A,,,\n"
        "bent wrist,injury,S52.5,,,\n"
        "sore arm,symptom,S52,,,\n"
        "arm problem,other,S,,,\n"
        "arm hurt,other,S5,,,\n"
        "forearm,other,S52.50,,,\n",
    )
    result = lay_terms.load_thesaurus([*thesaurus_files, extra])
    assert result.problems == []


def page(response):
    assert response.status_code == 200
    return html.fromstring(response.content)


@pytest.mark.django_db
def test_also_called_gives_five_phrases_the_most_specific_first(loaded):
    code = Code.objects.get(system="icd-10-cm", code="S52.501A")

    assert lay_terms.also_called(code) == [
        "wrist fracture",
        "broken wrist",
        "forearm",
        "bent wrist",
        "sore arm",
    ]


@pytest.mark.django_db
def test_a_phrase_meaning_only_this_code_comes_before_a_broader_one(
    icd_slice, tmp_path
):
    path = write(
        tmp_path,
        "eyes.csv",
        HEADER
        + "eye trouble,condition,H53.0 H53.1 H53.2,,,\nlazy eye,condition,H53.0,,,\n",
    )
    lay_terms.load_thesaurus([path])
    code = Code.objects.get(system="icd-10-cm", code="H53.001")

    assert lay_terms.also_called(code) == ["lazy eye", "eye trouble"]


@pytest.mark.django_db
def test_the_code_page_says_what_people_also_call_it_in_plain_words(
    client, loaded, django_assert_num_queries
):
    # 8 queries as before (tests/test_code_page.py), plus one for the phrases.
    with django_assert_num_queries(9):
        response = client.get(reverse("procedures:code", args=["cpt", "97546"]))
    tree = page(response)

    line = tree.xpath("//p[@class='also-called']")
    assert [" ".join(node.text_content().split()) for node in line] == [
        "Also called: back to work program"
    ]
    data = json.loads(tree.xpath("//script[@type='application/ld+json']")[0].text)
    assert data["about"]["alternateName"] == ["back to work program"]


@pytest.mark.django_db
def test_a_code_page_without_phrases_has_no_also_called_line(client, loaded):
    tree = page(client.get(reverse("procedures:code", args=["icd-10-cm", "Z85.9"])))

    assert tree.xpath("//p[@class='also-called']") == []
    data = json.loads(tree.xpath("//script[@type='application/ld+json']")[0].text)
    assert "alternateName" not in data["about"]


@pytest.mark.django_db
def test_a_section_page_names_the_phrases_of_the_codes_it_lists(
    client, loaded, django_assert_num_queries
):
    section = Code.objects.get(system="cpt", code="97546").section
    # The section page's queries, plus one for the phrases of the codes it lists.
    with django_assert_num_queries(SECTION_PAGE_QUERIES + 1):
        tree = page(client.get(section.get_absolute_url()))

    said = {
        item.xpath(".//span[@class='code-value']")[0].text: " ".join(
            item.xpath(".//span[@class='also-called']")[0].text_content().split()
        )
        for item in tree.xpath("//ul[@class='code-list']/li")
        if item.xpath(".//span[@class='also-called']")
    }
    assert said == {
        "97545": "also called back to work program",
        "97546": "also called back to work program",
    }


# --- The project's data -------------------------------------------------------------


def _icd10cm_codes():
    return [
        code
        for code in cm.get_all_codes(True)
        if not code.isdigit() and "-" not in code
    ]


def _icd10pcs_codes():
    path = icd10pcs.package_file(icd10pcs.CODE_LIST)
    return [line[:7] for line in path.read_text(encoding="utf-8").splitlines() if line]


def _sample_codes(system):
    """The HCPCS/CPT codes in sample_data/ and tests/data/ (read, not imported)."""
    pattern = re.compile(r"\b\d{4}[0-9FTU]\b" if system == "cpt" else r"\b[A-V]\d{4}\b")
    found = set()
    for folder in (ROOT / "sample_data", ROOT / "tests" / "data"):
        for path in folder.glob("*.*"):
            if path.suffix in (".txt", ".csv", ".json"):
                found.update(pattern.findall(path.read_text(encoding="utf-8")))
    return found


def test_every_row_of_the_project_thesaurus_points_at_real_codes():
    """Every phrase in procedures/data/lay_terms/*.csv against the real code sets
    (the packages' lists, read directly: no database), naming each dead code."""
    code_list = lay_terms.CodeList(
        {
            "icd-10-cm": _icd10cm_codes(),
            "icd-10-pcs": _icd10pcs_codes(),
            "hcpcs": _sample_codes("hcpcs"),
            "cpt": _sample_codes("cpt"),
        }
    )
    paths = lay_terms.default_paths()
    synonyms = lay_terms.SYNONYMS_FILE if lay_terms.SYNONYMS_FILE.exists() else None

    parsed = lay_terms.parse_thesaurus(paths, synonyms, code_list=code_list)

    assert parsed.problems == []
    assert len(parsed.rows) >= 30
    with open(paths[0], encoding="utf-8", newline="") as handle:
        assert next(csv.reader(handle)) == lay_terms.HEADER
