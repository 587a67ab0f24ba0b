"""The shapes of the API's answers, as they appear in its OpenAPI document."""

import datetime

from ninja import Field, Schema

from .base import PageMeta


class Problem(Schema):
    location: str = Field(description="Where: query.page, path.code …")
    message: str


class Invalid(Schema):
    detail: str = Field(description="Every problem, in plain words.")
    errors: list[Problem]


class CodeRef(Schema):
    system: str = Field(description="System slug: cpt, hcpcs, icd-10-cm, icd-10-pcs.")
    system_label: str = Field(description="CPT, HCPCS Level II, ICD-10-CM …")
    code: str = Field(description="The code in its canonical form.")
    descriptor: str
    url: str = Field(description="The code's page on the site.")
    api_url: str


class SectionRef(Schema):
    name: str
    slug: str
    start_code: str
    end_code: str
    url: str


class CodeLinks(Schema):
    children: str
    policies: str
    similar: str
    writeup: str | None = Field(description="Set when a write-up is published.")


class CodeDetail(CodeRef):
    is_billable: bool
    is_addon: bool = Field(description="Listed in addition to a primary procedure.")
    parent: CodeRef | None
    section: SectionRef | None
    primary_codes: list[CodeRef] = Field(description="For an add-on: billed with.")
    addon_codes: list[CodeRef] = Field(description="Add-on codes billed with it.")
    notes: dict[str, list[str]] = Field(
        description="Official notes by kind (includes, excludes1 …)."
    )
    source: str = Field(description="Where the descriptor comes from.")
    code_set_year: int | None
    links: CodeLinks


class CodePage(PageMeta):
    items: list[CodeRef]


class PayerRef(Schema):
    slug: str
    name: str
    url: str
    api_url: str


class PolicyRef(Schema):
    payer: PayerRef
    number: str
    title: str
    url: str
    api_url: str


class PolicySummary(PolicyRef):
    effective_on: datetime.date | None
    last_reviewed_on: datetime.date | None
    next_review_on: datetime.date | None


class PolicyPage(PageMeta):
    items: list[PolicySummary]


class CodeRow(Schema):
    display: str = Field(description="As the policy writes it: S00.00X+ - T88.9XX+.")
    start_code: str
    end_code: str | None = Field(description="Set for a range.")
    is_range: bool
    seventh_character: bool = Field(description="Any 7th character (written “+”).")
    is_addon: bool
    description: str


class Mention(Schema):
    policy: PolicyRef
    heading: str = Field(description="The heading of the policy's code group.")
    coverage: str = Field(
        description="covered, criteria, not-covered or informational."
    )
    coverage_label: str
    listed: bool = Field(description="True: listed by itself; false: by a range.")
    row: CodeRow


class MentionPage(PageMeta):
    items: list[Mention]


class Reason(Schema):
    kind: str
    text: str


class SimilarEntry(Schema):
    rank: int
    code: CodeRef
    reasons: list[Reason] = Field(description="Why, strongest first.")


class SimilarPage(PageMeta):
    items: list[SimilarEntry]


class MarkdownText(Schema):
    name: str
    heading: str
    markdown: str = Field(description="The source, as staff wrote it.")
    html: str = Field(description="The sanitised HTML the site shows.")


class WriteupSummary(Schema):
    code: CodeRef
    title: str
    reviewed_on: datetime.date | None
    reviewed_by: str
    updated_at: datetime.datetime
    url: str
    api_url: str


class WriteupDetail(WriteupSummary):
    sections: list[MarkdownText] = Field(description="Sections with text, in order.")


class WriteupPage(PageMeta):
    items: list[WriteupSummary]


class CodeGroup(Schema):
    heading: str
    coverage: str
    coverage_label: str
    system: str
    codes: list[CodeRow]


class PolicyDetail(PolicySummary):
    status: str
    source_url: str
    updated_at: datetime.datetime
    sections: list[MarkdownText]
    code_groups: list[CodeGroup]
    references: list[str]
    related: list[PolicyRef]


class Withdrawn(Schema):
    detail: str
    withdrawn_on: datetime.date | None
    replaced_by: PolicyRef | None


class PayerSummary(PayerRef):
    website: str
    policy_count: int = Field(description="Published policies.")
    policies_api_url: str


class PayerDetail(PayerSummary):
    description: MarkdownText


class PayerPage(PageMeta):
    items: list[PayerSummary]


class Hit(Schema):
    kind: str = Field(description="code, write-up or policy.")
    title: str
    url: str
    snippet: str = Field(description="Escaped text, <mark> around matches.")
    detail: str
    system: str
    code: str
    payer: str
    reason: str = Field(description="Why it matched, when not by its text.")


class SearchResults(Schema):
    query: str
    total: int
    counts: dict[str, int] = Field(description="Matches by kind.")
    page: int
    page_size: int
    pages: int
    exact: str | None = Field(description="Page of the one code the query names.")
    suggestion: str = Field(description="A “did you mean” query, or empty.")
    notice: str = Field(description="How the query was understood.")
    hits: list[Hit]


class Suggestion(Schema):
    label: str
    url: str
    kind: str
    detail: str


class Suggestions(Schema):
    query: str
    suggestions: list[Suggestion]
