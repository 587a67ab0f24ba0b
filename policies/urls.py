from django.urls import path

from . import views

app_name = "policies"
urlpatterns = [
    path("payers/<slug:payer>/", views.payer_detail, name="payer"),
    path("policies/<slug:payer>/<str:number>/", views.policy_detail, name="policy"),
]
