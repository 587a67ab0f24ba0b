from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import ngettext

from carecodes.admin import MARKDOWN_FIELDS

from .models import (
    WRITEUP_SECTIONS,
    Code,
    CodeSection,
    Procedure,
    PublicationStatus,
)


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


@admin.register(Procedure)
class ProcedureAdmin(admin.ModelAdmin):
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
