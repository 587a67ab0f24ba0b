"""
Reading a payer policy written in CareCodes' generic layout, as JSON or as CSV.

The Aetna bulletin parser (``policies.parsing``) reads one payer's own layout; this
layout is for everyone else: a clinic or a data team writes a payer's policy down in
JSON or CSV (``docs/policy-layout.md`` describes both, and ``sample_data/`` holds one
of each). ``parse_generic_policy`` returns the same :class:`ParsedPolicy` as the
bulletin parser, so the policy is saved by the same ``import_policy``, and a list of
problems with line numbers: for JSON the line of the offending value, for CSV the
line where the offending row starts. It never raises for a bad document.

Both formats are first read into the same located values (each with its line), and
one set of checks turns those into the policy, so JSON and CSV accept and refuse the
same things.
"""

from __future__ import annotations

import bisect
import csv
import datetime
import io
import json
import re
from dataclasses import dataclass, field

from django.utils.text import slugify

from carecodes.markdown import MAX_MARKDOWN_LENGTH
from procedures import codes

from . import parsing
from .models import Coverage, Payer, Policy, PolicyCodeGroup, PolicyReference
from .parsing import ParsedPolicy, Problem

__all__ = ["CSV_COLUMNS", "FORMATS", "parse_generic_policy"]

FORMATS = ("json", "csv")
# The policy's own fields: the name in the layout -> the Policy field it fills.
POLICY_FIELDS = {
    "number": "number",
    "title": "title",
    "effective": "effective_on",
    "last_reviewed": "last_reviewed_on",
    "next_review": "next_review_on",
}
DATE_FIELDS = {"effective", "last_reviewed", "next_review"}
# Markdown sections, in the order the policy page shows them.
SECTIONS = tuple(Policy.MARKDOWN_FIELDS)
CSV_COLUMNS = ("record", "field", "value", "system", "coverage", "description")
CSV_RECORDS = ("policy", "section", "group", "code", "reference", "related")
# The policy's address takes its number as written (policies.urls).
_NUMBER = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,29}")
# JSON nested deeper than the layout ever goes is refused before Python's own limit.
_MAX_DEPTH = 20
_LIMITS = {
    "payer": Payer._meta.get_field("name").max_length,
    "title": Policy._meta.get_field("title").max_length,
    "heading": PolicyCodeGroup._meta.get_field("heading").max_length,
}
_SLUG_LIMIT = Payer._meta.get_field("slug").max_length
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass
class Located:
    """A value read from the document, with the line it starts on."""

    value: object
    line: int


@dataclass
class _Group:
    line: int
    heading: Located | None = None
    system: Located | None = None
    coverage: Located | None = None
    # (codes as written, description, line)
    rows: list[tuple[Located, Located | None]] = field(default_factory=list)


@dataclass
class _Document:
    """What either format says, before the checks; every value keeps its line."""

    payer: Located | None = None
    payer_slug: Located | None = None
    fields: dict[str, Located] = field(default_factory=dict)
    sections: dict[str, Located] = field(default_factory=dict)
    groups: list[_Group] = field(default_factory=list)
    references: list[Located] = field(default_factory=list)
    related: list[Located] = field(default_factory=list)


def parse_generic_policy(text: str, format: str) -> ParsedPolicy:
    """Read a policy in the generic layout (``format`` "json" or "csv")."""
    problems: list[Problem] = []
    text = (text or "").replace("\r\n", "\n")
    if format == "json":
        document = _read_json(text, problems)
    elif format == "csv":
        document = _read_csv(text, problems)
    else:
        raise ValueError(f"Unknown format {format!r}; use one of {FORMATS}.")
    parsed = _build(document, problems) if document else _empty()
    parsed.problems = sorted(problems, key=lambda problem: problem.line)
    return parsed


def _empty() -> ParsedPolicy:
    return ParsedPolicy(payer_name="", policy=Policy())


# JSON ---------------------------------------------------------------------------


class _JsonError(Exception):
    def __init__(self, line, message):
        super().__init__(message)
        self.line = line
        self.message = message


class _JsonReader:
    """
    A JSON reader that keeps the line of every value.

    Python's ``json`` module gives no positions for values that parse, and a problem
    such as an unknown coverage status must name the line people will fix. Strings
    are decoded by ``json.decoder.scanstring``, so escapes mean what they mean in
    JSON.
    """

    _WHITESPACE = re.compile(r"[ \t\n\r]*")
    _NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
    _LITERALS = {"true": True, "false": False, "null": None}

    def __init__(self, text):
        self.text = text
        self.position = 0
        self.line_starts = [0] + [match.end() for match in re.finditer("\n", text)]

    def line_at(self, position):
        return bisect.bisect_right(self.line_starts, position)

    def fail(self, message, position=None):
        raise _JsonError(
            self.line_at(self.position if position is None else position), message
        )

    def read(self) -> Located:
        self._skip()
        if self.position >= len(self.text):
            self.fail("The file is empty: it should hold one JSON object.")
        value = self._value(0)
        self._skip()
        if self.position < len(self.text):
            self.fail("There is more text after the end of the JSON object.")
        return value

    def _skip(self):
        self.position = self._WHITESPACE.match(self.text, self.position).end()

    def _value(self, depth) -> Located:
        if depth > _MAX_DEPTH:
            self.fail("The JSON is nested deeper than this layout ever goes.")
        start = self.position
        line = self.line_at(start)
        char = self.text[start : start + 1]
        if char == "{":
            return Located(self._object(depth), line)
        if char == "[":
            return Located(self._array(depth), line)
        if char == '"':
            try:
                value, self.position = json.decoder.scanstring(self.text, start + 1)
            except json.JSONDecodeError as error:
                if "control character" in error.msg:
                    self.fail(
                        "A string runs over a line break or holds a control "
                        "character: write a line break as \\n.",
                        error.pos,
                    )
                self.fail(f"This string is not valid JSON: {error.msg}.", error.pos)
            if _SURROGATE.search(value):
                # No database stores half a UTF-16 pair (PostgreSQL refuses it).
                self.fail("A \\u escape in this string is half of a character.", start)
            return Located(value, line)
        if match := self._NUMBER.match(self.text, start):
            self.position = match.end()
            number = match.group()
            is_float = any(mark in number for mark in ".eE")
            return Located(float(number) if is_float else int(number), line)
        for word, value in self._LITERALS.items():
            if self.text.startswith(word, start):
                self.position = start + len(word)
                return Located(value, line)
        if not char:
            self.fail("The JSON ends too early: a value is missing.")
        self.fail(
            f"“{self.text[start : start + 20].split()[0]}” is not a JSON value "
            "(text goes in double quotes)."
        )

    def _object(self, depth):
        members: dict[str, Located] = {}
        self.position += 1
        self._skip()
        if self.text.startswith("}", self.position):
            self.position += 1
            return members
        while True:
            self._skip()
            if not self.text.startswith('"', self.position):
                self.fail("A name in double quotes was expected here.")
            key = self._value(depth + 1)
            self._skip()
            if not self.text.startswith(":", self.position):
                self.fail(f"A “:” was expected after “{key.value}”.")
            self.position += 1
            self._skip()
            value = self._value(depth + 1)
            if key.value in members:
                raise _JsonError(
                    key.line, f"“{key.value}” is given twice in the same object."
                )
            members[key.value] = value
            self._skip()
            if self.text.startswith(",", self.position):
                self.position += 1
                continue
            if self.text.startswith("}", self.position):
                self.position += 1
                return members
            self.fail("A “,” or a closing “}” was expected here.")

    def _array(self, depth):
        items: list[Located] = []
        self.position += 1
        self._skip()
        if self.text.startswith("]", self.position):
            self.position += 1
            return items
        while True:
            self._skip()
            items.append(self._value(depth + 1))
            self._skip()
            if self.text.startswith(",", self.position):
                self.position += 1
                continue
            if self.text.startswith("]", self.position):
                self.position += 1
                return items
            self.fail("A “,” or a closing “]” was expected here.")


_JSON_KEYS = (
    "payer",
    *POLICY_FIELDS,
    "sections",
    "code_groups",
    "references",
    "related_policies",
)


def _read_json(text, problems) -> _Document | None:
    try:
        root = _JsonReader(text).read()
    except _JsonError as error:
        problems.append(Problem(error.line, error.message))
        return None
    if not isinstance(root.value, dict):
        problems.append(Problem(root.line, "The file should hold one JSON object."))
        return None
    document = _Document()
    members = root.value
    _unknown_keys(members, _JSON_KEYS, "the policy", problems)

    payer = members.get("payer")
    if payer is not None:
        if isinstance(payer.value, dict):
            _unknown_keys(payer.value, ("name", "slug"), "“payer”", problems)
            document.payer = payer.value.get("name") or Located(None, payer.line)
            document.payer_slug = payer.value.get("slug")
        else:
            # A plain string names the payer.
            document.payer = payer
    for name in POLICY_FIELDS:
        if name in members:
            document.fields[name] = members[name]

    sections = members.get("sections")
    if sections is not None:
        if _is(sections, dict, "“sections”", "an object", problems):
            _unknown_keys(sections.value, SECTIONS, "“sections”", problems)
            document.sections = {
                name: value
                for name, value in sections.value.items()
                if name in SECTIONS
            }

    groups = members.get("code_groups")
    if groups is not None and _is(groups, list, "“code_groups”", "a list", problems):
        for item in groups.value:
            if not _is(item, dict, "A code group", "an object", problems):
                continue
            group = _Group(
                line=item.line,
                heading=item.value.get("heading"),
                system=item.value.get("system"),
                coverage=item.value.get("coverage"),
            )
            _unknown_keys(
                item.value,
                ("heading", "system", "coverage", "codes"),
                "a code group",
                problems,
            )
            rows = item.value.get("codes")
            if rows is not None and _is(rows, list, "“codes”", "a list", problems):
                for row in rows.value:
                    if isinstance(row.value, str):
                        # A bare string: codes without a description.
                        group.rows.append((row, None))
                    elif _is(row, dict, "A code row", "an object", problems):
                        _unknown_keys(
                            row.value, ("code", "description"), "a code row", problems
                        )
                        group.rows.append(
                            (
                                row.value.get("code") or Located(None, row.line),
                                row.value.get("description"),
                            )
                        )
            document.groups.append(group)

    for name, target in (
        ("references", document.references),
        ("related_policies", document.related),
    ):
        items = members.get(name)
        if items is not None and _is(items, list, f"“{name}”", "a list", problems):
            target.extend(items.value)
    if document.payer is None:
        document.payer = Located(None, root.line)
    return document


def _is(located, kind, what, expected, problems) -> bool:
    if isinstance(located.value, kind):
        return True
    problems.append(Problem(located.line, f"{what} should be {expected}."))
    return False


def _unknown_keys(members, known, where, problems):
    for key, value in members.items():
        if key not in known:
            problems.append(
                Problem(
                    value.line,
                    f"“{key}” is not a name this layout uses in {where}; the names "
                    f"are: {', '.join(known)}.",
                )
            )


# CSV ----------------------------------------------------------------------------


def _read_csv(text, problems) -> _Document | None:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    document = _Document()
    group = None
    header_seen = False
    previous_end = 0
    try:
        for cells in reader:
            line = previous_end + 1
            previous_end = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if not header_seen:
                header_seen = True
                header = tuple(cell.strip().lower() for cell in cells)
                if header != CSV_COLUMNS:
                    problems.append(
                        Problem(
                            line,
                            "The first row should name the columns "
                            f"{','.join(CSV_COLUMNS)}.",
                        )
                    )
                    return None
                continue
            if len(cells) > len(CSV_COLUMNS) and any(
                cell.strip() for cell in cells[len(CSV_COLUMNS) :]
            ):
                problems.append(
                    Problem(
                        line,
                        f"This row has {len(cells)} cells; the layout has "
                        f"{len(CSV_COLUMNS)} columns ({','.join(CSV_COLUMNS)}). "
                        "Put text holding commas in double quotes.",
                    )
                )
                continue
            cells = [*cells, *[""] * (len(CSV_COLUMNS) - len(cells))]
            row = dict(zip(CSV_COLUMNS, cells[: len(CSV_COLUMNS)], strict=True))
            group = _csv_row(row, line, document, group, problems)
    except csv.Error as error:
        problems.append(
            Problem(
                reader.line_num or 1,
                f"This line cannot be read as CSV ({error}): check its double quotes.",
            )
        )
        return None
    if not header_seen:
        problems.append(
            Problem(1, "The file is empty: it should start with the column names.")
        )
        return None
    if document.payer is None:
        document.payer = Located(None, 1)
    return document


def _csv_row(row, line, document, group, problems):
    """Adds one CSV row to the document; returns the code group rows now join."""
    record = row["record"].strip().lower()
    name = row["field"].strip().lower()
    value = Located(row["value"], line)
    if record == "policy":
        if name == "payer":
            _once(document, "payer", value, "payer", problems)
        elif name == "payer_slug":
            _once(document, "payer_slug", value, "payer_slug", problems)
        elif name in POLICY_FIELDS:
            if name in document.fields:
                problems.append(_twice(name, document.fields[name].line, line))
            else:
                document.fields[name] = value
        else:
            problems.append(
                Problem(
                    line,
                    f"“{row['field']}” is not a policy field; the fields are: payer, "
                    f"payer_slug, {', '.join(POLICY_FIELDS)}.",
                )
            )
    elif record == "section":
        if name not in SECTIONS:
            problems.append(
                Problem(
                    line,
                    f"“{row['field']}” is not a section; the sections are: "
                    f"{', '.join(SECTIONS)}.",
                )
            )
        elif name in document.sections:
            problems.append(_twice(name, document.sections[name].line, line))
        else:
            document.sections[name] = value
    elif record == "group":
        group = _Group(
            line=line,
            heading=value,
            system=Located(row["system"], line),
            coverage=Located(row["coverage"], line),
        )
        document.groups.append(group)
    elif record == "code":
        if group is None:
            problems.append(
                Problem(
                    line,
                    "This code row comes before any group row: start the code "
                    "table with a “group” row (heading, system, coverage).",
                )
            )
        else:
            description = row["description"]
            group.rows.append((value, Located(description, line)))
    elif record == "reference":
        document.references.append(value)
    elif record == "related":
        document.related.append(value)
    else:
        problems.append(
            Problem(
                line,
                f"“{row['record']}” is not a kind of row this layout knows; the "
                f"kinds are: {', '.join(CSV_RECORDS)}.",
            )
        )
    return group


def _once(document, attribute, value, name, problems):
    current = getattr(document, attribute)
    if current is not None:
        problems.append(_twice(name, current.line, value.line))
    else:
        setattr(document, attribute, value)


def _twice(name, first_line, line):
    return Problem(line, f"“{name}” is given twice (first on line {first_line}).")


# The checks both formats share ---------------------------------------------------


def _text(located, what, problems, *, required=False, limit=None) -> str:
    """The located value as stripped text, or "" with a problem.

    With a ``limit`` the text is one line (spacing collapsed, as the bulletin
    parser tidies it); without, it is Markdown and keeps its lines.
    """
    if located is None or located.value is None:
        if required:
            line = located.line if located is not None else 1
            problems.append(Problem(line, f"The {what} is missing."))
        return ""
    if not isinstance(located.value, str):
        problems.append(Problem(located.line, f"The {what} should be text."))
        return ""
    # A JSON escape such as \u0000 can carry what the file's bytes may not hold
    # (PostgreSQL refuses NUL in text).
    value = _CONTROL.sub(" ", located.value)
    text = parsing.clean_line(value) if limit else value.strip()
    if required and not text:
        problems.append(Problem(located.line, f"The {what} is empty."))
    if limit and len(text) > limit:
        problems.append(
            Problem(located.line, f"The {what} is longer than {limit} characters.")
        )
        text = text[:limit]
    return text


def _build(document: _Document, problems) -> ParsedPolicy:
    payer_name = _text(
        document.payer, "payer name", problems, required=True, limit=_LIMITS["payer"]
    )
    _check_slug(document, payer_name, problems)
    policy = Policy()
    parsed = ParsedPolicy(payer_name=payer_name, policy=policy)

    for name, attribute in POLICY_FIELDS.items():
        located = document.fields.get(name)
        if name in DATE_FIELDS:
            setattr(policy, attribute, _date(located, name, problems))
            continue
        limit = Policy._meta.get_field(attribute).max_length
        setattr(
            policy,
            attribute,
            _text(located, name, problems, required=True, limit=limit),
        )
    if policy.number and not _NUMBER.fullmatch(policy.number):
        problems.append(
            Problem(
                document.fields["number"].line,
                f"The number “{policy.number}” cannot be part of the policy's "
                "address: use letters, digits, “.”, “-” and “_”, starting with a "
                "letter or digit.",
            )
        )

    for name, located in document.sections.items():
        text = _text(located, f"section “{name}”", problems)
        if len(text) > MAX_MARKDOWN_LENGTH:
            problems.append(
                Problem(
                    located.line,
                    f"The section “{name}” is {len(text):,} characters long; it may "
                    f"hold at most {MAX_MARKDOWN_LENGTH:,}. Shorten it.",
                )
            )
        setattr(policy, name, text)

    for position, group in enumerate(document.groups):
        built = _build_group(group, position, problems)
        if built is not None:
            parsed.groups.append(built)

    for located in document.references:
        citation = _text(located, "reference", problems)
        if citation:
            parsed.references.append(
                PolicyReference(
                    position=len(parsed.references) + 1,
                    citation=parsing.clean_line(citation),
                )
            )
        elif isinstance(located.value, str):
            problems.append(Problem(located.line, "This reference is empty."))
    for located in document.related:
        if line := _text(located, "related policy", problems):
            parsed.related_policies.append(parsing.clean_line(line))
    return parsed


def _check_slug(document, payer_name, problems):
    slug = slugify(payer_name)
    if payer_name and not slug:
        problems.append(
            Problem(
                document.payer.line,
                f"The payer name “{payer_name}” gives no address: use letters or "
                "digits in it.",
            )
        )
    elif len(slug) > _SLUG_LIMIT:
        problems.append(
            Problem(
                document.payer.line,
                f"The payer name makes an address longer than {_SLUG_LIMIT} "
                "characters; shorten the name.",
            )
        )
    written = _text(document.payer_slug, "payer slug", problems)
    if written and slug and written != slug:
        # The payer's address comes from its name, for bulletins and this layout
        # alike; a slug that differs would name another payer.
        problems.append(
            Problem(
                document.payer_slug.line,
                f"The payer slug “{written}” does not match the name “{payer_name}”, "
                f"whose address on this site is /payers/{slug}/: write “{slug}” or "
                "leave the slug out.",
            )
        )


def _date(located, name, problems):
    if located is None or located.value in (None, ""):
        return None
    if isinstance(located.value, str):
        try:
            return datetime.date.fromisoformat(located.value.strip())
        except ValueError:
            pass
    problems.append(
        Problem(
            located.line,
            f"“{located.value}” is not a date for “{name}”; write it as 2026-03-01.",
        )
    )
    return None


def _build_group(group: _Group, position, problems):
    heading = _text(
        group.heading or Located(None, group.line),
        "code group heading",
        problems,
        required=True,
        limit=_LIMITS["heading"],
    )
    system = None
    system_text = _text(group.system or Located(None, group.line), "", [])
    if system_text:
        system = codes.system_from_slug(system_text)
    if system is None:
        line = group.system.line if group.system else group.line
        problems.append(
            Problem(
                line,
                f"“{system_text}” is not a code system; write CPT, HCPCS, ICD-10-CM "
                "or ICD-10-PCS."
                if system_text
                else "The code group has no system (CPT, HCPCS, ICD-10-CM or "
                "ICD-10-PCS).",
            )
        )
    coverage_text = _text(group.coverage or Located(None, group.line), "", [])
    if coverage_text not in Coverage.values:
        line = group.coverage.line if group.coverage else group.line
        problems.append(
            Problem(
                line,
                f"“{coverage_text}” is not a coverage status; write one of "
                f"{', '.join(Coverage.values)}."
                if coverage_text
                else "The code group has no coverage status; write one of "
                f"{', '.join(Coverage.values)}.",
            )
        )
    if not group.rows:
        problems.append(
            Problem(group.line, f"The code group “{heading}” lists no codes.")
        )
    if system is None or not heading:
        return None
    built = PolicyCodeGroup(
        heading=heading,
        coverage=coverage_text,
        system=system.value,
        position=position,
    )
    rows = []
    for written, description_at in group.rows:
        description = ""
        if description_at is not None:
            description = parsing.clean_line(
                _text(description_at, "code description", problems)
            )
        items = _text(written, "code", problems, required=True)
        for item in items.split(","):
            item = parsing.clean_line(item)
            if not item:
                problems.append(
                    Problem(
                        written.line,
                        "A code is missing between commas."
                        if items
                        else "The code row names no code.",
                    )
                )
                continue
            row = parsing._new_code(built, item, description, written.line, problems)
            if row is not None:
                row.position = len(rows)
                rows.append(row)
    return built, rows
