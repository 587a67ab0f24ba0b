from functools import wraps

from django import forms
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from . import search as search_engine
from .errors import NotFound
from .markdown import render_markdown

# Long enough for any code list or phrase a person types; longer input is refused.
MAX_QUERY_LENGTH = 200


def page_not_found(request, exception):
    message = str(exception) if isinstance(exception, NotFound) else ""
    return render(request, "404.html", {"message": message}, status=404)


class SearchForm(forms.Form):
    q = forms.CharField(
        label="Search codes, procedures and policies",
        max_length=MAX_QUERY_LENGTH,
        strip=True,
        required=False,
    )

    def clean_q(self):
        query = self.cleaned_data["q"]
        if "\x00" in query:
            raise forms.ValidationError("The search contains characters it can’t use.")
        return query


@require_GET
def search(request):
    form = SearchForm(request.GET)
    results = None
    status = 200
    if form.is_valid() and form.cleaned_data["q"]:
        results = search_engine.search(form.cleaned_data["q"])
        if results.exact is not None:
            return redirect(results.exact)
    elif not form.is_valid():
        status = 400
    shows_cpt = results is not None and any(hit.system == "cpt" for hit in results.hits)
    return render(
        request,
        "search/results.html",
        {"form": form, "results": results, "shows_cpt": shows_cpt},
        status=status,
    )


@require_GET
def robots_txt(request):
    lines = [
        "User-agent: *",
        "Disallow: /admin/",
        "Disallow: /search/",
        "Disallow: /markdownx/",
        "",
        f"Sitemap: {request.build_absolute_uri(reverse('sitemap'))}",
    ]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain")


def staff_only(view):
    """403 for anyone who is not active staff (no redirect: callers are scripts)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        user = request.user
        if not (user.is_active and user.is_staff):
            return HttpResponseForbidden("Only staff can use this.")
        return view(request, *args, **kwargs)

    return wrapper


@require_GET
def favicon(request):
    """Browsers ask for /favicon.ico on every page, the admin's included."""
    return redirect(static("img/favicon.svg"), permanent=True)


class PreviewForm(forms.Form):
    content = forms.CharField(required=False, strip=False, max_length=200_000)


@require_POST
@staff_only
def markdown_preview(request):
    """The admin editors' live preview, through the site's one sanitising renderer."""
    form = PreviewForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("The preview text is too long.")
    return HttpResponse(render_markdown(form.cleaned_data["content"]))


@require_POST
def markdown_upload(request):
    """Image uploads are switched off: write-ups link to images instead."""
    return HttpResponseForbidden("Image uploads are switched off on this site.")
