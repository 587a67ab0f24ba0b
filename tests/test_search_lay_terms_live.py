"""A phrase staff add in the admin reaches search at once, committed for real."""

import pytest

from index.search import search
from procedures.models import LayTerm, LayTermTarget


@pytest.mark.django_db(transaction=True)
def test_a_phrase_staff_add_is_found_by_the_next_search(sample_data):
    # Nothing is cached in the process: the next search, in any process, reads it.
    term = LayTerm.objects.create(phrase="Boss Knee", kind="injury", source="staff")
    LayTermTarget.objects.create(term=term, system="cpt", code="97545", position=0)
    hits = search("boss knee").hits
    assert hits[0].code == "97545"
    assert hits[0].reason == "Also called “boss knee”"
    term.delete()
    assert not any(hit.reason for hit in search("boss knee").hits)
