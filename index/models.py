"""
Everything the index derives from content: the search documents and their word list,
and each code's similar-codes list.

The search index: one row per public document, derived from the content tables.

The rows are plain Django models so that the model state is the same on SQLite and
PostgreSQL; the engine-specific parts (an FTS5 table with triggers, or a generated
``tsvector`` column with a GIN index and a trigram index on the word list) are made by
the migrations. Nothing here is the only copy of anything: ``rebuild_search_index``
recreates every row from the content tables.
"""

from django.db import models

KIND_CODE = "code"
KIND_WRITEUP = "write-up"
KIND_POLICY = "policy"

# Document ids are derived, not counted: ``kind * 10**13 + system * 10**12 + object
# id``. The same content always gets the same id (a rebuild gives the same index),
# policies and write-ups come before codes in id order (the ranking window of a very
# common word takes the first documents by id, see ``sqlite.py``), and a kind or
# system filter is a range or an arithmetic test on the id, which FTS5 answers from
# its own index without reading the documents table.
KIND_DIGITS = {KIND_POLICY: 1, KIND_WRITEUP: 2, KIND_CODE: 3}
SYSTEM_DIGITS = {"": 0, "cpt": 1, "hcpcs": 2, "icd-10-cm": 3, "icd-10-pcs": 4}
KIND_STEP = 10**13
SYSTEM_STEP = 10**12


def document_id(kind: str, system: str, object_id: int) -> int:
    return (
        KIND_DIGITS[kind] * KIND_STEP + SYSTEM_DIGITS[system] * SYSTEM_STEP + object_id
    )


class SearchDocument(models.Model):
    """A code (with its write-up when one is published) or a published policy."""

    class Kind(models.TextChoices):
        CODE = KIND_CODE, "Code"
        WRITEUP = KIND_WRITEUP, "Write-up"
        POLICY = KIND_POLICY, "Policy"

    id = models.BigIntegerField(primary_key=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # Code.id for codes and write-ups (a write-up is found on its code's page), else
    # Policy.id.
    object_id = models.BigIntegerField()
    system = models.CharField(max_length=12, blank=True)
    # The canonical code, or the policy number as the payer writes it.
    code = models.CharField(max_length=30, blank=True)
    # procedures.codes.sort_key of the code, or the policy number without leading
    # zeros ("198"), so that codes, prefixes, ranges and policy numbers are key lookups.
    sort_key = models.CharField(max_length=30, blank=True)
    payer = models.CharField(max_length=80, blank=True)
    title = models.CharField(max_length=500)
    detail = models.CharField(max_length=200, blank=True)
    url = models.CharField(max_length=300)
    # Weighted text, strongest first: codes and numbers, title, summary, body.
    text_a = models.TextField(blank=True)
    text_b = models.TextField(blank=True)
    text_c = models.TextField(blank=True)
    text_d = models.TextField(blank=True)

    class Meta:
        # The tables kept the names they had in the app "search", which the raw SQL
        # of the engine (and the FTS5 triggers) name.
        db_table = "search_searchdocument"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "object_id"], name="searchdocument_unique_object"
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=["code", "write-up", "policy"]),
                name="searchdocument_kind_valid",
            ),
        ]
        indexes = [
            # Exact codes, prefixes and ranges: system = ? AND sort_key BETWEEN ? AND ?;
            # policy numbers: system = '' AND sort_key IN (...).
            models.Index(fields=["system", "sort_key"], name="searchdoc_key_idx"),
            # Reindexing the documents of a batch of codes or policies.
            models.Index(fields=["object_id"], name="searchdoc_object_idx"),
        ]

    def __str__(self):
        return f"{self.kind}: {self.title}"


class SearchWord(models.Model):
    """
    A word that occurs in the index, as written (lower case, without accents).

    The "did you mean" vocabulary: a misspelt word is compared with these, never with
    stems, so the correction is a real word. Every write of the index keeps the
    counts exact, as a rebuild would make them: a word in no document leaves.
    """

    word = models.CharField(max_length=60, unique=True)
    # Documents holding the word (the commoner of two equally close words wins).
    documents = models.PositiveIntegerField(default=1)

    class Meta:
        db_table = "search_searchword"
        ordering = ["word"]

    def __str__(self):
        return self.word


class SimilarCode(models.Model):
    """One entry of a code's precomputed similar-codes list (see index.similar)."""

    code = models.ForeignKey(
        "procedures.Code", on_delete=models.CASCADE, related_name="similar_codes"
    )
    similar = models.ForeignKey(
        "procedures.Code", on_delete=models.CASCADE, related_name="+"
    )
    rank = models.PositiveSmallIntegerField()
    score = models.FloatField()
    reasons = models.JSONField(
        default=list,
        help_text="Why the codes are similar, in plain words, strongest first.",
    )
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code", "rank"]
        constraints = [
            models.UniqueConstraint(
                fields=["code", "similar"], name="similarcode_unique_pair"
            ),
            models.CheckConstraint(
                condition=~models.Q(code=models.F("similar")),
                name="similarcode_not_itself",
            ),
        ]
        indexes = [
            models.Index(fields=["code", "rank"], name="similarcode_rank_idx"),
        ]

    def __str__(self):
        return f"{self.code} ~ {self.similar} ({self.score:.2f})"


class EmptySimilarList(models.Model):
    """
    A code whose similar-codes list was computed and came out empty (Z66, say).

    Without it such a code looks never computed, and ``rebuild_similar_codes
    --missing`` (run by every ``make run``) would read the whole corpus to find
    nothing again.
    """

    code = models.OneToOneField(
        "procedures.Code", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    computed_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.code}: nothing similar"


class ContentChange(models.Model):
    """
    One refresh's worth of changed content, as the change queue handed it over.

    Each process keeps the similar-codes corpus in memory (``index.similar``). A
    change made in another process (another gunicorn worker, an import command) is
    learnt from these rows: a process re-reads the codes and policies named by the
    rows it has not applied yet, or everything when a row says so. Old rows are
    pruned; a process that finds its last applied row gone reloads everything.
    """

    id = models.BigAutoField(primary_key=True)
    # Tells a row from one with the same id in another database or after a
    # rollback (SQLite hands the id out again).
    nonce = models.CharField(max_length=16)
    codes = models.JSONField(default=list)
    policies = models.JSONField(default=list)
    everything = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # Pruning: created_at < ?.
            models.Index(fields=["created_at"], name="contentchange_created_idx"),
        ]

    def __str__(self):
        return f"change {self.id}: {len(self.codes)} codes"
