from django.contrib import admin
from django.urls import include, path

from . import infobutton, sitemaps, views

handler400 = "carecodes.views.bad_request"
handler404 = "carecodes.views.page_not_found"

admin.site.site_header = "CareCodes administration"
admin.site.site_title = "CareCodes admin"

urlpatterns = [
    path("", include("procedures.urls")),
    # Pages drawn from the index (search, similar codes) sit above the content apps.
    path(
        "codes/<str:system>/<str:code>/similar/",
        views.similar_codes,
        name="similar_codes",
    ),
    path("", include("policies.urls")),
    path("search/", views.search, name="search"),
    path("search/suggest/", views.search_suggest, name="search_suggest"),
    # HL7 Infobutton (MedlinePlus Connect-compatible): data, and a person's browser.
    path("infobutton/service", infobutton.service, name="infobutton_service"),
    path(
        "infobutton/application",
        infobutton.application,
        name="infobutton_application",
    ),
    path("robots.txt", views.robots_txt, name="robots_txt"),
    path("favicon.ico", views.favicon),
    path("sitemap.xml", sitemaps.index, name="sitemap"),
    path("sitemap-<section>.xml", sitemaps.sitemap, name="sitemap_section"),
    # django-markdownx's own views answer anyone; these answer staff only.
    path(
        "markdownx/markdownify/",
        views.markdown_preview,
        name="markdownx_markdownify",
    ),
    path("markdownx/upload/", views.markdown_upload, name="markdownx_upload"),
    # The read-only JSON API, its OpenAPI document and docs: /api/v1/.
    path("", include("carecodes.api")),
    path("admin/", admin.site.urls),
]
