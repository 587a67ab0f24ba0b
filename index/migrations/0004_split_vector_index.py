"""
One GIN index for pages (policies, write-ups) and one for codes, measured at 100,001
documents on PostgreSQL.

``postgres.matches`` reads pages and codes in two branches, each stopping at its
limit. With one index, the pages' branch built the bitmap of every match first and
then ANDed it with the few page ids: "encounter" read its 38,768 index entries twice
(2.4 ms each, 5.9 ms in all). With a partial index per kind, the pages' branch reads
only pages' entries, and the search took 3.2 ms.

Pages are saved one at a time, so their index takes each at once (no pending list,
as for the word list in 0003); codes arrive in bulk and keep 0003's capped list.

``30_000_000_000_000`` is ``postgres.CODES_FROM``, the first code's id (a test
checks the two agree).
"""

from django.db import migrations

FORWARDS = [
    """
    CREATE INDEX search_page_vector_idx ON search_searchdocument
    USING gin (search_vector) WITH (fastupdate = off) WHERE id < 30000000000000
    """,
    """
    CREATE INDEX search_code_vector_idx ON search_searchdocument
    USING gin (search_vector) WITH (gin_pending_list_limit = 128)
    WHERE id >= 30000000000000
    """,
    "DROP INDEX search_document_vector_idx",
]
BACKWARDS = [
    """
    CREATE INDEX search_document_vector_idx ON search_searchdocument
    USING gin (search_vector) WITH (gin_pending_list_limit = 128)
    """,
    "DROP INDEX search_code_vector_idx",
    "DROP INDEX search_page_vector_idx",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("index", "0003_gin_pending_lists")]

    operations = [migrations.RunPython(_run(FORWARDS), _run(BACKWARDS))]
