"""import_policy: bulletins in the seed's layout become payers, policies and codes."""

import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from carecodes.management.commands.load_sample_data import (
    WRITEUP_SOURCE,
    link_add_on_codes,
    load_reference_data,
)
from policies.models import Coverage, Payer, Policy, PolicyCode
from policies.signals import policy_content_changed
from procedures.models import Code, Procedure, PublicationStatus

from .content_dump import natural_dump, pk_dump

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "sample_data" / "policy-aetna-0198-work-hardening-programs.txt"
SEED_WRITEUP = (
    ROOT / "sample_data" / "procedure-97546-work-hardening-each-additional-hour.txt"
)
DATA = Path(__file__).resolve().parent / "data"
THERAPY = DATA / "policy-aetna-0325-physical-therapy-ultrasound.txt"
FRACTURES = DATA / "policy-harbor-0712-bone-growth-stimulation.txt"
MONITORING = DATA / "policy-northwind-1044-remote-monitoring.txt"


def import_policy(*files, **options):
    out = StringIO()
    call_command("import_policy", *map(str, files), stdout=out, **options)
    return out.getvalue()


def table(policy):
    return [
        (
            group.heading,
            group.coverage,
            group.system,
            [(row.display, row.is_addon, row.description) for row in group.codes.all()],
        )
        for group in policy.code_groups.all()
    ]


def broken_copy(tmp_path, source, old, new):
    path = tmp_path / source.name
    text = source.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def test_the_samples_import_to_exactly_what_load_sample_data_holds():
    call_command("load_sample_data", verbosity=0)
    loaded = natural_dump()
    for model in (Procedure, Policy, Payer, Code):
        model.objects.all().delete()
    assert not PolicyCode.objects.exists()

    load_reference_data()
    import_policy(SEED)
    # The sample policies of two more payers, in the generic layout.
    import_policy(
        ROOT / "sample_data" / "policy-cigna-sample-0135-physical-therapy.json",
        format="json",
    )
    import_policy(
        ROOT
        / "sample_data"
        / "policy-unitedhealthcare-sample-0026-outpatient-rehabilitation.csv",
        format="csv",
    )
    call_command(
        "import_procedure", str(SEED_WRITEUP), source=WRITEUP_SOURCE, stdout=StringIO()
    )
    link_add_on_codes()
    # The one difference by design: a write-up imports as a draft for review, where
    # the sample data shows it published.
    assert Procedure.objects.get().status == PublicationStatus.DRAFT
    Procedure.objects.update(status=PublicationStatus.PUBLISHED)
    assert natural_dump() == loaded


def test_importing_the_same_bulletins_twice_writes_no_row():
    import_policy(SEED, THERAPY, FRACTURES, MONITORING)
    before = pk_dump()
    summary = import_policy(SEED, THERAPY, FRACTURES, MONITORING)
    assert pk_dump() == before
    assert summary.count("unchanged (0 rows created, 0 updated, 0 tables written)") == 4


def test_the_physical_therapy_bulletin_has_covered_and_not_covered_groups():
    summary = import_policy(THERAPY)
    assert "Aetna 0325: Physical Therapy and Therapeutic Ultrasound: created" in summary
    policy = Policy.objects.get(payer__slug="aetna", number="0325")
    assert table(policy) == [
        (
            "CPT codes covered if selection criteria are met",
            Coverage.CRITERIA,
            "cpt",
            [
                (
                    "97110",
                    False,
                    "Therapeutic procedure, one or more areas, each 15 minutes; "
                    "therapeutic exercises",
                ),
                (
                    "97140",
                    False,
                    "Manual therapy techniques, one or more regions, each 15 minutes",
                ),
                (
                    "97161 - 97163",
                    False,
                    "Physical therapy evaluation, low, moderate or high complexity",
                ),
            ],
        ),
        (
            "CPT codes not covered for indications listed in the CPB",
            Coverage.NOT_COVERED,
            "cpt",
            [
                (
                    "97035",
                    False,
                    "Application of a modality to one or more areas; ultrasound, "
                    "each 15 minutes",
                )
            ],
        ),
        (
            "ICD-10 codes not covered for indications listed in the CPB",
            Coverage.NOT_COVERED,
            "icd-10-cm",
            [("M54.50 - M54.59", False, "Low back pain")],
        ),
    ]
    assert policy.status == PublicationStatus.PUBLISHED
    assert str(policy.effective_on) == "1997-08-27"
    assert str(policy.next_review_on) == "2027-01-15"
    assert policy.source_url.endswith("/cpb/medical/data/300_399/0325.html")
    assert [ref.position for ref in policy.references.all()] == [1, 2, 3]
    assert policy.references.get(position=3).citation.endswith("2019;49(3):101-110.")


def test_unknown_sections_are_kept_in_the_background():
    import_policy(THERAPY)
    policy = Policy.objects.get(number="0325")
    assert "## Appendix\n\nDocumentation should record the goals" in policy.background
    assert "## Medical Necessity" in policy.background
    assert "- The member has a documented loss of function" in policy.background


def test_the_fracture_bulletin_keeps_its_seventh_character_ranges():
    import_policy(FRACTURES)
    policy = Policy.objects.get(payer__name="Harbor Health Plan", number="0712")
    groups = table(policy)
    assert [(heading, coverage, system) for heading, coverage, system, _ in groups] == [
        (
            "HCPCS codes covered if selection criteria are met",
            Coverage.CRITERIA,
            "hcpcs",
        ),
        (
            "ICD-10 codes covered if selection criteria are met",
            Coverage.CRITERIA,
            "icd-10-cm",
        ),
        (
            "ICD-10 codes not covered for indications listed in the CPB",
            Coverage.NOT_COVERED,
            "icd-10-cm",
        ),
    ]
    assert [display for display, _addon, _text in groups[1][3]] == [
        "S52.00X+ - S52.99X+",
        "S62.0XX+",
        "M84.33X+",
        "M84.34X+",
    ]
    # A forearm fracture with its 7th character falls in the covered range.
    names = PolicyCode.objects.naming("icd-10-cm", "S52.121D")
    assert [row.display for row in names] == ["S52.00X+ - S52.99X+"]
    assert policy.last_reviewed_on.isoformat() == "2025-11-03"


def test_the_monitoring_bulletin_marks_its_add_on_codes():
    import_policy(MONITORING)
    policy = Policy.objects.get(payer__slug="northwind-health", number="1044")
    rows = {
        row.start_code: (row.group.coverage, row.is_addon)
        for row in PolicyCode.objects.filter(group__policy=policy)
    }
    assert rows == {
        "99453": (Coverage.CRITERIA, False),
        "99457": (Coverage.CRITERIA, False),
        "99458": (Coverage.CRITERIA, True),
        "G0511": (Coverage.COVERED, False),
        "G2211": (Coverage.COVERED, True),
        "G9999": (Coverage.INFORMATIONAL, False),
        "G0283": (Coverage.INFORMATIONAL, False),
    }
    assert Code.objects.get(system="hcpcs", code="G2211").is_addon


def test_a_listed_code_the_site_does_not_know_gets_a_page_with_the_bulletins_text():
    import_policy(MONITORING, FRACTURES)
    code = Code.objects.get(system="cpt", code="99458")
    assert code.descriptor.startswith("each additional 20 minutes")
    assert (code.source, code.code_set_year, code.is_addon) == (
        "Northwind Health CPB 1044",
        None,
        True,
    )
    assert Code.objects.get(system="icd-10-cm", code="S52.501A").source == (
        "Harbor Health Plan CPB 0712"
    )
    # Ranges and 7th-character families name many codes, not one.
    assert not Code.objects.filter(code__in=["E0747", "E0749", "S62.0XX"]).exists()


def test_an_official_descriptor_is_never_overwritten_by_a_bulletin(tmp_path):
    import_policy(MONITORING)
    official = "Remote monitoring of physiologic parameter(s), initial set-up"
    # What another engineer's official CPT import does to a bulletin's code.
    Code.objects.filter(code="99453").update(
        descriptor=official, source="AMA CPT 2026", code_set_year=2026
    )
    changed = broken_copy(
        tmp_path, MONITORING, "initial set-up and patient education", "set-up only"
    )
    import_policy(changed)
    code = Code.objects.get(code="99453")
    assert (code.descriptor, code.source) == (official, "AMA CPT 2026")
    row = PolicyCode.objects.get(start_code="99453")
    assert row.description.endswith("set-up only on use of equipment")


def test_a_changed_bulletin_replaces_its_table_and_keeps_the_policys_status(tmp_path):
    import_policy(THERAPY)
    Policy.objects.update(status=PublicationStatus.DRAFT)
    changed = broken_copy(tmp_path, THERAPY, "M54.50 - M54.59", "M54.40 - M54.59")
    summary = import_policy(changed)
    assert "Aetna 0325: Physical Therapy and Therapeutic Ultrasound: updated" in summary
    policy = Policy.objects.get(number="0325")
    assert policy.status == PublicationStatus.DRAFT
    assert PolicyCode.objects.filter(group__policy=policy, start_code="M54.40").exists()


def test_a_replaced_table_is_announced_once_the_transaction_commits(
    sample_data, django_capture_on_commit_callbacks
):
    announced = []

    def listener(sender, policy, **kwargs):
        announced.append(policy.number)

    policy_content_changed.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            import_policy(THERAPY)
        with django_capture_on_commit_callbacks(execute=True):
            import_policy(THERAPY)
    finally:
        policy_content_changed.disconnect(listener)
    assert announced == ["0325"]


def test_bulletins_imported_together_refresh_the_index_once_after_commit(
    sample_data, django_capture_on_commit_callbacks, monkeypatch
):
    """
    Each bulletin's bulk-written code table is announced as it is written; the
    index's one queue refreshes both policies together, once, after the commit.
    """
    from index.search import indexing

    announced, refreshed = [], []

    def listener(sender, policy, **kwargs):
        announced.append(policy.number)

    def reindex_policies(ids, **kwargs):
        refreshed.append(sorted(Policy.objects.get(pk=pk).number for pk in ids))
        return original(ids, **kwargs)

    original = indexing.reindex_policies
    monkeypatch.setattr(indexing, "reindex_policies", reindex_policies)
    policy_content_changed.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            import_policy(THERAPY, MONITORING)
        assert sorted(announced) == ["0325", "1044"]
        assert refreshed == []  # nothing before the commit
        for callback in callbacks:
            callback()
    finally:
        policy_content_changed.disconnect(listener)
    assert refreshed == [["0325", "1044"]]


def test_bulletins_imported_together_link_their_related_policies():
    import_policy(THERAPY, SEED)
    therapy = Policy.objects.get(number="0325")
    assert [p.number for p in therapy.related_policies.all()] == ["0198"]
    # Related policies belong to the same payer: Northwind has no 0198.
    import_policy(MONITORING)
    assert not Policy.objects.get(number="1044").related_policies.exists()


def test_a_broken_bulletin_is_refused_with_its_lines_and_nothing_is_written(tmp_path):
    broken = broken_copy(tmp_path, THERAPY, "Effective: 08/27/1997", "Effective: soon")
    broken.write_text(
        broken.read_text(encoding="utf-8").replace("97161 - 97163", "97163 - 97161"),
        encoding="utf-8",
    )
    with pytest.raises(CommandError) as error:
        import_policy(SEED, broken)
    message = str(error.value)
    assert "Nothing was imported" in message
    assert f"{broken}:5: “soon” is not a date" in message
    assert f"{broken}:55: The range ends (97161) before it starts" in message
    assert not Policy.objects.exists()
    assert not Code.objects.exists()


def test_a_bulletin_with_a_code_row_before_any_group_is_refused(tmp_path):
    broken = broken_copy(
        tmp_path,
        MONITORING,
        "CPT codes covered if selection criteria are met:\n\n99453",
        "99453",
    )
    with pytest.raises(CommandError, match=r":33: This code row comes before any"):
        import_policy(broken)
    assert not Payer.objects.exists()


def test_a_file_that_is_not_utf8_text_is_refused_with_its_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(SEED.read_bytes().replace(b"Back school", b"Back \xe9cole"))
    with pytest.raises(CommandError, match=r"latin1\.txt:44: This line is not UTF-8"):
        import_policy(path)


def test_the_same_policy_twice_in_one_run_is_refused(tmp_path):
    copy = tmp_path / "copy.txt"
    shutil.copy(SEED, copy)
    with pytest.raises(CommandError, match=r"copy\.txt:1: This is Aetna policy 0198"):
        import_policy(SEED, copy)
    assert not Policy.objects.exists()


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        import_policy(tmp_path / "nowhere.txt")


def test_a_dry_run_reports_and_writes_nothing():
    summary = import_policy(THERAPY, dry_run=True)
    assert "Physical Therapy and Therapeutic Ultrasound: would be created" in summary
    assert not Policy.objects.exists()
    assert not Code.objects.exists()


def test_a_bulletin_without_a_payer_can_be_named_on_the_command_line(tmp_path):
    path = broken_copy(
        tmp_path,
        FRACTURES,
        "Payer: Harbor Health Plan\n",
        "",
    )
    path.write_text(
        path.read_text(encoding="utf-8").replace("Harbor Health Plan", "The plan"),
        encoding="utf-8",
    )
    with pytest.raises(CommandError, match="does not say whose policy it is"):
        import_policy(path)
    import_policy(path, payer="Lakeside Care")
    assert Policy.objects.get().payer.name == "Lakeside Care"
