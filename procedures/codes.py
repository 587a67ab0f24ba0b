"""Rules about medical code systems: names, canonical forms, sort keys and ranges.

Pure standard-library Python, so that models, parsers, search and tests share one
set of rules without importing Django.

Sort keys
    Every code has a sort key, a plain string. A range is stored as a pair of keys,
    ``start_key`` and ``end_key``, and a code lies in the range when
    ``start_key <= key <= end_key``. That turns "which policies name this code" into
    one indexed query.

    An ICD-10-CM key is the code without its dot (``S52.501A`` -> ``S52501A``). The
    dot always follows the third character, so dropping it loses nothing, and a
    shorter code is a prefix of the codes below it: a category's key is a lower
    bound for every descendant. The end key of a range is the end code's key followed
    by ``~`` (:data:`RANGE_END_MARK`), which sorts after every digit and letter, so
    ``Z85`` as the end of a range covers ``Z85.0`` ... ``Z85.9`` and their children.

    The keys compare correctly only under byte-wise (C / binary) collation. SQLite
    compares text that way by default; in PostgreSQL a key column needs
    ``COLLATE "C"``, because linguistic collations ignore punctuation such as ``~``
    and interleave letters and digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "RANGE_END_MARK",
    "SYSTEM_LABELS",
    "SYSTEM_OIDS",
    "CodeError",
    "CodeRange",
    "System",
    "code_sort_tuple",
    "in_range",
    "is_valid",
    "normalize",
    "parse_range",
    "range_keys",
    "sort_key",
    "system_from_slug",
    "systems_for",
]


class System(StrEnum):
    """A code system; the value is its URL slug."""

    CPT = "cpt"
    HCPCS = "hcpcs"
    ICD10CM = "icd-10-cm"
    ICD10PCS = "icd-10-pcs"


SYSTEM_LABELS: dict[System, str] = {
    System.CPT: "CPT",
    System.HCPCS: "HCPCS Level II",
    System.ICD10CM: "ICD-10-CM",
    System.ICD10PCS: "ICD-10-PCS",
}

SYSTEM_OIDS: dict[System, str] = {
    System.CPT: "2.16.840.1.113883.6.12",
    System.HCPCS: "2.16.840.1.113883.6.285",
    System.ICD10CM: "2.16.840.1.113883.6.90",
    System.ICD10PCS: "2.16.840.1.113883.6.4",
}

RANGE_END_MARK = "~"
"""Appended to an end key; ASCII "~" sorts after every digit and upper-case letter."""


class CodeError(ValueError):
    """A code or range that cannot be read; the message is meant for clinic staff."""


_SYSTEM_ORDER = {system: index for index, system in enumerate(System)}

# Spellings seen in policy documents, code-set files and hand-typed URLs, compared
# after lower-casing and dropping spaces, hyphens, underscores and dots.
_SLUG_ALIASES: dict[str, System] = {
    "cpt": System.CPT,
    "cpt4": System.CPT,
    "hcpcs1": System.CPT,
    "hcpcsi": System.CPT,
    "hcpcslevel1": System.CPT,
    "hcpcsleveli": System.CPT,
    "hcpcs": System.HCPCS,
    "hcpcs2": System.HCPCS,
    "hcpcsii": System.HCPCS,
    "hcpcslevel2": System.HCPCS,
    "hcpcslevelii": System.HCPCS,
    "icd10": System.ICD10CM,
    "icd10cm": System.ICD10CM,
    "icd10pcs": System.ICD10PCS,
}
_OID_SYSTEMS = {oid: system for system, oid in SYSTEM_OIDS.items()}
_SLUG_NOISE = re.compile(r"[\s_.\-]+")

_CPT_RE = re.compile(r"[0-9]{5}|[0-9]{4}[FTU]")
# The first letters CMS uses for HCPCS Level II; D (dental, CDT), I, N, O, W-Z are
# not HCPCS Level II codes.
_HCPCS_RE = re.compile(r"[ABCEGHJKLMPQRSTUV][0-9]{4}")
# A category is a letter, a digit and a letter or digit, except that FY2026 added
# QA0 (chapter 17 now ends at QA0): "A" may stand second when a digit follows.
_ICD10CM_RE = re.compile(r"([A-Z](?:[0-9][A-Z0-9]|A[0-9]))\.?([A-Z0-9]{0,4})")
# ICD-10-PCS leaves out I and O so they are not misread as 1 and 0; its sections
# are 0-9, B, C, D, F, G, H and X.
_ICD10PCS_RE = re.compile(r"[0-9BCDFGHX][0-9A-HJ-NP-Z]{6}")

_ARTICLES = {
    System.CPT: "a",
    System.HCPCS: "a",
    System.ICD10CM: "an",
    System.ICD10PCS: "an",
}
_SHAPES = {
    System.CPT: "five characters (five digits, or four digits followed by F, T or U)",
    System.HCPCS: "a letter followed by four digits",
    System.ICD10CM: (
        "a letter, a digit and a letter or digit, optionally followed by a dot and "
        "up to four more letters or digits"
    ),
    System.ICD10PCS: (
        "seven letters and digits without I or O, starting with a digit or one of "
        "B, C, D, F, G, H and X"
    ),
}
_EXAMPLES = {
    System.CPT: "97546 or 0001T",
    System.HCPCS: "S9117 or G0283",
    System.ICD10CM: "Z85, E11.9 or S52.501A",
    System.ICD10PCS: "0FT44ZZ",
}
_RANGE_EXAMPLES = {
    System.CPT: "97546 or 97010 - 97799",
    System.HCPCS: "S9117 or G0151 - G0164",
    System.ICD10CM: "Z85.3 or Z85.00 - Z85.9",
    System.ICD10PCS: "0FT44ZZ or 0FT40ZZ - 0FT44ZZ",
}

_DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2212"
_DASH_SPLIT = re.compile(rf"\s*[{_DASHES}]\s*")
_ICD10CM_FULL_LENGTH = 7
# CPT Category II (F), Category III (T) and PLA (U) codes end in their letter; a
# range never runs from one of these kinds into another.
_CPT_KIND_LETTERS = "FTU"


def _a_code(system: System) -> str:
    return f"{_ARTICLES[system]} {SYSTEM_LABELS[system]} code"


def _quoted(text: str) -> str:
    # Long pasted text would swamp the message; the start is enough to recognise.
    if len(text) > 40:
        text = text[:39] + "\u2026"
    return f"\u201c{text}\u201d"


def system_from_slug(slug: str) -> System | None:
    """The system a slug, label, common spelling or OID names, or None.

    Accepts ``cpt``, ``hcpcs``, ``HCPCS Level II``, ``icd-10-cm``, ``ICD10CM``,
    ``icd-10`` (read as ICD-10-CM), ``icd_10_pcs``, ``2.16.840.1.113883.6.90``
    and similar, in any case.
    """
    if not isinstance(slug, str):
        return None
    text = slug.strip().lower()
    if text in _OID_SYSTEMS:
        return _OID_SYSTEMS[text]
    return _SLUG_ALIASES.get(_SLUG_NOISE.sub("", text))


def _canonical(system: System, text: str) -> str | None:
    """The canonical form of already stripped, upper-cased ASCII text, or None."""
    if system is System.ICD10CM:
        match = _ICD10CM_RE.fullmatch(text)
        if match is None:
            return None
        category, rest = match.groups()
        return f"{category}.{rest}" if rest else category
    pattern = {
        System.CPT: _CPT_RE,
        System.HCPCS: _HCPCS_RE,
        System.ICD10PCS: _ICD10PCS_RE,
    }[system]
    return text if pattern.fullmatch(text) else None


def _prepare(text: str) -> str | None:
    stripped = text.strip() if isinstance(text, str) else ""
    # Some non-ASCII letters upper-case into ASCII ones (the long s, U+017F, becomes
    # "S"); a code typed with them is a different string, not a variant spelling.
    if not stripped or not stripped.isascii():
        return None
    return stripped.upper()


def normalize(system: System, code: str) -> str:
    """The canonical form of ``code``: stripped, upper case, ICD-10-CM with its dot.

    Raises :class:`CodeError` when the text is not a code of ``system``.
    """
    system = System(system)
    if not isinstance(code, str) or not code.strip():
        raise CodeError(
            f"No code was given: enter {_a_code(system)}, such as {_EXAMPLES[system]}."
        )
    prepared = _prepare(code)
    canonical = _canonical(system, prepared) if prepared else None
    if canonical is None:
        raise CodeError(_not_a_code(system, code.strip()))
    return canonical


def _not_a_code(system: System, text: str) -> str:
    message = (
        f"{_quoted(text)} is not {_a_code(system)}: {_a_code(system)} is "
        f"{_SHAPES[system]}, such as {_EXAMPLES[system]}."
    )
    others = [other for other in systems_for(text) if other is not system]
    if others:
        message += f" It looks like {_a_code(others[0])}."
    return message


def is_valid(system: System, code: str) -> bool:
    """Whether ``code`` is, after normalising, a well-formed code of ``system``."""
    prepared = _prepare(code)
    return prepared is not None and _canonical(System(system), prepared) is not None


def systems_for(text: str) -> list[System]:
    """The systems whose code shape the raw text fits, most likely first.

    HCPCS Level II comes before ICD-10-CM (``S9117`` is far more often the HCPCS
    code than a dotless ``S91.17``). A dotless seven-character text that fits both
    ICD-10-CM and ICD-10-PCS is put PCS first when it ends in ``Z``: that is the
    PCS "no qualifier" value, while no ICD-10-CM 7th character is ``Z``.
    """
    prepared = _prepare(text)
    if prepared is None:
        return []
    found = [system for system in System if _canonical(system, prepared) is not None]
    if System.ICD10CM in found and System.ICD10PCS in found and prepared.endswith("Z"):
        found.remove(System.ICD10PCS)
        found.insert(found.index(System.ICD10CM), System.ICD10PCS)
    return found


def _key(system: System, canonical: str) -> str:
    if system is System.ICD10CM:
        return canonical.replace(".", "")
    if system is System.CPT and canonical[-1] in _CPT_KIND_LETTERS:
        # Leading with the letter keeps Category II, III and PLA codes in blocks of
        # their own after all Category I codes; sorted as written, 0201F would fall
        # inside the range 0200T - 0201T.
        return canonical[-1] + canonical[:-1]
    return canonical


def sort_key(system: System, code: str) -> str:
    """The key that orders ``code`` among the codes of ``system``; normalises first.

    ICD-10-CM: the code without its dot. CPT Category II, III and PLA codes: the
    letter moved to the front (``0001T`` -> ``T0001``). Everything else: the
    canonical code.
    """
    system = System(system)
    return _key(system, normalize(system, code))


def code_sort_tuple(system: System, code: str) -> tuple[int, str]:
    """Orders codes of different systems: by system, then by sort key."""
    system = System(system)
    return (_SYSTEM_ORDER[system], sort_key(system, code))


def _cpt_kind(canonical: str) -> str:
    return canonical[-1] if canonical[-1] in _CPT_KIND_LETTERS else ""


_CPT_KIND_NAMES = {
    "": "Category I",
    "F": "Category II",
    "T": "Category III",
    "U": "PLA",
}


def range_keys(system: System, start: str, end: str | None = None) -> tuple[str, str]:
    """``(start_key, end_key)`` for the range ``start`` through ``end``.

    Without ``end``, the range of the single code ``start``. The end key covers
    every descendant of the end code. Raises :class:`CodeError` when a code is not
    valid or the range ends before it starts.
    """
    system = System(system)
    first = normalize(system, start)
    last = first if end is None else normalize(system, end)
    if system is System.CPT and _cpt_kind(first) != _cpt_kind(last):
        raise CodeError(
            f"The range {first} - {last} runs from a "
            f"{_CPT_KIND_NAMES[_cpt_kind(first)]} CPT code to a "
            f"{_CPT_KIND_NAMES[_cpt_kind(last)]} one; a range stays within one kind."
        )
    first_key, last_key = _key(system, first), _key(system, last)
    if first_key > last_key:
        raise CodeError(f"The range ends ({last}) before it starts ({first}).")
    return first_key, last_key + RANGE_END_MARK


@dataclass(frozen=True)
class CodeRange:
    """One code or one range of codes, as a policy table lists it."""

    start: str
    end: str
    start_key: str
    end_key: str
    seventh_character: bool
    is_range: bool
    addon: bool = False

    def contains_key(self, key: str) -> bool:
        return self.start_key <= key <= self.end_key

    def _display(self, code: str) -> str:
        short = len(code.replace(".", "")) < _ICD10CM_FULL_LENGTH
        return code + "+" if self.seventh_character and short else code

    def __str__(self) -> str:
        """The range for display, e.g. ``S00.00X+ - T88.9XX+``.

        The add-on marker is left out: it describes the code, not which codes the
        range holds, and pages show it on their own.
        """
        if not self.is_range:
            return self._display(self.start)
        return f"{self._display(self.start)} - {self._display(self.end)}"


def _parse_part(system: System, whole: str, part: str, role: str) -> tuple[str, bool]:
    """``(canonical, seventh_character)`` for one side of a range, or the code."""
    lead = f"In {_quoted(whole)}, the {role} " if role else ""
    seventh = part.endswith("+")
    code_text = part[:-1].rstrip() if seventh else part
    if seventh and system is not System.ICD10CM:
        raise CodeError(
            f"{lead}{_quoted(part)} ends in \u201c+\u201d, which marks an ICD-10-CM "
            f"code that needs a 7th character; {SYSTEM_LABELS[system]} codes have "
            f"no 7th character."
        )
    if not is_valid(system, code_text):
        raise CodeError(lead + _not_a_code(system, code_text or part))
    canonical = normalize(system, code_text)
    if seventh and len(_key(system, canonical)) >= _ICD10CM_FULL_LENGTH:
        raise CodeError(
            f"{lead}{canonical} already has its 7th character, so \u201c+\u201d "
            f"cannot follow it."
        )
    return canonical, seventh


def parse_range(system: System, text: str) -> CodeRange:
    """Read one code or one range as a policy table writes it.

    Accepts ``97546``, ``+ 97546`` (a leading ``+`` marks a CPT or HCPCS add-on
    code), ``97010-97799``, ``Z85.00 - Z85.9`` and ``S00.00X+ - T88.9XX+`` (a
    trailing ``+`` on an ICD-10-CM code means "with any 7th character"), with any
    spacing and with hyphen, en dash or em dash. Raises :class:`CodeError` with a
    message that says what is wrong.
    """
    system = System(system)
    whole = text.strip() if isinstance(text, str) else ""
    if not whole:
        raise CodeError(
            f"No code was given: enter {_a_code(system)} or a range, such as "
            f"{_RANGE_EXAMPLES[system]}."
        )
    if any(separator in whole for separator in ",;"):
        raise CodeError(
            f"{_quoted(whole)} holds more than one code: give one code or one range, "
            f"such as {_RANGE_EXAMPLES[system]}."
        )

    body = whole
    addon = body.startswith("+")
    if addon:
        body = body[1:].lstrip()
        if system not in (System.CPT, System.HCPCS):
            raise CodeError(
                f"In {_quoted(whole)}, the \u201c+\u201d in front marks a CPT or "
                f"HCPCS add-on code; {SYSTEM_LABELS[system]} codes have no add-ons."
            )
        if not body:
            raise CodeError(f"{_quoted(whole)} has no code after the \u201c+\u201d.")

    parts = _DASH_SPLIT.split(body)
    if len(parts) > 2:
        raise CodeError(
            f"{_quoted(whole)} has more than one dash: a range is two codes with one "
            f"dash between them, such as {_RANGE_EXAMPLES[system]}."
        )
    is_range = len(parts) == 2
    if is_range and not parts[0]:
        raise CodeError(f"The range {_quoted(whole)} has no code before the dash.")
    if is_range and not parts[1]:
        raise CodeError(f"The range {_quoted(whole)} has no code after the dash.")

    try:
        if is_range:
            (start, start_seventh), (end, end_seventh) = (
                _parse_part(system, whole, parts[0], "start"),
                _parse_part(system, whole, parts[1], "end"),
            )
        else:
            start, start_seventh = _parse_part(system, whole, parts[0], "")
            end, end_seventh = start, start_seventh
    except CodeError:
        if is_range:
            _raise_if_mixed(system, whole, parts)
        raise

    start_key, end_key = range_keys(system, start, end)
    return CodeRange(
        start=start,
        end=end,
        start_key=start_key,
        end_key=end_key,
        seventh_character=start_seventh or end_seventh,
        is_range=is_range,
        addon=addon,
    )


def _raise_if_mixed(system: System, whole: str, parts: list[str]) -> None:
    """Name both systems when one side of a range belongs to another system."""
    fits = [systems_for(part.removesuffix("+").rstrip()) for part in parts]
    for this, that in ((0, 1), (1, 0)):
        if system in fits[this] and system not in fits[that] and fits[that]:
            raise CodeError(
                f"{_quoted(whole)} mixes {SYSTEM_LABELS[system]} and "
                f"{SYSTEM_LABELS[fits[that][0]]} codes: a range stays within one "
                f"code system."
            )


def in_range(system: System, code: str, rng: CodeRange) -> bool:
    """Whether ``code`` lies in ``rng``; raises :class:`CodeError` for a bad code."""
    return rng.contains_key(sort_key(system, code))
