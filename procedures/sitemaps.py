from django.contrib.sitemaps import Sitemap
from django.db.models import Max, Subquery
from django.db.models.functions import Coalesce, Greatest
from django.urls import reverse
from django.utils.functional import cached_property

from .models import Code, CodeSection, CodeSystem, Procedure, PublicationStatus


class ContentSitemap(Sitemap):
    """
    A sitemap whose items carry a ``lastmod`` annotation from ``latest_query()``.

    The index's date for the sitemap is one aggregate query: Django's default reads
    every item to find it, 98,000 codes for one line of the index. The paginator is
    kept, so the index and the emptiness check count the items once.
    """

    # The sitemaps.org protocol's limit (Django's default too, said here on purpose).
    limit = 50_000

    def latest_query(self):
        raise NotImplementedError

    def lastmod(self, item):
        return item.lastmod

    def get_latest_lastmod(self):
        return self.latest_query().aggregate(latest=Max("lastmod"))["latest"]

    @cached_property
    def paginator(self):
        return super().paginator


class CodeAddresses:
    """
    Code page addresses from one reverse() per system.

    reverse() costs ~35 µs; with 50,000 codes it was 1.6 of the 2.9 s left once the
    template was gone. Canonical codes are letters, digits and dots, which need no
    quoting.
    """

    @cached_property
    def _prefixes(self):
        # The address of code "0", less the "0/" at its end.
        return {
            system: reverse("procedures:code", args=[system, "0"])[:-2]
            for system in CodeSystem.values
        }

    def code_address(self, code):
        return f"{self._prefixes[code.system]}{code.code}/"


class CodeSitemap(CodeAddresses, ContentSitemap):
    """Code pages without a published write-up; those are in WriteUpSitemap."""

    changefreq = "monthly"

    def items(self):
        return self.latest_query().only("system", "code").order_by("system", "sort_key")

    def location(self, code):
        return self.code_address(code)

    def latest_query(self):
        # A draft or unpublished write-up dates the page too: taking it off changed it.
        return Code.objects.exclude(
            procedure__status=PublicationStatus.PUBLISHED
        ).annotate(
            lastmod=Greatest(
                "updated_at", Coalesce("procedure__updated_at", "updated_at")
            )
        )


class WriteUpSitemap(CodeAddresses, ContentSitemap):
    """Code pages that carry a plain-language write-up."""

    changefreq = "weekly"

    def items(self):
        return (
            self.latest_query()
            .select_related("code")
            .only("code__system", "code__code")
            .order_by("code__system", "code__sort_key")
        )

    def location(self, procedure):
        return self.code_address(procedure.code)

    def latest_query(self):
        # The page shows both: the write-up and the code's official wording.
        return Procedure.objects.published().annotate(
            lastmod=Greatest("updated_at", "code__updated_at")
        )


class SectionSitemap(ContentSitemap):
    """Sections with codes in them; an empty one is a thin page until its codes load."""

    changefreq = "yearly"

    def items(self):
        return (
            self.latest_query()
            .filter(lastmod__isnull=False)
            .only("system", "slug")
            .order_by("system", "start_key")
        )

    def latest_query(self):
        # A section's page lists what lies in its range, so it changes when they do.
        newest_in_range = (
            Code.objects.in_outer_section()
            .order_by("-updated_at")
            .values("updated_at")[:1]
        )
        return CodeSection.objects.annotate(lastmod=Subquery(newest_in_range))

    def get_latest_lastmod(self):
        # The same date as the newest section's, without reading every range: a code
        # lies in some section's range exactly when it has a section.
        return Code.objects.filter(section__isnull=False).aggregate(
            latest=Max("updated_at")
        )["latest"]
