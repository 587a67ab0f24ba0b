"""
The engine-specific half of the index, made per database vendor.

SQLite: an FTS5 external-content table over the documents' weighted text (Porter
stemming, diacritics removed, 2- and 3-character prefix indexes for autocomplete) and
an FTS5 trigram table over the word list, each kept in step by triggers.

PostgreSQL: the unaccent and pg_trgm extensions, a text search configuration that
unaccents before stemming, a stored generated ``tsvector`` (weights A-D) with a GIN
index, byte-wise collation on the key column, and a trigram GIN index on the words.

The model state is the same on both engines, so ``makemigrations --check`` stays
clean. Migration 0006 indexes whatever content the database already holds.
"""

from django.db import migrations

from carecodes.migrations_support import binary_collation

COLUMNS = ("text_a", "text_b", "text_c", "text_d")

SQLITE_FORWARDS = [
    """
    CREATE VIRTUAL TABLE search_fts USING fts5(
        text_a, text_b, text_c, text_d,
        content='search_searchdocument', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2', prefix='2 3'
    )
    """,
    """
    CREATE TRIGGER search_fts_insert AFTER INSERT ON search_searchdocument BEGIN
        INSERT INTO search_fts(rowid, text_a, text_b, text_c, text_d)
        VALUES (new.id, new.text_a, new.text_b, new.text_c, new.text_d);
    END
    """,
    """
    CREATE TRIGGER search_fts_delete AFTER DELETE ON search_searchdocument BEGIN
        INSERT INTO search_fts(search_fts, rowid, text_a, text_b, text_c, text_d)
        VALUES ('delete', old.id, old.text_a, old.text_b, old.text_c, old.text_d);
    END
    """,
    """
    CREATE TRIGGER search_fts_update AFTER UPDATE ON search_searchdocument BEGIN
        INSERT INTO search_fts(search_fts, rowid, text_a, text_b, text_c, text_d)
        VALUES ('delete', old.id, old.text_a, old.text_b, old.text_c, old.text_d);
        INSERT INTO search_fts(rowid, text_a, text_b, text_c, text_d)
        VALUES (new.id, new.text_a, new.text_b, new.text_c, new.text_d);
    END
    """,
    # Field weights for ORDER BY rank: codes and numbers, title, summary, body.
    """
    INSERT INTO search_fts(search_fts, rank) VALUES ('rank', 'bm25(10.0, 5.0, 2.0, 1.0)')
    """,
    """
    CREATE VIRTUAL TABLE search_word_fts USING fts5(
        word, content='search_searchword', content_rowid='id', tokenize='trigram'
    )
    """,
    """
    CREATE TRIGGER search_word_fts_insert AFTER INSERT ON search_searchword BEGIN
        INSERT INTO search_word_fts(rowid, word) VALUES (new.id, new.word);
    END
    """,
    """
    CREATE TRIGGER search_word_fts_delete AFTER DELETE ON search_searchword BEGIN
        INSERT INTO search_word_fts(search_word_fts, rowid, word)
        VALUES ('delete', old.id, old.word);
    END
    """,
    """
    CREATE TRIGGER search_word_fts_update AFTER UPDATE ON search_searchword BEGIN
        INSERT INTO search_word_fts(search_word_fts, rowid, word)
        VALUES ('delete', old.id, old.word);
        INSERT INTO search_word_fts(rowid, word) VALUES (new.id, new.word);
    END
    """,
]
SQLITE_BACKWARDS = [
    "DROP TRIGGER IF EXISTS search_fts_insert",
    "DROP TRIGGER IF EXISTS search_fts_delete",
    "DROP TRIGGER IF EXISTS search_fts_update",
    "DROP TABLE IF EXISTS search_fts",
    "DROP TRIGGER IF EXISTS search_word_fts_insert",
    "DROP TRIGGER IF EXISTS search_word_fts_delete",
    "DROP TRIGGER IF EXISTS search_word_fts_update",
    "DROP TABLE IF EXISTS search_word_fts",
]

# The PostgreSQL parser reads "hardening/conditioning" as one file path; a slash
# between words is a space to the reader.
_VECTOR = " || ".join(
    f"setweight(to_tsvector('carecodes_english'::regconfig, "
    f"translate(coalesce({column}, ''), '/', ' ')), '{weight}')"
    for column, weight in zip(COLUMNS, "ABCD", strict=True)
)
POSTGRES_FORWARDS = [
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "DROP TEXT SEARCH CONFIGURATION IF EXISTS carecodes_english CASCADE",
    "CREATE TEXT SEARCH CONFIGURATION carecodes_english (COPY = pg_catalog.english)",
    # Accents go before stemming, so "Sjögren" and "Sjogren" are one lexeme.
    """
    ALTER TEXT SEARCH CONFIGURATION carecodes_english
    ALTER MAPPING FOR hword, hword_part, word WITH unaccent, english_stem
    """,
    f"""
    ALTER TABLE search_searchdocument ADD COLUMN search_vector tsvector
    GENERATED ALWAYS AS ({_VECTOR}) STORED
    """,
    # Full-text matches: search_vector @@ tsquery.
    """
    CREATE INDEX search_document_vector_idx ON search_searchdocument
    USING gin (search_vector)
    """,
    # "Did you mean": word % misspelling, ordered by similarity.
    """
    CREATE INDEX search_word_trgm_idx ON search_searchword
    USING gin (word gin_trgm_ops)
    """,
]
POSTGRES_BACKWARDS = [
    "DROP INDEX IF EXISTS search_word_trgm_idx",
    "DROP INDEX IF EXISTS search_document_vector_idx",
    "ALTER TABLE search_searchdocument DROP COLUMN IF EXISTS search_vector",
    "DROP TEXT SEARCH CONFIGURATION IF EXISTS carecodes_english",
]


def _run(statements):
    def run(apps, schema_editor):
        vendor = schema_editor.connection.vendor
        for statement in statements.get(vendor, ()):
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("index", "0001_initial"),
        ("procedures", "0003_code_hierarchy_notes_similar"),
        ("policies", "0002_binary_collation_keys"),
    ]

    operations = [
        binary_collation("search_searchdocument", {"sort_key": 30}),
        migrations.RunPython(
            _run({"sqlite": SQLITE_FORWARDS, "postgresql": POSTGRES_FORWARDS}),
            _run({"sqlite": SQLITE_BACKWARDS, "postgresql": POSTGRES_BACKWARDS}),
        ),
    ]
