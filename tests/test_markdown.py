"""The one Markdown renderer: what staff write shows, and nothing they type runs."""

import re
from pathlib import Path

import pytest
from lxml import html as lxml_html

from carecodes.markdown import render_markdown

ACCEPTANCE = Path(__file__).resolve().parent / "data" / "acceptance"
PAYLOADS_FILE = ACCEPTANCE / "xss-payloads.txt"

EVENT_ATTRIBUTE_PREFIX = "on"
DANGEROUS_TAGS = {
    "script",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "form",
    "input",
    "button",
    "textarea",
    "select",
    "style",
    "link",
    "meta",
    "base",
    "svg",
    "math",
    "video",
    "audio",
    "source",
    "body",
    "html",
    "head",
    "template",
    "xml",
}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "background"}


SAFE_SCHEMES = {None, "http", "https", "mailto", "tel"}
C0_AND_SPACE = "".join(chr(n) for n in range(0x21))
SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")


def url_scheme(value: str) -> str | None:
    """The scheme a browser would read from an attribute value (None: relative)."""
    # The URL standard drops tabs and newlines anywhere, and trims C0 controls and
    # spaces at both ends, before it looks for a scheme.
    cleaned = re.sub(r"[\t\n\r]", "", value).strip(C0_AND_SPACE)
    match = SCHEME.match(cleaned)
    return match.group(1).lower() if match else None


def assert_harmless(rendered: str) -> None:
    """Parse the output as a browser would and look for anything that could run."""
    if not rendered.strip():
        return
    fragments = lxml_html.fragments_fromstring(rendered)
    for fragment in fragments:
        if isinstance(fragment, str):
            continue
        for element in fragment.iter():
            if not isinstance(element.tag, str):
                continue
            assert element.tag.lower() not in DANGEROUS_TAGS, rendered
            for name, value in element.attrib.items():
                assert not name.lower().startswith(EVENT_ATTRIBUTE_PREFIX), rendered
                assert name.lower() != "style", rendered
                if name.lower() in URL_ATTRIBUTES:
                    assert url_scheme(value) in SAFE_SCHEMES, rendered


def load_payloads() -> list[str]:
    if not PAYLOADS_FILE.exists():
        pytest.fail(f"The XSS payload corpus is missing: {PAYLOADS_FILE}")
    return PAYLOADS_FILE.read_text(encoding="utf-8").splitlines()


def test_headings_lists_tables_and_links_survive():
    rendered = render_markdown(
        "# Preparation\n\n"
        "- Wear comfortable clothing.\n- Bring your forms.\n\n"
        "1. Assessment\n2. Plan\n\n"
        "| Code | Meaning |\n|---|---|\n| 97546 | Each additional hour |\n\n"
        "See [the policy](https://www.aetna.com/cpb/0198.html) and **ask** questions."
    )
    assert "<h3>Preparation</h3>" in rendered
    assert "<li>Wear comfortable clothing.</li>" in rendered
    assert "<ol>" in rendered
    assert "<td>97546</td>" in rendered
    assert 'href="https://www.aetna.com/cpb/0198.html"' in rendered
    assert "<strong>ask</strong>" in rendered


def test_a_level_one_heading_becomes_a_subheading_so_pages_keep_one_h1():
    assert render_markdown("# Title") == "<h3>Title</h3>"


def test_headings_start_under_the_section_heading_and_never_skip_a_level():
    assert (
        render_markdown("### Deep\n\n#### Deeper") == "<h3>Deep</h3>\n<h4>Deeper</h4>"
    )


@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>",
        "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
        '<img src="x" onerror="alert(1)">',
        '<a href="#" onclick="alert(1)">click</a>',
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        '<a href="data:text/html,<script>alert(1)</script>">x</a>',
        "![x](javascript:alert(1))",
        '<iframe src="https://evil.example"></iframe>',
        "<svg onload=alert(1)>",
        '<div style="background:url(javascript:alert(1))">x</div>',
        '<form action="https://evil.example"><input name=q></form>',
        "<object data=x.swf></object><embed src=x.swf>",
        '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    ],
)
def test_scripts_handlers_and_dangerous_links_are_removed(source):
    rendered = render_markdown(source)
    assert_harmless(rendered)
    assert "alert(1)</script>" not in rendered


def test_no_payload_in_the_public_corpus_survives():
    payloads = load_payloads()
    assert len(payloads) == 790
    for payload in payloads:
        assert_harmless(render_markdown(payload))
        assert_harmless(render_markdown(f"Some text\n\n{payload}\n\n- a list"))


def test_links_open_safely():
    rendered = render_markdown("[site](https://example.org)")
    assert 'rel="noopener noreferrer nofollow"' in rendered


def test_empty_text_renders_nothing():
    assert render_markdown("") == ""
    assert render_markdown(None) == ""
