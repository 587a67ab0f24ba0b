"""
Signals for writes that bypass ``Model.save()``.

An import that bulk-writes a policy's code groups, code rows or references sends
``policy_content_changed`` afterwards, so that derived data (the search index, similar
codes) sees the policy's new code table.
"""

from django.dispatch import Signal

# Sent with ``policy`` (the Policy whose groups, rows or references were rewritten).
policy_content_changed = Signal()
