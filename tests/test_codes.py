"""Tests for procedures.codes: pure rules, so no database and no Django settings."""

import dataclasses

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from procedures.codes import (
    RANGE_END_MARK,
    SYSTEM_LABELS,
    SYSTEM_OIDS,
    CodeError,
    CodeRange,
    System,
    code_sort_tuple,
    in_range,
    is_valid,
    normalize,
    parse_range,
    range_keys,
    sort_key,
    system_from_slug,
    systems_for,
)

CPT, HCPCS, CM, PCS = System.CPT, System.HCPCS, System.ICD10CM, System.ICD10PCS

# Examples are not written to a .hypothesis folder in the shared working tree.
quick = settings(database=None, max_examples=300, deadline=None)


# --- Systems -------------------------------------------------------------------


def test_system_values_are_the_url_slugs():
    assert [system.value for system in System] == [
        "cpt",
        "hcpcs",
        "icd-10-cm",
        "icd-10-pcs",
    ]


def test_system_labels():
    assert SYSTEM_LABELS == {
        CPT: "CPT",
        HCPCS: "HCPCS Level II",
        CM: "ICD-10-CM",
        PCS: "ICD-10-PCS",
    }


def test_system_oids():
    assert SYSTEM_OIDS == {
        CPT: "2.16.840.1.113883.6.12",
        HCPCS: "2.16.840.1.113883.6.285",
        CM: "2.16.840.1.113883.6.90",
        PCS: "2.16.840.1.113883.6.4",
    }


@pytest.mark.parametrize(
    ("slug", "expected"),
    [
        ("cpt", CPT),
        ("CPT", CPT),
        (" cpt ", CPT),
        ("cpt-4", CPT),
        ("CPT4", CPT),
        ("HCPCS Level I", CPT),
        ("hcpcs", HCPCS),
        ("HCPCS", HCPCS),
        ("HCPCS Level II", HCPCS),
        ("hcpcs level ii", HCPCS),
        ("hcpcs-level-2", HCPCS),
        ("HCPCS II", HCPCS),
        ("icd-10-cm", CM),
        ("ICD-10-CM", CM),
        ("icd10cm", CM),
        ("ICD10CM", CM),
        ("icd_10_cm", CM),
        ("icd-10", CM),
        ("ICD10", CM),
        ("icd 10 cm", CM),
        ("icd-10-pcs", PCS),
        ("ICD-10-PCS", PCS),
        ("icd10pcs", PCS),
        ("2.16.840.1.113883.6.12", CPT),
        ("2.16.840.1.113883.6.285", HCPCS),
        ("2.16.840.1.113883.6.90", CM),
        ("2.16.840.1.113883.6.4", PCS),
    ],
)
def test_system_from_slug_known(slug, expected):
    assert system_from_slug(slug) is expected


@pytest.mark.parametrize(
    "slug",
    ["", " ", "icd", "icd-9", "icd-9-cm", "cdt", "snomed", "loinc", "hcpcs3", "x"],
)
def test_system_from_slug_unknown(slug):
    assert system_from_slug(slug) is None


@pytest.mark.parametrize("system", list(System))
def test_system_from_slug_round_trips_values_and_labels(system):
    assert system_from_slug(system.value) is system
    assert system_from_slug(SYSTEM_LABELS[system]) is system
    assert system_from_slug(SYSTEM_OIDS[system]) is system


# --- Normalising ---------------------------------------------------------------

VALID = [
    # CPT Category I, II, III and PLA
    (CPT, "97546", "97546"),
    (CPT, " 97546 ", "97546"),
    (CPT, "\t97546\n", "97546"),
    (CPT, "00100", "00100"),
    (CPT, "99499", "99499"),
    (CPT, "0001F", "0001F"),
    (CPT, "0001f", "0001F"),
    (CPT, "0001T", "0001T"),
    (CPT, "0001t", "0001T"),
    (CPT, "0001U", "0001U"),
    (CPT, "0001u", "0001U"),
    # HCPCS Level II, every first letter in use
    (HCPCS, "S9117", "S9117"),
    (HCPCS, "s9117", "S9117"),
    (HCPCS, " G0283 ", "G0283"),
    *[(HCPCS, f"{letter}0000", f"{letter}0000") for letter in "ABCEGHJKLMPQRSTUV"],
    # ICD-10-CM
    (CM, "S52.501A", "S52.501A"),
    (CM, "s52501a", "S52.501A"),
    (CM, "S52501A", "S52.501A"),
    (CM, " s52.501a ", "S52.501A"),
    (CM, "S52.501a", "S52.501A"),
    (CM, "Z85", "Z85"),
    (CM, "z85", "Z85"),
    (CM, "Z85.", "Z85"),
    (CM, "Z850", "Z85.0"),
    (CM, "Z85.0", "Z85.0"),
    (CM, "Z85.00", "Z85.00"),
    (CM, "Z8500", "Z85.00"),
    (CM, "E11.9", "E11.9"),
    (CM, "e119", "E11.9"),
    (CM, "U07.1", "U07.1"),
    (CM, "R52", "R52"),
    (CM, "C4A.0", "C4A.0"),
    (CM, "c4a0", "C4A.0"),
    (CM, "M1A.0110", "M1A.0110"),
    (CM, "T88.9XXS", "T88.9XXS"),
    (CM, "t889xxs", "T88.9XXS"),
    (CM, "S00.00XA", "S00.00XA"),
    (CM, "S00.00X", "S00.00X"),
    (CM, "Z87.828", "Z87.828"),
    (CM, "O09.A0", "O09.A0"),
    # ICD-10-PCS
    (PCS, "0FT44ZZ", "0FT44ZZ"),
    (PCS, "0ft44zz", "0FT44ZZ"),
    (PCS, " 0FT44ZZ ", "0FT44ZZ"),
    (PCS, "BW20ZZZ", "BW20ZZZ"),
    (PCS, "XW033E5", "XW033E5"),
    (PCS, "F07M6ZZ", "F07M6ZZ"),
    (PCS, "GZ10ZZZ", "GZ10ZZZ"),
    (PCS, "HZ2ZZZZ", "HZ2ZZZZ"),
]

INVALID = [
    # Empty and blank
    *[(system, text) for system in System for text in ["", " ", "\t\n"]],
    # CPT
    (CPT, "9754"),
    (CPT, "975466"),
    (CPT, "97A4"),
    (CPT, "ABCDE"),
    (CPT, "97546+"),
    (CPT, "+97546"),
    (CPT, "0001A"),
    (CPT, "001FT"),
    (CPT, "S9117"),
    (CPT, "9754.6"),
    (CPT, "97 546"),
    (CPT, "９７５４６"),
    # HCPCS
    (HCPCS, "S911"),
    (HCPCS, "S91177"),
    (HCPCS, "97546"),
    (HCPCS, "SS117"),
    (HCPCS, "S91.17"),
    *[(HCPCS, f"{letter}0000") for letter in "DFINOWXYZ"],
    # ICD-10-CM
    (CM, "S52.501AA"),
    (CM, "S52501AA"),
    (CM, "Z8"),
    (CM, "Z"),
    (CM, "Z8.5"),
    (CM, "Z85..0"),
    (CM, ".Z85"),
    (CM, "Z85.0."),
    (CM, "ZZ5"),
    (CM, "585"),
    (CM, "Z85 0"),
    (CM, "Z85-0"),
    (CM, "Z85.0+"),
    (CM, "Z85.\u00e9"),
    (CM, "\u017f52501a"),
    (CM, "97546"),
    # ICD-10-PCS
    (PCS, "0FT44Z"),
    (PCS, "0FT44ZZZ"),
    (PCS, "0FT44ZO"),
    (PCS, "0FI44ZZ"),
    (PCS, "0FT.44ZZ"),
    (PCS, "AFT44ZZ"),
    (PCS, "S52501A"),
    (PCS, "ZFT44ZZ"),
]


@pytest.mark.parametrize(("system", "text", "expected"), VALID)
def test_normalize_valid(system, text, expected):
    assert normalize(system, text) == expected
    assert is_valid(system, text)


@pytest.mark.parametrize(("system", "text", "expected"), VALID)
def test_normalize_is_idempotent(system, text, expected):
    assert normalize(system, expected) == expected


@pytest.mark.parametrize(("system", "text"), INVALID)
def test_normalize_invalid_raises_with_plain_message(system, text):
    with pytest.raises(CodeError) as caught:
        normalize(system, text)
    message = str(caught.value)
    assert SYSTEM_LABELS[system] in message
    assert message.endswith(".")
    if text.strip():
        assert f"\u201c{text.strip()}\u201d" in message
    assert not is_valid(system, text)


def test_code_error_is_a_value_error():
    assert issubclass(CodeError, ValueError)


def test_normalize_message_reads_plainly():
    with pytest.raises(CodeError) as caught:
        normalize(CPT, "97A4")
    assert str(caught.value) == (
        "\u201c97A4\u201d is not a CPT code: a CPT code is five characters "
        "(five digits, or four digits followed by F, T or U), such as 97546 or 0001T."
    )


def test_normalize_message_for_empty_input():
    with pytest.raises(CodeError, match="No code was given: enter a CPT code"):
        normalize(CPT, "  ")


@pytest.mark.parametrize(
    ("system", "text", "hint"),
    [
        (CPT, "S9117", "It looks like a HCPCS Level II code."),
        (HCPCS, "97546", "It looks like a CPT code."),
        (HCPCS, "S52.501A", "It looks like an ICD-10-CM code."),
        (CM, "0FT44ZZ", "It looks like an ICD-10-PCS code."),
        (PCS, "S52.501A", "It looks like an ICD-10-CM code."),
    ],
)
def test_normalize_message_names_the_system_the_code_looks_like(system, text, hint):
    with pytest.raises(CodeError) as caught:
        normalize(system, text)
    assert str(caught.value).endswith(hint)


def test_normalize_message_shortens_long_input():
    with pytest.raises(CodeError) as caught:
        normalize(CPT, "9" * 500)
    assert len(str(caught.value)) < 300
    assert "\u2026" in str(caught.value)


@pytest.mark.parametrize("system", list(System))
def test_normalize_accepts_the_enum_value_as_a_string(system):
    code = {CPT: "97546", HCPCS: "S9117", CM: "Z85.3", PCS: "0FT44ZZ"}[system]
    assert normalize(system.value, code) == code


@pytest.mark.parametrize("system", list(System))
@pytest.mark.parametrize("value", [None, 97546, b"97546"])
def test_non_text_is_not_a_code(system, value):
    assert not is_valid(system, value)
    assert systems_for(value) == []
    with pytest.raises(CodeError):
        normalize(system, value)


# --- Guessing the system -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("97546", [CPT]),
        (" 97546 ", [CPT]),
        ("0001T", [CPT]),
        ("0001f", [CPT]),
        ("S9117", [HCPCS, CM]),
        ("s9117", [HCPCS, CM]),
        ("G0283", [HCPCS, CM]),
        ("S52.501A", [CM]),
        ("s52501a", [CM]),
        ("S52501A", [CM]),
        ("Z85", [CM]),
        ("Z85.3", [CM]),
        ("U07.1", [CM]),
        ("D0120", [CM]),
        ("0FT44ZZ", [PCS]),
        ("0ft44zz", [PCS]),
        # Both ICD-10 shapes: a final Z is the PCS "no qualifier" value.
        ("B020ZZZ", [PCS, CM]),
        ("F01ZZZZ", [PCS, CM]),
        ("B020ZZA", [CM, PCS]),
        ("hello", []),
        ("", []),
        ("   ", []),
        ("9754", []),
        ("975466", []),
        ("S52.501AA", []),
        ("97010-97799", []),
        ("+ 97546", []),
        ("S00.00X+", []),
    ],
)
def test_systems_for(text, expected):
    assert systems_for(text) == expected


# --- Sort keys -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "code", "expected"),
    [
        (CPT, "97546", "97546"),
        (CPT, " 97546 ", "97546"),
        (CPT, "0001F", "F0001"),
        (CPT, "0001t", "T0001"),
        (CPT, "0001U", "U0001"),
        (HCPCS, "s9117", "S9117"),
        (CM, "S52.501A", "S52501A"),
        (CM, "s52501a", "S52501A"),
        (CM, "Z85", "Z85"),
        (CM, "Z85.", "Z85"),
        (CM, "Z85.0", "Z850"),
        (CM, "T88.9XXS", "T889XXS"),
        (PCS, "0ft44zz", "0FT44ZZ"),
    ],
)
def test_sort_key(system, code, expected):
    assert sort_key(system, code) == expected


@pytest.mark.parametrize(("system", "text"), INVALID)
def test_sort_key_of_invalid_code_raises(system, text):
    with pytest.raises(CodeError):
        sort_key(system, text)


@pytest.mark.parametrize(
    ("system", "in_order"),
    [
        (CM, ["Z85", "Z85.0", "Z85.00", "Z85.01", "Z85.1", "Z85.9", "Z86", "Z86.19"]),
        (CM, ["S00", "S00.0", "S00.00", "S00.00X", "S00.00XA", "S00.00XS", "S00.01"]),
        (CM, ["C49.A0", "C4A", "C4A.0", "C50"]),
        (CPT, ["00100", "97010", "97546", "99499", "0001F", "0500F", "0001T", "0001U"]),
        (HCPCS, ["A0021", "G0283", "S9117", "V5364"]),
        (PCS, ["0FT40ZZ", "0FT44ZZ", "BW20ZZZ", "XW033E5"]),
    ],
)
def test_sort_keys_order_codes(system, in_order):
    keys = [sort_key(system, code) for code in in_order]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


def test_code_sort_tuple_orders_by_system_then_key():
    mixed = [
        (PCS, "0FT44ZZ"),
        (CM, "Z85.3"),
        (CPT, "0001T"),
        (HCPCS, "S9117"),
        (CM, "A00"),
        (CPT, "97546"),
    ]
    ordered = sorted(mixed, key=lambda pair: code_sort_tuple(*pair))
    assert ordered == [
        (CPT, "97546"),
        (CPT, "0001T"),
        (HCPCS, "S9117"),
        (CM, "A00"),
        (CM, "Z85.3"),
        (PCS, "0FT44ZZ"),
    ]


def test_range_end_mark_sorts_after_every_key_character():
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    assert all(character < RANGE_END_MARK for character in alphabet)


# --- Range keys ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "start", "end", "expected"),
    [
        (CPT, "97546", None, ("97546", "97546~")),
        (CPT, "97010", "97799", ("97010", "97799~")),
        (CPT, "0200T", "0201T", ("T0200", "T0201~")),
        (HCPCS, "S9117", None, ("S9117", "S9117~")),
        (CM, "Z85", None, ("Z85", "Z85~")),
        (CM, "z85.00", "Z85.9", ("Z8500", "Z859~")),
        (CM, "S00.00X", "T88.9XX", ("S0000X", "T889XX~")),
        (CM, "Z85", "Z85.9", ("Z85", "Z859~")),
        (CM, "Z85.3", "Z85.3", ("Z853", "Z853~")),
        (PCS, "0FT40ZZ", "0FT44ZZ", ("0FT40ZZ", "0FT44ZZ~")),
    ],
)
def test_range_keys(system, start, end, expected):
    assert range_keys(system, start, end) == expected


@pytest.mark.parametrize(
    ("system", "start", "end", "message"),
    [
        (CM, "Z85.00", "Z84", "The range ends (Z84) before it starts (Z85.00)."),
        (CM, "Z85.9", "Z85", "The range ends (Z85) before it starts (Z85.9)."),
        (CPT, "97546", "97545", "The range ends (97545) before it starts (97546)."),
        (CPT, "97546", "0001T", "runs from a Category I CPT code to a Category III"),
        (CPT, "0200T", "0201F", "runs from a Category III CPT code to a Category II"),
        (CPT, "0001F", "0001U", "Category II CPT code to a PLA one"),
        (CPT, "9754", None, "is not a CPT code"),
        (CM, "Z85", "Z8", "is not an ICD-10-CM code"),
    ],
)
def test_range_keys_errors(system, start, end, message):
    with pytest.raises(CodeError) as caught:
        range_keys(system, start, end)
    assert message in str(caught.value)


# --- Parsing ranges: every code and range in the seed policy -------------------

SEED = [
    # (system, text, start, end, seventh_character, is_range, addon, display)
    (CPT, "97537", "97537", "97537", False, False, False, "97537"),
    (CPT, "97545", "97545", "97545", False, False, False, "97545"),
    (CPT, "+ 97546", "97546", "97546", False, False, True, "97546"),
    (HCPCS, "S9117", "S9117", "S9117", False, False, False, "S9117"),
    (
        CM,
        "S00.00X+ - T88.9XX+",
        "S00.00X",
        "T88.9XX",
        True,
        True,
        False,
        "S00.00X+ - T88.9XX+",
    ),
    (CM, "Z51.89", "Z51.89", "Z51.89", False, False, False, "Z51.89"),
    (CM, "Z85.00 - Z85.9", "Z85.00", "Z85.9", False, True, False, "Z85.00 - Z85.9"),
    (CM, "Z86.19", "Z86.19", "Z86.19", False, False, False, "Z86.19"),
    (CM, "Z86.59", "Z86.59", "Z86.59", False, False, False, "Z86.59"),
    (
        CM,
        "Z87.81 - Z87.828",
        "Z87.81",
        "Z87.828",
        False,
        True,
        False,
        "Z87.81 - Z87.828",
    ),
    (
        CM,
        "Z91.410 - Z91.414",
        "Z91.410",
        "Z91.414",
        False,
        True,
        False,
        "Z91.410 - Z91.414",
    ),
    (CM, "Z92.3", "Z92.3", "Z92.3", False, False, False, "Z92.3"),
    (
        CM,
        "Z98.870 - Z98.89",
        "Z98.870",
        "Z98.89",
        False,
        True,
        False,
        "Z98.870 - Z98.89",
    ),
]


@pytest.mark.parametrize(
    ("system", "text", "start", "end", "seventh", "is_range", "addon", "display"),
    SEED,
)
def test_parse_range_seed_policy(
    system, text, start, end, seventh, is_range, addon, display
):
    parsed = parse_range(system, text)
    assert parsed.start == start
    assert parsed.end == end
    assert (parsed.start_key, parsed.end_key) == range_keys(system, start, end)
    assert parsed.seventh_character is seventh
    assert parsed.is_range is is_range
    assert parsed.addon is addon
    assert str(parsed) == display
    assert in_range(system, start, parsed)
    assert in_range(system, end, parsed)


@pytest.mark.parametrize(
    ("system", "text", "start", "end", "is_range", "addon"),
    [
        (CPT, "97010-97799", "97010", "97799", True, False),
        (CPT, "97010 - 97799", "97010", "97799", True, False),
        (CPT, "97010 -97799", "97010", "97799", True, False),
        (CPT, "97010-  97799", "97010", "97799", True, False),
        (CPT, "97010\u201397799", "97010", "97799", True, False),
        (CPT, "97010 \u2013 97799", "97010", "97799", True, False),
        (CPT, "97010\u201497799", "97010", "97799", True, False),
        (CPT, "97010 \u2014 97799", "97010", "97799", True, False),
        (CPT, "97010 \u2212 97799", "97010", "97799", True, False),
        (CPT, "  97546  ", "97546", "97546", False, False),
        (CPT, "+97546", "97546", "97546", False, True),
        (CPT, "+   97546", "97546", "97546", False, True),
        (CPT, "+ 97546 - 97548", "97546", "97548", True, True),
        (CPT, "0200t - 0201t", "0200T", "0201T", True, False),
        (CPT, "97546 - 97546", "97546", "97546", True, False),
        (HCPCS, "+ G0283", "G0283", "G0283", False, True),
        (HCPCS, "G0151 - G0164", "G0151", "G0164", True, False),
        (CM, "z85.00 - z85.9", "Z85.00", "Z85.9", True, False),
        (CM, "Z8500-Z859", "Z85.00", "Z85.9", True, False),
        (CM, "Z85", "Z85", "Z85", False, False),
        (CM, "Z85 - Z86", "Z85", "Z86", True, False),
        (PCS, "0FT40ZZ - 0FT44ZZ", "0FT40ZZ", "0FT44ZZ", True, False),
    ],
)
def test_parse_range_spellings(system, text, start, end, is_range, addon):
    parsed = parse_range(system, text)
    assert (parsed.start, parsed.end) == (start, end)
    assert parsed.is_range is is_range
    assert parsed.addon is addon
    assert parsed.seventh_character is False


@pytest.mark.parametrize(
    ("text", "start", "end", "display"),
    [
        ("S00.00X+ - T88.9XX+", "S00.00X", "T88.9XX", "S00.00X+ - T88.9XX+"),
        ("S00.00X+-T88.9XX+", "S00.00X", "T88.9XX", "S00.00X+ - T88.9XX+"),
        ("s0000x+ \u2013 t889xx+", "S00.00X", "T88.9XX", "S00.00X+ - T88.9XX+"),
        ("S00.00X + - T88.9XX +", "S00.00X", "T88.9XX", "S00.00X+ - T88.9XX+"),
        ("S52.501+", "S52.501", "S52.501", "S52.501+"),
        ("S00.00XA - T88.9XX+", "S00.00XA", "T88.9XX", "S00.00XA - T88.9XX+"),
    ],
)
def test_parse_range_seventh_character(text, start, end, display):
    parsed = parse_range(CM, text)
    assert (parsed.start, parsed.end) == (start, end)
    assert parsed.seventh_character is True
    assert str(parsed) == display


# --- Membership ----------------------------------------------------------------

MEMBERSHIP = [
    # (system, range text, code, inside)
    (CM, "S00.00X+ - T88.9XX+", "S52.501A", True),
    (CM, "S00.00X+ - T88.9XX+", "T88.9XXS", True),
    (CM, "S00.00X+ - T88.9XX+", "S00.00XA", True),
    (CM, "S00.00X+ - T88.9XX+", "s00.00xd", True),
    (CM, "S00.00X+ - T88.9XX+", "T88.9XXA", True),
    (CM, "S00.00X+ - T88.9XX+", "T14.90XA", True),
    (CM, "S00.00X+ - T88.9XX+", "R52", False),
    (CM, "S00.00X+ - T88.9XX+", "U07.1", False),
    (CM, "S00.00X+ - T88.9XX+", "S00", False),
    (CM, "S00.00X+ - T88.9XX+", "T89", False),
    (CM, "S00.00X+ - T88.9XX+", "T88.9XY", False),
    (CM, "S00.00X+ - T88.9XX+", "Z85.3", False),
    (CM, "Z85.00 - Z85.9", "Z85.3", True),
    (CM, "Z85.00 - Z85.9", "Z85.00", True),
    (CM, "Z85.00 - Z85.9", "Z85.01", True),
    (CM, "Z85.00 - Z85.9", "Z85.9", True),
    (CM, "Z85.00 - Z85.9", "Z85.820", True),
    (CM, "Z85.00 - Z85.9", "Z85", False),
    (CM, "Z85.00 - Z85.9", "Z85.0", False),
    (CM, "Z85.00 - Z85.9", "Z86.19", False),
    (CM, "Z85.00 - Z85.9", "Z84.9", False),
    (CM, "Z87.81 - Z87.828", "Z87.820", True),
    (CM, "Z87.81 - Z87.828", "Z87.81", True),
    (CM, "Z87.81 - Z87.828", "Z87.828", True),
    (CM, "Z87.81 - Z87.828", "Z87.83", False),
    (CM, "Z87.81 - Z87.828", "Z87.8", False),
    (CM, "Z87.81 - Z87.828", "Z87.89", False),
    (CM, "Z91.410 - Z91.414", "Z91.412", True),
    (CM, "Z91.410 - Z91.414", "Z91.419", False),
    (CM, "Z98.870 - Z98.89", "Z98.871", True),
    (CM, "Z98.870 - Z98.89", "Z98.890", True),
    (CM, "Z98.870 - Z98.89", "Z98.86", False),
    (CM, "Z98.870 - Z98.89", "Z98.9", False),
    (CM, "Z85", "Z85.3", True),
    (CM, "Z85", "Z85.820", True),
    (CM, "Z85", "Z86", False),
    (CM, "Z85", "Z84", False),
    (CM, "Z85 - Z85.0", "Z85.09", True),
    (CPT, "97010-97799", "97546", True),
    (CPT, "97010-97799", "97010", True),
    (CPT, "97010-97799", "97799", True),
    (CPT, "97010-97799", "97800", False),
    (CPT, "97010-97799", "97009", False),
    (CPT, "97010-97799", "0001T", False),
    (CPT, "0200T - 0201T", "0201T", True),
    (CPT, "0200T - 0201T", "0201F", False),
    (CPT, "0200T - 0201T", "0200U", False),
    (CPT, "00100 - 99499", "0500F", False),
    (CPT, "0001F - 0015F", "0010F", True),
    (HCPCS, "G0151 - G0164", "g0160", True),
    (HCPCS, "G0151 - G0164", "G0165", False),
    (PCS, "0FT40ZZ - 0FT44ZZ", "0FT42ZZ", True),
    (PCS, "0FT40ZZ - 0FT44ZZ", "0FT45ZZ", False),
]


@pytest.mark.parametrize(("system", "text", "code", "inside"), MEMBERSHIP)
def test_in_range(system, text, code, inside):
    parsed = parse_range(system, text)
    assert in_range(system, code, parsed) is inside
    assert parsed.contains_key(sort_key(system, code)) is inside


@pytest.mark.parametrize(
    ("system", "code", "neighbours"),
    [
        (CPT, "97546", ["97545", "97547"]),
        (CPT, "0001T", ["0000T", "0002T", "0001F", "0001U"]),
        (HCPCS, "S9117", ["S9116", "S9118", "T9117"]),
        (CM, "Z92.3", ["Z92.2", "Z92.4", "Z92", "Z93"]),
        (CM, "Z51.89", ["Z51.88", "Z51.8", "Z51.9"]),
        (CM, "S52.501A", ["S52.501", "S52.501B", "S52.502A"]),
        (PCS, "0FT44ZZ", ["0FT43ZZ", "0FT45ZZ", "0FT44ZY"]),
    ],
)
def test_single_code_range_holds_itself_not_its_neighbours(system, code, neighbours):
    single = parse_range(system, code)
    assert not single.is_range
    assert single.start == single.end == code
    assert in_range(system, code, single)
    for neighbour in neighbours:
        assert not in_range(system, neighbour, single), neighbour


def test_single_icd10cm_code_holds_its_descendants():
    single = parse_range(CM, "Z85.0")
    assert in_range(CM, "Z85.00", single)
    assert in_range(CM, "Z85.09", single)
    assert not in_range(CM, "Z85.1", single)


def test_in_range_with_invalid_code_raises():
    with pytest.raises(CodeError):
        in_range(CPT, "9754", parse_range(CPT, "97010-97799"))


# --- Parsing errors ------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "text", "fragment"),
    [
        (CPT, "", "No code was given"),
        (CM, "   ", "No code was given"),
        (CPT, "9754", "\u201c9754\u201d is not a CPT code"),
        (CPT, "975466", "\u201c975466\u201d is not a CPT code"),
        (CPT, "ABCDE", "\u201cABCDE\u201d is not a CPT code"),
        (CM, "S52.501AA", "\u201cS52.501AA\u201d is not an ICD-10-CM code"),
        (CM, "Z85.00 - Z84", "The range ends (Z84) before it starts (Z85.00)."),
        (CPT, "97546 - 97545", "The range ends (97545) before it starts (97546)."),
        (CPT, "97546+", "marks an ICD-10-CM code that needs a 7th character"),
        (HCPCS, "S9117+", "HCPCS Level II codes have no 7th character"),
        (PCS, "0FT44ZZ+", "ICD-10-PCS codes have no 7th character"),
        (CM, "S52.501A+", "S52.501A already has its 7th character"),
        (CM, "+ Z85.3", "ICD-10-CM codes have no add-ons"),
        (PCS, "+ 0FT44ZZ", "ICD-10-PCS codes have no add-ons"),
        (CPT, "+", "no code after the \u201c+\u201d"),
        (CPT, "97A - 97546", "In \u201c97A - 97546\u201d, the start \u201c97A\u201d"),
        (CPT, "97546 - 975", "In \u201c97546 - 975\u201d, the end \u201c975\u201d"),
        (CM, "Z85.00 - Z8", "the end \u201cZ8\u201d is not an ICD-10-CM code"),
        (CPT, "97546 -", "has no code after the dash"),
        (CPT, "- 97546", "has no code before the dash"),
        (CPT, "97010 - 97500 - 97799", "has more than one dash"),
        (CPT, "97546 - S9117", "mixes CPT and HCPCS Level II codes"),
        (CPT, "S9117 - 97546", "mixes CPT and HCPCS Level II codes"),
        (HCPCS, "S9117 - 97546", "mixes HCPCS Level II and CPT codes"),
        (CM, "Z85.00 - 97546", "mixes ICD-10-CM and CPT codes"),
        (CM, "Z85.00 - 0FT44ZZ", "mixes ICD-10-CM and ICD-10-PCS codes"),
        (CPT, "97546 - 0001T", "runs from a Category I CPT code to a Category III"),
        (CM, "Z86.19, Z86.59", "holds more than one code"),
        (CM, "Z86.19; Z86.59", "holds more than one code"),
        (CM, "S52.501A - S52.501", "The range ends (S52.501) before it starts"),
    ],
)
def test_parse_range_errors(system, text, fragment):
    with pytest.raises(CodeError) as caught:
        parse_range(system, text)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("system", "text"),
    [(system, text) for system, text in INVALID if "+" not in text],
)
def test_parse_range_rejects_every_invalid_code(system, text):
    with pytest.raises(CodeError):
        parse_range(system, text)


@pytest.mark.parametrize(("system", "text", "expected"), VALID)
def test_parse_range_accepts_every_valid_code(system, text, expected):
    parsed = parse_range(system, text)
    assert parsed.start == parsed.end == expected


def test_seed_line_with_two_codes_parses_item_by_item():
    items = [parse_range(CM, item) for item in "Z86.19, Z86.59".split(",")]
    assert [str(item) for item in items] == ["Z86.19", "Z86.59"]


def test_code_range_is_frozen():
    parsed = parse_range(CPT, "97546")
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.start = "97545"


def test_code_range_addon_defaults_to_false():
    built = CodeRange("97546", "97546", "97546", "97546~", False, False)
    assert built.addon is False
    assert built == parse_range(CPT, "97546")


# --- Properties ----------------------------------------------------------------

ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

icd10cm_codes = st.from_regex(r"[A-Z][0-9][A-Z0-9](\.[A-Z0-9]{1,4})?", fullmatch=True)
codes_by_system = {
    CPT: st.from_regex(r"[0-9]{5}|[0-9]{4}[FTU]", fullmatch=True),
    HCPCS: st.from_regex(r"[ABCEGHJKLMPQRSTUV][0-9]{4}", fullmatch=True),
    CM: icd10cm_codes,
    PCS: st.from_regex(r"[0-9BCDFGHX][0-9A-HJ-NP-Z]{6}", fullmatch=True),
}
system_and_code = st.sampled_from(list(System)).flatmap(
    lambda system: st.tuples(st.just(system), codes_by_system[system])
)
system_and_two_codes = st.sampled_from(list(System)).flatmap(
    lambda system: st.tuples(
        st.just(system), codes_by_system[system], codes_by_system[system]
    )
)


def _same_cpt_kind(a, b):
    # A range never runs between kinds of CPT code (Category I, II, III, PLA).
    def kind(code):
        return code[-1] if code[-1].isalpha() else ""

    return kind(a) == kind(b)


@quick
@given(icd10cm_codes)
def test_icd10cm_normalize_is_idempotent(code):
    once = normalize(CM, code)
    assert once == code
    assert normalize(CM, once) == once


@quick
@given(icd10cm_codes, st.data())
def test_icd10cm_variants_normalise_to_the_canonical_form(code, data):
    assert normalize(CM, code.replace(".", "").lower()) == code
    mixed_case = "".join(
        character.lower() if data.draw(st.booleans()) else character
        for character in code
    )
    dotless = data.draw(st.booleans())
    variant = mixed_case.replace(".", "") if dotless else mixed_case
    padding = data.draw(st.sampled_from(["", " ", "\t", "  \n"]))
    assert normalize(CM, padding + variant + padding) == code


@quick
@given(icd10cm_codes)
def test_icd10cm_ancestors_cover_their_descendants(code):
    key = sort_key(CM, code)
    for length in range(3, len(key) + 1):
        ancestor = normalize(CM, key[:length])
        start_key, end_key = range_keys(CM, ancestor)
        assert start_key == sort_key(CM, ancestor)
        assert start_key <= key < end_key


@quick
@given(system_and_two_codes)
def test_single_code_range_holds_exactly_its_descendants(case):
    system, a, b = case
    holds = in_range(system, b, parse_range(system, a))
    assert holds is sort_key(system, b).startswith(sort_key(system, a))


@quick
@given(system_and_two_codes)
def test_range_holds_both_ends(case):
    system, a, b = case
    if sort_key(system, a) > sort_key(system, b):
        a, b = b, a
    if system is CPT:
        assume(_same_cpt_kind(a, b))
    parsed = parse_range(system, f"{a} - {b}")
    assert in_range(system, a, parsed)
    assert in_range(system, b, parsed)
    assert parsed.is_range


@quick
@given(system_and_two_codes)
def test_range_in_wrong_order_is_refused(case):
    system, a, b = case
    assume(sort_key(system, a) < sort_key(system, b))
    if system is CPT:
        assume(_same_cpt_kind(a, b))
    with pytest.raises(CodeError, match="before it starts"):
        parse_range(system, f"{b} - {a}")


@quick
@given(system_and_code)
def test_displayed_range_parses_back_to_itself(case):
    system, code = case
    for text in (code, f"{code} - {code}"):
        parsed = parse_range(system, text)
        assert parse_range(system, str(parsed)) == parsed


@quick
@given(system_and_code)
def test_a_valid_code_fits_its_own_system(case):
    system, code = case
    assert system in systems_for(code)
    assert system in systems_for(f"  {code.lower()} ")


@quick
@given(st.text(alphabet=ALNUM + ALNUM.lower() + " .+-\u2013,\u017f\u00e9", max_size=12))
def test_arbitrary_text_is_read_or_refused_with_code_error(text):
    fits = systems_for(text)
    assert len(fits) == len(set(fits))
    for system in System:
        assert (system in fits) is is_valid(system, text)
        try:
            canonical = normalize(system, text)
        except CodeError as error:
            assert str(error)
            assert system not in fits
        else:
            assert system in fits
            assert normalize(system, canonical) == canonical
            assert sort_key(system, canonical) == sort_key(system, text)
        try:
            parsed = parse_range(system, text)
        except CodeError as error:
            assert str(error)
        else:
            assert parsed.start_key <= parsed.end_key
            assert parsed.contains_key(parsed.start_key)


@quick
@given(st.text(max_size=20))
def test_any_unicode_text_never_raises_anything_but_code_error(text):
    for system in System:
        for function in (normalize, sort_key, parse_range):
            try:
                function(system, text)
            except CodeError:
                pass
