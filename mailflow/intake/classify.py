"""Classify a request by its subject (and, failing that, its body) against the catalogue."""

from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz.distance import Indel

from mailflow.intake.catalogue import Catalogue
from mailflow.reasons import clean, quote
from mailflow.textnorm import fold, strip_reply_prefixes, tokens

SHORT_WORD = 5  # single words this short must match exactly ("cita" is not "cito")
BODY_CONFIDENCE = 0.85
BODY_WINDOW = 2000  # characters of the body read for the fallback
SUBJECT_WINDOW = 300  # longer subjects are read only this far (hostile mail: 100 KB subjects)
_MEMO_SIZE = 4096  # subjects whose scores a Classifier keeps (cleared when full)
_MEMO_WORDS = 12  # longer subjects are rarely repeated: not kept


@dataclass(frozen=True)
class _Phrase:
    owner: str  # tramite id, or "topic:<id>"
    text: str  # folded phrase without stop words
    words: int

    @property
    def sizes(self) -> tuple[int, ...]:
        """The window sizes (in words) compared with the phrase, in the order they are tried:
        its own word count and one word less or more."""
        return tuple(s for s in {self.words - 1, self.words, self.words + 1} if s >= 1)

    @property
    def exact_only(self) -> bool:
        """A single word this short matches only itself ("cita" is not "cito")."""
        return " " not in self.text and len(self.text) <= SHORT_WORD


@dataclass(frozen=True)
class Candidate:
    """One scored match: `owner` (tramite id or 'topic:<id>'), `score` (0–1, Indel similarity), the
    catalogue `phrase` matched and the word offset `start` in the subject.
    """

    owner: str
    score: float
    phrase: str
    start: int = 0  # word offset in the subject where the best match begins


@dataclass(frozen=True)
class Classification:
    """The outcome: a tramite id (or None), the confidence and why."""

    tramite: str | None
    confidence: float
    reasons: tuple[str, ...]
    topic: str | None = None  # off-catalogue topic id when that is what it is
    source: str = "asunto"  # "asunto" | "cuerpo" | ""
    candidates: tuple[Candidate, ...] = ()


class Classifier:
    """Fuzzy, word-aligned matching of subjects against official subjects and aliases."""

    def __init__(self, catalogue: Catalogue, threshold: float, tie_margin: float) -> None:
        self.catalogue = catalogue
        self.threshold = threshold
        self.tie_margin = tie_margin
        phrases: list[_Phrase] = []
        for t in catalogue:
            for p in (t.subject, t.name, *t.aliases):
                phrases.append(_phrase(t.id, p))
        for topic in catalogue.topics:
            for p in topic.phrases:
                phrases.append(_phrase(f"topic:{topic.id}", p))
        self._phrases = tuple(dict.fromkeys(p for p in phrases if p.text))
        self._plan = tuple((p, p.sizes, p.exact_only) for p in self._phrases)
        # subject words → scored candidates: a long-lived reader sees the same subjects often
        self._memo: dict[tuple[str, ...], tuple[Candidate, ...]] = {}
        self._exact = {p.text: p for p in self._phrases}
        self._body = tuple(
            (t.id, fold(k)) for t in catalogue for k in (*t.body_keywords, t.subject)
        )
        self._topics = {t.id: t for t in catalogue.topics}

    def classify(self, subject: str, body: str = "") -> Classification:
        """Classify one message by its `subject` (first SUBJECT_WINDOW characters, reply prefixes
        removed), else by the first BODY_WINDOW characters of `body` (keywords, fixed
        BODY_CONFIDENCE). Returns a Classification: the tramite id when one procedure scores at
        least `threshold` and no rival is within `tie_margin`; an off-catalogue `topic` when a
        topic phrase wins (or overrides procedures); otherwise tramite None with a Spanish reason
        (ambiguous, or no match and the closest one above 50 %). Never raises.
        """
        cleaned = strip_reply_prefixes(subject[:SUBJECT_WINDOW])
        words = tokens(cleaned)
        best = self._score(words)
        topic_hits = [c for c in best if c.owner.startswith("topic:") and c.score >= self.threshold]
        overriding = [c for c in topic_hits if self._topics[c.owner[6:]].overrides_procedures]
        procs = [c for c in best if not c.owner.startswith("topic:")]
        top = procs[0] if procs else None
        if overriding:
            return self._off_catalogue(overriding[0], best, "asunto")
        if top is not None and top.score >= self.threshold:
            strongest_topic = topic_hits[0] if topic_hits else None
            if strongest_topic and _beats(strongest_topic, top, self.threshold):
                return self._off_catalogue(strongest_topic, best, "asunto")
            return self._decide(procs, "asunto", cleaned)
        if topic_hits:
            return self._off_catalogue(topic_hits[0], best, "asunto")
        from_body = self._from_body(body)
        if from_body is not None:
            return from_body
        reason = (
            "El asunto está vacío y el cuerpo no indica el trámite"
            if not clean(cleaned)
            else f"El asunto {quote(cleaned, 80)} no corresponde a ningún trámite del catálogo"
        )
        if top is not None and top.score > 0.5:
            reason += f" (lo más parecido: {self.catalogue.get(top.owner).name}, {top.score:.0%})"
        return Classification(None, top.score if top else 0.0, (reason,), None, "", tuple(best))

    def _decide(self, procs: list[Candidate], source: str, cleaned: str) -> Classification:
        top = procs[0]
        rivals = [
            c
            for c in procs[1:]
            if c.owner != top.owner
            and c.score >= self.threshold
            and top.score - c.score <= self.tie_margin
            and not _contained(c.phrase, top.phrase)
        ]
        name = self.catalogue.get(top.owner).name
        if rivals:
            names = ", ".join([name] + [self.catalogue.get(c.owner).name for c in rivals])
            return Classification(
                None,
                top.score,
                (
                    f"El asunto {quote(cleaned, 80)} menciona más de un trámite ({names}); "
                    "decide el personal",
                ),
                None,
                source,
                tuple(procs),
            )
        where = "el asunto" if source == "asunto" else "el cuerpo del mensaje"
        reason = f"Trámite identificado por {where}: {name} (coincidencia {top.score:.0%} con «{top.phrase}»)"
        return Classification(top.owner, top.score, (reason,), None, source, tuple(procs))

    def _off_catalogue(self, hit: Candidate, best: list[Candidate], source: str) -> Classification:
        topic = self._topics[hit.owner[6:]]
        reason = f"Solicitud fuera del catálogo de trámites de esta mesa de partes: {topic.label}"
        return Classification(None, hit.score, (reason,), topic.id, source, tuple(best))

    def _score(self, words: tuple[str, ...]) -> list[Candidate]:
        """Best score per owner, best first: for each phrase, the best Indel similarity over the
        subject's windows of `_Phrase.sizes` words (the first such window on ties), its word
        offset; a phrase's owner keeps its best phrase (the longer one on ties)."""
        if not words:
            return []
        if len(words) > _MEMO_WORDS:
            return self._score_words(words)
        kept = self._memo.get(words)
        if kept is None:
            kept = tuple(self._score_words(words))
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[words] = kept
        return list(kept)

    def _score_words(self, words: tuple[str, ...]) -> list[Candidate]:
        best: dict[str, Candidate] = {}
        n = len(words)
        windows: dict[int, list[str]] = {}
        similarity = Indel.normalized_similarity
        for phrase, sizes, exact_only in self._plan:
            text = phrase.text
            score, start = 0.0, 0
            for size in sizes:
                if size > n:
                    continue
                row = windows.get(size)
                if row is None:
                    row = windows[size] = [
                        " ".join(words[i : i + size]) for i in range(n - size + 1)
                    ]
                if text in row:  # an identical window scores 1.0, which nothing beats
                    score, start = 1.0, row.index(text)
                    break
                if exact_only:
                    continue
                for i, window in enumerate(row):
                    s = float(similarity(text, window))
                    if s > score:
                        score, start = s, i
            prior = best.get(phrase.owner)
            if score > 0 and (prior is None or _better(score, text, prior)):
                best[phrase.owner] = Candidate(phrase.owner, score, text, start)
        return sorted(best.values(), key=lambda c: (-c.score, -len(c.phrase)))

    def _from_body(self, body: str) -> Classification | None:
        if not body:
            return None
        text = f" {fold(body[:BODY_WINDOW])} "
        found = {tid for tid, kw in self._body if kw and f" {kw} " in text}
        if len(found) == 1:
            tid = found.pop()
            name = self.catalogue.get(tid).name
            return Classification(
                tid,
                BODY_CONFIDENCE,
                (f"El asunto no indica el trámite; el cuerpo del mensaje menciona: {name}",),
                None,
                "cuerpo",
            )
        if len(found) > 1:
            names = ", ".join(sorted(self.catalogue.get(t).name for t in found))
            return Classification(
                None,
                BODY_CONFIDENCE,
                (
                    f"El asunto no indica el trámite y el cuerpo menciona varios ({names}); decide el personal",
                ),
                None,
                "cuerpo",
            )
        return None


def _phrase(owner: str, text: str) -> _Phrase:
    words = tokens(text)
    return _Phrase(owner, " ".join(words), len(words))


def _better(score: float, text: str, prior: Candidate) -> bool:
    return score > prior.score or (score == prior.score and len(text) > len(prior.phrase))


def _contained(shorter: str, longer: str) -> bool:
    """True when every word of a rival phrase is part of the winning, longer phrase."""
    return len(shorter) < len(longer) and set(shorter.split()) <= set(longer.split())


def _beats(topic: Candidate, proc: Candidate, threshold: float) -> bool:
    """An off-catalogue topic wins over a procedure only when it matches more of the subject,
    and not when the procedure is named first: in "Renuncia al trámite de solicitud de refugio"
    the topic is what the procedure acts on."""
    if proc.score >= threshold and proc.start < topic.start:
        return False
    return (topic.score, len(topic.phrase)) > (proc.score, len(proc.phrase))
