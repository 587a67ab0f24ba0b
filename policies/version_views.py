"""
Pages of a policy's versions: each version, what changed between two, the Atom
feeds of those changes (per policy, per payer), and one code's changes across
payers. The work is in ``policies.versions``; these read and render.
"""

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import feedgenerator
from django.utils.html import escape

from carecodes import page_tags, seo
from carecodes.errors import NotFound
from procedures.views import code_page_target

from . import versions as history
from .models import Payer, Policy, PolicyVersion
from .views import policy_crumbs, public_policy

# Entries in a feed: a clinic that checks monthly sees a year of busy revisions.
FEED_ENTRIES = 30


def _listed(policy):
    """The policy's versions without their content, newest first (one query)."""
    return list(policy.versions.defer("content").order_by("-number"))


def _bad_request(request, message):
    return render(
        request,
        "400.html",
        {
            "message": message,
            "og_title": "Bad request",
            "description": "The address could not be read.",
        },
        status=400,
    )


def _lowercase_payer(view_name, payer, **kwargs):
    if payer != payer.lower():
        return redirect(view_name, payer=payer.lower(), **kwargs, permanent=True)
    return None


def version_detail(request, payer, number, version):
    moved = _lowercase_payer("policies:version", payer, number=number, version=version)
    if moved:
        return moved
    # Withdrawn policies keep their history.
    policy = public_policy(payer, number)
    try:
        wanted = history.parse_address(version)
    except history.BadVersion as error:
        return _bad_request(request, str(error))
    listed = _listed(policy)
    found = history.find(listed, wanted)
    if found is None:
        return _not_found(request, policy, version)
    shown = PolicyVersion.objects.get(pk=found.pk)
    content = shown.content
    groups = [
        {**group, "coverage_label": history.coverage_label(group["coverage"])}
        for group in content["groups"]
    ]
    # An unsaved copy of the policy with the version's text, rendered through the
    # one Markdown renderer as the policy page is.
    then = Policy(
        payer=policy.payer,
        number=policy.number,
        title=content["title"],
        rendered={},
        **content["sections"],
    )
    crumbs = [
        *policy_crumbs(policy),
        (f"Version {shown.number}", request.path),
    ]
    return render(
        request,
        "policies/version_detail.html",
        {
            "policy": policy,
            "version": shown,
            "then": then,
            "content": content,
            "groups": groups,
            "versions": listed,
            "previous": next((v for v in listed if v.number < shown.number), None),
            "crumbs": crumbs,
            "og_title": f"{policy.payer.name} {policy.number}, version {shown.number}",
            "description": seo.meta_description(
                f"{policy.payer.name} policy {policy.number} ({content['title']}) as "
                f"it stood in version {shown.number}, with its code table then.",
            ),
            "shows_cpt": any(group["system"] == "cpt" for group in content["groups"]),
        },
    )


def _not_found(request, policy, asked):
    raise NotFound(
        f"{policy.payer.name} policy {policy.number} has no version “{asked[:40]}” "
        "on this site.",
        suggestions=[
            (f"{policy.payer.name} {policy.number}", policy.get_absolute_url())
        ],
    )


def policy_changes(request, payer, number):
    moved = _lowercase_payer("policies:changes", payer, number=number)
    if moved:
        return moved
    policy = public_policy(payer, number)
    listed = _listed(policy)
    chosen = {}
    for name in ("from", "to"):
        asked = request.GET.get(name, "").strip()
        if not asked:
            continue
        try:
            wanted = history.parse_address(asked)
        except history.BadVersion as error:
            return _bad_request(request, f"“{name}”: {error}")
        chosen[name] = history.find(listed, wanted)
        if chosen[name] is None:
            _not_found(request, policy, asked)
    newer = chosen.get("to") or (listed[0] if listed else None)
    older = chosen.get("from")
    if older is None and newer is not None:
        older = next((v for v in listed if v.number < newer.number), None)
    if older is not None and newer is not None and older.number == newer.number:
        return _bad_request(
            request, "“from” and “to” name the same version: choose two different ones."
        )
    comparison = None
    if older is not None and newer is not None:
        contents = dict(
            PolicyVersion.objects.filter(pk__in=[older.pk, newer.pk]).values_list(
                "pk", "content"
            )
        )
        comparison = history.compare(contents[older.pk], contents[newer.pk])
        history.range_effects(comparison.ranges)
    path = reverse("policies:changes", args=[policy.payer.slug, policy.number])
    crumbs = [*policy_crumbs(policy), ("What changed", path)]
    return render(
        request,
        "policies/policy_changes.html",
        {
            "policy": policy,
            "versions": listed,
            "older": older,
            "newer": newer,
            "comparison": comparison,
            "crumbs": crumbs,
            "feed_url": reverse(
                "policies:changes_feed", args=[policy.payer.slug, policy.number]
            ),
            "og_title": f"What changed in {policy.payer.name} policy {policy.number}",
            "description": seo.meta_description(
                f"What changed in {policy.payer.name} policy {policy.number} "
                f"({policy.title}) between its versions:",
                "codes added, removed or moved between coverage groups, ranges and "
                "text, in plain words.",
            ),
            "json_ld": seo.collection_page(
                request,
                f"What changed in {policy.payer.name} policy {policy.number}",
                path,
                crumbs,
            ),
        },
    )


# Feeds -------------------------------------------------------------------------------


def _with_previous(versions) -> dict:
    """The content of the version before each of ``versions``, in one query."""
    wanted = {(v.policy_id, v.number - 1) for v in versions if v.number > 1}
    if not wanted:
        return {}
    policies = {policy_id for policy_id, _number in wanted}
    numbers = {number for _policy_id, number in wanted}
    found = PolicyVersion.objects.filter(
        policy_id__in=policies, number__in=numbers
    ).values_list("policy_id", "number", "content")
    return {
        (policy_id, number + 1): content
        for policy_id, number, content in found
        if (policy_id, number) in wanted
    }


def _entry_lines(version, previous_content):
    if previous_content is None:
        return ["First version recorded on this site."]
    return history.compare(previous_content, version.content).lines()


def _feed_response(request, *, title, link, description, versions):
    previous = _with_previous(versions)
    entries = [
        (v, _entry_lines(v, previous.get((v.policy_id, v.number)))) for v in versions
    ]
    feed = feedgenerator.Atom1Feed(
        title=title,
        link=seo.canonical_url(request, link),
        description=description,
        language="en",
        author_name=settings.SITE_NAME,
        feed_url=seo.canonical_url(request, request.path),
        feed_guid=seo.canonical_url(request, request.path),
    )
    for version, lines in entries:
        policy = version.policy
        address = version.get_absolute_url()
        link_to = address
        if version.number > 1:
            changes = reverse(
                "policies:changes", args=[policy.payer.slug, policy.number]
            )
            link_to = f"{changes}?to={version.number}"
        feed.add_item(
            title=f"{policy.payer.name} {policy.number}, version {version.number}: "
            + lines[0],
            link=seo.canonical_url(request, link_to),
            unique_id=seo.canonical_url(request, address),
            description="<ul>"
            + "".join(f"<li>{escape(line)}</li>" for line in lines)
            + "</ul>",
            pubdate=version.created_at,
            updateddate=version.created_at,
        )
    response = HttpResponse(content_type="application/atom+xml; charset=utf-8")
    feed.write(response, "utf-8")
    return response


def policy_changes_feed(request, payer, number):
    moved = _lowercase_payer("policies:changes_feed", payer, number=number)
    if moved:
        return moved
    policy = public_policy(payer, number)
    versions = list(
        policy.versions.select_related("policy__payer").order_by("-number")[
            :FEED_ENTRIES
        ]
    )
    return _feed_response(
        request,
        title=f"{policy.payer.name} policy {policy.number}: what changed",
        link=reverse("policies:changes", args=[policy.payer.slug, policy.number]),
        description=f"Every recorded version of {policy.payer.name} policy "
        f"{policy.number}, {policy.title}, and what it changed.",
        versions=versions,
    )


def payer_changes_feed(request, payer):
    # Any policy of the payer, new ones too (carecodes.page_cache).
    page_tags.add("content")
    moved = _lowercase_payer("policies:payer_changes_feed", payer)
    if moved:
        return moved
    payer = get_object_or_404(Payer, slug=payer)
    versions = list(
        PolicyVersion.objects.filter(policy__payer=payer)
        .filter(policy__in=Policy.objects.public())
        .select_related("policy__payer")
        .order_by("-created_at", "-pk")[:FEED_ENTRIES]
    )
    return _feed_response(
        request,
        title=f"{payer.name} policies: what changed",
        link=payer.get_absolute_url(),
        description=f"Every recorded version of the {payer.name} policies on "
        f"{settings.SITE_NAME}, and what it changed.",
        versions=versions,
    )


# One code ----------------------------------------------------------------------------


def code_changes(request, system, code):
    """One code's coverage changes in every published policy, newest first."""
    # Any policy may come to name the code (carecodes.page_cache).
    page_tags.add("content")
    code = code_page_target(system, code, "policies:code_changes")
    if not hasattr(code, "sort_key"):
        return code  # a redirect to the canonical address
    changes = history.code_history(code.system, code.code)
    path = reverse("policies:code_changes", args=[code.system, code.code])
    label = f"{code.get_system_display()} {code.code}"
    crumbs = [
        ("Home", "/"),
        (code.code, code.get_absolute_url()),
        ("Policy changes", path),
    ]
    return render(
        request,
        "policies/code_changes.html",
        {
            "code": code,
            "changes": changes,
            "crumbs": crumbs,
            "shows_cpt": code.system == "cpt",
            "og_title": f"Policy changes for {label}",
            "description": seo.meta_description(
                f"When payer policies changed how they treat {label} "
                f"({code.descriptor}):",
                "codes listed, removed or moved between coverage groups, by version.",
            ),
            "json_ld": seo.collection_page(
                request, f"Policy changes for {label}", path, crumbs
            ),
        },
    )
