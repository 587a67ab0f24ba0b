from django.db import migrations

from carecodes.migrations_support import binary_collation


class Migration(migrations.Migration):
    dependencies = [("procedures", "0001_initial")]

    operations = [
        binary_collation("procedures_code", {"sort_key": 12}),
        binary_collation("procedures_codesection", {"start_key": 12, "end_key": 13}),
    ]
