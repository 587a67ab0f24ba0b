"""
Admin pieces every content model shares: Markdown widgets, refusing a save based on
an old copy (optimistic locking), and the history with a readable diff and restore.
"""

import difflib
import re

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, router, transaction
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe
from django.utils.text import Truncator, capfirst
from markdownx.widgets import AdminMarkdownxWidget
from simple_history.admin import SimpleHistoryAdmin
from simple_history.template_utils import HistoricalRecordContextHelper

from .markdown import MarkdownField

# Every free-text field of a write-up or policy is Markdown, edited with a live preview
# that goes through carecodes.markdown.render_markdown.
MARKDOWN_FIELDS = {
    models.TextField: {"widget": AdminMarkdownxWidget, "form_class": MarkdownField}
}

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
        if self.starts_from_current and current is not None:
            self._keep_the_rest_of_the_current_row()
        return cleaned

    def _keep_the_rest_of_the_current_row(self):
        """
        A restore puts back the record's values of the form's fields only; the rest
        stays as the row is now. The record's own version would move the count back
        and let forms opened before it save over later changes; its review would
        unseat the live text's approval; its status would publish or withdraw for an
        editor whose form has no status.
        """
        model = type(self.instance)
        now = model._default_manager.get(pk=self.instance.pk)
        for field in model._meta.concrete_fields:
            if field.name not in self.fields and not field.primary_key:
                setattr(self.instance, field.attname, getattr(now, field.attname))

    def _current_version(self, *, lock=False):
        rows = type(self.instance)._default_manager.filter(pk=self.instance.pk)
        if lock:
            rows = rows.select_for_update()
        return rows.values_list("version", flat=True).first()


class RevisionForm(LockedModelForm):
    """The form of a Revisable object shows its working revision, if it has one."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None and self.instance.revision:
            for name, value in self.instance.revision.items():
                if name in self.fields:
                    self.initial[name] = value


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
            f"{label(instance, change.field)} ({what_changed(change.old, change.new)})"
            for change in delta.changes
        ] + [
            f"{label(instance, field)} in the working revision "
            f"({what_changed(before, after)})"
            for field, before, after in revision_changes(records[0], records[-1])
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


def what_changed(old, new) -> str:
    """The words a change took out and put in, shortened: where the change is."""
    if not isinstance(old, str) or not isinstance(new, str):
        return f"now “{Truncator(str(new)).chars(80)}”"
    old_words, new_words = _WORD_RUNS.findall(old), _WORD_RUNS.findall(new)
    matcher = difflib.SequenceMatcher(
        a=[word.strip() for word in old_words],
        b=[word.strip() for word in new_words],
        autojunk=False,
    )
    added, removed = [], []
    # A change that keeps a word or two in the middle reads as one change.
    for group in _merged(matcher.get_opcodes(), gap=2):
        (_tag, i1, _i2, j1, _j2), (*_, i2, _j1, j2) = group[0], group[-1]
        removed.append("".join(old_words[i1:i2]).strip())
        added.append("".join(new_words[j1:j2]).strip())
    parts = []
    for verb, texts in (("added", added), ("removed", removed)):
        if any(texts):
            text = Truncator(" … ".join(filter(None, texts))).chars(120)
            parts.append(f"{verb} “{text}”")
    return ", ".join(parts) or "spacing only"


_WORD_RUNS = re.compile(r"\S+\s*|\s+")


def _merged(opcodes, gap):
    """Runs of changed opcodes, joined across equal stretches of ``gap`` words."""
    groups, current = [], []
    for opcode in opcodes:
        tag, i1, i2, _j1, _j2 = opcode
        if tag == "equal" and (i2 - i1 > gap or not current):
            if current:
                groups.append(current)
            current = []
            continue
        current.append(opcode)
    if current and current[-1][0] == "equal":
        current.pop()
    if current:
        groups.append(current)
    return groups


def label(instance, field_name) -> str:
    return capfirst(instance._meta.get_field(field_name).verbose_name)


def revision_changes(old_record, new_record) -> list[tuple[str, str, str]]:
    """
    The fields changed in a working revision between two historical records, as
    (field name, text before, text after). A published write-up's edits wait in its
    ``revision``, which the history's own diff leaves out (the field is not editable).
    """
    old_revision = getattr(old_record, "revision", None) or {}
    new_revision = getattr(new_record, "revision", None) or {}
    changes = []
    for name in sorted(old_revision.keys() | new_revision.keys()):
        before = old_revision.get(name, getattr(old_record, name))
        after = new_revision.get(name, getattr(new_record, name))
        if before != after:
            changes.append((name, before, after))
    return changes


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

    def context_for_delta_changes(self, delta):
        changes = super().context_for_delta_changes(delta)
        for name, before, after in revision_changes(delta.old_record, delta.new_record):
            old, new = word_diff(before, after)
            field = f"{label(self.model, name)} (working revision)"
            changes.append({"field": field, "old": old, "new": new})
        return changes


class HistoryAdmin(SimpleHistoryAdmin):
    """An admin whose model keeps a history: the history pages show what changed."""

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


class EditorialAdmin(HistoryAdmin):
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

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        # simple-history saves a restore on POST for anyone who may view history.
        if request.method == "POST" and not self.has_change_permission(request):
            raise PermissionDenied
        # In one transaction, as the admin's own change form is: the form locks the
        # row (select_for_update, which PostgreSQL refuses outside a transaction) and
        # the save and its history row go together.
        with transaction.atomic(using=router.db_for_write(self.model)):
            return super().history_form_view(
                request, object_id, version_id, extra_context
            )

    def revert_disabled(self, request, obj=None):
        return not self.has_change_permission(request, obj)

    # Working revisions (carecodes.editorial.Revisable) ------------------------------

    revision_saved_message = (
        "Your changes are kept as a working revision. The public page shows the "
        "published text until the revision is published."
    )

    def edits_wait_in_revision(self, request, stored, obj) -> bool:
        """Whether this save of ``stored`` goes to its revision instead of live."""
        return False

    def save_model(self, request, obj, form, change):
        # A restore's fields outside the form are already the row's current ones
        # (LockedModelForm._keep_the_rest_of_the_current_row).
        stored = type(obj).objects.filter(pk=obj.pk).first() if change else None
        if stored is not None and self.edits_wait_in_revision(request, stored, obj):
            edited = obj.text()
            for name, value in stored.text().items():
                setattr(obj, name, value)
            obj.set_revision(edited)
            if obj.revision:
                self.message_user(request, self.revision_saved_message, messages.INFO)
        elif stored is not None and getattr(stored, "revision", None):
            # The form showed the revision's text, and this save puts it live.
            obj.revision = {}
        super().save_model(request, obj, form, change)

    def preview_link(self, obj) -> str:
        return format_html(
            '<a href="{}">preview</a>',
            reverse(
                f"admin:{obj._meta.app_label}_{obj._meta.model_name}_preview",
                args=[obj.pk],
            ),
        )

    def preview_url(self, view):
        """The admin address of ``view``, a staff preview of the public page."""
        info = self.opts.app_label, self.opts.model_name
        return path(
            "<path:object_id>/preview/",
            self.admin_site.admin_view(self._previewing(view)),
            name="{}_{}_preview".format(*info),
        )

    def _previewing(self, view):
        def preview(request, object_id):
            obj = get_object_or_404(self.get_queryset(request), pk=object_id)
            if not self.has_view_or_change_permission(request, obj):
                raise PermissionDenied
            return view(request, obj)

        return preview

    @admin.action(permissions=["change"], description="Discard the working revision")
    def discard_revision(self, request, queryset):
        done = 0
        for obj in queryset.exclude(revision={}):
            obj.revision = {}
            if hasattr(obj, "revision_review"):
                obj.revision_review = {}
            obj.save()
            done += 1
        self.message_user(
            request, f"{done} left without a working revision.", messages.SUCCESS
        )
