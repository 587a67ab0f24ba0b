"""
Reading a query before any full text: codes, prefixes, ranges, system words, policy
numbers and the remaining words.

Nothing here touches the database. The words come out as plain lower-case tokens of
letters and digits; the backends quote them into FTS5 strings or a tsquery, so user
input never reaches either query syntax.
"""

import re
import unicodedata
from dataclasses import dataclass, field

from procedures import codes

from .documents import fold

# Longer input is cut, not refused: the form refuses more than 200 characters, and
# anything else calling search() still gets an answer.
MAX_PARSED_LENGTH = 500
MAX_WORDS = 12
_ICD10CM_LENGTH = 7
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ue000\ue001]")
_PHRASE = re.compile(r'"([^"]*)"')
_SPACED_DASH = re.compile(
    r"(?<=[0-9A-Za-z+])\s*[-\u2010-\u2015\u2212]\s*(?=[0-9A-Za-z])"
)
_TOKEN_EDGES = "()[]{}<>:;,.!?*^'\"`~|\\/&=%$#@"
_WORD = re.compile(r"\w+")
_CODEISH = re.compile(r"[A-Za-z0-9]*[0-9][A-Za-z0-9.]*\+?")
_RANGE = re.compile(r"([A-Za-z0-9.]+\+?)-([A-Za-z0-9.]+\+?)")
_ICD_PREFIX = re.compile(r"[A-Z][0-9][A-Z0-9]{0,5}")
_HCPCS_PREFIX = re.compile(r"[ABCEGHJKLMPQRSTUV][0-9]{1,3}")
_CPT_PREFIX = re.compile(r"[0-9]{2,4}")
_POLICY_MARKERS = {"cpb", "policy", "bulletin", "no", "number", "num"}
_NUMBER = re.compile(r"[0-9]{1,6}|[A-Za-z]{0,4}[.-]?[0-9]{1,6}")


@dataclass
class Parsed:
    text: str
    systems: list[codes.System] = field(default_factory=list)
    # (system, canonical code) for every system a code-shaped token fits.
    codes: list[tuple[str, str]] = field(default_factory=list)
    # (system, first key, last key, how to say it): ranges and prefixes as key spans.
    spans: list[tuple[str, str, str, str]] = field(default_factory=list)
    # Policy number keys, and whether the query said "CPB", "policy" or "No.".
    numbers: list[str] = field(default_factory=list)
    policy_marker: bool = False
    # Full-text words (folded) and quoted phrases (lists of words).
    words: list[str] = field(default_factory=list)
    phrases: list[list[str]] = field(default_factory=list)
    # Code-shaped tokens, as words, for full text when no structured lookup uses them.
    code_words: list[str] = field(default_factory=list)
    # How many tokens were read as codes.
    code_tokens: int = 0

    # Ranges read from the query (prefixes are spans too, but not ranges).
    ranges: int = 0

    @property
    def names_one_code(self) -> bool:
        """The query is one code, perhaps with its system: "CPT 97545"."""
        return (
            self.code_tokens == 1
            and bool(self.codes)
            and not (self.words or self.phrases or self.ranges)
        )


def clean(text: str) -> str:
    """The query as it is read: NFKC, no control characters, bounded length."""
    if not isinstance(text, str):
        return ""
    text = unicodedata.normalize("NFKC", text[: MAX_PARSED_LENGTH * 4])
    return _CONTROL.sub(" ", text)[:MAX_PARSED_LENGTH].strip()


def words_in(text: str) -> list[str]:
    return [word[:40] for word in _WORD.findall(fold(text)) if word.strip("_")]


def _systems_word(token: str, following: str) -> tuple[codes.System | None, int]:
    """A system named by one token or two ("ICD 10"); (system, tokens used)."""
    lower = token.lower()
    if lower in {"icd", "hcpcs", "cpt"} and following:
        joined = codes.system_from_slug(f"{lower}{following}")
        if joined is not None and not codes.systems_for(following):
            return joined, 2
    if not any(char.isalpha() for char in token):
        return None, 0
    return codes.system_from_slug(token), 1


def _prefix_spans(token: str, systems) -> list[tuple[str, str, str, str]]:
    text = token.upper().replace(".", "")
    spans = []
    candidates = {
        codes.System.CPT: _CPT_PREFIX,
        codes.System.HCPCS: _HCPCS_PREFIX,
        codes.System.ICD10CM: _ICD_PREFIX,
    }
    for system, pattern in candidates.items():
        if systems and system not in systems:
            continue
        if pattern.fullmatch(text):
            spans.append(
                (
                    system.value,
                    text,
                    text + codes.RANGE_END_MARK,
                    f"starting with {token}",
                )
            )
    return spans


def _range_spans(token: str, systems) -> list[tuple[str, str, str, str]]:
    start = token.split("-")[0].rstrip("+")
    for system in systems or codes.systems_for(start):
        try:
            parsed = codes.parse_range(system, token)
        except codes.CodeError:
            continue
        return [
            (
                system.value,
                parsed.start_key,
                parsed.end_key,
                f"from {parsed.start} to {parsed.end}",
            )
        ]
    return []


def parse(query: str) -> Parsed:
    text = clean(query)
    parsed = Parsed(text=text)
    for phrase in _PHRASE.findall(text):
        words = words_in(phrase)
        if len(words) > 1:
            parsed.phrases.append(words[:MAX_WORDS])
        else:
            parsed.words.extend(words)
    rest = _PHRASE.sub(" ", text).replace('"', " ")
    rest = _SPACED_DASH.sub("-", rest)
    tokens = [token.strip(_TOKEN_EDGES) for token in re.split(r"[\s,;]+", rest)]
    tokens = [token for token in tokens if token]

    index = 0
    leftovers = []
    while index < len(tokens):
        token = tokens[index]
        following = tokens[index + 1] if index + 1 < len(tokens) else ""
        system, used = _systems_word(token, following)
        if system is not None:
            parsed.systems.append(system)
            index += used
            continue
        leftovers.append(token)
        index += 1

    numbers_seen = False
    for token in leftovers:
        if token.lower() in _POLICY_MARKERS:
            parsed.policy_marker = True
            continue
        if (
            token.isascii()
            and _RANGE.fullmatch(token)
            and any(c.isdigit() for c in token)
        ):
            spans = _range_spans(token, parsed.systems)
            if spans:
                parsed.spans.extend(spans)
                parsed.ranges += 1
                continue
        if not _CODEISH.fullmatch(token) or not token.isascii():
            parsed.words.extend(words_in(token))
            continue
        parsed.code_words.extend(words_in(token))
        parsed.code_tokens += 1
        bare = token.rstrip("+")
        fitting = codes.systems_for(bare)
        if parsed.systems:
            fitting = [system for system in fitting if system in parsed.systems]
        for system in fitting:
            canonical = codes.normalize(system, bare)
            parsed.codes.append((system.value, canonical))
            key = codes.sort_key(system, canonical)
            icd = system is codes.System.ICD10CM and (
                fitting[0] is system or "." in bare
            )
            if icd and len(key) < _ICD10CM_LENGTH:
                # A category or subcategory also stands for the codes below it.
                parsed.spans.append(
                    (
                        system.value,
                        key,
                        key + codes.RANGE_END_MARK,
                        f"under {canonical}",
                    )
                )
        if not fitting:
            parsed.spans.extend(_prefix_spans(bare, parsed.systems))
        if _NUMBER.fullmatch(bare):
            numbers_seen = True
            parsed.numbers.append(bare.upper().lstrip("0") or "0")
    if parsed.policy_marker and not numbers_seen:
        parsed.words.append("policy")
    parsed.words = list(dict.fromkeys(parsed.words))[:MAX_WORDS]
    return parsed


# Words that say nothing about what is searched for: dropped when all the words
# together match nothing ("the pain in my lower back keeps getting worse").
FILLER = frozenset(
    """
    a about after again all also always am an and any are as at be been before
    being both but by can cant could did do does doing dont each even ever every
    feel feeling feels felt few for from get gets getting got had has have having
    he her here him his how i if im in into is it its ive just keep keeping keeps
    kind lately like lot lots me more most much my myself need needs no nor not now
    of off on once only or other our out own pretty quite really same she should
    since so some something sometimes sort still such than that the their them then
    there these they thing things this those through to too very want was way we
    were what when where which while who whom why will with worse would you
    your
    """.split()
)
# A chapter of ICD-10-CM answers a query only when the query says what it is about:
# O pregnancy, P the newborn, V-Y external causes.
_CHAPTER_WORDS = {
    "O": """pregnancy pregnant pregnancies gestation gestational obstetric
        obstetrical labor labour delivery postpartum puerperal puerperium trimester
        maternal prenatal antenatal childbirth miscarriage abortion ectopic
        eclampsia preeclampsia placenta placental lactation cesarean caesarean
        puerperium""",
    "P": """newborn newborns neonatal neonate perinatal fetal fetus birth preterm
        premature""",
    "VWXY": """accident accidental fall fell falling bite bitten struck collision
        crash car motorcycle bicycle bike pedestrian drowning drowned assault
        assaulted vehicle occupant driver passenger external cause hit stung sting
        dog horse""",
}
CHAPTER_WORDS = {
    letters: frozenset(words.split()) for letters, words in _CHAPTER_WORDS.items()
}


def demoted_chapters(words) -> str:
    """The ICD-10-CM chapter letters the query does not name (see ``CHAPTER_WORDS``)."""
    said = set(words)
    return "".join(
        letters for letters, named in CHAPTER_WORDS.items() if not said & named
    )


def meaningful(words: list[str]) -> list[str]:
    """The words that carry meaning: no filler, no one-letter words."""
    return [word for word in words if word not in FILLER and len(word) > 1]
