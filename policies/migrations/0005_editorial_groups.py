"""The three editorial roles as groups (policies.roles)."""

from django.db import migrations

from policies.roles import ROLES, ensure_roles


def create_roles(apps, schema_editor):
    ensure_roles(apps, using=schema_editor.connection.alias)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("procedures", "0004_editorial_review_revision_history"),
        ("policies", "0004_versions_history_publish_permission"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
