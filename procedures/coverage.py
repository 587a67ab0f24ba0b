"""
Coverage across payers: for one code, every published policy that names it.

One row per payer and policy, with the coverage status of the group that names the
code, the payer's last review and whether the policy lists the code or reaches it
through a range or a parent code. The rows come from
``PolicyCode.objects.mentions_of`` (one indexed query, ranges included), so the page
costs two queries however many policies there are: the code and its mentions.
"""

from django.shortcuts import render
from django.urls import reverse

from carecodes import seo
from policies.models import Coverage, PolicyCode

from . import codes
from .models import Code
from .views import breadcrumbs_for, code_page_target

# Strictest first, as a patient reading the table asks "will they pay?".
STATUS_ORDER = [
    Coverage.NOT_COVERED,
    Coverage.CRITERIA,
    Coverage.COVERED,
    Coverage.INFORMATIONAL,
]


def by_status(mentions) -> list[tuple[str, str, list]]:
    """``(status, label, mentions)`` for each status some policy gives the code."""
    grouped = {status.value: [] for status in STATUS_ORDER}
    for mention in mentions:
        grouped.setdefault(mention.group.coverage, []).append(mention)
    return [
        (status, Coverage(status).label, found)
        for status, found in grouped.items()
        if found
    ]


def code_coverage(request, system, code):
    code = code_page_target(system, code, "procedures:coverage")
    if not isinstance(code, Code):
        return code
    mentions = PolicyCode.objects.mentions_of(code)
    path = reverse("procedures:coverage", args=[code.system, code.code])
    crumbs = [
        *breadcrumbs_for(code.section),
        (code.code, code.get_absolute_url()),
        ("Coverage across payers", path),
    ]
    label = f"{code.get_system_display()} {code.code}"
    payers = {mention.policy.payer_id for mention in mentions}
    latest_review = max(
        (m.policy.last_reviewed_on for m in mentions if m.policy.last_reviewed_on),
        default=None,
    )
    return render(
        request,
        "procedures/code_coverage.html",
        {
            "code": code,
            "mentions": mentions,
            "statuses": by_status(mentions),
            "payer_count": len(payers),
            "latest_review": latest_review,
            "crumbs": crumbs,
            "shows_cpt": code.system == codes.System.CPT,
            "og_title": f"{label}: coverage across payers",
            "description": coverage_description(code, label, mentions, len(payers)),
            "json_ld": json_ld(request, code, label, path, crumbs, latest_review),
        },
    )


def coverage_description(code, label, mentions, payer_count) -> str:
    if not mentions:
        return seo.meta_description(
            f"{label} ({code.descriptor}):",
            "no payer policy on this site names this code yet.",
        )
    return seo.meta_description(
        f"How {payer_count} payer{'s' if payer_count != 1 else ''} treat {label}",
        f"({code.descriptor}) in their medical policies: coverage status, last "
        "review and how each policy names the code.",
    )


def json_ld(request, code, label, path, crumbs, latest_review) -> dict:
    url = seo.canonical_url(request, path)
    page = {
        "@context": "https://schema.org",
        "@type": "MedicalWebPage",
        "@id": url,
        "url": url,
        "name": f"{label}: coverage across payers",
        "inLanguage": "en",
        "audience": {"@type": "MedicalAudience", "audienceType": "Patient"},
        "about": seo.medical_code(code),
        "breadcrumb": seo.breadcrumb_list(request, crumbs),
    }
    if latest_review:
        page["lastReviewed"] = latest_review.isoformat()
    return page
