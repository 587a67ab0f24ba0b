"""
The bookkeeping every importer shares (write-ups, policy bulletins, the generic
policy files, code sets, content backups): the problems a parser reports with their
line, a refusal carrying them, what an import changed (``Change``, ``ImportResult``),
``sync`` for one row written only when it differs, and the reading of an uploaded
document. A leaf: it imports no app (``.importlinter``), so every layer may use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """Something in a document that could not be read; ``line`` counts from 1."""

    line: int
    message: str

    def __str__(self):
        return f"line {self.line}: {self.message}"


CREATED = "created"
UPDATED = "updated"
UNCHANGED = "unchanged"
REPLACED = "replaced"


class ImportRefused(Exception):
    """The document cannot be saved as it stands; ``problems`` say why."""

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(str(problem) for problem in problems))
        self.problems = problems


@dataclass
class Change:
    """One row (or one table of rows) an import creates, updates or leaves alone."""

    label: str
    action: str
    # For an update: {field name: (stored value, new value)}; for a creation the
    # stored value is None.
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    # For a replaced table: its rows as text, before and after.
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    # A code table, reference list or set of links, rather than one row.
    is_table: bool = False
    # The model of a row, for the fields' verbose names.
    model: Any = None

    def field_rows(self) -> list[tuple[str, str, str]]:
        """(field name as staff read it, stored value, new value) for a preview."""
        rows = []
        for name, (old, new) in self.fields.items():
            label = name
            if self.model is not None:
                label = str(self.model._meta.get_field(name).verbose_name)
            rows.append((label.capitalize(), _shown(old), _shown(new)))
        return rows


def _shown(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


@dataclass
class ImportResult:
    """What an import did, or with ``dry_run`` what it would do."""

    label: str
    dry_run: bool = False
    changes: list[Change] = field(default_factory=list)
    # The main object's own action (the policy or the write-up), for the summary.
    action: str = UNCHANGED
    # Codes the document names, created or not: (system, code).
    codes: set[tuple[str, str]] = field(default_factory=set)
    # The saved policy or write-up (unsaved in a dry run).
    instance: Any = None
    # Sentences the commands print under the summary, in a dry run too: the policy
    # versions an import records (policies.versions.record_version).
    notes: list[str] = field(default_factory=list)

    def count(self, action: str, *, tables: bool = False) -> int:
        return sum(
            1
            for change in self.changes
            if change.action == action and change.is_table == tables
        )

    @property
    def changed(self) -> list[Change]:
        return [change for change in self.changes if change.action != UNCHANGED]

    def summary(self) -> str:
        """One line: what happened to the main object and to the rows around it."""
        tables = sum(1 for change in self.changed if change.is_table)
        parts = [
            f"{self.count(CREATED)} rows created",
            f"{self.count(UPDATED)} updated",
            f"{tables} tables written",
        ]
        verb = {CREATED: "created", UPDATED: "updated"}.get(self.action, "unchanged")
        if self.dry_run:
            verb = f"would be {verb}" if self.action != UNCHANGED else "unchanged"
        return f"{self.label}: {verb} ({', '.join(parts)})"


def sync(
    model,
    lookup: dict,
    values: dict,
    result: ImportResult,
    label: str,
    *,
    dry_run: bool,
    instance=None,
    known_new: bool = False,
):
    """Create or update one row, saving only when a value differs.

    ``known_new`` skips the lookup when the row cannot exist yet (its parent is
    new in a dry run, so it has no primary key to look up by).
    """
    if instance is None and not known_new:
        instance = model.objects.filter(**lookup).first()
    if instance is None:
        instance = model(**lookup, **values)
        if not dry_run:
            instance.save()
        result.changes.append(
            Change(
                label,
                CREATED,
                {name: (None, value) for name, value in values.items()},
                model=model,
            )
        )
        return instance, CREATED
    changed = {
        name: (getattr(instance, name), value)
        for name, value in values.items()
        if getattr(instance, name) != value
    }
    if not changed:
        result.changes.append(Change(label, UNCHANGED))
        return instance, UNCHANGED
    for name, (_old, value) in changed.items():
        setattr(instance, name, value)
    if not dry_run:
        instance.save()
    result.changes.append(Change(label, UPDATED, changed, model=model))
    return instance, UPDATED


# Documents are small: the seed bulletin is 10 kB. A limit keeps a wrong file (a PDF,
# a database dump) from being read into memory and parsed.
MAX_DOCUMENT_BYTES = 512 * 1024


def decode_document(data: bytes) -> str:
    """The text of an uploaded or read document; refuses what is not UTF-8 text."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ImportRefused(
            [
                Problem(
                    1,
                    f"The file is {len(data) // 1024} kB; a document may be at most "
                    f"{MAX_DOCUMENT_BYTES // 1024} kB.",
                )
            ]
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ImportRefused(
            [
                Problem(
                    line,
                    "This line is not UTF-8 text. Save the document as plain text "
                    "(UTF-8) and try again.",
                )
            ]
        ) from error
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise ImportRefused(
            [Problem(line, "The file holds binary data, not a text document.")]
        )
    return text
