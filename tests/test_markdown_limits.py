"""
Markdown has limits: a bounded size per field, and rendering time in step with the
text whatever it holds, while ordinary Markdown renders exactly as before.
"""

import time
from pathlib import Path

import markdown
import nh3
import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse
from lxml import html

from carecodes import markdown as site_markdown
from carecodes.markdown import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_TAGS,
    MAX_MARKDOWN_LENGTH,
    URL_SCHEMES,
    _shift_headings,
    render_markdown,
)
from policies.models import Payer, Policy
from procedures.models import Procedure

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"
N = 100_000

# Each 100,000 characters long. Before the bounds, '[' * 4000 took 2 s and
# '[' * 20000 over 30 s; "1. " repeated overflowed Python's stack.
HOSTILE = {
    "open brackets": "[" * N,
    "close brackets": "]" * N,
    "bracket pairs": "[]" * (N // 2),
    "nested brackets": "[" * (N // 2) + "]" * (N // 2),
    "link openers": "[x](" * (N // 4),
    "link tails with a title": '[a](b "c)' * (N // 9),
    "reference openers": "[a][" * (N // 4),
    "image openers": "![" * (N // 2),
    "images with open tails": "![](" * (N // 4),
    "footnote-like": "[^" * (N // 2),
    "brackets and backticks": "[`" * (N // 2),
    "backticks and brackets": "`[" * (N // 2),
    "stars": "*" * N,
    "star words": "*a" * (N // 2),
    "strong words": "**a" * (N // 3),
    "triple stars": "***a" * (N // 4),
    "underscores": "_a" * (N // 2),
    "mixed emphasis": "a*b_" * (N // 4),
    "backticks": "`" * N,
    "code spans": "`a" * (N // 2),
    "uneven backticks": "``a`" * (N // 4),
    "angle brackets": "<" * N,
    "tag openers": "<a" * (N // 2),
    "tags": "<em>" * (N // 4),
    "comments": "<!--" * (N // 4),
    "autolink openers": "<http://" * (N // 8),
    "attributes": "<a href=" * (N // 8),
    "parentheses": "(" * N,
    "exclamations": "!" * N,
    "entities": "&amp;" * (N // 5),
    "backslashes": "\\" * N,
    "quotes": '"' * N,
    "apostrophes": "'" * N,
    "dashes": "--" * (N // 2),
    "blockquote markers": ">" * N,
    "nested blockquotes": "> " * (N // 2),
    "blockquote lines": "".join("> " * depth + "x\n" for depth in range(1, 300))[:N],
    "bullets on one line": "- " * (N // 2),
    "numbers on one line": "1. " * (N // 3),
    "deepening indentation": "".join(" " * depth + "- x\n" for depth in range(446)),
    "paragraphs": "x\n\n" * (N // 3),
    "hard line breaks": "x  \n" * (N // 4),
    "list items": "- x\n" * (N // 4),
    "table rows": ("a|b\n-|-\n" + "x|y\n" * N)[:N],
    "table cells": "a|b\n-|-\n" + "|" * N,
    "wide tables": ("|".join("a" * 3) + "\n") * 2 + "|" * N,
    "fences": "```\n" * (N // 4),
    "tilde fences": "~~~\n" * (N // 4),
    "everything": "[*_`<(!>" * (N // 8),
}


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_markdown_renders_in_well_under_a_second(kind):
    text = HOSTILE[kind]
    assert len(text) >= N * 0.85
    # Processor time, not the clock: other work on a busy machine does not count.
    started = time.process_time()
    render_markdown(text + "\n\nend")
    assert time.process_time() - started < 1.0


def visible_text(rendered: str) -> str:
    return html.fromstring(f"<div>{rendered}</div>").text_content()


@pytest.mark.parametrize(
    "kind",
    ["open brackets", "link openers", "images with open tails", "angle brackets"],
)
def test_markup_taken_away_still_shows_every_character(kind):
    text = HOSTILE[kind]
    shown = visible_text(render_markdown(text))
    for char in set(text):
        assert shown.count(char) == text.count(char), char


def stock_render(text: str, top_level: int = 3) -> str:
    """The renderer as it was before the bounds: Python-Markdown as it comes."""
    rendered = markdown.markdown(
        text,
        extensions=["tables", "sane_lists", "fenced_code", "smarty"],
        output_format="html",
    )
    return nh3.clean(
        _shift_headings(rendered, top_level),
        tags=ALLOWED_TAGS,
        clean_content_tags={"script", "style"},
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )


ORDINARY = [
    "Work hardening is **intensive**, *goal-directed* treatment: see "
    '[Aetna](https://www.aetna.com/ "Aetna") or <https://example.org/>.',
    "A [reference link][cpb] and a [short one].\n\n"
    '[cpb]: https://example.org/cpb "CPB"\n[short one]: https://example.org/short',
    "- one\n- two\n    - nested\n    - nested two\n- three\n\n"
    "1. first\n2. second\n\n3. third",
    "| Code | Meaning |\n|:-----|------:|\n| 97545 | first 2 hours |\n"
    "| 97546 | each *additional* hour |",
    "> A quote\n> over lines\n>\n> > nested",
    "```python\nprint('a < b && c')\n```\n\n~~~\n[not a link](x) *or* `code`\n~~~",
    "Use `code` and ``co`de`` spans; escape \\*this\\* and \\[that\\].",
    "# Heading\n\n## Sub\n\nText with \"quotes\" and 'apostrophes' -- dashes --- "
    "and ellipses...",
    "Line with two spaces  \nbreak. An &amp; entity, &copy; and a "
    '<abbr title="x">tag</abbr>.',
    "![an image](/static/x.png) and ***both*** and __strong__ and _em_ and "
    "snake_case_words",
    "Setext\n======\n\n* * *\n\nPlain   text\twith\ttabs.",
    "Brackets in text [like this] and (parentheses) and a lone ] or [ bracket.",
    "Mixed **bold with [a link](https://example.org/a_(b)) inside** text.",
    "1) paren list\n2) second\n\n- [ ] task-ish\n- [x] done",
    "A <b>raw</b> tag, a < b > c comparison, and <script>alert(1)</script>.",
    '[titled](https://example.org/ "A title") and '
    "[single](https://example.org/ 'Other') and [bare](<https://example.org/x y>)",
    "Nested [[brackets] inside](https://example.org/) and `` `ticks` `` shown.",
    "Windows\r\nline ends\r\n\r\n- and\r\n- a list",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_markdown_renders_as_it_did(text):
    assert render_markdown(text) == stock_render(text.replace("\r\n", "\n"))


@pytest.mark.parametrize("path", sorted(SAMPLE_DATA.glob("*.txt")))
def test_the_seed_documents_render_as_they_did(path):
    text = path.read_text()
    assert render_markdown(text, top_level=2) == stock_render(text, top_level=2)


def test_normal_length_documents_stay_inside_every_bound():
    # The seed policy repeated to the longest text a field takes.
    policy = next(SAMPLE_DATA.glob("policy-*.txt")).read_text()
    text = (policy * (MAX_MARKDOWN_LENGTH // len(policy) + 1))[:MAX_MARKDOWN_LENGTH]
    text = text[: text.rindex("\n\n")]
    assert site_markdown.tame(text) == text


@pytest.fixture
def nurse_nora(django_user_model):
    """A clinic staff member who edits write-ups."""
    return django_user_model.objects.create_user(
        "nora", password="correct horse battery", is_staff=True
    )


@pytest.mark.django_db
def test_the_preview_refuses_an_oversized_text_with_a_clear_message(client, nurse_nora):
    client.force_login(nurse_nora)
    response = client.post(
        reverse("markdownx_markdownify"), {"content": "a" * (MAX_MARKDOWN_LENGTH + 1)}
    )
    assert response.status_code == 400
    assert response.content.decode() == (
        "This text is too long: at most 50000 characters (it has 50001). "
        "Shorten it, or split it between sections."
    )


@pytest.mark.django_db
def test_the_preview_answers_hostile_text_quickly(client, nurse_nora):
    client.force_login(nurse_nora)
    started = time.process_time()
    response = client.post(reverse("markdownx_markdownify"), {"content": "[" * 20_000})
    assert response.status_code == 200
    assert time.process_time() - started < 1.0
    assert visible_text(response.content.decode()).count("[") == 20_000


@pytest.mark.parametrize(
    ("model", "field"),
    [
        (Procedure, "summary"),
        (Procedure, "risks"),
        (Policy, "scope"),
        (Policy, "background"),
        (Payer, "description"),
    ],
)
def test_every_markdown_field_in_the_admin_is_capped(model, field, admin_user):
    request = RequestFactory().get("/")
    request.user = admin_user
    form_field = admin.site._registry[model].formfield_for_dbfield(
        model._meta.get_field(field), request=request
    )
    assert form_field.max_length == MAX_MARKDOWN_LENGTH
    assert form_field.widget.attrs["maxlength"] == str(MAX_MARKDOWN_LENGTH)
    with pytest.raises(Exception, match="too long: at most 50000 characters"):
        form_field.clean("a" * (MAX_MARKDOWN_LENGTH + 1))
    # The browser's CRLF line ends are read as LF, so an untouched field is unchanged.
    assert form_field.clean("one\r\ntwo\rthree") == "one\ntwo\nthree"
    assert not form_field.has_changed("one\ntwo", "one\r\ntwo")


@pytest.mark.django_db
def test_saving_markdown_stores_lf_line_ends(sample_data):
    procedure = Procedure.objects.get(code__code="97546")
    procedure.summary = "First line\r\nsecond line\r\n\r\n- a\r- b"
    procedure.save()
    procedure.refresh_from_db()
    assert procedure.summary == "First line\nsecond line\n\n- a\n- b"
    assert "\r" not in procedure.rendered["summary"]
    policy = Policy.objects.get(number="0198")
    policy.scope = "Scope\r\nlines"
    policy.save()
    policy.refresh_from_db()
    assert policy.scope == "Scope\nlines"


@pytest.mark.django_db
def test_the_payer_page_does_not_render_its_description_every_time(
    client, sample_data, monkeypatch
):
    payer = Payer.objects.get(slug="aetna")
    payer.description = "Aetna’s **clinical policy bulletins**, in plain words."
    payer.save()
    calls = []
    real = markdown.markdown
    monkeypatch.setattr(
        site_markdown.markdown,
        "markdown",
        lambda *args, **kwargs: calls.append(1) or real(*args, **kwargs),
    )
    first = client.get(payer.get_absolute_url()).content.decode()
    second = client.get(payer.get_absolute_url()).content.decode()
    assert "<strong>clinical policy bulletins</strong>" in first
    assert first == second
    assert len(calls) <= 1
