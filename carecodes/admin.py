"""
Admin pieces every content model shares: Markdown widgets, refusing a save based on
an old copy (optimistic locking), and the history with a readable diff and restore.
"""

import difflib
import re

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.text import Truncator, capfirst
from markdownx.widgets import AdminMarkdownxWidget
from simple_history.admin import SimpleHistoryAdmin
from simple_history.template_utils import HistoricalRecordContextHelper

# Every free-text field of a write-up or policy is Markdown, edited with a live preview
# that goes through carecodes.markdown.render_markdown.
MARKDOWN_FIELDS = {models.TextField: {"widget": AdminMarkdownxWidget}}

# The hidden field that carries the version an editor opened.
BASE_VERSION = "base_version"


class LockedModelForm(forms.ModelForm):
    """
    Refuses to save over changes made since the editor opened the form.

    The form carries the row's ``version`` (carecodes.editorial.Versioned) as it was
    when the page was drawn. On submit the row is read again, locked for the rest of
    the transaction (the admin saves in one), and a different version means someone
    else saved in between: the save is refused, the editor's text stays in the form,
    and the message says who changed what.
    """

    base_version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    # A restore (the history's form) starts from the row as it is now.
    starts_from_current = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields[BASE_VERSION].initial = (
                self._current_version()
                if self.starts_from_current
                else self.instance.version
            )

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is None:
            return cleaned
        base = cleaned.get(BASE_VERSION)
        current = self._current_version(lock=True)
        if current is not None and base != current:
            raise ValidationError(stale_message(self.instance, base), code="stale")
        return cleaned

    def _current_version(self, *, lock=False):
        rows = type(self.instance)._default_manager.filter(pk=self.instance.pk)
        if lock:
            rows = rows.select_for_update()
        return rows.values_list("version", flat=True).first()


def stale_message(instance, base_version) -> str:
    """Who changed ``instance`` since ``base_version``, and which fields."""
    name = instance._meta.verbose_name
    history = getattr(instance, "history", None)
    if history is None or base_version is None:
        return (
            f"This {name} was changed by someone else after you opened it. Your "
            "changes are not saved: copy them, reload the page and apply them again."
        )
    records = list(history.filter(version__gte=base_version).order_by("history_date"))
    changes = []
    if len(records) > 1:
        delta = records[-1].diff_against(records[0])
        changes = [
            f"{capfirst(instance._meta.get_field(change.field).verbose_name)} "
            f"(now “{Truncator(str(change.new)).chars(80)}”)"
            for change in delta.changes
        ]
    who = sorted(
        {
            record.history_user.get_full_name() or record.history_user.get_username()
            for record in records[1:]
            if record.history_user
        }
    )
    return (
        f"This {name} was changed by {', '.join(who) or 'someone else'} after you "
        f"opened it: {'; '.join(changes) or 'its stored version moved on'}. Your "
        "changes are not saved, and they are still in the form below: copy them, "
        "reload the page to see the current text, and apply them again."
    )


_WORDS = re.compile(r"\s+|[^\s]+")


def word_diff(old: str, new: str) -> tuple[str, str]:
    """Both texts as HTML, with the words taken out in <del> and put in in <ins>."""
    old_words, new_words = _WORDS.findall(old or ""), _WORDS.findall(new or "")
    old_html, new_html = [], []
    matcher = difflib.SequenceMatcher(a=old_words, b=new_words, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        taken, added = (
            escape("".join(old_words[i1:i2])),
            escape("".join(new_words[j1:j2])),
        )
        if tag == "equal":
            old_html.append(taken)
            new_html.append(added)
            continue
        if taken:
            old_html.append(f"<del>{taken}</del>")
        if added:
            new_html.append(f"<ins>{added}</ins>")
    # Every word went through escape() above.
    return mark_safe("".join(old_html)), mark_safe("".join(new_html))


class DiffContextHelper(HistoricalRecordContextHelper):
    """The history's "Changes" column: text as a word diff, not cut short."""

    def stringify_delta_change_values(self, change, old, new):
        if isinstance(old, str | type(None)) and isinstance(new, str | type(None)):
            return word_diff(old or "", new or "")
        return super().stringify_delta_change_values(change, old, new)


class EditorialAdmin(SimpleHistoryAdmin):
    """
    A content model's admin: locked saves, history with a diff, and a restore that
    only those allowed to change the object can make.
    """

    form = LockedModelForm

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        named = [name for _title, options in fieldsets for name in options["fields"]]
        if obj is None or BASE_VERSION in named:
            return fieldsets
        (title, options), *rest = fieldsets
        return [
            (title, {**options, "fields": [*options["fields"], BASE_VERSION]}),
            *rest,
        ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        match = request.resolver_match
        if match and match.url_name and match.url_name.endswith("_simple_history"):
            form = type(form.__name__, (form,), {"starts_from_current": True})
        return form

    def get_history_queryset(self, request, history_manager, pk_name, object_id):
        # simple-history's own version calls select_related() with no names for a
        # model without foreign keys, which Django 6.1 deprecates.
        tracked = [
            field.name
            for field in history_manager.model.tracked_fields
            if isinstance(field, models.ForeignKey)
        ]
        return history_manager.filter(**{pk_name: object_id}).select_related(
            "history_user", *tracked
        )

    def get_historical_record_context_helper(self, request, historical_record):
        return DiffContextHelper(self.model, historical_record)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        # simple-history saves a restore on POST for anyone who may view history.
        if request.method == "POST" and not self.has_change_permission(request):
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)

    def revert_disabled(self, request, obj=None):
        return not self.has_change_permission(request, obj)
