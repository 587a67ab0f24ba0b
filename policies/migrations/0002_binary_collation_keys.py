from django.db import migrations

from carecodes.migrations_support import binary_collation


class Migration(migrations.Migration):
    dependencies = [("policies", "0001_initial")]

    operations = [
        binary_collation("policies_policycode", {"start_key": 12, "end_key": 13}),
    ]
