from django import forms
from django.contrib import admin

from carecodes.admin import MARKDOWN_FIELDS
from carecodes.admin_import import (
    DocumentConfirmForm,
    DocumentImportMixin,
    DocumentUploadForm,
)

from .importing import import_policy
from .models import Payer, Policy, PolicyCode, PolicyCodeGroup, PolicyReference
from .parsing import parse_policy


@admin.register(Payer)
class PayerAdmin(admin.ModelAdmin):
    formfield_overrides = MARKDOWN_FIELDS
    list_display = ["name", "slug", "website"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}


class PolicyCodeGroupInline(admin.TabularInline):
    model = PolicyCodeGroup
    fields = ["position", "heading", "coverage", "system"]
    extra = 0
    show_change_link = True


class PolicyReferenceInline(admin.TabularInline):
    model = PolicyReference
    extra = 0


class PolicyUploadForm(DocumentUploadForm):
    payer = forms.CharField(
        required=False,
        max_length=200,
        help_text="The payer's name, if the bulletin does not say whose it is.",
    )


class PolicyConfirmForm(DocumentConfirmForm):
    payer = forms.CharField(widget=forms.HiddenInput, required=False, max_length=200)


@admin.register(Policy)
class PolicyAdmin(DocumentImportMixin, admin.ModelAdmin):
    upload_form = PolicyUploadForm
    confirm_form = PolicyConfirmForm
    document_name = "policy bulletin"
    formfield_overrides = MARKDOWN_FIELDS
    inlines = [PolicyCodeGroupInline, PolicyReferenceInline]
    list_display = ["number", "title", "payer", "status", "last_reviewed_on"]
    list_filter = ["status", "payer", "last_reviewed_on"]
    list_select_related = ["payer"]
    search_fields = ["number", "title", "payer__name"]
    autocomplete_fields = ["related_policies", "replaced_by"]
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["payer", "number", "title", "status", "source_url"]}),
        (
            "Policy",
            {"fields": ["scope", "limitations", "notes", "related_policies"]},
        ),
        ("Codes and background", {"fields": ["code_table_note", "background"]}),
        (
            "Dates",
            {
                "fields": [
                    "effective_on",
                    "last_reviewed_on",
                    "next_review_on",
                    "withdrawn_on",
                    "replaced_by",
                    "created_at",
                    "updated_at",
                ]
            },
        ),
    ]

    def parse_document(self, text, options):
        return parse_policy(text, payer=options.get("payer"))

    def save_document(self, parsed, options, *, dry_run):
        result = import_policy(parsed, dry_run=dry_run)
        return result, result.instance


class PolicyCodeInline(admin.TabularInline):
    model = PolicyCode
    fields = [
        "position",
        "start_code",
        "end_code",
        "seventh_character",
        "is_addon",
        "description",
    ]
    extra = 1


@admin.register(PolicyCodeGroup)
class PolicyCodeGroupAdmin(admin.ModelAdmin):
    inlines = [PolicyCodeInline]
    list_display = ["heading", "policy", "coverage", "system", "position"]
    list_filter = ["coverage", "system", "policy__payer"]
    list_select_related = ["policy__payer"]
    search_fields = ["heading", "policy__number", "policy__title"]
    autocomplete_fields = ["policy"]

    def view_on_site(self, group):
        return group.policy.get_absolute_url()
