"""
SimilarCode is derived data and moves to the index app (index.0005). Its table stays
where it is; the index app takes the model over and renames the table.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("procedures", "0004_editorial_review_revision_history")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="SimilarCode")],
            database_operations=[],
        )
    ]
