from django.conf import settings
from django.db.models import Q, prefetch_related_objects
from django.shortcuts import get_object_or_404, redirect, render

from carecodes import page_tags, seo
from carecodes.errors import NotFound
from procedures.models import Code
from procedures.views import staff_preview

from .models import Payer, Policy


def payer_detail(request, payer):
    if payer != payer.lower():
        return redirect("policies:payer", payer=payer.lower(), permanent=True)
    payer = get_object_or_404(Payer, slug=payer)
    policies = payer.policies.published().order_by("number")
    crumbs = [("Home", "/"), (payer.name, payer.get_absolute_url())]
    return render(
        request,
        "policies/payer_detail.html",
        {
            "payer": payer,
            "policies": policies,
            "crumbs": crumbs,
            "og_title": f"{payer.name} medical policies",
            "description": (
                f"The {payer.name} medical and coverage policies on "
                f"{settings.SITE_NAME}, with the procedure and diagnosis codes each "
                "one names."
            ),
            "json_ld": seo.collection_page(
                request,
                f"{payer.name} medical policies",
                payer.get_absolute_url(),
                crumbs,
            ),
        },
    )


def policy_detail(request, payer, number):
    if payer != payer.lower():
        return redirect(
            "policies:policy", payer=payer.lower(), number=number, permanent=True
        )
    policy = public_policy(payer, number)
    if policy.is_withdrawn:
        return policy_withdrawn(request, policy)
    return render_policy_page(request, policy)


def policy_page_preview(request, policy):
    """The policy page with its working revision, for staff (the admin checks who)."""
    shown = policy.revised_copy()
    return staff_preview(render_policy_page(request, shown, preview=True))


def render_policy_page(request, policy, *, preview=False):
    # Its rows link the codes the site holds: a new code adds a link.
    page_tags.add("sections")
    prefetch_related_objects([policy], "code_groups__codes", "references")
    related = policy.related_policies.published().select_related("payer")
    groups = policy.code_groups.all()
    rows = [row for group in groups for row in group.codes.all()]
    pages = code_pages(rows)
    for row in rows:
        row.start_url = pages.get((row.system, row.start_code))
        row.end_url = pages.get((row.system, row.end_code))
    crumbs = policy_crumbs(policy)
    return render(
        request,
        "policies/policy_detail.html",
        {
            "policy": policy,
            "preview": preview,
            "groups": groups,
            "related": related,
            "crumbs": crumbs,
            "og_title": f"{policy.payer.name} {policy.number}: {policy.title}",
            "description": seo.meta_description(
                f"{policy.payer.name} policy {policy.number}, {policy.title}:",
                policy.html["scope"],
                "The codes it lists, grouped by coverage.",
            ),
            "shows_cpt": any(row.system == "cpt" for row in rows),
            "json_ld": seo.policy_page(request, policy, crumbs),
            # policies.versions: listed without their content, newest first.
            "versions": policy.versions.defer("content").order_by("-number"),
        },
    )


def policy_crumbs(policy) -> list[tuple[str, str]]:
    return [
        ("Home", "/"),
        (policy.payer.name, policy.payer.get_absolute_url()),
        (f"Policy {policy.number}", policy.get_absolute_url()),
    ]


def public_policy(payer_slug, number):
    """The public policy at this address (withdrawn ones too), or the site's 404."""
    # get(), not first(): a number is unique per payer, and first() would order by
    # the payer's name through one more join.
    try:
        return (
            Policy.objects.public()
            .select_related("payer")
            .get(payer__slug=payer_slug, number=number)
        )
    except Policy.DoesNotExist:
        raise policy_not_found(payer_slug, number) from None


def policy_not_found(payer_slug, number) -> NotFound:
    found = Payer.objects.filter(slug=payer_slug).first()
    if found is None:
        return NotFound(f"“{payer_slug}” is not a payer this site has.")
    return NotFound(
        f"{found.name} has no policy {number} on this site.",
        suggestions=[(f"{found.name}’s policies", found.get_absolute_url())],
    )


def current_replacement(policy):
    """The published policy at the end of the replacements, if there is one."""
    seen = {policy.pk}
    replacement = policy.replaced_by
    # A policy replaced twice (0198 by 0999, then 0999 by 1100) leads to the last.
    while replacement is not None and replacement.pk not in seen:
        if replacement.is_published:
            return replacement
        seen.add(replacement.pk)
        replacement = replacement.replaced_by
    return None


def policy_withdrawn(request, policy):
    """410 Gone: the payer retired the policy; say so, and where to go instead."""
    replacement = current_replacement(policy)
    crumbs = policy_crumbs(policy)
    return render(
        request,
        "policies/policy_withdrawn.html",
        {
            "policy": policy,
            "replacement": replacement,
            "crumbs": crumbs,
            "og_title": f"{policy.payer.name} {policy.number}: withdrawn",
            "description": seo.meta_description(
                f"{policy.payer.name} withdrew policy {policy.number}, {policy.title}.",
                "See the payer’s current policies instead.",
            ),
        },
        status=410,
    )


def code_pages(rows) -> dict[tuple[str, str], str]:
    """Addresses of the site's pages for the codes and range ends in ``rows``."""
    by_system: dict[str, set[str]] = {}
    for row in rows:
        by_system.setdefault(row.system, set()).update(
            c for c in (row.start_code, row.end_code) if c
        )
    if not by_system:
        return {}
    matches = Q()
    for system, names in by_system.items():
        matches |= Q(system=system, code__in=names)
    return {
        (code.system, code.code): code.get_absolute_url()
        for code in Code.objects.filter(matches).only("system", "code")
    }
