"""
Reading a clinic's licensed CPT file: CSV with two columns, code and descriptor.

CPT descriptors are the AMA's and licensed, so the site ships none beyond the
sample codes; a clinic that holds a licence loads its own file. An optional first
row ``code,descriptor`` is a header. Any row that cannot be read is a problem with
its line number, and then nothing is saved.
"""

from __future__ import annotations

import csv
import io

from carecodes.importing import Problem
from procedures import codes
from procedures.models import Code
from procedures.parsing import clean_line

from .saving import ParsedCodeSet

CPT = codes.System.CPT
FIELDS = ["descriptor", "source", "code_set_year"]
HEADER = ["code", "descriptor"]


def parse_cpt_csv(text: str, *, source: str, year: int | None = None) -> ParsedCodeSet:
    """Unsaved CPT codes from the CSV text, plus problems with line numbers."""
    parsed = ParsedCodeSet(system=CPT.value)
    seen: dict[str, int] = {}
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    for row in reader:
        number = reader.line_num
        cells = [clean_line(cell) for cell in row]
        if not any(cells):
            continue
        if number == 1 and [cell.lower() for cell in cells] == HEADER:
            continue
        if len(cells) != len(HEADER):
            parsed.problems.append(
                Problem(
                    number,
                    f"expected 2 columns (code, descriptor), found {len(cells)}; "
                    "put descriptors holding commas in double quotes.",
                )
            )
            continue
        code_text, descriptor = cells
        try:
            code = codes.normalize(CPT, code_text)
        except codes.CodeError as error:
            parsed.problems.append(Problem(number, str(error)))
            continue
        if not descriptor:
            parsed.problems.append(Problem(number, f"{code} has no descriptor."))
            continue
        if code in seen:
            parsed.problems.append(
                Problem(number, f"{code} is listed again; line {seen[code]} has it.")
            )
            continue
        seen[code] = number
        parsed.codes.append(
            Code(
                system=CPT.value,
                code=code,
                descriptor=descriptor,
                source=source,
                code_set_year=year,
            )
        )
    if not parsed.codes and not parsed.problems:
        parsed.problems.append(Problem(1, "the file holds no CPT codes."))
    return parsed
