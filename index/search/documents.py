"""
What each kind of content contributes to the index.

A code is one document; when its write-up is published the document is the write-up
(same page, its title, all its sections), so a code never appears twice. A published
policy is one document with its number, title, text and the codes it lists (a range as
its start and end codes; "which policies name this code" is answered by the indexed
key query on ``PolicyCode``, not by full text). Drafts contribute nothing.

Each builder returns the field values of a ``SearchDocument``, with the text weighted
``A`` (codes and numbers) > ``B`` (title) > ``C`` (summary, descriptor) > ``D`` (body).
"""

import html
import re
import unicodedata

from django.utils.html import strip_tags

from index.models import KIND_CODE, KIND_POLICY, KIND_WRITEUP, document_id
from procedures import codes, pcs
from procedures.models import WRITEUP_SECTIONS, PublicationStatus

# Private-use characters that mark highlighted terms in snippets; kept out of the
# indexed text so that only the engine's own markers can appear there.
MARK_OPEN = "\ue000"
MARK_CLOSE = "\ue001"
_UNWANTED = re.compile(f"[\x00{MARK_OPEN}{MARK_CLOSE}]")
_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"[^\W\d_]{3,40}")
# Kinds of official notes whose text names the code's condition in other words.
_SYNONYM_NOTES = ("inclusion", "includes")


def plain(text: str) -> str:
    """One line of text without NUL, snippet markers or runs of white space."""
    return _SPACES.sub(" ", _UNWANTED.sub(" ", text or "")).strip()


def html_text(fragment: str) -> str:
    """The words of sanitised HTML, as a reader sees them."""
    return plain(html.unescape(strip_tags(fragment.replace("<", " <"))))


def fold(text: str) -> str:
    """Lower case without accents: how words are compared for "did you mean"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def words_of(*texts: str) -> set[str]:
    """The vocabulary words of some text (letters only, three or more)."""
    found = set()
    for text in texts:
        found.update(_WORD.findall(fold(text)))
    return found


_HYPHENATED = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)+")


def compounds(*texts: str) -> str:
    """
    Hyphenated words written solid ("gastro-esophageal": "gastroesophageal"), so
    that each way of writing them finds the other; the parts are indexed anyway.
    """
    found = dict.fromkeys(
        match.replace("-", "").lower()
        for text in texts
        for match in _HYPHENATED.findall(text or "")
    )
    return " ".join(found)


def code_forms(system: str, code: str) -> str:
    """A code as the full-text index should see it: written, and without its dot."""
    dotless = code.replace(".", "")
    return code if dotless == code else f"{code} {dotless}"


def code_document(code, procedure=None) -> dict:
    """The document of a code; ``procedure`` is its write-up, published or not."""
    label = codes.SYSTEM_LABELS[codes.System(code.system)]
    notes = code.notes if isinstance(code.notes, dict) else {}
    synonyms = " ".join(
        plain(str(text))
        for kind, texts in notes.items()
        if any(word in str(kind).lower() for word in _SYNONYM_NOTES)
        for text in (texts if isinstance(texts, list) else [texts])
    )
    if code.system == codes.System.ICD10PCS:
        # The PCS Index's entry terms for the code's body part ("Appendectomy" on
        # 0DTJ and 0DBJ): the names people search with, which descriptors never use.
        synonyms = plain(f"{synonyms} {' '.join(pcs.terms_for_code(code.code))}")
    fields = {
        "object_id": code.pk,
        "system": code.system,
        "code": code.code,
        "sort_key": code.sort_key,
        "payer": "",
        "detail": f"{label} {code.code}",
        "url": code.get_absolute_url(),
        "text_a": f"{code_forms(code.system, code.code)} {label}",
    }
    if procedure is not None and procedure.status == PublicationStatus.PUBLISHED:
        sections = procedure.html
        fields.update(
            kind=KIND_WRITEUP,
            title=plain(procedure.title)[:500],
            text_b=plain(procedure.title),
            text_c=plain(
                f"{code.descriptor} {html_text(sections['summary'])} "
                f"{compounds(procedure.title, code.descriptor, synonyms)}"
            ),
            text_d=plain(
                " ".join(
                    html_text(sections[name])
                    for name, _heading in WRITEUP_SECTIONS
                    if name != "summary"
                )
                + " "
                + synonyms
            ),
        )
    else:
        fields.update(
            kind=KIND_CODE,
            title=plain(f"{code.code} {code.descriptor}")[:500],
            text_b=plain(code.descriptor),
            text_c=compounds(code.descriptor, synonyms),
            text_d=synonyms,
        )
    fields["id"] = document_id(fields["kind"], code.system, code.pk)
    return fields


def policy_number_key(number: str) -> str:
    """Policy numbers compare without case and leading zeros: "CPB 198" finds 0198."""
    return number.strip().upper().lstrip("0") or "0"


def policy_heading(policy) -> dict:
    """What a hit shows of a policy (its document's short columns); needs its payer."""
    payer = policy.payer
    number = plain(policy.number)
    return {
        "id": document_id(KIND_POLICY, "", policy.pk),
        "kind": KIND_POLICY,
        "system": "",
        "code": number[:30],
        "payer": payer.slug,
        "title": plain(policy.title)[:500],
        "detail": f"{payer.name} policy {number}"[:200],
        "url": policy.get_absolute_url(),
    }


def policy_document(policy) -> dict:
    """The document of a published policy (with payer, groups, rows, references)."""
    payer = policy.payer
    sections = policy.html
    listed = []
    rows = []
    headings = []
    for group in policy.code_groups.all():
        headings.append(group.heading)
        for row in group.codes.all():
            listed.append(code_forms(row.system, row.start_code))
            if row.end_code:
                listed.append(code_forms(row.system, row.end_code))
            rows.append(row.description)
    number = plain(policy.number)
    short = policy_number_key(number)
    return {
        **policy_heading(policy),
        "object_id": policy.pk,
        "sort_key": short[:30],
        "text_a": plain(f"{number} {short if short != number else ''} {payer.name}"),
        "text_b": plain(policy.title),
        "text_c": plain(f"{html_text(sections['scope'])} {' '.join(listed)}"),
        "text_d": plain(
            " ".join(
                [
                    *(
                        html_text(sections[name])
                        for name in policy.MARKDOWN_FIELDS
                        if name != "scope"
                    ),
                    *headings,
                    *rows,
                    *(reference.citation for reference in policy.references.all()),
                ]
            )
        ),
    }


def document_words(fields: dict) -> set[str]:
    return words_of(fields["text_b"], fields["text_c"], fields["text_d"])
