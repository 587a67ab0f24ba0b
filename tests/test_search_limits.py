"""
Very common words: counting and ranking stop at a bound on either backend, and what
a person sees stays whole and stable. The bounds are made small here so that a few
codes stand in for the 39,000 matches of "encounter".
"""

import itertools

import pytest
from django.db import connection
from hypothesis import given
from hypothesis import strategies as st

from index.search import search
from index.search.engine import _edit_distance, _one_edit_away, backend
from procedures.models import Code

pytestmark = pytest.mark.django_db

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL's own settings"
)


@pytest.fixture
def common_word(sample_data, django_capture_on_commit_callbacks, monkeypatch):
    """Thirty codes more that say "work", and bounds far below them."""
    with django_capture_on_commit_callbacks(execute=True):
        for number in range(30):
            Code.objects.create(
                system="cpt",
                code=f"{99100 + number}",
                descriptor=f"Work capacity step {number}",
            )
    engine = backend()
    monkeypatch.setattr(engine, "COUNT_LIMIT", 10)
    if hasattr(engine, "WINDOW"):
        monkeypatch.setattr(engine, "WINDOW", 6)
    return "work"


def all_pages(query, per_page=4):
    first = search(query, per_page=per_page)
    seen = [hit.url for hit in first.hits]
    for number in range(2, first.pages + 1):
        seen += [hit.url for hit in search(query, page=number, per_page=per_page).hits]
    return first, seen


def test_the_policy_and_the_write_up_are_ranked_among_many_codes(common_word):
    # The ranked window holds the pages (policies and write-ups) whatever their
    # number in table order: a page never waits behind codes listed unranked.
    results = search(common_word, per_page=6)
    assert f"More than {results.total} matches" in results.notice
    kinds = {hit.kind for hit in results.hits}
    assert {"policy", "write-up"} <= kinds


def test_every_counted_match_is_shown_once_across_the_pages(common_word):
    first, seen = all_pages(common_word)
    assert first.total >= 10
    assert len(seen) == first.total
    assert len(set(seen)) == len(seen)


def test_the_same_search_gives_the_same_pages(common_word):
    assert all_pages(common_word)[1] == all_pages(common_word)[1]


def test_a_kind_filter_pages_through_its_own_matches(common_word):
    from index.search import Filters

    codes = search(common_word, Filters(kind="code"), per_page=100)
    assert codes.hits
    assert {hit.kind for hit in codes.hits} == {"code"}
    assert len(codes.hits) == codes.total


def test_the_page_read_with_the_count_is_the_page_read_alone(common_word, monkeypatch):
    # PostgreSQL reads the expected page in the counting query; a page it did not
    # expect is read on its own. Both give the same hits, snippets included.
    from index.search import engine

    def pages():
        return [
            [
                (hit.url, hit.snippet)
                for hit in search(common_word, page=n, per_page=4).hits
            ]
            for n in (1, 2, 3)
        ]

    expected = pages()
    shown = engine._shown
    monkeypatch.setattr(
        engine, "_shown", lambda kind, before, offset, limit: shown(kind, 0, 0, 1)
    )
    assert pages() == expected
    assert all(expected)


def osa(a, b):
    """Optimal string alignment distance, the textbook way."""
    table = [
        [i + j if i * j == 0 else 0 for j in range(len(b) + 1)]
        for i in range(len(a) + 1)
    ]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = min(
                table[i - 1][j] + 1,
                table[i][j - 1] + 1,
                table[i - 1][j - 1] + (a[i - 1] != b[j - 1]),
            )
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1)
    return table[-1][-1]


@given(st.text("abcde", max_size=9), st.text("abcde", max_size=9), st.integers(0, 3))
def test_the_bounded_edit_distance_stops_early_without_changing_the_answer(a, b, bound):
    assert _edit_distance(a, b, bound) == min(osa(a, b), bound + 1)


@given(st.text("abc", min_size=1, max_size=4))
def test_one_edit_away_lists_exactly_the_words_at_one_edit(word):
    near = set(_one_edit_away(word))
    assert all(osa(word, other) == 1 for other in near)
    # Complete over a small alphabet: every string there at one edit is listed.
    others = {
        "".join(letters)
        for size in range(len(word) - 1, len(word) + 2)
        for letters in itertools.product("abc", repeat=size)
    }
    assert {other for other in others if osa(word, other) == 1} <= near


@postgres_only
def test_postgres_says_more_than_only_when_pages_or_codes_were_cut_short(
    sample_data, monkeypatch
):
    # Two pages and a code: three matches, and neither kind stopped at three.
    monkeypatch.setattr(backend(), "COUNT_LIMIT", 3)
    results = search("work hardening")
    assert results.counts == {"policy": 1, "write-up": 1, "code": 1}
    assert "More than" not in results.notice
    # One page of two read, and the code.
    monkeypatch.setattr(backend(), "COUNT_LIMIT", 1)
    assert "More than 2 matches" in search("work hardening").notice


@postgres_only
def test_postgres_scans_start_at_the_first_page_and_run_in_one_process():
    # The first matches in table order are the same rows on every request.
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronize_seqscans")
        assert cursor.fetchone() == ("off",)
        cursor.execute("SHOW max_parallel_workers_per_gather")
        assert cursor.fetchone() == ("0",)


@postgres_only
def test_postgres_gin_indexes_keep_no_long_pending_list():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reloptions FROM pg_class WHERE relname IN "
            "('search_word_trgm_idx', 'search_page_vector_idx', "
            "'search_code_vector_idx')"
        )
        options = dict(cursor.fetchall())
    assert options["search_word_trgm_idx"] == ["fastupdate=off"]
    assert options["search_page_vector_idx"] == ["fastupdate=off"]
    assert options["search_code_vector_idx"] == ["gin_pending_list_limit=128"]


@postgres_only
def test_postgres_plans_a_search_once_per_connection(sample_data):
    # Parsing and planning were most of a search's time; the plan does not depend
    # on the words, so one serves them all. The ORM's queries stay unprepared.
    def prepared():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT statement, generic_plans, custom_plans "
                "FROM pg_prepared_statements"
            )
            return cursor.fetchall()

    for query in ("work hardening", "school", "work hardning", "aetna"):
        search(query)
    Code.objects.filter(code="97546").exists()
    texts = prepared()
    # The text search, and the thesaurus rows the words can name.
    assert {statement.split()[1] for statement, *_ in texts} == {"0,", "matching"}
    assert sum(generic for _s, generic, _c in texts) == 5 + 4
    assert all(custom == 0 for *_s, custom in texts)
    # A code's lookup by its key is prepared; the policies naming it are read by
    # the code page's own ORM query (PolicyCode.objects.mentions_of_codes).
    search("S52.501A")
    assert len(prepared()) == len(texts) + 1


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_postgres_rebuild_leaves_every_row_marked_visible(sample_data):
    # VACUUM after the rebuild, so that the first searches do not mark the new rows
    # as seen by all, page by page.
    from index.search.indexing import rebuild

    rebuild()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relpages, relallvisible FROM pg_class "
            "WHERE relname = 'search_searchdocument'"
        )
        pages, visible = cursor.fetchone()
    assert pages > 0
    assert visible == pages


@postgres_only
def test_postgres_indexes_pages_and_codes_apart_at_the_first_code_id():
    # Each branch of postgres.matches reads only its own kind's index entries.
    from index.search.postgres import CODES_FROM

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE tablename = 'search_searchdocument' AND indexdef LIKE '%%gin%%'"
        )
        indexes = dict(cursor.fetchall())
    assert sorted(indexes) == ["search_code_vector_idx", "search_page_vector_idx"]
    assert f"(id < '{CODES_FROM}'" in indexes["search_page_vector_idx"]
    assert f"(id >= '{CODES_FROM}'" in indexes["search_code_vector_idx"]


@postgres_only
def test_postgres_rebuild_writes_codes_in_id_order(common_word):
    from django.core.management import call_command

    from index.search.postgres import CODES_FROM

    call_command("rebuild_search_index", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM search_searchdocument WHERE id >= %s ORDER BY ctid",
            [CODES_FROM],
        )
        in_table_order = [found for (found,) in cursor.fetchall()]
    assert in_table_order == sorted(in_table_order)
