from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "carecodes.search"
    label = "search"
    verbose_name = "Search index"

    def ready(self):
        from . import signals

        signals.connect()
