"""
CareCodes' read-only JSON API, version 1, under ``/api/v1/``.

Built with django-ninja: the endpoints are in ``endpoints``, their answers' shapes in
``schemas``, and the read-only dispatch, JSON errors, rate limit and pagination in
``base``. The OpenAPI document is at ``/api/v1/openapi.json`` and the interactive
docs (Swagger UI, served from the site's own static files) at ``/api/v1/docs``.
"""

from django.urls import path

from .base import PerClientRate, ReadOnlyAPI
from .endpoints import NAMESPACE, router

api = ReadOnlyAPI(
    title="CareCodes API",
    version="1",
    description=(
        "Medical procedure codes explained in plain language, and the payer policies "
        "that name them: read-only JSON. Anyone may call it without a key; each "
        "client address may make a limited number of requests a minute (HTTP 429 "
        "with Retry-After past that)."
    ),
    urls_namespace=NAMESPACE,
    throttle=[PerClientRate()],
)
api.add_router("", router)

urlpatterns = [path("api/v1/", api.urls)]
