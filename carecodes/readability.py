"""
Reading grades of staff-written Markdown, for authors who aim at grade 8 or below.

Two formulas from textstat: Flesch–Kincaid (sentence length and syllables per word)
and SMOG (words of three or more syllables per sentence). Both are US school grades.
They are measured on the words a patient reads: Markdown syntax, link addresses and
code blocks are taken out first, and each heading, list item and table cell counts as
a sentence of its own, as a reader takes it.

A grade is advice for the author, never a reason to refuse a save.
"""

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import textstat

# Plain-language guidance for patient materials: grade 8 or below.
TARGET_GRADE = 8.0
# SMOG counts long words per sentence and was normed on 30-sentence samples; on one
# or two sentences a single long word swings it by several grades.
SMOG_MIN_SENTENCES = 3

# Markdown, line by line. Every pattern is linear: a character class that stops at
# the next opening bracket, never a nested or unbounded repeat over the same text.
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_RULE_OR_UNDERLINE = re.compile(r"^\s{0,3}(?:[-*_=]\s*){3,}$")
_TABLE_DIVIDER_CHARACTERS = frozenset("|:- \t")
_LINK_DEFINITION = re.compile(r"^\s{0,3}\[[^\[\]]*\]:\s")
_HEADING = re.compile(r"^\s{0,3}#{1,6}(?:\s+|$)")
_BLOCK_START = re.compile(r"^\s*(?:>\s*)*(?:[-*+]|\d{1,9}[.)])\s+")
_QUOTE = re.compile(r"^\s*(?:>\s*)+")
_CLOSING_HASHES = re.compile(r"\s+#+$")
_IMAGE_OR_LINK = re.compile(r"!?\[([^\[\]]*)\](?:\([^()]*\)|\[[^\[\]]*\])?")
_ADDRESS = re.compile(r"<(?:https?://|mailto:)[^<>\s]*>|\b(?:https?://|www\.)\S+")
_TAG = re.compile(r"<[^<>]*>")
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_EMPHASIS = re.compile(r"[*_~`]+")
_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*$")
_SPACE = re.compile(r"\s+")


def plain_text(markdown: str) -> str:
    """The words of a Markdown text, one sentence per block, without the syntax."""
    units: list[str] = []
    paragraph: list[str] = []
    fence = ""

    def end_unit():
        if paragraph:
            units.append(" ".join(paragraph))
            paragraph.clear()

    for line in (markdown or "").splitlines():
        # No pattern below has to give back trailing blanks one by one.
        line = line.rstrip()
        if fence:
            if line.strip().startswith(fence):
                fence = ""
            continue
        if match := _FENCE.match(line):
            end_unit()
            fence = match[1]
            continue
        if not line or _RULE_OR_UNDERLINE.match(line) or _LINK_DEFINITION.match(line):
            end_unit()
            continue
        if "|" in line and "-" in line and set(line) <= _TABLE_DIVIDER_CHARACTERS:
            continue
        if _HEADING.match(line):
            end_unit()
            units.append(_CLOSING_HASHES.sub("", _HEADING.sub("", line)))
            continue
        if "|" in line and line.strip().strip("|").strip():
            # A table row: each cell is read on its own.
            end_unit()
            units.extend(line.strip().strip("|").split("|"))
            continue
        if _BLOCK_START.match(line):
            end_unit()
            line = _BLOCK_START.sub("", line)
        paragraph.append(_QUOTE.sub("", line))
    end_unit()
    return " ".join(
        unit if _SENTENCE_END.search(unit) else f"{unit}."
        for unit in map(_inline_text, units)
        if unit
    )


def _inline_text(text: str) -> str:
    text = _IMAGE_OR_LINK.sub(r"\1", text)
    text = _ADDRESS.sub(" ", text)
    text = _TAG.sub(" ", text)
    text = _ESCAPE.sub(r"\1", text)
    text = _EMPHASIS.sub("", text)
    return _SPACE.sub(" ", html.unescape(text)).strip()


@dataclass(frozen=True)
class Grade:
    """A text's reading grades; ``smog`` is None when the text is too short for it."""

    flesch_kincaid: float | None
    smog: float | None

    @property
    def value(self) -> float | None:
        """The harder of the two grades: what the text is judged by."""
        grades = (self.flesch_kincaid, self.smog)
        return max((grade for grade in grades if grade is not None), default=None)

    @property
    def is_hard(self) -> bool:
        """Above grade 8: a warning for the author, not an error."""
        return self.value is not None and self.value > TARGET_GRADE

    @property
    def message(self) -> str:
        if self.flesch_kincaid is None:
            return "No text to grade yet — aim for reading grade 8 or below"
        smog = (
            f"{self.smog:.1f} (SMOG)"
            if self.smog is not None
            else f"SMOG needs {SMOG_MIN_SENTENCES} sentences"
        )
        grades = f"{self.flesch_kincaid:.1f} (Flesch–Kincaid), {smog}"
        if self.is_hard:
            return f"Hard to read: reading grade {grades} — aim for 8 or below"
        return f"Reading grade {grades} — aim for 8 or below"

    def as_dict(self) -> dict:
        return {
            "flesch_kincaid": self.flesch_kincaid,
            "smog": self.smog,
            "grade": self.value,
            "hard": self.is_hard,
            "message": self.message,
        }


def grade(markdown: str) -> Grade:
    """The Flesch–Kincaid grade and SMOG index of a Markdown text's plain words."""
    text = plain_text(markdown)
    if not textstat.lexicon_count(text):
        return Grade(None, None)
    smog = None
    if textstat.sentence_count(text) >= SMOG_MIN_SENTENCES:
        smog = _school_grade(textstat.smog_index(text))
    return Grade(_school_grade(textstat.flesch_kincaid_grade(text)), smog)


def _school_grade(value: float) -> float:
    # Very short, plain sentences score below zero; no reader is below grade 0.
    return round(max(value, 0.0), 1)


@dataclass(frozen=True)
class SectionGrade:
    name: str
    heading: str
    grade: Grade


@dataclass(frozen=True)
class WriteupGrades:
    """The grade of each section that has text, and the hardest of them."""

    sections: list[SectionGrade]

    @property
    def hardest(self) -> SectionGrade | None:
        graded = [each for each in self.sections if each.grade.value is not None]
        return max(graded, key=lambda each: each.grade.value, default=None)


def writeup_grades(
    texts: Mapping[str, str], sections: Iterable[tuple[str, str]]
) -> WriteupGrades:
    """Grade each of ``sections`` (field name, heading) that has text in ``texts``."""
    return WriteupGrades(
        [
            SectionGrade(name, heading, grade(text))
            for name, heading in sections
            if (text := texts.get(name)) and text.strip()
        ]
    )
