"""The sitemap index: one sitemap per kind of page, each split at 50,000 URLs."""

import re
from functools import wraps

from django.contrib.sitemaps import Sitemap
from django.contrib.sitemaps import views as sitemap_views
from django.contrib.sites.requests import RequestSite
from django.core.paginator import EmptyPage, PageNotAnInteger
from django.db.models import F
from django.http import Http404, HttpResponse, HttpResponsePermanentRedirect
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import escape
from django.utils.http import http_date

from carecodes import page_tags
from policies.sitemaps import PayerSitemap, PolicySitemap
from procedures.models import Procedure
from procedures.sitemaps import (
    CodeSitemap,
    ContentSitemap,
    SectionSitemap,
    WriteUpSitemap,
)


class StaticSitemap(ContentSitemap):
    """The home page and the A-Z index, which both list the published write-ups."""

    changefreq = "weekly"

    def items(self):
        return ["procedures:home", "procedures:code_index"]

    def location(self, name):
        return reverse(name)

    def latest_query(self):
        # Every write-up dates the lists, drafts too: unpublishing one changed them.
        return Procedure.objects.annotate(lastmod=F("updated_at"))

    def lastmod(self, name):
        return self.latest

    @cached_property
    def latest(self):
        # Read once per request, not once per page listed.
        return self.get_latest_lastmod()


SITEMAPS = {
    "pages": StaticSitemap,
    "write-ups": WriteUpSitemap,
    "codes": CodeSitemap,
    "policies": PolicySitemap,
    "payers": PayerSitemap,
    "sections": SectionSitemap,
}


def with_pages(kinds) -> dict[str, Sitemap]:
    """
    The sitemaps of ``kinds`` that list at least one page.

    The sitemaps.org schema wants at least one URL in a sitemap, so an empty one
    (no policy published yet) is left out of the index and not found.
    """
    found = {}
    for kind in kinds:
        if kind in SITEMAPS and (sitemap := SITEMAPS[kind]()).paginator.count:
            found[kind] = sitemap
    return found


_PAGE_NUMBER = re.compile(r"[1-9][0-9]{0,5}")
_ASCII_DIGITS = re.compile(r"[0-9]+")


def page_number_only(view):
    """
    Only the canonical address of each part reaches the page cache.

    The page cache keys on the whole address: without this, ``?x=1``, ``?p=01`` or
    ``?p=١`` (an Arabic-Indic one, which ``int()`` reads as 1) would each build and
    store a fresh 6 MB sitemap. Part 1 is the address without a query, the others
    ``?p=<n>`` in ASCII digits without leading zeros. ASCII digits written another
    way (``?p=02``, ``?p=1``) are redirected to the canonical address; anything
    else is not found.
    """

    @wraps(view)
    def checked(request, *args, **kwargs):
        if not request.META.get("QUERY_STRING"):
            return view(request, *args, **kwargs)
        numbers = request.GET.getlist("p")
        if set(request.GET) != {"p"} or len(numbers) != 1:
            raise Http404("A sitemap takes no query but its part number, ?p=2.")
        number = numbers[0]
        if _ASCII_DIGITS.fullmatch(number) and int(number) >= 1:
            canonical = "" if int(number) == 1 else f"?p={int(number)}"
            if request.META["QUERY_STRING"] != canonical[1:]:
                return HttpResponsePermanentRedirect(request.path + canonical)
        if not _PAGE_NUMBER.fullmatch(number) or number == "1":
            raise Http404("There is no such part of this sitemap.")
        return view(request, *args, **kwargs)

    return checked


def no_query(view):
    """The index has one address: a query would only add copies to the cache."""

    @wraps(view)
    def checked(request, *args, **kwargs):
        if request.META.get("QUERY_STRING"):
            raise Http404("The sitemap index takes no query.")
        return view(request, *args, **kwargs)

    return checked


@no_query
def index(request):
    # Kept in the page cache until any content changes (carecodes.page_cache).
    page_tags.add("content")
    return sitemap_views.index(
        request, sitemaps=with_pages(SITEMAPS), sitemap_url_name="sitemap_section"
    )


@page_number_only
def sitemap(request, section):
    """
    One sitemap, or one part of a split one, written without the template engine.

    50,000 codes took 5.3 s through Django's view and template, 2.9 s with the
    elements written here, and 1.3 s with CodeAddresses as well. Kept in the page
    cache until any content changes (carecodes.page_cache).
    """
    page_tags.add("content")
    found = with_pages([section]).get(section)
    if found is None:
        raise Http404(f"There is no sitemap of {section}.")
    try:
        urls = found.get_urls(
            page=request.GET.get("p", 1),
            site=RequestSite(request),
            protocol=request.scheme,
        )
    except (EmptyPage, PageNotAnInteger) as error:
        raise Http404("There is no such part of this sitemap.") from error
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">',
    ]
    lines.extend(
        f"<url><loc>{escape(url['location'])}</loc>"
        + (f"<lastmod>{url['lastmod']:%Y-%m-%d}</lastmod>" if url["lastmod"] else "")
        + (f"<changefreq>{url['changefreq']}</changefreq>" if url["changefreq"] else "")
        + "</url>"
        for url in urls
    )
    lines.append("</urlset>")
    response = HttpResponse("\n".join(lines), content_type="application/xml")
    if latest := getattr(found, "latest_lastmod", None):
        response.headers["Last-Modified"] = http_date(latest.timestamp())
    # What Django's sitemap views say: the file itself is not a page to show.
    response.headers["X-Robots-Tag"] = "noindex, noodp, noarchive"
    return response
