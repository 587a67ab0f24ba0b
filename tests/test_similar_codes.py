"""Similar codes: the ranking, its reasons, the stored lists and how they keep up."""

import io

import pytest
from django.core.management import CommandError, call_command

from index import similar
from index.models import SimilarCode
from policies.models import (
    Coverage,
    Policy,
    PolicyCode,
    PolicyCodeGroup,
    PolicyStatus,
)
from procedures.models import Code, Procedure, PublicationStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored(db, django_capture_on_commit_callbacks):
    """The sample data, its similar codes worked out as the load commits."""
    with django_capture_on_commit_callbacks(execute=True):
        call_command("load_sample_data", verbosity=0, seeds_only=True)


def listed(code, system=None):
    rows = SimilarCode.objects.filter(code__code=code).select_related("similar")
    if system:
        rows = rows.filter(code__system=system)
    return [row.similar.code for row in rows.order_by("rank")]


def reasons(code, other):
    row = SimilarCode.objects.get(code__code=code, similar__code=other)
    return [reason["text"] for reason in row.reasons]


def test_97546_lists_its_primary_code_first_and_97537_in_its_top_three(stored):
    top = listed("97546")
    assert top[0] == "97545"
    assert "97537" in top[:3]


def test_the_reasons_say_why_in_plain_words(stored):
    assert reasons("97546", "97545")[0] == "Primary code of this add-on code"
    assert reasons("97545", "97546")[0] == "Add-on code billed with this code"
    assert reasons("97546", "97537")[0] == (
        "Listed in the same group of Aetna policy 0198 (Work Hardening Programs)"
    )
    assert "Listed in Aetna policy 0198 (Work Hardening Programs)" in reasons(
        "97546", "S9117"
    )
    assert reasons("S9117", "Z85.9") == [
        "Named in Aetna policy 0198 (Work Hardening Programs), "
        "Z85.9 through the range Z85.00 - Z85.9"
    ]


def test_s9117_lists_the_codes_of_cpb_0198(stored):
    named = set()
    for row in PolicyCode.objects.filter(group__policy__number="0198"):
        named |= set(
            Code.objects.filter(
                system=row.system,
                sort_key__gte=row.start_key,
                sort_key__lte=row.end_key,
            ).values_list("code", flat=True)
        )
    named.discard("S9117")
    top = listed("S9117")
    assert set(top) == named
    # Codes the policy lists by themselves come before codes it reaches by a range.
    assert set(top[:7]) == {
        "97537",
        "97545",
        "97546",
        "Z51.89",
        "Z86.19",
        "Z86.59",
        "Z92.3",
    }


def test_a_code_never_lists_itself(stored):
    assert SimilarCode.objects.exists()
    for code_id, similar_id in SimilarCode.objects.values_list("code_id", "similar_id"):
        assert code_id != similar_id


# --- A generated ICD-10-CM subset ------------------------------------------------

SEVENTH = {
    "A": "initial encounter for closed fracture",
    "B": "initial encounter for open fracture type I or II",
    "C": "initial encounter for open fracture type IIIA, IIIB, or IIIC",
    "D": "subsequent encounter for closed fracture with routine healing",
    "G": "subsequent encounter for closed fracture with delayed healing",
    "K": "subsequent encounter for closed fracture with nonunion",
    "P": "subsequent encounter for closed fracture with malunion",
    "S": "sequela",
}
# Subcategory -> what it fractures; the sides are the sixth character.
FAMILIES = {
    "S52.50": "Unspecified fracture of the lower end of {side} radius",
    "S52.51": "Fracture of {side} radial styloid process",
    "S52.60": "Unspecified fracture of lower end of {side} ulna",
    "S42.40": "Unspecified fracture of lower end of {side} humerus",
    "S62.10": "Fracture of unspecified carpal bone, {side} wrist",
}
SIDES = {"1": "right", "2": "left", "9": "unspecified"}


def make_icd_subset(with_parents=True):
    """S52.501A and its relatives, built as the ICD-10-CM importer would."""

    def add(code, descriptor, parent=None, billable=False):
        return Code.objects.create(
            system="icd-10-cm",
            code=code,
            descriptor=descriptor,
            parent=parent if with_parents else None,
            is_billable=billable,
            code_set_year=2026,
        )

    broader = {}
    for family, text in FAMILIES.items():
        general = text.format(side="").replace("  ", " ")
        for code in (family[:3], family[:5]):
            if code not in broader:
                above = broader.get(code[:3]) if len(code) > 3 else None
                broader[code] = add(code, f"Injury of {code}: {general}", above)
        parent = add(family, general, broader[family[:5]])
        for digit, side in SIDES.items():
            base = add(family + digit, text.format(side=side), parent)
            for letter, encounter in SEVENTH.items():
                add(
                    f"{family}{digit}{letter}",
                    f"{text.format(side=side)}, {encounter}",
                    base,
                    billable=True,
                )


@pytest.mark.parametrize("with_parents", [True, False], ids=["parents", "text-only"])
def test_a_fracture_lists_its_encounters_and_neighbours_before_other_families(
    db, with_parents, monkeypatch
):
    # The 27 other codes of S52.50 fill the usual 20 places; 60 reach past them.
    monkeypatch.setattr(similar, "MAX_SIMILAR", 60)
    make_icd_subset(with_parents)
    similar.rebuild()
    top = listed("S52.501A")
    for wanted in ("S52.501D", "S52.501S", "S52.502A", "S52.511A", "S52.601A"):
        assert wanted in top
    family = [i for i, code in enumerate(top) if code.startswith("S52.50")]
    outside = [i for i, code in enumerate(top) if not code.startswith("S52.50")]
    assert len(family) == 27 and outside
    assert max(family) < min(outside)
    assert "S52.501A" not in top
    assert reasons("S52.501A", "S52.501D")[0] == (
        "Same code, another 7th character: S52.501"
    )
    assert reasons("S52.501A", "S52.502A")[0] == "Same subcategory: S52.50"


def add_fracture_policy():
    """
    A second published Aetna policy listing S52.501A and Z51.89 (which 0198 lists
    too), with a large range of its own inside 0198's S00.00X+ - T88.9XX+.
    """
    aetna = Policy.objects.get(number="0198")
    policy = Policy.objects.create(
        payer=aetna.payer,
        number="0999",
        title="Fracture rehabilitation",
        status=PolicyStatus.PUBLISHED,
    )
    group = PolicyCodeGroup.objects.create(
        policy=policy,
        heading="ICD-10-CM codes covered if selection criteria are met",
        coverage=Coverage.CRITERIA,
        system="icd-10-cm",
    )
    rows = [("S52.501A", ""), ("Z51.89", ""), ("S52.00X+", "S52.9XX+")]
    for position, (start, end) in enumerate(rows):
        PolicyCode.objects.create(
            group=group, start_code=start, end_code=end, position=position
        )
    return policy


def test_the_bulk_rebuild_scores_large_ranges_as_one_code_at_a_time(
    db, django_capture_on_commit_callbacks, monkeypatch
):
    # Codes inside both large ranges, inside one only, listed as well: the arrays
    # give the pairs inside the same ranges their weight without asking _policy.
    make_icd_subset()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("load_sample_data", verbosity=0, seeds_only=True)
    add_fracture_policy()
    monkeypatch.setattr(similar, "FEW", 0)
    corpus = similar.Corpus.load()
    assert len({frozenset(rows) for rows in corpus.large_rows.values()}) == 2
    similar.rebuild()
    for row in Code.objects.all():
        expected = [
            (entry.similar_id, entry.score, entry.reasons)
            for entry in similar.compute(corpus, row.pk)
        ]
        stored_rows = SimilarCode.objects.filter(code=row).order_by("rank")
        assert [(r.similar_id, r.score, r.reasons) for r in stored_rows] == expected
    assert reasons("S52.601A", "S52.602A")[-1] == (
        "Both inside the range S00.00X+ - T88.9XX+ of Aetna policy 0198 (Work "
        "Hardening Programs)"
    )


def test_a_draft_write_up_never_shows_in_reasons(sample_data):
    for code in ("S9117", "Z92.3"):
        Procedure.objects.create(
            code=Code.objects.get(code=code),
            title="Zygomorphic quokka splinting",
            summary="Quokka zygomorphic splint for the wrist.",
            status=PublicationStatus.DRAFT,
        )
    similar.rebuild()
    texts = [r["text"] for row in SimilarCode.objects.all() for r in row.reasons]
    assert not any("quokka" in text or "zygomorphic" in text for text in texts)
    # Published, the same text is a reason: the check above is not vacuous.
    Procedure.objects.filter(code__code__in=["S9117", "Z92.3"]).update(
        status=PublicationStatus.PUBLISHED
    )
    similar.rebuild()
    assert any("quokka" in text for text in reasons("S9117", "Z92.3"))


# --- Keeping the lists current -----------------------------------------------------


@pytest.fixture
def new_code(stored, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return Code.objects.create(
            system="cpt", code="97550", descriptor="Caregiver training session"
        )


def test_a_new_code_appears_in_its_neighbours_lists(new_code):
    assert "97550" in listed("97546")
    assert reasons("97546", "97550")[0] == "Next to it in the code set"
    assert listed("97550")


def test_publishing_and_unpublishing_a_write_up_changes_the_wording_reasons(
    new_code, django_capture_on_commit_callbacks
):
    writeup = Procedure(
        code=new_code,
        title="Work hardening and conditioning for caregivers",
        summary="Work hardening and conditioning, initial hours.",
        status=PublicationStatus.DRAFT,
    )
    with django_capture_on_commit_callbacks(execute=True):
        writeup.save()
    assert not any(
        text.startswith("Similar wording") for text in reasons("97545", "97550")
    )
    writeup.status = PublicationStatus.PUBLISHED
    with django_capture_on_commit_callbacks(execute=True):
        writeup.save()
    assert any(text.startswith("Similar wording") for text in reasons("97545", "97550"))
    writeup.status = PublicationStatus.DRAFT
    with django_capture_on_commit_callbacks(execute=True):
        writeup.save()
    assert not any(
        text.startswith("Similar wording") for text in reasons("97545", "97550")
    )


def test_a_code_added_to_a_policy_group_is_listed_with_its_group(
    new_code, django_capture_on_commit_callbacks
):
    assert "Listed in the same group" not in " ".join(reasons("97545", "97550"))
    group = PolicyCodeGroup.objects.get(policy__number="0198", system="cpt")
    with django_capture_on_commit_callbacks(execute=True):
        PolicyCode.objects.create(group=group, start_code="97550", position=9)
    assert reasons("97545", "97550")[0] == (
        "Listed in the same group of Aetna policy 0198 (Work Hardening Programs)"
    )
    with django_capture_on_commit_callbacks(execute=True):
        PolicyCode.objects.get(start_code="97550").delete()
    assert "Listed in the same group" not in " ".join(reasons("97545", "97550"))


def test_a_deleted_code_leaves_the_lists_that_named_it(
    new_code, django_capture_on_commit_callbacks
):
    assert "97550" in listed("97546")
    with django_capture_on_commit_callbacks(execute=True):
        new_code.delete()
    top = listed("97546")
    assert "97550" not in top
    assert top[:1] == ["97545"] and len(top) == len(set(top))


def test_a_large_bulk_save_waits_for_the_rebuild(stored, caplog):
    from procedures.signals import codes_bulk_saved

    codes_bulk_saved.send(sender=Code, system="icd-10-cm", ids=range(5000))
    assert "rebuild_similar_codes" in caplog.text


# --- The command -------------------------------------------------------------------


def snapshot():
    return list(
        SimilarCode.objects.order_by("code_id", "rank").values_list(
            "code_id", "similar_id", "rank", "score", "reasons"
        )
    )


def test_the_command_is_idempotent(sample_data):
    call_command("rebuild_similar_codes", verbosity=0)
    first = snapshot()
    assert first
    call_command("rebuild_similar_codes", verbosity=0)
    assert snapshot() == first


def test_the_command_shows_progress_unless_asked_to_be_quiet(sample_data):
    out, err = io.StringIO(), io.StringIO()
    call_command("rebuild_similar_codes", stdout=out, stderr=err)
    assert "100% 18/18" in err.getvalue()
    assert "for 18 codes" in out.getvalue()
    out, err = io.StringIO(), io.StringIO()
    call_command("rebuild_similar_codes", verbosity=0, stdout=out, stderr=err)
    assert out.getvalue() == err.getvalue() == ""


def test_the_command_can_rebuild_one_system(sample_data):
    SimilarCode.objects.all().delete()
    call_command("rebuild_similar_codes", "--system", "cpt", verbosity=0)
    assert set(SimilarCode.objects.values_list("code__system", flat=True)) == {"cpt"}


def test_the_command_can_fill_in_only_the_missing_lists(sample_data):
    call_command("rebuild_similar_codes", verbosity=0)
    before = snapshot()
    SimilarCode.objects.filter(code__code="97546").delete()
    out = io.StringIO()
    call_command("rebuild_similar_codes", "--missing", stdout=out, stderr=io.StringIO())
    assert "for 1 code in" in out.getvalue()
    assert [row[1:] for row in snapshot()] == [row[1:] for row in before]


def test_the_command_refuses_an_unknown_system(sample_data):
    with pytest.raises(CommandError, match="not a code system"):
        call_command("rebuild_similar_codes", "--system", "icd-9", verbosity=0)


def test_a_bulk_icd10cm_import_leaves_no_stale_list(
    stored, django_capture_on_commit_callbacks
):
    # The sample data's S52.501A was listed when only a score of codes existed: its
    # list named other codes of the same policy. A slice of the real ICD-10-CM set
    # brings its family, and the import recomputes what it may have changed.
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_icd10cm", categories=["S52", "Z47"], verbosity=0)
    top = listed("S52.501A", "icd-10-cm")
    assert {"S52.501D", "S52.501S", "S52.502A"} <= set(top)
    outside = [i for i, code in enumerate(top) if not code.startswith("S52.5")]
    last_family = max(top.index(code) for code in ("S52.501D", "S52.501S", "S52.502A"))
    assert not outside or last_family < outside[0], top
    assert SimilarCode.objects.filter(code__code="S52.501A").count() == (
        similar.MAX_SIMILAR
    )


def test_the_bulk_rebuild_stores_what_one_code_at_a_time_stores(stored, monkeypatch):
    # rebuild() ranks every code's candidates at once, in arrays; compute() ranks one
    # code's in Python, as a save refreshes it. Both give the same list and reasons.
    monkeypatch.setattr(similar, "FEW", 0)  # the arrays even for the sample's codes
    corpus = similar.Corpus.load()
    similar.rebuild()
    for row in Code.objects.all():
        expected = similar.compute(corpus, row.pk)
        stored_rows = list(SimilarCode.objects.filter(code=row).order_by("rank"))
        assert [
            (entry.similar_id, entry.score, entry.reasons) for entry in expected
        ] == [(r.similar_id, r.score, r.reasons) for r in stored_rows], row.code
