"""
Editorial bookkeeping shared by the content models: versions for optimistic locking,
and digests of a text that a reviewer approved.

A leaf module: it imports Django only, so the content apps can use it.
"""

import hashlib
import json

from django.db import models


class Versioned(models.Model):
    """
    A row that counts its saves, so a save based on an old copy can be refused.

    Every ``save()`` of a stored row moves ``version`` on by one, whatever path saved
    it (admin, action, import, restore). An editor's form carries the version it was
    opened at; the admin refuses the save when the row has moved since
    (``carecodes.admin.LockedForm``).
    """

    version = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            self.version += 1
            update_fields = kwargs.get("update_fields")
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "version"}
        super().save(*args, **kwargs)


def text_digest(values: dict[str, str]) -> str:
    """SHA-256 of named texts, line endings and outer blank space aside."""
    normal = {
        name: (value or "").replace("\r\n", "\n").replace("\r", "\n").strip()
        for name, value in sorted(values.items())
    }
    return hashlib.sha256(
        json.dumps(normal, ensure_ascii=False, sort_keys=True).encode()
    ).hexdigest()
