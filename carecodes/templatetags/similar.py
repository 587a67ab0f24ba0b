"""The code page's top similar codes, read from the index (content views never do)."""

from django import template

from index import similar

register = template.Library()


@register.simple_tag
def similar_top(code):
    """The first entries of ``code``'s stored list, with their codes: one query."""
    return list(similar.stored_for(code)[: similar.TOP_ON_CODE_PAGE])
