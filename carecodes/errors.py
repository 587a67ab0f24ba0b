from django.http import Http404


class NotFound(Http404):
    """
    A 404 whose message is written for the person who asked (shown on the page).

    ``suggestions``: (label, address) of pages they may have meant.
    """

    def __init__(self, message: str, suggestions=()):
        super().__init__(message)
        self.suggestions = list(suggestions)
