"""The lay-term thesaurus: phrases people use, the codes they mean, word synonyms."""

import re
import unicodedata

_SPACES = re.compile(r"\s+")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})


def normalize_phrase(text: str) -> str:
    """Lower case, straight apostrophes, single spaces: for phrases and queries."""
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    return _SPACES.sub(" ", text).strip().lower()
