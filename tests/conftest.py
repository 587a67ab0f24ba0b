import pytest
from django.core.cache import cache
from django.core.management import call_command

from carecodes import page_versions


@pytest.fixture(autouse=True)
def _plain_static_files_and_clean_cache(settings):
    # The manifest storage needs collectstatic; tests serve files through the finders.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {
            "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        },
    }
    settings.WHITENOISE_USE_FINDERS = True
    cache.clear()
    # Whatever page a test kept is gone with the cache; the epoch bump also retires
    # any copy another process of the same run still holds (carecodes.page_cache).
    page_versions.store().bump(["epoch"])
    yield
    cache.clear()


@pytest.fixture
def sample_data(db, django_capture_on_commit_callbacks):
    """The two seed documents loaded as the site's sample records.

    Only the seeds: the sample policies of other payers (sample_data/*.json, *.csv),
    which ``make run`` loads too, are imported by the tests that are about them.
    """
    # Derived data (the search index) is written on commit, which tests never reach.
    with django_capture_on_commit_callbacks(execute=True):
        call_command("load_sample_data", verbosity=0, seeds_only=True)
