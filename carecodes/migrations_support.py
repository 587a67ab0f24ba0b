"""Helpers for migrations that differ between SQLite and PostgreSQL."""

from django.db import migrations


def binary_collation(table: str, columns: dict[str, int]) -> migrations.RunPython:
    """
    Give sort-key columns byte-wise collation on PostgreSQL.

    Sort keys compare as raw strings (see procedures.codes); a linguistic collation
    such as en_US would ignore "~" and interleave digits and letters. SQLite already
    compares text byte-wise, and the model state does not change, so
    ``makemigrations --check`` stays clean on both engines.
    """

    def forwards(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        quote = schema_editor.quote_name
        for column, length in columns.items():
            schema_editor.execute(
                f"ALTER TABLE {quote(table)} ALTER COLUMN {quote(column)} "
                f'TYPE varchar({length}) COLLATE "C"'
            )

    return migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False)
