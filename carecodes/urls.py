from django.contrib import admin
from django.contrib.sitemaps import views as sitemap_views
from django.urls import include, path
from django.views.decorators.cache import cache_page

from . import views
from .sitemaps import SITEMAPS

handler404 = "carecodes.views.page_not_found"

admin.site.site_header = "CareCodes administration"
admin.site.site_title = "CareCodes admin"

urlpatterns = [
    path("", include("procedures.urls")),
    path("", include("policies.urls")),
    path("search/", views.search, name="search"),
    path("search/suggest/", views.search_suggest, name="search_suggest"),
    path("robots.txt", views.robots_txt, name="robots_txt"),
    path("favicon.ico", views.favicon),
    path(
        "sitemap.xml",
        cache_page(3600)(sitemap_views.index),
        {"sitemaps": SITEMAPS, "sitemap_url_name": "sitemap_section"},
        name="sitemap",
    ),
    path(
        "sitemap-<section>.xml",
        cache_page(3600)(sitemap_views.sitemap),
        {"sitemaps": SITEMAPS},
        name="sitemap_section",
    ),
    # django-markdownx's own views answer anyone; these answer staff only.
    path(
        "markdownx/markdownify/",
        views.markdown_preview,
        name="markdownx_markdownify",
    ),
    path("markdownx/upload/", views.markdown_upload, name="markdownx_upload"),
    path("admin/", admin.site.urls),
]
