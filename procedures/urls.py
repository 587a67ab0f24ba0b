from django.urls import path

from . import coverage, handouts, views

app_name = "procedures"
urlpatterns = [
    path("", views.home, name="home"),
    path("codes/", views.code_index, name="code_index"),
    path("codes/<str:system>/", views.system_index, name="system_index"),
    path("codes/<str:system>/<str:code>/", views.code_detail, name="code"),
    path(
        "codes/<str:system>/<str:code>/handout.pdf",
        handouts.handout,
        name="handout",
    ),
    path(
        "codes/<str:system>/<str:code>/coverage/",
        coverage.code_coverage,
        name="coverage",
    ),
    path("sections/<str:system>/<slug:slug>/", views.section_detail, name="section"),
]
