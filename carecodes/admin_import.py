"""
"Import a document" for the admin changelists of policies and write-ups.

Two steps, both POST with CSRF: the upload is parsed and imported as a dry run, and
the page shows the document's problems or a preview of what would change. Only the
confirm step writes, in one transaction. The confirm form carries the document's text
(a hidden field, parsed again on confirm), so no upload is kept on the server and
what is saved is exactly what was previewed. If the object changed meanwhile (its
version moved on), the confirm step is refused and says what changed.

Permissions: a document that creates an object needs *add*, one that changes an
existing object needs *change*; a model's admin can ask for more
(``import_refusal``), such as *publish* to change a published policy.
"""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from carecodes.admin import stale_message
from carecodes.importing import (
    CREATED,
    MAX_DOCUMENT_BYTES,
    ImportRefused,
    Problem,
    decode_document,
)


class DocumentUploadForm(forms.Form):
    document = forms.FileField(
        label="Document",
        help_text=f"Plain text (UTF-8), at most {MAX_DOCUMENT_BYTES // 1024} kB.",
    )

    def clean_document(self):
        upload = self.cleaned_data["document"]
        if upload.size > MAX_DOCUMENT_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size // 1024} kB; a document may be at most "
                f"{MAX_DOCUMENT_BYTES // 1024} kB."
            )
        try:
            self.text = decode_document(upload.read())
        except ImportRefused as refused:
            raise forms.ValidationError(
                [str(problem) for problem in refused.problems]
            ) from refused
        return upload


class DocumentConfirmForm(forms.Form):
    """The previewed document, sent back to be saved."""

    # A textarea keeps the line breaks that a hidden <input> may lose.
    text = forms.CharField(
        widget=forms.Textarea(attrs={"hidden": True}),
        max_length=MAX_DOCUMENT_BYTES,
        strip=False,
    )
    file_name = forms.CharField(
        widget=forms.HiddenInput, required=False, max_length=255
    )
    # The version of the object the preview was made against (0: a new object).
    base_version = forms.IntegerField(widget=forms.HiddenInput, min_value=0)


class DocumentImportMixin:
    """Adds the import view to a ModelAdmin; subclasses parse and save."""

    # The form's extra fields (the write-up's code, say) go on both steps.
    upload_form = DocumentUploadForm
    confirm_form = DocumentConfirmForm
    document_name = "document"

    def parse_document(self, text: str, options: dict):
        raise NotImplementedError

    def save_document(self, parsed, options: dict, *, dry_run: bool):
        """Import ``parsed``; returns (ImportResult, saved object or None)."""
        raise NotImplementedError

    def import_refusal(self, request, result, stored) -> str | None:
        """Why this user may not save what ``result`` shows, or None."""
        name = self.opts.verbose_name
        if result.action == CREATED and not self.has_add_permission(request):
            return f"You may not add a {name}: ask for the permission to add them."
        if (
            stored is not None
            and result.changed
            and not self.has_change_permission(request, stored)
        ):
            return (
                f"This document would change the stored {name} “{stored}”, and you "
                f"may not change it: ask for the permission to change {name}s."
            )
        return None

    def has_import_permission(self, request):
        return self.has_add_permission(request) or self.has_change_permission(request)

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="{}_{}_import".format(*info),
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_import_document": self.has_import_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def import_view(self, request):
        if not self.has_import_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Import a {self.document_name}",
            "document_name": self.document_name,
            "max_kb": MAX_DOCUMENT_BYTES // 1024,
        }
        if request.method != "POST":
            return self._render(request, context, upload=self.upload_form())
        if "confirm" in request.POST:
            return self._confirm(request, context)
        upload = self.upload_form(request.POST, request.FILES)
        if not upload.is_valid():
            return self._render(request, context, upload=upload, status=400)
        options = {
            name: value
            for name, value in upload.cleaned_data.items()
            if name != "document"
        }
        options["file_name"] = upload.cleaned_data["document"].name
        return self._preview(request, context, upload, upload.text, options)

    def _attempt(self, request, text, options, *, dry_run, base_version=None):
        """Parse and save (or only compare); returns (problems, result, saved)."""
        parsed = self.parse_document(text, options)
        if parsed.problems:
            return list(parsed.problems), None, None
        try:
            with transaction.atomic():
                # What is stored now, as the document would find it.
                result, saved = self.save_document(parsed, options, dry_run=True)
                stored = saved if saved is not None and saved.pk else None
                refusal = self.import_refusal(request, result, stored)
                version = stored.version if stored is not None else 0
                if refusal is None and base_version not in (None, version):
                    refusal = stale_message(stored or saved, base_version)
                if refusal is not None:
                    raise ImportRefused([Problem(1, refusal)])
                if not dry_run:
                    result, saved = self.save_document(parsed, options, dry_run=False)
        except ImportRefused as refused:
            return refused.problems, None, None
        return [], result, saved

    def _preview(self, request, context, upload, text, options):
        problems, result, saved = self._attempt(request, text, options, dry_run=True)
        if problems:
            return self._render(
                request, context, upload=upload, problems=problems, status=400
            )
        version = saved.version if saved is not None and saved.pk else 0
        confirm = self.confirm_form(
            initial={"text": text, "base_version": version, **options},
        )
        return self._render(
            request, context, upload=upload, result=result, confirm=confirm
        )

    def _confirm(self, request, context):
        confirm = self.confirm_form(request.POST)
        if not confirm.is_valid():
            return self._render(
                request,
                context,
                upload=self.upload_form(),
                problems=[
                    f"{name}: {' '.join(errors)}"
                    for name, errors in confirm.errors.items()
                ],
                status=400,
            )
        options = {
            name: value
            for name, value in confirm.cleaned_data.items()
            if name not in ("text", "base_version")
        }
        text = confirm.cleaned_data["text"]
        problems, result, saved = self._attempt(
            request,
            text,
            options,
            dry_run=False,
            base_version=confirm.cleaned_data["base_version"],
        )
        if problems:
            return self._render(
                request,
                context,
                upload=self.upload_form(),
                problems=problems,
                status=400,
            )
        messages.success(request, result.summary())
        if saved is not None and saved.pk:
            target = reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
                args=[saved.pk],
                current_app=self.admin_site.name,
            )
        else:
            target = reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist",
                current_app=self.admin_site.name,
            )
        return HttpResponseRedirect(target)

    def _render(self, request, context, *, status=200, **more):
        return TemplateResponse(
            request,
            "admin/import_document.html",
            {**context, **more},
            status=status,
        )
