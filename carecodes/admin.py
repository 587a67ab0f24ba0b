from django.db import models
from markdownx.widgets import AdminMarkdownxWidget

# Every free-text field of a write-up or policy is Markdown, edited with a live preview
# that goes through carecodes.markdown.render_markdown.
MARKDOWN_FIELDS = {models.TextField: {"widget": AdminMarkdownxWidget}}
