"""import_policy --format json|csv: payer policies in the generic layout.

The layout is in docs/policy-layout.md; tests/data holds one invented Harbor Health
Plan policy written in both formats, and sample_data/ the two sample payers.
"""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from policies.generic import parse_generic_policy
from policies.models import Coverage, Payer, Policy, PolicyStatus
from procedures.models import Code

from .content_dump import natural_dump, pk_dump

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
JSON_POLICY = DATA / "policy-harbor-0820-therapeutic-exercise.json"
CSV_POLICY = DATA / "policy-harbor-0820-therapeutic-exercise.csv"
HARBOR_BULLETIN = DATA / "policy-harbor-0712-bone-growth-stimulation.txt"
SEED = ROOT / "sample_data" / "policy-aetna-0198-work-hardening-programs.txt"
CIGNA = ROOT / "sample_data" / "policy-cigna-sample-0135-physical-therapy.json"
UHC = (
    ROOT
    / "sample_data"
    / ("policy-unitedhealthcare-sample-0026-outpatient-rehabilitation.csv")
)


def import_policy(*files, **options):
    out = StringIO()
    call_command("import_policy", *map(str, files), stdout=out, **options)
    return out.getvalue()


def refusal(*files, **options):
    with pytest.raises(CommandError) as raised:
        import_policy(*files, **options)
    return str(raised.value)


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


def edited(tmp_path, source, old, new, name=None):
    """A copy of ``source`` with ``old`` replaced by ``new`` (which must be there)."""
    text = source.read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / (name or source.name)
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def line_of(path, text):
    """The line number of the first line of ``path`` holding ``text``."""
    for number, line in enumerate(path.read_text().split("\n"), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} is not in {path}")


@pytest.mark.parametrize("path", [JSON_POLICY, CSV_POLICY], ids=["json", "csv"])
def test_a_policy_in_either_format_becomes_a_published_policy_with_its_table(path):
    summary = import_policy(path, format=path.suffix[1:])
    assert "Harbor Health Plan 0820: Therapeutic Exercise After Forearm Fractures" in (
        summary
    )
    policy = Policy.objects.get(payer__slug="harbor-health-plan", number="0820")
    assert policy.status == PolicyStatus.PUBLISHED
    assert str(policy.last_reviewed_on) == "2026-03-15"
    assert str(policy.effective_on) == "2026-04-01"
    assert "<strong>therapeutic exercise</strong>" in policy.html["scope"]
    assert (
        "<li>a therapist has set measurable goals.</li>" in policy.html["limitations"]
    )
    assert table(policy) == [
        (
            "CPT codes covered when criteria are met",
            Coverage.CRITERIA,
            "cpt",
            [
                (
                    "97110",
                    False,
                    "Invented test wording: exercise therapy, per 15 minutes",
                ),
                ("97161 - 97163", False, "Evaluations"),
            ],
        ),
        (
            "CPT codes not covered",
            Coverage.NOT_COVERED,
            "cpt",
            [("97545", False, "Work hardening"), ("97546", True, "Work hardening")],
        ),
        (
            "ICD-10-CM codes covered when criteria are met",
            Coverage.CRITERIA,
            "icd-10-cm",
            [
                ("S52.001+ - S52.92X+", False, "Fracture of forearm"),
                ("S62.0", False, ""),
            ],
        ),
    ]
    assert [ref.citation[:10] for ref in policy.references.all()] == [
        "Invented A",
        "Invented B",
    ]


def test_the_json_and_the_csv_of_one_policy_import_to_the_same_records():
    import_policy(JSON_POLICY, format="json")
    from_json = natural_dump()
    Payer.objects.all().delete()
    Code.objects.all().delete()
    import_policy(CSV_POLICY, format="csv")
    assert natural_dump() == from_json


def test_a_listed_code_the_site_does_not_know_gets_a_page_with_the_policys_words(
    client,
):
    import_policy(JSON_POLICY, format="json")
    code = Code.objects.get(system="cpt", code="97110")
    assert code.descriptor == "Invented test wording: exercise therapy, per 15 minutes"
    assert code.source == "Harbor Health Plan CPB 0820"
    response = client.get("/codes/cpt/97110/")
    assert response.status_code == 200
    assert "Therapeutic Exercise After Forearm Fractures" in response.text


def test_related_policies_are_linked_by_their_numbers():
    import_policy(HARBOR_BULLETIN)  # without --format: a bulletin
    import_policy(JSON_POLICY, format="json")
    policy = Policy.objects.get(number="0820")
    assert [other.number for other in policy.related_policies.all()] == ["0712"]


def test_a_second_import_writes_nothing(tmp_path):
    import_policy(JSON_POLICY, format="json")
    import_policy(CIGNA, format="json")
    before = pk_dump()
    summary = import_policy(JSON_POLICY, CIGNA, format="json")
    assert pk_dump() == before
    assert summary.count("unchanged (0 rows created, 0 updated, 0 tables written)") == 2
    # The same policy from the other format is the same content: still nothing.
    summary = import_policy(CSV_POLICY, format="csv")
    assert pk_dump() == before
    assert "unchanged (0 rows created, 0 updated, 0 tables written)" in summary


def test_a_dry_run_reports_and_writes_nothing():
    before = pk_dump()
    summary = import_policy(UHC, format="csv", dry_run=True)
    assert pk_dump() == before
    assert (
        "UnitedHealthcare (sample) 0026: Outpatient Rehabilitation Therapy" in summary
    )
    assert ": would be created (" in summary


def test_a_changed_row_replaces_the_code_table_and_only_that(tmp_path):
    import_policy(JSON_POLICY, format="json")
    changed = edited(
        tmp_path,
        JSON_POLICY,
        '"coverage": "not-covered"',
        '"coverage": "criteria"',
    )
    summary = import_policy(changed, format="json")
    assert "updated" in summary
    policy = Policy.objects.get(number="0820")
    assert [group.coverage for group in policy.code_groups.all()] == [
        Coverage.CRITERIA,
        Coverage.CRITERIA,
        Coverage.CRITERIA,
    ]


def test_the_two_sample_payers_import_beside_the_aetna_bulletin():
    import_policy(SEED)
    import_policy(CIGNA, format="json")
    import_policy(UHC, format="csv")
    assert list(Payer.objects.values_list("slug", flat=True)) == [
        "aetna",
        "cigna-sample",
        "unitedhealthcare-sample",
    ]
    cigna = Policy.objects.get(payer__slug="cigna-sample")
    uhc = Policy.objects.get(payer__slug="unitedhealthcare-sample")
    # Marked as samples wherever they show.
    for policy in (cigna, uhc):
        assert "(sample" in policy.payer.name
        assert "(sample" in policy.title
        assert "This is a sample." in policy.scope
    shared = {"97545", "97546", "S9117"}
    for policy in (cigna, uhc):
        listed = {row.start_code for group, rows in _rows(policy) for row in rows}
        assert shared <= listed


def _rows(policy):
    return [(group, list(group.codes.all())) for group in policy.code_groups.all()]


# Refusals -----------------------------------------------------------------------


def test_a_broken_json_file_is_refused_with_every_problem_at_its_line(tmp_path):
    broken = edited(tmp_path, JSON_POLICY, '"2026-03-15"', '"15/03/2026"')
    broken = edited(tmp_path, broken, '"coverage": "not-covered"', '"coverage": "no"')
    broken = edited(tmp_path, broken, '"code": "97110"', '"code": "9711"')
    broken = edited(tmp_path, broken, '"next_review"', '"next_reveiw"')
    before = pk_dump()
    message = refusal(broken, format="json")
    assert pk_dump() == before
    assert message.startswith("Nothing was imported")
    date_line = line_of(broken, "15/03/2026")
    coverage_line = line_of(broken, '"coverage": "no"')
    code_line = line_of(broken, '"9711"')
    key_line = line_of(broken, "next_reveiw")
    assert f"{broken}:{date_line}: “15/03/2026” is not a date" in message
    assert f"{broken}:{key_line}: “next_reveiw” is not a name" in message
    assert f"{broken}:{coverage_line}: “no” is not a coverage status" in message
    assert f"{broken}:{code_line}: “9711” is not a CPT code" in message
    # In line order, as a person fixes them.
    lines = [int(line.split(":")[1]) for line in message.splitlines()[1:]]
    assert lines == sorted(lines)


def test_a_broken_csv_file_is_refused_with_every_problem_at_its_row(tmp_path):
    broken = edited(
        tmp_path, CSV_POLICY, "group,,CPT codes not covered,CPT,", "gruop,,x,CPT,"
    )
    broken = edited(tmp_path, broken, "code,,S62.0", "code,,S62.0 - S61.0")
    broken = edited(tmp_path, broken, "policy,title,", "policy,titel,")
    before = pk_dump()
    message = refusal(broken, format="csv")
    assert pk_dump() == before
    assert f"{broken}:{line_of(broken, 'gruop')}: “gruop” is not a kind of row" in (
        message
    )
    assert f"{broken}:{line_of(broken, 'S61.0')}: The range ends (S61.0)" in message
    assert f"{broken}:{line_of(broken, 'titel')}: “titel” is not a policy field" in (
        message
    )
    assert f"{broken}:1: The title is missing." in message


def test_a_csv_row_is_numbered_by_its_first_line_when_a_cell_spans_lines(tmp_path):
    # The limitations cell spans six lines; the row after it is still found.
    broken = edited(tmp_path, CSV_POLICY, "section,code_table_note,", "section,table,")
    message = refusal(broken, format="csv")
    assert (
        f"{broken}:{line_of(broken, 'section,table,')}: “table” is not a section"
        in (message)
    )


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('{\n  "number": "1",\n  "title": "T",,\n}', 3, "A name in double quotes"),
        ('{\n  "payer": "P"\n  "number": "1"\n}', 3, "A “,” or a closing “}”"),
        ('{\n  "payer": "P",\n  "number": "1\n"}', 3, "runs over a line break"),
        ("[1, 2]", 1, "should hold one JSON object"),
        ("", 1, "The file is empty"),
        ('{"payer": "P", "payer": "Q"}', 1, "“payer” is given twice"),
        ("[" * 500, 1, "nested deeper"),
    ],
)
def test_json_that_does_not_parse_is_refused_at_the_line_where_it_breaks(
    tmp_path, text, line, words
):
    path = tmp_path / "broken.json"
    path.write_text(text, encoding="utf-8")
    message = refusal(path, format="json")
    assert f"{path}:{line}: " in message
    assert words in message


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("code,value\n", 1, "The first row should name the columns"),
        ("", 1, "The file is empty"),
        (
            'record,field,value,system,coverage,description\npolicy,title,"Unclosed\n',
            2,
            "check its double quotes",
        ),
        (
            "record,field,value,system,coverage,description\ncode,,97110,,,x\n",
            2,
            "comes before any group row",
        ),
        (
            "record,field,value,system,coverage,description\n"
            "policy,number,1,,,,extra\n",
            2,
            "This row has 7 cells",
        ),
    ],
)
def test_csv_that_does_not_parse_is_refused_at_its_row(tmp_path, text, line, words):
    path = tmp_path / "broken.csv"
    path.write_text(text, encoding="utf-8")
    message = refusal(path, format="csv")
    assert f"{path}:{line}: " in message
    assert words in message


def test_one_broken_file_stops_every_file_of_the_command(tmp_path):
    broken = edited(tmp_path, CSV_POLICY, "policy,number,0820", "policy,number,08 20")
    before = pk_dump()
    message = refusal(UHC, broken, format="csv")
    assert pk_dump() == before
    assert f"{broken}:{line_of(broken, '08 20')}: The number “08 20” cannot" in message
    assert str(UHC) not in message


def test_the_same_policy_twice_in_one_command_is_refused(tmp_path):
    copy = edited(
        tmp_path, JSON_POLICY, "Therapeutic Exercise", "Exercise", "copy.json"
    )
    message = refusal(JSON_POLICY, copy, format="json")
    assert "This is Harbor Health Plan policy 0820 again" in message
    assert not Policy.objects.exists()


def test_a_payer_slug_that_does_not_match_the_name_is_refused(tmp_path):
    broken = edited(
        tmp_path, UHC, "payer_slug,unitedhealthcare-sample", "payer_slug,uhc"
    )
    message = refusal(broken, format="csv")
    assert "The payer slug “uhc” does not match the name" in message
    assert "/payers/unitedhealthcare-sample/" in message


def test_a_file_in_the_other_format_is_refused_not_misread():
    message = refusal(JSON_POLICY, format="csv")
    assert f"{JSON_POLICY}:1: The first row should name the columns" in message
    message = refusal(CSV_POLICY, format="json")
    assert f"{CSV_POLICY}:1: " in message


def test_the_payer_option_is_for_bulletins_only():
    message = refusal(JSON_POLICY, format="json", payer="Someone")
    assert "--payer" in message
    assert not Policy.objects.exists()


def test_a_json_escape_cannot_smuggle_a_nul_into_the_database(tmp_path):
    path = edited(
        tmp_path, JSON_POLICY, "Work hardening is not covered.", "No\\u0000pe."
    )
    import_policy(path, format="json")
    assert "\x00" not in Policy.objects.get(number="0820").limitations


def test_text_longer_than_a_field_may_hold_is_refused_at_its_line(tmp_path):
    path = edited(
        tmp_path, JSON_POLICY, "Codes marked + are add-on codes.", "x" * 50_001
    )
    message = refusal(path, format="json")
    line = line_of(path, "xxxxx")
    assert f"{path}:{line}: The section “code_table_note” is 50,001 characters" in (
        message
    )


def test_the_parser_never_raises_on_hostile_input():
    hostile = [
        '{"a": ' * 30,
        '"\\ud800"',
        '{"title": "\\udc00"}',
        "{" + "\x00" * 5,
        "\ufeff{}",
        "1e999999",
    ]
    for text in hostile:
        assert parse_generic_policy(text, "json").problems
    for text in ['"', "a\rb\r", "\x00,\x00", "record\n" * 3]:
        assert parse_generic_policy(text, "csv").problems
