"""
The per-save refresh of similar codes reads a corpus cached in the process.

Every change is recorded in ``ContentChange`` rows; a process re-reads only what the
rows it has not applied name. Here "another process" is simulated by changing rows
directly and recording the change as that process's refresh would, while this
process's cache is warm: the refresh must bring the cache to what a fresh
``Corpus.load`` gives, and store for the codes it touches the lists ``compute`` gives
on that fresh corpus.
"""

import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from index import similar
from index.models import ContentChange, EmptySimilarList, SimilarCode
from policies.models import Policy, PolicyCode, PolicyCodeGroup, PolicyStatus
from procedures.models import Code, Procedure, PublicationStatus
from tests.test_similar_codes import add_fracture_policy, make_icd_subset

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _cold_cache():
    similar.forget()
    yield
    similar.forget()


@pytest.fixture
def corpus_db(db, django_capture_on_commit_callbacks):
    """A generated ICD-10-CM subset, the sample data, every list, a warm cache."""
    make_icd_subset()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("load_sample_data", verbosity=0, seeds_only=True)
    similar.rebuild()
    similar.refresh([code_id("97546")])  # loads the cache
    assert similar._cached.corpus is not None


def code_id(code):
    return Code.objects.get(code=code).pk


def normalised(corpus):
    """What a corpus means, without the order in which it was built up."""
    bags = {
        code_id: sorted((tuple(corpus.bags[bag]), place) for bag, place in entries)
        for code_id, entries in corpus.bag_of.items()
        if entries
    }
    text = corpus.text
    return {
        "codes": corpus.codes,
        "keys": corpus.keys,
        "ids": corpus.ids,
        "position": corpus.position,
        "by_key": corpus.by_key,
        "section_names": corpus.section_names,
        "primaries": {k: v for k, v in corpus.primaries.items() if v},
        "addons": {k: v for k, v in corpus.addons.items() if v},
        "policies": {k: v for k, v in corpus.policies.items() if v},
        # The order in which a pair's policies are scored, and their reasons listed.
        "policy_order": {k: list(v) for k, v in corpus.policies.items() if v},
        "large_rows": {k: v for k, v in corpus.large_rows.items() if v},
        "policy_names": corpus.policy_names,
        "row_display": corpus.row_display,
        "row_policy": corpus.row_policy,
        "bags": bags,
        "counts": text.counts,
        "frequency": {w: n for w, n in text.frequency.items() if n},
        "idf": text.idf,
        "postings": {w: set(ids) for w, ids in text.postings.items()},
        "lineage": {c: corpus.lineage_of(c) for c in corpus.codes},
    }


def refreshed_since(moment):
    return set(
        SimilarCode.objects.filter(computed_at__gte=moment).values_list(
            "code_id", flat=True
        )
    )


def stored(code_pk):
    return [
        (row.similar_id, row.score, row.reasons)
        for row in SimilarCode.objects.filter(code_id=code_pk).order_by("rank")
    ]


def assert_up_to_date(must_touch):
    """The cache is a fresh load, and each refreshed list is compute() on one."""
    fresh = similar.Corpus.load()
    cached = similar._cached.corpus
    assert normalised(cached) == normalised(fresh)
    # The word vectors kept from before are the ones the new weights give.
    assert cached.text._vectors
    for code_pk, vector in cached.text._vectors.items():
        assert vector == fresh.text.vector(code_pk)
    return fresh


def refresh_and_check(code_ids=(), policy_ids=(), must_touch=()):
    moment = timezone.now()
    loaded = similar._cached.corpus
    similar.refresh(code_ids, policy_ids)
    assert similar._cached.corpus is loaded, "the warm cache was reloaded"
    fresh = assert_up_to_date(must_touch)
    touched = refreshed_since(moment)
    assert set(must_touch) <= touched
    for code_pk in touched:
        expected = [
            (entry.similar_id, entry.score, entry.reasons)
            for entry in similar.compute(fresh, code_pk)
        ]
        assert stored(code_pk) == expected, Code.objects.get(pk=code_pk).code
    return touched


def listed(code):
    return [
        row.similar.code
        for row in SimilarCode.objects.filter(code__code=code).order_by("rank")
    ]


# --- Changes another process made -------------------------------------------------


def test_a_descriptor_edited_elsewhere_is_read_before_a_refresh_here(corpus_db):
    radius = code_id("S52.502A")
    Code.objects.filter(pk=radius).update(
        descriptor="Work hardening of the left radius, initial encounter"
    )
    similar.record_change(codes=[radius])  # what the other process's refresh does
    refresh_and_check([code_id("S52.501A")], must_touch=[code_id("S52.501A")])
    # Its own list, refreshed here, is worked out from the new wording.
    refresh_and_check([radius], must_touch=[radius])
    assert "hardening" in similar._cached.corpus.text.counts[radius]


def test_a_write_up_published_elsewhere_changes_the_word_weights_here(corpus_db):
    z923 = Code.objects.get(code="Z92.3")
    writeup = Procedure.objects.create(
        code=z923,
        title="Radiation history and work conditioning",
        summary="Conditioning after irradiation; work hardening hours.",
        status=PublicationStatus.DRAFT,
    )
    similar.record_change(codes=[z923.pk])
    refresh_and_check([code_id("97546")])
    before = similar._cached.corpus.text.idf["hardening"]
    Procedure.objects.filter(pk=writeup.pk).update(status=PublicationStatus.PUBLISHED)
    similar.record_change(codes=[z923.pk])
    refresh_and_check([code_id("S52.511A")])
    # "hardening" is in one more text now: its weight went down, exactly.
    assert similar._cached.corpus.text.idf["hardening"] < before
    refresh_and_check([z923.pk], must_touch=[z923.pk])
    assert any("“hardening”" in text for text in reasons_of("Z92.3", "97545"))


def reasons_of(code, other):
    row = SimilarCode.objects.get(code__code=code, similar__code=other)
    return [reason["text"] for reason in row.reasons]


def test_a_policy_code_table_changed_elsewhere_is_read_here(corpus_db):
    policy = Policy.objects.get(number="0198")
    icd = PolicyCodeGroup.objects.get(policy=policy, codes__start_code="Z51.89")
    PolicyCode.objects.create(group=icd, start_code="S52.601A", position=50)
    PolicyCode.objects.create(
        group=icd, start_code="S42.401A", end_code="S42.409A", position=51
    )
    PolicyCode.objects.filter(group__policy=policy, start_code="Z92.3").delete()
    similar.record_change(policies=[policy.pk])
    refresh_and_check([code_id("S52.501A")])
    # Here, the policy's own refresh: its codes are listed with the new rows.
    touched = refresh_and_check(policy_ids=[policy.pk])
    assert code_id("S52.601A") in touched
    assert reasons_of("Z51.89", "S52.601A")[0] == (
        "Listed in the same group of Aetna policy 0198 (Work Hardening Programs)"
    )


def test_a_policy_unpublished_elsewhere_leaves_the_cache(corpus_db):
    policy = Policy.objects.get(number="0198")
    Policy.objects.filter(pk=policy.pk).update(status=PolicyStatus.DRAFT)
    similar.record_change(policies=[policy.pk])
    refresh_and_check(policy_ids=[policy.pk], must_touch=[code_id("97546")])
    assert not similar._cached.corpus.policy_names
    assert "Listed in the same group" not in " ".join(reasons_of("97546", "97537"))


def test_a_policy_save_redoes_its_own_signals_as_a_full_load_would(corpus_db):
    # A second policy naming codes 0198 names too, with a large range of its own.
    aetna = Policy.objects.get(number="0198")
    other = add_fracture_policy()
    group = other.code_groups.get()
    touched = refresh_and_check(policy_ids=[other.pk])
    assert code_id("S52.501A") in touched
    assert reasons_of("Z51.89", "S52.501A")[0] == (
        "Listed in the same group of Aetna policy 0999 (Fracture rehabilitation)"
    )
    # 0198's 40,000-code range narrowed to the head and neck: its codes leave it,
    # and 0198 (the older policy) still comes first in a code named by both.
    large = PolicyCode.objects.get(group__policy=aetna, start_code="S00.00X")
    large.end_code = "S19.9XX"
    large.save()
    similar.record_change(policies=[aetna.pk])
    refresh_and_check(policy_ids=[aetna.pk], must_touch=[code_id("Z51.89")])
    cached = similar._cached.corpus
    assert list(cached.policies[code_id("Z51.89")]) == [aetna.pk, other.pk]
    assert cached.large_rows[code_id("S52.501A")] == {
        PolicyCode.objects.get(group=group, start_code="S52.00X").pk
    }
    # And the second policy unpublished: its signals go, 0198's stay.
    Policy.objects.filter(pk=other.pk).update(status=PolicyStatus.DRAFT)
    similar.record_change(policies=[other.pk])
    refresh_and_check(policy_ids=[other.pk])
    assert list(similar._cached.corpus.policies[code_id("Z51.89")]) == [aetna.pk]
    assert not similar._cached.corpus.large_rows.get(code_id("S52.501A"))


def test_codes_added_renamed_and_deleted_elsewhere_move_the_others(corpus_db):
    new = Code.objects.create(
        system="icd-10-cm",
        code="S52.503A",
        descriptor="Unspecified fracture of the lower end of unspecified radius, "
        "initial encounter for closed fracture",
        parent=Code.objects.get(code="S52.50"),
    )
    renamed = Code.objects.get(code="S62.109A")
    renamed.code = "S62.199A"
    renamed.save()
    gone = code_id("S42.402A")
    Code.objects.filter(pk=gone).delete()
    cpt = Code.objects.create(
        system="cpt", code="97550", descriptor="Caregiver training"
    )
    Code.objects.get(code="97546").primary_codes.add(cpt)
    similar.record_change(codes=[new.pk, renamed.pk, gone, cpt.pk, code_id("97546")])
    refresh_and_check([code_id("S52.501A")], must_touch=[code_id("S52.501A")])
    assert "S52.503A" in listed("S52.501A")
    refresh_and_check([cpt.pk], must_touch=[cpt.pk])
    assert reasons_of("97550", "97546")[0] == "Add-on code billed with this code"


def test_a_code_moved_into_a_large_range_elsewhere_counts_for_its_policy(corpus_db):
    # S52.501A is reached only through the seed's 40,000-code range: moving a code
    # into it changes which codes the range covers.
    moved = Code.objects.get(code="97537")
    Code.objects.filter(pk=moved.pk).update(
        system="icd-10-cm", code="S01.00XA", sort_key="S0100XA", section=None
    )
    similar.record_change(codes=[moved.pk])
    refresh_and_check([code_id("S52.501A")])
    assert moved.pk in similar._cached.corpus.large_rows


# --- Changes made here -------------------------------------------------------------


def test_saves_here_keep_the_cache_and_store_what_a_full_recompute_gives(
    corpus_db, django_capture_on_commit_callbacks
):
    corpus = similar._cached.corpus

    def saved(save, must_touch):
        moment = timezone.now()
        with django_capture_on_commit_callbacks(execute=True):
            save()
        assert similar._cached.corpus is corpus
        fresh = assert_up_to_date(must_touch)
        touched = refreshed_since(moment)
        assert set(must_touch) <= touched
        for code_pk in touched:
            assert stored(code_pk) == [
                (entry.similar_id, entry.score, entry.reasons)
                for entry in similar.compute(fresh, code_pk)
            ]

    code = Code.objects.get(code="S52.511A")
    code.descriptor = "Fracture of right radial styloid, work hardening afterwards"
    saved(code.save, [code.pk])
    writeup = Procedure(
        code=code,
        title="Wrist fracture care",
        summary="Splinting and conditioning.",
        status=PublicationStatus.PUBLISHED,
    )
    saved(writeup.save, [code.pk])
    group = PolicyCodeGroup.objects.get(policy__number="0198", system="cpt")

    def add_to_policy():
        Code.objects.create(system="cpt", code="97550", descriptor="Caregiver training")
        PolicyCode.objects.create(group=group, start_code="97550", position=9)

    saved(add_to_policy, [code_id("97546"), code_id("S9117")])


def test_a_warm_refresh_reads_only_the_changed_rows(
    corpus_db, django_assert_num_queries
):
    fracture = code_id("S52.501A")
    policy = Policy.objects.get(number="0198").pk
    # PostgreSQL takes the rows through COPY, which the count does not see.
    insert = 1 if connection.vendor == "sqlite" else 0
    # 1 record the change, 1 read the changes not applied yet, then the code's row,
    # the section names, its add-on links and its write-up (4); 1 the codes listing
    # it; in one transaction (savepoint and release: 2), 1 delete of lists, 1 of
    # empty marks and 1 insert of the new rows.
    with django_assert_num_queries(11 + insert):
        similar.refresh([fracture])
    # A policy save reads its code table (1), and finds the codes it names, before
    # and after, in the cache.
    with django_assert_num_queries(7 + insert):
        similar.refresh(policy_ids=[policy])


def test_a_rebuild_or_a_lost_anchor_makes_the_next_refresh_load_again(corpus_db):
    corpus = similar._cached.corpus
    similar.rebuild()  # records "everything", as a bulk import's rebuild does
    similar.refresh([code_id("97546")])
    assert similar._cached.corpus is not corpus
    corpus = similar._cached.corpus
    ContentChange.objects.all().delete()  # pruned, rolled back, another database
    similar.refresh([code_id("97546")])
    assert similar._cached.corpus is not corpus
    assert normalised(similar._cached.corpus) == normalised(similar.Corpus.load())


def test_old_change_rows_are_pruned(db, monkeypatch):
    monkeypatch.setattr(similar, "PRUNE_EVERY", 1)
    old = similar.record_change(codes=[1])
    ContentChange.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - similar.LOG_KEEP * 2
    )
    similar.record_change(codes=[2])
    assert list(ContentChange.objects.values_list("codes", flat=True)) == [[2]]


# --- Codes with nothing similar ------------------------------------------------------


@pytest.fixture
def lonely(sample_data, django_capture_on_commit_callbacks):
    """An ICD-10-PCS code, alone in its system: nothing is similar to it."""
    with django_capture_on_commit_callbacks(execute=True):
        return Code.objects.create(
            system="icd-10-pcs", code="0016070", descriptor="Bypass of ventricle"
        )


def test_a_code_with_nothing_similar_is_remembered_as_computed(
    lonely, django_assert_num_queries
):
    assert EmptySimilarList.objects.filter(code=lonely).exists()
    assert not SimilarCode.objects.filter(code=lonely).exists()
    call_command("rebuild_similar_codes", verbosity=0)
    assert list(EmptySimilarList.objects.values_list("code_id", flat=True)) == [
        lonely.pk
    ]
    out = io.StringIO()
    # --missing (make run) asks one question and reads nothing else.
    with django_assert_num_queries(1):
        call_command("rebuild_similar_codes", "--missing", stdout=out, stderr=out)
    assert "for 0 codes" in out.getvalue()


def test_a_code_that_gets_a_neighbour_loses_its_empty_mark(
    lonely, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        Code.objects.create(
            system="icd-10-pcs", code="0016071", descriptor="Bypass of ventricle"
        )
    assert listed("0016070") == ["0016071"]
    assert not EmptySimilarList.objects.exists()


def test_missing_still_fills_in_a_code_never_computed(lonely):
    EmptySimilarList.objects.all().delete()
    out = io.StringIO()
    call_command("rebuild_similar_codes", "--missing", stdout=out, stderr=out)
    assert "for 1 code in" in out.getvalue()
    assert EmptySimilarList.objects.filter(code=lonely).exists()
