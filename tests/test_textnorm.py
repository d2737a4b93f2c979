"""`textnorm.strip_marks` against the plain character-by-character filter it replaced."""

from __future__ import annotations

import random
import sys
import unicodedata

from mailflow.textnorm import FEW_MARKS, FIRST_MARK, fold, strip_marks


def reference(text: str) -> str:
    return "".join(c for c in text if not unicodedata.combining(c))


def test_no_mark_comes_before_the_first_mark() -> None:
    assert not any(unicodedata.combining(chr(c)) for c in range(ord(FIRST_MARK)))
    assert unicodedata.combining(FIRST_MARK)


def test_strip_marks_equals_the_filter() -> None:
    rng = random.Random(18)
    marks = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.combining(chr(c))]
    samples = [
        "",
        "plain ascii",
        unicodedata.normalize("NFKD", "¿Señor Pérez? Solicito la renovación del carné, ñandú."),
        "".join(marks),  # every mark at once: the character-by-character path
    ]
    alphabet = [*"abc ñé¿«»\u00a0\u2028日本", *marks[: FEW_MARKS + 4]]
    for size in (1, 5, 40, 400):
        for _ in range(200):
            picked = rng.sample(alphabet, rng.randint(1, len(alphabet)))
            samples.append("".join(rng.choice(picked) for _ in range(size)))
    for text in samples:
        assert strip_marks(text) == reference(text), repr(text)


def test_fold_strips_accents() -> None:
    assert fold("Renovación de CARNÉ — Ñandú") == "renovacion de carne nandu"
