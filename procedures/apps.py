from django.apps import AppConfig


class ProceduresConfig(AppConfig):
    name = "procedures"
    # The same as settings.DEFAULT_AUTO_FIELD, stated so the app's tables do not
    # change if the project default ever does.
    default_auto_field = "django.db.models.BigAutoField"
