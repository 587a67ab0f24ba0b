"""What people type lands on the right page first, on either search backend."""

import pytest

from index.search import search
from procedures.models import Code

pytestmark = pytest.mark.django_db


@pytest.fixture
def more_codes(sample_data, django_capture_on_commit_callbacks):
    # Neighbours that compete with the sample codes for prefixes and words.
    with django_capture_on_commit_callbacks(execute=True):
        for system, code, descriptor in [
            ("cpt", "97550", "Caregiver training in strategies and techniques"),
            (
                "icd-10-cm",
                "S52.502A",
                "Unspecified fracture of the lower end of left "
                "radius, initial encounter for closed fracture",
            ),
            ("icd-10-cm", "S52.90XA", "Unspecified fracture of unspecified forearm"),
            ("hcpcs", "S9128", "Speech therapy, in the home, per diem"),
        ]:
            Code.objects.create(system=system, code=code, descriptor=descriptor)


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("97546", "/codes/cpt/97546/"),
        ("s52501a", "/codes/icd-10-cm/S52.501A/"),
        ("CPT 97545", "/codes/cpt/97545/"),
        ("9754", "/codes/cpt/97545/"),
        ("S52.5", "/codes/icd-10-cm/S52.501A/"),
        ("97545-97546", "/codes/cpt/97545/"),
        ("97545 – 97546", "/codes/cpt/97545/"),
        ("work hardening", "/policies/aetna/0198/"),
        ("back school", "/codes/hcpcs/S9117/"),
        ('"back school"', "/codes/hcpcs/S9117/"),
        ("aetna 0198", "/policies/aetna/0198/"),
        ("CPB 198", "/policies/aetna/0198/"),
        ("work hardning", "/policies/aetna/0198/"),
        ("fracture radius", "/codes/icd-10-cm/S52.501A/"),
        ("T14.90XA", "/policies/aetna/0198/"),
    ],
)
def test_each_example_query_finds_its_page_first(more_codes, query, first):
    results = search(query)
    assert results.hits, query
    assert results.hits[0].url == first


@pytest.mark.parametrize(
    ("query", "address"),
    [
        ("97546", "/codes/cpt/97546/"),
        ("s52501a", "/codes/icd-10-cm/S52.501A/"),
        ("CPT 97545", "/codes/cpt/97545/"),
        ("S9117", "/codes/hcpcs/S9117/"),
    ],
)
def test_a_query_that_is_one_code_names_its_page(more_codes, query, address):
    assert search(query).exact == address


def test_a_code_reached_only_through_a_range_finds_the_policy_and_says_why(
    more_codes,
):
    hit = next(hit for hit in search("S52.501A").hits if hit.kind == "policy")
    assert hit.url == "/policies/aetna/0198/"
    assert hit.reason == "Policy lists a range containing S52.501A"


def test_a_listed_code_finds_the_policy_that_lists_it(more_codes):
    hits = search("97546").hits
    assert [hit.kind for hit in hits[:2]] == ["write-up", "policy"]
    assert hits[1].reason == "Policy lists this code"


def test_a_misspelling_offers_the_real_words(more_codes):
    results = search("work hardning")
    assert results.suggestion == "work hardening"
    assert results.total == 3


def test_a_short_word_with_two_letters_swapped_is_corrected(more_codes):
    # "wrok" shares no trigram with "work": it is found one edit away.
    results = search("wrok hardening")
    assert results.suggestion == "work hardening"
    assert results.total == 3


def test_a_range_says_how_it_was_read(more_codes):
    results = search("97545-97546")
    assert [hit.code for hit in results.hits] == ["97545", "97546"]
    assert results.notice == "Codes from 97545 to 97546"


def test_a_prefix_of_two_code_systems_is_named_once(more_codes):
    # "A0" starts HCPCS codes (A0021) and ICD-10-CM codes (A00.0) alike.
    assert search("A0").notice == "Codes starting with A0"


def test_a_policy_number_with_its_payer_is_not_read_as_a_code_prefix(more_codes):
    results = search("aetna 0198")
    assert results.total == 1
    assert results.hits[0].detail == "Aetna policy 0198"
