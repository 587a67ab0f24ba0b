"""The phrases people use for a code ("also called"), from the lay-term thesaurus."""

from django import template
from django.utils.html import format_html

from procedures import lay_terms

register = template.Library()


@register.simple_tag
def also_called(phrases):
    """The "Also called" line for a list of phrases; nothing when there are none."""
    if not phrases:
        return ""
    return format_html(
        '<p class="also-called"><span class="label">Also called:</span> {}</p>',
        ", ".join(phrases),
    )


@register.simple_tag
def lay_phrases_for(codes):
    """{code: "phrase, phrase"} for a list of Code rows of one system, in one query.

    Only phrases that name the listed code itself: in a list, a phrase meaning a
    whole category would repeat on every line below it.
    """
    codes = list(codes)
    if not codes:
        return {}
    found = lay_terms.phrases_for_codes(
        codes[0].system, [code.code for code in codes], exact=True
    )
    return {code: ", ".join(phrases) for code, phrases in found.items()}


@register.filter
def phrases_of(found, code):
    """The phrases ``lay_phrases_for`` found for ``code`` (a Code), or ""."""
    return found.get(code.code, "")
