import datetime

from django.conf import settings
from django.core.paginator import Paginator
from django.db.models import Count, F, Subquery
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.text import Truncator

from carecodes import page_tags, seo
from carecodes.errors import NotFound
from policies import versions
from policies.models import PolicyCode

from . import codes, lay_terms, pcs
from .models import Code, CodeSection, PcsAxisValue, Procedure, PublicationStatus

NEIGHBOURS = 3


def resolve_code(system_slug: str, code_text: str) -> tuple[str, str]:
    """The canonical (system slug, code) for a URL's parts, or 404 in plain words."""
    system = known_system(system_slug)
    try:
        return system.value, codes.normalize(system, code_text)
    except codes.CodeError as error:
        raise NotFound(
            str(error), suggestions=malformed_code_suggestions(system, code_text)
        ) from error


def known_system(system_slug: str) -> codes.System:
    system = codes.system_from_slug(system_slug)
    if system is None:
        raise NotFound(f"“{system_slug}” is not a code system this site knows.")
    return system


def malformed_code_suggestions(system, code_text: str) -> list[tuple[str, str]]:
    """
    For a code that cannot be read: the narrowest ICD-10-PCS section its first
    characters name (0SRC0J -> Knee Joint, Right), then the system's index. Other
    systems leave it to the 404 page's search suggestions.
    """
    if system is not codes.System.ICD10PCS:
        return []
    text = code_text.strip().upper()[:4] if isinstance(code_text, str) else ""
    slugs = [f"pcs-{text[:length].lower()}" for length in range(len(text), 0, -1)]
    sections = CodeSection.objects.filter(system=system, slug__in=slugs).order_by(
        "-depth"
    )[:1]
    return [
        *((f"ICD-10-PCS {found.name}", found.get_absolute_url()) for found in sections),
        ("Every ICD-10-PCS section", reverse_system_index(system)),
    ]


def reverse_system_index(system) -> str:
    return reverse("procedures:system_index", kwargs={"system": system})


def home(request):
    # The page lists the latest write-ups and the top sections (carecodes.page_cache).
    page_tags.add("writeups", "sections")
    recent = (
        Procedure.objects.published()
        .select_related("code")
        .order_by(F("reviewed_on").desc(nulls_last=True), "-updated_at")[:6]
    )
    sections = CodeSection.objects.filter(parent=None)
    return render(
        request,
        "procedures/home.html",
        {
            "recent": recent,
            "sections": sections,
            "og_title": (
                f"{settings.SITE_NAME}: medical codes explained in plain language"
            ),
            "description": (
                "Look up a CPT, HCPCS or ICD-10-CM code and read what the procedure "
                "involves in plain language, and which payer policies name it."
            ),
            "json_ld": seo.website(request, settings.SITE_NAME),
        },
    )


def code_index(request):
    page_tags.add("writeups", "sections")
    writeups = Procedure.objects.published().select_related("code").order_by("title")
    sections = CodeSection.objects.filter(parent=None)
    crumbs = [("Home", "/"), ("Browse codes", request.path)]
    return render(
        request,
        "procedures/code_index.html",
        {
            "writeups": writeups,
            "sections": sections,
            "systems": [
                (label, codes.SYSTEM_OIDS[system], reverse_system_index(system))
                for system, label in codes.SYSTEM_LABELS.items()
            ],
            "crumbs": crumbs,
            "og_title": "Browse medical codes and write-ups A–Z",
            "description": (
                f"Every plain-language procedure write-up on {settings.SITE_NAME} "
                "from A to Z, and the CPT, HCPCS and ICD-10-CM sections you can "
                "browse."
            ),
            "json_ld": seo.collection_page(
                request, "Medical code write-ups A–Z", request.path, crumbs
            ),
        },
    )


def system_index(request, system):
    """
    ``/codes/<system>/``: a code system's top sections with their code counts (the
    way into 78,000 ICD-10-PCS codes: section, body system, table, body part).
    """
    found = known_system(system)
    if found.value != system:
        return redirect("procedures:system_index", system=found.value, permanent=True)
    label = codes.SYSTEM_LABELS[found]
    page_tags.add("sections")
    sections = with_code_counts(CodeSection.objects.filter(system=found, parent=None))
    crumbs = [
        ("Home", "/"),
        ("Browse codes", reverse("procedures:code_index")),
        (label, request.path),
    ]
    return render(
        request,
        "procedures/system_index.html",
        {
            "system_label": label,
            "oid": codes.SYSTEM_OIDS[found],
            "is_pcs": found is codes.System.ICD10PCS,
            "sections": sections,
            "crumbs": crumbs,
            "og_title": f"{label} codes by section",
            "description": seo.meta_description(
                f"Browse the {label} code set by section, with the number of codes "
                "in each and every code explained in plain words."
            ),
            "json_ld": seo.collection_page(
                request, f"{label} codes by section", request.path, crumbs
            ),
        },
    )


def with_code_counts(sections):
    """Sections annotated with ``code_count``, the codes in their range (one query)."""
    in_range = (
        Code.objects.in_outer_section()
        .order_by()
        .values("system")
        .annotate(count=Count("*"))
        .values("count")
    )
    return sections.annotate(code_count=Subquery(in_range))


def code_page_target(system, code, url_name, *related):
    """
    The code a code address names, or a 301 to its canonical address.

    Sections come with their ancestors for the breadcrumbs: ICD-10-CM sections nest
    three deep (C00-C96 > C00-C75 > C00-C14).
    """
    canonical = resolve_code(system, code)
    if canonical != (system, code):
        return redirect(
            url_name, system=canonical[0], code=canonical[1], permanent=True
        )
    # get(), not first(): the pair is unique, and first()'s ORDER BY makes Django
    # hash every selected column of the ten joined tables (~3 ms a page, loaded).
    try:
        found = Code.objects.select_related(
            "section__parent__parent__parent", *related
        ).get(system=system, code=canonical[1])
    except Code.DoesNotExist:
        raise NotFound(
            f"{codes.SYSTEM_LABELS[codes.System(system)]} {canonical[1]} is a valid "
            "code, but it is not on this site yet.",
            suggestions=[
                *(
                    (f"{near.code}: {near.descriptor}", near.get_absolute_url())
                    for near in codes_around(system, canonical[1])
                ),
                *malformed_code_suggestions(codes.System(system), canonical[1]),
            ],
        ) from None
    return found


def codes_around(system: str, code: str):
    """
    The codes on this site either side of where ``code`` would sort; for
    ICD-10-PCS, in the same table (its first three characters), if it has any.
    """
    key = codes.sort_key(codes.System(system), code)
    nearby = Code.objects.filter(system=system)
    if system == codes.System.ICD10PCS:
        nearby = nearby.filter(sort_key__startswith=key[:3])
    return either_side(nearby, key)


def either_side(nearby, key: str) -> list:
    """A few codes of ``nearby`` before and after the sort key ``key``."""
    nearby = nearby.only("system", "code", "descriptor")
    before = nearby.filter(sort_key__lt=key).order_by("-sort_key")
    after = nearby.filter(sort_key__gt=key).order_by("sort_key")
    return [*reversed(before[:NEIGHBOURS]), *after[:NEIGHBOURS]]


def code_detail(request, system, code):
    # Four parents reach a code's category (S52.501A -> S52).
    code = code_page_target(
        system, code, "procedures:code", "procedure", "parent__parent__parent__parent"
    )
    if not isinstance(code, Code):
        return code
    procedure = getattr(code, "procedure", None)
    if procedure is not None and not procedure.is_published:
        procedure = None
    return render_code_page(request, code, procedure)


def render_code_page(request, code, procedure, *, preview=False):
    # What no object the page loads says: which policies name the code (a new one
    # may reach it through a range), its similar codes and its lay phrases.
    page_tags.add(f"cov:{code.pk}", f"list:{code.pk}", "lay")
    section = code.section
    crumbs = [*breadcrumbs_for(section), (code.code, code.get_absolute_url())]
    mentions = PolicyCode.objects.mentions_of(code)
    policy_changes = versions.code_history(code.system, code.code)
    versions.attach_last_changes(mentions, policy_changes)
    context = {
        "code": code,
        "procedure": procedure,
        "preview": preview,
        "section": section,
        "crumbs": crumbs,
        "primary_codes": list(code.primary_codes.all()),
        "addon_codes": list(code.addon_codes.all()),
        "mentions": mentions,
        # One query: the versions that changed the code's coverage, newest first.
        "policy_changes": policy_changes,
        "neighbours": neighbours(code),
        "lineage": lineage(code),
        # Only a code that is not billable has codes under it; a billable one
        # costs no query here.
        "child_codes": [] if code.is_billable else list(child_codes(code)),
        "official_notes": official_notes(code),
        "description": code_description(code, procedure),
        # Previews cut titles near 90 characters; ICD-10-CM descriptors run past 200.
        "og_title": Truncator(
            f"{code.get_system_display()} {code.code}: "
            + (procedure.title if procedure else code.descriptor)
        ).chars(90, truncate="…"),
        "shows_cpt": code.system == codes.System.CPT,
        # One query: the phrases people use for it (the lay-term thesaurus).
        "also_called": lay_terms.also_called(code),
        **pcs_explanation(code),
    }
    context["json_ld"] = seo.code_page(
        request,
        code,
        procedure,
        crumbs,
        names_procedure=code.system == codes.System.ICD10PCS,
        plain_words=context.get("plain_words", ""),
        also_called=context["also_called"],
    )
    return render(request, "procedures/code_detail.html", context)


def pcs_explanation(code) -> dict:
    """An ICD-10-PCS code's seven axis values and its sentence (one query)."""
    if code.system != codes.System.ICD10PCS:
        return {}
    axes = PcsAxisValue.objects.for_code(code.code)
    return {"pcs_axes": axes, "plain_words": pcs.plain_words(axes)}


def code_page_preview(request, procedure):
    """
    The code page as the public will see it once ``procedure`` is published with its
    working revision, for staff (the admin checks who may look). Never cached, never
    indexed.
    """
    shown = procedure.revised_copy()
    shown.status = PublicationStatus.PUBLISHED
    if procedure.revision:
        review = procedure.revision_review
        shown.reviewed_on = (
            datetime.date.fromisoformat(review["on"]) if review else None
        )
        shown.reviewed_by = review.get("by", "")
    return staff_preview(render_code_page(request, shown.code, shown, preview=True))


def staff_preview(response):
    """A page drawn for staff from unpublished text: never cached, never indexed."""
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex"
    return response


# Official note kinds (the keys of Code.notes) with plain headings, in page order.
NOTE_HEADINGS = [
    ("includes", "Includes"),
    ("inclusion_terms", "Also covers"),
    ("excludes1", "Excludes1: never coded together with this code"),
    ("excludes2", "Excludes2: not part of this code, but may be coded with it"),
    ("code_first", "Code first"),
    ("code_also", "Code also"),
    ("use_additional_code", "Use additional code"),
    ("seventh_characters", "7th characters"),
    ("notes", "Notes"),
]


def official_notes(code) -> list[tuple[str, str, list[str]]]:
    """(kind, heading, lines) for each kind of official note the code has."""
    notes = code.notes or {}
    return [
        (kind, heading, notes[kind])
        for kind, heading in NOTE_HEADINGS
        if notes.get(kind)
    ]


def lineage(code) -> list:
    """The codes above this one, outermost first (category, then subcategories)."""
    chain = []
    node = code.parent
    # select_related fetched four levels, as deep as ICD-10-CM goes; stopping at
    # what was fetched keeps the page from querying once per level.
    while node is not None:
        chain.append(node)
        node = node.parent if Code.parent.is_cached(node) else None
    return chain[::-1]


def child_codes(code):
    return code.children.only("system", "code", "descriptor", "is_billable").order_by(
        "sort_key"
    )


def code_description(code, procedure) -> str:
    label = f"{code.get_system_display()} {code.code}"
    if procedure is not None:
        return seo.meta_description(f"{label} explained:", procedure.html["summary"])
    return seo.meta_description(
        f"{label}: {code.descriptor}.",
        "What the code means and which payer policies name it.",
    )


def section_detail(request, system, slug):
    # A new or deleted code changes its section's list and counts.
    page_tags.add("sections")
    section = get_object_or_404(
        CodeSection.objects.select_related("parent__parent__parent"),
        system=system,
        slug=slug,
    )
    children = list(with_code_counts(section.children.all()))
    page = None
    if not children:
        page = Paginator(
            Code.objects.in_section(section).only("system", "code", "descriptor"),
            100,
            orphans=10,
        ).get_page(request.GET.get("page"))
    crumbs = breadcrumbs_for(section)
    section_range = (
        f"{section.get_system_display()} {section.start_code}–{section.end_code}"
    )
    return render(
        request,
        "procedures/section_detail.html",
        {
            "section": section,
            "children": children,
            "children_heading": children_heading(section),
            "page": page,
            "crumbs": crumbs,
            "shows_cpt": section.system == codes.System.CPT,
            "og_title": f"{section.name} ({section_range})",
            "description": seo.meta_description(
                f"{section.get_system_display()} codes {section.start_code} to "
                f"{section.end_code}: {section.name}.",
                "Browse the codes and their plain-language write-ups.",
            ),
            "json_ld": seo.collection_page(
                request, section.name, section.get_absolute_url(), crumbs
            ),
        },
    )


# What an ICD-10-PCS section's children are, by its depth: a section holds body
# systems, a body system root operations (the tables), a table body parts.
PCS_LEVELS = ["Body systems", "Root operations", "Body parts"]


def children_heading(section) -> str:
    if section.system == codes.System.ICD10PCS and section.depth < len(PCS_LEVELS):
        return PCS_LEVELS[section.depth]
    return "Sections"


def breadcrumbs_for(section):
    """Home, the section's code system (its index), then the sections down to it."""
    crumbs = [("Home", "/")]
    if section is not None:
        system = codes.System(section.system)
        crumbs.append((codes.SYSTEM_LABELS[system], reverse_system_index(system)))
        for node in [*section.ancestors(), section]:
            crumbs.append((node.name, node.get_absolute_url()))
    return crumbs


def neighbours(code):
    """A few codes either side of this one in its section."""
    if code.section is None:
        return []
    return either_side(Code.objects.in_section(code.section), code.sort_key)
