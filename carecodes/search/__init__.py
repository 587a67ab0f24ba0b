"""
Search across codes, write-ups and policies.

This is the first, plain version: a typed code goes straight to its page, and words
are matched against code descriptors, write-up titles and policy titles. The
full-text engine (FTS5 / PostgreSQL) replaces the word matching behind the same
``search()`` interface.
"""

import re
from dataclasses import dataclass, field

from django.db.models import Q

from policies.models import Policy
from procedures import codes
from procedures.models import Code, Procedure

RESULT_LIMIT = 50
_WORD = re.compile(r"[\w.+-]+")


@dataclass(frozen=True)
class Hit:
    kind: str  # "code", "write-up" or "policy"
    title: str
    url: str
    detail: str = ""
    system: str = ""  # the code system of a code or write-up hit


@dataclass
class Results:
    query: str
    exact: str | None = None  # the address of the one code the query names
    hits: list[Hit] = field(default_factory=list)


def find_code(text: str) -> Code | None:
    """The code a query names exactly ("97546", "s52501a", "CPT 97545"), if any."""
    words = _WORD.findall(text)
    if not words or len(words) > 2:
        return None
    system_hint = codes.system_from_slug(words[0]) if len(words) == 2 else None
    candidate = words[-1]
    systems = [system_hint] if system_hint else codes.systems_for(candidate)
    for system in systems:
        try:
            canonical = codes.normalize(system, candidate)
        except codes.CodeError:
            continue
        code = Code.objects.filter(system=system, code=canonical).first()
        if code is not None:
            return code
    return None


def search(query: str) -> Results:
    results = Results(query=query)
    code = find_code(query)
    if code is not None:
        results.exact = code.get_absolute_url()
        return results
    words = [w for w in _WORD.findall(query) if len(w) > 1][:8]
    if not words:
        return results
    writeups = Q()
    descriptors = Q()
    policies = Q()
    for word in words:
        writeups &= Q(title__icontains=word) | Q(summary__icontains=word)
        descriptors &= Q(descriptor__icontains=word)
        policies &= Q(title__icontains=word) | Q(number__iexact=word)
    for procedure in (
        Procedure.objects.published()
        .filter(writeups)
        .select_related("code")[:RESULT_LIMIT]
    ):
        results.hits.append(
            Hit(
                "write-up",
                procedure.title,
                procedure.get_absolute_url(),
                procedure.code.code,
                procedure.code.system,
            )
        )
    for policy in (
        Policy.objects.published()
        .filter(policies)
        .select_related("payer")[:RESULT_LIMIT]
    ):
        results.hits.append(
            Hit(
                "policy",
                policy.title,
                policy.get_absolute_url(),
                f"{policy.payer.name} {policy.number}",
            )
        )
    for code in Code.objects.filter(descriptors)[:RESULT_LIMIT]:
        results.hits.append(
            Hit(
                "code",
                f"{code.code} {code.descriptor}",
                code.get_absolute_url(),
                code.get_system_display(),
                code.system,
            )
        )
    return results
