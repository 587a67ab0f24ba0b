"""
A database that already holds content gets its search index here, once the engine's
objects (0002-0004) are all in place; a fresh one is indexed as content is saved. The
current indexing code is used on purpose: the index is derived data and this step
only needs the content tables.
"""

from django.db import migrations


def index_existing_content(apps, schema_editor):
    Code = apps.get_model("procedures", "Code")
    Policy = apps.get_model("policies", "Policy")
    if not Code.objects.exists() and not Policy.objects.exists():
        return
    from index.search.indexing import rebuild

    rebuild(using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("index", "0005_similarcode")]

    operations = [
        migrations.RunPython(index_existing_content, migrations.RunPython.noop)
    ]
