from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import ngettext

from carecodes.admin import MARKDOWN_FIELDS
from carecodes.admin_import import (
    DocumentConfirmForm,
    DocumentImportMixin,
    DocumentUploadForm,
)

from .importing import WRITEUP_SOURCE, code_from_file_name, import_procedure
from .models import (
    WRITEUP_SECTIONS,
    Code,
    CodeSection,
    Procedure,
    PublicationStatus,
)
from .parsing import parse_procedure


@admin.register(CodeSection)
class CodeSectionAdmin(admin.ModelAdmin):
    list_display = ["name", "system", "kind", "start_code", "end_code", "parent"]
    list_filter = ["system", "kind"]
    search_fields = ["name", "start_code", "end_code", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    autocomplete_fields = ["parent"]


@admin.register(Code)
class CodeAdmin(admin.ModelAdmin):
    list_display = ["code", "system", "descriptor", "is_addon", "section"]
    list_filter = ["system", "is_addon"]
    search_fields = ["code", "descriptor"]
    autocomplete_fields = ["primary_codes"]
    readonly_fields = ["section", "updated_at"]
    list_select_related = ["section"]


class ProcedureUploadForm(DocumentUploadForm):
    code = forms.CharField(
        required=False,
        max_length=20,
        help_text="The code the write-up describes, if the text does not say "
        "(a file named procedure-97546-….txt gives it too).",
    )
    replace_published = forms.BooleanField(
        required=False,
        label="Replace a published write-up",
        help_text="Put the new text live at once if the code's write-up is "
        "published. Without it, a published write-up is left alone.",
    )


class ProcedureConfirmForm(DocumentConfirmForm):
    code = forms.CharField(widget=forms.HiddenInput, required=False, max_length=20)
    replace_published = forms.BooleanField(widget=forms.HiddenInput, required=False)


@admin.register(Procedure)
class ProcedureAdmin(DocumentImportMixin, admin.ModelAdmin):
    upload_form = ProcedureUploadForm
    confirm_form = ProcedureConfirmForm
    document_name = "write-up"
    formfield_overrides = MARKDOWN_FIELDS
    list_display = ["code", "title", "status", "reviewed_on", "updated_at"]
    list_filter = ["status", "code__system", "reviewed_on"]
    list_select_related = ["code"]
    search_fields = ["code__code", "title", "summary"]
    autocomplete_fields = ["code"]
    readonly_fields = ["created_at", "updated_at"]
    actions = ["publish", "unpublish"]
    fieldsets = [
        (None, {"fields": ["code", "title", "status"]}),
        ("Write-up", {"fields": [name for name, _heading in WRITEUP_SECTIONS]}),
        (
            "Review",
            {"fields": ["reviewed_on", "reviewed_by", "created_at", "updated_at"]},
        ),
    ]

    def parse_document(self, text, options):
        code = options.get("code") or code_from_file_name(options.get("file_name", ""))
        return parse_procedure(text, code=code)

    def save_document(self, parsed, options, *, dry_run):
        result = import_procedure(
            parsed,
            descriptor_source=WRITEUP_SOURCE,
            replace_published=options.get("replace_published", False),
            dry_run=dry_run,
        )
        return result, result.instance

    @admin.action(description="Publish the selected write-ups")
    def publish(self, request, queryset):
        changed = 0
        for procedure in queryset.exclude(status=PublicationStatus.PUBLISHED):
            procedure.status = PublicationStatus.PUBLISHED
            procedure.reviewed_on = procedure.reviewed_on or timezone.localdate()
            procedure.save()
            changed += 1
        self.message_user(
            request,
            ngettext("%d write-up published.", "%d write-ups published.", changed)
            % changed,
            messages.SUCCESS,
        )

    @admin.action(description="Return the selected write-ups to draft")
    def unpublish(self, request, queryset):
        changed = 0
        for procedure in queryset.filter(status=PublicationStatus.PUBLISHED):
            procedure.status = PublicationStatus.DRAFT
            procedure.save()
            changed += 1
        self.message_user(
            request,
            ngettext(
                "%d write-up returned to draft.",
                "%d write-ups returned to draft.",
                changed,
            )
            % changed,
            messages.SUCCESS,
        )
