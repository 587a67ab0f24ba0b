import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from django.utils import timezone
from simple_history.models import HistoricalRecords

from carecodes.editorial import Revisable, Versioned, text_digest
from carecodes.markdown import StoredMarkdown

from . import codes


class CodeSystem(models.TextChoices):
    CPT = codes.System.CPT.value, "CPT"
    HCPCS = codes.System.HCPCS.value, "HCPCS Level II"
    ICD10CM = codes.System.ICD10CM.value, "ICD-10-CM"
    ICD10PCS = codes.System.ICD10PCS.value, "ICD-10-PCS"


class PublicationStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"


def _normalize_or_invalid(system: str, code: str, field: str) -> str:
    try:
        return codes.normalize(codes.System(system), code)
    except codes.CodeError as error:
        raise ValidationError({field: str(error)}) from error


class CodeSection(models.Model):
    """A named code range (a CPT section, an ICD-10-CM chapter or block)."""

    class Kind(models.TextChoices):
        CHAPTER = "chapter", "Chapter"
        BLOCK = "block", "Block"
        SECTION = "section", "Section"

    system = models.CharField(max_length=12, choices=CodeSystem.choices)
    slug = models.SlugField(max_length=80)
    name = models.CharField(max_length=300)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.SECTION)
    start_code = models.CharField(max_length=10)
    end_code = models.CharField(max_length=10)
    start_key = models.CharField(max_length=12, editable=False)
    end_key = models.CharField(max_length=13, editable=False)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    depth = models.PositiveSmallIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["system", "start_key", "depth"]
        constraints = [
            models.UniqueConstraint(
                fields=["system", "slug"], name="codesection_unique_slug"
            ),
            models.CheckConstraint(
                condition=models.Q(system__in=CodeSystem.values),
                name="codesection_system_valid",
            ),
        ]
        indexes = [
            # Finding the narrowest section around a code's sort key.
            models.Index(
                fields=["system", "start_key", "end_key"], name="codesection_keys_idx"
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.start_code}–{self.end_code})"

    def save(self, *args, **kwargs):
        system = codes.System(self.system)
        self.start_code = codes.normalize(system, self.start_code)
        self.end_code = codes.normalize(system, self.end_code)
        self.start_key, self.end_key = codes.range_keys(
            system, self.start_code, self.end_code
        )
        self.depth = self.parent.depth + 1 if self.parent_id else 0
        super().save(*args, **kwargs)

    def get_absolute_url(self):
        return reverse(
            "procedures:section", kwargs={"system": self.system, "slug": self.slug}
        )

    def clean(self):
        if not self.system:
            return
        start = _normalize_or_invalid(self.system, self.start_code, "start_code")
        end = _normalize_or_invalid(self.system, self.end_code, "end_code")
        try:
            codes.range_keys(codes.System(self.system), start, end)
        except codes.CodeError as error:
            raise ValidationError({"end_code": str(error)}) from error

    def ancestors(self):
        """Sections from the outermost down to this one's parent."""
        chain = []
        node = self.parent
        while node is not None:
            chain.append(node)
            node = node.parent
        return chain[::-1]


class PcsAxisValueQuerySet(models.QuerySet):
    def for_code(self, code: str) -> list["PcsAxisValue"]:
        """The seven axis values of an ICD-10-PCS code, in position order (one query).

        A value missing from the tables is left out, so a malformed or unknown code
        gives fewer than seven.
        """
        code = code.upper()
        if len(code) != 7:
            return []
        triples = [
            (pcs_axis_prefix(code, position), position, code[position - 1])
            for position in range(1, 8)
        ]
        condition = models.Q()
        for prefix, position, value in triples:
            condition |= models.Q(prefix=prefix, position=position, value=value)
        return sorted(self.filter(condition), key=lambda axis: axis.position)


def pcs_axis_prefix(code: str, position: int) -> str:
    """The characters of ``code`` that fix the meaning of its character at ``position``.

    Positions 1-3 depend on the characters before them; positions 4-7 on the table
    (the first three characters).
    """
    return code[: min(position - 1, 3)]


class PcsAxisValue(models.Model):
    """One value of one ICD-10-PCS axis, with CMS's definition where given."""

    # Characters that fix this value's meaning: "" for position 1, "0" for 2, "0S"
    # for 3, "0SR" (the table) for 4-7.
    prefix = models.CharField(max_length=6, blank=True)
    position = models.PositiveSmallIntegerField()  # 1..7
    value = models.CharField(max_length=1)
    # The official axis title as in the tables: "Section", "Body System",
    # "Operation", "Body Part", "Approach", "Device", "Qualifier" (other sections
    # have other titles).
    axis = models.CharField(max_length=40)
    label = models.CharField(max_length=300)  # e.g. "Knee Joint, Right"
    # CMS's definition (root operations, approaches, devices ...) where given.
    definition = models.TextField(blank=True)
    explanation = models.TextField(blank=True)
    examples = models.TextField(blank=True)

    objects = PcsAxisValueQuerySet.as_manager()

    class Meta:
        ordering = ["prefix", "position", "value"]
        constraints = [
            models.UniqueConstraint(
                fields=["prefix", "position", "value"], name="pcsaxisvalue_unique"
            ),
        ]

    def __str__(self):
        return f"{self.prefix}[{self.position}]={self.value}: {self.axis} {self.label}"


class CodeQuerySet(models.QuerySet):
    def in_system(self, system):
        return self.filter(system=system)

    def in_section(self, section):
        return self.filter(
            system=section.system,
            sort_key__gte=section.start_key,
            sort_key__lte=section.end_key,
        )

    def in_outer_section(self):
        """Codes in the range of the section an enclosing query is on (a subquery)."""
        return self.filter(
            system=models.OuterRef("system"),
            sort_key__gte=models.OuterRef("start_key"),
            sort_key__lte=models.OuterRef("end_key"),
        )


class Code(models.Model):
    system = models.CharField(max_length=12, choices=CodeSystem.choices)
    code = models.CharField(
        max_length=10, help_text="As written on a bill; it is stored in canonical form."
    )
    sort_key = models.CharField(max_length=12, editable=False)
    descriptor = models.TextField(help_text="The official descriptor of the code.")
    is_addon = models.BooleanField(
        "add-on code",
        default=False,
        help_text="Listed separately in addition to a primary procedure code.",
    )
    primary_codes = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="addon_codes",
        help_text="For an add-on code: the codes it is billed with.",
    )
    section = models.ForeignKey(
        CodeSection,
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="codes",
        help_text="The narrowest section whose range holds the code (set on save).",
    )
    is_billable = models.BooleanField(
        default=True,
        help_text="Valid on a claim. ICD-10-CM categories and subcategories are not.",
    )
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="children",
        help_text="The category or subcategory code this code belongs to.",
    )
    notes = models.JSONField(
        default=dict,
        blank=True,
        help_text="Official notes by kind (includes, excludes1, excludes2, code first, "
        "use additional code, 7th characters …): {kind: [text, …]}.",
    )
    source = models.CharField(
        max_length=200, blank=True, help_text="Where the descriptor comes from."
    )
    code_set_year = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="The year of the official code set the descriptor comes from "
        "(2026 for ICD-10-CM FY2026); empty when it comes from elsewhere.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = CodeQuerySet.as_manager()

    class Meta:
        ordering = ["system", "sort_key"]
        constraints = [
            models.UniqueConstraint(fields=["system", "code"], name="code_unique"),
            models.CheckConstraint(
                condition=models.Q(system__in=CodeSystem.values),
                name="code_system_valid",
            ),
        ]
        indexes = [
            # Neighbouring codes, section listings and prefix search by sort key.
            models.Index(
                fields=["system", "sort_key"], name="code_system_sort_key_idx"
            ),
        ]

    def __str__(self):
        return f"{self.get_system_display()} {self.code}"

    def save(self, *args, **kwargs):
        system = codes.System(self.system)
        self.code = codes.normalize(system, self.code)
        self.sort_key = codes.sort_key(system, self.code)
        # Sections are ranges of codes: a code's section follows from its key.
        self.section = self.find_section()
        super().save(*args, **kwargs)

    def get_absolute_url(self):
        return reverse(
            "procedures:code", kwargs={"system": self.system, "code": self.code}
        )

    def clean(self):
        if self.system:
            self.code = _normalize_or_invalid(self.system, self.code, "code")

    @property
    def system_oid(self) -> str:
        """The HL7 OID of the code's system (2.16.840.1.113883.6.4 for ICD-10-PCS)."""
        return codes.SYSTEM_OIDS[codes.System(self.system)]

    def find_section(self):
        """The narrowest section whose range holds this code."""
        return (
            CodeSection.objects.filter(
                system=self.system,
                start_key__lte=self.sort_key,
                end_key__gte=self.sort_key,
            )
            # Sections of one depth can overlap by key (block D3A sorts inside
            # D37-D48); the later start is the tighter fit.
            .order_by("-depth", "-start_key", "end_key")
            .first()
        )


class ProcedureQuerySet(models.QuerySet):
    def published(self):
        return self.filter(status=PublicationStatus.PUBLISHED)

    def never_reviewed(self):
        return self.filter(reviewed_on__isnull=True)

    def review_overdue(self, today=None):
        return self.filter(review_due_on__lt=today or timezone.localdate())


# A write-up is read again by a clinician a year after each review.
REVIEW_INTERVAL = datetime.timedelta(days=365)

# The write-up sections in the order the source pages use.
WRITEUP_SECTIONS = [
    ("summary", "Summary"),
    ("purpose", "Purpose"),
    ("indications", "Indications"),
    ("preparation", "Preparation"),
    ("procedure_description", "Procedure description"),
    ("duration", "Duration"),
    ("setting", "Setting"),
    ("personnel", "Personnel"),
    ("risks", "Risks and complications"),
    ("benefits", "Benefits"),
    ("recovery", "Recovery"),
    ("alternatives", "Alternatives"),
    ("patient_experience", "Patient experience"),
]


class Procedure(StoredMarkdown, Revisable, Versioned, models.Model):
    """A plain-language write-up of the procedure a code stands for."""

    code = models.OneToOneField(
        Code, on_delete=models.CASCADE, related_name="procedure"
    )
    title = models.CharField(
        "plain-language name", max_length=300, help_text="Name of the procedure."
    )
    summary = models.TextField(blank=True)
    purpose = models.TextField(blank=True)
    indications = models.TextField(blank=True)
    preparation = models.TextField(blank=True)
    procedure_description = models.TextField("procedure description", blank=True)
    duration = models.TextField(blank=True)
    setting = models.TextField(blank=True)
    personnel = models.TextField(blank=True)
    risks = models.TextField("risks and complications", blank=True)
    benefits = models.TextField(blank=True)
    recovery = models.TextField(blank=True)
    alternatives = models.TextField(blank=True)
    patient_experience = models.TextField("patient experience", blank=True)
    status = models.CharField(
        max_length=10,
        choices=PublicationStatus.choices,
        default=PublicationStatus.DRAFT,
    )
    # The review speaks for one text: set by a clinical reviewer's approval
    # (approve()), cleared by save() as soon as the text differs from it.
    reviewed_on = models.DateField(null=True, blank=True, editable=False)
    reviewed_by = models.CharField(
        max_length=200, blank=True, editable=False, help_text="The reviewer's name."
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reviewed_text_sha256 = models.CharField(max_length=64, blank=True, editable=False)
    review_due_on = models.DateField(
        "review due",
        null=True,
        blank=True,
        help_text="When a clinician should read it again (a year after each review).",
    )
    # A published write-up's next text (``revision``, carecodes.editorial.Revisable)
    # is edited and reviewed while the public keeps the published one.
    # The approval of that revision: {"by", "on", "reviewer_id", "sha256"}.
    revision_review = models.JSONField(default=dict, blank=True, editable=False)
    rendered = models.JSONField(
        default=dict,
        editable=False,
        help_text="Sanitised HTML of each section, rendered on save.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProcedureQuerySet.as_manager()
    history = HistoricalRecords(excluded_fields=["rendered", "updated_at"])

    # Each section's Markdown sits under its own <h2>, so its headings start at <h3>.
    MARKDOWN_FIELDS = {name: 3 for name, _heading in WRITEUP_SECTIONS}

    class Meta:
        ordering = ["code__system", "code__sort_key"]
        permissions = [
            ("can_publish", "Can publish and unpublish write-ups"),
            ("can_review", "Can approve write-ups as a clinical reviewer"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=PublicationStatus.values),
                name="procedure_status_valid",
            ),
        ]
        indexes = [
            # The admin's list of write-ups whose review is due.
            models.Index(fields=["review_due_on"], name="procedure_review_due_idx"),
        ]

    def __str__(self):
        return f"{self.code.code}: {self.title}"

    def save(self, *args, **kwargs):
        if self.reviewed_text_sha256 != self.text_digest():
            self._clear_review()
        if self.revision_review.get("sha256") != self.revision_digest():
            self.revision_review = {}
        super().save(*args, **kwargs)

    def get_absolute_url(self):
        return self.code.get_absolute_url()

    @property
    def is_published(self):
        return self.status == PublicationStatus.PUBLISHED

    @property
    def is_published_in_database(self) -> bool:
        """Whether the stored row is live (an edited form may say otherwise)."""
        return Procedure.objects.filter(
            pk=self.pk, status=PublicationStatus.PUBLISHED
        ).exists()

    # The text a review approves: the name and every section.
    TEXT_FIELDS = ("title", *(name for name, _heading in WRITEUP_SECTIONS))

    def text_digest(self) -> str:
        return text_digest(self.text())

    def revision_digest(self) -> str:
        return text_digest(self.revised_text()) if self.revision else ""

    @property
    def is_approved(self) -> bool:
        """A clinical reviewer approved exactly the text stored now."""
        return bool(self.reviewed_text_sha256)

    @property
    def revision_is_approved(self) -> bool:
        return bool(self.revision and self.revision_review)

    def approve(self, user, today=None):
        """Record ``user``'s approval of the text they read: the revision, if any."""
        today = today or timezone.localdate()
        name = user.get_full_name() or user.get_username()
        if self.revision:
            self.revision_review = {
                "by": name,
                "on": today.isoformat(),
                "reviewer_id": user.pk,
                "sha256": self.revision_digest(),
            }
            return
        self.reviewed_on, self.reviewed_by, self.reviewer = today, name, user
        self.reviewed_text_sha256 = self.text_digest()
        self.review_due_on = today + REVIEW_INTERVAL

    def publish_revision(self):
        """Put the approved revision live with its review, in this object."""
        review = self.revision_review
        self.apply_revision()
        self.revision_review = {}
        self.reviewed_on = datetime.date.fromisoformat(review["on"])
        self.reviewed_by = review["by"]
        self.reviewer_id = review["reviewer_id"]
        self.reviewed_text_sha256 = self.text_digest()
        self.review_due_on = self.reviewed_on + REVIEW_INTERVAL

    def _clear_review(self):
        self.reviewed_on, self.reviewed_by, self.reviewer = None, "", None
        self.reviewed_text_sha256, self.review_due_on = "", None

    def sections(self):
        """(field name, heading, HTML) for each section that has text, in order."""
        return [
            (name, heading, self.html[name])
            for name, heading in WRITEUP_SECTIONS
            if getattr(self, name).strip()
        ]


class LayTermKind(models.TextChoices):
    CONDITION = "condition", "Condition"
    INJURY = "injury", "Injury"
    SYMPTOM = "symptom", "Symptom"
    PROCEDURE = "procedure", "Procedure"
    TEST = "test", "Test"
    DEVICE = "device", "Device"
    OTHER = "other", "Other"


class LayTerm(models.Model):
    """A phrase people use for a condition or procedure ("broken arm", "flu shot")."""

    phrase = models.CharField(
        max_length=120,
        unique=True,
        help_text="In plain words, as a patient would say it; stored in lower case.",
    )
    kind = models.CharField(max_length=10, choices=LayTermKind.choices)
    source = models.CharField(
        max_length=40,
        default="thesaurus",
        help_text="“thesaurus” for rows from the project's CSV files, “staff” for rows "
        "added in the admin.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        ordering = ["phrase"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=LayTermKind.values),
                name="layterm_kind_valid",
            ),
        ]

    def __str__(self):
        return self.phrase

    def save(self, *args, **kwargs):
        from .lay_terms import normalize_phrase

        self.phrase = normalize_phrase(self.phrase)
        super().save(*args, **kwargs)


class LayTermTarget(models.Model):
    """A code, or a prefix of codes, that a lay phrase means (main meaning first)."""

    term = models.ForeignKey(LayTerm, on_delete=models.CASCADE, related_name="targets")
    system = models.CharField(max_length=12, choices=CodeSystem.choices)
    code = models.CharField(
        max_length=10,
        help_text="A code or the start of codes of its system (S42, H53.0, 0DTJ).",
    )
    position = models.PositiveSmallIntegerField(default=0)

    history = HistoricalRecords()

    class Meta:
        ordering = ["term", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["term", "system", "code"], name="laytermtarget_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(system__in=CodeSystem.values),
                name="laytermtarget_system_valid",
            ),
        ]
        indexes = [
            # "Also called" on a code page: targets equal to one of the code's prefixes.
            models.Index(fields=["system", "code"], name="laytermtarget_code_idx"),
        ]

    def __str__(self):
        return f"{self.get_system_display()} {self.code}"


class LaySynonym(models.Model):
    """A word people use and the words the code sets use for it (broken → fracture)."""

    word = models.CharField(max_length=60, unique=True)
    means = models.CharField(
        max_length=200, help_text="One or more words, separated by spaces."
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["word"]

    def __str__(self):
        return f"{self.word} → {self.means}"
