"""The three editorial roles as groups, with the permissions each role needs."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW_CODES = [
    "procedures.view_code",
    "procedures.view_codesection",
    "policies.view_payer",
]
ROLES = {
    # Writes drafts and working revisions; imports documents as drafts.
    "Author": [
        *VIEW_CODES,
        "procedures.add_procedure",
        "procedures.change_procedure",
        "procedures.view_procedure",
        "policies.add_policy",
        "policies.change_policy",
        "policies.view_policy",
        "policies.add_policycodegroup",
        "policies.change_policycodegroup",
        "policies.view_policycodegroup",
        "policies.add_policycode",
        "policies.change_policycode",
        "policies.view_policycode",
        "policies.add_policyreference",
        "policies.change_policyreference",
        "policies.view_policyreference",
    ],
    # Reads the text and approves it; sets when the next review is due.
    "Clinical reviewer": [
        *VIEW_CODES,
        "procedures.view_procedure",
        "procedures.change_procedure",
        "procedures.can_review",
        "policies.view_policy",
        "policies.view_policycodegroup",
    ],
    # Puts approved text live, takes it down, withdraws policies.
    "Publisher": [
        *VIEW_CODES,
        "procedures.view_procedure",
        "procedures.change_procedure",
        "procedures.can_publish",
        "policies.change_payer",
        "policies.view_policy",
        "policies.change_policy",
        "policies.can_publish",
        "policies.view_policycodegroup",
        "policies.change_policycodegroup",
        "policies.view_policycode",
        "policies.change_policycode",
        "policies.view_policyreference",
        "policies.change_policyreference",
    ],
}


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; the groups need them now.
    for label in ("procedures", "policies"):
        app_config = apps.get_app_config(label)
        # A migration's app registry holds stubs, which say they have no models.
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, wanted in ROLES.items():
        group, _created = Group.objects.get_or_create(name=name)
        for dotted in wanted:
            app_label, codename = dotted.split(".")
            group.permissions.add(
                Permission.objects.get(
                    content_type__app_label=app_label, codename=codename
                )
            )


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
