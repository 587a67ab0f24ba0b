"""
The site's only Markdown renderer.

Pages, the admin preview and anything else that turns staff-written Markdown into HTML
call ``render_markdown``. Markdown lets raw HTML through, so the output is cleaned with
an allow-list (nh3, a binding of the Ammonia sanitiser): no scripts, no event-handler
attributes, no ``javascript:`` or ``data:`` URLs, no frames, forms or images (uploads
are off and the content security policy allows only the site's own images).

Rendering time grows in step with the text, whatever the text. Python-Markdown is
quadratic or worse on some inputs (each unmatched ``[`` or backtick scans to the end
of its paragraph, every inline match copies the paragraph, deep nesting recurses), so
``tame`` reads the text once first and takes the markup meaning away from whatever
would cost more than its share: brackets and backticks with no partner, brackets
nested past ``MAX_BRACKET_DEPTH``, ``<`` that cannot start a tag, markup past
``MAX_MARKUP`` marks, lines past ``MAX_LINES``, nesting past ``MAX_NESTING``. Such a
character is swapped for a private-use stand-in that Markdown passes through as
text, and put back, escaped, in the HTML: the reader sees the same characters,
shown literally. Ordinary Markdown stays far inside every bound and renders as
before.
"""

import bisect
import functools
import html as html_lib
import re

import markdown
import nh3
from django import forms
from django.utils.functional import cached_property
from django.utils.safestring import SafeString, mark_safe
from markdown.extensions import Extension
from markdown.inlinepatterns import (
    IMAGE_LINK_RE,
    LINK_RE,
    ImageInlineProcessor,
    LinkInlineProcessor,
)

# The longest text one Markdown field takes (the admin's forms and the live preview
# refuse more): far past any write-up or policy section, and rendered in well
# under a second whatever it holds.
MAX_MARKDOWN_LENGTH = 50_000

# Bounds on what one text may ask of the renderer (see the module's docstring).
MAX_LINES = 600
MAX_MARKUP = 2_000
# Marks times the length of their paragraph.
MAX_MARKUP_WORK = 20_000_000
MAX_BRACKET_DEPTH = 8
MAX_NESTING = 16
MAX_INDENT = 48
# A link's address and title together: longer ones are not read as links.
MAX_LINK_TAIL = 2_000
# Rendered Markdown usually sits under a section's <h2>, so its top heading level,
# whatever the writer chose, becomes <h3> (or the level the page asks for): a page
# keeps its single <h1> and headings that never skip a level.
TOP_HEADING_LEVEL = 3
_HEADING_TAG = re.compile(r"<(/?)h([1-6])\b", re.IGNORECASE)

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del",
    "dfn", "div", "dl", "dt", "em", "h2", "h3", "h4", "h5", "h6", "hr", "i",
    "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "small", "span", "strong",
    "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "ol": {"start"},
    "td": {"align", "colspan", "rowspan"},
    "th": {"align", "colspan", "rowspan", "scope"},
}
URL_SCHEMES = {"http", "https", "mailto", "tel"}


def render_markdown(text: str | None, top_level: int = TOP_HEADING_LEVEL) -> SafeString:
    """Render staff-written Markdown to sanitised HTML that is safe to show."""
    if not text:
        return mark_safe("")
    if len(text) <= MAX_REMEMBERED_LENGTH:
        return _remembered(text, top_level)
    return _render(text, top_level)


# Pages that render per request (a payer's description) show the same few short
# texts over and over: each process keeps its latest renderings of short texts.
MAX_REMEMBERED_LENGTH = 5_000


@functools.lru_cache(maxsize=128)
def _remembered(text: str, top_level: int) -> SafeString:
    return _render(text, top_level)


def _render(text: str, top_level: int) -> SafeString:
    html = markdown.markdown(
        tame(normalize_newlines(text)), extensions=EXTENSIONS, output_format="html"
    )
    html = _shift_headings(html.translate(_PUT_BACK), top_level)
    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        clean_content_tags={"script", "style"},
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(cleaned)


def normalize_newlines(text: str) -> str:
    """Browsers send a textarea's lines ended by CRLF: store and compare them as LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


# Bounding the work: stand-ins for markup characters, and the renderer's link reader.

# ASCII character c stands in as U+E000 + ord(c), a private-use character that
# Markdown treats as plain text; the HTML gets c back, escaped where HTML needs it.
_STAND_IN = 0xE000
_CLEAR_STAND_INS = dict.fromkeys(range(_STAND_IN, _STAND_IN + 128), "\ufffd")
_PUT_BACK = {_STAND_IN + code: html_lib.escape(chr(code)) for code in range(1, 128)}


def _stand_in(char: str) -> str:
    return chr(_STAND_IN + ord(char)) if ord(char) < 128 else char


def _all_stand_ins(text: str) -> str:
    return text.translate(_EVERY_STAND_IN)


_EVERY_STAND_IN = {code: _STAND_IN + code for code in range(1, 128)}
# What can open inline markup or a nested block, for text past the markup budget.
_MARKUP_STAND_INS = {
    ord(char): _STAND_IN + ord(char) for char in "\\`*_[]()<>&'\"!-.+|"
}

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
# The markers that open a nested block at the start of a line: quote, bullet, number.
_LINE_MARKER = re.compile(r"[ \t]*(?:>|[-*+](?=[ \t]|$)|\d{1,9}[.)](?=[ \t]|$))")
_INDENT = re.compile(r"[ \t]*")
# Inline markup, each match one mark: an escape, a run of backticks or emphasis
# characters, a bracket (with the parenthesis of a link's address), an angle
# bracket, an entity's start, a smart quote, dash or ellipsis, a hard line break, a
# table's cell border.
_MARK = re.compile(r"\\.|`+|\*+|_+|\]\(|[\[\]<>&'\"|]|--|\.\.\.|  \n", re.DOTALL)
_PARENTHESES = re.compile(r"[()]")


@functools.cache
def _backtick_run(length: int) -> re.Pattern:
    return re.compile(rf"(?<!`)`{{{length}}}(?!`)")


def tame(text: str) -> str:
    """
    ``text`` with the markup meaning taken from whatever would make rendering it
    cost more than linear time (see the module's docstring).
    """
    text = text.translate(_CLEAR_STAND_INS)
    lines = text.split("\n")
    rest = lines[MAX_LINES:]
    budget = [MAX_MARKUP]
    out, paragraph = [], []
    fence = None

    def end_paragraph():
        if paragraph:
            out.append(_tame_inline("\n".join(paragraph), budget))
            paragraph.clear()

    for line in lines[:MAX_LINES]:
        if fence is not None:
            out.append(line)
            found = _FENCE.match(line)
            if found and found[1][0] == fence[0] and len(found[1]) >= len(fence):
                fence = None
            continue
        if found := _FENCE.match(line):
            end_paragraph()
            fence = found[1]
            out.append(line)
        elif not line.strip():
            end_paragraph()
            out.append(line)
        else:
            paragraph.append(_tame_line_start(line))
    end_paragraph()
    tamed = "\n".join(out)
    if rest:
        # Past the last line read as Markdown, the text is shown as it was typed, in
        # a paragraph of its own.
        tamed += "\n\n" + _all_stand_ins("\n".join(rest))
    return tamed


def _tame_line_start(line: str) -> str:
    indent = _INDENT.match(line).end()
    if len(line[:indent].expandtabs(4)) > MAX_INDENT:
        line = " " * MAX_INDENT + line[indent:]
    position = 0
    for _depth in range(MAX_NESTING):
        found = _LINE_MARKER.match(line, position)
        if found is None:
            return line
        position = found.end()
    if _LINE_MARKER.match(line, position):
        # Deeper nesting is text.
        line = line[:position] + line[position:].translate(_MARKUP_STAND_INS)
    return line


def _tame_inline(paragraph: str, budget: list[int]) -> str:
    """One paragraph's inline markup, bounded (``budget`` is shared by the text)."""
    # Each mark costs Python-Markdown a copy of its paragraph: a long paragraph gets
    # fewer of them.
    allowed = min(budget[0], MAX_MARKUP_WORK // max(len(paragraph), 1))
    if allowed <= 0:
        return paragraph.translate(_MARKUP_STAND_INS)
    budget[0] -= allowed
    marks, gone = [], []
    lone_runs: set[int] = set()  # Backtick run lengths with no run left to pair.
    position, cut = 0, len(paragraph)
    while found := _MARK.search(paragraph, position):
        if allowed <= 0:
            cut = found.start()
            break
        allowed -= 1
        start, position = found.span()
        if found[0][0] == "`":
            # A code span: the run pairs with the next run of the same length, and
            # nothing inside is markup. A run that pairs with none is plain text.
            length = position - start
            partner = None
            if length not in lone_runs:
                partner = _backtick_run(length).search(paragraph, position)
            if partner is None:
                lone_runs.add(length)
                gone.extend(range(start, position))
            else:
                position = partner.end()
            continue
        marks.append((start, found[0]))
    budget[0] += allowed  # What this paragraph left unused.
    _pair_brackets(marks, gone)
    _check_angles(marks, gone)
    _check_link_tails(paragraph[:cut], marks, gone)
    if not gone and cut == len(paragraph):
        return paragraph
    chars = list(paragraph[:cut])
    for index in gone:
        chars[index] = _stand_in(chars[index])
    return "".join(chars) + paragraph[cut:].translate(_MARKUP_STAND_INS)


def _pair_brackets(marks, gone: list[int]) -> None:
    """Brackets with no partner, or nested too deep, are text."""
    open_ones: list[int] = []
    for start, mark in marks:
        if mark == "[":
            open_ones.append(start)
        elif mark[0] == "]" and open_ones:
            opener = open_ones.pop()
            if len(open_ones) >= MAX_BRACKET_DEPTH:
                gone.extend((opener, start))
    gone.extend(open_ones)


def _check_angles(marks, gone: list[int]) -> None:
    """A ``<`` can open a tag, a comment or an autolink only if ``>`` comes first."""
    angles = [(start, mark) for start, mark in marks if mark in "<>"]
    for index, (start, mark) in enumerate(angles):
        if mark == "<" and (index + 1 == len(angles) or angles[index + 1][1] != ">"):
            gone.append(start)


def _check_link_tails(text: str, marks, gone: list[int]) -> None:
    """
    A link's ``(`` with no ``)`` to close it is text, and so are the quotes in an
    address that would read on past its ``)`` looking for the end of a title.
    """
    tails = [start + 1 for start, mark in marks if mark == "]("]
    if not tails:
        return
    closing, open_ones = {}, []
    for found in _PARENTHESES.finditer(text):
        if found[0] == "(":
            open_ones.append(found.start())
        elif open_ones:
            closing[open_ones.pop()] = found.start()
    quotes = [start for start, mark in marks if mark in "'\""]
    for opener in tails:
        close = closing.get(opener)
        if close is None or close - opener > MAX_LINK_TAIL:
            gone.append(opener)
            continue
        inside = text[opener + 1 : close]
        first = min((inside.find(q) for q in "'\"" if q in inside), default=-1)
        if first >= 0 and not inside.rstrip().endswith(inside[first]):
            low = bisect.bisect_left(quotes, opener)
            high = bisect.bisect_left(quotes, close)
            gone.extend(quotes[low:high])


class _BoundedLinkTail:
    """Reads a link's ``(address "title")`` from at most MAX_LINK_TAIL characters."""

    def getLink(self, data, index):
        return super().getLink(data[: index + MAX_LINK_TAIL], index)


class _BoundedLink(_BoundedLinkTail, LinkInlineProcessor):
    pass


class _BoundedImage(_BoundedLinkTail, ImageInlineProcessor):
    pass


class _BoundedLinks(Extension):
    """Python-Markdown's link readers, with the bound above."""

    def extendMarkdown(self, md):
        md.inlinePatterns.register(_BoundedLink(LINK_RE, md), "link", 160)
        md.inlinePatterns.register(_BoundedImage(IMAGE_LINK_RE, md), "image_link", 150)


EXTENSIONS = ["tables", "sane_lists", "fenced_code", "smarty", _BoundedLinks()]


def _shift_headings(html: str, top_level: int) -> str:
    levels = [int(level) for _slash, level in _HEADING_TAG.findall(html)]
    if not levels:
        return html
    shift = top_level - min(levels)
    return _HEADING_TAG.sub(
        lambda match: f"<{match[1]}h{min(int(match[2]) + shift, 6)}", html
    )


class MarkdownField(forms.CharField):
    """
    A Markdown text in an admin form: LF line ends, and at most MAX_MARKDOWN_LENGTH
    characters.

    Browsers send a textarea's lines ended by CRLF; reading them as LF keeps an
    untouched field from counting as changed against the stored text.
    """

    def __init__(self, *, max_length=None, **kwargs):
        kwargs["error_messages"] = {
            "max_length": (
                "This text is too long: at most %(limit_value)d characters (it has "
                "%(show_value)d). Shorten it, or split it between sections."
            ),
            **kwargs.get("error_messages", {}),
        }
        super().__init__(max_length=max_length or MAX_MARKDOWN_LENGTH, **kwargs)

    def to_python(self, value):
        return normalize_newlines(super().to_python(value))


class StoredMarkdown:
    """
    Model mixin: keep the sanitised HTML of ``MARKDOWN_FIELDS`` in ``rendered``.

    ``MARKDOWN_FIELDS`` maps each Markdown field to the heading level its text starts
    at on the page. The Markdown stays the source of truth; ``save()`` renders it
    through ``render_markdown``, so pages read HTML instead of rendering per request.
    Writes that skip ``save()`` (``bulk_create``, ``update``) leave ``rendered`` as it
    was: a field missing from it is rendered on the fly, a stale one stays until the
    next save.
    """

    MARKDOWN_FIELDS: dict[str, int] = {}

    def save(self, *args, **kwargs):
        for name in self.MARKDOWN_FIELDS:
            if value := getattr(self, name):
                setattr(self, name, normalize_newlines(value))
        self.rendered = {
            name: str(render_markdown(getattr(self, name), top_level=level))
            for name, level in self.MARKDOWN_FIELDS.items()
        }
        super().save(*args, **kwargs)

    @cached_property
    def html(self) -> dict[str, SafeString]:
        """Each Markdown field as sanitised HTML, keyed by field name."""
        stored = self.rendered or {}
        return {
            # Stored HTML came out of render_markdown when the object was saved.
            name: mark_safe(stored[name])
            if name in stored
            else render_markdown(getattr(self, name), top_level=level)
            for name, level in self.MARKDOWN_FIELDS.items()
        }
