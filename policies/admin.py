from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from carecodes.admin import (
    BASE_VERSION,
    MARKDOWN_FIELDS,
    EditorialAdmin,
    LockedModelForm,
    RevisionForm,
)
from carecodes.admin_import import (
    DocumentConfirmForm,
    DocumentImportMixin,
    DocumentUploadForm,
)

from .importing import import_policy
from .models import (
    Payer,
    Policy,
    PolicyCode,
    PolicyCodeGroup,
    PolicyReference,
    PolicyStatus,
)
from .parsing import parse_policy
from .versions import record_version
from .views import policy_page_preview

# A version's note, shown on its public page: staff names stay in the admin.
EDITED = "Edited on this site"


class RecordsVersions:
    """
    An admin whose saves may change a policy's content: once the object and its
    inlines are saved (the admin logs the change in the same transaction), the
    policy gets a new version if its content differs from the latest one.
    """

    def policy_of(self, obj):
        return obj

    def log_addition(self, request, obj, message):
        entry = super().log_addition(request, obj, message)
        record_version(self.policy_of(obj), note=EDITED)
        return entry

    def log_change(self, request, obj, message):
        entry = super().log_change(request, obj, message)
        record_version(self.policy_of(obj), note=EDITED)
        return entry


def may_change_content(user, policy) -> bool:
    """A draft is its authors'; what the public reads changes only by a publisher."""
    return policy.status == PolicyStatus.DRAFT or user.has_perm("policies.can_publish")


@admin.register(Payer)
class PayerAdmin(EditorialAdmin):
    formfield_overrides = MARKDOWN_FIELDS
    list_display = ["name", "slug", "website"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}


class PolicyCodeGroupInline(admin.TabularInline):
    model = PolicyCodeGroup
    form = LockedModelForm
    fields = ["position", "heading", "coverage", "system", BASE_VERSION]
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
class PolicyAdmin(RecordsVersions, DocumentImportMixin, EditorialAdmin):
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
    readonly_fields = ["revision_state", "created_at", "updated_at"]
    form = RevisionForm
    actions = ["publish_revision", "discard_revision"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "payer",
                    "number",
                    "title",
                    "status",
                    "revision_state",
                    "source_url",
                ]
            },
        ),
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

    def has_publish_permission(self, request):
        return request.user.has_perm("policies.can_publish")

    def get_readonly_fields(self, request, obj=None):
        fields = [*super().get_readonly_fields(request, obj)]
        if not self.has_publish_permission(request):
            # Publishing, unpublishing and withdrawing are a publisher's; so is
            # changing what the public reads on a published policy. An author's
            # edits of a published policy's text wait in its working revision.
            fields += ["status", "withdrawn_on", "replaced_by"]
            if obj is not None and obj.status != PolicyStatus.DRAFT:
                revisable = obj.TEXT_FIELDS if obj.is_published else ()
                return [
                    *fields,
                    *(name for name in self._content_fields() if name not in revisable),
                ]
        return fields

    def edits_wait_in_revision(self, request, stored, obj):
        return stored.is_published and not self.has_publish_permission(request)

    def get_urls(self):
        return [self.preview_url(policy_page_preview), *super().get_urls()]

    @admin.display(description="working revision")
    def revision_state(self, policy):
        if policy.pk is None or not policy.revision:
            return "None: the page shows the stored text."
        return format_html(
            "Changes to {} wait to be published · {}",
            ", ".join(
                str(Policy._meta.get_field(name).verbose_name)
                for name in policy.revision
            ),
            self.preview_link(policy),
        )

    @admin.action(permissions=["publish"], description="Publish the working revision")
    def publish_revision(self, request, queryset):
        done = 0
        for policy in queryset.exclude(revision={}):
            policy.apply_revision()
            policy.save()
            record_version(policy, note=EDITED)
            done += 1
        self.message_user(
            request, f"{done} working revisions published.", messages.SUCCESS
        )

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (
            obj is None or self._may_change_content(request, obj)
        )

    def get_inlines(self, request, obj):
        if obj is not None and not self._may_change_content(request, obj):
            return []
        return super().get_inlines(request, obj)

    def _content_fields(self):
        return [
            name
            for _title, options in self.fieldsets
            for name in options["fields"]
            if name not in ("created_at", "updated_at")
        ]

    def _may_change_content(self, request, policy):
        return may_change_content(request.user, policy)

    def import_refusal(self, request, result, stored):
        refusal = super().import_refusal(request, result, stored)
        if refusal is None and stored is not None and result.changed:
            if not self._may_change_content(request, stored):
                return (
                    f"“{stored}” is {stored.get_status_display().lower()}: changing "
                    "what the public reads needs the permission to publish policies."
                )
        return refusal

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
class PolicyCodeGroupAdmin(RecordsVersions, EditorialAdmin):
    def policy_of(self, group):
        return group.policy

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        record_version(obj.policy, note=EDITED)

    def delete_queryset(self, request, queryset):
        policies = {group.policy for group in queryset.select_related("policy")}
        super().delete_queryset(request, queryset)
        for policy in policies:
            record_version(policy, note=EDITED)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (
            obj is None or may_change_content(request.user, obj.policy)
        )

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (
            obj is None or may_change_content(request.user, obj.policy)
        )

    inlines = [PolicyCodeInline]
    list_display = ["heading", "policy", "coverage", "system", "position"]
    list_filter = ["coverage", "system", "policy__payer"]
    list_select_related = ["policy__payer"]
    search_fields = ["heading", "policy__number", "policy__title"]
    autocomplete_fields = ["policy"]

    def view_on_site(self, group):
        return group.policy.get_absolute_url()
