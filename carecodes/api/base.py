"""
The machinery under the API's endpoints: read-only dispatch, JSON errors, the rate
limit per client address, and pagination.

Nothing here knows about codes or policies; ``endpoints`` does.
"""

import functools
import math
import time

from django.conf import settings
from django.core.cache import cache
from django.http import Http404, JsonResponse
from django.urls import URLPattern, path, re_path, reverse
from django.utils.cache import patch_cache_control
from ninja import Field, NinjaAPI, Schema
from ninja.errors import HttpError, Throttled, ValidationError
from ninja.throttling import BaseThrottle

SAFE_METHODS = ("GET", "HEAD")
# Content changes when staff publish; clients and shared caches may keep an answer
# this long (ETags come from ConditionalGetMiddleware, so revalidation is cheap).
MAX_AGE = 300

# Pagination: far past any real list of pages, and an OFFSET every database takes.
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_PAGE = 10_000

# The rate limit counts requests per client in fixed windows of this many seconds.
RATE_WINDOW = 60
DEFAULT_RATE_LIMIT = 120


# How the OpenAPI document describes the rate limit's answer on every operation.
TOO_MANY_REQUESTS = {
    "description": "Too many requests from this address; wait, then try again.",
    "headers": {
        "Retry-After": {
            "description": "Seconds to wait.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


class ReadOnlyAPI(NinjaAPI):
    """
    A NinjaAPI whose every address answers GET and HEAD only, in JSON.

    Other methods get 405 (with ``Allow``) before any endpoint runs; HEAD runs the GET
    endpoint (the server drops the body). Missing addresses under the API's prefix get
    a JSON 404 rather than the site's HTML page, and the OpenAPI document is built
    once per process.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._schemas = {}
        self.add_exception_handler(Http404, self._not_found)
        self.add_exception_handler(ValidationError, self._invalid)
        self.add_exception_handler(Throttled, self._throttled)
        self.add_exception_handler(HttpError, self._http_error)

    def _get_urls(self):
        patterns = [
            pattern
            for pattern in super()._get_urls()
            if getattr(pattern, "name", None) != "api-root"
        ]
        patterns += [
            path("", self._index, name="api-root"),
            # Last: any other address under the prefix.
            re_path(r"^.+$", self._no_such_address, name="api-missing"),
        ]
        for pattern in patterns:
            if isinstance(pattern, URLPattern):
                pattern.callback = read_only(pattern.callback)
        return patterns

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        key = (path_prefix, tuple(sorted((path_params or {}).items())))
        if key not in self._schemas:
            schema = super().get_openapi_schema(
                path_prefix=path_prefix, path_params=path_params
            )
            for operations in schema["paths"].values():
                for operation in operations.values():
                    operation["responses"].setdefault("429", TOO_MANY_REQUESTS)
            self._schemas[key] = schema
        return self._schemas[key]

    def get_openapi_operation_id(self, operation):
        # The endpoint's own name (code_detail), for clients generated from the
        # document, rather than ninja's module path.
        return operation.view_func.__name__

    def _index(self, request):
        """What the API is and where its documents are."""
        return JsonResponse(
            {
                "name": self.title,
                "version": self.version,
                "openapi": request.build_absolute_uri(
                    reverse(f"{self.urls_namespace}:openapi-json")
                ),
                "docs": request.build_absolute_uri(
                    reverse(f"{self.urls_namespace}:openapi-view")
                ),
            }
        )

    def _no_such_address(self, request):
        docs = reverse(f"{self.urls_namespace}:openapi-view")
        return error_response(
            f"There is no API address {request.path}: the addresses are listed at "
            f"{docs}.",
            404,
        )

    def _not_found(self, request, exc):
        return error_response(str(exc) or "Not found.", 404)

    def _invalid(self, request, exc):
        errors = [
            {
                "location": ".".join(str(part) for part in error.get("loc", ())),
                "message": error.get("msg", ""),
            }
            for error in exc.errors
        ]
        detail = "; ".join(
            f"{error['location']}: {error['message']}" for error in errors
        )
        return JsonResponse(
            {"detail": detail or "The request could not be read.", "errors": errors},
            status=422,
        )

    def _throttled(self, request, exc):
        return error_response(
            f"Too many requests from your address: at most {rate_limit()} a minute. "
            "Wait for the number of seconds in Retry-After, then try again.",
            429,
        )

    def _http_error(self, request, exc):
        return error_response(str(exc), exc.status_code)


def error_response(detail: str, status: int) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status)


def read_only(view):
    """GET and HEAD only; successful answers are public, cacheable and open to CORS."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method not in SAFE_METHODS:
            response = error_response(
                f"The API is read-only: {request.method} is not allowed. "
                "Use GET (or HEAD).",
                405,
            )
            response["Allow"] = ", ".join(SAFE_METHODS)
            return response
        method = request.method
        # Endpoints are declared for GET; HEAD is the same request without the body.
        request.method = "GET"
        try:
            response = view(request, *args, **kwargs)
        finally:
            request.method = method
        # The pages are what search engines should list, not their data.
        response["X-Robots-Tag"] = "noindex"
        if response.status_code == 200:
            patch_cache_control(response, public=True, max_age=MAX_AGE)
            # Read-only public data: any web page may read it.
            response["Access-Control-Allow-Origin"] = "*"
        return response

    return wrapper


def rate_limit() -> int:
    """Requests each client may make per window (settings.API_RATE_LIMIT); 0: none."""
    return getattr(settings, "API_RATE_LIMIT", DEFAULT_RATE_LIMIT)


def client_address(request) -> str:
    """
    The address to count a request against.

    The connection's address, unless settings.API_TRUSTED_PROXIES says how many
    proxies in front of the site append to X-Forwarded-For: then the address the
    outermost of them saw. Without that, the header is ignored, since any client can
    write one.
    """
    proxies = getattr(settings, "API_TRUSTED_PROXIES", 0)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies > 0 and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-min(proxies, len(hops))][:64]
    return request.META.get("REMOTE_ADDR", "")[:64]


class PerClientRate(BaseThrottle):
    """
    At most ``rate_limit()`` requests per client address in each fixed window.

    Counted with the cache's atomic ``add`` and ``incr``, so app servers sharing
    Redis share the count, and a local-memory cache counts per process.
    """

    def allow_request(self, request) -> bool:
        limit = rate_limit()
        if limit <= 0:
            return True
        window = int(time.time()) // RATE_WINDOW
        key = f"api-rate:{client_address(request)}:{window}"
        cache.add(key, 0, timeout=RATE_WINDOW + 5)
        try:
            count = cache.incr(key)
        except ValueError:
            # The window's key expired between add and incr.
            cache.add(key, 1, timeout=RATE_WINDOW + 5)
            count = 1
        return count <= limit

    def wait(self) -> float:
        """Seconds until the current window ends (at least one)."""
        return max(1, math.ceil(RATE_WINDOW - time.time() % RATE_WINDOW))


class Error(Schema):
    detail: str = Field(description="What went wrong, in plain words.")


class PageQuery(Schema):
    page: int = Field(1, ge=1, le=MAX_PAGE, description="Page number, from 1.")
    page_size: int = Field(
        DEFAULT_PAGE_SIZE,
        ge=1,
        le=MAX_PAGE_SIZE,
        description=f"Items per page, at most {MAX_PAGE_SIZE}.",
    )


class PageMeta(Schema):
    count: int = Field(description="Items on all pages.")
    page: int
    page_size: int
    pages: int = Field(description="Number of pages (at least 1).")
    next: str | None = Field(description="Address of the next page, if any.")
    previous: str | None = Field(description="Address of the previous page, if any.")


def page_of(request, items, query: PageQuery, build) -> dict:
    """
    One page of ``items`` (a QuerySet, counted in the database, or a list), each
    turned into a dict by ``build``, with the counts and neighbours' addresses.
    """
    count = len(items) if isinstance(items, list) else items.count()
    start = (query.page - 1) * query.page_size
    chosen = items[start : start + query.page_size] if start < count else []
    pages = max(1, math.ceil(count / query.page_size))

    def address(number):
        params = request.GET.copy()
        params["page"] = number
        return request.build_absolute_uri(f"{request.path}?{params.urlencode()}")

    return {
        "items": [build(item) for item in chosen],
        "count": count,
        "page": query.page,
        "page_size": query.page_size,
        "pages": pages,
        "next": address(query.page + 1) if query.page < pages else None,
        "previous": address(min(query.page - 1, pages)) if query.page > 1 else None,
    }
