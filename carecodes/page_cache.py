"""
The full-page cache for public pages, invalidated exactly by content versions.

``PageCacheMiddleware`` sits outermost: a hit reads the page and its tags' current
versions (one Redis round trip; or one local-memory read and a numpy gather from
the shared version file), then the stored final headers (CSP, HSTS, ...) and the
body already compressed as the client asked (identity, gzip or brotli). No ORM, no
template, no compression on a hit.

What is cached: anonymous GET and HEAD of public pages answered 200 without
Set-Cookie, ``private`` or ``no-store``, and without a ``Vary`` beyond
Accept-Encoding. A request carrying the session cookie (staff) is never read from
the cache nor stored, and neither is anything under /admin/, /markdownx/, /api/,
/infobutton/ or /static/, or any request inside an open transaction (it may see
writes no one else can yet). ``PAGE_CACHE=off`` stores and reads nothing.

Invalidation: while a page is drawn, every content object it loads adds a tag
(``code:<id>``, ``policy:<id>``, ``payer:<id>``, ``section:<id>``; carecodes.
page_tags), and views add what no loaded object says (``cov:<code id>``: which
policies name the code; ``list:<code id>``: its similar codes; ``writeups``: the
latest write-ups; ``lay``: the lay terms; ``content``: anything, for search and the
sitemaps). The page keeps its tags' versions (carecodes.page_versions) and is served
only while they are unchanged. After a commit, the change queue's ``refreshed``
signal (index.changes) and the receivers below bump exactly the tags of what
changed. The counter is read before a page is drawn; a page is not stored if any of
its tags moved past it meanwhile, so a change racing with a render never leaves a
stale page behind.
"""

import gzip
import hashlib
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

import brotli
from django.conf import settings
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_init, post_save
from django.http import HttpResponse, HttpResponseNotModified
from django.middleware.gzip import GZipMiddleware
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.http import http_date, parse_http_date_safe

from . import page_tags, page_versions

# Browsers revalidate every time (max-age=0), so a member of staff never sees their
# own page stale after a save, and a revalidation costs a hit and a 304. A shared
# cache (CDN) may keep a page a minute: an edit reaches every visitor within a minute,
# while a popular page costs the origin one request a minute per CDN node. Past that
# minute a CDN may serve the old page for five more while it fetches the new one in
# the background, so a busy page never waits on the origin.
PUBLIC_CACHE_CONTROL = "public, max-age=0, s-maxage=60, stale-while-revalidate=300"
BYPASSED_PREFIXES = ("/admin/", "/markdownx/", "/api/", "/infobutton/")
# Queries worth a cache entry outside search: a sitemap's part, a list's page.
KEYED_PARAMETERS = {"p", "page"}
SEARCH_PREFIX = "/search/"
TAG_LIMIT = 2000  # a page loading more objects than this keys on "content" instead
ENCODINGS = ("br", "gzip", "identity")


def enabled() -> bool:
    return settings.PAGE_CACHE


@dataclass
class Entry:
    """A stored page: its final headers and bodies, and the versions it was drawn at."""

    headers: list
    bodies: dict
    etag: str
    last_modified: str | None
    keys: object = None
    versions: object = None
    tags: list = field(default_factory=list)

    def etag_for(self, encoding: str) -> str:
        if encoding == "identity":
            return self.etag
        return f'"{self.etag[1:-1]}-{encoding}"'


class PageCacheMiddleware:
    """Serve public pages from the page cache; store, compress and tag the rest."""

    def __init__(self, get_response):
        self.get_response = get_response
        # Responses that may carry a secret (staff pages, forms with a CSRF token)
        # keep Django's gzip, which pads its output against BREACH.
        self.private_gzip = GZipMiddleware(get_response)

    def __call__(self, request):
        path = request.path_info
        if path.startswith(settings.STATIC_URL):
            return self.get_response(request)
        key = cache_key(request) if public_request(request) else None
        if key is None:
            return self.bypass(request)
        use_cache = enabled() and not connection.in_atomic_block
        if use_cache:
            versions = page_versions.store()
            entry, current = versions.lookup(key)
            if entry is not None and versions.same(entry.versions, current):
                return answer(request, entry, "hit")
        return self.draw(request, key, use_cache)

    def bypass(self, request):
        response = self.get_response(request)
        if settings.SESSION_COOKIE_NAME in request.COOKIES:
            # Drawn for a member of staff: no shared cache may keep it.
            patch_cache_control(response, private=True, no_store=True)
        response.headers.setdefault("X-Page-Cache", "bypass")
        return self.private_gzip.process_response(request, response)

    def draw(self, request, key, use_cache):
        versions = page_versions.store() if use_cache else None
        before = versions.counter() if versions else 0
        # Conditional headers go through: a view that answers them itself (a
        # handout's PDF) need not draw anything. The page's own ETag is not ours,
        # so ConditionalGetMiddleware answers such a request in full, and this
        # answers it with ours below; a 304 from the view is passed on, unkept.
        collected = page_tags.start()
        try:
            response = self.get_response(request)
        finally:
            page_tags.stop()
        if not storable(response):
            return self.private_gzip.process_response(request, response)
        entry = make_entry(request, response, collected, every_encoding=use_cache)
        if use_cache:
            entry.tags = page_tags_of(collected, request)
            entry.keys = versions.keys(entry.tags)
            entry.versions = versions.read(entry.keys)
            # A tag bumped while the page was drawn: the page may show the content
            # from before the change. Serve it, but do not keep it.
            if versions.newest(entry.versions) <= before:
                timeout = (
                    settings.PAGE_CACHE_SEARCH_TIMEOUT
                    if request.path_info.startswith(SEARCH_PREFIX)
                    else settings.PAGE_CACHE_TIMEOUT
                )
                versions.keep(key, entry, timeout)
        return answer(request, entry, "miss" if use_cache else "off")


def public_request(request) -> bool:
    if request.method not in ("GET", "HEAD"):
        return False
    if settings.SESSION_COOKIE_NAME in request.COOKIES:
        return False
    return not request.path_info.startswith(BYPASSED_PREFIXES)


def cache_key(request) -> str | None:
    """The page's address as the cache keys it, or None for a query not worth one."""
    query = request.META.get("QUERY_STRING", "")
    path = request.path_info
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if path.startswith(SEARCH_PREFIX):
            # One entry per search, however its words were spelt in the address.
            query = urlencode(sorted(pairs))
        elif not {name for name, _ in pairs} <= KEYED_PARAMETERS:
            return None
        # Elsewhere the address as it came: another spelling of a page number
        # (?p=02) is the view's to redirect, never served from the canonical entry.
    scheme = "https" if request.is_secure() else "http"
    host = request.META.get("HTTP_HOST", request.META.get("SERVER_NAME", ""))
    address = f"{scheme}://{host}{path}?{query}"
    return "page:" + hashlib.blake2b(address.encode(), digest_size=16).hexdigest()


def storable(response) -> bool:
    if response.status_code != 200 or response.streaming:
        return False
    if "Set-Cookie" in response or response.cookies:
        return False
    if response.has_header("Content-Encoding"):
        return False
    control = response.get("Cache-Control", "").lower()
    if "private" in control or "no-store" in control or "no-cache" in control:
        return False
    vary = {part.strip().lower() for part in response.get("Vary", "").split(",")}
    return vary <= {"", "accept-encoding"}


def make_entry(request, response, collected, *, every_encoding) -> Entry:
    body = response.content
    etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
    kept = [
        (name, value)
        for name, value in response.items()
        if name.lower()
        not in {"content-length", "vary", "etag", "last-modified", "content-encoding"}
    ]
    if not response.has_header("Cache-Control"):
        kept.append(("Cache-Control", PUBLIC_CACHE_CONTROL))
    last_modified = response.get("Last-Modified")
    if last_modified is None and collected.last_modified is not None:
        last_modified = http_date(collected.last_modified.timestamp())
    wanted = ENCODINGS if every_encoding else (chosen_encoding(request),)
    bodies = {encoding: compress(body, encoding) for encoding in wanted}
    return Entry(kept, bodies, etag, last_modified)


def compress(body: bytes, encoding: str) -> bytes:
    if encoding == "br":
        # Quality 5: within a few per cent of 11's size at a tenth of its time, and
        # paid once per stored page.
        return brotli.compress(body, quality=5, mode=brotli.MODE_TEXT)
    if encoding == "gzip":
        return gzip.compress(body, compresslevel=6, mtime=0)
    return body


def chosen_encoding(request) -> str:
    accepted = request.META.get("HTTP_ACCEPT_ENCODING", "")
    codings = {
        part.split(";")[0].strip().lower()
        for part in accepted.split(",")
        if not part.strip().lower().replace(" ", "").endswith(";q=0")
    }
    if "br" in codings:
        return "br"
    if "gzip" in codings or "*" in codings:
        return "gzip"
    return "identity"


def answer(request, entry: Entry, state: str):
    encoding = chosen_encoding(request)
    if encoding not in entry.bodies:
        encoding = "identity"
    etag = entry.etag_for(encoding)
    if not_modified(request, entry):
        response = HttpResponseNotModified()
        for name, value in entry.headers:
            if name.lower() != "content-type":
                response[name] = value
    else:
        response = HttpResponse(entry.bodies[encoding])
        for name, value in entry.headers:
            response[name] = value
        if encoding != "identity":
            response["Content-Encoding"] = encoding
        response["Content-Length"] = str(len(entry.bodies[encoding]))
    response["ETag"] = etag
    if entry.last_modified:
        response["Last-Modified"] = entry.last_modified
    patch_vary_headers(response, ("Accept-Encoding",))
    response["X-Page-Cache"] = state
    return response


def not_modified(request, entry: Entry) -> bool:
    asked = request.META.get("HTTP_IF_NONE_MATCH")
    if asked is not None:
        ours = {entry.etag_for(encoding) for encoding in ENCODINGS}
        offered = {tag.strip().removeprefix("W/") for tag in asked.split(",")}
        return "*" in offered or bool(ours & offered)
    since = request.META.get("HTTP_IF_MODIFIED_SINCE")
    if since and entry.last_modified:
        asked_time = parse_http_date_safe(since)
        modified = parse_http_date_safe(entry.last_modified)
        return None not in (asked_time, modified) and modified <= asked_time
    return False


def page_tags_of(collected, request) -> list[str]:
    tags = collected.tags
    if len(tags) > TAG_LIMIT:
        tags = {tag for tag in tags if ":" not in tag} | {"content"}
    return sorted(tags | {"epoch"})


# --- Tags of what a page loads ---------------------------------------------------


def _loaded(prefix, column="id"):
    """A post_init receiver tagging each loaded object as ``prefix:<its column>``."""

    def receiver(sender, instance, **kwargs):
        collected = page_tags.collecting()
        if collected is None:
            return
        values = instance.__dict__
        if values.get(column) is not None:
            collected.tags.add(f"{prefix}:{values[column]}")
        page_tags.changed_at(values.get("updated_at"))

    return receiver


# --- Bumps after commit ------------------------------------------------------------

_pending = threading.local()


def bump_on_commit(*tags: str) -> None:
    """Bump these tags once the transaction commits (at once outside one)."""
    if not hasattr(_pending, "tags"):
        _pending.tags = set()
    _pending.tags.update(tags)
    transaction.on_commit(flush_bumps, robust=True)


def flush_bumps() -> None:
    tags = getattr(_pending, "tags", set())
    _pending.tags = set()
    if tags:
        page_versions.store().bump(sorted(tags))


def index_refreshed(sender, changes=None, relisted=None, reached=(), **kwargs):
    """The change queue refreshed the index: bump the tags of what changed."""
    from policies.models import Policy

    tags = {"content"}
    if changes.everything or relisted is None:
        tags.add("epoch")  # a bulk import, or lists of unknown extent recomputed
    tags.update(f"code:{pk}" for pk in changes.codes)
    tags.update(f"policy:{pk}" for pk in changes.policies)
    tags.update(f"list:{pk}" for pk in relisted or ())
    coverage = set(reached) | changes.codes | changes.lists
    tags.update(f"cov:{pk}" for pk in coverage)
    if changes.policies:
        payers = Policy.objects.filter(pk__in=changes.policies).values_list(
            "payer_id", flat=True
        )
        tags.update(f"payer:{pk}" for pk in set(payers))
    page_versions.store().bump(sorted(tags))


def _code_saved(sender, instance, created=False, **kwargs):
    # A new or deleted code changes the lists of its section and system.
    if created or kwargs.get("signal") is post_delete:
        bump_on_commit("sections", "content")


def _codes_bulk_saved(sender, **kwargs):
    # An import may add codes to any list of codes (sections, a policy's links).
    bump_on_commit("sections", "content")


def _writeup_saved(sender, instance, **kwargs):
    bump_on_commit("writeups", "content", f"code:{instance.code_id}")


def _payer_saved(sender, instance, **kwargs):
    bump_on_commit(f"payer:{instance.pk}", "content")


def _section_saved(sender, instance, **kwargs):
    bump_on_commit(f"section:{instance.pk}", "sections", "content")


def _lay_terms_changed(sender, **kwargs):
    bump_on_commit("lay", "content")


def connect():
    """Connect the page cache to the content and the change queue (app ready())."""
    from index.changes import refreshed
    from policies.models import Payer, Policy
    from procedures.models import (
        Code,
        CodeSection,
        LaySynonym,
        LayTerm,
        LayTermTarget,
        Procedure,
    )
    from procedures.signals import codes_bulk_saved, lay_terms_bulk_saved

    for model, prefix, column in (
        (Code, "code", "id"),
        (Policy, "policy", "id"),
        (Payer, "payer", "id"),
        (CodeSection, "section", "id"),
        # A write-up shows on its code's pages: it is tagged as its code.
        (Procedure, "code", "code_id"),
    ):
        post_init.connect(_loaded(prefix, column), sender=model, weak=False)
    # Saved or deleted: the same tags change.
    receivers = {
        Code: _code_saved,
        Procedure: _writeup_saved,
        Payer: _payer_saved,
        CodeSection: _section_saved,
        LayTerm: _lay_terms_changed,
        LayTermTarget: _lay_terms_changed,
        LaySynonym: _lay_terms_changed,
    }
    for signal in (post_save, post_delete):
        for model, receiver in receivers.items():
            signal.connect(receiver, sender=model, dispatch_uid=f"page-cache-{model}")
    lay_terms_bulk_saved.connect(_lay_terms_changed, dispatch_uid="page-cache-lay")
    codes_bulk_saved.connect(_codes_bulk_saved, dispatch_uid="page-cache-codes")
    refreshed.connect(index_refreshed, dispatch_uid="page-cache-index")
