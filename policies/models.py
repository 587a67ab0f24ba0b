from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from django.utils import timezone
from simple_history.models import HistoricalRecords

from carecodes.editorial import Revisable, Versioned
from carecodes.markdown import StoredMarkdown
from procedures import codes
from procedures.models import CodeSystem, PublicationStatus


class Payer(Versioned, models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    website = models.URLField(blank=True)
    description = models.TextField(blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("policies:payer", kwargs={"payer": self.slug})


class PolicyStatus(models.TextChoices):
    """A draft, then published; withdrawn when the payer retires the policy."""

    DRAFT = PublicationStatus.DRAFT.value, PublicationStatus.DRAFT.label
    PUBLISHED = PublicationStatus.PUBLISHED.value, PublicationStatus.PUBLISHED.label
    WITHDRAWN = "withdrawn", "Withdrawn by the payer"


class PolicyQuerySet(models.QuerySet):
    def published(self):
        return self.filter(status=PolicyStatus.PUBLISHED)

    def public(self):
        """Policies with a public address: published ones, and withdrawn ones (410)."""
        return self.filter(status__in=[PolicyStatus.PUBLISHED, PolicyStatus.WITHDRAWN])


class Policy(StoredMarkdown, Revisable, Versioned, models.Model):
    """A payer's coverage policy, such as an Aetna Clinical Policy Bulletin."""

    payer = models.ForeignKey(Payer, on_delete=models.CASCADE, related_name="policies")
    number = models.CharField(max_length=30, help_text="As the payer writes it: 0198.")
    title = models.CharField(max_length=300)
    status = models.CharField(
        max_length=10,
        choices=PolicyStatus.choices,
        default=PolicyStatus.DRAFT,
        help_text="Withdrawn: the payer retired the policy. Its address then says so "
        "(HTTP 410 Gone) and names its replacement, if any.",
    )
    withdrawn_on = models.DateField(
        null=True, blank=True, help_text="When the payer withdrew the policy."
    )
    replaced_by = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="replaces",
        help_text="The payer's policy that took its place, if any.",
    )
    scope = models.TextField("scope of policy", blank=True)
    limitations = models.TextField("policy, limitations and exclusions", blank=True)
    notes = models.TextField(blank=True)
    code_table_note = models.TextField(
        blank=True, help_text="The note printed above the code table."
    )
    background = models.TextField(blank=True)
    related_policies = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="related_from"
    )
    effective_on = models.DateField(null=True, blank=True)
    last_reviewed_on = models.DateField(null=True, blank=True)
    next_review_on = models.DateField(null=True, blank=True)
    source_url = models.URLField("source address", blank=True)
    rendered = models.JSONField(
        default=dict,
        editable=False,
        help_text="Sanitised HTML of the Markdown fields, rendered on save.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PolicyQuerySet.as_manager()
    history = HistoricalRecords(excluded_fields=["rendered", "updated_at"])

    # The top heading level of each field's Markdown on the policy page: scope and
    # exclusions sit under an <h3> of their own, the rest directly under an <h2>.
    MARKDOWN_FIELDS = {
        "scope": 4,
        "limitations": 4,
        "notes": 3,
        "code_table_note": 3,
        "background": 3,
    }
    # What an author may revise on a published policy (carecodes.editorial.Revisable).
    TEXT_FIELDS = ("title", *MARKDOWN_FIELDS)

    class Meta:
        ordering = ["payer__name", "number"]
        verbose_name_plural = "policies"
        permissions = [
            ("can_publish", "Can publish, unpublish and withdraw policies"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["payer", "number"], name="policy_unique_number_per_payer"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=PolicyStatus.values),
                name="policy_status_valid",
            ),
        ]

    def __str__(self):
        return f"{self.payer} {self.number}: {self.title}"

    def get_absolute_url(self):
        return reverse(
            "policies:policy", kwargs={"payer": self.payer.slug, "number": self.number}
        )

    @property
    def is_published(self):
        return self.status == PolicyStatus.PUBLISHED

    def clean(self):
        super().clean()
        problems = {}
        if self.replaced_by_id is not None:
            if self.replaced_by_id == self.pk:
                problems["replaced_by"] = "A policy cannot replace itself."
            elif self.replaced_by.payer_id != self.payer_id:
                problems["replaced_by"] = "Choose a policy of the same payer."
        if not self.is_withdrawn and (self.withdrawn_on or self.replaced_by_id):
            problems["status"] = (
                "Only a withdrawn policy has a withdrawal date or a replacement: "
                "set the status to withdrawn, or clear them."
            )
        if problems:
            raise ValidationError(problems)

    @property
    def is_withdrawn(self):
        return self.status == PolicyStatus.WITHDRAWN


class Coverage(models.TextChoices):
    COVERED = "covered", "Covered"
    CRITERIA = "criteria", "Covered when criteria are met"
    NOT_COVERED = "not-covered", "Not covered"
    INFORMATIONAL = "informational", "Listed for information"


class PolicyCodeGroup(Versioned, models.Model):
    """One group of the policy's code table, under the heading the source gives it."""

    policy = models.ForeignKey(
        Policy, on_delete=models.CASCADE, related_name="code_groups"
    )
    heading = models.CharField(max_length=300)
    coverage = models.CharField(max_length=15, choices=Coverage.choices)
    system = models.CharField(max_length=12, choices=CodeSystem.choices)
    position = models.PositiveSmallIntegerField(default=0)

    history = HistoricalRecords()

    class Meta:
        ordering = ["policy", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(coverage__in=Coverage.values),
                name="policycodegroup_coverage_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(system__in=CodeSystem.values),
                name="policycodegroup_system_valid",
            ),
        ]

    def __str__(self):
        return self.heading

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        if self._system_changed():
            # Rows copy the group's system for their key lookup; keep them in step.
            for row in self.codes.all():
                row.group = self
                row.save()
        self._loaded_system = self.system

    def clean(self):
        if self._system_changed() and self.codes.exists():
            raise ValidationError(
                {
                    "system": "This group already lists codes of another system. "
                    "Remove them first, or start a new group for these codes."
                }
            )

    # The system as loaded, to notice a change without querying on every save.
    @classmethod
    def from_db(cls, *args, **kwargs):
        group = super().from_db(*args, **kwargs)
        group._loaded_system = group.__dict__.get("system")
        return group

    def _system_changed(self) -> bool:
        loaded = getattr(self, "_loaded_system", None)
        return loaded is not None and loaded != self.system


class PolicyCodeQuerySet(models.QuerySet):
    def naming(self, system, code):
        """
        Rows of published policies that name ``code``, by itself or through a range.

        One indexed query: a code's sort key lies between a row's start and end keys.
        """
        return self.naming_key(system, codes.sort_key(codes.System(system), code))

    def naming_key(self, system, key):
        """``naming`` by sort key; either may be an expression (``OuterRef``)."""
        return self.filter(
            system=system,
            start_key__lte=key,
            end_key__gte=key,
            group__policy__status=PolicyStatus.PUBLISHED,
        )

    def mentions_of(self, code) -> list["Mention"]:
        """One mention per published policy naming ``code``; a listing beats a range."""
        return self.mentions_of_codes([(code.system, code.code)])[
            (code.system, code.code)
        ]

    def mentions_of_codes(self, pairs) -> dict[tuple[str, str], list["Mention"]]:
        """
        ``mentions_of`` for several (system, code) pairs at once, in one query: for
        each pair, one mention per published policy naming the code, by payer and
        number. A policy that lists the code by itself is mentioned for that row,
        before any range of it that holds the code too (``Mention.listed``).
        """
        keyed = {
            (system, code): codes.sort_key(codes.System(system), code)
            for system, code in pairs
        }
        if not keyed:
            return {}
        found = {pair: {} for pair in keyed}
        condition = models.Q()
        for (system, _code), key in keyed.items():
            condition |= models.Q(system=system, start_key__lte=key, end_key__gte=key)
        rows = (
            self.filter(condition, group__policy__status=PolicyStatus.PUBLISHED)
            .select_related("group__policy__payer")
            .order_by("group__policy__payer__name", "group__policy__number", "position")
        )
        for row in rows:
            for (system, code), key in keyed.items():
                if row.system != system or not row.start_key <= key <= row.end_key:
                    continue
                listed = not row.is_range and row.start_code == code
                mentions = found[(system, code)]
                current = mentions.get(row.group.policy_id)
                if current is None or (listed and not current.listed):
                    mentions[row.group.policy_id] = Mention(
                        row.group.policy, row, listed
                    )
        return {pair: list(mentions.values()) for pair, mentions in found.items()}


@dataclass(frozen=True)
class Mention:
    """A policy naming a code, by listing it or through a range or category row."""

    policy: "Policy"
    row: "PolicyCode"
    listed: bool

    @property
    def group(self):
        return self.row.group


class PolicyCode(models.Model):
    """One row of a policy's code table: a single code or a range of codes."""

    group = models.ForeignKey(
        PolicyCodeGroup, on_delete=models.CASCADE, related_name="codes"
    )
    # Copied from the group so that the lookup by key needs no join.
    system = models.CharField(max_length=12, choices=CodeSystem.choices, editable=False)
    start_code = models.CharField("code", max_length=10)
    end_code = models.CharField(
        "range ends at", max_length=10, blank=True, help_text="Empty for a single code."
    )
    seventh_character = models.BooleanField(
        "any 7th character",
        default=False,
        help_text="Written with “+”: the code(s) need a 7th character.",
    )
    is_addon = models.BooleanField("add-on (+)", default=False)
    description = models.TextField(blank=True)
    start_key = models.CharField(max_length=12, editable=False)
    end_key = models.CharField(max_length=13, editable=False)
    position = models.PositiveSmallIntegerField(default=0)

    objects = PolicyCodeQuerySet.as_manager()
    history = HistoricalRecords(excluded_fields=["start_key", "end_key"])

    class Meta:
        ordering = ["group", "position", "id"]
        indexes = [
            # PolicyCodeQuerySet.naming: system = ? AND start_key <= ? AND end_key >= ?
            models.Index(
                fields=["system", "start_key", "end_key"], name="policycode_keys_idx"
            ),
        ]

    def __str__(self):
        return self.display

    def save(self, *args, **kwargs):
        self.system = self.group.system
        self._apply_range(codes.System(self.system))
        super().save(*args, **kwargs)

    def clean(self):
        # In the admin the group may be new and unsaved, but its system is known.
        try:
            system = self.group.system
        except PolicyCodeGroup.DoesNotExist:
            return
        if not system:
            return
        try:
            self._apply_range(codes.System(system))
        except codes.CodeError as error:
            raise ValidationError(str(error)) from error

    def _apply_range(self, system):
        # Read the row as the source writes it, markers included, so that the rules
        # for "+" (add-on on CPT and HCPCS, 7th character on short ICD-10-CM codes)
        # hold for rows typed in the admin as for rows imported from a bulletin.
        written = f"+ {self.display}" if self.is_addon else self.display
        parsed = codes.parse_range(system, written)
        self.start_code = parsed.start
        self.end_code = parsed.end if parsed.is_range else ""
        self.start_key, self.end_key = parsed.start_key, parsed.end_key

    @property
    def is_range(self):
        return bool(self.end_code)

    @property
    def display(self):
        """The row's code or range as the source writes it (“S00.00X+ - T88.9XX+”)."""
        mark = "+" if self.seventh_character else ""
        text = f"{self.start_code}{mark}"
        if self.end_code:
            text += f" - {self.end_code}{mark}"
        return text


class PolicyReference(models.Model):
    policy = models.ForeignKey(
        Policy, on_delete=models.CASCADE, related_name="references"
    )
    position = models.PositiveSmallIntegerField()
    citation = models.TextField()

    history = HistoricalRecords()

    class Meta:
        ordering = ["policy", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "position"], name="policyreference_unique_position"
            ),
        ]

    def __str__(self):
        return f"{self.position}. {self.citation[:80]}"


class PolicyVersion(models.Model):
    """
    A policy's content as it stood after an import or an edit changed it.

    ``content`` holds the whole of it in one record (``policies.versions.snapshot``):
    title, dates, Markdown sections, the complete code table with each row's sort
    keys, and the references, so a page reads any version, or two to compare, with
    one query whatever the size of the table.
    """

    policy = models.ForeignKey(
        Policy, on_delete=models.CASCADE, related_name="versions"
    )
    number = models.PositiveIntegerField(help_text="1 for the first version, then 2 …")
    # Copied from ``content``: versions are listed and addressed by their review date.
    last_reviewed_on = models.DateField(null=True, blank=True)
    content = models.JSONField()
    # SHA-256 of ``content``: an import compares it to leave an unchanged policy be.
    digest = models.CharField(max_length=64)
    note = models.CharField(
        max_length=200,
        blank=True,
        help_text="How the version came: an import, an edit.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["policy", "number"]
        constraints = [
            # Also the index of "a policy's versions, newest first".
            models.UniqueConstraint(
                fields=["policy", "number"], name="policyversion_unique_number"
            ),
        ]

    def __str__(self):
        return f"{self.policy} (version {self.number})"

    def get_absolute_url(self):
        return reverse(
            "policies:version",
            kwargs={
                "payer": self.policy.payer.slug,
                "number": self.policy.number,
                "version": self.address,
            },
        )

    @property
    def address(self) -> str:
        """The version's part of its address: its number (dates may repeat)."""
        return str(self.number)


class PolicyCodeChange(models.Model):
    """
    A code or range a version added, removed or moved (as its sort keys), so that a
    code page finds the versions that may have changed its status in one indexed
    query, as ``PolicyCodeQuerySet.naming`` finds the policies naming it.
    """

    version = models.ForeignKey(
        PolicyVersion, on_delete=models.CASCADE, related_name="code_changes"
    )
    system = models.CharField(max_length=12, choices=CodeSystem.choices)
    start_key = models.CharField(max_length=12)
    end_key = models.CharField(max_length=13)

    class Meta:
        indexes = [
            # policies.versions.code_history: system = ? AND start_key <= ? AND
            # end_key >= ?
            models.Index(
                fields=["system", "start_key", "end_key"],
                name="policycodechange_keys_idx",
            ),
        ]

    def __str__(self):
        return f"{self.system} {self.start_key}–{self.end_key}"
