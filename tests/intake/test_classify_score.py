"""The classifier's window scoring against a reference copy of the plain algorithm it replaced
(every window of every size re-joined and scored one by one): same candidates, scores, offsets."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from rapidfuzz.distance import Indel

from mailflow.intake.catalogue import load_catalogue
from mailflow.intake.classify import SHORT_WORD, Candidate, Classifier
from mailflow.textnorm import strip_reply_prefixes, tokens

ROOT = Path(__file__).resolve().parents[2]


def reference_score(classifier: Classifier, words: tuple[str, ...]) -> list[Candidate]:
    """The scoring loop as it was written before the windows were shared between phrases."""
    best: dict[str, Candidate] = {}
    if not words:
        return []
    n = len(words)
    for phrase in classifier._phrases:
        score, start = 0.0, 0
        for size in {phrase.words - 1, phrase.words, phrase.words + 1}:
            if size < 1 or size > n:
                continue
            for i in range(n - size + 1):
                window = " ".join(words[i : i + size])
                if phrase.text == window:
                    s = 1.0
                elif " " not in phrase.text and len(phrase.text) <= SHORT_WORD:
                    s = 0.0
                else:
                    s = float(Indel.normalized_similarity(phrase.text, window))
                if s > score:
                    score, start = s, i
                    if s == 1.0:
                        break
        prior = best.get(phrase.owner)
        if score > 0 and (
            prior is None
            or score > prior.score
            or (score == prior.score and len(phrase.text) > len(prior.phrase))
        ):
            best[phrase.owner] = Candidate(phrase.owner, score, phrase.text, start)
    return sorted(best.values(), key=lambda c: (-c.score, -len(c.phrase)))


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier(load_catalogue(ROOT / "rules"), threshold=0.80, tie_margin=0.04)


def subjects(classifier: Classifier) -> list[str]:
    """Catalogue phrases as written, misspelt, doubled, cut and padded with other words."""
    rng = random.Random(18)
    phrases = [p.text for p in classifier._phrases]
    out = [
        "",
        "RE: RV: Actualización de datos - Juan Pérez 12345678",
        "cita cito citas",
        "Renuncia al trámite de solicitud de refugio",
    ]
    filler = ["solicito", "urgente", "por favor", "exp", "señor", "refugio", "carne", "viaje"]
    for _ in range(600):
        words = " ".join(rng.sample(phrases, rng.randint(1, 3))).split()
        for _ in range(rng.randint(0, 3)):  # a typo: a letter dropped, doubled or swapped
            i = rng.randrange(len(words))
            w = words[i]
            j = rng.randrange(len(w))
            words[i] = rng.choice([w[:j] + w[j + 1 :], w[:j] + w[j] + w[j:], w[:j] + "x" + w[j:]])
        words[rng.randint(0, len(words)) : 0] = rng.sample(filler, rng.randint(0, 3))
        out.append(" ".join(w for w in words if w)[: rng.randint(3, 120)])
    return out


def test_scores_equal_the_reference(classifier: Classifier) -> None:
    for subject in subjects(classifier):
        words = tokens(strip_reply_prefixes(subject))
        expected = reference_score(classifier, words)
        assert classifier._score_words(words) == expected, subject
        assert classifier._score(words) == expected, subject  # first time: scored and kept
        assert classifier._score(words) == expected, subject  # again: from the memo


def test_memo_returns_a_fresh_list(classifier: Classifier) -> None:
    words = tokens("Carné de solicitante")
    first = classifier._score(words)
    first.clear()
    assert classifier._score(words) == reference_score(classifier, words)
