"""
Editorial bookkeeping shared by the content models: versions for optimistic locking,
working revisions of published text, and digests of a text that a reviewer approved.

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


class Revisable(models.Model):
    """
    Published text with a working revision beside it.

    ``revision`` holds, for the fields of ``TEXT_FIELDS`` that differ, the next text
    staff are writing; pages keep showing the stored fields until the revision is
    applied (``apply_revision``), in one save.
    """

    # {field name: text} for the fields the revision changes.
    revision = models.JSONField(default=dict, blank=True, editable=False)

    TEXT_FIELDS: tuple[str, ...] = ()

    class Meta:
        abstract = True

    def text(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in self.TEXT_FIELDS}

    def revised_text(self) -> dict[str, str]:
        """The text with the working revision applied (the text itself if none)."""
        return self.text() | self.revision

    def set_revision(self, values: dict[str, str]):
        """Keep ``values`` as the working revision; the published text stays."""
        stored = self.text()
        self.revision = {
            name: value
            for name, value in values.items()
            if name in stored and value != stored[name]
        }

    def apply_revision(self):
        """Put the revision's text in the fields (saved by the caller)."""
        for name, value in self.revision.items():
            setattr(self, name, value)
        self.revision = {}

    def revised_copy(self):
        """An unsaved copy showing the revision, rendered afresh, for a preview."""
        copy = type(self).objects.get(pk=self.pk)
        for name, value in self.revision.items():
            setattr(copy, name, value)
        copy.rendered = {}
        return copy
