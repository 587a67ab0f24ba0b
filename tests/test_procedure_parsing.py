"""Reading a procedure write-up: the 97546 seed, and write-ups that go wrong."""

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import html

from carecodes.markdown import render_markdown
from procedures.models import WRITEUP_SECTIONS
from procedures.parsing import ParsedProcedure, parse_procedure

ROOT = Path(__file__).resolve().parent.parent
NAME = "procedure-97546-work-hardening-each-additional-hour.txt"
SEED = (ROOT / "sample_data" / NAME).read_text(encoding="utf-8")
DESCRIPTOR = (
    "Work hardening/conditioning; each additional hour (List separately in addition "
    "to code for primary procedure)"
)
# The seed's section headings, in its own capitals.
SEED_HEADINGS = {
    "summary": "Summary",
    "purpose": "Purpose",
    "indications": "Indications",
    "preparation": "Preparation",
    "procedure_description": "Procedure Description",
    "duration": "Duration",
    "setting": "Setting",
    "personnel": "Personnel",
    "risks": "Risks and Complications",
    "benefits": "Benefits",
    "recovery": "Recovery",
    "alternatives": "Alternatives",
    "patient_experience": "Patient Experience",
}


@pytest.fixture(scope="module")
def parsed() -> ParsedProcedure:
    return parse_procedure(SEED, code="97546")


def seed_section(name):
    """The seed's text under a heading, up to the next heading or page furniture."""
    ends = [f"\n{heading}\n" for heading in SEED_HEADINGS.values()]
    ends.append("\nMedical Policies and Guidelines for")
    start = SEED.index(f"\n{SEED_HEADINGS[name]}\n") + len(SEED_HEADINGS[name]) + 2
    end = min(SEED.find(e, start) for e in ends if SEED.find(e, start) != -1)
    return SEED[start:end]


def words_of_seed(text):
    return [word for word in text.split() if word != "\u2022"]


def words_of_markdown(text):
    return re.sub(r"(?m)^- ", "", text).split()


def test_the_seed_write_up_has_no_problems_when_given_its_code(parsed):
    assert parsed.problems == []


def test_it_reads_the_code_system_and_descriptor(parsed):
    assert (parsed.system, parsed.code) == ("cpt", "97546")
    assert parsed.descriptor == DESCRIPTOR


def test_the_list_separately_phrase_makes_it_an_add_on(parsed):
    assert parsed.is_addon
    initial = SEED.replace(DESCRIPTOR, "Work hardening/conditioning; initial 2 hours")
    assert not parse_procedure(initial, code="97545").is_addon


def test_the_title_comes_from_the_name_of_the_procedure(parsed):
    assert parsed.title == "Work Hardening/Conditioning; Each Additional Hour"
    assert parsed.procedure.title == parsed.title
    assert parsed.procedure.pk is None


@pytest.mark.parametrize("name", [name for name, _label in WRITEUP_SECTIONS])
def test_every_section_has_the_seeds_words(parsed, name):
    text = getattr(parsed.procedure, name)
    assert text
    assert words_of_markdown(text) == words_of_seed(seed_section(name))


def test_indication_bullets_become_a_markdown_list(parsed):
    assert parsed.procedure.indications == (
        "- Individuals recovering from a musculoskeletal injury or surgery.\n"
        "- Patients experiencing chronic pain that hinders work performance.\n"
        "- Workers requiring rehabilitation to regain strength and skills specific to "
        "their job duties."
    )
    tree = html.fragment_fromstring(
        str(render_markdown(parsed.procedure.indications)), create_parent="div"
    )
    assert len(tree.xpath("./ul/li")) == 3


def test_the_procedure_description_keeps_its_five_numbered_steps(parsed):
    steps, paragraph = parsed.procedure.procedure_description.split("\n\n")
    assert steps.split("\n") == [
        "1. Initial Assessment: A comprehensive evaluation of the patient's physical "
        "abilities, job requirements, and goals.",
        "2. Customized Plan: Development of a tailored therapy program that mimics "
        "work tasks.",
        "3. Therapy Sessions: Participation in structured exercises and activities "
        "designed to improve strength, flexibility, coordination, and endurance.",
        "4. Progress Monitoring: Regular assessments to track progress and adjust the "
        "therapy plan as needed.",
        "5. Education: Training on proper body mechanics and ergonomic principles to "
        "prevent future injuries.",
    ]
    assert paragraph.startswith("Tools, equipment, or technology used may include")
    tree = html.fragment_fromstring(
        str(render_markdown(parsed.procedure.procedure_description)),
        create_parent="div",
    )
    assert len(tree.xpath("./ol/li")) == 5
    assert len(tree.xpath("./p")) == 1


def test_a_list_followed_by_a_paragraph_keeps_both(parsed):
    assert parsed.procedure.risks.split("\n\n") == [
        "- Temporary increase in pain or discomfort.\n"
        "- Overexertion leading to muscle soreness or fatigue.\n"
        "- Rare risk of re-injury if activities are not performed correctly.",
        "Possible complications are managed by adjusting the therapy intensity and "
        "ensuring proper technique.",
    ]


def test_page_furniture_after_the_write_up_is_left_out(parsed):
    assert parsed.procedure.patient_experience.endswith("comfort during the sessions.")
    everything = " ".join(getattr(parsed.procedure, n) for n, _ in WRITEUP_SECTIONS)
    assert "Similar Codes" not in everything
    assert "Related policies from health plans" not in everything
    assert "Medical Policies and Guidelines" not in everything


def test_without_a_code_the_seed_gives_a_problem_on_its_label_line():
    result = parse_procedure(SEED)
    assert [problem.line for problem in result.problems] == [5]
    assert "code" in result.problems[0].message
    assert result.system == "cpt"


def test_a_code_written_after_the_label_is_found():
    result = parse_procedure(SEED.replace("CPT4 code\n", "CPT4 code: 97546\n"))
    assert result.problems == []
    assert (result.system, result.code) == ("cpt", "97546")


def test_a_code_on_its_own_line_is_found_and_its_system_guessed():
    text = SEED.replace("CPT4 code\n", "97546\n")
    result = parse_procedure(text)
    assert result.problems == []
    assert (result.system, result.code) == ("cpt", "97546")


def test_a_code_that_disagrees_with_the_text_is_a_problem():
    text = SEED.replace("CPT4 code\n", "CPT4 code 97545\n")
    result = parse_procedure(text, code="97546")
    assert [problem.line for problem in result.problems] == [5]
    assert "97545" in result.problems[0].message


def test_a_code_of_another_system_is_a_problem():
    result = parse_procedure(SEED, code="Z51.89")
    assert [problem.line for problem in result.problems] == [5]
    assert "CPT" in result.problems[0].message


def test_a_write_up_without_a_name_line_is_a_problem():
    text = SEED.replace("Name of the Procedure:\n\n", "")
    result = parse_procedure(text, code="97546")
    assert [problem.line for problem in result.problems] == [1]
    assert "Name of the Procedure" in result.problems[0].message


def test_a_name_on_the_label_line_is_read():
    text = SEED.replace(
        "Name of the Procedure:\n\nWork Hardening",
        "Name of the Procedure: Work Hardening",
    )
    result = parse_procedure(text, code="97546")
    assert result.problems == []
    assert result.title == "Work Hardening/Conditioning; Each Additional Hour"


def test_a_section_heading_given_twice_is_a_problem_on_the_second():
    text = SEED.replace("Setting\n", "Duration\n")
    result = parse_procedure(text, code="97546")
    assert [problem.line for problem in result.problems] == [45]
    assert result.procedure.setting == ""
    assert "outpatient rehabilitation clinics" in result.procedure.duration


@pytest.mark.parametrize("text", ["", "\n", "\x00", "Summary\n\nx", "  • 97546"])
def test_empty_or_odd_documents_give_problems_not_exceptions(text):
    result = parse_procedure(text)
    assert result.problems
    assert all(problem.line >= 1 for problem in result.problems)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(SEED.split("\n")) | st.text(max_size=30), max_size=40),
    st.sampled_from([None, "97546", "Z51.89", "nonsense", ""]),
)
def test_no_arrangement_of_lines_makes_the_parser_raise(lines, code):
    text = "\n".join(lines)
    result = parse_procedure(text, code=code)
    last = len(text.split("\n"))
    assert all(1 <= problem.line <= last for problem in result.problems)


def test_a_section_longer_than_a_field_may_hold_is_a_problem_at_its_heading():
    lines = SEED.split("\n")
    at = lines.index("Purpose")
    lines.insert(at + 1, "Long words. " * 5_000)
    parsed = parse_procedure("\n".join(lines), code="97546")
    (problem,) = parsed.problems
    assert problem.line == at + 1
    assert re.search(r"“purpose” is 60,\d{3} characters long", problem.message)
    assert "at most 50,000" in problem.message
