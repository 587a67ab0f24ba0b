"""
Reading the ICD-10-CM tabular list that the ``simple-icd-10-cm`` package ships.

The package parses its copy of the CMS tabular list when it is imported, which costs
seconds and about 200 MB, so nothing here imports it: the ``import_icd10cm`` command
imports it inside ``handle()`` and passes the module to :func:`parse_package`. Web
processes never load it.

What becomes what:

- chapters and blocks become ``CodeSection`` rows, slugs ``chapter-<n>`` and
  ``<start>-<end>`` in lower case. A block of one category (``B10``, ``C7A``) gets
  ``b10-b10``, so it never collides with the category ``B10``, which is a ``Code``.
  Blocks inside a chapter nest by range (``T20-T25`` sits in ``T20-T32``, which sits
  in ``T07-T88``), so each code has one narrowest section.
- categories, subcategories and codes become ``Code`` rows with ``parent``,
  ``is_billable`` (a code with no children), the official notes and the code-set
  year. 7th-character codes are expanded as the official list does (the package
  drops the combinations the code list does not hold).
"""

from __future__ import annotations

import re

from procedures import codes
from procedures.models import Code, CodeSection
from procedures.parsing import clean_line

from .saving import ParsedCodeSet

ICD = codes.System.ICD10CM
YEAR = 2026
# The same words load_sample_data gives the official descriptors it ships.
SOURCE = "ICD-10-CM FY2026"
PACKAGE = "simple_icd_10_cm"
# Codes (categories, subcategories and billable codes) in the package's FY2026 list
# (simple-icd-10-cm 1.5.0); a full import checks it, and `make run` compares the
# database with it to skip a second import.
FULL_SET_CODES = 98186
# The Code fields an import of this set owns.
FIELDS = ["descriptor", "is_billable", "parent_id", "notes", "source", "code_set_year"]

# "Injuries to the head (S00-S09)": the range closing a chapter or block title.
_RANGE_SUFFIX = re.compile(r"\s*\(([A-Z0-9]{3})(?:-([A-Z0-9]{3}))?\)$")
# (notes kind, package getter); the kinds are the keys of Code.notes.
_NOTE_GETTERS = [
    ("includes", "get_includes"),
    ("inclusion_terms", "get_inclusion_term"),
    ("excludes1", "get_excludes1"),
    ("excludes2", "get_excludes2"),
    ("code_first", "get_code_first"),
    ("code_also", "get_code_also"),
    ("use_additional_code", "get_use_additional_code"),
    ("notes", "get_notes"),
]


def parse_package(cm, *, categories=None, chapters=None) -> ParsedCodeSet:
    """Unsaved sections and codes from the package module ``cm``, plus problems.

    ``categories`` (such as ``["S52", "B10"]``) or ``chapters`` (``["19"]``) limit
    the result to those parts and the chapters and blocks around them.
    """
    parsed = ParsedCodeSet(system=ICD.value)
    wanted = _wanted_categories(categories, parsed.problems)
    all_chapters = [item for item in cm.get_all_codes() if cm.is_chapter(item)]
    if chapters:
        unknown = [chapter for chapter in chapters if chapter not in all_chapters]
        for chapter in unknown:
            parsed.problems.append(
                f"“{chapter}” is not an ICD-10-CM chapter: chapters are numbered "
                f"1 to {len(all_chapters)}."
            )
    found = set()
    for chapter in all_chapters:
        if chapters and chapter not in chapters:
            continue
        _read_chapter(cm, chapter, wanted, found, parsed)
    for category in sorted((wanted or set()) - found):
        parsed.problems.append(
            f"{category} is not a category of the ICD-10-CM FY{YEAR} tabular list."
        )
    return parsed


def _wanted_categories(categories, problems):
    if not categories:
        return None
    wanted = set()
    for text in categories:
        try:
            category = codes.normalize(ICD, text)
        except codes.CodeError as error:
            problems.append(str(error))
            continue
        if "." in category:
            problems.append(
                f"{category} is not a category: give the three-character category "
                f"({category[:3]})."
            )
            continue
        wanted.add(category)
    return wanted


def _section(slug, kind, title):
    match = _RANGE_SUFFIX.search(title)
    start, end = match.group(1), match.group(2) or match.group(1)
    return CodeSection(
        system=ICD.value,
        slug=slug,
        kind=kind,
        name=clean_line(title[: match.start()]),
        start_code=start,
        end_code=end,
    )


def _read_chapter(cm, chapter, wanted, found, parsed):
    title = cm.get_description(chapter)
    if not _RANGE_SUFFIX.search(title):
        parsed.problems.append(f"Chapter {chapter} has no code range: “{title}”.")
        return
    chapter_section = _section(f"chapter-{chapter}", CodeSection.Kind.CHAPTER, title)
    blocks = []
    for block in cm.get_children(chapter):
        block_title = cm.get_description(block, prioritize_blocks=True)
        if not _RANGE_SUFFIX.search(block_title):
            parsed.problems.append(f"Block {block} has no code range: “{block_title}”.")
            continue
        section = _section("", CodeSection.Kind.BLOCK, block_title)
        section.slug = f"{section.start_code}-{section.end_code}".lower()
        categories = cm.get_children(block, prioritize_blocks=True)
        if wanted is not None:
            categories = [category for category in categories if category in wanted]
        blocks.append((section, categories))
    parents = _nest(chapter_section, [section for section, _ in blocks])
    needed = set()
    for section, categories in blocks:
        if categories:
            slug = section.slug
            while slug:
                needed.add(slug)
                slug = parents.get(slug)
    if not needed:
        return
    parsed.sections.append(chapter_section)

    def depth(slug):
        return 0 if slug == chapter_section.slug else 1 + depth(parents[slug])

    # Parents are saved before the blocks inside them.
    kept = [section for section, _categories in blocks if section.slug in needed]
    for section in sorted(kept, key=lambda section: depth(section.slug)):
        parsed.sections.append(section)
        parsed.section_parents[section.slug] = parents[section.slug]
    for _block, categories in blocks:
        for category in categories:
            found.add(category)
            _read_code(cm, category, None, parsed)


def _nest(chapter, blocks):
    """Each block's parent slug: the narrowest other block holding its range."""

    def holds(outer, inner):
        return (
            outer.start_code <= inner.start_code
            and inner.end_code <= outer.end_code
            and (outer.start_code, outer.end_code) != (inner.start_code, inner.end_code)
        )

    parents = {}
    for index, block in enumerate(blocks):
        # Only a heading listed before the block holds it: by sort key C7A falls
        # inside C76-C80, but the tabular list puts C7A before it, under C00-C96.
        holders = [other for other in blocks[:index] if holds(other, block)]
        # Holders nest, so the narrowest is the one all the others hold.
        narrowest = max(
            holders, key=lambda o: sum(holds(h, o) for h in holders), default=None
        )
        parents[block.slug] = narrowest.slug if narrowest else chapter.slug
    return parents


def _read_code(cm, name, parent, parsed):
    try:
        code = codes.normalize(ICD, name)
    except codes.CodeError as error:
        parsed.problems.append(str(error))
        return
    children = cm.get_children(name)
    parsed.codes.append(
        Code(
            system=ICD.value,
            code=code,
            descriptor=clean_line(cm.get_description(name)),
            is_billable=not children,
            notes=_notes(cm, name),
            source=SOURCE,
            code_set_year=YEAR,
        )
    )
    if parent:
        parsed.parents[code] = parent
    for child in children:
        _read_code(cm, child, code, parsed)


def _notes(cm, name):
    notes = {}
    for kind, getter in _NOTE_GETTERS:
        value = getattr(cm, getter)(name)
        lines = value.split("\n") if isinstance(value, str) else value
        kept = [clean_line(line) for line in lines if clean_line(line)]
        if kept:
            notes[kind] = kept
    seventh = []
    note = clean_line(cm.get_seven_chr_note(name))
    if note:
        seventh.append(note)
    for character, meaning in cm.get_seven_chr_def(name).items():
        seventh.append(f"{character}: {clean_line(meaning)}")
    if seventh:
        notes["seventh_characters"] = seventh
    return notes
