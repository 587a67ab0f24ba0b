from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PoliciesConfig(AppConfig):
    name = "policies"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        post_migrate.connect(_ensure_roles, sender=self)


def _ensure_roles(sender, using="default", **kwargs):
    # After every migrate and flush: a flushed database keeps the editorial groups.
    from django.apps import apps

    from .roles import ensure_roles

    ensure_roles(apps, using=using)
