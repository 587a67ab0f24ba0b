"""
ICD-10-PCS codes in payer policy code tables: read by every policy importer (the
Aetna-style bulletin and the generic JSON and CSV layouts), linked from the policy
page to the code pages, listed on the code pages (a code inside a PCS range too) and
found by search.

The codes come from the real code set (table 0SR, Replacement of lower joints,
imported by ``manage.py import_icd10pcs``); the policies are the real seeds in
sample_data/ with an added ICD-10-PCS group.
"""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from lxml import html

from index.search import search
from policies.generic import parse_generic_policy
from policies.models import Policy, PolicyCode, PolicyStatus
from policies.parsing import parse_policy
from procedures import codes
from procedures.models import Code

pytestmark = pytest.mark.django_db

SAMPLES = Path(__file__).resolve().parent.parent / "sample_data"
BULLETIN = SAMPLES / "policy-aetna-0198-work-hardening-programs.txt"
JSON_POLICY = SAMPLES / "policy-cigna-sample-0135-physical-therapy.json"
CSV_POLICY = (
    SAMPLES / "policy-unitedhealthcare-sample-0026-outpatient-rehabilitation.csv"
)

PCS = codes.System.ICD10PCS
PCS_OID = "2.16.840.1.113883.6.4"
HEADING = "ICD-10-PCS codes covered if selection criteria are met"
# (as written in the table, description): a single code, ranges with a hyphen, an
# en dash and no spaces, a range across body parts (hip to hip, right to left), a
# lower-case code and two codes on one row.
PCS_ROWS = [
    ("0SRC0J9", "Replacement of right knee joint, synthetic, cemented, open"),
    ("0SRC0J9 - 0SRC0JZ", "Replacement of right knee joint, synthetic, open"),
    ("0SRD0J9 \u2013 0SRD0JZ", "Replacement of left knee joint, synthetic, open"),
    ("0SR90J9-0SRB0JZ", "Replacement of hip joints, synthetic, open"),
    ("0srt0j9", "Replacement of right knee joint femoral surface, cemented"),
    ("0SRU0J9, 0SRV0J9", "Replacement of knee joint surfaces, cemented"),
]
# The rows as the policy page shows them: (start, end or "").
PCS_TABLE = [
    ("0SRC0J9", ""),
    ("0SRC0J9", "0SRC0JZ"),
    ("0SRD0J9", "0SRD0JZ"),
    ("0SR90J9", "0SRB0JZ"),
    ("0SRT0J9", ""),
    ("0SRU0J9", ""),
    ("0SRV0J9", ""),
]


def bulletin_text(rows=PCS_ROWS, heading=HEADING) -> str:
    """The Aetna seed bulletin with an ICD-10-PCS group after its ICD-10 group."""
    text = BULLETIN.read_text(encoding="utf-8")
    last_row = (
        "Personal history of surgery, irradiation, psychological trauma, injury, "
        "and poisoning\n"
    )
    assert last_row in text
    group = "\n" + heading + ":\n\n" + "".join(f"{c} {d}\n" for c, d in rows)
    return text.replace(last_row, last_row + group, 1)


def json_text(rows=PCS_ROWS) -> str:
    document = json.loads(JSON_POLICY.read_text(encoding="utf-8"))
    document["code_groups"].append(
        {
            "heading": HEADING,
            "system": "ICD-10-PCS",
            "coverage": "criteria",
            "codes": [{"code": c, "description": d} for c, d in rows],
        }
    )
    return json.dumps(document, indent=2)


def csv_text(rows=PCS_ROWS) -> str:
    text = CSV_POLICY.read_text(encoding="utf-8")
    first_reference = text.index("\nreference,") + 1
    added = f"group,,{HEADING},ICD-10-PCS,criteria,\n" + "".join(
        f'code,,"{c}",,,"{d}"\n' for c, d in rows
    )
    return text[:first_reference] + added + text[first_reference:]


def pcs_group(parsed):
    found = [rows for group, rows in parsed.groups if group.system == PCS.value]
    assert len(found) == 1
    return found[0]


def shown(rows):
    return [(row.start_code, row.end_code) for row in rows]


@pytest.fixture
def pcs_codes(db):
    call_command("import_icd10pcs", "--tables", "0SR", verbosity=0)


def import_policy(tmp_path, name, text, **options):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    call_command("import_policy", str(path), stdout=StringIO(), **options)


@pytest.fixture
def pcs_policy(pcs_codes, tmp_path, django_capture_on_commit_callbacks):
    # Search documents are written when the import commits.
    with django_capture_on_commit_callbacks(execute=True):
        import_policy(tmp_path, BULLETIN.name, bulletin_text())
    return Policy.objects.get(payer__name="Aetna", number="0198")


# Reading ---------------------------------------------------------------------------


def test_the_bulletin_reader_takes_a_pcs_group_with_every_range_form():
    parsed = parse_policy(bulletin_text())
    assert parsed.problems == []
    group = next(group for group, _rows in parsed.groups if group.system == PCS)
    assert group.heading == HEADING
    assert group.coverage == "criteria"
    rows = pcs_group(parsed)
    assert shown(rows) == PCS_TABLE
    # Both codes of the last row take its description.
    descriptions = [description for _code, description in PCS_ROWS]
    assert [row.description for row in rows] == [*descriptions, descriptions[-1]]
    # The groups the seed already had are read as before.
    assert [group.system for group, _rows in parsed.groups] == [
        "cpt",
        "hcpcs",
        "icd-10-cm",
        "icd-10-pcs",
    ]


@pytest.mark.parametrize(
    "heading",
    [
        "ICD-10 PCS codes not covered for indications listed in the CPB",
        "ICD10-PCS codes not covered for indications listed in the CPB",
        "Other ICD 10 PCS codes related to the CPB",
    ],
)
def test_the_bulletin_reader_takes_the_other_spellings_of_icd_10_pcs(heading):
    parsed = parse_policy(bulletin_text(heading=heading))
    assert parsed.problems == []
    assert parsed.groups[-1][0].heading == heading
    assert shown(pcs_group(parsed)) == PCS_TABLE


@pytest.mark.parametrize("layout", ["json", "csv"])
def test_the_generic_reader_takes_the_same_pcs_group(layout):
    text = json_text() if layout == "json" else csv_text()
    parsed = parse_generic_policy(text, layout)
    assert parsed.problems == []
    rows = pcs_group(parsed)
    assert shown(rows) == PCS_TABLE
    bulletin_rows = pcs_group(parse_policy(bulletin_text()))
    assert [(r.start_key, r.end_key) for r in rows] == [
        (r.start_key, r.end_key) for r in bulletin_rows
    ]


@pytest.mark.parametrize(
    "written, words",
    [
        ("0SRC0JO", "is not an ICD-10-PCS code"),
        ("0SRC0J9 - 0SRC0J", "is not an ICD-10-PCS code"),
        ("0SRC0JZ - 0SRC0J9", "ends (0SRC0J9) before it starts (0SRC0JZ)"),
        ("0SRC0J9 - Z96.651", "mixes ICD-10-PCS and ICD-10-CM codes"),
        ("0SRC0J9+", "ICD-10-PCS codes have no 7th character"),
    ],
)
def test_a_bad_pcs_row_is_a_problem_at_its_line_in_every_layout(written, words):
    rows = [(written, "Replacement of right knee joint")]
    text = bulletin_text(rows)
    line = text.split("\n").index(f"{written} {rows[0][1]}") + 1
    problems = parse_policy(text).problems
    assert [problem.line for problem in problems] == [line]
    assert words in problems[0].message
    for layout, written_text in (("json", json_text(rows)), ("csv", csv_text(rows))):
        problems = parse_generic_policy(written_text, layout).problems
        assert len(problems) == 1, (layout, problems)
        assert words in problems[0].message


# Ranges and keys -------------------------------------------------------------------


def test_a_pcs_range_holds_exactly_the_codes_of_the_table_between_its_ends(pcs_codes):
    # The range from the right hip to the left hip, read as the policy wrote it,
    # asked of the database (COLLATE "C" keys on PostgreSQL) and of Python.
    found = codes.parse_range(PCS, "0SR90J9-0SRB0JZ")
    in_db = set(
        Code.objects.filter(
            system=PCS.value,
            sort_key__gte=found.start_key,
            sort_key__lte=found.end_key,
        ).values_list("code", flat=True)
    )
    every = list(Code.objects.filter(system=PCS.value).values_list("code", flat=True))
    by_python = {code for code in every if codes.in_range(PCS, code, found)}
    assert in_db == by_python
    # Body parts 9 (Hip Joint, Right), A (Hip Joint, Acetabular Surface, Right) and
    # B (Hip Joint, Left) from device J on, in the PCS order 0-9 then A-Z.
    assert {code[3] for code in in_db} == {"9", "A", "B"}
    assert "0SR90J9" in in_db and "0SRB0JZ" in in_db
    assert "0SR9019" not in in_db  # device 0 comes before J
    assert "0SRC0J9" not in in_db  # the right knee comes after the left hip
    assert sorted(every) == sorted(every, key=lambda code: codes.sort_key(PCS, code))


# Pages -----------------------------------------------------------------------------


def code_links(client, url):
    response = client.get(url)
    assert response.status_code == 200
    tree = html.fromstring(response.content)
    return tree.xpath("//table[@class='code-table']//a/@href")


def test_the_policy_page_links_every_pcs_code_to_its_page(
    client, pcs_policy, django_assert_num_queries
):
    assert pcs_policy.status == PolicyStatus.PUBLISHED
    # The official descriptor stays; the bulletin's words are the row's.
    assert Code.objects.get(system=PCS.value, code="0SRC0J9").descriptor == (
        "Replacement of Right Knee Joint with Synthetic Substitute, Cemented, "
        "Open Approach"
    )
    # The same 7 as test_policy_page: the policy, related policies, groups, rows,
    # references, code pages and the versions list.
    url = pcs_policy.get_absolute_url()
    with django_assert_num_queries(7):
        links = code_links(client, url)
    pcs_links = [link for link in links if link.startswith("/codes/icd-10-pcs/")]
    assert pcs_links == [
        f"/codes/icd-10-pcs/{code}/"
        for start, end in PCS_TABLE
        for code in (start, end)
        if code
    ]
    for link in set(pcs_links):
        assert client.get(link).status_code == 200


def test_a_policy_loaded_before_the_code_set_gives_way_to_the_official_codes(
    client, tmp_path
):
    # The bulletin's words stand in for a listed code the site does not know yet;
    # the code set's import then puts the official descriptor and the axes in.
    import_policy(tmp_path, BULLETIN.name, bulletin_text())
    code = Code.objects.get(system=PCS.value, code="0SRC0J9")
    assert (code.descriptor, code.code_set_year) == (PCS_ROWS[0][1], None)
    call_command("import_icd10pcs", "--tables", "0SR", verbosity=0)
    code.refresh_from_db()
    assert code.descriptor.startswith("Replacement of Right Knee Joint with")
    assert code.code_set_year is not None
    response = client.get("/codes/icd-10-pcs/0SRC0J9/")
    assert b"In plain words" in response.content
    policy = Policy.objects.get(payer__name="Aetna", number="0198")
    listed = policies_on(client, "/codes/icd-10-pcs/0SRC0J9/")
    assert policy.get_absolute_url() in listed


@pytest.mark.parametrize("layout", ["json", "csv"])
def test_a_generic_policy_links_its_pcs_codes_too(client, pcs_codes, tmp_path, layout):
    text = json_text() if layout == "json" else csv_text()
    source = JSON_POLICY if layout == "json" else CSV_POLICY
    import_policy(tmp_path, source.name, text, format=layout)
    policy = Policy.objects.get(number="0135" if layout == "json" else "0026")
    links = code_links(client, policy.get_absolute_url())
    assert "/codes/icd-10-pcs/0SRC0J9/" in links
    assert "/codes/icd-10-pcs/0SRB0JZ/" in links


def policies_on(client, url):
    response = client.get(url)
    assert response.status_code == 200
    tree = html.fromstring(response.content)
    return tree.xpath("//main//a[starts-with(@href, '/policies/')]/@href")


@pytest.mark.parametrize(
    "code",
    [
        "0SRC0J9",  # listed by itself (and inside a range)
        "0SRC0JA",  # inside 0SRC0J9 - 0SRC0JZ only
        "0SRA0JZ",  # inside the range across the hips
        "0SRT0J9",  # written in lower case
        "0SRV0J9",  # the second code of a row
    ],
)
def test_a_pcs_code_page_lists_the_policy_naming_it(
    client, pcs_policy, code, django_assert_num_queries
):
    url = f"/codes/icd-10-pcs/{code}/"
    # The same 10 as a PCS code page without policies (test_pcs_pages).
    with django_assert_num_queries(10):
        listed = policies_on(client, url)
    assert pcs_policy.get_absolute_url() in listed


@pytest.mark.parametrize("code", ["0SRC0KZ", "0SR9019", "0SRR0J9", "0SRW0J9"])
def test_a_pcs_code_outside_every_row_lists_no_policy(client, pcs_policy, code):
    assert Code.objects.filter(system=PCS.value, code=code).exists()
    assert pcs_policy.get_absolute_url() not in policies_on(
        client, f"/codes/icd-10-pcs/{code}/"
    )


def test_mentions_tell_a_listed_pcs_code_from_one_inside_a_range(pcs_policy):
    pairs = [(PCS.value, "0SRC0J9"), (PCS.value, "0SRC0JA"), (PCS.value, "0SRC0KZ")]
    found = PolicyCode.objects.mentions_of_codes(pairs)
    listed, in_range, outside = (found[pair] for pair in pairs)
    assert [(m.policy, m.listed, m.row.display) for m in listed] == [
        (pcs_policy, True, "0SRC0J9")
    ]
    assert [(m.policy, m.listed, m.row.display) for m in in_range] == [
        (pcs_policy, False, "0SRC0J9 - 0SRC0JZ")
    ]
    assert outside == []


# Search ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query, reason",
    [
        ("0SRC0J9", "Policy lists this code"),
        ("0src0j9", "Policy lists this code"),
        ("0SRC0JA", "range"),
    ],
)
def test_search_finds_the_policy_by_a_pcs_code(pcs_policy, query, reason):
    hits = [hit for hit in search(query).hits if hit.kind == "policy"]
    assert [hit.url for hit in hits] == [pcs_policy.get_absolute_url()]
    assert reason in hits[0].reason


def test_the_search_page_takes_a_pcs_code_to_its_page_which_lists_the_policy(
    client, pcs_policy
):
    # A query naming one known code goes straight to its page, as for other systems.
    response = client.get("/search/", {"q": "0src0ja"})
    assert response.status_code == 302
    assert response["Location"] == "/codes/icd-10-pcs/0SRC0JA/"
    assert pcs_policy.get_absolute_url() in policies_on(client, response["Location"])
    # Two codes: a results page, with the policy naming both.
    response = client.get("/search/", {"q": "0SRC0JA 0SRA0JZ"})
    assert response.status_code == 200
    tree = html.fromstring(response.content)
    assert pcs_policy.get_absolute_url() in tree.xpath("//main//a/@href")


# Interop ---------------------------------------------------------------------------


def test_the_api_lists_the_policy_for_a_pcs_code_inside_a_range(client, pcs_policy):
    response = client.get("/api/v1/codes/icd-10-pcs/0src0ja/policies")
    assert response.status_code == 200, response.content
    [found] = response.json()["items"]
    assert (found["policy"]["payer"]["name"], found["policy"]["number"]) == (
        pcs_policy.payer.name,
        "0198",
    )
    assert found["listed"] is False
    assert found["row"]["display"] == "0SRC0J9 - 0SRC0JZ"
    assert found["coverage"] == "criteria"


def test_the_infobutton_answers_for_a_pcs_code_by_its_oid(client, pcs_policy):
    response = client.get(
        "/infobutton/service",
        {
            "mainSearchCriteria.v.c": "0SRC0J9",
            "mainSearchCriteria.v.cs": PCS_OID,
            "knowledgeResponseType": "application/json",
        },
    )
    assert response.status_code == 200, response.content
    entries = response.json()["feed"]["entry"]
    assert [entry["title"]["_value"] for entry in entries] == [
        "Aetna policy 0198: Work Hardening Programs"
    ]
