"""
The three editorial roles as groups, with the permissions each role needs.

Created by migration policies/0005 and made whole again after every ``migrate`` and
``flush`` (post_migrate), so a database emptied by a flush still has them.
"""

from django.contrib.auth.management import create_permissions

VIEW_CODES = [
    "procedures.view_code",
    "procedures.view_codesection",
    "policies.view_payer",
    "procedures.view_layterm",
    "procedures.view_laytermtarget",
    "procedures.view_laysynonym",
]
# The lay-term thesaurus (phrases people use, word synonyms): authors keep it.
EDIT_LAY_TERMS = [
    "procedures.add_layterm",
    "procedures.change_layterm",
    "procedures.add_laytermtarget",
    "procedures.change_laytermtarget",
    "procedures.delete_laytermtarget",
    "procedures.add_laysynonym",
    "procedures.change_laysynonym",
]
ROLES = {
    # Writes drafts and working revisions; imports documents as drafts.
    "Author": [
        *VIEW_CODES,
        *EDIT_LAY_TERMS,
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


def ensure_roles(apps, using="default"):
    """Creates the groups, and gives each the permissions its role lists."""
    for label in ("procedures", "policies"):
        app_config = apps.get_app_config(label)
        stub = not getattr(app_config, "models_module", None)
        if stub:
            # A migration's app registry holds stubs, which say they have no models.
            app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=using)
        if stub:
            app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, wanted in ROLES.items():
        group, _created = Group.objects.using(using).get_or_create(name=name)
        permissions = []
        for dotted in wanted:
            app_label, codename = dotted.split(".")
            if _model_added_later(apps, app_label, codename):
                continue
            permissions.append(
                Permission.objects.using(using).get(
                    content_type__app_label=app_label, codename=codename
                )
            )
        group.permissions.add(*permissions)


def _model_added_later(apps, app_label, codename):
    """A model permission whose model a later migration creates: the post_migrate
    run after it gives the group that permission."""
    action, _, model = codename.partition("_")
    if action not in ("add", "change", "delete", "view"):
        return False
    try:
        apps.get_model(app_label, model)
    except LookupError:
        return True
    return False
