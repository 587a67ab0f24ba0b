from django.conf import settings
from django.http import HttpResponseNotAllowed, JsonResponse
from django.urls import reverse

from .views import bad_request


class RejectNulMiddleware:
    """
    Refuse addresses that carry a NUL character, with a 400 before any view runs.

    PostgreSQL text cannot hold NUL, so such a value reaching a query would fail with
    a server error; SQLite would quietly accept it. Form fields already refuse NUL.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path or "%00" in query.lower():
            if request.path.startswith("/api/"):
                # The API's callers read JSON; its errors say what went wrong under
                # "detail".
                return JsonResponse(
                    {"detail": "The request contains a character it can’t use."},
                    status=400,
                )
            if request.path == reverse("search_suggest"):
                # The autocomplete script reads JSON, errors included.
                return JsonResponse(
                    {"error": "The search contains characters it can’t use."},
                    status=400,
                )
            return bad_request(
                request, message="The address contains a character it can’t use."
            )
        return self.get_response(request)


class RefuseTraceMiddleware:
    """
    405 for TRACE (and its old alias TRACK) on every address.

    Views that take any method would otherwise echo a page back to TRACE; nothing on
    this site has a use for it.
    """

    REFUSED = {"TRACE", "TRACK", "CONNECT"}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method in self.REFUSED:
            return HttpResponseNotAllowed(["GET", "HEAD", "POST"])
        return self.get_response(request)


class PermissionsPolicyMiddleware:
    """Switch off browser features the site never uses (settings.PERMISSIONS_POLICY)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        return response


class AdminStylePolicyMiddleware:
    """
    The admin's pages get settings.ADMIN_CSP, which allows inline style attributes.

    The admin's views are Django's, so they cannot carry the per-view override that
    the site's own views use (django.views.decorators.csp.csp_override); this sets
    what that decorator sets, for every view in the admin's namespace. It sits below
    ContentSecurityPolicyMiddleware, which reads the choice as the response passes.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        if (
            match is not None
            and "admin" in match.namespaces
            and not hasattr(response, "_csp_config")
        ):
            response._csp_config = settings.ADMIN_CSP
        return response
