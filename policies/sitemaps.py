from django.db.models import Exists, F, Max, OuterRef

from procedures.sitemaps import ContentSitemap

from .models import Payer, Policy


class PolicySitemap(ContentSitemap):
    changefreq = "monthly"

    def items(self):
        return self.latest_query().select_related("payer").order_by("pk")

    def latest_query(self):
        return Policy.objects.published().annotate(lastmod=F("updated_at"))


class PayerSitemap(ContentSitemap):
    """Payers with a published policy; a payer's page lists them."""

    changefreq = "monthly"

    def items(self):
        return self.latest_query().order_by("slug")

    def latest_query(self):
        # Every policy dates the page, withdrawn and draft ones too: taking one off
        # the list changed it.
        return Payer.objects.filter(
            Exists(Policy.objects.published().filter(payer=OuterRef("pk")))
        ).annotate(lastmod=Max("policies__updated_at"))
