from django.urls import path, register_converter

from . import version_views, views


class PolicyNumberConverter:
    """A payer's policy number as payers write them: 0198, MP-123, 2024.07."""

    regex = r"[0-9A-Za-z][0-9A-Za-z._-]{0,29}"

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


register_converter(PolicyNumberConverter, "policy_number")

app_name = "policies"
urlpatterns = [
    path("payers/<slug:payer>/", views.payer_detail, name="payer"),
    path(
        "policies/<slug:payer>/<policy_number:number>/",
        views.policy_detail,
        name="policy",
    ),
    # A policy's versions and what changed (policies.versions).
    path(
        "policies/<slug:payer>/<policy_number:number>/versions/<str:version>/",
        version_views.version_detail,
        name="version",
    ),
    path(
        "policies/<slug:payer>/<policy_number:number>/changes/",
        version_views.policy_changes,
        name="changes",
    ),
    path(
        "policies/<slug:payer>/<policy_number:number>/changes.atom",
        version_views.policy_changes_feed,
        name="changes_feed",
    ),
    path(
        "payers/<slug:payer>/changes.atom",
        version_views.payer_changes_feed,
        name="payer_changes_feed",
    ),
    path(
        "codes/<str:system>/<str:code>/changes/",
        version_views.code_changes,
        name="code_changes",
    ),
]
