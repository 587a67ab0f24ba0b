from django.urls import path, register_converter

from . import views


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
]
