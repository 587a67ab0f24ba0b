"""import_procedure: write-ups in the seed's layout become drafts for review."""

import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from procedures.models import Code, Procedure, PublicationStatus

from .content_dump import pk_dump

pytestmark = pytest.mark.django_db

SEED = (
    Path(__file__).resolve().parent.parent
    / "sample_data"
    / "procedure-97546-work-hardening-each-additional-hour.txt"
)


def import_procedure(*files, **options):
    out = StringIO()
    call_command("import_procedure", *map(str, files), stdout=out, **options)
    return out.getvalue()


@pytest.fixture
def edited(tmp_path):
    """The seed with its summary reworded."""
    path = tmp_path / SEED.name
    path.write_text(
        SEED.read_text(encoding="utf-8").replace(
            "is a specialized therapy program", "is a structured therapy programme"
        ),
        encoding="utf-8",
    )
    return path


def test_a_write_up_imports_as_a_draft_with_its_code():
    summary = import_procedure(SEED)
    assert "Write-up 97546: Work Hardening/Conditioning; Each Additional Hour: " in (
        summary
    )
    assert "created" in summary
    procedure = Procedure.objects.select_related("code").get()
    assert procedure.status == PublicationStatus.DRAFT
    assert procedure.reviewed_on is None
    assert procedure.summary.startswith("Work hardening/conditioning is a specialized")
    code = procedure.code
    assert (code.system, code.code, code.is_addon, code.source) == (
        "cpt",
        "97546",
        True,
        "Procedure write-up",
    )
    assert code.descriptor.startswith("Work hardening/conditioning; each additional")


def test_importing_the_same_write_up_twice_writes_no_row():
    import_procedure(SEED)
    before = pk_dump()
    summary = import_procedure(SEED)
    assert pk_dump() == before
    assert "unchanged (0 rows created, 0 updated, 0 tables written)" in summary


def test_a_draft_takes_the_new_text(edited):
    import_procedure(SEED)
    summary = import_procedure(edited)
    assert ": updated (0 rows created, 1 updated" in summary
    procedure = Procedure.objects.get()
    assert "structured therapy programme" in procedure.summary
    assert procedure.status == PublicationStatus.DRAFT


def test_a_published_write_up_is_not_changed_without_being_told(sample_data, edited):
    before = pk_dump()
    with pytest.raises(CommandError) as error:
        import_procedure(edited)
    assert "is published, and this document would change its summary" in str(
        error.value
    )
    assert pk_dump() == before


def test_replace_published_keeps_the_new_text_as_a_revision_for_review(
    sample_data, edited
):
    import_procedure(edited, replace_published=True)
    procedure = Procedure.objects.get()
    assert procedure.status == PublicationStatus.PUBLISHED
    assert "structured therapy programme" in procedure.revision["summary"]
    assert "structured therapy programme" not in procedure.summary
    assert "structured therapy programme" not in procedure.html["summary"]
    assert not procedure.revision_is_approved


def test_the_same_text_over_a_published_write_up_changes_nothing(sample_data):
    before = pk_dump()
    summary = import_procedure(SEED)
    assert pk_dump() == before
    assert "unchanged" in summary
    # The sample's descriptor keeps its recorded source: the words are the same.
    assert Code.objects.get(code="97546").source == "AMA CPT (sample)"


def test_an_official_descriptor_is_kept(sample_data):
    Code.objects.filter(code="97546").update(
        descriptor="Official words", code_set_year=2026
    )
    Procedure.objects.all().delete()
    import_procedure(SEED)
    assert Code.objects.get(code="97546").descriptor == "Official words"


def test_the_code_can_be_given_when_the_file_name_does_not_carry_it(tmp_path):
    path = tmp_path / "work-hardening.txt"
    shutil.copy(SEED, path)
    with pytest.raises(CommandError, match=r"work-hardening\.txt:5: The write-up does"):
        import_procedure(path)
    import_procedure(path, code="97546")
    assert Procedure.objects.get().code.code == "97546"


def test_a_broken_write_up_is_refused_with_its_lines(tmp_path):
    path = tmp_path / SEED.name
    path.write_text(
        SEED.read_text(encoding="utf-8").replace(
            "Name of the Procedure:", "Procedure name:"
        ),
        encoding="utf-8",
    )
    with pytest.raises(CommandError) as error:
        import_procedure(SEED, path)
    assert f"{path}:1: The write-up has no “Name of the Procedure:” line." in str(
        error.value
    )
    assert not Procedure.objects.exists()
    assert not Code.objects.exists()


def test_code_is_refused_with_several_files():
    with pytest.raises(CommandError, match="single FILE"):
        import_procedure(SEED, SEED, code="97546")
