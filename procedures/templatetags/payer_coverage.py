"""The code page's compact coverage summary, from the mentions the page already has."""

from django import template

from procedures.coverage import by_status

register = template.Library()


@register.simple_tag
def coverage_by_status(mentions):
    """``(status, label, mentions)`` per coverage status, strictest first; no query."""
    return by_status(mentions)
