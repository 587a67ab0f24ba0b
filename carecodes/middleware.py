from django.http import JsonResponse
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
