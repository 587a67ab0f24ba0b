from django.db.models import F, Max, Q

from procedures.sitemaps import ContentSitemap

from .models import Payer, Policy, PublicationStatus


class PolicySitemap(ContentSitemap):
    changefreq = "monthly"
    limit = 50_000

    def items(self):
        return self.latest_query().select_related("payer").order_by("pk")

    def latest_query(self):
        return Policy.objects.published().annotate(lastmod=F("updated_at"))


class PayerSitemap(ContentSitemap):
    """A payer's page lists its published policies, so it changes when they do."""

    changefreq = "monthly"

    def items(self):
        return self.latest_query().filter(lastmod__isnull=False).order_by("slug")

    def latest_query(self):
        return Payer.objects.annotate(
            lastmod=Max(
                "policies__updated_at",
                filter=Q(policies__status=PublicationStatus.PUBLISHED),
            )
        )
