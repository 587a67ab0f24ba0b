"""
PDF handouts of published write-ups: one per code, from the code page's write-up HTML.

The HTML is ``procedures/handout.html`` (the code page's ``_writeup.html`` include with
a header and the disclaimer) styled by the site's own ``site.css``, whose print rules
apply, and ``handout.css`` for the page box. WeasyPrint turns it into PDF in this
process: no browser and no server. It is given the CSS inline and may fetch nothing
but ``data:`` addresses, so drawing a handout never touches the network.

The view serves ``/codes/<system>/<code>/handout.pdf``; ``manage.py export_handouts``
writes the same PDFs to a folder under the names OpenEMR's patient education reads.
"""

import datetime
import functools
import hashlib
import logging
import threading
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.cache import cache
from django.http import HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.http import content_disposition_header, http_date
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_safe

from carecodes import seo
from carecodes.errors import NotFound

from . import codes
from .models import Code, Procedure
from .views import code_page_target

logger = logging.getLogger(__name__)

# Write-ups are written in English only; Spanish and others come later.
LANGUAGES = {"en": "English"}

# The code type names of the handout files (``CPT_97546_en.pdf``).
CODE_TYPES = {
    codes.System.CPT: "CPT",
    codes.System.HCPCS: "HCPCS",
    codes.System.ICD10CM: "ICD10",
    codes.System.ICD10PCS: "ICD10PCS",
}
# OpenEMR's own code type keys. Its education.php lower-cases the whole file name
# before it opens "documents/education/<name>", so on a case-sensitive disk these
# are the names it finds (``cpt4_97546_en.pdf``, ``icd10_e11.9_en.pdf``).
OPENEMR_CODE_TYPES = {
    codes.System.CPT: "CPT4",
    codes.System.HCPCS: "HCPCS",
    codes.System.ICD10CM: "ICD10",
    codes.System.ICD10PCS: "ICD10-PCS",
}

STYLESHEETS = ("css/site.css", "css/handout.css")
# A handout taking longer than this gets the 503 page; the drawing goes on and its
# PDF is kept, so asking again shortly after gets it.
RENDER_TIMEOUT_SECONDS = 20
RETRY_AFTER_SECONDS = 30
CACHE_SECONDS = 24 * 60 * 60
# Browsers and proxies may keep a handout this long before asking again.
MAX_AGE_SECONDS = 300

# One drawing at a time per process: a handout is CPU work, and pages come first.
_renderer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="handout")
_pending: dict[str, Future] = {}
_pending_lock = threading.Lock()


class HandoutUnavailable(Exception):
    """A handout that could not be drawn (in time); the message is for the log."""


def file_name(procedure: Procedure, lang: str, *, openemr: bool = False) -> str:
    """``{codetype}_{code}_{lang}.pdf``, or the lower-case name OpenEMR opens."""
    system = codes.System(procedure.code.system)
    if openemr:
        return f"{OPENEMR_CODE_TYPES[system]}_{procedure.code.code}_{lang}.pdf".lower()
    return f"{CODE_TYPES[system]}_{procedure.code.code}_{lang}.pdf"


def updated_at(procedure: Procedure) -> datetime.datetime:
    """When the handout's text last changed: the write-up's or its code's descriptor."""
    return max(procedure.updated_at, procedure.code.updated_at)


@functools.cache
def stylesheet() -> str:
    """The handout's CSS, read once per process from the static files."""
    parts = []
    for name in STYLESHEETS:
        path = finders.find(name)
        if path is None:
            raise HandoutUnavailable(f"The stylesheet {name} is missing.")
        with open(path, encoding="utf-8") as handle:
            parts.append(handle.read())
    return "\n".join(parts)


def handout_html(procedure: Procedure, *, address: str = "", lang: str = "en") -> str:
    """The handout as one HTML document with its CSS inline (``address``: its page)."""
    code = procedure.code
    return render_to_string(
        "procedures/handout.html",
        {
            "code": code,
            "procedure": procedure,
            "lang": lang,
            "address": address,
            "updated": updated_at(procedure),
            # The site's own files, inside <style>.
            "css": mark_safe(stylesheet()),
            "site_name": settings.SITE_NAME,
            "shows_cpt": code.system == codes.System.CPT,
            "cpt_copyright_year": settings.CPT_COPYRIGHT_YEAR,
        },
    )


class _CSSNoiseFilter(logging.Filter):
    """Drop WeasyPrint's notes on screen-only CSS in site.css; keep the rest."""

    NOISE = (
        "Ignored `",
        "Expected a media type",
        "Invalid media type",
        "Invalid math function",
        "Using fontTools instead of HarfBuzz",
    )

    def filter(self, record):
        return not str(record.msg).startswith(self.NOISE)


logging.getLogger("weasyprint").addFilter(_CSSNoiseFilter())


def render_pdf(html: str) -> bytes:
    """PDF bytes for an HTML document; nothing but ``data:`` addresses is fetched."""
    # Imported here: WeasyPrint loads Pango and its fonts, which only handouts need.
    # Without Debian's HarfBuzz-Subset it subsets fonts with fontTools and says so.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="HarfBuzz-Subset", category=DeprecationWarning
        )
        import weasyprint
        from weasyprint.urls import URLFetcher

    fetcher = URLFetcher(allowed_protocols=("data",), allow_redirects=False)
    # Tagged, so screen readers read the headings and lists as such.
    return weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf(pdf_tags=True)


def _render_and_keep(key: str, html: str) -> bytes:
    pdf = render_pdf(html)
    cache.set(key, pdf, CACHE_SECONDS)
    return pdf


def _forget(key: str, future: Future) -> None:
    with _pending_lock:
        if _pending.get(key) is future:
            del _pending[key]


def pdf_for(key: str, html: str, timeout: float) -> bytes:
    """
    The PDF stored under ``key``, drawn from ``html`` when there is none yet.

    Requests for the same handout wait on one drawing. Raises HandoutUnavailable when
    it fails or takes longer than ``timeout`` seconds.
    """
    pdf = cache.get(key)
    if pdf is not None:
        return pdf
    with _pending_lock:
        future = _pending.get(key)
        if future is None:
            future = _renderer.submit(_render_and_keep, key, html)
            _pending[key] = future
            future.add_done_callback(functools.partial(_forget, key))
    try:
        return future.result(timeout=timeout)
    except FutureTimeout as error:
        raise HandoutUnavailable(f"Drawing {key} took over {timeout} s.") from error
    except Exception as error:
        raise HandoutUnavailable(f"Drawing {key} failed: {error!r}") from error


def published_writeup(code: Code) -> Procedure:
    """The code's published write-up, or a 404 that points to the code page."""
    procedure = getattr(code, "procedure", None)
    if procedure is None or not procedure.is_published:
        raise NotFound(
            f"{code.get_system_display()} {code.code} has no published write-up, so "
            "there is no handout for it.",
            suggestions=[
                (f"{code.code}: {code.descriptor}", code.get_absolute_url()),
            ],
        )
    return procedure


@require_safe
def handout(request, system, code):
    """``/codes/<system>/<code>/handout.pdf``: the write-up as a PDF, shown inline."""
    code = code_page_target(system, code, "procedures:handout", "procedure")
    if not isinstance(code, Code):
        return code
    procedure = published_writeup(code)
    changed = updated_at(procedure).timestamp()
    not_modified = get_conditional_response(request, last_modified=changed)
    if not_modified is not None:
        not_modified["Last-Modified"] = http_date(changed)
        return not_modified

    address = seo.canonical_url(request, code.get_absolute_url())
    try:
        html = handout_html(procedure, address=address)
        key = "handout:" + hashlib.sha256(html.encode()).hexdigest()
        pdf = pdf_for(key, html, RENDER_TIMEOUT_SECONDS)
    except HandoutUnavailable:
        logger.exception("No handout for %s", code)
        return unavailable(request, code)

    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=False,
        filename=f"carecodes-{code.system}-{code.code}-handout.pdf",
    )
    response["Last-Modified"] = http_date(changed)
    # Search engines should list the code page, not its PDF copy.
    response["Link"] = f'<{address}>; rel="canonical"'
    patch_cache_control(response, public=True, max_age=MAX_AGE_SECONDS)
    return response


def unavailable(request, code):
    """503: the handout could not be drawn; the code page prints instead."""
    response = render(
        request,
        "procedures/handout_unavailable.html",
        {
            "code": code,
            "og_title": "Handout not available just now",
            "description": (
                f"The PDF handout for {code.get_system_display()} {code.code} could "
                "not be made just now. The code page prints well from any browser."
            ),
        },
        status=503,
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    patch_cache_control(response, no_store=True)
    return response
