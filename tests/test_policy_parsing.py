"""Reading a policy bulletin: the Aetna seed, and bulletins that go wrong."""

import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.models import Coverage
from policies.parsing import ParsedPolicy, Problem, parse_policy

ROOT = Path(__file__).resolve().parent.parent
NAME = "policy-aetna-0198-work-hardening-programs.txt"
SEED = (ROOT / "sample_data" / NAME).read_text(encoding="utf-8")

NOT_COVERED = "not covered for indications listed in the CPB"
PERSONAL_HISTORY = (
    "Personal history of malignant neoplasm, mental disorders, or other diseases"
)
SURGERY_HISTORY = (
    "Personal history of surgery, irradiation, psychological trauma, injury, and "
    "poisoning"
)
# (heading, coverage, system, [(display, add-on, 7th character, description)]).
SEED_TABLE = [
    (
        f"CPT codes {NOT_COVERED}",
        Coverage.NOT_COVERED,
        "cpt",
        [
            (
                "97537",
                False,
                False,
                "Community/work reintegration training (eg, shopping, "
                "transportation, money management, avocational activities and/or "
                "work environment/modification analysis, work task analysis, use of "
                "assistive technology device/adaptive equipment), direct one-on-one "
                "contact, each 15 minutes",
            ),
            ("97545", False, False, "Work hardening/conditioning; initial 2 hours"),
            (
                "97546",
                True,
                False,
                "each additional hour (List separately in addition to code for "
                "primary procedure)",
            ),
        ],
    ),
    (
        f"HCPCS codes {NOT_COVERED}",
        Coverage.NOT_COVERED,
        "hcpcs",
        [("S9117", False, False, "Back school, per visit")],
    ),
    (
        f"ICD-10 codes {NOT_COVERED} (not all-inclusive)",
        Coverage.NOT_COVERED,
        "icd-10-cm",
        [
            ("S00.00X+ - T88.9XX+", False, True, "Injuries and poisonings"),
            (
                "Z51.89",
                False,
                False,
                "Encounter for other specified aftercare [vocational therapy and "
                "other specified rehabilitation procedure]",
            ),
            ("Z85.00 - Z85.9", False, False, PERSONAL_HISTORY),
            ("Z86.19", False, False, PERSONAL_HISTORY),
            ("Z86.59", False, False, PERSONAL_HISTORY),
            ("Z87.81 - Z87.828", False, False, SURGERY_HISTORY),
            ("Z91.410 - Z91.414", False, False, SURGERY_HISTORY),
            ("Z92.3", False, False, SURGERY_HISTORY),
            ("Z98.870 - Z98.89", False, False, SURGERY_HISTORY),
        ],
    ),
]


@pytest.fixture(scope="module")
def parsed() -> ParsedPolicy:
    return parse_policy(SEED)


def line_number(text, line):
    return text.split("\n").index(line) + 1


def replace_line(text, old, new):
    lines = text.split("\n")
    lines[lines.index(old)] = new
    return "\n".join(lines)


def words(text):
    return text.replace("\u00a0", " ").split()


def test_the_sample_documents_are_byte_for_byte_copies_of_the_seeds():
    # SHA256SUMS records the seeds as the project was given them, so a clone checks
    # its sample documents without the seeds beside it.
    recorded = {
        name: digest
        for digest, name in (
            line.split(maxsplit=1)
            for line in (ROOT / "sample_data" / "SHA256SUMS").read_text().splitlines()
        )
    }
    copies = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in (ROOT / "sample_data").glob("*.txt")
    }
    assert len(recorded) == 2
    assert copies == recorded


def test_the_seed_bulletin_has_no_problems(parsed):
    assert parsed.problems == []


def test_it_reads_the_payer_from_the_bulletins_own_words(parsed):
    assert parsed.payer_name == "Aetna"


def test_a_payer_given_by_the_caller_wins():
    assert parse_policy(SEED, payer="Aetna Better Health").payer_name == (
        "Aetna Better Health"
    )


def test_it_reads_the_number_and_title(parsed):
    assert parsed.number == "0198"
    assert parsed.title == "Work Hardening Programs"
    assert parsed.policy.number == "0198"


def test_it_reads_scope_limitations_and_notes(parsed):
    assert parsed.policy.scope == (
        "This Clinical Policy Bulletin addresses work hardening programs."
    )
    assert parsed.policy.limitations == (
        "Aetna does not cover back school for occupational purposes and other return "
        "to work/reintegration or vocational programs including work hardening "
        "programs as they are considered vocational training, and not treatment of "
        "illness or injury."
    )
    assert parsed.policy.notes == (
        "Aetna medical benefit plans provide coverage only for treatment of illness "
        "or injury. Please check benefit plan descriptions for details."
    )


def test_the_empty_related_policies_item_is_fine(parsed):
    assert parsed.related_policies == []


def test_it_keeps_the_note_printed_above_the_code_table(parsed):
    assert parsed.policy.code_table_note == (
        "Information in the [brackets] below has been added for clarification "
        'purposes. Codes requiring a 7th character are represented by "+":'
    )


def test_the_background_keeps_its_sub_heading_and_paragraphs(parsed):
    blocks = parsed.policy.background.split("\n\n")
    assert len(blocks) == 4
    assert blocks[0].startswith("Work hardening programs refer to physical")
    assert blocks[1] == (
        "### Cognitive Work Hardening for Return-to-Work Following Depression"
    )
    assert blocks[2].startswith("Wisenthal (2021) noted that")
    assert blocks[3].endswith(
        "longer follow up is needed to determine the more long-term effects of CWH."
    )
    start = SEED.index("\nBackground\n\nWork hardening")
    seed_background = SEED[start : SEED.index("\nReferences\n", start)]
    assert (
        words(parsed.policy.background.replace("### ", ""))
        == words(seed_background)[1:]
    )


def test_dates_stay_empty_when_the_bulletin_gives_none(parsed):
    assert parsed.policy.effective_on is None
    assert parsed.policy.last_reviewed_on is None
    assert parsed.policy.next_review_on is None


def test_every_group_has_its_heading_coverage_system_and_position(parsed):
    found = [
        (group.heading, group.coverage, group.system, group.position)
        for group, _rows in parsed.groups
    ]
    assert found == [
        (heading, coverage, system, position)
        for position, (heading, coverage, system, _rows) in enumerate(SEED_TABLE)
    ]


def test_every_row_of_the_seed_table_is_read_with_its_markers(parsed):
    for (_group, rows), (_heading, _coverage, system, expected) in zip(
        parsed.groups, SEED_TABLE, strict=True
    ):
        found = [
            (row.display, row.is_addon, row.seventh_character, row.description)
            for row in rows
        ]
        assert found == expected
        assert [row.position for row in rows] == list(range(len(expected)))
        assert {row.system for row in rows} == {system}


def test_a_range_row_has_both_ends_and_keys_that_cover_its_codes(parsed):
    _group, rows = parsed.groups[2]
    injuries, _aftercare, neoplasm, *_ = rows
    assert (injuries.start_code, injuries.end_code) == ("S00.00X", "T88.9XX")
    assert injuries.is_range
    assert injuries.start_key <= "S52501A" <= injuries.end_key
    assert (neoplasm.start_code, neoplasm.end_code) == ("Z85.00", "Z85.9")
    assert not rows[1].is_range and rows[1].end_code == ""


def test_the_add_on_row_is_unsaved_and_carries_the_plus(parsed):
    _group, rows = parsed.groups[0]
    addon = rows[2]
    assert addon.pk is None
    assert addon.start_code == "97546"
    assert addon.is_addon


def test_all_twelve_references_are_read_in_order(parsed):
    assert [ref.position for ref in parsed.references] == list(range(1, 13))
    assert parsed.references[0].citation == (
        "American Occupational Therapy Association. Work hardening guidelines "
        "(position paper). Am J Occup Ther. 1986;40(12):841-843."
    )
    assert parsed.references[11].citation == (
        "Wyman DO. Evaluating patients for return to work. Am Fam Physician. "
        "1999;59(4):844-848."
    )
    assert parsed.references[10].citation.startswith("Wisenthal A. Case report:")


def test_a_code_row_that_is_not_a_code_is_a_problem_on_its_line():
    broken = replace_line(
        SEED, "97545 Work hardening/conditioning; initial 2 hours", "97A4X Foo"
    )
    result = parse_policy(broken)
    assert [problem.line for problem in result.problems] == [39]
    assert "97A4X" in result.problems[0].message
    assert "CPT" in result.problems[0].message
    _group, rows = result.groups[0]
    assert [row.start_code for row in rows] == ["97537", "97546"]


def test_a_range_that_ends_before_it_starts_is_a_problem_on_its_line():
    broken = replace_line(SEED, "Z85.00 - Z85.9", "Z85.9 - Z85.00")
    result = parse_policy(broken)
    assert result.problems == [
        Problem(50, "The range ends (Z85.00) before it starts (Z85.9).")
    ]
    _group, rows = result.groups[2]
    assert "Z85.9 - Z85.00" not in [row.display for row in rows]
    assert rows[2].display == "Z86.19"
    assert rows[2].description == PERSONAL_HISTORY


def test_several_broken_rows_each_get_their_own_line():
    broken = replace_line(SEED, "Z85.00 - Z85.9", "Z85.9 - Z85.00")
    broken = replace_line(broken, "S9117 Back school, per visit", "S91 Back school")
    broken = replace_line(broken, "Z92.3, Z98.870 - Z98.89", "Z92.3, 97545")
    result = parse_policy(broken)
    assert [problem.line for problem in result.problems] == [44, 50, 54]
    assert all(problem.message for problem in result.problems)


def test_a_description_with_no_code_above_it_is_a_problem():
    broken = SEED.replace(
        "HCPCS codes not covered for indications listed in the CPB:\n\n",
        "HCPCS codes not covered for indications listed in the CPB:\n\nBack school\n",
    )
    result = parse_policy(broken)
    assert [problem.line for problem in result.problems] == [44]


def test_a_code_row_before_any_group_heading_is_a_problem():
    broken = SEED.replace("Code Code Description\n", "97545 Work hardening\n")
    result = parse_policy(broken)
    assert [problem.line for problem in result.problems] == [32]
    assert "group heading" in result.problems[0].message
    assert "97545" not in result.policy.code_table_note


def test_codes_left_without_a_description_are_a_problem():
    broken = SEED.replace(
        "Z92.3, Z98.870 - Z98.89\n"
        "Personal history of surgery, irradiation, psychological trauma, injury, "
        "and poisoning\n",
        "Z92.3, Z98.870 - Z98.89\n",
    )
    result = parse_policy(broken)
    assert len(result.problems) == 1
    assert "Z87.81 - Z87.828" in result.problems[0].message


def test_a_bulletin_without_a_number_is_a_problem():
    result = parse_policy(SEED.replace("Number:\u00a00198\n", ""))
    assert result.number == ""
    assert [problem.line for problem in result.problems] == [1]
    assert "Number" in result.problems[0].message


def test_a_payer_it_cannot_find_is_a_problem():
    result = parse_policy("Some Policy\n\nNumber: 1\n\nPolicy\n\nScope of Policy\n")
    assert result.payer_name == ""
    assert any("payer" in problem.message for problem in result.problems)


def test_an_unknown_section_is_kept_at_the_end_of_the_background():
    text = SEED.replace(
        "Background\nReferences\n", "Background\nAppendix\nReferences\n"
    )
    text = text.replace(
        "\n\nReferences\n\nThe above",
        "\n\nAppendix\n\nWork conditioning is not work hardening.\n\n"
        "References\n\nThe above",
    )
    result = parse_policy(text)
    assert result.problems == []
    assert result.policy.background.endswith(
        "\n\n## Appendix\n\nWork conditioning is not work hardening."
    )
    assert len(result.references) == 12


def test_an_unknown_policy_item_is_kept_in_the_background():
    text = SEED.replace(
        "  2. Related Policies\n",
        "  2. Related Policies\n\n  3. Transition Period\n\n"
        "    Members in a program may finish it.\n",
    )
    result = parse_policy(text)
    assert result.problems == []
    assert result.policy.background.endswith(
        "## Transition Period\n\nMembers in a program may finish it."
    )


@pytest.mark.parametrize(
    ("heading", "coverage", "system"),
    [
        ("CPT codes covered if selection criteria are met:", Coverage.CRITERIA, "cpt"),
        (
            "HCPCS codes covered for indications listed in the CPB:",
            Coverage.COVERED,
            "hcpcs",
        ),
        ("Other ICD-10 codes related to the CPB:", Coverage.INFORMATIONAL, "icd-10-cm"),
        ("ICD-10-PCS codes not covered:", Coverage.NOT_COVERED, "icd-10-pcs"),
    ],
)
def test_coverage_and_system_come_from_the_group_heading(heading, coverage, system):
    text = SEED.replace(
        "CPT codes not covered for indications listed in the CPB:", heading
    )
    group, _rows = parse_policy(text).groups[0]
    assert (group.heading, group.coverage, group.system) == (
        heading.removesuffix(":"),
        coverage,
        system,
    )


def test_dates_are_read_when_the_bulletin_gives_them():
    text = SEED.replace(
        "Number:\u00a00198\n",
        "Number:\u00a00198\nEffective: 08/27/1997\nLast Review: 2024-03-13\n"
        "Next Review: soon\n",
    )
    result = parse_policy(text)
    assert str(result.policy.effective_on) == "1997-08-27"
    assert str(result.policy.last_reviewed_on) == "2024-03-13"
    assert result.policy.next_review_on is None
    assert [problem.line for problem in result.problems] == [6]


@pytest.mark.parametrize("text", ["", "\n\n", "\x00\x0c\u2028", "Table:\n\n+ -"])
def test_empty_or_odd_documents_give_problems_not_exceptions(text):
    result = parse_policy(text)
    assert result.problems
    assert all(problem.line >= 1 for problem in result.problems)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(SEED.split("\n"))
        | st.text(alphabet="Z85.0-9 +,:\u00a0\nabcCPT", max_size=30),
        max_size=40,
    )
)
def test_no_arrangement_of_lines_makes_the_parser_raise(lines):
    text = "\n".join(lines)
    result = parse_policy(text)
    last = len(text.split("\n"))
    assert all(1 <= problem.line <= last for problem in result.problems)


def test_a_background_longer_than_a_field_may_hold_is_a_problem_at_its_heading():
    lines = SEED.split("\n")
    at = lines.index("Background", 20)
    lines.insert(at + 2, "Long words. " * 5_000)
    parsed = parse_policy("\n".join(lines))
    (problem,) = parsed.problems
    assert problem.line == at + 1
    assert "The background is" in problem.message
    assert "at most 50,000" in problem.message
