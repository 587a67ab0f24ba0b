"""
The one change queue: content changes in, one refresh of everything derived out.

Receivers on the content models (``post_save``, ``pre_delete``, ``post_delete``) and
on the content apps' bulk signals (``procedures.signals.codes_bulk_saved``,
``policies.signals.policy_content_changed``) note which codes and policies changed.
The notes of a transaction gather in one queue, and one ``on_commit`` callback
(robust: a failure is logged, never turned into the staff member's error page)
refreshes the search documents and the similar-codes lists of each changed object
once, whatever path changed it and however often.

After each refresh the queue sends ``refreshed`` with what changed and which codes'
similar-codes lists were recomputed, for whatever keeps copies of pages (the page
cache, carecodes.page_cache), which this layer may not import.

A rolled-back transaction drops its callback; what it noted stays queued and is
written by the next commit, which reads the content as it then is (harmless: the
index is rebuilt from the content, never from the queue). The content apps never
import this module; it listens to them.
"""

import logging
import threading
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_delete
from django.dispatch import Signal

from . import similar
from .search import indexing

logger = logging.getLogger(__name__)


@dataclass
class Changes:
    """What one transaction changed, as the index needs to know it."""

    codes: set = field(default_factory=set)  # saved or deleted codes, write-ups' codes
    policies: set = field(default_factory=set)  # policies whose content changed
    # Codes whose similar-codes list may name what changed (a deleted code, a code a
    # deleted range row reached): their lists are recomputed, their documents not.
    lists: set = field(default_factory=set)
    everything: bool = False  # a bulk import: every similar-codes list is recomputed

    def __bool__(self):
        return bool(self.codes or self.policies or self.lists or self.everything)


_local = threading.local()

# Sent after every refresh with ``changes`` (a Changes), ``relisted`` (the ids of the
# codes whose similar-codes lists were recomputed; None when that is not known: a
# failed refresh, or a rebuild of every list) and ``reached`` (the ids of the codes
# the changed policies named before or after the change).
refreshed = Signal()


def pending() -> Changes:
    if not hasattr(_local, "changes"):
        _local.changes = Changes()
    return _local.changes


def note(codes=(), policies=(), lists=(), everything=False):
    changes = pending()
    changes.codes.update(codes)
    changes.policies.update(policies)
    changes.lists.update(lists)
    changes.everything = changes.everything or everything
    # Every note registers the callback, even when the queue holds the object
    # already: that note may be left from a rolled-back block whose callback was
    # dropped. The first callback to run writes everything; the rest find the queue
    # empty and return, so each object is refreshed once.
    transaction.on_commit(flush, robust=True)


def flush():
    """Refresh what the queue holds; each part's failure is logged on its own."""
    changes = pending()
    _local.changes = Changes()
    if not changes:
        return
    _refresh_search(changes)
    done = _refresh_similar(changes)
    announce(
        changes,
        relisted=None if done is None else done.lists,
        reached=() if done is None else done.members,
    )


def rebuilt():
    """Say that a rebuild command rewrote derived data anything may show."""
    announce(Changes(everything=True), relisted=None, reached=())


def announce(changes, relisted, reached):
    answers = refreshed.send_robust(
        sender=Changes, changes=changes, relisted=relisted, reached=reached
    )
    for receiver, answer in answers:
        if isinstance(answer, Exception):
            logger.error(
                "%r failed after a refresh: copies of pages may be stale.",
                receiver,
                exc_info=answer,
            )


def _refresh_search(changes):
    try:
        if changes.codes:
            indexing.reindex_codes(changes.codes)
        if changes.policies:
            indexing.reindex_policies(changes.policies)
    except Exception:
        # The save has committed. Say what is stale and how to repair it.
        logger.exception(
            "The search index was not refreshed after a commit (codes: %d, "
            "policies: %d); search shows them as they were until manage.py "
            "rebuild_search_index runs.",
            len(changes.codes),
            len(changes.policies),
        )


def _refresh_similar(changes) -> similar.Refreshed | None:
    try:
        if changes.everything:
            rebuilt = similar.rebuild()
            logger.info(
                "Similar codes rebuilt after a bulk save: %d codes, %d entries.",
                rebuilt.codes,
                rebuilt.rows,
            )
            return None
        done = similar.Refreshed()
        similar.refresh(changes.codes | changes.lists, changes.policies, done)
        return done
    except Exception:
        logger.exception(
            "Similar codes were not refreshed after a commit (codes: %d, "
            "policies: %d); their lists stay as they were until manage.py "
            "rebuild_similar_codes runs.",
            len(changes.codes | changes.lists),
            len(changes.policies),
        )
        return None


# --- Receivers --------------------------------------------------------------------


def code_changed(sender, instance, **kwargs):
    note(codes=[instance.pk])


def code_deleting(sender, instance, **kwargs):
    # The list rows naming the code go with it (CASCADE): note who listed it first.
    note(lists=similar.listers([instance.pk]))


def procedure_changed(sender, instance, **kwargs):
    note(codes=[instance.code_id])


def policy_changed(sender, instance, **kwargs):
    note(policies=[instance.pk])


def policy_part_changed(sender, instance, **kwargs):
    note(policies=[instance.policy_id])


def policy_row_changed(sender, instance, **kwargs):
    try:
        note(policies=[instance.group.policy_id])
    except type(instance).group.RelatedObjectDoesNotExist:
        pass  # The group went first, in the same cascade; the policy is noted.


def policy_row_deleting(sender, instance, **kwargs):
    # Deleting a group or a policy deletes its rows one by one through the cascade:
    # note the codes the row reached, and who listed them, while the row exists.
    note(lists=similar.reached_by_row(instance))


def payer_changed(sender, instance, **kwargs):
    if instance.pk is not None:
        note(policies=instance.policies.values_list("pk", flat=True))


def codes_bulk_saved(sender, system=None, ids=(), **kwargs):
    ids = list(ids)
    # A large import changes the text model's word weights and the neighbours of
    # thousands of codes: every list may have changed, and rebuilding them all (well
    # under a minute for the full ICD-10-CM set) costs less than finding which did.
    everything = len(ids) > similar.REFRESH_LIMIT
    if everything:
        # Said, not only done: the command that saved them takes longer for it.
        logger.warning(
            "%s %s codes were saved in bulk; every similar-codes list is rebuilt "
            "after the commit, as manage.py rebuild_similar_codes does.",
            len(ids),
            system,
        )
    note(codes=ids, everything=everything)


def policy_content_changed(sender, policy=None, **kwargs):
    if policy is not None:
        note(policies=[policy.pk])


def connect():
    """Connects the receivers; called once from IndexConfig.ready()."""
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
        uid = f"index-{model.__name__}"
        post_save.connect(receiver, sender=model, dispatch_uid=uid + "-save")
        post_delete.connect(receiver, sender=model, dispatch_uid=uid + "-delete")
    pre_delete.connect(code_deleting, sender=Code, dispatch_uid="index-Code-deleting")
    pre_delete.connect(
        policy_row_deleting, sender=PolicyCode, dispatch_uid="index-PolicyCode-deleting"
    )
    post_save.connect(payer_changed, sender=Payer, dispatch_uid="index-Payer-save")
    codes_signal.connect(codes_bulk_saved, dispatch_uid="index-codes-bulk")
    policy_signal.connect(policy_content_changed, dispatch_uid="index-policy-content")
