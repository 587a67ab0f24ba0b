"""
"Import a document" for the admin changelists of policies and write-ups.

Two steps, both POST with CSRF: the upload is parsed and imported as a dry run, and
the page shows the document's problems or a preview of what would change. Only the
confirm step writes, in one transaction. The confirm form carries the document's text
(a hidden field, parsed again on confirm), so no upload is kept on the server and
what is saved is exactly what was previewed, unless the database changed meanwhile,
in which case the confirm step imports against the current rows.
"""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from procedures.importing import MAX_DOCUMENT_BYTES, ImportRefused, decode_document


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
            "can_import_document": self.has_add_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def import_view(self, request):
        if not self.has_add_permission(request):
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

    def _attempt(self, text, options, *, dry_run):
        """Parse and save (or only compare); returns (problems, result, saved)."""
        parsed = self.parse_document(text, options)
        if parsed.problems:
            return list(parsed.problems), None, None
        try:
            with transaction.atomic():
                result, saved = self.save_document(parsed, options, dry_run=dry_run)
        except ImportRefused as refused:
            return refused.problems, None, None
        return [], result, saved

    def _preview(self, request, context, upload, text, options):
        problems, result, _saved = self._attempt(text, options, dry_run=True)
        if problems:
            return self._render(
                request, context, upload=upload, problems=problems, status=400
            )
        confirm = self.confirm_form(
            initial={"text": text, **options},
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
            if name != "text"
        }
        text = confirm.cleaned_data["text"]
        problems, result, saved = self._attempt(text, options, dry_run=False)
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
