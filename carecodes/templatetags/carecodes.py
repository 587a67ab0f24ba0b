from django import template

from carecodes import seo
from carecodes.markdown import render_markdown

register = template.Library()


@register.filter
def markdown(text, top_level=3):
    """Staff-written Markdown as sanitised HTML; its headings start at ``top_level``."""
    return render_markdown(text, top_level=int(top_level))


@register.filter
def jsonld(data):
    return seo.to_json_ld(data)


@register.simple_tag(takes_context=True)
def canonical_url(context, path=None):
    """This page's absolute address without its query string, unless given a path."""
    request = context["request"]
    return seo.canonical_url(request, path or request.path)
