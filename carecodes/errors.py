from django.http import Http404


class NotFound(Http404):
    """A 404 whose message is written for the person who asked (shown on the page)."""
