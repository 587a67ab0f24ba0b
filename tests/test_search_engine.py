"""The search engine's contract, run on whichever backend the test database uses."""

import io

import pytest
from django.core.management import call_command
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st

from index.models import SearchDocument, SearchWord
from index.search import Filters, search, suggest
from policies.models import Payer, Policy
from procedures.models import Code, Procedure, PublicationStatus

from .hostile_text import QUERIES

pytestmark = pytest.mark.django_db


def urls(results):
    return [hit.url for hit in results.hits]


def test_matches_are_counted_by_kind_for_the_filter_labels(sample_data):
    results = search("work hardening")
    assert results.counts == {"code": 1, "write-up": 1, "policy": 1}
    assert results.total == 3


def test_a_kind_filter_keeps_the_counts_of_the_other_kinds(sample_data):
    results = search("work hardening", Filters(kind="policy"))
    assert urls(results) == ["/policies/aetna/0198/"]
    assert results.total == 1
    assert results.counts["write-up"] == 1


def test_a_system_filter_leaves_only_codes_of_that_system(
    sample_data, django_assert_max_num_queries
):
    # Counting queries also formats the SQL for the log, which a stray % breaks.
    with django_assert_max_num_queries(4):
        results = search("encounter", Filters(system="icd-10-cm"), page=1)
    assert results.hits
    assert {hit.system for hit in results.hits} == {"icd-10-cm"}


def test_a_system_word_in_the_query_acts_as_a_filter(sample_data):
    results = search("ICD-10 fracture")
    assert "/codes/icd-10-cm/S52.501A/" in urls(results)
    assert {hit.system for hit in results.hits} == {"icd-10-cm"}
    assert results.filters.system == "icd-10-cm"


def test_pages_are_cut_in_order_and_the_page_number_is_clamped(sample_data):
    everything = urls(search("history", per_page=100))
    assert len(everything) > 3
    assert urls(search("history", page=2, per_page=2)) == everything[2:4]
    last = search("history", page=999, per_page=2)
    assert last.page == last.pages
    assert not last.has_next
    assert last.has_previous


def test_snippets_mark_the_matched_words_and_escape_the_rest(sample_data):
    hit = search("back school").hits[0]
    assert "<mark>" in hit.snippet
    code = Code.objects.get(code="S9117")
    with_markup = "Back school <script>alert(1)</script> per visit"
    code.descriptor = with_markup
    code.save()
    call_command("rebuild_search_index", verbosity=0)
    snippet = search("back school").hits[0].snippet
    # Escaped (SQLite) or dropped as markup (ts_headline), never live.
    assert "<mark>" in snippet
    assert snippet.replace("<mark>", "").replace("</mark>", "").count("<") == 0


def test_suggest_completes_codes_and_titles(sample_data):
    labels = [suggestion.label for suggestion in suggest("9754")]
    assert labels[0].startswith("97545 ")
    titles = [suggestion.url for suggestion in suggest("work hard")]
    assert "/policies/aetna/0198/" in titles
    assert len(suggest("e", limit=50)) <= 10


def test_drafts_never_appear(sample_data, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        Policy.objects.update(status=PublicationStatus.DRAFT)
        Policy.objects.get().save()
        Procedure.objects.get().save()  # still published
    assert "/policies/aetna/0198/" not in urls(search("work hardening"))
    assert search("CPB 198").total == 0


@pytest.fixture
def second_payer(sample_data, django_capture_on_commit_callbacks):
    """A draft policy on work hardening from a second payer."""
    with django_capture_on_commit_callbacks(execute=True):
        payer = Payer.objects.create(name="Cigna", slug="cigna")
        return Policy.objects.create(
            payer=payer, number="0123", title="Work hardening and conditioning"
        )


def test_publishing_a_draft_policy_makes_it_searchable_at_once(
    second_payer, django_capture_on_commit_callbacks
):
    assert "/policies/cigna/0123/" not in urls(search("work hardening"))
    with django_capture_on_commit_callbacks(execute=True):
        second_payer.status = PublicationStatus.PUBLISHED
        second_payer.save()
    assert "/policies/cigna/0123/" in urls(search("work hardening"))


def test_a_payer_filter_leaves_only_that_payers_policies(
    second_payer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        second_payer.status = PublicationStatus.PUBLISHED
        second_payer.save()
    assert urls(search("work hardening", Filters(payer="cigna"))) == [
        "/policies/cigna/0123/"
    ]
    assert urls(search("work hardening", Filters(payer="aetna"))) == [
        "/policies/aetna/0198/"
    ]
    # Codes and write-ups belong to no payer.
    assert search("work hardening", Filters(payer="cigna")).counts == {
        "code": 0,
        "write-up": 0,
        "policy": 1,
    }


def test_unpublishing_a_write_up_leaves_the_code_findable(
    sample_data, django_capture_on_commit_callbacks
):
    procedure = Procedure.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        procedure.status = PublicationStatus.DRAFT
        procedure.save()
    hit = search("97546").hits[0]
    assert hit.kind == "code"
    assert search("additional hour conditioning", Filters(kind="write-up")).total == 0
    with django_capture_on_commit_callbacks(execute=True):
        procedure.status = PublicationStatus.PUBLISHED
        procedure.save()
    assert search("97546").hits[0].kind == "write-up"


def test_saving_a_policy_title_is_searchable_at_once(
    sample_data, django_capture_on_commit_callbacks
):
    policy = Policy.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        policy.title = "Vocational rehabilitation programs"
        policy.save()
    assert urls(search("vocational rehabilitation"))[0] == "/policies/aetna/0198/"


def test_deleting_content_removes_it_from_the_index(
    sample_data, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        Code.objects.get(code="S9117").delete()
        Policy.objects.get().delete()
    assert search("back school").total == 0
    assert not SearchDocument.objects.filter(kind="policy").exists()


def test_a_bulk_import_signal_indexes_the_codes(
    sample_data, django_capture_on_commit_callbacks
):
    from procedures.signals import codes_bulk_saved

    new = Code.objects.bulk_create(
        [
            Code(
                system="cpt",
                code="97750",
                sort_key="97750",
                descriptor="Isokinetic dynamometry measurement",
            ),
        ]
    )
    assert search("isokinetic dynamometry").total == 0
    with django_capture_on_commit_callbacks(execute=True):
        codes_bulk_saved.send(sender=Code, system="cpt", ids=[new[0].pk])
    assert urls(search("isokinetic dynamometry")) == ["/codes/cpt/97750/"]


def test_rebuilding_gives_the_same_index(
    sample_data, django_capture_on_commit_callbacks
):
    # After saves, edits and deletes, the documents and the word list (with each
    # word's count of documents, which "did you mean" weighs) are what a rebuild
    # makes of the same content.
    with django_capture_on_commit_callbacks(execute=True):
        Code.objects.create(system="cpt", code="99199", descriptor="Zymurgy xenial")
        Code.objects.create(system="cpt", code="99198", descriptor="Zymurgy hardening")
        Code.objects.get(code="99198").delete()
        policy = Policy.objects.get()
        policy.title = "Work hardening and zymurgy"
        policy.save()
        Procedure.objects.update(status=PublicationStatus.DRAFT)
        Procedure.objects.get().save()

    def snapshot():
        return (
            list(SearchDocument.objects.order_by("id").values()),
            list(SearchWord.objects.order_by("word").values_list("word", "documents")),
        )

    before = snapshot()
    assert ("zymurgy", 2) in before[1]
    assert ("xenial", 1) in before[1]
    call_command("rebuild_search_index", verbosity=0)
    assert snapshot() == before


def test_a_long_texts_snippet_marks_the_words_found_deep_in_it(sample_data):
    # "Depression" first appears 1,600 characters into the policy: the snippet is
    # cut from there (PostgreSQL parses an excerpt, not the whole policy).
    policy = next(hit for hit in search("depression").hits if hit.kind == "policy")
    assert "<mark>depression</mark>" in policy.snippet.lower()
    # An excerpt may hold one word of the query and not the others: it is marked.
    writeup = next(
        hit
        for hit in search("functional capacity evaluation").hits
        if hit.kind == "write-up"
    )
    assert "<mark>functional</mark>" in writeup.snippet


def test_rebuilding_shows_its_progress(sample_data):
    out = io.StringIO()
    call_command("rebuild_search_index", stdout=out)
    total = Code.objects.count() + Policy.objects.published().count()
    lines = out.getvalue().splitlines()
    assert lines[0] == f"[{'-' * 30}] 0/{total:,}"
    assert lines[1] == f"[{'#' * 30}] {total:,}/{total:,}"
    assert lines[2].startswith(f"Indexed {SearchDocument.objects.count():,} documents")


def test_accents_do_not_matter(sample_data, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        Code.objects.create(
            system="icd-10-cm",
            code="M35.00",
            descriptor="Sjögren syndrome, unspecified",
        )
    assert "/codes/icd-10-cm/M35.00/" in urls(search("sjogren"))
    assert "/codes/icd-10-cm/M35.00/" in urls(search("Sjögren syndrome"))


def test_a_text_search_costs_a_fixed_number_of_queries(
    sample_data, django_assert_num_queries
):
    # The thesaurus rows the words can name (phrases with their codes' documents,
    # synonyms: one query); then SQLite counts the matches by kind through the
    # index, fetches the page's ids in rank order, then snippets for those rows;
    # PostgreSQL does all in one query, for any page and kind.
    with django_assert_num_queries(4 if connection.vendor == "sqlite" else 2):
        search("work hardening")
    with django_assert_num_queries(4 if connection.vendor == "sqlite" else 2):
        search("work hardening", Filters(kind="code"))
    with django_assert_num_queries(4 if connection.vendor == "sqlite" else 2):
        search("work hardening", page=2, per_page=1)


def test_a_misspelling_costs_a_fixed_number_of_queries(
    sample_data, django_assert_num_queries
):
    # The thesaurus rows, then, on PostgreSQL: the typed words' count, which finds
    # the unknown word's candidates too, then the corrected search. SQLite: the
    # count, the known words, the vocabulary's candidates, then the corrected search.
    with django_assert_num_queries(7 if connection.vendor == "sqlite" else 3):
        results = search("work hardning")
    assert results.suggestion == "work hardening"


def test_a_code_search_costs_a_fixed_number_of_queries(
    sample_data, django_assert_num_queries
):
    # The code, then the policy rows naming it with those policies' index rows.
    with django_assert_num_queries(2):
        search("S52.501A")


def test_a_code_no_policy_names_costs_one_query(
    sample_data, django_capture_on_commit_callbacks, django_assert_num_queries
):
    with django_capture_on_commit_callbacks(execute=True):
        Code.objects.create(
            system="icd-10-cm",
            code="M80.859K",
            descriptor="Other osteoporosis with current pathological fracture, "
            "unspecified lower leg, subsequent encounter for fracture with nonunion",
        )
    # The code's lookup also asks whether any policy's code table holds it; none
    # does, so the policies naming it are not looked for.
    with django_assert_num_queries(1):
        results = search("M80.859K")
    assert urls(results) == ["/codes/icd-10-cm/M80.859K/"]
    assert results.exact == "/codes/icd-10-cm/M80.859K/"


def test_hostile_text_gives_normal_results(sample_data):
    @settings(max_examples=200, deadline=None, database=None)
    @given(QUERIES, st.sampled_from(["", "code", "policy"]), st.integers(-5, 5))
    def check(text, kind, page):
        results = search(text, Filters(kind=kind), page=page)
        assert results.page >= 1
        assert results.total >= len(results.hits)
        suggest(text)

    check()
    assert search("x" * 2000).total == 0
    assert search("work hardening\x00" * 100).page == 1


def test_a_rolled_back_save_does_not_stop_later_saves_from_being_indexed(
    sample_data, django_capture_on_commit_callbacks
):
    from django.db import transaction

    code = Code.objects.get(code="S9117")
    with transaction.atomic():
        code.descriptor = "Rolled back descriptor"
        code.save()
        transaction.set_rollback(True)
    with django_capture_on_commit_callbacks(execute=True):
        code.refresh_from_db()
        code.descriptor = "Back school, per visit, in a group"
        code.save()
    assert urls(search("back school group")) == ["/codes/hcpcs/S9117/"]
