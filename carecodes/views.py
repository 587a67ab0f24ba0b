import functools
import re
from functools import wraps

from django import forms
from django.conf import settings
from django.core.paginator import Paginator
from django.http import (
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_POST, require_safe

from index import search as search_engine
from index import similar
from policies.models import Payer
from procedures.codes import System
from procedures.models import Code, CodeSystem
from procedures.views import breadcrumbs_for, code_page_target, neighbours

from . import page_tags, seo
from .errors import NotFound
from .markdown import MarkdownField, render_markdown

MAX_QUERY_LENGTH = search_engine.MAX_QUERY_LENGTH
# Shorter prefixes match too much to be worth a round trip while someone types.
MIN_SUGGEST_LENGTH = 2
SUGGEST_LIMIT = 10
RESULTS_PER_PAGE = 20
NOT_FOUND_SUGGESTIONS = 6
# Far past any real result list; stops absurd numbers before they reach an OFFSET.
MAX_PAGE = 100_000

KIND_CHOICES = [("code", "Codes"), ("write-up", "Write-ups"), ("policy", "Policies")]


# The last part of a missing address, read as search words ("work-hardening").
_ADDRESS_WORDS = re.compile(r"[^\w.]+")


def bad_request(request, exception=None, message=""):
    """400: a request the site cannot read, in the site's own page."""
    context = {
        "message": message,
        "og_title": "Bad request",
        "description": (
            "The address or search could not be read. Check it, or search for a "
            "code, a procedure or a payer policy instead."
        ),
    }
    return render(request, "400.html", context, status=400)


def page_not_found(request, exception):
    """A 404 that offers a search for what the address names, and pages it may mean."""
    message, suggestions = "", []
    if isinstance(exception, NotFound):
        message, suggestions = str(exception), exception.suggestions
    parts = [part for part in request.path.split("/") if part]
    words = _ADDRESS_WORDS.sub(" ", parts[-1]).strip()[:60] if parts else ""
    if words and not suggestions:
        suggestions = [
            (item.label, item.url)
            for item in search_engine.suggest(words, NOT_FOUND_SUGGESTIONS)
        ]
    context = {
        "message": message,
        "suggestions": suggestions,
        "guess": words,
        "og_title": "Page not found",
        "description": (
            f"This page was not found on {settings.SITE_NAME}. Search for a code, a "
            "procedure or a payer policy instead."
        ),
    }
    return render(request, "404.html", context, status=404)


def payer_choices():
    # Called lazily: the payer list is read only when a payer is chosen or the
    # filter controls are drawn, so a redirect to a code page costs no query for it.
    return [("", "All payers"), *Payer.objects.values_list("slug", "name")]


class QueryField(forms.CharField):
    """The search words: bounded, stripped, and free of NUL (PostgreSQL refuses it)."""

    def __init__(self, **kwargs):
        super().__init__(
            max_length=MAX_QUERY_LENGTH,
            strip=True,
            required=False,
            error_messages={
                "max_length": (
                    "That search is too long: use at most %(limit_value)d "
                    "characters (it has %(show_value)d)."
                )
            },
            **kwargs,
        )

    def validate(self, value):
        super().validate(value)
        if "\x00" in value:
            raise forms.ValidationError("The search contains characters it can’t use.")


class SearchForm(forms.Form):
    q = QueryField(label="Search codes, procedures and policies")
    system = forms.ChoiceField(
        label="Code system",
        choices=[("", "All code systems"), *CodeSystem.choices],
        required=False,
        error_messages={
            "invalid_choice": "“%(value)s” is not a code system this site knows."
        },
    )
    kind = forms.ChoiceField(
        label="Show",
        choices=[("", "Everything"), *KIND_CHOICES],
        required=False,
        error_messages={
            "invalid_choice": (
                "“%(value)s” is not a kind of result: choose codes, write-ups or "
                "policies."
            )
        },
    )
    payer = forms.ChoiceField(
        label="Payer",
        choices=payer_choices,
        required=False,
        error_messages={"invalid_choice": "“%(value)s” is not a payer this site has."},
    )
    page = forms.IntegerField(
        min_value=1,
        required=False,
        error_messages={
            "invalid": "The page number must be a whole number, such as 2.",
            "min_value": "The page number must be 1 or more.",
        },
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "search-%s")
        super().__init__(*args, **kwargs)
        # Read at most once per request, however often validation and drawing ask.
        self.fields["payer"].choices = functools.cache(payer_choices)

    def clean_page(self):
        return min(self.cleaned_data["page"] or 1, MAX_PAGE)

    def filters(self) -> search_engine.Filters:
        data = self.cleaned_data
        return search_engine.Filters(
            system=data["system"], kind=data["kind"], payer=data["payer"]
        )


class SuggestForm(forms.Form):
    q = QueryField()


def kind_options(form: SearchForm, results: search_engine.Results | None):
    """(value, label, count, chosen) for each kind filter, "Everything" first."""
    counts = results.counts if results else {}
    return [
        (
            value,
            label,
            sum(counts.values()) if value == "" else counts.get(value, 0),
            value == form.cleaned_data["kind"],
        )
        for value, label in form.fields["kind"].choices
    ]


def results_context(form: SearchForm, results: search_engine.Results | None) -> dict:
    """What the results template needs beyond the engine's answer."""
    context = {
        "form": form,
        "results": results,
        "filtered": form.filters() != search_engine.Filters(),
        "kinds": kind_options(form, results),
        "shows_cpt": results is not None
        and any(hit.system == "cpt" for hit in results.hits),
    }
    if results is not None:
        # A Django page over a range stands in for the engine's page (counting a
        # range costs nothing), so one pagination include serves every list.
        page = Paginator(range(results.total), results.per_page).get_page(results.page)
        context["page"] = page
        context["page_range"] = page.paginator.get_elided_page_range(
            page.number, on_each_side=2, on_ends=1
        )
    return context


def search_page(request) -> dict:
    """What every search page shows search engines and previews (it is not indexed)."""
    crumbs = [("Home", "/"), ("Search", request.path)]
    return {
        "crumbs": crumbs,
        "og_title": f"Search {settings.SITE_NAME}",
        "description": (
            "Search CPT, HCPCS and ICD-10-CM codes, plain-language procedure "
            f"write-ups and payer policies on {settings.SITE_NAME}."
        ),
        "json_ld": seo.search_results_page(request, crumbs),
    }


@require_safe
def search(request):
    # Any change to the index may change any search (kept a minute at most).
    page_tags.add("content")
    form = SearchForm(request.GET)
    if not form.is_valid():
        return render(
            request,
            "search/results.html",
            {"form": form, **search_page(request)},
            status=400,
        )
    query, filters = form.cleaned_data["q"], form.filters()
    results = None
    if query:
        results = search_engine.search(
            query, filters, form.cleaned_data["page"], RESULTS_PER_PAGE
        )
        # A code typed alone means "show me that code"; with filters it is a search.
        if results.exact is not None and filters == search_engine.Filters():
            return redirect(results.exact)
    return render(
        request,
        "search/results.html",
        {**results_context(form, results), **search_page(request)},
    )


@require_safe
def search_suggest(request):
    """Autocomplete entries as JSON: codes and titles for what has been typed."""
    page_tags.add("content")
    if set(request.GET) - {"q"} or len(request.GET.getlist("q")) > 1:
        return JsonResponse(
            {"error": "Suggestions take one parameter: the words typed, ?q=…"},
            status=400,
        )
    form = SuggestForm(request.GET)
    if not form.is_valid():
        return JsonResponse({"error": " ".join(form.errors["q"])}, status=400)
    query = form.cleaned_data["q"]
    suggestions = []
    if len(query) >= MIN_SUGGEST_LENGTH:
        suggestions = search_engine.suggest(query, SUGGEST_LIMIT)[:SUGGEST_LIMIT]
    response = JsonResponse(
        {
            "query": query,
            "suggestions": [
                {
                    "label": item.label,
                    "url": item.url,
                    "kind": item.kind,
                    "detail": item.detail,
                }
                for item in suggestions
            ],
        }
    )
    if request.GET.get("q", "") == " ".join(query.split()):
        # Suggestions change only when content does; a few minutes stale is harmless.
        patch_cache_control(response, public=True, max_age=300)
    else:
        # Shared caches keep one copy per query, under the address the site's own
        # script asks for (the words trimmed, one space between them).
        patch_cache_control(response, private=True, no_store=True)
    return response


@require_safe
def robots_txt(request):
    lines = [
        "User-agent: *",
        "Allow: /",
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


@require_safe
def favicon(request):
    """Browsers ask for /favicon.ico on every page, the admin's included."""
    return redirect(static("img/favicon.svg"), permanent=True)


class PreviewForm(forms.Form):
    content = MarkdownField(required=False, strip=False)


def locked_out(request, original_response=None, credentials=None):
    """
    django-axes' answer to a sign-in while its username and address are locked out.

    429, in the admin's own look, saying how long the pause lasts and what to do.
    """
    cool_off = settings.AXES_COOLOFF_TIME
    context = {
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "username": (credentials or {}).get("username")
        or request.POST.get("username", ""),
        "minutes": max(1, round(cool_off.total_seconds() / 60)),
    }
    return render(request, "registration/locked_out.html", context, status=429)


@require_POST
@staff_only
@csp_override(settings.ADMIN_CSP)
def markdown_preview(request):
    """The admin editors' live preview, through the site's one sanitising renderer."""
    form = PreviewForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(" ".join(form.errors["content"]))
    return HttpResponse(render_markdown(form.cleaned_data["content"]))


@require_POST
@csp_override(settings.ADMIN_CSP)
def markdown_upload(request):
    """Image uploads are switched off: write-ups link to images instead."""
    return HttpResponseForbidden("Image uploads are switched off on this site.")


def similar_codes(request, system, code):
    """The full ranked list of similar codes, grouped by the strongest reason."""
    code = code_page_target(system, code, "similar_codes")
    if not isinstance(code, Code):
        return code
    page_tags.add(f"list:{code.pk}")
    entries = list(similar.stored_for(code))
    path = reverse("similar_codes", args=[code.system, code.code])
    crumbs = [
        *breadcrumbs_for(code.section),
        (code.code, code.get_absolute_url()),
        ("Similar codes", path),
    ]
    label = f"{code.get_system_display()} {code.code}"
    return render(
        request,
        "procedures/similar_codes.html",
        {
            "code": code,
            "groups": similar.grouped(entries),
            "count": len(entries),
            # Until the lists are rebuilt after a bulk import, the nearest codes.
            "neighbours": [] if entries else neighbours(code),
            "crumbs": crumbs,
            "shows_cpt": code.system == System.CPT
            or any(entry.similar.system == System.CPT for entry in entries),
            "og_title": f"Codes similar to {label}",
            "description": seo.meta_description(
                f"Codes similar to {label} ({code.descriptor}):",
                "related codes from the same family, the same payer policies and "
                "similar wording, with the reason for each.",
            ),
            "json_ld": seo.collection_page(
                request, f"Codes similar to {label}", path, crumbs
            ),
        },
    )
