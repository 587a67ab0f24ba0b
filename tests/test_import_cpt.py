"""import_cpt: descriptors from a clinic's licensed CPT file (CSV: code, descriptor).

The sample file's wording is invented for the tests; it is not AMA text.
"""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from procedures.models import Code

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).resolve().parent / "data" / "cpt_sample.csv"


def run(path=SAMPLE, **options):
    out = StringIO()
    call_command("import_cpt", str(path), stdout=out, **options)
    return out.getvalue()


def test_it_loads_each_code_with_its_descriptor(sample_data):
    summary = run(year=2026)
    assert "3 codes read; 1 codes created, 2 updated" in summary
    code = Code.objects.get(system="cpt", code="97545")
    assert code.descriptor == "Invented test wording: work hardening, first two hours"
    assert (code.source, code.code_set_year) == ("AMA CPT 2026 (licensed file)", 2026)
    assert code.section.slug == "physical-medicine-and-rehabilitation"
    # The add-on link the sample data made is kept.
    assert list(Code.objects.get(code="97546").primary_codes.all()) == [code]


def test_importing_the_same_file_twice_changes_nothing():
    run()
    before = list(Code.objects.order_by("pk").values_list())
    assert "0 codes created, 0 updated, 3 unchanged" in run()
    assert list(Code.objects.order_by("pk").values_list()) == before


def test_a_broken_file_is_refused_with_line_numbers_and_nothing_saved(tmp_path):
    broken = tmp_path / "cpt.csv"
    broken.write_text(
        "code,descriptor\n"
        "97010,Invented wording\n"
        "9701,Too short\n"
        "97110\n"
        "97112,\n"
        "97010,Again\n"
    )
    with pytest.raises(CommandError) as error:
        run(broken)
    message = str(error.value)
    assert "nothing was loaded" in message
    assert "line 3: “9701” is not a CPT code" in message
    assert "line 4: expected 2 columns (code, descriptor), found 1" in message
    assert "line 5: 97112 has no descriptor." in message
    assert "line 6: 97010 is listed again; line 2 has it." in message
    assert not Code.objects.exists()


def test_an_empty_file_is_refused(tmp_path):
    empty = tmp_path / "cpt.csv"
    empty.write_text("code,descriptor\n")
    with pytest.raises(CommandError, match="holds no CPT codes"):
        run(empty)
