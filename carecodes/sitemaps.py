from django.contrib.sitemaps import Sitemap
from django.urls import reverse

from policies.sitemaps import PayerSitemap, PolicySitemap
from procedures.sitemaps import CodeSitemap, SectionSitemap


class StaticSitemap(Sitemap):
    changefreq = "weekly"

    def items(self):
        return ["procedures:home", "procedures:code_index"]

    def location(self, name):
        return reverse(name)


SITEMAPS = {
    "pages": StaticSitemap,
    "codes": CodeSitemap,
    "sections": SectionSitemap,
    "policies": PolicySitemap,
    "payers": PayerSitemap,
}
