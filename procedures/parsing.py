"""
Reading a procedure write-up document (the layout of the seed in sample_data/).

``parse_procedure`` returns an unsaved :class:`~procedures.models.Procedure` plus what
the document says about its code, and a list of :class:`Problem` with line numbers
instead of raising. The text helpers here (:func:`clean_line`,
:func:`blocks_to_markdown`) are shared with ``policies.parsing``; :class:`Problem` is
every importer's (``carecodes.importing``).

Text is kept word for word. Only spacing is tidied: non-breaking spaces become plain
spaces, runs of spaces become one, and each line is stripped, because the source pages
use them for layout, not meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from carecodes.importing import Problem
from carecodes.markdown import MAX_MARKDOWN_LENGTH

from . import codes
from .models import WRITEUP_SECTIONS, Procedure

__all__ = [
    "ADDON_PHRASE",
    "ParsedProcedure",
    "blocks_to_markdown",
    "clean_line",
    "numbered_lines",
    "parse_procedure",
]

ADDON_PHRASE = "list separately in addition to code for primary procedure"


# Layout spacing: tabs, no-break and other fixed-width spaces, collapsed into one.
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
# Control characters have no place in text (PostgreSQL refuses NUL outright).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_BULLET = re.compile(r"^[\u2022\u2023\u2043\u25aa\u25cf\u25e6*\-]\s+(?P<text>\S.*)$")
_NUMBERED = re.compile(r"^(?P<number>\d{1,3})[.)]\s+(?P<text>\S.*)$")
# A sub-heading is a short line standing alone, not ending like a sentence.
_HEADING_MAX = 100
_SENTENCE_END = tuple(".,:;!?")


def clean_line(line: str) -> str:
    """The line with layout spacing collapsed and the ends stripped."""
    return _SPACES.sub(" ", _CONTROL.sub(" ", line)).strip()


def indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" \t\u00a0"))


def numbered_lines(text: str) -> list[tuple[int, str]]:
    """``(line number, raw line)`` pairs, counting from 1 as an editor does.

    Splits on newlines only: ``str.splitlines`` also splits on form feeds and
    Unicode separators, which would shift the numbers shown to people.
    """
    return [
        (number, line.removesuffix("\r"))
        for number, line in enumerate(text.split("\n"), start=1)
    ]


def _paragraphs(lines: list[tuple[int, str]]) -> list[list[str]]:
    """Runs of non-blank cleaned lines, split at blank lines."""
    paragraphs, current = [], []
    for _number, raw in lines:
        line = clean_line(raw)
        if line:
            current.append(line)
        elif current:
            paragraphs.append(current)
            current = []
    if current:
        paragraphs.append(current)
    return paragraphs


def _looks_like_heading(paragraph: list[str]) -> bool:
    if len(paragraph) != 1:
        return False
    line = paragraph[0]
    return (
        len(line) <= _HEADING_MAX
        and not line.endswith(_SENTENCE_END)
        and line[0].isupper()
        and not _BULLET.match(line)
        and not _NUMBERED.match(line)
    )


def blocks_to_markdown(
    lines: list[tuple[int, str]], *, heading_prefix: str | None = None
) -> str:
    """Markdown for a stretch of plain-text lines.

    Bullet lines (``•``, ``*``, ``-``) become ``- text`` items, numbered lines keep
    their numbers, other lines form paragraphs. A line that is not an item, right
    after an item, continues that item (a wrapped line). With ``heading_prefix``
    (such as ``"### "``), a short line standing alone before more text becomes a
    heading.
    """
    paragraphs = _paragraphs(lines)
    # (kind, markdown lines): "ul" and "ol" items, "p" paragraph text, "h" heading.
    parts: list[tuple[str, list[str]]] = []
    for index, paragraph in enumerate(paragraphs):
        has_more = index + 1 < len(paragraphs)
        if heading_prefix and has_more and _looks_like_heading(paragraph):
            parts.append(("h", [heading_prefix + paragraph[0]]))
            continue
        previous_kind = None
        for line in paragraph:
            if bullet := _BULLET.match(line):
                kind, text = "ul", f"- {bullet['text']}"
            elif numbered := _NUMBERED.match(line):
                kind, text = "ol", f"{numbered['number']}. {numbered['text']}"
            elif previous_kind in ("ul", "ol"):
                parts[-1][1][-1] += " " + line
                continue
            else:
                kind, text = "p", line
            # Items of one list stay one list across blank lines; a new paragraph
            # always starts a new block.
            same_list = parts and parts[-1][0] == kind and kind in ("ul", "ol")
            if (previous_kind == kind and kind == "p") or same_list:
                parts[-1][1].append(text)
            else:
                parts.append((kind, [text]))
            previous_kind = kind
    return "\n\n".join("\n".join(block) for _kind, block in parts)


@dataclass
class ParsedProcedure:
    """What a write-up says: its code, the code's descriptor and the write-up."""

    system: str
    code: str
    descriptor: str
    is_addon: bool
    procedure: Procedure
    problems: list[Problem] = field(default_factory=list)

    @property
    def title(self) -> str:
        return self.procedure.title


_SEARCH_BANNER = "search all medical codes"
_NAME_LABEL = re.compile(r"^name of the procedure\s*:?\s*(?P<rest>.*)$", re.IGNORECASE)
_SYSTEM_LABEL = re.compile(
    r"^(?P<label>[A-Za-z][A-Za-z0-9 \-]*?)\s+code\b\s*:?\s*(?P<code>\S*)$",
    re.IGNORECASE,
)
_CODE_LABEL = re.compile(r"^code\s*:?\s*(?P<code>\S+)$", re.IGNORECASE)
# Page furniture after the write-up: the lists the site builds around it.
_STOP_MARKERS = (
    "medical policies and guidelines for",
    "related policies from health plans",
    "similar codes",
)


def _section_names() -> dict[str, str]:
    names = {}
    for name, label in WRITEUP_SECTIONS:
        names[label.lower()] = name
        names[name.replace("_", " ")] = name
    return names


_SECTION_NAMES = _section_names()


def _section_for(raw: str) -> str | None:
    if indent_of(raw):
        return None
    return _SECTION_NAMES.get(clean_line(raw).rstrip(":").strip().lower())


def _strip_furniture(lines):
    for position, (_number, raw) in enumerate(lines):
        if clean_line(raw).lower().startswith(_STOP_MARKERS):
            return lines[:position]
    return lines


def parse_procedure(text: str, code: str | None = None) -> ParsedProcedure:
    """Read a write-up in the seed layout; never raises for a bad document.

    ``code`` names the code the write-up describes, for documents that leave it
    out (the seed says "CPT4 code" and the number is only in its file name). A code
    found in the text must agree with it.
    """
    problems: list[Problem] = []
    lines = _strip_furniture(numbered_lines(text or ""))

    name_at = next(
        (i for i, (_n, raw) in enumerate(lines) if _NAME_LABEL.match(clean_line(raw))),
        None,
    )
    after_name = 0 if name_at is None else name_at + 1
    first_section_at = next(
        (i for i in range(after_name, len(lines)) if _section_for(lines[i][1])),
        len(lines),
    )
    header_end = name_at if name_at is not None else first_section_at
    label_system, found_code, descriptor = _read_header(lines[:header_end])

    title, body_start = "", first_section_at
    if name_at is None:
        problems.append(
            Problem(1, "The write-up has no “Name of the Procedure:” line.")
        )
    else:
        title, body_start = _read_title(lines, name_at, first_section_at, problems)

    sections = _read_sections(lines[body_start:], problems)
    system, canonical = _resolve_code(label_system, found_code, code, problems)
    if not descriptor:
        problems.append(
            Problem(
                1,
                "The write-up has no code descriptor (the line under “Search all "
                "medical codes”).",
            )
        )
    procedure = Procedure(title=title, **sections)
    return ParsedProcedure(
        system=system,
        code=canonical,
        descriptor=descriptor,
        is_addon=ADDON_PHRASE in descriptor.lower(),
        procedure=procedure,
        problems=sorted(problems, key=lambda problem: problem.line),
    )


def _read_header(lines):
    """``(system label or None, (line, code text) or None, descriptor)``."""
    label_system = None
    found_code = None
    descriptor_lines = []
    for number, raw in lines:
        line = clean_line(raw)
        if not line or line.lower() == _SEARCH_BANNER:
            continue
        label = _SYSTEM_LABEL.match(line)
        if label and codes.system_from_slug(label["label"]):
            label_system = (number, codes.system_from_slug(label["label"]))
            if label["code"]:
                found_code = (number, label["code"])
            continue
        if (labelled := _CODE_LABEL.match(line)) or codes.systems_for(line):
            found_code = (number, labelled["code"] if labelled else line)
            continue
        descriptor_lines.append(line)
    return label_system, found_code, " ".join(descriptor_lines)


def _read_title(lines, name_at, first_section_at, problems):
    """The procedure's name and the index where the sections start."""
    number, raw = lines[name_at]
    rest = _NAME_LABEL.match(clean_line(raw))["rest"]
    title = rest
    following = [
        (n, clean_line(r))
        for n, r in lines[name_at + 1 : first_section_at]
        if clean_line(r)
    ]
    if not title and following:
        title = following.pop(0)[1]
    if not title:
        problems.append(
            Problem(number, "“Name of the Procedure:” is followed by no name.")
        )
    limit = Procedure._meta.get_field("title").max_length
    if len(title) > limit:
        problems.append(Problem(number, f"The name is longer than {limit} characters."))
        title = title[:limit]
    for extra_number, extra in following:
        problems.append(
            Problem(
                extra_number,
                f"This line comes before the first section heading "
                f"(“{WRITEUP_SECTIONS[0][1]}” …) and belongs to no section: {extra}",
            )
        )
    return title, first_section_at


def _read_sections(lines, problems):
    collected: dict[str, list[tuple[int, str]]] = {}
    current = None
    for number, raw in lines:
        name = _section_for(raw)
        if name:
            if name in collected:
                problems.append(
                    Problem(
                        number,
                        f"The section “{clean_line(raw)}” appears twice; its text is "
                        f"added to the first one.",
                    )
                )
                collected[name].append((number, ""))
            current = name
            collected.setdefault(name, [])
        elif current:
            collected[current].append((number, raw))
    if not collected:
        problems.append(
            Problem(
                lines[0][0] if lines else 1,
                "The write-up has none of the expected section headings (Summary, "
                "Purpose, Indications, …).",
            )
        )
    sections = {name: blocks_to_markdown(body) for name, body in collected.items()}
    for name, text in sections.items():
        if len(text) > MAX_MARKDOWN_LENGTH:
            problems.append(
                Problem(
                    collected[name][0][0] - 1 if collected[name] else 1,
                    f"The section “{name.replace('_', ' ')}” is {len(text):,} "
                    f"characters long; a section may hold at most "
                    f"{MAX_MARKDOWN_LENGTH:,}. Shorten it, or split it between "
                    f"sections.",
                )
            )
    return sections


def _resolve_code(label_system, found_code, given, problems):
    """``(system slug, canonical code)``, with problems for what does not fit."""
    system = label_system[1] if label_system else None
    text_code = found_code[1] if found_code else None
    where = found_code[0] if found_code else (label_system[0] if label_system else 1)
    candidate = given or text_code
    if not candidate:
        problems.append(
            Problem(
                where,
                "The write-up does not say which code it describes; give the code "
                '(for the seed, code="97546").',
            )
        )
        return (system or ""), ""
    if system is None:
        fits = codes.systems_for(candidate)
        if not fits:
            problems.append(
                Problem(where, f"“{candidate}” is not a code of any system.")
            )
            return "", candidate.strip()
        system = fits[0]
    try:
        canonical = codes.normalize(system, candidate)
        if given and text_code and codes.normalize(system, text_code) != canonical:
            problems.append(
                Problem(
                    found_code[0],
                    f"The write-up names code {text_code}, but it was loaded as "
                    f"{canonical}.",
                )
            )
    except codes.CodeError as error:
        problems.append(Problem(where, str(error)))
        return system.value, candidate.strip()
    return system.value, canonical
