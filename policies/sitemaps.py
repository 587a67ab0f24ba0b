from django.contrib.sitemaps import Sitemap

from .models import Payer, Policy


class PolicySitemap(Sitemap):
    changefreq = "monthly"

    def items(self):
        return Policy.objects.published().select_related("payer").order_by("pk")

    def lastmod(self, policy):
        return policy.updated_at


class PayerSitemap(Sitemap):
    changefreq = "monthly"

    def items(self):
        return Payer.objects.order_by("slug")
