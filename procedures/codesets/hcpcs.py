"""
Reading the CMS HCPCS Level II release file, fixed-width layout.

CMS publishes the alpha-numeric HCPCS file each quarter as ``HCPC<year>_<MON>_ANWEB``
(text, one 320-character record a line). The fields read here, by column (counting
from 1, as the CMS record layout does):

    1-5     HCPCS code (a modifier record has its two characters in 4-5)
    6-10    sequence number of the description line (00100, 00200, ...)
    11      record identification code:
              3 = first line of a procedure code (detail fields follow on this line)
              4 = continuation line of a procedure code's long description
              7 = first line of a modifier
              8 = continuation line of a modifier's long description
    12-91   long description (80 characters a line; continuation lines add to it)
    92-119  short description (28 characters, first lines only)

Columns 120 onwards (pricing indicators, coverage, dates, BETOS ...) are not read.
A code's descriptor is its long description, the lines joined with single spaces.
Modifiers are not codes and are skipped, and so are CDT dental (D) codes, which this
site does not treat as HCPCS Level II. Everything else that cannot be read is a
problem with its line number, and then nothing is saved.
"""

from __future__ import annotations

import re

from carecodes.importing import Problem
from procedures import codes
from procedures.models import Code
from procedures.parsing import clean_line, numbered_lines

from .saving import ParsedCodeSet

HCPCS = codes.System.HCPCS
FIELDS = ["descriptor", "source", "code_set_year"]

CODE = slice(0, 5)
SEQUENCE = slice(5, 10)
RECORD_ID = 10
LONG_DESCRIPTION = slice(11, 91)
SHORT_DESCRIPTION = slice(91, 119)

FIRST, CONTINUED = "3", "4"
MODIFIER_FIRST, MODIFIER_CONTINUED = "7", "8"
DENTAL = re.compile(r"D[0-9]{4}")
# "HCPC2026_JAN_ANWEB_v2.txt" -> 2026, "JAN".
RELEASE_NAME = re.compile(r"HCPC(?P<year>\d{4})_(?P<month>[A-Z]{3})", re.IGNORECASE)


def release_of(file_name: str) -> tuple[int, str] | None:
    """(year, month) of a CMS file name such as ``HCPC2026_JAN_ANWEB.txt``."""
    match = RELEASE_NAME.search(file_name)
    if match is None:
        return None
    return int(match["year"]), match["month"].upper()


def parse_hcpcs(text: str, *, year: int, source: str) -> ParsedCodeSet:
    """Unsaved HCPCS Level II codes from the text of an ANWEB file, plus problems."""
    parsed = ParsedCodeSet(system=HCPCS.value)
    descriptions: dict[str, list[str]] = {}
    first_lines: dict[str, int] = {}
    last_sequence: dict[str, str] = {}
    current = None
    for number, raw in numbered_lines(text):
        line = raw.rstrip()
        if not line.strip():
            continue
        if len(line) < 12:
            parsed.problems.append(
                Problem(number, "the record is too short to hold a code and text.")
            )
            continue
        record = line[RECORD_ID]
        code_text = line[CODE].strip()
        sequence = line[SEQUENCE]
        if record in (MODIFIER_FIRST, MODIFIER_CONTINUED):
            parsed.skipped += record == MODIFIER_FIRST
            current = None
            continue
        if record not in (FIRST, CONTINUED):
            parsed.problems.append(
                Problem(
                    number,
                    f"“{record}” in column 11 is not a record type of the HCPCS file "
                    "(3 or 4 for a code, 7 or 8 for a modifier).",
                )
            )
            continue
        if not sequence.isdigit():
            parsed.problems.append(
                Problem(number, f"“{sequence}” in columns 6-10 is not a number.")
            )
            continue
        if DENTAL.fullmatch(code_text):
            # CDT dental codes: the ADA's, and not HCPCS Level II here.
            if record == FIRST:
                parsed.skipped += 1
            current = None
            continue
        try:
            code = codes.normalize(HCPCS, code_text)
        except codes.CodeError as error:
            parsed.problems.append(Problem(number, str(error)))
            current = None
            continue
        text_part = clean_line(line[LONG_DESCRIPTION])
        if record == FIRST:
            if code in first_lines:
                parsed.problems.append(
                    Problem(
                        number,
                        f"{code} starts again here; it already started on line "
                        f"{first_lines[code]}.",
                    )
                )
                continue
            if not text_part:
                parsed.problems.append(
                    Problem(number, f"{code} has no long description (columns 12-91).")
                )
            first_lines[code] = number
            descriptions[code] = [text_part]
            last_sequence[code] = sequence
            current = code
            continue
        if current != code:
            parsed.problems.append(
                Problem(
                    number,
                    f"this continues {code}, but the line before is not part of "
                    f"{code}: a continuation (4) follows its code's first line (3).",
                )
            )
            continue
        if sequence <= last_sequence[code]:
            parsed.problems.append(
                Problem(
                    number,
                    f"sequence number {sequence} of {code} does not follow "
                    f"{last_sequence[code]}.",
                )
            )
            continue
        last_sequence[code] = sequence
        descriptions[code].append(text_part)
    for code, parts in descriptions.items():
        parsed.codes.append(
            Code(
                system=HCPCS.value,
                code=code,
                descriptor=" ".join(part for part in parts if part),
                source=source,
                code_set_year=year,
            )
        )
    if not parsed.codes and not parsed.problems:
        parsed.problems.append(
            Problem(1, "the file holds no HCPCS Level II code records.")
        )
    return parsed
