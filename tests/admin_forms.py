"""Reading admin pages as a browser would, to post them back."""

from lxml import html


def form_data(response, form="//form[contains(@id, '_form')]") -> dict:
    """The values a browser would submit from the page's ``form`` (an XPath)."""
    tree = html.fromstring(response.content.decode())
    form = tree.xpath(form)[0]
    data = dict(form.form_values())
    for textarea in form.xpath(".//textarea[@name]"):
        # A browser drops the newline Django writes after <textarea>.
        data[textarea.name] = data[textarea.name].removeprefix("\n")
    return data


def messages(response) -> list[str]:
    """The admin's messages and form errors, as text."""
    tree = html.fromstring(response.content.decode())
    return [
        " ".join(node.text_content().split())
        for node in tree.xpath(
            "//ul[contains(@class,'messagelist')]/li"
            " | //*[contains(@class,'errornote')]"
            " | //ul[contains(@class,'errorlist')]/li"
        )
    ]
