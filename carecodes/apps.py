from django.apps import AppConfig


class CarecodesConfig(AppConfig):
    name = "carecodes"

    def ready(self):
        from . import page_cache

        page_cache.connect()
