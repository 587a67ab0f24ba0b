from django import forms
from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, Q
from django.utils.html import format_html
from django.utils.translation import ngettext

from carecodes.admin import MARKDOWN_FIELDS, EditorialAdmin, HistoryAdmin, RevisionForm
from carecodes.admin_import import (
    DocumentConfirmForm,
    DocumentImportMixin,
    DocumentUploadForm,
)
from carecodes.editorial import text_digest
from carecodes.readability_admin import ReadabilityAdminMixin
from policies.models import PolicyCode

from . import lay_terms
from .importing import WRITEUP_SOURCE, code_from_file_name, import_procedure
from .models import (
    WRITEUP_SECTIONS,
    Code,
    CodeSection,
    CodeSystem,
    LaySynonym,
    LayTerm,
    LayTermTarget,
    PcsAxisValue,
    Procedure,
    PublicationStatus,
)
from .parsing import parse_procedure
from .views import code_page_preview


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


@admin.register(PcsAxisValue)
class PcsAxisValueAdmin(admin.ModelAdmin):
    """The ICD-10-PCS tables as imported (import_icd10pcs): read-only."""

    list_display = ["prefix", "position", "value", "axis", "label"]
    list_filter = ["position", "axis"]
    search_fields = ["prefix", "label", "definition"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LayTermTargetForm(forms.ModelForm):
    class Meta:
        model = LayTermTarget
        fields = ["system", "code", "position"]

    def clean(self):
        cleaned = super().clean()
        system, code = cleaned.get("system"), cleaned.get("code")
        if system and code:
            code = lay_terms.normalize_target(system, code)
            if not Code.objects.filter(system=system, code__startswith=code).exists():
                self.add_error(
                    "code",
                    f"No {CodeSystem(system).label} code is or starts with {code}: "
                    "a phrase may only point at codes that exist.",
                )
            cleaned["code"] = code
            self.instance.code = code
        return cleaned


class LayTermTargetInline(admin.TabularInline):
    model = LayTermTarget
    form = LayTermTargetForm
    extra = 1
    min_num = 1
    help_text = "Codes or code prefixes (S42, H53.0), main meaning first."


class LayTermForm(forms.ModelForm):
    class Meta:
        model = LayTerm
        fields = ["phrase", "kind"]

    def clean_phrase(self):
        phrase = lay_terms.normalize_phrase(self.cleaned_data["phrase"])
        if not phrase:
            raise forms.ValidationError("Write the phrase as people say it.")
        return phrase


@admin.register(LayTerm)
class LayTermAdmin(HistoryAdmin):
    """Phrases people use; rows added or edited here are marked "staff", and
    manage.py import_lay_terms (which loads the CSV files) leaves them as they are."""

    form = LayTermForm
    inlines = [LayTermTargetInline]
    list_display = ["phrase", "kind", "source", "updated_at"]
    list_filter = ["kind", "source"]
    search_fields = ["phrase", "targets__code"]
    readonly_fields = ["source", "updated_at"]

    def save_model(self, request, obj, form, change):
        obj.source = lay_terms.STAFF
        super().save_model(request, obj, form, change)


class LaySynonymForm(forms.ModelForm):
    class Meta:
        model = LaySynonym
        fields = ["word", "means"]

    def clean_word(self):
        return lay_terms.normalize_phrase(self.cleaned_data["word"])

    def clean_means(self):
        return lay_terms.normalize_phrase(self.cleaned_data["means"])


@admin.register(LaySynonym)
class LaySynonymAdmin(HistoryAdmin):
    form = LaySynonymForm
    list_display = ["word", "means"]
    search_fields = ["word", "means"]


class ProcedureUploadForm(DocumentUploadForm):
    code = forms.CharField(
        required=False,
        max_length=20,
        help_text="The code the write-up describes, if the text does not say "
        "(a file named procedure-97546-….txt gives it too).",
    )
    replace_published = forms.BooleanField(
        required=False,
        label="Revise a published write-up",
        help_text="If the code's write-up is published, keep the new text as its "
        "working revision, for review and publishing; the public keeps the published "
        "text until then. Without it, a published write-up is left alone.",
    )


class ProcedureConfirmForm(DocumentConfirmForm):
    code = forms.CharField(widget=forms.HiddenInput, required=False, max_length=20)
    replace_published = forms.BooleanField(widget=forms.HiddenInput, required=False)


class ProcedureForm(RevisionForm):
    def clean(self):
        cleaned = super().clean()
        stored = self.instance
        going_live = cleaned.get("status") == PublicationStatus.PUBLISHED and not (
            stored.pk is not None and stored.is_published_in_database
        )
        if going_live:
            text = {
                name: cleaned.get(name, getattr(stored, name))
                for name in stored.TEXT_FIELDS
            }
            if stored.reviewed_text_sha256 != text_digest(text):
                self.add_error(
                    "status",
                    "A clinical reviewer has not approved this text yet: save it as "
                    "a draft and ask for a review, then publish it.",
                )
        return cleaned


class ReviewFilter(admin.SimpleListFilter):
    title = "review"
    parameter_name = "review"

    def lookups(self, request, model_admin):
        return [
            ("overdue", "Review overdue"),
            ("never", "Never reviewed"),
            ("revision", "Revision waiting"),
            ("policy", "A policy changed since the review"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "overdue":
            return queryset.review_overdue()
        if self.value() == "never":
            return queryset.never_reviewed()
        if self.value() == "revision":
            return queryset.exclude(revision={})
        if self.value() == "policy":
            return queryset.filter(policy_revised_since_review=True)
        return queryset


@admin.register(Procedure)
class ProcedureAdmin(ReadabilityAdminMixin, DocumentImportMixin, EditorialAdmin):
    upload_form = ProcedureUploadForm
    confirm_form = ProcedureConfirmForm
    document_name = "write-up"
    form = ProcedureForm
    formfield_overrides = MARKDOWN_FIELDS
    list_display = [
        "code",
        "title",
        "status",
        "review_state",
        "review_due_on",
        "reading_grade",
        "updated_at",
    ]
    list_filter = [ReviewFilter, "status", "code__system", "reviewed_on"]
    list_select_related = ["code"]
    search_fields = ["code__code", "title", "summary"]
    autocomplete_fields = ["code"]
    actions = ["approve", "publish", "unpublish", "discard_revision"]
    fieldsets = [
        (None, {"fields": ["code", "title", "status"]}),
        ("Write-up", {"fields": [name for name, _heading in WRITEUP_SECTIONS]}),
        (
            "Review",
            {
                "fields": [
                    "review_state",
                    "review_due_on",
                    "created_at",
                    "updated_at",
                ]
            },
        ),
    ]

    def get_queryset(self, request):
        # A published policy naming the code (by itself or in a range) that its payer
        # reviewed, or this site updated, after the write-up's own review: the
        # write-up may be out of date.
        revised = PolicyCode.objects.naming_key(
            OuterRef("code__system"), OuterRef("code__sort_key")
        ).filter(
            Q(group__policy__last_reviewed_on__gt=OuterRef("reviewed_on"))
            | Q(group__policy__updated_at__date__gt=OuterRef("reviewed_on"))
        )
        return (
            super()
            .get_queryset(request)
            .annotate(policy_revised_since_review=Exists(revised))
        )

    def get_readonly_fields(self, request, obj=None):
        fields = ["review_state", "created_at", "updated_at"]
        if not self.has_publish_permission(request):
            fields.append("status")
        if not self.has_review_permission(request):
            fields.append("review_due_on")
        return fields

    def has_publish_permission(self, request):
        return request.user.has_perm("procedures.can_publish")

    def has_delete_permission(self, request, obj=None):
        # Deleting a live write-up takes it off the public site: a publisher's call.
        return super().has_delete_permission(request, obj) and (
            obj is None or not obj.is_published or self.has_publish_permission(request)
        )

    def has_review_permission(self, request):
        return request.user.has_perm("procedures.can_review")

    def get_urls(self):
        return [self.preview_url(code_page_preview), *super().get_urls()]

    @admin.display(description="review")
    def review_state(self, procedure):
        if procedure.revision:
            waiting = (
                f"approved by {procedure.revision_review['by']}"
                if procedure.revision_review
                else "not yet approved"
            )
            state = f"Revision waiting, {waiting}"
        elif procedure.is_approved:
            on = procedure.reviewed_on.strftime("%-d %b %Y")
            state = f"Approved by {procedure.reviewed_by} on {on}"
        else:
            state = "Not yet reviewed"
        if getattr(procedure, "policy_revised_since_review", False):
            state += "; a policy naming this code was revised since"
        if procedure.pk is None:
            return state
        return format_html("{} · {}", state, self.preview_link(procedure))

    revision_saved_message = (
        "Your changes are kept as a working revision. The public page shows the "
        "published text until a clinical reviewer approves the revision and it is "
        "published."
    )

    def edits_wait_in_revision(self, request, stored, obj):
        # Edits of a live write-up wait in its revision, unless a publisher is
        # taking it off the site with them.
        return stored.is_published and obj.is_published

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

    def _report(self, request, done, skipped, verb):
        if done:
            self.message_user(
                request,
                ngettext(f"%d write-up {verb}.", f"%d write-ups {verb}.", done) % done,
                messages.SUCCESS,
            )
        for procedure, why in skipped:
            self.message_user(request, f"{procedure}: {why}", messages.WARNING)

    @admin.action(
        permissions=["review"], description="Approve the text of the selected write-ups"
    )
    def approve(self, request, queryset):
        done = 0
        for procedure in queryset:
            procedure.approve(request.user)
            procedure.save()
            done += 1
        self._report(request, done, [], "approved")

    @admin.action(permissions=["publish"], description="Publish the selected write-ups")
    def publish(self, request, queryset):
        done, skipped = 0, []
        for procedure in queryset:
            if procedure.revision:
                if not procedure.revision_is_approved:
                    skipped.append((procedure, "its revision is not approved yet."))
                    continue
                procedure.publish_revision()
            elif procedure.is_published:
                continue
            elif not procedure.is_approved:
                skipped.append(
                    (procedure, "a clinical reviewer has not approved this text yet.")
                )
                continue
            procedure.status = PublicationStatus.PUBLISHED
            procedure.save()
            done += 1
        self._report(request, done, skipped, "published")

    @admin.action(
        permissions=["publish"], description="Return the selected write-ups to draft"
    )
    def unpublish(self, request, queryset):
        done = 0
        for procedure in queryset.filter(status=PublicationStatus.PUBLISHED):
            procedure.status = PublicationStatus.DRAFT
            procedure.save()
            done += 1
        self._report(request, done, [], "returned to draft")
