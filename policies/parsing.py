"""
Reading a payer's policy bulletin (the layout of the Aetna seed in sample_data/).

``parse_policy`` returns unsaved model objects (the policy, its code groups with their
rows, its references) and a list of :class:`~procedures.parsing.Problem` with line
numbers. It never raises for a bad document: a row it cannot read becomes a problem,
and a section it does not know is kept, appended to ``background`` under its own
heading.

The layout: a title line, ``Number: 0198``, optional date lines (``Effective:``,
``Last Review:``, ``Next Review:``), a table of contents, then the sections Policy
(``Scope of Policy`` and numbered items), the code table (``Table:``), Background and
References. Spacing is tidied as in ``procedures.parsing``; words are kept.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

from carecodes.importing import Problem
from carecodes.markdown import MAX_MARKDOWN_LENGTH
from procedures import codes
from procedures.parsing import (
    blocks_to_markdown,
    clean_line,
    indent_of,
    numbered_lines,
)

from .models import Coverage, Policy, PolicyCode, PolicyCodeGroup, PolicyReference

__all__ = ["ParsedPolicy", "Problem", "parse_policy"]


@dataclass
class ParsedPolicy:
    """A bulletin read into unsaved objects; ``policy`` has no payer yet."""

    payer_name: str
    policy: Policy
    groups: list[tuple[PolicyCodeGroup, list[PolicyCode]]] = field(default_factory=list)
    references: list[PolicyReference] = field(default_factory=list)
    # The lines under "Related Policies", as written; linking them is the caller's
    # business, because the policies they name may not be loaded yet.
    related_policies: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def number(self) -> str:
        return self.policy.number

    @property
    def title(self) -> str:
        return self.policy.title


# Top-level section headings, compared lower-cased without a trailing colon.
_POLICY = "policy"
_CODES = "codes"
_BACKGROUND = "background"
_REFERENCES = "references"
_KNOWN_HEADINGS = {
    "policy": _POLICY,
    "table": _CODES,
    "codes": _CODES,
    "applicable cpt / hcpcs / icd-10 codes": _CODES,
    "background": _BACKGROUND,
    "references": _REFERENCES,
}
_TOC = "table of contents"

_NUMBER = re.compile(r"^(?:policy\s+|cpb\s+)?number\s*:?\s*(?P<value>\S.*)$", re.I)
_PAYER = re.compile(r"^payer\s*:\s*(?P<value>\S.*)$", re.I)
_DATES = {
    "effective_on": re.compile(r"^effective(?: date)?\s*:?\s*(?P<value>\S.*)$", re.I),
    "last_reviewed_on": re.compile(
        r"^last review(?:ed)?\s*:?\s*(?P<value>\S.*)$", re.I
    ),
    "next_review_on": re.compile(r"^next review\s*:?\s*(?P<value>\S.*)$", re.I),
}
_DATE_FORMATS = ("%m/%d/%Y", "%Y-%m-%d", "%B %d, %Y")
# "Aetna does not cover ...", "Aetna considers ...": the payer speaks of itself.
_PAYER_VOICE = re.compile(
    r"(?<![\w-])(?P<name>[A-Z][\w&'.-]*(?: [A-Z][\w&'.-]*){0,3}) "
    r"(?:does not cover|will not cover|considers|covers)\b"
)
_NOT_PAYERS = {"this", "it", "the", "that", "which", "who", "policy", "plan", "cpb"}

_ITEM = re.compile(r"^(?P<number>\d{1,2}|[IVX]{1,4}|[A-Z])[.)]\s+(?P<title>\S.*)$")
_NOTE = re.compile(r"^note\s*:\s*", re.I)

# "ICD-10-PCS" is also written "ICD-10 PCS", "ICD10-PCS" or "ICD 10 PCS";
# codes.system_from_slug reads every such spelling.
_SYSTEM_WORD = r"(?:CPT|HCPCS|ICD[- ]?10(?:[- ]?(?:CM|PCS))?)"
_GROUP_HEADING = re.compile(
    rf"^(?:.*\s)?(?P<system>{_SYSTEM_WORD})\s+codes?\b.*:$", re.I
)
_TABLE_CAPTION = re.compile(
    rf"^{_SYSTEM_WORD} codes(?:\s*/\s*{_SYSTEM_WORD} codes)*$", re.I
)
_COLUMN_HEADINGS = re.compile(r"^code\s+code description$", re.I)
# One code: letters and digits, one optional dot, an optional 7th-character "+";
# it must hold a digit, or it is a word of a description.
_CODE = r"(?=[A-Za-z.]*\d)[A-Za-z0-9]+(?:\.[A-Za-z0-9]*)?\+?"
_DASH = "[-\u2010-\u2014\u2212]"
_ITEM_TEXT = rf"\+?\s*{_CODE}(?:\s*{_DASH}\s*{_CODE})?"
_CODE_ROW = re.compile(
    rf"^(?P<items>{_ITEM_TEXT}(?:\s*,\s*{_ITEM_TEXT})*)(?:\s+(?P<description>.*))?$"
)
_ROW_ITEM = re.compile(_ITEM_TEXT)

_HEADING_LIMIT = PolicyCodeGroup._meta.get_field("heading").max_length
_REFERENCE = re.compile(r"^(?P<number>\d{1,3})[.)]\s+(?P<citation>\S.*)$")


def parse_policy(text: str, payer: str | None = None) -> ParsedPolicy:
    """Read a bulletin in the seed layout; never raises for a bad document.

    ``payer`` names the payer when the caller knows it; otherwise it is read from a
    ``Payer:`` line or from the bulletin speaking of itself ("Aetna does not
    cover ...").
    """
    lines = numbered_lines(text or "")
    problems: list[Problem] = []
    policy = Policy()

    header, toc, sections = _split(lines)
    header_payer = _read_header(header, policy, problems)
    payer_name = (payer or "").strip() or header_payer or _payer_from_voice(lines)
    if not payer_name:
        problems.append(
            Problem(
                1,
                "The bulletin does not say whose policy it is: add a “Payer:” line "
                "or give the payer's name when loading it.",
            )
        )

    parsed = ParsedPolicy(payer_name=payer_name, policy=policy)
    extra_background: list[str] = []
    for kind, heading, body in sections:
        if kind == _POLICY:
            extra_background += _read_policy(body, parsed, problems)
        elif kind == _CODES:
            _read_codes(body, parsed, problems)
        elif kind == _BACKGROUND:
            policy.background = _join(
                policy.background, blocks_to_markdown(body, heading_prefix="### ")
            )
        elif kind == _REFERENCES:
            _read_references(body, parsed, problems)
        else:
            extra_background.append(_kept_section(heading, body))
    policy.background = _join(policy.background, *extra_background)
    _check_lengths(policy, sections, problems)
    if not toc and not sections:
        problems.append(
            Problem(1, "The bulletin has none of its sections (Policy, Table:, …).")
        )
    parsed.problems = sorted(problems, key=lambda problem: problem.line)
    return parsed


def _join(*texts: str) -> str:
    return "\n\n".join(text for text in texts if text)


def _kept_section(heading: str, body) -> str:
    return _join(f"## {heading}", blocks_to_markdown(body, heading_prefix="### "))


def _heading_key(raw: str) -> str:
    return clean_line(raw).rstrip(":").strip().lower()


def _split(lines):
    """``(header lines, contents entries, [(kind, heading, body lines)])``.

    A heading is a line at the left margin after a blank line that names a known
    section or an entry of the table of contents; other entries of the contents
    give the kind "other".
    """
    header, toc = [], {}
    sections: list[tuple[str, str, list]] = []
    index = 0
    while index < len(lines):
        number, raw = lines[index]
        key = _heading_key(raw)
        after_blank = index == 0 or not clean_line(lines[index - 1][1])
        is_heading = (
            after_blank
            and not indent_of(raw)
            and (key in _KNOWN_HEADINGS or key in toc)
        )
        if key == _TOC and not sections:
            index = _read_toc(lines, index + 1, toc)
            continue
        if is_heading:
            kind = _KNOWN_HEADINGS.get(key) or _KNOWN_HEADINGS.get(toc.get(key, ""))
            sections.append((kind or "other", clean_line(raw).rstrip(":"), []))
        elif sections:
            sections[-1][2].append((number, raw))
        else:
            header.append((number, raw))
        index += 1
    return header, toc, sections


# The section each Markdown field is read from, for a problem's line number.
_FIELD_SECTIONS = {
    "scope": _POLICY,
    "limitations": _POLICY,
    "notes": _POLICY,
    "code_table_note": _CODES,
    "background": _BACKGROUND,
}


def _check_lengths(policy, sections, problems):
    for name, kind in _FIELD_SECTIONS.items():
        text = getattr(policy, name)
        if len(text) <= MAX_MARKDOWN_LENGTH:
            continue
        line = next(
            (body[0][0] - 1 for found, _h, body in sections if found == kind and body),
            1,
        )
        label = Policy._meta.get_field(name).verbose_name
        problems.append(
            Problem(
                line,
                f"The {label} is {len(text):,} characters long; it may hold at most "
                f"{MAX_MARKDOWN_LENGTH:,}. Shorten it.",
            )
        )


def _read_toc(lines, index, toc):
    """Reads the contents entries from ``index``; returns the index after them."""
    while index < len(lines) and not clean_line(lines[index][1]):
        index += 1
    while index < len(lines) and clean_line(lines[index][1]):
        key = _heading_key(lines[index][1])
        # The contents' name for the code table differs from its heading in the body.
        toc[key] = key if key in _KNOWN_HEADINGS else ""
        if key.startswith("applicable") and "code" in key:
            toc[key] = "codes"
        index += 1
    return index


def _read_header(header, policy, problems):
    """Fills title, number and dates; returns a payer named by a ``Payer:`` line."""
    payer_name = ""
    title_line = number_line = 1
    for number, raw in header:
        line = clean_line(raw)
        if not line:
            continue
        if not policy.title:
            policy.title, title_line = line, number
            continue
        if match := _NUMBER.match(line):
            policy.number, number_line = match["value"], number
            continue
        if match := _PAYER.match(line):
            payer_name = match["value"]
            continue
        for field_name, pattern in _DATES.items():
            if match := pattern.match(line):
                setattr(
                    policy, field_name, _read_date(number, match["value"], problems)
                )
                break
        else:
            problems.append(
                Problem(
                    number,
                    f"This line before the first section is not a title, number or "
                    f"date line: {line}",
                )
            )
    if not policy.title:
        problems.append(Problem(1, "The bulletin has no title line."))
    for field_name, where in (("title", title_line), ("number", number_line)):
        limit = Policy._meta.get_field(field_name).max_length
        if len(getattr(policy, field_name)) > limit:
            problems.append(
                Problem(where, f"The {field_name} is longer than {limit} characters.")
            )
            setattr(policy, field_name, getattr(policy, field_name)[:limit])
    if not policy.number:
        problems.append(
            Problem(
                header[0][0] if header else 1,
                "The bulletin has no “Number:” line, so it cannot be told apart from "
                "the payer's other policies.",
            )
        )
    return payer_name


def _read_date(number, text, problems):
    for date_format in _DATE_FORMATS:
        try:
            return datetime.datetime.strptime(text, date_format).date()
        except ValueError:
            continue
    problems.append(
        Problem(
            number, f"“{text}” is not a date; write it as 08/27/1997 or 1997-08-27."
        )
    )
    return None


def _payer_from_voice(lines):
    for _number, raw in lines:
        for match in _PAYER_VOICE.finditer(clean_line(raw)):
            if match["name"].lower() not in _NOT_PAYERS:
                return match["name"]
    return ""


def _read_policy(body, parsed, problems):
    """Scope, limitations, notes and related policies; returns kept extra sections."""
    item_indent = None
    # (title, lines): "Scope of Policy", numbered items, and text under no heading.
    parts: list[tuple[str, list]] = [("", [])]
    for number, raw in body:
        line = clean_line(raw)
        item = _ITEM.match(line)
        if item and (item_indent is None or indent_of(raw) <= item_indent):
            item_indent = indent_of(raw)
            parts.append((item["title"], []))
        elif line.lower() == "scope of policy" and not indent_of(raw):
            parts.append(("Scope of Policy", []))
        else:
            parts[-1][1].append((number, raw))

    policy = parsed.policy
    kept = []
    for title, lines in parts:
        lines, notes = _split_notes(lines)
        policy.notes = _join(policy.notes, *notes)
        lowered = title.lower()
        if lowered == "scope of policy":
            policy.scope = _join(policy.scope, blocks_to_markdown(lines))
        elif "limitation" in lowered or "exclusion" in lowered:
            policy.limitations = _join(policy.limitations, blocks_to_markdown(lines))
        elif "related polic" in lowered:
            parsed.related_policies += [
                clean_line(raw).lstrip("\u2022*- ")
                for _n, raw in lines
                if clean_line(raw)
            ]
        elif any(clean_line(raw) for _n, raw in lines) or title:
            kept.append(_kept_section(title or "Policy", lines))
    return kept


def _split_notes(lines):
    """The lines without their "Note:" paragraphs, and those paragraphs' text."""
    kept, notes, in_note = [], [], False
    for number, raw in lines:
        line = clean_line(raw)
        if not line:
            in_note = False
            kept.append((number, raw))
        elif _NOTE.match(line) and not in_note:
            in_note = True
            notes.append(_NOTE.sub("", line))
        elif in_note:
            notes[-1] += " " + line
        else:
            kept.append((number, raw))
    return kept, notes


def _read_codes(body, parsed, problems):
    policy = parsed.policy
    note_lines = []
    group = None
    rows: list[PolicyCode] = []
    # Rows of the current group still waiting for a description line, and the rows
    # of the last code line, which a wrapped description continues.
    waiting: list[PolicyCode] = []
    last_line_rows: list[PolicyCode] = []
    for number, raw in body:
        line = clean_line(raw)
        if not line or _TABLE_CAPTION.match(line) or _COLUMN_HEADINGS.match(line):
            continue
        if heading := _GROUP_HEADING.match(line):
            if len(line) > _HEADING_LIMIT:
                problems.append(
                    Problem(
                        number,
                        f"This group heading is longer than {_HEADING_LIMIT} "
                        f"characters; it is cut short.",
                    )
                )
            group = _new_group(line, heading["system"], len(parsed.groups))
            rows = []
            parsed.groups.append((group, rows))
            waiting, last_line_rows = [], []
            continue
        if group is None:
            if _CODE_ROW.match(line):
                problems.append(
                    Problem(
                        number,
                        "This code row comes before any group heading (such as "
                        "“CPT codes not covered for indications listed in the CPB:”).",
                    )
                )
            else:
                note_lines.append(line)
            continue
        row = _CODE_ROW.match(line)
        if row is None:
            if waiting:
                for code in waiting:
                    code.description = line
                last_line_rows, waiting = waiting, []
            elif last_line_rows:
                for code in last_line_rows:
                    code.description += " " + line
            else:
                problems.append(
                    Problem(
                        number,
                        f"This line is neither a code row nor the description of one: "
                        f"{line}",
                    )
                )
            continue
        description = row["description"] or ""
        line_rows = []
        for item in _ROW_ITEM.finditer(row["items"]):
            code = _new_code(group, item.group(), description, number, problems)
            if code is not None:
                code.position = len(rows)
                rows.append(code)
                line_rows.append(code)
        if description:
            last_line_rows = line_rows
        else:
            waiting += line_rows
            last_line_rows = []
    policy.code_table_note = " ".join(note_lines)
    if waiting:
        problems.append(
            Problem(
                body[-1][0],
                "The code table ends with codes that have no description: "
                + ", ".join(code.display for code in waiting),
            )
        )


def _new_group(line, system_word, position):
    heading = line.removesuffix(":").rstrip()[:_HEADING_LIMIT]
    lowered = heading.lower()
    if "not covered" in lowered:
        coverage = Coverage.NOT_COVERED
    elif "covered" in lowered and "criteria" in lowered:
        coverage = Coverage.CRITERIA
    elif "covered" in lowered:
        coverage = Coverage.COVERED
    else:
        coverage = Coverage.INFORMATIONAL
    system = codes.system_from_slug(system_word)
    return PolicyCodeGroup(
        heading=heading, coverage=coverage, system=system.value, position=position
    )


def _new_code(group, text, description, number, problems):
    try:
        found = codes.parse_range(codes.System(group.system), text)
    except codes.CodeError as error:
        problems.append(Problem(number, str(error)))
        return None
    return PolicyCode(
        system=group.system,
        start_code=found.start,
        end_code=found.end if found.is_range else "",
        seventh_character=found.seventh_character,
        is_addon=found.addon,
        description=description,
        start_key=found.start_key,
        end_key=found.end_key,
    )


def _read_references(body, parsed, problems):
    references = parsed.references
    for number, raw in body:
        line = clean_line(raw)
        if not line:
            continue
        match = _REFERENCE.match(line)
        if match:
            expected = len(references) + 1
            if int(match["number"]) != expected:
                problems.append(
                    Problem(
                        number,
                        f"Reference {match['number']} should be number {expected}: "
                        f"references are numbered 1, 2, 3, … in order.",
                    )
                )
            references.append(
                PolicyReference(position=expected, citation=match["citation"])
            )
        elif references:
            # A citation wrapped onto the next line.
            references[-1].citation += " " + line
        # Text before the first reference introduces the list.
