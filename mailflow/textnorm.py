"""Text folding for matching: case, accents, reply prefixes, punctuation."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_PREFIX = re.compile(
    r"^\s*(?:(?:re|rv|res|resp|fw|fwd|fwrd|enc|tr|aw|wg|sv|vs|rif|antw|r|i|ref)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*"
    r"|\[[^\]]{0,40}\]\s*|\((?:externo|external|sin asunto)\)\s*)+",
    re.IGNORECASE,
)
_NON_WORD = re.compile(r"[^a-z0-9]+")

_STOPWORDS_TEXT = """
de del la el los las mi mis y e a al para por en su sus un una n no nro num numero o con
sr sra srs senor senora senores le les lo me se que es
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


# Spelling variants of one word, folded to the form used in rules/ ("carnet" → "carne").
SYNONYMS = {"carnet": "carne", "carnets": "carne", "carnes": "carne"}


FEW_MARKS = 16  # distinct combining marks removed one by one; more: character by character
FIRST_MARK = "\u0300"  # no character below it is a combining mark


def strip_marks(text: str) -> str:
    """`text` without its combining marks (characters of non-zero Unicode canonical combining
    class, `unicodedata.combining`): what is left of accents after NFKD decomposition. The
    same as keeping each character that is not a mark, done with one `str.replace` per
    distinct mark (a Spanish text has two or three) instead of a Python step per character."""
    if text.isascii():
        return text
    marks = [c for c in set(text) if c >= FIRST_MARK and unicodedata.combining(c)]
    if len(marks) > FEW_MARKS:
        return "".join(c for c in text if not unicodedata.combining(c))
    for mark in marks:
        text = text.replace(mark, "")
    return text


@lru_cache(maxsize=4096)
def fold(text: str) -> str:
    """Lower-case, strip accents (ñ → n), keep letters and digits separated by single spaces."""
    stripped = strip_marks(unicodedata.normalize("NFKD", text.lower()))
    return _NON_WORD.sub(" ", stripped).strip()


def strip_reply_prefixes(subject: str) -> str:
    """Remove stacked reply/forward prefixes and bracketed tags: 'RE: RV: [EXT] Foo' → 'Foo'."""
    previous = None
    current = subject.strip()
    while previous != current:
        previous = current
        current = _PREFIX.sub("", current, count=1).strip()
    return current


def tokens(text: str) -> tuple[str, ...]:
    """Folded words without stop words or pure numbers."""
    return tuple(
        SYNONYMS.get(w, w) for w in fold(text).split() if w not in STOPWORDS and not w.isdigit()
    )
