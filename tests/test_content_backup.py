"""export_content / import_content: all editorial content to one JSON file and back."""

import datetime
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from policies.models import Payer, Policy, PolicyCode, PolicyStatus
from procedures.models import Code, Procedure

from .content_dump import natural_dump, pk_dump

pytestmark = pytest.mark.django_db

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def content(sample_data, django_user_model):
    """The sample data, three more bulletins (one withdrawn) and a reviewed write-up."""
    call_command(
        "import_policy", *map(str, sorted(DATA.glob("policy-*.txt"))), stdout=StringIO()
    )
    retired = Policy.objects.get(number="0325")
    retired.status = PolicyStatus.WITHDRAWN
    retired.withdrawn_on = "2026-05-01"
    retired.replaced_by = Policy.objects.get(number="0198")
    retired.save()
    procedure = Procedure.objects.get()
    ada = django_user_model.objects.create_user(
        "ada", first_name="Dr Ada", last_name="Reviewer"
    )
    procedure.approve(ada, today=datetime.date(2026, 2, 1))
    procedure.save()


def export(tmp_path, name="content.json"):
    path = tmp_path / name
    call_command("export_content", str(path), verbosity=0)
    return path


def import_file(path, **options):
    out = StringIO()
    call_command("import_content", str(path), stdout=out, **options)
    return out.getvalue()


def without_export_time(path):
    data = json.loads(path.read_text(encoding="utf-8"))
    del data["exported_at"]
    return data


def flush_content(data):
    """Deletes every payer, policy and write-up, and the codes the file carries."""
    Procedure.objects.all().delete()
    Policy.objects.all().delete()
    Payer.objects.all().delete()
    for code in data["codes"]:
        Code.objects.filter(system=code["system"], code=code["code"]).delete()


def test_the_file_names_rows_by_natural_keys_in_a_stable_order(content, tmp_path):
    data = json.loads(export(tmp_path).read_text(encoding="utf-8"))
    assert (data["format"], data["version"]) == ("carecodes-content", 1)
    assert [payer["slug"] for payer in data["payers"]] == [
        "aetna",
        "harbor-health-plan",
        "northwind-health",
    ]
    assert [(p["payer"], p["number"]) for p in data["policies"]] == [
        ("aetna", "0198"),
        ("aetna", "0325"),
        ("harbor-health-plan", "0712"),
        ("northwind-health", "1044"),
    ]
    therapy = data["policies"][1]
    assert therapy["related_policies"] == [["aetna", "0198"]]
    assert therapy["groups"][0]["rows"][2] == {
        "start_code": "97161",
        "end_code": "97163",
        "seventh_character": False,
        "is_addon": False,
        "description": "Physical therapy evaluation, low, moderate or high complexity",
        "position": 2,
    }
    assert data["procedures"][0]["code"] == ["cpt", "97546"]
    assert data["procedures"][0]["reviewed_by"] == "Dr Ada Reviewer"
    assert "id" not in json.dumps(list(data["policies"][0]))
    codes = [(code["system"], code["code"]) for code in data["codes"]]
    assert ("cpt", "99458") in codes
    assert codes == sorted(codes, key=lambda key: ({"cpt": 0}.get(key[0], 1), key))


def test_bulletin_codes_travel_and_official_codes_stay_out(content, tmp_path):
    Code.objects.filter(code="97110").update(code_set_year=2026)
    data = json.loads(export(tmp_path).read_text(encoding="utf-8"))
    by_key = {(code["system"], code["code"]): code for code in data["codes"]}
    assert ("cpt", "97110") not in by_key
    addon = by_key[("cpt", "97546")]
    assert addon["primary_codes"] == [["cpt", "97545"]]
    assert by_key[("cpt", "99458")]["source"] == "Northwind Health CPB 1044"


def test_importing_an_export_into_its_own_database_changes_nothing(content, tmp_path):
    path = export(tmp_path)
    before = pk_dump()
    summary = import_file(path)
    assert pk_dump() == before  # timestamps included
    assert "0 rows created, 0 updated, 0 tables written" in summary


def test_a_restore_after_losing_the_content_gives_the_same_file(content, tmp_path):
    first = export(tmp_path, "first.json")
    # Timestamps included; the save counter and reviewer's account are the site's.
    before = natural_dump(skip=("version", "reviewer"))
    flush_content(json.loads(first.read_text(encoding="utf-8")))
    assert not PolicyCode.objects.exists()

    import_file(first)
    second = export(tmp_path, "second.json")
    restored, original = without_export_time(second), without_export_time(first)
    history, kept = restored.pop("history"), original.pop("history")
    assert restored == original
    assert natural_dump(skip=("version", "reviewer")) == before
    # Every record of the file's history is back, and the restore's own writes
    # are recorded after them.
    for section, records in kept.items():
        assert history[section][: len(records)] == records
        assert len(history[section]) > len(records)


def test_the_history_travels_with_the_backup(content, tmp_path, client):
    procedure = Procedure.objects.get()
    procedure.purpose = "Words changed before the backup."
    procedure.save()
    before = [
        (record.history_date, record.history_type, record.purpose)
        for record in procedure.history.order_by("history_date")
    ]
    path = export(tmp_path)
    flush_content(json.loads(path.read_text(encoding="utf-8")))
    import_file(path)
    restored = Procedure.objects.get()
    after = [
        (record.history_date, record.history_type, record.purpose)
        for record in restored.history.order_by("history_date")
    ]
    assert after[: len(before)] == before
    assert "Words changed before the backup." in [purpose for *_, purpose in after]
    # Importing the same file again adds no record.
    count = restored.history.count()
    import_file(path)
    assert restored.history.count() == count


def test_nothing_is_removed_unless_replace_is_asked_for(content, tmp_path):
    path = export(tmp_path)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["policies"] = [p for p in data["policies"] if p["number"] != "1044"]
    data["payers"] = [p for p in data["payers"] if p["slug"] != "northwind-health"]
    path.write_text(json.dumps(data), encoding="utf-8")

    import_file(path)
    assert Policy.objects.filter(number="1044").exists()
    import_file(path, replace=True)
    assert not Policy.objects.filter(number="1044").exists()
    assert not Payer.objects.filter(slug="northwind-health").exists()
    assert Policy.objects.count() == 3


def test_a_changed_file_updates_the_rows_it_changes(content, tmp_path):
    path = export(tmp_path)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["policies"][0]["title"] = "Work Hardening and Conditioning"
    data["policies"][0]["groups"][1]["rows"][0]["description"] = "Back school"
    path.write_text(json.dumps(data), encoding="utf-8")
    untouched = Policy.objects.get(number="0325").updated_at

    import_file(path)
    policy = Policy.objects.get(number="0198")
    assert policy.title == "Work Hardening and Conditioning"
    assert PolicyCode.objects.get(start_code="S9117").description == "Back school"
    assert Policy.objects.get(number="0325").updated_at == untouched


def test_an_official_descriptor_is_not_overwritten_by_a_restore(content, tmp_path):
    path = export(tmp_path)
    Code.objects.filter(code="99458").update(
        descriptor="Official words", code_set_year=2026
    )
    import_file(path)
    assert Code.objects.get(code="99458").descriptor == "Official words"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "content.json:1: not valid JSON"),
        ('{"format": "something-else"}', "is not a carecodes-content file"),
        (
            '{"format": "carecodes-content", "version": 2}',
            "this site reads version 1 only",
        ),
    ],
)
def test_a_broken_or_unknown_file_is_refused(content, tmp_path, text, message):
    path = tmp_path / "content.json"
    path.write_text(text, encoding="utf-8")
    before = pk_dump()
    with pytest.raises(CommandError, match=message):
        import_file(path)
    assert pk_dump() == before


def test_a_file_of_the_wrong_shape_is_refused_with_every_place(content, tmp_path):
    path = export(tmp_path)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["policies"][1]["title"] = 42
    data["policies"][1]["status"] = "live"
    data["policies"][1]["groups"][0]["rows"][2]["end_code"] = "97100"
    data["procedures"][0]["reviewed_on"] = "yesterday"
    data["codes"] = "none"
    data["policies"][0]["title"] = "Changed, but the file is refused"
    path.write_text(json.dumps(data), encoding="utf-8")
    before = pk_dump()
    with pytest.raises(CommandError) as error:
        import_file(path)
    message = str(error.value)
    assert "nothing was written" in message
    assert "policies[1].title: should be text." in message
    assert (
        "policies[1].status: should be one of draft, published, withdrawn." in message
    )
    assert "policies[1].groups[0].rows[2]: The range ends (97100) before it starts" in (
        message
    )
    assert "procedures[0].reviewed_on: should be an ISO date" in message
    assert "codes: should be a list." in message
    assert pk_dump() == before


def test_export_writes_to_standard_output_without_a_file(content, capsys):
    call_command("export_content")
    assert json.loads(capsys.readouterr().out)["format"] == "carecodes-content"
