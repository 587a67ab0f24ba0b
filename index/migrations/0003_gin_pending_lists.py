"""
GIN's pending list, measured at 100,000 documents on PostgreSQL.

Rows inserted into a GIN index with ``fastupdate`` wait in a pending list that every
search reads linearly until VACUUM or a cleanup merges it. After a bulk write the
word list's trigram lookups took 25-30 ms instead of 1-6 ms. The word list changes
a few words at a time, so its index takes each word at once. The document index
keeps the list for bulk writes, capped at 128 kB so a search never reads much of it
(``indexing.optimize`` flushes it after a bulk write).
"""

from django.db import migrations

FORWARDS = [
    "ALTER INDEX search_word_trgm_idx SET (fastupdate = off)",
    "ALTER INDEX search_document_vector_idx SET (gin_pending_list_limit = 128)",
    "SELECT gin_clean_pending_list('search_word_trgm_idx')",
]
BACKWARDS = [
    "ALTER INDEX search_word_trgm_idx RESET (fastupdate)",
    "ALTER INDEX search_document_vector_idx RESET (gin_pending_list_limit)",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("index", "0002_engine_objects")]

    operations = [migrations.RunPython(_run(FORWARDS), _run(BACKWARDS))]
