from django.apps import AppConfig


class IndexConfig(AppConfig):
    """Everything derived from content: search and similar codes."""

    name = "index"
    verbose_name = "Search and similar codes"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # The one change queue listens to the content apps (they never import this).
        from . import changes

        changes.connect()
