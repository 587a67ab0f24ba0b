"""import_hcpcs: HCPCS Level II codes from a CMS fixed-width release file."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from procedures.codesets.hcpcs import parse_hcpcs
from procedures.models import Code, CodeSection

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).resolve().parent / "data" / "HCPC2026_JAN_ANWEB_sample.txt"


def run(path=SAMPLE, **options):
    out = StringIO()
    call_command("import_hcpcs", str(path), stdout=out, **options)
    return out.getvalue()


def test_it_loads_the_codes_with_their_long_descriptions():
    summary = run()
    assert "6 codes read, 2 modifiers and dental codes skipped" in summary
    back_school = Code.objects.get(system="hcpcs", code="S9117")
    assert back_school.descriptor == "Back school, per visit"
    assert (back_school.code_set_year, back_school.source) == (
        2026,
        "CMS HCPCS 2026 JAN",
    )


def test_each_code_is_filed_under_the_section_that_holds_it():
    section = CodeSection.objects.create(
        system="hcpcs",
        slug="temporary-national-codes-non-medicare",
        name="Temporary National Codes (Non-Medicare)",
        start_code="S0000",
        end_code="S9999",
    )
    run()
    filed = dict(Code.objects.values_list("code", "section"))
    assert filed == {
        "A0021": None,
        "G0283": None,
        "S9117": section.pk,
        "S9129": section.pk,
        "S9131": section.pk,
        "S9451": section.pk,
    }


def test_continuation_lines_join_the_long_description():
    run()
    assert Code.objects.get(system="hcpcs", code="G0283").descriptor == (
        "Electrical stimulation (unattended), to one or more areas for "
        "indication(s) other than wound care, as part of a therapy plan of care"
    )


def test_modifiers_and_dental_codes_are_not_loaded_as_codes():
    run()
    loaded = sorted(Code.objects.values_list("code", flat=True))
    assert loaded == ["A0021", "G0283", "S9117", "S9129", "S9131", "S9451"]


def test_a_code_from_the_sample_policy_takes_the_official_text(sample_data):
    before = Code.objects.get(system="hcpcs", code="S9117")
    assert before.code_set_year is None
    assert before.section.slug == "temporary-national-codes-non-medicare"
    run()
    after = Code.objects.get(system="hcpcs", code="S9117")
    assert (after.pk, after.code_set_year) == (before.pk, 2026)
    assert after.section == before.section


def test_importing_the_same_file_twice_changes_nothing():
    run()
    before = list(Code.objects.order_by("pk").values_list())
    assert "0 codes created, 0 updated, 6 unchanged" in run()
    assert list(Code.objects.order_by("pk").values_list()) == before


def test_a_broken_file_is_refused_with_line_numbers_and_nothing_saved(tmp_path):
    lines = SAMPLE.read_text().splitlines()
    lines[3] = "G0283002009" + lines[3][11:]  # an unknown record type
    lines[5] = "S91X9" + lines[5][5:]  # not a code
    lines.append("S9117")  # too short
    broken = tmp_path / "HCPC2026_JAN_ANWEB_broken.txt"
    broken.write_text("\n".join(lines))
    with pytest.raises(CommandError) as error:
        run(broken)
    message = str(error.value)
    assert "nothing was loaded" in message
    assert "line 4: “9” in column 11 is not a record type" in message
    assert "line 6: “S91X9” is not a HCPCS Level II code" in message
    assert "line 10: the record is too short" in message
    assert not Code.objects.exists()


def test_a_continuation_without_its_first_line_is_a_problem():
    text = SAMPLE.read_text().splitlines()
    parsed = parse_hcpcs("\n".join(text[3:5]), year=2026, source="test")
    assert [str(problem) for problem in parsed.problems] == [
        "line 1: this continues G0283, but the line before is not part of G0283: a "
        "continuation (4) follows its code's first line (3)."
    ]


def test_a_file_without_a_year_in_its_name_needs_one(tmp_path):
    renamed = tmp_path / "hcpcs.txt"
    renamed.write_text(SAMPLE.read_text())
    with pytest.raises(CommandError, match="--year"):
        run(renamed)
    run(renamed, year=2026, verbosity=0)
    assert Code.objects.get(code="S9117").source == "CMS HCPCS 2026"
