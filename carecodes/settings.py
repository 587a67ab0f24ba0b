"""
Settings for CareCodes, read from the environment.

Every variable is optional on a developer's machine: SQLite, a local-memory cache and
plain HTTP on 127.0.0.1. Production switches itself on with HTTPS=true, and then
refuses to start without a real SECRET_KEY.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}.")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(
            f"{name} must be a whole number, not {value!r}."
        ) from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def _secret_key(production: bool) -> str:
    key = env_str("SECRET_KEY").strip()
    key_file = Path(env_str("SECRET_KEY_FILE", str(BASE_DIR / ".secret_key")))
    if not key and not production and key_file.is_file():
        # `make run` and `make test` write this git-ignored file once per checkout.
        key = key_file.read_text().strip()
    if not key:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable "
            "(`make run` writes a local one to .secret_key for development)."
        )
    if production and (
        len(key) < 50 or len(set(key)) < 5 or key.startswith("django-insecure")
    ):
        raise ImproperlyConfigured(
            "SECRET_KEY is too weak for production: use at least 50 random characters."
        )
    return key


DEBUG = env_bool("DEBUG", False)
# HTTPS=true marks a production deployment behind TLS.
HTTPS = env_bool("HTTPS", False)
SECRET_KEY = _secret_key(production=HTTPS)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.sitemaps",
    "markdownx",
    "simple_history",
    # The JSON API (carecodes/api/); listed for its docs page's own static files.
    "ninja",
    "carecodes",
    "procedures",
    "policies",
    "index",
    # Sign-in throttling: failed attempts and lockouts, listed in the admin.
    "axes",
]

MIDDLEWARE = [
    # Outermost: a cached public page is answered before any other work, with the
    # final headers (CSP, HSTS, ...) stored with it. It also compresses every page
    # (brotli or gzip; WhiteNoise serves static files compressed already), staff
    # pages with Django's gzip, which pads its output against BREACH.
    "carecodes.page_cache.PageCacheMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "carecodes.middleware.RejectNulMiddleware",
    "carecodes.middleware.RefuseTraceMiddleware",
    "carecodes.middleware.PermissionsPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.http.ConditionalGetMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Records who made each change in the content's history.
    "simple_history.middleware.HistoryRequestMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    # Below the CSP middleware, so the admin's policy is chosen before it is written.
    "carecodes.middleware.AdminStylePolicyMiddleware",
    # Last, as django-axes asks: it answers a locked-out sign-in with its page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "carecodes.urls"
WSGI_APPLICATION = "carecodes.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "carecodes.context_processors.site",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Search reads the first matches in table order (carecodes/search/postgres.py):
    # every scan starts at the table's first page, and none is split between
    # workers, so the same query reads the same rows. (The site's queries are all
    # small: a parallel plan never paid for its start-up here.)
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["options"] = " ".join(
        filter(
            None,
            [
                _options.get("options", ""),
                "-c synchronize_seqscans=off -c max_parallel_workers_per_gather=0 "
                "-c plan_cache_mode=force_generic_plan",
            ],
        )
    )
    # Search's statements are prepared on the server and planned once per
    # connection (carecodes/search/postgres.py: its plans do not depend on the
    # words searched for). Django's own cursors bind parameters on the client and
    # never prepare, so neither setting touches the ORM's queries.
    _options.setdefault("prepare_threshold", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "carecodes"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# The full-page cache for public pages (carecodes/page_cache.py). PAGE_CACHE=off
# serves every page drawn afresh (to measure uncached pages). Pages are kept a day
# (a change invalidates them at once whatever this says), search results a minute.
PAGE_CACHE = env_bool("PAGE_CACHE", True)
PAGE_CACHE_TIMEOUT = env_int("PAGE_CACHE_TIMEOUT", 24 * 60 * 60)
PAGE_CACHE_SEARCH_TIMEOUT = env_int("PAGE_CACHE_SEARCH_TIMEOUT", 60)
# Without Redis, the content versions live in a file every local process maps, one
# per database (carecodes/page_versions.py).
PAGE_CACHE_VERSIONS_DIR = Path(
    env_str("PAGE_CACHE_VERSIONS_DIR", str(BASE_DIR / "var" / "page-cache"))
)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]

# Axes' backend comes first: it refuses a locked-out sign-in before any password check.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Five wrong passwords for one username from one address lock that pair out for 15
# minutes; a right password before then starts the count again. Locking by the pair
# keeps one attacker from locking a colleague out from everywhere. Behind a load
# balancer every client shares its address, so the lock then falls on the username.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Every failed attempt is kept as well as the count (Axes › Access failures).
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_LOCKOUT_CALLABLE = "carecodes.views.locked_out"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_MAX_AGE = 3600

# Security headers; the HTTPS group only makes sense behind TLS.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Only staff sign in: a session lasts a working day, not Django's two weeks.
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 60 * 60)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

SECURE_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
}
# The admin and markdownx set a few inline style attributes: only their pages allow
# them (carecodes.middleware.AdminStylePolicyMiddleware, carecodes.views).
ADMIN_CSP = {**SECURE_CSP, "style-src": ["'self'", "'unsafe-inline'"]}
# Browser features the site never uses, switched off for every page and anything
# embedded in one.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "browsing-topics",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "usb",
    )
)

# django-markdownx: the preview goes through the site's one sanitising renderer, and
# image uploads are switched off (see carecodes/views.py).
MARKDOWNX_MARKDOWNIFY_FUNCTION = "carecodes.markdown.render_markdown"
MARKDOWNX_URLS_PATH = "/markdownx/markdownify/"
MARKDOWNX_UPLOAD_URLS_PATH = "/markdownx/upload/"
MARKDOWNX_UPLOAD_MAX_SIZE = 0

# The year printed in the AMA notice on pages that show CPT descriptors.
CPT_COPYRIGHT_YEAR = env_int("CPT_COPYRIGHT_YEAR", 2026)
SITE_NAME = "CareCodes"

# The JSON API (carecodes/api/): requests each client address may make a minute (0
# switches the limit off), and how many proxies in front of the site append to
# X-Forwarded-For (0: count by the connection's address; the header is ignored).
API_RATE_LIMIT = env_int("API_RATE_LIMIT", 120)
API_TRUSTED_PROXIES = env_int("API_TRUSTED_PROXIES", 0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING")},
}
