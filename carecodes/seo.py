"""
Canonical URLs, meta descriptions and schema.org JSON-LD for public pages.

Builders return plain dicts; the ``jsonld`` template filter serialises them safely.
"""

import html
import json
import re

from django.core.exceptions import DisallowedHost
from django.urls import reverse
from django.utils.html import strip_tags
from django.utils.safestring import mark_safe
from django.utils.text import Truncator

_SPACE = re.compile(r"\s+")
_JSON_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}


def canonical_url(request, path: str) -> str:
    """The absolute address of ``path`` on this site, without a query string."""
    try:
        return request.build_absolute_uri(path)
    except DisallowedHost:
        # The 400 page for a request whose Host this site does not serve.
        return path


def plain_text(fragment: str) -> str:
    """Rendered HTML (or plain text) as one line of text, for descriptions and data."""
    text = html.unescape(strip_tags(fragment or ""))
    return _SPACE.sub(" ", text).strip()


def meta_description(*parts: str, limit: int = 155) -> str:
    """The non-empty parts as one line of at most ``limit`` characters."""
    text = " ".join(plain_text(part) for part in parts if part and part.strip())
    return Truncator(text).chars(limit, truncate="…")


def to_json_ld(data) -> str:
    """JSON for a <script type="application/ld+json"> element: '<' can't close it."""
    return mark_safe(json.dumps(data, ensure_ascii=False).translate(_JSON_ESCAPES))


def breadcrumb_list(request, crumbs) -> dict:
    """crumbs: [(name, path)], the last being the current page."""
    return {
        "@type": "BreadcrumbList",
        "itemListElement": [
            {
                "@type": "ListItem",
                "position": index,
                "name": name,
                "item": canonical_url(request, path),
            }
            for index, (name, path) in enumerate(crumbs, start=1)
        ],
    }


def collection_page(request, name: str, path: str, crumbs=None) -> dict:
    """A browse page (an index, a section, a payer's policies)."""
    page = {
        "@context": "https://schema.org",
        "@type": "CollectionPage",
        "name": name,
        "url": canonical_url(request, path),
    }
    if crumbs:
        page["breadcrumb"] = breadcrumb_list(request, crumbs)
    return page


def search_results_page(request, crumbs) -> dict:
    return {
        "@context": "https://schema.org",
        "@type": "SearchResultsPage",
        "name": "Search results",
        "url": canonical_url(request, request.path),
        "breadcrumb": breadcrumb_list(request, crumbs),
    }


def website(request, name: str) -> dict:
    """The site itself, with the search box search engines may offer in results."""
    return {
        "@context": "https://schema.org",
        "@type": "WebSite",
        "name": name,
        "url": canonical_url(request, "/"),
        "inLanguage": "en",
        "potentialAction": {
            "@type": "SearchAction",
            # Appended, not built: the URL builder would percent-encode the braces.
            "target": canonical_url(request, reverse("search"))
            + "?q={search_term_string}",
            "query-input": "required name=search_term_string",
        },
    }


def medical_code(code) -> dict:
    """The code, with its system's name and OID (the code set it belongs to)."""
    return {
        "@type": "MedicalCode",
        "codeValue": code.code,
        "codingSystem": code.get_system_display(),
        "name": code.descriptor,
        "inCodeSet": {
            "@type": "CategoryCodeSet",
            "name": code.get_system_display(),
            "identifier": f"urn:oid:{code.system_oid}",
        },
    }


# MedicalProcedure properties filled from write-up sections, when they have text.
PROCEDURE_PROPERTIES = {
    "howPerformed": "procedure_description",
    "preparation": "preparation",
    "followup": "recovery",
}


def medical_procedure(procedure, code) -> dict:
    about = {
        "@type": "MedicalProcedure",
        "name": procedure.title,
        "description": plain_text(procedure.html["summary"]),
        "code": medical_code(code),
    }
    for prop, field in PROCEDURE_PROPERTIES.items():
        if text := plain_text(procedure.html.get(field, "")):
            about[prop] = Truncator(text).chars(500, truncate="…")
    return about


def code_page(
    request,
    code,
    procedure,
    crumbs,
    *,
    names_procedure=False,
    plain_words="",
    also_called=(),
) -> dict:
    """
    A MedicalWebPage about the procedure a write-up explains, for patients; or,
    without a write-up, about the code itself, whose official wording is for
    clinicians. A code that ``names_procedure`` (ICD-10-PCS) without a write-up is
    still about a MedicalProcedure, described by ``plain_words``, whose code it is.
    """
    url = canonical_url(request, code.get_absolute_url())
    page = {
        "@context": "https://schema.org",
        "@type": "MedicalWebPage",
        "@id": url,
        "url": url,
        "name": procedure.title if procedure else f"{code.code}: {code.descriptor}",
        "inLanguage": "en",
        "audience": {
            "@type": "MedicalAudience",
            "audienceType": "Patient" if procedure else "Clinician",
        },
        "breadcrumb": breadcrumb_list(request, crumbs),
    }
    if procedure:
        page["about"] = medical_procedure(procedure, code)
        if procedure.reviewed_on:
            page["lastReviewed"] = procedure.reviewed_on.isoformat()
        if procedure.reviewed_by:
            page["reviewedBy"] = {"@type": "Person", "name": procedure.reviewed_by}
    elif names_procedure:
        page["about"] = {
            "@type": "MedicalProcedure",
            "name": code.descriptor,
            "code": medical_code(code),
        }
        if plain_words:
            page["about"]["description"] = plain_words
    else:
        page["about"] = medical_code(code)
    if also_called:
        # The names people use for it (the lay-term thesaurus).
        page["about"]["alternateName"] = list(also_called)
    # The sitemap's lastmod for the page: the later of the code's and the write-up's.
    modified = max(code.updated_at, procedure.updated_at) if procedure else None
    page["dateModified"] = (modified or code.updated_at).date().isoformat()
    return page


def policy_page(request, policy, crumbs) -> dict:
    url = canonical_url(request, policy.get_absolute_url())
    page = {
        "@context": "https://schema.org",
        "@type": "WebPage",
        "@id": url,
        "url": url,
        "name": f"{policy.payer.name} policy {policy.number}: {policy.title}",
        "inLanguage": "en",
        "publisher": {"@type": "Organization", "name": policy.payer.name},
        "citation": [
            {"@type": "CreativeWork", "name": reference.citation}
            for reference in policy.references.all()
        ],
        "breadcrumb": breadcrumb_list(request, crumbs),
    }
    if policy.last_reviewed_on:
        page["lastReviewed"] = policy.last_reviewed_on.isoformat()
    if policy.source_url:
        page["isBasedOn"] = policy.source_url
    return page
