"""
Keeping the index current: saves and deletes of content queue the codes and policies
they touch, and the queue is written once the transaction commits.

One transaction that saves a policy, its groups, rows and references reindexes the
policy once. A rolled-back transaction drops its callbacks; anything it queued is
written by the next commit, which reads the content as it then is (harmless: the
index is rebuilt from the content, never from the queue).
"""

import logging
import threading

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from . import indexing

logger = logging.getLogger(__name__)

_pending = threading.local()


def _queue() -> tuple[set, set]:
    if not hasattr(_pending, "codes"):
        _pending.codes, _pending.policies = set(), set()
    return _pending.codes, _pending.policies


def flush():
    code_ids, policy_ids = _queue()
    codes, policies = set(code_ids), set(policy_ids)
    code_ids.clear()
    policy_ids.clear()
    try:
        if codes:
            indexing.reindex_codes(codes)
        if policies:
            indexing.reindex_policies(policies)
    except Exception:
        # The save has committed. Say what is stale and how to repair it: Django's
        # own message for a failed robust callback names only "flush".
        logger.exception(
            "The search index was not refreshed after a commit (codes: %d, "
            "policies: %d); search shows them as they were until manage.py "
            "rebuild_search_index runs.",
            len(codes),
            len(policies),
        )


def queue(codes=(), policies=()):
    code_ids, policy_ids = _queue()
    code_ids.update(codes)
    policy_ids.update(policies)
    # Every change registers a callback, even for ids already queued: those may be
    # left from a rolled-back transaction whose callbacks were dropped. The first
    # callback to run writes everything; the others find the queue empty. The index
    # is derived data: a failure to write it is logged, and must not turn the
    # editor's committed save into an error page.
    transaction.on_commit(flush, robust=True)


def code_changed(sender, instance, **kwargs):
    queue(codes=[instance.pk])


def procedure_changed(sender, instance, **kwargs):
    queue(codes=[instance.code_id])


def policy_changed(sender, instance, **kwargs):
    queue(policies=[instance.pk])


def policy_part_changed(sender, instance, **kwargs):
    queue(policies=[instance.policy_id])


def policy_row_changed(sender, instance, **kwargs):
    try:
        queue(policies=[instance.group.policy_id])
    except type(instance).group.RelatedObjectDoesNotExist:
        pass  # The group went first, in the same cascade; the policy is queued.


def payer_changed(sender, instance, **kwargs):
    if instance.pk is not None:
        queue(policies=list(instance.policies.values_list("pk", flat=True)))


def codes_bulk_saved(sender, system=None, ids=(), **kwargs):
    queue(codes=list(ids))


def policy_content_changed(sender, policy=None, **kwargs):
    if policy is not None:
        queue(policies=[policy.pk])


def connect():
    from policies.models import (
        Payer,
        Policy,
        PolicyCode,
        PolicyCodeGroup,
        PolicyReference,
    )
    from policies.signals import policy_content_changed as policy_signal
    from procedures.models import Code, Procedure
    from procedures.signals import codes_bulk_saved as codes_signal

    receivers = [
        (Code, code_changed),
        (Procedure, procedure_changed),
        (Policy, policy_changed),
        (PolicyCodeGroup, policy_part_changed),
        (PolicyReference, policy_part_changed),
        (PolicyCode, policy_row_changed),
    ]
    for model, receiver in receivers:
        uid = f"search-{model.__name__}"
        post_save.connect(receiver, sender=model, dispatch_uid=uid + "-save")
        post_delete.connect(receiver, sender=model, dispatch_uid=uid + "-delete")
    post_save.connect(payer_changed, sender=Payer, dispatch_uid="search-payer-save")
    codes_signal.connect(codes_bulk_saved, dispatch_uid="search-codes-bulk")
    policy_signal.connect(policy_content_changed, dispatch_uid="search-policy-content")
