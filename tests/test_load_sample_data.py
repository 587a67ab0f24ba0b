"""load_sample_data: the seed documents saved as records, the same however often."""

import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command

from policies.models import Coverage, Payer, Policy, PolicyCode, PolicyReference
from procedures.models import Code, CodeSection, Procedure, PublicationStatus

pytestmark = pytest.mark.django_db

SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"
POLICY_FILE = "policy-aetna-0198-work-hardening-programs.txt"
TIMESTAMPS = {"created_at", "updated_at"}


def load(**options):
    out = StringIO()
    call_command("load_sample_data", stdout=out, **options)
    return out.getvalue()


def dump(skip=TIMESTAMPS):
    """Every row of every table, join tables included, by primary key."""
    rows = {}
    for model in apps.get_models(include_auto_created=True):
        names = [
            field.attname
            for field in model._meta.concrete_fields
            if field.name not in skip
        ]
        rows[model._meta.label] = list(model.objects.order_by("pk").values_list(*names))
    return rows


@pytest.fixture
def loaded():
    """The seeds alone (the Aetna bulletin and the 97546 write-up)."""
    return load(seeds_only=True)


@pytest.fixture
def copied_sample(tmp_path):
    for path in SAMPLE_DATA.glob("*.txt"):
        shutil.copy(path, tmp_path)
    return tmp_path


def test_it_prints_a_one_line_summary(loaded):
    assert loaded.count("\n") == 1
    assert "8 code sections, 18 codes, 1 payer, 1 policy" in loaded
    assert "(3 code groups, 13 code rows, 12 references), 1 write-up" in loaded


def test_it_loads_the_sample_policies_of_two_more_payers_beside_the_seeds():
    summary = load()
    assert (
        "3 payers, 3 policies (10 code groups, 36 code rows, 17 references)" in summary
    )
    assert list(Payer.objects.values_list("name", flat=True)) == [
        "Aetna",
        "Cigna (sample)",
        "UnitedHealthcare (sample)",
    ]
    # Marked as samples wherever a policy shows.
    for policy in Policy.objects.exclude(payer__slug="aetna"):
        assert "(sample" in policy.title
        assert policy.scope.startswith("**This is a sample.**")
        assert policy.status == PublicationStatus.PUBLISHED
    # They share codes with the seed bulletin, so a code page compares them.
    mentions = PolicyCode.objects.mentions_of(Code.objects.get(code="97546"))
    assert [mention.policy.payer.slug for mention in mentions] == [
        "aetna",
        "cigna-sample",
        "unitedhealthcare-sample",
    ]


def test_a_broken_sample_in_the_generic_layout_stops_everything(copied_sample):
    source = SAMPLE_DATA / "policy-cigna-sample-0135-physical-therapy.json"
    broken = copied_sample / source.name
    text = source.read_text(encoding="utf-8")
    broken.write_text(text.replace('"97164"', '"9716"'), encoding="utf-8")
    line = next(
        number
        for number, content in enumerate(text.split("\n"), start=1)
        if '"97164"' in content
    )
    with pytest.raises(CommandError) as error:
        load(directory=copied_sample)
    assert f"{source.name}, line {line}: “9716” is not a CPT code" in str(error.value)
    assert not Code.objects.exists()
    assert not Policy.objects.exists()


def test_loading_twice_changes_nothing():
    load()
    before = dump()
    summary = load()
    assert dump() == before
    assert "0 rows created, 0 updated, 0 code tables or reference lists" in summary


def test_a_second_run_does_not_even_touch_timestamps():
    load()
    before = dump(skip=set())
    load()
    assert dump(skip=set()) == before


def test_it_creates_the_code_sections_with_their_parents(loaded):
    sections = {
        section.slug: (
            section.system,
            section.name,
            section.kind,
            section.start_code,
            section.end_code,
            section.parent.slug if section.parent else None,
        )
        for section in CodeSection.objects.select_related("parent")
    }
    assert sections == {
        "physical-medicine-and-rehabilitation": (
            "cpt",
            "Physical Medicine and Rehabilitation",
            "section",
            "97010",
            "97799",
            None,
        ),
        "temporary-national-codes-non-medicare": (
            "hcpcs",
            "Temporary National Codes (Non-Medicare)",
            "section",
            "S0000",
            "S9999",
            None,
        ),
        "chapter-19": (
            "icd-10-cm",
            "Injury, poisoning and certain other consequences of external causes",
            "chapter",
            "S00",
            "T88",
            None,
        ),
        "chapter-21": (
            "icd-10-cm",
            "Factors influencing health status and contact with health services",
            "chapter",
            "Z00",
            "Z99",
            None,
        ),
        "s00-s09": (
            "icd-10-cm",
            "Injuries to the head",
            "block",
            "S00",
            "S09",
            "chapter-19",
        ),
        "s50-s59": (
            "icd-10-cm",
            "Injuries to the elbow and forearm",
            "block",
            "S50",
            "S59",
            "chapter-19",
        ),
        "z40-z53": (
            "icd-10-cm",
            "Encounters for other specific health care",
            "block",
            "Z40",
            "Z53",
            "chapter-21",
        ),
        "z77-z99": (
            "icd-10-cm",
            "Persons with potential health hazards related to family and personal "
            "history and certain conditions influencing health status",
            "block",
            "Z77",
            "Z99",
            "chapter-21",
        ),
    }
    assert CodeSection.objects.get(slug="z77-z99").depth == 1


def test_it_creates_the_codes_with_descriptor_source_and_section(loaded):
    found = {
        (code.system, code.code): (code.descriptor, code.source, code.section.slug)
        for code in Code.objects.select_related("section")
    }
    icd = "ICD-10-CM FY2026"
    assert found == {
        ("cpt", "97537"): (
            "Community/work reintegration training (eg, shopping, transportation, "
            "money management, avocational activities and/or work "
            "environment/modification analysis, work task analysis, use of assistive "
            "technology device/adaptive equipment), direct one-on-one contact, each "
            "15 minutes",
            "Aetna CPB 0198",
            "physical-medicine-and-rehabilitation",
        ),
        ("cpt", "97545"): (
            "Work hardening/conditioning; initial 2 hours",
            "Aetna CPB 0198",
            "physical-medicine-and-rehabilitation",
        ),
        ("cpt", "97546"): (
            "Work hardening/conditioning; each additional hour (List separately in "
            "addition to code for primary procedure)",
            "AMA CPT (sample)",
            "physical-medicine-and-rehabilitation",
        ),
        ("hcpcs", "S9117"): (
            "Back school, per visit",
            "Aetna CPB 0198",
            "temporary-national-codes-non-medicare",
        ),
        ("icd-10-cm", "S52.501A"): (
            "Unspecified fracture of the lower end of right radius, initial encounter "
            "for closed fracture",
            icd,
            "s50-s59",
        ),
        ("icd-10-cm", "Z51.89"): (
            "Encounter for other specified aftercare",
            icd,
            "z40-z53",
        ),
        ("icd-10-cm", "Z85.00"): (
            "Personal history of malignant neoplasm of unspecified digestive organ",
            icd,
            "z77-z99",
        ),
        ("icd-10-cm", "Z85.9"): (
            "Personal history of malignant neoplasm, unspecified",
            icd,
            "z77-z99",
        ),
        ("icd-10-cm", "Z87.81"): (
            "Personal history of (healed) traumatic fracture",
            icd,
            "z77-z99",
        ),
        ("icd-10-cm", "Z87.828"): (
            "Personal history of other (healed) physical injury and trauma",
            icd,
            "z77-z99",
        ),
        ("icd-10-cm", "Z91.410"): (
            "Personal history of adult physical and sexual abuse",
            icd,
            "z77-z99",
        ),
        ("icd-10-cm", "Z91.414"): (
            "Personal history of adult intimate partner abuse",
            icd,
            "z77-z99",
        ),
        ("icd-10-cm", "Z98.870"): (
            "Personal history of in utero procedure during pregnancy",
            icd,
            "z77-z99",
        ),
        ("icd-10-cm", "Z98.89"): (
            "Other specified postprocedural states",
            icd,
            "z77-z99",
        ),
        ("icd-10-cm", "Z86.19"): (
            "Personal history of other infectious and parasitic diseases",
            icd,
            "z77-z99",
        ),
        ("icd-10-cm", "Z86.59"): (
            "Personal history of other mental and behavioral disorders",
            icd,
            "z77-z99",
        ),
        ("icd-10-cm", "Z87.820"): (
            "Personal history of traumatic brain injury",
            icd,
            "z77-z99",
        ),
        ("icd-10-cm", "Z92.3"): ("Personal history of irradiation", icd, "z77-z99"),
    }


def test_the_add_on_code_knows_its_primary_code(loaded):
    addon = Code.objects.get(system="cpt", code="97546")
    assert addon.is_addon
    assert list(addon.primary_codes.values_list("code", flat=True)) == ["97545"]
    assert not Code.objects.get(system="cpt", code="97545").is_addon


def test_the_policy_is_published_under_aetna_from_the_parser(loaded):
    payer = Payer.objects.get()
    assert (payer.name, payer.slug, payer.website) == (
        "Aetna",
        "aetna",
        "https://www.aetna.com/",
    )
    policy = Policy.objects.get()
    assert (policy.payer, policy.number, policy.title) == (
        payer,
        "0198",
        "Work Hardening Programs",
    )
    assert policy.status == PublicationStatus.PUBLISHED
    assert policy.source_url == (
        "https://www.aetna.com/cpb/medical/data/100_199/0198.html"
    )
    assert policy.effective_on is None
    assert policy.last_reviewed_on is None
    assert policy.next_review_on is None
    assert policy.limitations.startswith("Aetna does not cover back school")
    assert "### Cognitive Work Hardening" in policy.background


def test_the_policy_keeps_its_code_table_and_references(loaded):
    policy = Policy.objects.get()
    groups = list(policy.code_groups.all())
    assert [(group.system, group.coverage) for group in groups] == [
        ("cpt", Coverage.NOT_COVERED),
        ("hcpcs", Coverage.NOT_COVERED),
        ("icd-10-cm", Coverage.NOT_COVERED),
    ]
    assert [row.display for row in groups[2].codes.all()][:3] == [
        "S00.00X+ - T88.9XX+",
        "Z51.89",
        "Z85.00 - Z85.9",
    ]
    references = list(PolicyReference.objects.filter(policy=policy))
    assert [reference.position for reference in references] == list(range(1, 13))
    assert references[11].citation.startswith("Wyman DO.")


def test_the_write_up_is_published_and_not_yet_reviewed(loaded):
    procedure = Procedure.objects.select_related("code").get()
    assert procedure.code.code == "97546"
    assert procedure.title == "Work Hardening/Conditioning; Each Additional Hour"
    assert procedure.status == PublicationStatus.PUBLISHED
    assert procedure.reviewed_on is None
    assert procedure.indications.startswith("- Individuals recovering from")
    assert [name for name, _heading, _text in procedure.sections()] == [
        "summary",
        "purpose",
        "indications",
        "preparation",
        "procedure_description",
        "duration",
        "setting",
        "personnel",
        "risks",
        "benefits",
        "recovery",
        "alternatives",
        "patient_experience",
    ]


def test_a_diagnosis_reached_through_a_range_finds_the_policy(loaded):
    rows = list(
        PolicyCode.objects.naming("icd-10-cm", "S52.501A").select_related(
            "group__policy"
        )
    )
    assert [(row.group.policy.number, row.display) for row in rows] == [
        ("0198", "S00.00X+ - T88.9XX+")
    ]
    assert rows[0].is_range


def test_the_add_on_code_is_found_as_a_listed_row(loaded):
    rows = list(
        PolicyCode.objects.naming("cpt", "97546").select_related("group__policy")
    )
    assert len(rows) == 1
    assert rows[0].group.policy.number == "0198"
    assert not rows[0].is_range
    assert rows[0].start_code == "97546"
    assert rows[0].is_addon
    mentions = PolicyCode.objects.mentions_of(Code.objects.get(code="97546"))
    assert [mention.listed for mention in mentions] == [True]


def test_a_changed_bulletin_replaces_its_code_table(copied_sample):
    load(directory=copied_sample)
    untouched = list(Code.objects.values_list("pk", "updated_at"))
    bulletin = copied_sample / POLICY_FILE
    bulletin.write_text(
        bulletin.read_text(encoding="utf-8").replace(
            "S9117 Back school, per visit", "S9117 Back school, per session"
        ),
        encoding="utf-8",
    )
    summary = load(directory=copied_sample)
    assert "1 code tables or reference lists replaced" in summary
    row = PolicyCode.objects.get(start_code="S9117")
    assert row.description == "Back school, per session"
    assert PolicyCode.objects.count() == 13
    assert Code.objects.get(code="S9117").descriptor == "Back school, per session"
    changed = set(untouched) - set(Code.objects.values_list("pk", "updated_at"))
    assert [pk for pk, _ in changed] == [Code.objects.get(code="S9117").pk]


def test_a_sample_with_problems_stops_before_anything_is_written(copied_sample):
    bulletin = copied_sample / POLICY_FILE
    bulletin.write_text(
        bulletin.read_text(encoding="utf-8").replace(
            "Z85.00 - Z85.9", "Z85.9 - Z85.00"
        ),
        encoding="utf-8",
    )
    with pytest.raises(CommandError) as error:
        load(directory=copied_sample)
    assert f"{POLICY_FILE}, line 50: The range ends (Z85.00) before it starts" in str(
        error.value
    )
    assert not Code.objects.exists()
    assert not CodeSection.objects.exists()
    assert not Policy.objects.exists()


def test_a_write_up_whose_file_name_gives_no_code_is_refused(copied_sample):
    writeup = next(copied_sample.glob("procedure-*.txt"))
    writeup.rename(copied_sample / "procedure-work-hardening.txt")
    with pytest.raises(CommandError, match=r"procedure-work-hardening\.txt, line 5"):
        load(directory=copied_sample)
    assert not Procedure.objects.exists()


def test_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(CommandError, match="is not a folder"):
        load(directory=tmp_path / "nowhere")
