"""
The site's only Markdown renderer.

Pages, the admin preview and anything else that turns staff-written Markdown into HTML
call ``render_markdown``. Markdown lets raw HTML through, so the output is cleaned with
an allow-list (nh3, a binding of the Ammonia sanitiser): no scripts, no event-handler
attributes, no ``javascript:`` or ``data:`` URLs, no frames, forms or images (uploads
are off and the content security policy allows only the site's own images).
"""

import re

import markdown
import nh3
from django.utils.functional import cached_property
from django.utils.safestring import SafeString, mark_safe

EXTENSIONS = ["tables", "sane_lists", "fenced_code", "smarty"]
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
    html = _shift_headings(
        markdown.markdown(text, extensions=EXTENSIONS, output_format="html"),
        top_level,
    )
    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        clean_content_tags={"script", "style"},
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(cleaned)


def _shift_headings(html: str, top_level: int) -> str:
    levels = [int(level) for _slash, level in _HEADING_TAG.findall(html)]
    if not levels:
        return html
    shift = top_level - min(levels)
    return _HEADING_TAG.sub(
        lambda match: f"<{match[1]}h{min(int(match[2]) + shift, 6)}", html
    )


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
