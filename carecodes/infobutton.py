"""
An HL7 Infobutton responder (Context-Aware Knowledge Retrieval, URL-based
interface) that answers the way MedlinePlus Connect does.

An EHR asks ``/infobutton/service?mainSearchCriteria.v.cs=2.16.840.1.113883.6.12&
mainSearchCriteria.v.c=97546`` and gets an Atom feed, or the same tree as JSON or
JSONP, of at most three entries: the code's write-up (or the write-up of the nearest
code above it), and the payer policies that name the code, by itself or through a
range. A clinician (``informationRecipient=PROV``) gets the code itself first: its
descriptor, official notes, add-on rules and the policies with their coverage
groups. ``/infobutton/application`` answers a person's browser: a redirect to the
best page, or a short list when several fit.

``read_request`` turns the query string into a :class:`KnowledgeRequest` or raises
:class:`BadRequest` with the reason in plain words; ``find_entries`` gathers the
content; ``build_feed`` makes the one :class:`Feed` that ``atom_document`` and
``json_tree`` write out. An unknown code or code system is not an error: the answer
is an empty, valid feed.
"""

from __future__ import annotations

import datetime
import html
import json
import re
from dataclasses import dataclass, field
from xml.etree import ElementTree as ET

from django.conf import settings
from django.db.models import Q
from django.http import HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.safestring import SafeString, mark_safe

from index import search as search_engine
from policies.models import Policy, PolicyCode
from procedures import codes
from procedures.models import Code, Procedure
from procedures.views import official_notes

from .markdown import render_markdown
from .views import bad_request

# The URL interface's parameter names (HL7 Infobutton URL-based implementation guide).
CODE = "mainSearchCriteria.v.c"
CODE_SYSTEM = "mainSearchCriteria.v.cs"
DISPLAY_NAME = "mainSearchCriteria.v.dn"
ORIGINAL_TEXT = "mainSearchCriteria.v.ot"
RECIPIENT = "informationRecipient"
LANGUAGE = "informationRecipient.languageCode.c"
RESPONSE_TYPE = "knowledgeResponseType"
CALLBACK = "callback"
# In the order the feed echoes them as categories.
PARAMETERS = (
    CODE,
    CODE_SYSTEM,
    DISPLAY_NAME,
    ORIGINAL_TEXT,
    RECIPIENT,
    LANGUAGE,
    RESPONSE_TYPE,
)

PATIENT, PROVIDER = "PAT", "PROV"
RECIPIENT_NAMES = {PATIENT: "patients", PROVIDER: "clinicians"}

ATOM_TYPES = ("text/xml", "application/atom+xml")
JSON_TYPE = "application/json"
JSONP_TYPE = "application/javascript"
RESPONSE_TYPES = (*ATOM_TYPES, JSON_TYPE, JSONP_TYPE)

# Letters, digits, "_", "$" and dots: a JavaScript name path, never code.
CALLBACK_RE = re.compile(r"[A-Za-z_$][\w$.]{0,63}", re.ASCII)
LANGUAGE_TAG_RE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*", re.ASCII)
# The languages the content is written in; anything else is answered in English.
CONTENT_LANGUAGES = {"en": "English"}
LANGUAGE_NAMES = {"es": "Spanish", "en": "English"}
DEFAULT_LANGUAGE = "en"

MAX_ENTRIES = 3
# Longer than any code or code-system URI; the display name is bounded as a search.
MAX_CODE_LENGTH = 40
MAX_SYSTEM_LENGTH = 200
MAX_TEXT_LENGTH = search_engine.MAX_QUERY_LENGTH

CACHE_SECONDS = 300

# Code-system URIs FHIR uses (compared without case, scheme or trailing slash).
SYSTEM_URIS = {
    "hl7.org/fhir/sid/icd-10-cm": codes.System.ICD10CM,
    "www.ama-assn.org/go/cpt": codes.System.CPT,
    "www.cms.gov/medicare/coding/hcpcsreleasecodesets": codes.System.HCPCS,
    "www.cms.gov/medicare/coding/icd10": codes.System.ICD10PCS,
}

ATOM_NS = "http://www.w3.org/2005/Atom"
XML_NS = "http://www.w3.org/XML/1998/namespace"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
# Characters XML 1.0 cannot carry, even escaped.
NOT_XML_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Python-Markdown's backslash escapes.
MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!>|~])")


class BadRequest(ValueError):
    """A request the responder cannot read; the message says why, in plain words."""


@dataclass(frozen=True)
class KnowledgeRequest:
    parameters: tuple[tuple[str, str], ...]  # what was asked, echoed as categories
    system: codes.System | None = None
    code: str = ""  # canonical, or "" when none was given or it is not a code
    written_code: str = ""  # as sent
    text: str = ""  # the display name or original text, to search by
    recipient: str = PATIENT
    language: str = DEFAULT_LANGUAGE  # the language asked for
    response_type: str = ATOM_TYPES[0]
    callback: str = ""

    @property
    def content_language(self) -> str:
        return self.language if self.language in CONTENT_LANGUAGES else "en"

    @property
    def language_notice(self) -> str:
        """Says so when the answer is not in the language asked for."""
        if self.language in CONTENT_LANGUAGES:
            return ""
        name = LANGUAGE_NAMES.get(self.language, f"“{self.language}”")
        return (
            f"{name} is not available yet: these pages are in "
            f"{CONTENT_LANGUAGES[self.content_language]}."
        )

    @property
    def label(self) -> str:
        """What was asked for, in words: "CPT 97546" or “work hardening”."""
        if self.system and self.code:
            return f"{codes.SYSTEM_LABELS[self.system]} {self.code}"
        if self.written_code:
            return f"code {self.written_code}"
        return f"“{self.text}”"


@dataclass
class Entry:
    title: str
    url: str  # absolute
    id: str
    updated: datetime.datetime
    summary: SafeString  # sanitised HTML
    language: str = "en"
    exact: bool = False  # the page for the very code asked about
    shows_cpt: bool = False


@dataclass
class Feed:
    title: str
    subtitle: str
    id: str
    base: str
    updated: datetime.datetime
    categories: list[tuple[str, str]]
    entries: list[Entry] = field(default_factory=list)
    language: str = "en"
    rights: str = ""


# Reading the request.


def read_request(query, *, for_person: bool = False) -> KnowledgeRequest:
    """
    The request a query string (a QueryDict) makes, or BadRequest.

    ``for_person``: the application answers a browser with pages, so it ignores the
    response type and callback that only the service reads.
    """
    values = {}
    for name in (*PARAMETERS, CALLBACK):
        given = query.getlist(name)
        if len(given) > 1:
            raise BadRequest(f"Give {name} once: the responder takes one of each.")
        if given:
            # The callback is checked as sent: it goes into the script verbatim.
            values[name] = given[0] if name == CALLBACK else given[0].strip()
    written_code = values.get(CODE, "")
    text = values.get(DISPLAY_NAME) or values.get(ORIGINAL_TEXT, "")
    if not written_code and not text:
        raise BadRequest(
            f"Say what to look up: a code in {CODE} (with its code system in "
            f"{CODE_SYSTEM}), or words in {DISPLAY_NAME}."
        )
    if len(written_code) > MAX_CODE_LENGTH:
        raise BadRequest(f"{CODE} is too long for a code.")
    if len(values.get(CODE_SYSTEM, "")) > MAX_SYSTEM_LENGTH:
        raise BadRequest(f"{CODE_SYSTEM} is too long for a code-system identifier.")
    for name in (DISPLAY_NAME, ORIGINAL_TEXT):
        if len(values.get(name, "")) > MAX_TEXT_LENGTH:
            raise BadRequest(
                f"{name} is too long: use at most {MAX_TEXT_LENGTH} characters."
            )
    recipient = values.get(RECIPIENT, "").upper() or PATIENT
    if recipient not in RECIPIENT_NAMES:
        raise BadRequest(
            f"{RECIPIENT} must be PAT (a patient) or PROV (a clinician), "
            f"not “{values[RECIPIENT][:40]}”."
        )
    language = values.get(LANGUAGE, "") or DEFAULT_LANGUAGE
    if not LANGUAGE_TAG_RE.fullmatch(language) or len(language) > 35:
        raise BadRequest(f"{LANGUAGE} must be a language code such as en or es.")
    language = re.split("[-_]", language)[0].lower()
    response_type, callback = ATOM_TYPES[0], ""
    if not for_person:
        response_type = values.get(RESPONSE_TYPE, "").lower() or ATOM_TYPES[0]
        if response_type not in RESPONSE_TYPES:
            raise BadRequest(
                f"{RESPONSE_TYPE} must be text/xml (Atom), application/json or "
                "application/javascript (JSONP, with callback=)."
            )
        callback = values.get(CALLBACK, "")
        if CALLBACK in values and not CALLBACK_RE.fullmatch(callback):
            raise BadRequest(
                "callback must be a JavaScript function name: a letter, “_” or “$”, "
                "then up to 63 letters, digits, “_”, “$” or dots."
            )
        if response_type == JSONP_TYPE and not callback:
            raise BadRequest(
                f"{RESPONSE_TYPE}=application/javascript (JSONP) needs callback=, "
                "the name of the function to call."
            )
    system = None
    if written_code:
        system = read_system(values.get(CODE_SYSTEM, ""), written_code)
    code = ""
    if system is not None:
        try:
            code = codes.normalize(system, written_code)
        except codes.CodeError:
            code = ""
    parameters = tuple((name, values[name]) for name in PARAMETERS if name in values)
    return KnowledgeRequest(
        parameters=parameters,
        system=system,
        code=code,
        written_code=written_code,
        text=text,
        recipient=recipient,
        language=language,
        response_type=response_type,
        callback=callback,
    )


def read_system(value: str, code: str) -> codes.System | None:
    """
    The code system an OID, ``urn:oid:`` URI, FHIR system URI or name stands for.

    None when it names a system this site does not carry. Without one, a code that
    fits exactly one system is read in that one; one that fits several is refused.
    """
    if not value:
        fits = codes.systems_for(code)
        if len(fits) <= 1:
            # A code of no system this site carries is unknown, not malformed.
            return fits[0] if fits else None
        raise BadRequest(
            f"Say which code system {CODE} is in with {CODE_SYSTEM}: an OID such as "
            f"{codes.SYSTEM_OIDS[codes.System.CPT]} (CPT) or "
            f"{codes.SYSTEM_OIDS[codes.System.ICD10CM]} (ICD-10-CM)."
        )
    text = value.lower()
    text = text.removeprefix("urn:oid:")
    uri = re.sub(r"^https?://", "", text).rstrip("/")
    if uri in SYSTEM_URIS:
        return SYSTEM_URIS[uri]
    if "/" in uri or ":" in uri:
        return None
    return codes.system_from_slug(text)


# Finding the content.


def find_entries(request, asked: KnowledgeRequest) -> list[Entry]:
    """At most MAX_ENTRIES entries for the request, the best first."""
    entries = []
    if asked.system is not None and asked.code:
        entries = entries_for_code(request, asked)
    if not entries and asked.text:
        entries = entries_for_text(request, asked)
    return entries[:MAX_ENTRIES]


def codes_above(system: codes.System, code: str) -> list[str]:
    """
    The code and the codes it belongs to, nearest first (E11.65, E11.6, E11).

    ICD-10-CM nests by prefix: the codes above a code are its shorter beginnings,
    as its ``parent`` links say, and this finds them even when the code itself has
    no row. The other systems do not nest.
    """
    if system is not codes.System.ICD10CM:
        return [code]
    plain = code.replace(".", "")
    return [
        codes.normalize(system, plain[:length]) for length in range(len(plain), 2, -1)
    ]


def entries_for_code(request, asked: KnowledgeRequest) -> list[Entry]:
    system, code = asked.system, asked.code
    chain = codes_above(system, code)
    rows = {
        row.code: row
        for row in Code.objects.filter(system=system, code__in=chain).select_related(
            "procedure"
        )
    }
    found = rows.get(code)
    written = []
    for candidate in chain:
        procedure = getattr(rows.get(candidate), "procedure", None)
        if procedure is not None and procedure.is_published:
            written = [writeup_entry(request, asked, procedure, rows[candidate])]
            break
    # mentions_of reads only the system and the code: an unsaved Code serves for a
    # code the site has no row for.
    mentions = PolicyCode.objects.mentions_of(found or Code(system=system, code=code))
    # Only MAX_ENTRIES are kept: render no more policy summaries than that.
    policies = [
        policy_entry(request, asked, mention) for mention in mentions[:MAX_ENTRIES]
    ]
    if asked.recipient == PROVIDER:
        described = [code_entry(request, asked, found, mentions)] if found else []
        return described + policies + written
    entries = written + policies
    if not entries and found is not None:
        entries = [code_entry(request, asked, found, mentions)]
    return entries


def entries_for_text(request, asked: KnowledgeRequest) -> list[Entry]:
    """Entries for the search's best matches to the display name."""
    results = search_engine.search(asked.text, None, 1, MAX_ENTRIES * 3)
    hits = results.hits
    if asked.recipient == PATIENT:
        # Write-ups first for patients; the search's own order within each kind.
        order = {"write-up": 0, "policy": 1, "code": 2}
        hits = sorted(hits, key=lambda hit: order.get(hit.kind, 3))
    hits = hits[:MAX_ENTRIES]
    writeups = [hit for hit in hits if hit.kind == "write-up"]
    code_hits = [hit for hit in hits if hit.kind == "code"]
    policy_keys = {}
    for hit in hits:
        if hit.kind == "policy":
            try:
                match = resolve(hit.url)
            except Resolver404:
                continue
            policy_keys[hit.url] = (match.kwargs["payer"], match.kwargs["number"])
    procedures = {}
    if writeups:
        procedures = {
            (p.code.system, p.code.code): p
            for p in Procedure.objects.published()
            .select_related("code")
            .filter(any_code([(hit.system, hit.code) for hit in writeups], "code__"))
        }
    found_codes = {}
    if code_hits:
        found_codes = {
            (row.system, row.code): row
            for row in Code.objects.filter(
                any_code([(hit.system, hit.code) for hit in code_hits], "")
            )
        }
    policies = {}
    if policy_keys:
        wanted = Q()
        for payer, number in policy_keys.values():
            wanted |= Q(payer__slug=payer, number=number)
        policies = {
            (policy.payer.slug, policy.number): policy
            for policy in Policy.objects.published()
            .select_related("payer")
            .filter(wanted)
        }
    entries = []
    for hit in hits:
        if hit.kind == "write-up" and (hit.system, hit.code) in procedures:
            procedure = procedures[hit.system, hit.code]
            entries.append(writeup_entry(request, asked, procedure, procedure.code))
        elif hit.kind == "code" and (hit.system, hit.code) in found_codes:
            entries.append(
                code_entry(request, asked, found_codes[hit.system, hit.code])
            )
        elif hit.kind == "policy" and policy_keys.get(hit.url) in policies:
            policy = policies[policy_keys[hit.url]]
            entries.append(policy_search_entry(request, policy))
    return entries


def any_code(pairs, prefix: str) -> Q:
    wanted = Q()
    for system, code in pairs:
        wanted |= Q(**{f"{prefix}system": system, f"{prefix}code": code})
    return wanted


def markdown_text(text: str) -> str:
    """Plain text made safe to put into Markdown: it shows as written."""
    return MARKDOWN_PUNCTUATION.sub(r"\\\1", html.escape(" ".join(text.split())))


def policy_label(policy) -> str:
    return f"{policy.payer.name} policy {policy.number}"


def writeup_entry(request, asked, procedure, code) -> Entry:
    url = request.build_absolute_uri(code.get_absolute_url())
    summary = procedure.html["summary"]
    exact = code.code == asked.code and code.system == asked.system
    if asked.code and not exact:
        note = render_markdown(
            f"No write-up explains {markdown_text(asked.label)} itself yet; this one "
            f"is for {markdown_text(str(code))} "
            f"({markdown_text(code.descriptor)}), the code it belongs to."
        )
        summary = mark_safe(note + summary)
    return Entry(
        title=procedure.title,
        url=url,
        id=f"{url}#write-up",
        updated=procedure.updated_at,
        summary=summary,
        exact=exact and asked.recipient == PATIENT,
        shows_cpt=code.system == codes.System.CPT,
    )


def coverage_line(mention, subject: str = "it") -> str:
    """How a policy names the code, as Markdown: "lists it under “…” (Not covered)"."""
    group, subject = mention.group, markdown_text(subject)
    how = f"lists {subject}"
    if not mention.listed:
        how = f"names {subject} through {markdown_text(mention.row.display)}"
    return (
        f"{how} under “{markdown_text(group.heading)}” "
        f"({markdown_text(group.get_coverage_display())})"
    )


def policy_entry(request, asked, mention) -> Entry:
    policy = mention.policy
    url = request.build_absolute_uri(policy.get_absolute_url())
    line = render_markdown(
        f"{markdown_text(policy_label(policy))} {coverage_line(mention, asked.label)}."
    )
    return Entry(
        title=f"{policy_label(policy)}: {policy.title}",
        url=url,
        id=url,
        updated=policy.updated_at,
        summary=mark_safe(line + policy.html["scope"]),
        shows_cpt=asked.system == codes.System.CPT
        or mention.group.system == codes.System.CPT,
    )


def policy_search_entry(request, policy) -> Entry:
    url = request.build_absolute_uri(policy.get_absolute_url())
    return Entry(
        title=f"{policy_label(policy)}: {policy.title}",
        url=url,
        id=url,
        updated=policy.updated_at,
        summary=policy.html["scope"],
    )


def code_entry(request, asked, code, mentions=None) -> Entry:
    """The clinician's view of a code: descriptor, notes, add-on rules, policies."""
    url = request.build_absolute_uri(code.get_absolute_url())
    parts = [f"**{markdown_text(str(code))}**: {markdown_text(code.descriptor)}"]
    if code.is_addon:
        primaries = ", ".join(markdown_text(c.code) for c in code.primary_codes.all())
        line = (
            "Add-on code: report it in addition to the code for the primary procedure"
        )
        parts.append(f"{line} ({primaries})." if primaries else f"{line}.")
    if asked.recipient == PROVIDER:
        addons = ", ".join(markdown_text(c.code) for c in code.addon_codes.all())
        if addons:
            parts.append(f"Add-on codes reported with it: {addons}.")
    for _kind, heading, lines in official_notes(code):
        items = "\n".join(f"- {markdown_text(str(line))}" for line in lines)
        parts.append(f"{markdown_text(heading)}:\n\n{items}")
    if mentions:
        items = "\n".join(
            f"- [{markdown_text(f'{policy_label(m.policy)}: {m.policy.title}')}]"
            f"(<{request.build_absolute_uri(m.policy.get_absolute_url())}>) "
            f"{coverage_line(m)}"
            for m in mentions
        )
        parts.append(f"Payer policies naming it:\n\n{items}")
    exact = code.code == asked.code and code.system == asked.system
    return Entry(
        title=f"{code}: {code.descriptor}",
        url=url,
        id=f"{url}#code",
        updated=code.updated_at,
        summary=render_markdown("\n\n".join(parts)),
        exact=exact,
        shows_cpt=code.system == codes.System.CPT,
    )


def build_feed(request, asked: KnowledgeRequest) -> Feed:
    entries = find_entries(request, asked)
    site = settings.SITE_NAME
    subtitle = (
        f"{site} results for {asked.label}, for {RECIPIENT_NAMES[asked.recipient]}."
    )
    if not entries:
        subtitle = f"{site} has no page for {asked.label} yet."
    if asked.language_notice:
        subtitle += " " + asked.language_notice
    shows_cpt = asked.system == codes.System.CPT or any(e.shows_cpt for e in entries)
    return Feed(
        title=site,
        subtitle=subtitle,
        id=request.build_absolute_uri(),
        base=request.build_absolute_uri("/"),
        updated=max(
            (entry.updated for entry in entries),
            default=timezone.now().replace(microsecond=0),
        ),
        categories=list(asked.parameters),
        entries=entries,
        language=asked.content_language,
        rights=(
            f"CPT © {settings.CPT_COPYRIGHT_YEAR} American Medical Association. "
            "All rights reserved."
            if shows_cpt
            else ""
        ),
    )


# Writing the feed.


def timestamp(moment: datetime.datetime) -> str:
    """RFC 3339 in UTC, to the second: 2026-12-04T20:15:00Z."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def xml_text(text: str) -> str:
    return NOT_XML_CHARS.sub("\ufffd", str(text))


def atom_document(feed: Feed) -> bytes:
    """The feed as Atom (RFC 4287), the way MedlinePlus Connect writes it."""
    ET.register_namespace("", ATOM_NS)

    def add(parent, tag, text=None, **attributes):
        node = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}")
        for name, value in attributes.items():
            node.set(name, xml_text(value))
        if text is not None:
            node.text = xml_text(text)
        return node

    root = ET.Element(f"{{{ATOM_NS}}}feed")
    root.set(f"{{{XML_NS}}}base", feed.base)
    root.set(f"{{{XML_NS}}}lang", feed.language)
    add(root, "title", feed.title, type="text")
    add(root, "subtitle", feed.subtitle, type="text")
    author = add(root, "author")
    add(author, "name", feed.title)
    add(author, "uri", feed.base)
    add(root, "updated", timestamp(feed.updated))
    add(root, "id", feed.id)
    if feed.rights:
        add(root, "rights", feed.rights, type="text")
    for scheme, term in feed.categories:
        add(root, "category", scheme=scheme, term=term)
    for entry in feed.entries:
        node = add(root, "entry")
        node.set(f"{{{XML_NS}}}lang", entry.language)
        add(node, "title", entry.title, type="text")
        add(
            node,
            "link",
            href=entry.url,
            rel="alternate",
            type="text/html",
            hreflang=entry.language,
            title=entry.title,
        )
        add(node, "id", entry.id)
        add(node, "updated", timestamp(entry.updated))
        add(node, "summary", str(entry.summary), type="html")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def json_tree(feed: Feed) -> dict:
    """The feed as MedlinePlus Connect writes JSON: ``feed.title._value`` and so on."""
    tree = {
        "xsi": XSI_NS,
        "base": feed.base,
        "lang": feed.language,
        "title": {"_value": feed.title, "type": "text"},
        "subtitle": {"_value": feed.subtitle, "type": "text"},
        "author": {"name": {"_value": feed.title}, "uri": {"_value": feed.base}},
        "updated": {"_value": timestamp(feed.updated)},
        "id": {"_value": feed.id},
        "category": [
            {"scheme": scheme, "term": term} for scheme, term in feed.categories
        ],
        "entry": [
            {
                "lang": entry.language,
                "title": {"_value": entry.title, "type": "text"},
                "link": [
                    {
                        "href": entry.url,
                        "rel": "alternate",
                        "type": "text/html",
                        "hreflang": entry.language,
                        "title": entry.title,
                    }
                ],
                "id": {"_value": entry.id},
                "updated": {"_value": timestamp(entry.updated)},
                "summary": {"_value": str(entry.summary), "type": "html"},
            }
            for entry in feed.entries
        ],
    }
    if feed.rights:
        tree["rights"] = {"_value": feed.rights, "type": "text"}
    return {"feed": tree}


def json_text(tree: dict) -> str:
    # ASCII only: U+2028 and U+2029 end a JavaScript line inside a JSONP string,
    # and "<" escaped keeps "</script>" out of the text.
    return json.dumps(tree, ensure_ascii=True).replace("<", "\\u003c")


# The views.


def open_to_every_origin(response):
    response["Access-Control-Allow-Origin"] = "*"
    return response


def refuse_other_methods(request):
    """None for GET and HEAD; the answer to a CORS preflight or another method."""
    if request.method in ("GET", "HEAD"):
        return None
    if request.method == "OPTIONS":
        response = HttpResponse(status=204)
        response["Access-Control-Allow-Methods"] = "GET, HEAD"
        response["Access-Control-Max-Age"] = "86400"
        response["Allow"] = "GET, HEAD, OPTIONS"
        return open_to_every_origin(response)
    return HttpResponseNotAllowed(["GET", "HEAD", "OPTIONS"])


def public(response):
    """Cacheable as the site's public answers are; the feeds are not pages to index."""
    patch_cache_control(response, public=True, max_age=CACHE_SECONDS)
    response["X-Robots-Tag"] = "noindex"
    return open_to_every_origin(response)


def service(request):
    """The knowledge response as data: Atom, JSON or JSONP."""
    if refused := refuse_other_methods(request):
        return refused
    try:
        asked = read_request(request.GET)
    except BadRequest as error:
        response = HttpResponse(
            f"Bad request: {error}\n",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
        return open_to_every_origin(response)
    feed = build_feed(request, asked)
    if asked.response_type in ATOM_TYPES:
        response = HttpResponse(
            atom_document(feed), content_type=f"{asked.response_type}; charset=utf-8"
        )
    elif asked.response_type == JSON_TYPE:
        response = HttpResponse(
            json_text(json_tree(feed)), content_type="application/json"
        )
    else:
        response = HttpResponse(
            f"/**/{asked.callback}({json_text(json_tree(feed))});",
            content_type="application/javascript; charset=utf-8",
        )
    response["Content-Language"] = feed.language
    return public(response)


def application(request):
    """The knowledge response for a person: the best page, or a short list."""
    if refused := refuse_other_methods(request):
        return refused
    try:
        asked = read_request(request.GET, for_person=True)
    except BadRequest as error:
        return bad_request(request, message=str(error))
    feed = build_feed(request, asked)
    entries = feed.entries
    if (
        entries
        and (len(entries) == 1 or entries[0].exact)
        and not asked.language_notice
    ):
        return public(redirect(entries[0].url))
    context = {
        "asked": asked,
        "feed": feed,
        "entries": entries,
        "og_title": f"{settings.SITE_NAME} pages for {asked.label}",
        "description": feed.subtitle,
        "shows_cpt": bool(feed.rights),
    }
    response = render(
        request, "infobutton/application.html", context, status=200 if entries else 404
    )
    response["Content-Language"] = feed.language
    return public(response)
