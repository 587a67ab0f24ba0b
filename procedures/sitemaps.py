from django.contrib.sitemaps import Sitemap

from .models import Code, CodeSection


class CodeSitemap(Sitemap):
    changefreq = "monthly"
    limit = 50_000

    def items(self):
        return Code.objects.only("system", "code", "updated_at").order_by(
            "system", "sort_key"
        )

    def lastmod(self, code):
        return code.updated_at


class SectionSitemap(Sitemap):
    changefreq = "yearly"

    def items(self):
        return CodeSection.objects.only("system", "slug").order_by(
            "system", "start_key"
        )
