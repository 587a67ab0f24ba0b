"""
The API's endpoints: codes, write-ups, policies, payers, search and suggestions.

Each answers published content only, in the shapes of ``schemas``, with a fixed
number of queries (tests/test_api.py pins them). Codes are accepted in any form the
code pages accept (``s52501a`` is S52.501A) and answered in their canonical form.
"""

from typing import Literal

from django.db.models import Count, Q
from django.urls import reverse
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import ValidationError

from carecodes.errors import NotFound
from carecodes.markdown import render_markdown
from index import search as search_engine
from index import similar
from policies.models import Payer, Policy, PolicyCode, PolicyStatus
from policies.views import current_replacement, public_policy
from procedures import codes
from procedures.models import Code, Procedure
from procedures.views import resolve_code

from . import schemas
from .base import MAX_PAGE, Error, PageQuery, page_of

NAMESPACE = "api-v1"
SystemSlug = Literal[tuple(system.value for system in codes.System)]
SearchKind = Literal[search_engine.KINDS]
MAX_QUERY_LENGTH = search_engine.MAX_QUERY_LENGTH
MIN_SUGGEST_LENGTH = 2
MAX_SEARCH_PAGE_SIZE = 50
MAX_SUGGESTIONS = 20
SLUG_PATTERN = r"^[-a-zA-Z0-9_]+$"

router = Router()

NOT_FOUND = {404: Error}
CODE_FIELDS = ("system", "code", "descriptor")


def api_url(request, name: str, **kwargs) -> str:
    return request.build_absolute_uri(reverse(f"{NAMESPACE}:{name}", kwargs=kwargs))


def site_url(request, path: str) -> str:
    return request.build_absolute_uri(path)


def invalid(location: str, message: str) -> ValidationError:
    """A 422 about one parameter, answered like the ones pydantic finds."""
    return ValidationError([{"loc": tuple(location.split(".")), "msg": message}])


# Building answers.


def code_ref(request, code) -> dict:
    return {
        "system": code.system,
        "system_label": code.get_system_display(),
        "code": code.code,
        "descriptor": code.descriptor,
        "url": site_url(request, code.get_absolute_url()),
        "api_url": api_url(request, "code", system=code.system, code=code.code),
    }


def payer_ref(request, payer) -> dict:
    return {
        "slug": payer.slug,
        "name": payer.name,
        "url": site_url(request, payer.get_absolute_url()),
        "api_url": api_url(request, "payer", slug=payer.slug),
    }


def policy_ref(request, policy) -> dict:
    return {
        "payer": payer_ref(request, policy.payer),
        "number": policy.number,
        "title": policy.title,
        "url": site_url(request, policy.get_absolute_url()),
        "api_url": api_url(
            request, "policy", payer=policy.payer.slug, number=policy.number
        ),
    }


def policy_summary(request, policy) -> dict:
    return {
        **policy_ref(request, policy),
        "effective_on": policy.effective_on,
        "last_reviewed_on": policy.last_reviewed_on,
        "next_review_on": policy.next_review_on,
    }


def code_row(row) -> dict:
    return {
        "display": row.display,
        "start_code": row.start_code,
        "end_code": row.end_code or None,
        "is_range": row.is_range,
        "seventh_character": row.seventh_character,
        "is_addon": row.is_addon,
        "description": row.description,
    }


def group_coverage(group) -> dict:
    """The heading of a policy's code group and the coverage it gives its codes."""
    return {
        "heading": group.heading,
        "coverage": group.coverage,
        "coverage_label": group.get_coverage_display(),
    }


def writeup_summary(request, procedure) -> dict:
    code = procedure.code
    return {
        "code": code_ref(request, code),
        "title": procedure.title,
        "reviewed_on": procedure.reviewed_on,
        "reviewed_by": procedure.reviewed_by,
        "updated_at": procedure.updated_at,
        "url": site_url(request, code.get_absolute_url()),
        "api_url": api_url(request, "writeup", system=code.system, code=code.code),
    }


def payer_summary(request, payer) -> dict:
    return {
        **payer_ref(request, payer),
        "website": payer.website,
        "policy_count": payer.policy_count,
        "policies_api_url": api_url(request, "policies") + f"?payer={payer.slug}",
    }


def find_code(system: str, code: str, *related: str):
    """The code a path names, normalised as the pages do; 404 in plain words."""
    system, canonical = resolve_code(system, code)
    found = Code.objects.filter(system=system, code=canonical)
    if related:
        found = found.select_related(*related)
    found = found.first()
    if found is None:
        label = codes.SYSTEM_LABELS[codes.System(system)]
        raise NotFound(
            f"{label} {canonical} is a valid code, but it is not on this site yet."
        )
    return found


def published_writeup(code):
    procedure = getattr(code, "procedure", None)
    return procedure if procedure is not None and procedure.is_published else None


# Codes.


@router.get(
    "/codes",
    response={200: schemas.CodePage, 422: schemas.Invalid},
    url_name="codes",
    tags=["codes"],
    summary="List codes",
)
def list_codes(request, paging: Query[PageQuery], system: SystemSlug | None = None):
    """Every code on the site in code order, or those of one system."""
    found = Code.objects.only(*CODE_FIELDS).order_by("system", "sort_key")
    if system:
        found = found.filter(system=system)
    return page_of(request, found, paging, lambda code: code_ref(request, code))


@router.get(
    "/codes/{system}/{code}",
    response={200: schemas.CodeDetail, **NOT_FOUND},
    url_name="code",
    tags=["codes"],
    summary="Look up a code",
)
def code_detail(request, system: str, code: str):
    """
    A code by system slug (``cpt``, ``hcpcs``, ``icd-10-cm``, ``icd-10-pcs``) and
    code, in any spelling the site's pages accept (``s52501a`` is S52.501A).
    """
    found = find_code(system, code, "section", "parent", "procedure")
    section = found.section
    keys = {"system": found.system, "code": found.code}
    writeup = published_writeup(found)
    return {
        **code_ref(request, found),
        "is_billable": found.is_billable,
        "is_addon": found.is_addon,
        "parent": code_ref(request, found.parent) if found.parent else None,
        "section": None
        if section is None
        else {
            "name": section.name,
            "slug": section.slug,
            "start_code": section.start_code,
            "end_code": section.end_code,
            "url": site_url(request, section.get_absolute_url()),
        },
        "primary_codes": [
            code_ref(request, c) for c in found.primary_codes.only(*CODE_FIELDS)
        ],
        "addon_codes": [
            code_ref(request, c) for c in found.addon_codes.only(*CODE_FIELDS)
        ],
        "notes": {
            kind: [str(line) for line in lines]
            for kind, lines in (found.notes or {}).items()
            if isinstance(lines, list)
        },
        "source": found.source,
        "code_set_year": found.code_set_year,
        "links": {
            "children": api_url(request, "code_children", **keys),
            "policies": api_url(request, "code_policies", **keys),
            "similar": api_url(request, "code_similar", **keys),
            "writeup": api_url(request, "writeup", **keys) if writeup else None,
        },
    }


@router.get(
    "/codes/{system}/{code}/children",
    response={200: schemas.CodePage, **NOT_FOUND, 422: schemas.Invalid},
    url_name="code_children",
    tags=["codes"],
    summary="Codes under a code",
)
def code_children(request, system: str, code: str, paging: Query[PageQuery]):
    """The codes one level below (an ICD-10-CM category's subcategories …)."""
    found = find_code(system, code)
    children = found.children.only(*CODE_FIELDS).order_by("sort_key")
    return page_of(request, children, paging, lambda c: code_ref(request, c))


@router.get(
    "/codes/{system}/{code}/policies",
    response={200: schemas.MentionPage, **NOT_FOUND, 422: schemas.Invalid},
    url_name="code_policies",
    tags=["codes", "policies"],
    summary="Policies naming a code",
)
def code_policies(request, system: str, code: str, paging: Query[PageQuery]):
    """
    Published policies that name the code, by itself or through a range or a
    category row, with the group it sits in and that group's coverage.
    """
    found = find_code(system, code)

    def build(mention):
        return {
            "policy": policy_ref(request, mention.policy),
            **group_coverage(mention.group),
            "listed": mention.listed,
            "row": code_row(mention.row),
        }

    return page_of(request, PolicyCode.objects.mentions_of(found), paging, build)


@router.get(
    "/codes/{system}/{code}/similar",
    response={200: schemas.SimilarPage, **NOT_FOUND, 422: schemas.Invalid},
    url_name="code_similar",
    tags=["codes"],
    summary="Similar codes",
)
def code_similar(request, system: str, code: str, paging: Query[PageQuery]):
    """The code's ranked list of similar codes, with the reasons for each."""
    found = find_code(system, code)

    def build(entry):
        return {
            "rank": entry.rank,
            "code": code_ref(request, entry.similar),
            "reasons": [
                {
                    "kind": str(reason.get("kind", "")),
                    "text": str(reason.get("text", "")),
                }
                for reason in entry.reasons or []
                if isinstance(reason, dict)
            ],
        }

    return page_of(request, list(similar.stored_for(found)), paging, build)


# Write-ups.


@router.get(
    "/writeups",
    response={200: schemas.WriteupPage, 422: schemas.Invalid},
    url_name="writeups",
    tags=["write-ups"],
    summary="List write-ups",
)
def list_writeups(request, paging: Query[PageQuery]):
    """Published plain-language write-ups, A to Z by title."""
    found = (
        Procedure.objects.published()
        .select_related("code")
        .only(
            "title",
            "reviewed_on",
            "reviewed_by",
            "updated_at",
            *(f"code__{name}" for name in CODE_FIELDS),
        )
        .order_by("title", "pk")
    )
    return page_of(request, found, paging, lambda p: writeup_summary(request, p))


@router.get(
    "/writeups/{system}/{code}",
    response={200: schemas.WriteupDetail, **NOT_FOUND},
    url_name="writeup",
    tags=["write-ups"],
    summary="A code's write-up",
)
def writeup_detail(request, system: str, code: str):
    """
    The published write-up of a code: each section with text, as Markdown and as the
    sanitised HTML the site shows.
    """
    system, canonical = resolve_code(system, code)
    procedure = (
        Procedure.objects.published()
        .select_related("code")
        .filter(code__system=system, code__code=canonical)
        .first()
    )
    if procedure is None:
        label = codes.SYSTEM_LABELS[codes.System(system)]
        raise NotFound(f"{label} {canonical} has no published write-up on this site.")
    return {
        **writeup_summary(request, procedure),
        "sections": markdown_sections(procedure, procedure.sections()),
    }


# Policies and payers.


class PolicyFilters(Schema):
    payer: str | None = Field(
        None, max_length=80, pattern=SLUG_PATTERN, description="A payer's slug."
    )


def payer_or_invalid(slug: str):
    payer = Payer.objects.filter(slug=slug).first()
    if payer is None:
        raise invalid("query.payer", f"“{slug}” is not a payer this site has.")
    return payer


@router.get(
    "/policies",
    response={200: schemas.PolicyPage, 422: schemas.Invalid},
    url_name="policies",
    tags=["policies"],
    summary="List policies",
)
def list_policies(request, paging: Query[PageQuery], filters: Query[PolicyFilters]):
    """Published policies by payer and number, or those of one payer."""
    found = (
        Policy.objects.published()
        .select_related("payer")
        .order_by("payer__name", "number")
    )
    if filters.payer:
        found = found.filter(payer=payer_or_invalid(filters.payer))
    return page_of(request, found, paging, lambda p: policy_summary(request, p))


def markdown_sections(obj, sections) -> list[dict]:
    """Each (field name, heading, HTML) of ``obj`` with the field's Markdown source."""
    return [
        {
            "name": name,
            "heading": heading,
            "markdown": getattr(obj, name),
            "html": str(html),
        }
        for name, heading, html in sections
    ]


def policy_sections(policy) -> list[tuple]:
    """(field name, heading, HTML) for each Markdown field of the policy with text."""
    return [
        (name, policy._meta.get_field(name).verbose_name.capitalize(), html)
        for name, html in policy.html.items()
        if getattr(policy, name).strip()
    ]


@router.get(
    "/policies/{payer}/{number}",
    response={200: schemas.PolicyDetail, **NOT_FOUND, 410: schemas.Withdrawn},
    url_name="policy",
    tags=["policies"],
    summary="A policy",
)
def policy_detail(request, payer: str, number: str):
    """
    A published policy with its text, code groups (each with its coverage and its
    codes and ranges), references and related policies. A policy the payer withdrew
    answers 410 with its replacement, if any.
    """
    policy = public_policy(payer.lower(), number)
    if policy.is_withdrawn:
        replacement = current_replacement(policy)
        return Status(
            410,
            {
                "detail": f"{policy.payer.name} withdrew policy {policy.number}.",
                "withdrawn_on": policy.withdrawn_on,
                "replaced_by": policy_ref(request, replacement)
                if replacement
                else None,
            },
        )
    groups = policy.code_groups.prefetch_related("codes")
    related = policy.related_policies.published().select_related("payer")
    return {
        **policy_summary(request, policy),
        "status": policy.status,
        "source_url": policy.source_url,
        "updated_at": policy.updated_at,
        "sections": markdown_sections(policy, policy_sections(policy)),
        "code_groups": [
            {
                **group_coverage(group),
                "system": group.system,
                "codes": [code_row(row) for row in group.codes.all()],
            }
            for group in groups
        ],
        "references": list(policy.references.values_list("citation", flat=True)),
        "related": [policy_ref(request, other) for other in related],
    }


def payers_with_counts():
    return Payer.objects.annotate(
        policy_count=Count(
            "policies", filter=Q(policies__status=PolicyStatus.PUBLISHED)
        )
    )


@router.get(
    "/payers",
    response={200: schemas.PayerPage, 422: schemas.Invalid},
    url_name="payers",
    tags=["payers"],
    summary="List payers",
)
def list_payers(request, paging: Query[PageQuery]):
    """Every payer, by name, with the number of its published policies."""
    found = payers_with_counts().order_by("name", "pk")
    return page_of(request, found, paging, lambda p: payer_summary(request, p))


@router.get(
    "/payers/{slug}",
    response={200: schemas.PayerDetail, **NOT_FOUND},
    url_name="payer",
    tags=["payers"],
    summary="A payer",
)
def payer_detail(request, slug: str):
    payer = payers_with_counts().filter(slug=slug.lower()).first()
    if payer is None:
        raise NotFound(f"“{slug}” is not a payer this site has.")
    return {
        **payer_summary(request, payer),
        "description": markdown_sections(
            payer, [("description", "Description", render_markdown(payer.description))]
        )[0],
    }


# Search.


class SearchQuery(Schema):
    q: str = Field(
        min_length=1,
        max_length=MAX_QUERY_LENGTH,
        description="Words, codes, code prefixes or ranges (E11, 97010-97799).",
    )
    system: SystemSlug | None = None
    kind: SearchKind | None = None
    payer: str | None = Field(
        None, max_length=80, pattern=SLUG_PATTERN, description="A payer's slug."
    )
    page: int = Field(1, ge=1, le=MAX_PAGE)
    page_size: int = Field(20, ge=1, le=MAX_SEARCH_PAGE_SIZE)


@router.get(
    "/search",
    response={200: schemas.SearchResults, 422: schemas.Invalid},
    url_name="search",
    tags=["search"],
    summary="Search",
)
def search(request, params: Query[SearchQuery]):
    """
    Codes, write-ups and policies matching the query, as the site's search page
    finds them: codes named exactly first, then text matches with snippets.
    """
    if params.payer:
        payer_or_invalid(params.payer)
    filters = search_engine.Filters(
        system=params.system or "", kind=params.kind or "", payer=params.payer or ""
    )
    results = search_engine.search(params.q, filters, params.page, params.page_size)
    return {
        "query": results.query,
        "total": results.total,
        "counts": dict(results.counts),
        "page": results.page,
        "page_size": results.per_page,
        "pages": results.pages,
        "exact": site_url(request, results.exact) if results.exact else None,
        "suggestion": results.suggestion,
        "notice": results.notice,
        "hits": [
            {
                "kind": hit.kind,
                "title": hit.title,
                "url": site_url(request, hit.url),
                "snippet": str(hit.snippet),
                "detail": hit.detail,
                "system": hit.system,
                "code": hit.code,
                "payer": hit.payer,
                "reason": hit.reason,
            }
            for hit in results.hits
        ],
    }


class SuggestQuery(Schema):
    q: str = Field(
        min_length=1, max_length=MAX_QUERY_LENGTH, description="What has been typed."
    )
    limit: int = Field(10, ge=1, le=MAX_SUGGESTIONS)


@router.get(
    "/suggest",
    response={200: schemas.Suggestions, 422: schemas.Invalid},
    url_name="suggest",
    tags=["search"],
    summary="Autocomplete",
)
def suggest(request, params: Query[SuggestQuery]):
    """
    Codes and titles for what has been typed so far; nothing for fewer than two
    characters.
    """
    query = " ".join(params.q.split())
    found = []
    if len(query) >= MIN_SUGGEST_LENGTH:
        found = search_engine.suggest(query, params.limit)[: params.limit]
    return {
        "query": query,
        "suggestions": [
            {
                "label": item.label,
                "url": site_url(request, item.url),
                "kind": item.kind,
                "detail": item.detail,
            }
            for item in found
        ],
    }
