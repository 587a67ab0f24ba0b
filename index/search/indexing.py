"""
Writing the index: reindexing codes and policies in set-based batches, and rebuilding.

Every write deletes the documents of the objects concerned and inserts what they
contribute now (nothing for a deleted object or a draft policy), so reindexing is
idempotent and the same content always gives the same rows.
"""

from collections import Counter
from collections.abc import Callable, Iterable

from django.db import connections, transaction

from index.models import (
    KIND_CODE,
    KIND_POLICY,
    KIND_WRITEUP,
    SearchDocument,
    SearchWord,
    document_id,
)
from policies.models import Policy
from procedures.models import Code

from .documents import code_document, document_words, policy_document

BATCH_SIZE = 2000


def _batches(ids: Iterable[int], size: int = BATCH_SIZE):
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def _write(using, kinds, object_ids, documents, vocabulary: Counter | None):
    replaced = SearchDocument.objects.using(using).filter(
        kind__in=kinds, object_id__in=object_ids
    )
    # The word list counts the documents holding each word: those leaving and
    # those arriving change it (a rebuild counts afresh into ``vocabulary``).
    change = Counter()
    if vocabulary is None:
        for fields in replaced.values("text_b", "text_c", "text_d"):
            change.subtract(document_words(fields))
    replaced.delete()
    SearchDocument.objects.using(using).bulk_create(
        [SearchDocument(**fields) for fields in documents]
    )
    for fields in documents:
        change.update(document_words(fields))
    if vocabulary is not None:
        vocabulary.update(change)
    else:
        _count_words(using, change)


def _count_words(using, change: Counter) -> None:
    """Add each word's change to its count of documents; a word in none leaves."""
    table = SearchWord._meta.db_table
    added = sorted((word, number) for word, number in change.items() if number > 0)
    removed = {}
    for word, number in sorted(change.items()):
        if number < 0:
            removed.setdefault(-number, []).append(word)
    with connections[using].cursor() as cursor:
        for start in range(0, len(added), 500):
            rows = added[start : start + 500]
            cursor.execute(
                f"INSERT INTO {table} (word, documents) VALUES "
                f"{', '.join(['(%s, %s)'] * len(rows))} ON CONFLICT (word) "
                f"DO UPDATE SET documents = {table}.documents + excluded.documents",
                [value for row in rows for value in row],
            )
        for number, words in removed.items():
            for start in range(0, len(words), 500):
                chunk = words[start : start + 500]
                marks = ", ".join(["%s"] * len(chunk))
                # Never below none: a word list from before exact counting may be low.
                cursor.execute(
                    f"UPDATE {table} SET documents = CASE WHEN documents > %s "
                    f"THEN documents - %s ELSE 0 END WHERE word IN ({marks})",
                    [number, number, *chunk],
                )
                cursor.execute(
                    f"DELETE FROM {table} WHERE documents = 0 AND word IN ({marks})",
                    chunk,
                )


def reindex_codes(ids, *, using="default", vocabulary: Counter | None = None) -> int:
    """Reindex the codes with these primary keys; returns the documents written."""
    written = 0
    for batch in _batches(ids):
        found = (
            Code.objects.using(using).filter(pk__in=batch).select_related("procedure")
        )
        documents = sorted(
            (code_document(code, getattr(code, "procedure", None)) for code in found),
            key=lambda fields: fields["id"],
        )
        with transaction.atomic(using=using):
            _write(using, (KIND_CODE, KIND_WRITEUP), batch, documents, vocabulary)
        written += len(documents)
    if len(set(ids)) > BATCH_SIZE and vocabulary is None:
        optimize(using)
    return written


def reindex_policies(ids, *, using="default", vocabulary: Counter | None = None) -> int:
    """Reindex the policies with these primary keys; drafts leave the index."""
    written = 0
    for batch in _batches(ids, 200):
        found = (
            Policy.objects.using(using)
            .published()
            .filter(pk__in=batch)
            .select_related("payer")
            .prefetch_related("code_groups__codes", "references")
        )
        documents = [policy_document(policy) for policy in found]
        with transaction.atomic(using=using):
            _write(using, (KIND_POLICY,), batch, documents, vocabulary)
        written += len(documents)
    return written


def rebuild(
    *, using="default", progress: Callable[[int, int], None] | None = None
) -> int:
    """Recreate the whole index from the content tables; returns the documents."""
    # In document id order, which PostgreSQL's table then keeps (see postgres.py).
    code_ids = [
        pk
        for pk, _system in sorted(
            Code.objects.using(using).values_list("pk", "system"),
            key=lambda row: document_id(KIND_CODE, row[1], row[0]),
        )
    ]
    policy_ids = list(
        Policy.objects.using(using).published().values_list("pk", flat=True)
    )
    total = len(code_ids) + len(policy_ids)
    vocabulary = Counter()
    done = 0
    with transaction.atomic(using=using):
        _empty(using)
        if progress:
            progress(0, total)
        for start in range(0, len(code_ids), BATCH_SIZE):
            batch = code_ids[start : start + BATCH_SIZE]
            reindex_codes(batch, using=using, vocabulary=vocabulary)
            done += len(batch)
            if progress:
                progress(done, total)
        for batch in _batches(policy_ids, 200):
            reindex_policies(batch, using=using, vocabulary=vocabulary)
            done += len(batch)
            if progress:
                progress(done, total)
        SearchWord.objects.using(using).bulk_create(
            [
                SearchWord(word=word, documents=count)
                for word, count in sorted(vocabulary.items())
            ],
            batch_size=BATCH_SIZE,
        )
    optimize(using)
    return SearchDocument.objects.using(using).count()


def _empty(using):
    connection = connections[using]
    if connection.vendor == "postgresql":
        # No dead rows left behind: the table is written in id order (see
        # postgres.matches) and stays half the size.
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE search_searchdocument, search_searchword")
    else:
        SearchDocument.objects.using(using).all().delete()
        SearchWord.objects.using(using).all().delete()


def optimize(using="default"):
    """After bulk writes: merge FTS5 segments, or flush GIN's list and ANALYZE."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Rows written in bulk wait in the GIN pending list, which every search
            # then reads linearly; and the planner needs the new statistics.
            cursor.execute("SELECT gin_clean_pending_list('search_code_vector_idx')")
            if connection.in_atomic_block:
                cursor.execute("ANALYZE search_searchdocument, search_searchword")
            else:
                # VACUUM (outside a transaction only) also marks the new rows as
                # seen by all: otherwise the first searches do it, page by page
                # (a misspelling's median was ~0.5 ms slower after a rebuild).
                cursor.execute(
                    "VACUUM (ANALYZE) search_searchdocument, search_searchword"
                )
    elif connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO search_fts(search_fts) VALUES ('optimize')")
            cursor.execute(
                "INSERT INTO search_word_fts(search_word_fts) VALUES ('optimize')"
            )
