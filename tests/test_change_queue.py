"""
The index's one change queue: whatever path changes a code or a policy in a
transaction (a model save, a bulk import's signal, a write-up, a code table written
in bulk), the search documents and the similar-codes lists of each changed object
are refreshed once, after the commit, and a failure in one never stops the other.
"""

import logging

import pytest

from index import changes, similar
from index.search import indexing, search
from policies.models import Policy, PolicyCode
from policies.signals import policy_content_changed
from procedures.models import Code, Procedure
from procedures.signals import codes_bulk_saved


@pytest.fixture
def calls(monkeypatch):
    """What each refresh was asked to do, the real work done all the same."""
    seen = {"codes": [], "policies": [], "similar": []}

    def spy(module, function, key):
        def wrapper(ids, *args, **kwargs):
            seen[key].append((set(ids),))
            return function(ids, *args, **kwargs)

        monkeypatch.setattr(module, function.__name__, wrapper)

    spy(indexing, indexing.reindex_codes, "codes")
    spy(indexing, indexing.reindex_policies, "policies")
    spy(similar, similar.refresh, "similar")
    return seen


def test_a_code_changed_by_every_path_in_one_transaction_is_refreshed_once(
    sample_data, calls, django_capture_on_commit_callbacks
):
    code = Code.objects.get(code="97546")
    policy = Policy.objects.get(number="0198")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        code.descriptor += " (edited)"
        code.save()
        Procedure.objects.get(code=code).save()
        codes_bulk_saved.send(sender=Code, system="cpt", ids=[code.pk])
        policy.save()
        policy_content_changed.send(sender=Policy, policy=policy)
        row = PolicyCode.objects.filter(group__policy=policy).first()
        row.save()
    assert len(callbacks) >= 1
    assert calls["codes"] == [({code.pk},)]
    assert calls["policies"] == [({policy.pk},)]
    assert len(calls["similar"]) == 1
    # What a visitor sees: the code is found by a word only its edit added.
    assert "97546" in [hit.code for hit in search("edited").hits]


def test_nothing_is_refreshed_before_the_commit(
    sample_data, calls, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        Code.objects.get(code="97546").save()
    assert calls == {"codes": [], "policies": [], "similar": []}
    for callback in callbacks:
        callback()
    assert len(calls["codes"]) == 1
    # The first callback wrote everything; later ones find the queue empty.
    assert not changes.pending()


def test_a_failing_search_refresh_still_refreshes_the_similar_codes(
    sample_data, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    def disk_full(*args, **kwargs):
        raise OSError("disk full")

    refreshed = []
    monkeypatch.setattr(indexing, "reindex_codes", disk_full)
    monkeypatch.setattr(similar, "refresh", lambda *args: refreshed.append(args))
    with (
        caplog.at_level(logging.ERROR),
        django_capture_on_commit_callbacks(execute=True),
    ):
        Code.objects.get(code="97546").save()
    assert refreshed
    assert "rebuild_search_index" in caplog.text
