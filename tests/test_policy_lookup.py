"""Which policies name a code: one indexed query over sort keys, ranges included."""

import pytest
from django.db import connection

from policies.models import Coverage, Payer, Policy, PolicyCode, PolicyCodeGroup
from procedures.models import PublicationStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def bulletin(db):
    payer = Payer.objects.create(name="Example Health", slug="example-health")
    policy = Policy.objects.create(
        payer=payer, number="0001", title="Test", status=PublicationStatus.PUBLISHED
    )
    icd = PolicyCodeGroup.objects.create(
        policy=policy,
        heading="ICD-10 codes",
        coverage=Coverage.NOT_COVERED,
        system="icd-10-cm",
    )
    rows = [
        ("S00.00X", "T88.9XX", True),
        ("Z85.00", "Z85.9", False),
        ("Z87.81", "Z87.828", False),
        ("Z51.89", "", False),
        ("Z92", "", False),
    ]
    for position, (start, end, seventh) in enumerate(rows):
        PolicyCode.objects.create(
            group=icd,
            start_code=start,
            end_code=end,
            seventh_character=seventh,
            position=position,
        )
    cpt = PolicyCodeGroup.objects.create(
        policy=policy, heading="CPT codes", coverage=Coverage.COVERED, system="cpt"
    )
    PolicyCode.objects.create(group=cpt, start_code="97545")
    PolicyCode.objects.create(group=cpt, start_code="97010", end_code="97799")
    return policy


def named(system, code):
    return sorted(row.display for row in PolicyCode.objects.naming(system, code))


@pytest.mark.parametrize(
    ("code", "rows"),
    [
        ("S52.501A", ["S00.00X+ - T88.9XX+"]),
        ("S00.00XA", ["S00.00X+ - T88.9XX+"]),
        ("T88.9XXS", ["S00.00X+ - T88.9XX+"]),
        ("R52", []),
        ("U07.1", []),
        ("Z85.3", ["Z85.00 - Z85.9"]),
        ("Z85.00", ["Z85.00 - Z85.9"]),
        ("Z87.820", ["Z87.81 - Z87.828"]),
        ("Z87.83", []),
        ("Z51.89", ["Z51.89"]),
        ("Z51.8", []),
        ("Z92.3", ["Z92"]),
        ("Z93", []),
    ],
)
def test_icd_10_cm_codes_are_found_through_ranges_and_categories(bulletin, code, rows):
    assert named("icd-10-cm", code) == rows


def test_a_cpt_code_is_found_as_listed_and_through_a_range(bulletin):
    assert named("cpt", "97545") == ["97010 - 97799", "97545"]
    assert named("cpt", "97546") == ["97010 - 97799"]
    assert named("cpt", "97800") == []


def test_codes_of_another_system_never_match(bulletin):
    assert named("hcpcs", "S9117") == []


def test_draft_policies_are_left_out(bulletin):
    Policy.objects.update(status=PublicationStatus.DRAFT)
    assert named("icd-10-cm", "S52.501A") == []


def test_the_lookup_is_one_query(bulletin, django_assert_num_queries):
    with django_assert_num_queries(1):
        list(PolicyCode.objects.naming("icd-10-cm", "S52.501A"))


def test_the_lookup_can_use_the_key_index(bulletin):
    if connection.vendor == "postgresql":
        # A handful of rows is cheaper to scan; ask whether the index can serve it.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
    plan = PolicyCode.objects.naming("icd-10-cm", "S52.501A").explain()
    assert "policycode_keys_idx" in plan


def test_key_columns_compare_byte_by_byte(db):
    if connection.vendor == "sqlite":
        # SQLite's default BINARY collation is byte-wise; no column may override it.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT sql FROM sqlite_master WHERE name IN "
                "('policies_policycode', 'policies_policycodechange', "
                "'procedures_code', 'procedures_codesection')"
            )
            tables = [sql for (sql,) in cursor.fetchall()]
        assert len(tables) == 4
        assert not any("COLLATE" in sql.upper() for sql in tables)
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, collation_name "
            "FROM information_schema.columns "
            "WHERE column_name IN ('sort_key', 'start_key', 'end_key') "
            "ORDER BY table_name, column_name"
        )
        rows = cursor.fetchall()
    assert rows == [
        ("policies_policycode", "end_key", "C"),
        ("policies_policycode", "start_key", "C"),
        # The ranges each policy version changed (policies.versions).
        ("policies_policycodechange", "end_key", "C"),
        ("policies_policycodechange", "start_key", "C"),
        ("procedures_code", "sort_key", "C"),
        ("procedures_codesection", "end_key", "C"),
        ("procedures_codesection", "start_key", "C"),
        ("search_searchdocument", "sort_key", "C"),
    ]


def test_rows_follow_their_group_into_another_code_system(bulletin):
    group = PolicyCodeGroup.objects.create(
        policy=bulletin,
        heading="HCPCS codes",
        coverage=Coverage.COVERED,
        system="hcpcs",
    )
    PolicyCode.objects.create(group=group, start_code="S9117")
    group = PolicyCodeGroup.objects.get(pk=group.pk)
    group.system = "icd-10-cm"
    group.save()
    assert named("hcpcs", "S9117") == []
    assert named("icd-10-cm", "S91.17") == ["S00.00X+ - T88.9XX+", "S91.17"]


def test_saving_a_group_unchanged_costs_two_queries(
    bulletin, django_assert_num_queries
):
    group = PolicyCodeGroup.objects.filter(system="cpt").get()
    # The update, and its record in the history; the rows are not touched.
    with django_assert_num_queries(2):
        group.save()
