"""
People find codes in their own words, on either search backend: lay phrases reach
their codes, synonyms widen the words, a sentence that matches nothing as a whole is
searched by its meaningful words, and a general query finds the general code first.

The codes are real FY2026 ICD-10-CM categories (a slice of the set), the thesaurus is
the project's own CSV files, loaded as ``make run`` loads them.
"""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from index.search import search, suggest
from index.search.engine import _closest
from procedures import lay_terms
from procedures.models import LayTerm, LayTermTarget

pytestmark = pytest.mark.django_db

CATEGORIES = [
    "S42", "S52", "H53", "H50", "M51", "M50", "B00", "H93", "A08", "A09", "I21",
    "I22", "I25", "E11", "E10", "J45", "J82", "F32", "F33", "F53", "P91", "K64",
    "O22", "O87", "K21", "M54", "R07",
]  # fmt: skip


@pytest.fixture(scope="module")
def thesaurus(django_db_setup, django_db_blocker):
    """The slice and the whole thesaurus, once for the module (rolled back after)."""
    with django_db_blocker.unblock():
        from django.db import transaction

        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            call_command("load_sample_data", verbosity=0)
            call_command("import_icd10cm", categories=CATEGORIES, stdout=StringIO())
            # The import's change queue writes the index on commit: flush it here.
            from index import changes

            changes.flush()
            loaded = lay_terms.load_thesaurus(
                lay_terms.default_paths(), lay_terms.SYNONYMS_FILE
            )
            yield loaded
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def codes_of(query, count=20):
    return [hit.code for hit in search(query, per_page=count).hits]


@pytest.mark.parametrize(
    ("query", "wanted"),
    [
        ("broken arm", {"S42", "S52"}),
        ("lazy eye", {"H53.0", "H50"}),
        ("slipped disc", {"M51.2", "M50.2"}),
        ("cold sore", {"B00.1"}),
        ("ringing in the ears", {"H93.1"}),
        ("stomach flu", {"A08.4", "A09"}),
        ("Heart Attack", {"I21", "I22"}),
    ],
)
def test_a_lay_phrase_finds_its_code_first_and_says_why(thesaurus, query, wanted):
    hits = search(query).hits
    assert hits, query
    assert hits[0].code in wanted
    assert hits[0].reason == f"Also called “{query.lower()}”"


def test_a_phrase_inside_a_sentence_still_reaches_its_code(thesaurus):
    # All the words together match no descriptor.
    assert codes_of("my son has a lazy eye")[0] in {"H53.0", "H50"}


def test_the_phrase_as_typed_wins_over_its_singular(thesaurus):
    # A staff row for the plural, meaning something else than the singular's
    # (I21 first): the phrase as typed answers, whatever order the rows come in.
    term = LayTerm.objects.create(phrase="heart attacks", kind="condition")
    LayTermTarget.objects.create(term=term, system="icd-10-cm", code="I22")
    hits = search("heart attacks").hits
    assert (hits[0].code, hits[0].reason) == ("I22", "Also called “heart attacks”")
    assert search("heart attack").hits[0].code == "I21"


def test_a_synonym_widens_the_words_broken_finds_fractures(thesaurus):
    # No phrase "broken radius": "broken" also means "fracture".
    hits = search("broken radius").hits
    assert hits
    assert all("fracture" in hit.title.lower() for hit in hits[:5])
    assert hits[0].code.startswith("S52")


def test_a_sentence_that_matches_nothing_is_searched_by_its_meaningful_words(
    thesaurus,
):
    results = search("my reflux keeps getting worse after dinner")
    assert results.notice == "Showing results for some of your words: reflux"
    assert results.hits[0].code == "K21"


def test_the_back_pain_sentence_finds_low_back_pain(thesaurus):
    assert "M54.5" in codes_of("the pain in my lower back keeps getting worse")[:3]


def test_words_that_match_together_are_not_relaxed(thesaurus):
    assert "some of your words" not in search("low back pain").notice


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("type 2 diabetes", {"E11", "E11.9"}),
        ("asthma", {"J45"}),
        ("depression", {"F32.A", "F32.9", "F32"}),
    ],
)
def test_a_general_query_finds_the_general_code_first(thesaurus, query, first):
    assert codes_of(query)[0] in first


def test_pregnancy_and_newborn_codes_do_not_lead_unless_the_query_says_so(
    thesaurus,
):
    depression = codes_of("depression")
    assert depression.index("F32.A") < depression.index("F53.0")
    assert "P91.4" not in depression[:5]
    hemorrhoids = codes_of("hemorroids")
    assert hemorrhoids.index("K64") < hemorrhoids.index("O22.4")
    assert codes_of("hemorrhoids in pregnancy")[0].startswith("O22")


@pytest.mark.parametrize(
    "query",
    ["gastro-esophageal reflux", "gastroesophageal reflux", "gastro esophageal reflux"],
)
def test_each_way_of_writing_a_compound_finds_k21(thesaurus, query):
    assert codes_of(query)[0] == "K21"


def test_suggest_offers_lay_phrases_with_their_main_code(thesaurus, client):
    labels = [item.label for item in suggest("heart at")]
    assert labels[0] == "Heart attack — I21 Acute myocardial infarction"
    response = client.get("/search/suggest/", {"q": "heart at"})
    first = response.json()["suggestions"][0]
    assert first["url"] == "/codes/icd-10-cm/I21/"


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's query plan")
def test_suggest_reads_the_phrases_in_range_first_not_every_document(thesaurus):
    # Without statistics, SQLite began the phrase lookup at the documents (every
    # code, by kind) and joined the thesaurus to each: 52 s for "diab" on a
    # make-run database, where the phrases in range come to a handful.
    with CaptureQueriesContext(connection) as captured:
        suggest("diab")
    [lookup] = [
        query["sql"]
        for query in captured.captured_queries
        if "procedures_layterm " in query["sql"]
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {lookup}")
        steps = [str(row[-1]) for row in cursor.fetchall()]
    searches = [step for step in steps if step.startswith(("SEARCH", "SCAN"))]
    assert searches[0].startswith("SEARCH t USING COVERING INDEX")
    assert "phrase>? AND phrase<?" in searches[0]
    assert "SEARCH d USING INDEX searchdoc_key_idx (system=? AND sort_key=?)" in steps


def test_the_results_page_says_how_a_sentence_was_read(thesaurus, client):
    response = client.get("/search/", {"q": "my reflux keeps getting worse"})
    assert response.status_code == 200
    assert "Showing results for some of your words" in response.text


def test_spelling_correction_prefers_the_word_in_most_documents():
    # "harm", "heart" and "hard" are each one edit from "hart".
    assert _closest("hart", [("harm", 5), ("heart", 90), ("hard", 10)], 1) == "heart"
    assert _closest("hart", [("harm", 5), ("hard", 10)], 1) == "hard"


def test_a_lay_search_costs_a_fixed_number_of_queries(
    thesaurus, django_assert_num_queries
):
    # The thesaurus rows with their codes' documents, then the full text: SQLite
    # counts, ranks and reads snippets; PostgreSQL does all in one query.
    text = 3 if connection.vendor == "sqlite" else 1
    with django_assert_num_queries(1 + text):
        search("lazy eye")
    # A phrase that is only part of the query: one lookup whether all the words
    # match; the "2" is looked up as a policy number too.
    with django_assert_num_queries(3 + text):
        search("type 2 diabetes mellitus without complications")


def test_a_suggestion_costs_one_query_for_the_phrases(
    thesaurus, django_assert_num_queries
):
    with django_assert_num_queries(2):
        suggest("heart at")


@pytest.mark.parametrize(
    "query",
    [
        "athlete's foot",
        "heart' OR 1=1 --",
        'heart "attack',
        "lazy-eye" * 30,
        "\U0010ffff heart",
        "broken " * 40,
        "ringing in the ears " * 10,
    ],
)
def test_hostile_lay_input_gets_a_normal_answer(thesaurus, client, query):
    assert client.get("/search/", {"q": query[:200]}).status_code == 200
    assert client.get("/search/suggest/", {"q": query[:200]}).status_code == 200
