"""
The site's own settings for the app servers tests/test_two_servers.py starts.

Everything comes from carecodes.settings and the environment, as in production, but
static files: the hashed manifest needs ``collectstatic``, which would write into the
checkout on every run, so these servers find the files in ``static/`` as the rest of
the suite does (tests/conftest.py). Pages and caches are untouched.
"""

import warnings

from carecodes.settings import *  # noqa: F403
from carecodes.settings import STORAGES

STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
# Whitenoise's word that STATIC_ROOT is missing, as in pyproject.toml's filterwarnings.
warnings.filterwarnings("ignore", "No directory at", UserWarning)
