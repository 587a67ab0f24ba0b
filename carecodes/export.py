"""
The public site as files: every public page rendered through the real URLconf and
written where a plain file server finds it (``/codes/cpt/97546/`` ->
``codes/cpt/97546/index.html``), with the collected static files beside them.

Pages are found two ways: the database names the many (every code, policy, payer,
section) and each rendered page's own links name the rest (a policy's versions, a
code's coverage and changes pages, handouts, sitemap parts), so every address a
page links to is exported once its kind is. A manifest in the export keeps each
file's SHA-256: a run writes only files whose bytes changed and removes the files
of pages that are gone.
"""

import hashlib
import html
import inspect
import json
import logging
import multiprocessing
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connections
from django.http import Http404, HttpResponseNotFound
from django.test import Client, RequestFactory
from django.urls import Resolver404, resolve, reverse

from policies.models import Payer, Policy
from procedures.codes import SYSTEM_LABELS
from procedures.models import Code, CodeSection
from procedures.sitemaps import CodeAddresses

MANIFEST = ".export-manifest.json"
NOT_FOUND_PAGE = "404.html"

# The kinds a run can be limited to (--only), each with the URL names it covers.
KINDS = {
    "pages": {"procedures:home", "procedures:code_index", "procedures:system_index"},
    "codes": {
        "procedures:code",
        "similar_codes",
        "procedures:coverage",
        "procedures:handout",
        "policies:code_changes",
    },
    "policies": {
        "policies:policy",
        "policies:version",
        "policies:changes",
        "policies:changes_feed",
    },
    "payers": {"policies:payer", "policies:payer_changes_feed"},
    "sections": {"procedures:section"},
    "sitemaps": {"sitemap", "sitemap_section", "robots_txt"},
    "static": set(),
}
KIND_OF_URL_NAME = {name: kind for kind, names in KINDS.items() for name in names}

# Addresses that answer each visitor differently and stay on the app server.
DYNAMIC_PREFIXES = (
    "/search/",
    "/admin/",
    "/markdownx/",
    "/api/",
    "/infobutton/",
)

# href="..." and src="..." in HTML and Atom; <loc> in sitemaps.
_LINK = re.compile(r'(?:href|src)="([^"]*)"|<loc>([^<]*)</loc>')
_CRAWLED_TYPES = ("text/html", "application/xml", "application/atom+xml")
# A sitemap part after the first: /sitemap-codes.xml?p=2.
_SITEMAP_PART = re.compile(r"^(/sitemap-[\w-]+)\.xml\?p=([0-9]+)$")
BATCH = 200


class ExportError(Exception):
    """The export cannot start: a message for the person who ran it."""


@dataclass
class Outcome:
    """What happened to one address."""

    path: str
    kind: str
    file: str = ""
    digest: str = ""
    written: bool = False
    problem: str = ""
    links: list[str] = field(default_factory=list)


@dataclass
class Summary:
    written: int = 0
    unchanged: int = 0
    removed: int = 0
    problems: list[str] = field(default_factory=list)
    # The files this run wrote or removed, relative to the export.
    changed: list[str] = field(default_factory=list)

    @property
    def files(self) -> int:
        return self.written + self.unchanged


def check_target(target: Path) -> Path:
    """The export directory, created if missing; ExportError if it can't be one."""
    target = target.expanduser().resolve()
    for folder in [*settings.STATICFILES_DIRS, settings.STATIC_ROOT]:
        folder = Path(folder).resolve()
        if target == folder or folder in target.parents:
            raise ExportError(
                f"{target} is inside the project's static files ({folder}): "
                "collectstatic would copy the export into the site. Choose a "
                "directory elsewhere."
            )
    if target.exists() and not target.is_dir():
        raise ExportError(f"{target} is a file, not a directory.")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExportError(f"Cannot create {target}: {error.strerror}.") from error
    if not os.access(target, os.W_OK | os.X_OK):
        raise ExportError(f"Cannot write into {target}: permission denied.")
    return target


def file_for(path: str) -> str:
    """
    The file, relative to the export, that serves ``path`` under a file server:
    directory addresses get an index.html, files keep their names, and a sitemap
    part (``?p=2``) a name of its own.
    """
    if part := _SITEMAP_PART.match(path):
        return f"{part[1].lstrip('/')}-p{part[2]}.xml"
    relative = path.lstrip("/")
    return f"{relative}index.html" if path.endswith("/") else relative


def sitemap_index_for_files(body: bytes) -> bytes:
    """The sitemap index with its part addresses (``?p=2``) named as exported."""
    return re.sub(rb"(/sitemap-[\w-]+)\.xml\?p=([0-9]+)", rb"\1-p\2.xml", body)


def kind_of(path: str) -> str | None:
    """The export kind of a site address, or None for one that is not exported."""
    address = urlsplit(path).path
    if address.startswith(DYNAMIC_PREFIXES) or address.startswith(settings.STATIC_URL):
        return None
    try:
        match = resolve(address)
    except Resolver404:
        return None
    return KIND_OF_URL_NAME.get(match.view_name)


def internal_links(body: str, base_url: str) -> set[str]:
    """
    The site addresses a page links to, as a file server sees them: no fragment,
    and no query but a sitemap part's.
    """
    found = set()
    for href, loc in _LINK.findall(body):
        link = html.unescape(href or loc).strip()
        if link.startswith(base_url):
            link = link[len(base_url) :] or "/"
        if not link.startswith("/") or link.startswith("//"):
            continue
        link = link.split("#", 1)[0]
        if "?" in link and not _SITEMAP_PART.match(link):
            # A file server ignores the query: ?page=2 and ?to=3 get the page itself.
            link = link.split("?", 1)[0]
        found.add(link)
    return found


def seeds(kinds: set[str]):
    """(path, kind) for the pages the database names; links find the rest."""
    if "pages" in kinds:
        yield "/", "pages"
        yield reverse("procedures:code_index"), "pages"
        for system in SYSTEM_LABELS:
            yield reverse("procedures:system_index", args=[system.value]), "pages"
    if "sitemaps" in kinds:
        yield reverse("sitemap"), "sitemaps"
        yield reverse("robots_txt"), "sitemaps"
    if "payers" in kinds:
        for payer in Payer.objects.order_by("slug"):
            yield payer.get_absolute_url(), "payers"
    if "policies" in kinds:
        # A withdrawn policy answers 410 Gone, which no file can say: it is left out.
        for policy in Policy.objects.published().select_related("payer").order_by("pk"):
            yield policy.get_absolute_url(), "policies"
    if "sections" in kinds:
        for section in CodeSection.objects.order_by("system", "start_key"):
            yield section.get_absolute_url(), "sections"
    if "codes" in kinds:
        addresses = CodeAddresses()
        rows = Code.objects.only("system", "code").order_by("system", "sort_key")
        for code in rows.iterator(chunk_size=5000):
            page = addresses.code_address(code)
            yield page, "codes"
            yield f"{page}similar/", "codes"


class Renderer:
    """Renders addresses through the site and writes the files whose bytes changed."""

    def __init__(self, target: Path, base_url: str):
        self.target = target
        self.base_url = base_url
        parts = urlsplit(base_url)
        self.client = Client(HTTP_HOST=parts.netloc, secure=parts.scheme == "https")
        self.client.raise_request_exception = False
        self.requests = RequestFactory(
            HTTP_HOST=parts.netloc, secure=parts.scheme == "https"
        )

    def render(self, path: str, kind: str, known: str) -> Outcome:
        outcome = Outcome(path, kind)
        response = self.get(path)
        if response.status_code == 410:
            return outcome  # gone on purpose (a withdrawn policy): no file
        if response.status_code != 200:
            outcome.problem = f"{path} answered {response.status_code}"
            return outcome
        body = response.content
        content_type = response.get("Content-Type", "")
        if content_type.startswith(_CRAWLED_TYPES):
            outcome.links = sorted(
                internal_links(body.decode(response.charset or "utf-8"), self.base_url)
            )
        if path == reverse("sitemap"):
            body = sitemap_index_for_files(body)
        outcome.file = file_for(path)
        outcome.digest = hashlib.sha256(body).hexdigest()
        if outcome.digest != known or not (self.target / outcome.file).exists():
            write_atomically(self.target / outcome.file, body)
            outcome.written = True
        return outcome

    def get(self, path: str):
        """
        The site's response to ``path``. Sitemaps skip their hour in the page cache
        (cache_page): a run just after an edit must see it, and their views build
        the whole body themselves, so only the middleware's headers are left out.
        """
        match = resolve(urlsplit(path).path)
        if match.view_name not in {"sitemap", "sitemap_section"}:
            return self.client.get(path)
        request = self.requests.get(path)
        try:
            response = inspect.unwrap(match.func)(request, *match.args, **match.kwargs)
        except Http404:
            return HttpResponseNotFound()
        # The index is a TemplateResponse, which the middleware would render.
        return response.render() if hasattr(response, "render") else response

    def not_found_page(self, known: str) -> Outcome:
        """
        The site's 404 page for a file server to send for any missing file. "/-/"
        names nothing the page could suggest, so it carries no guess.
        """
        outcome = Outcome("/-/", "pages", file=NOT_FOUND_PAGE)
        # Django logs every 404 as a warning; this one is asked for.
        request_log = logging.getLogger("django.request")
        level = request_log.level
        request_log.setLevel(logging.ERROR)
        try:
            body = self.client.get("/-/").content
        finally:
            request_log.setLevel(level)
        outcome.digest = hashlib.sha256(body).hexdigest()
        if outcome.digest != known or not (self.target / NOT_FOUND_PAGE).exists():
            write_atomically(self.target / NOT_FOUND_PAGE, body)
            outcome.written = True
        return outcome


def write_atomically(file: Path, body: bytes) -> None:
    """A file server never sends half a page: the new file replaces the old whole."""
    file.parent.mkdir(parents=True, exist_ok=True)
    partial = file.with_name(f".{file.name}.partial")
    partial.write_bytes(body)
    os.replace(partial, file)


# Each worker process renders with its own client and database connection.
_worker: Renderer | None = None


def _start_worker(target: Path, base_url: str) -> None:
    global _worker
    _worker = Renderer(target, base_url)


def _render_batch(batch: list[tuple[str, str, str]]) -> list[Outcome]:
    return [_worker.render(path, kind, known) for path, kind, known in batch]


class Export:
    """One run: render what the kinds hold, write changes, remove what is gone."""

    def __init__(self, target: Path, base_url: str, kinds: set[str], jobs: int = 1):
        self.target = target
        self.base_url = base_url.rstrip("/")
        self.kinds = kinds
        self.jobs = jobs
        self.old = self._read_manifest()
        self.files: dict[str, dict] = {}
        self.summary = Summary()

    def _read_manifest(self) -> dict[str, dict]:
        try:
            data = json.loads((self.target / MANIFEST).read_text())
        except (OSError, ValueError):
            return {}
        if data.get("base_url") != self.base_url:
            return {}
        return data.get("files", {})

    def run(self, progress=None) -> Summary:
        progress = progress or (lambda done, total: None)
        if "static" in self.kinds:
            self._copy_static()
        renderer = Renderer(self.target, self.base_url)
        if "pages" in self.kinds:
            self._record(renderer.not_found_page(self._known(NOT_FOUND_PAGE)))
        seen = set()
        todo = []
        for path, kind in seeds(self.kinds):
            if path not in seen:
                seen.add(path)
                todo.append((path, kind))
        total = len(todo)
        done = 0
        while todo:
            found = []
            for outcome in self._render_all(renderer, todo):
                self._record(outcome)
                done += 1
                progress(done, total)
                for link in outcome.links:
                    if link not in seen and (kind := kind_of(link)) in self.kinds:
                        seen.add(link)
                        found.append((link, kind))
            total += len(found)
            todo = found
        self._remove_gone()
        self._write_manifest()
        return self.summary

    def _known(self, file: str) -> str:
        return self.old.get(file, {}).get("sha256", "")

    def _render_all(self, renderer: Renderer, todo: list[tuple[str, str]]):
        jobs = [(path, kind, self._known(file_for(path))) for path, kind in todo]
        batches = [jobs[start : start + BATCH] for start in range(0, len(jobs), BATCH)]
        if self.jobs <= 1 or len(batches) <= 1:
            for batch in batches:
                yield from (renderer.render(*job) for job in batch)
            return
        # Forked workers must not share the parent's open database connection.
        connections.close_all()
        context = multiprocessing.get_context("fork")
        with context.Pool(
            self.jobs, _start_worker, (self.target, self.base_url)
        ) as pool:
            for outcomes in pool.imap(_render_batch, batches):
                yield from outcomes

    def _record(self, outcome: Outcome) -> None:
        if outcome.problem:
            self.summary.problems.append(outcome.problem)
            return
        if not outcome.file or outcome.file in self.files:
            return
        self.files[outcome.file] = {"kind": outcome.kind, "sha256": outcome.digest}
        if outcome.written:
            self.summary.written += 1
            self.summary.changed.append(outcome.file)
        else:
            self.summary.unchanged += 1

    def _copy_static(self) -> None:
        """collectstatic's output (hashed names, .gz and .br) under STATIC_URL."""
        root = Path(settings.STATIC_ROOT)
        prefix = settings.STATIC_URL.lstrip("/")
        if not root.is_dir():
            raise ExportError(
                f"{root} holds no static files: run manage.py collectstatic first "
                "(the pages name its files)."
            )
        for source in sorted(root.rglob("*")):
            if not source.is_file():
                continue
            file = f"{prefix}{source.relative_to(root).as_posix()}"
            body = source.read_bytes()
            digest = hashlib.sha256(body).hexdigest()
            outcome = Outcome(file, "static", file=file, digest=digest)
            destination = self.target / file
            if digest != self._known(file) or not destination.exists():
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, destination)
                outcome.written = True
            self._record(outcome)

    def _remove_gone(self) -> None:
        """Files of the chosen kinds that the last run wrote and this one did not."""
        for file, entry in self.old.items():
            if entry.get("kind") not in self.kinds:
                # Not looked at this run (--only): kept as it was.
                self.files.setdefault(file, entry)
            elif file not in self.files:
                (self.target / file).unlink(missing_ok=True)
                self._prune(self.target / file)
                self.summary.removed += 1
                self.summary.changed.append(file)

    def _prune(self, file: Path) -> None:
        folder = file.parent
        while folder != self.target and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent

    def _write_manifest(self) -> None:
        data = {"base_url": self.base_url, "files": dict(sorted(self.files.items()))}
        write_atomically(self.target / MANIFEST, json.dumps(data, indent=0).encode())
