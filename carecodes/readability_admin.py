"""
Reading grades in the admin, for the authors of write-ups.

``ReadabilityAdminMixin`` gives a ModelAdmin whose Markdown sections are listed in
``readability_sections`` (a write-up's, unless it says otherwise):

- in the change form, each section's grade under its label: the saved text's as the
  page opens (so it shows without JavaScript), then the typed text's as the author
  writes (static/js/readability.js asks this mixin's endpoint);
- in the change list, a ``reading_grade`` column with the hardest section.

Grades only warn: nothing here stops a save.
"""

import hashlib
import json

from django import forms
from django.contrib import admin
from django.core.cache import cache
from django.http import HttpResponseNotAllowed, JsonResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from procedures.models import WRITEUP_SECTIONS

from . import readability

# Far past any section a patient should read; keeps one request's cost small.
MAX_TEXT_LENGTH = 20_000
# The change list's grades, keyed by the text they were measured on, so they never go
# stale; the version part changes when the measure does.
CACHE_KEY = "readability:v1:{}"
CACHE_SECONDS = 30 * 24 * 60 * 60
NOT_CACHED = object()


class ReadabilityForm(forms.Form):
    TOO_LONG = (
        f"Too long to grade: the limit is {MAX_TEXT_LENGTH:,} characters a section."
    )

    text = forms.CharField(
        required=False,
        strip=False,
        max_length=MAX_TEXT_LENGTH,
        error_messages={"max_length": TOO_LONG},
    )


class ReadabilityAdminMixin:
    """Reading grades for a ModelAdmin's Markdown sections; put it before ModelAdmin."""

    # (field name, heading) pairs, in the order the form shows them.
    readability_sections: list[tuple[str, str]] = WRITEUP_SECTIONS

    @property
    def media(self):
        return super().media + forms.Media(
            css={"all": ["css/readability.css"]}, js=["js/readability.js"]
        )

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "readability/",
                self.admin_site.admin_view(self.readability_view),
                name="{}_{}_readability".format(*info),
            ),
            *super().get_urls(),
        ]

    def readability_view(self, request):
        """The grades of one posted text, as JSON, for the change form's script."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        # Whoever may write the text may see its grade: an author adding a new one too.
        if not (
            self.has_change_permission(request) or self.has_add_permission(request)
        ):
            return JsonResponse(
                {"error": "Only those who may write this text can grade it."},
                status=403,
            )
        form = ReadabilityForm(request.POST)
        if not form.is_valid():
            return JsonResponse({"error": form.errors["text"][0]}, status=400)
        return JsonResponse(readability.grade(form.cleaned_data["text"]).as_dict())

    def render_change_form(self, request, context, *args, **kwargs):
        form = context["adminform"].form
        url = reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}"
            "_readability"
        )
        for name, _heading in self.readability_sections:
            if name not in form.fields:
                continue
            # The text the form shows: the saved one, or the one just posted back.
            bound = form[name]
            text = bound.value() or ""
            if len(text) > MAX_TEXT_LENGTH:
                hard, message = True, ReadabilityForm.TOO_LONG
            else:
                grade = readability.grade(text)
                hard, message = grade.is_hard, grade.message
            field = form.fields[name]
            note = format_html(
                '<span class="reading-grade{}" aria-live="polite" '
                'data-readability-url="{}" data-readability-input="{}">{}</span>',
                " reading-grade--hard" if hard else "",
                url,
                bound.auto_id,
                message,
            )
            # Admin templates show help text as HTML, so the model's is trusted too.
            # The bound field keeps its own copy, for the template and aria-describedby.
            field.help_text = bound.help_text = (
                format_html("{}<br>{}", mark_safe(field.help_text), note)
                if field.help_text
                else note
            )
        return super().render_change_form(request, context, *args, **kwargs)

    @admin.display(description="reading grade (hardest section)")
    def reading_grade(self, obj):
        hardest = self.hardest_section(obj)
        if hardest is None:
            return None
        grade = hardest.grade
        return format_html(
            '<span class="reading-grade{}" title="{}">{}{} ({})</span>',
            " reading-grade--hard" if grade.is_hard else "",
            grade.message,
            "Hard: " if grade.is_hard else "",
            f"{grade.value:.1f}",
            hardest.heading,
        )

    def hardest_section(self, obj) -> readability.SectionGrade | None:
        """The section of ``obj`` with the highest reading grade, if any has text."""
        texts = {
            name: getattr(obj, name) or "" for name, _ in self.readability_sections
        }
        key = CACHE_KEY.format(
            hashlib.sha256(json.dumps(texts, sort_keys=True).encode()).hexdigest()
        )
        # A list page grades up to 100 write-ups of 13 sections: up to a second of
        # textstat the first time, a cache read after.
        hardest = cache.get(key, NOT_CACHED)
        if hardest is NOT_CACHED:
            hardest = readability.writeup_grades(
                texts, self.readability_sections
            ).hardest
            cache.set(key, hardest, CACHE_SECONDS)
        return hardest
