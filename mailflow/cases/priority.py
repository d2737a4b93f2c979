"""Case priority: vulnerability signals (mail and registry) plus deadline proximity, with reasons.

Vulnerability data is sensitive personal data (Ley 29733, art. 2.5): a detected signal is only a
suggestion (`sugerida`) until staff confirm or discard it; only the roles listed in
`ver_detalle` of rules/vulnerabilidad.yaml see categories and evidence (others see the level
only), and every view and change is audited by the caller.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, or_, select
from sqlalchemy.orm import Session

from mailflow.cases.case_thread import fresh_thread_inbox_ids
from mailflow.store.audit import SYSTEM, record
from mailflow.store.bulkrows import add_row
from mailflow.store.models import ROLES, Case, CaseMessage, CaseSignal, InboxMessage
from mailflow.store.txcache import flush_as_a_query_would, tx_info
from mailflow.textnorm import fold
from mailflow.yamlsource import YamlSource, load_yaml, parse_yaml

if TYPE_CHECKING:
    from mailflow.app import App

VOCABULARY_FILE = "vulnerabilidad.yaml"
LEVELS = ((3, "alta"), (1, "media"), (0, "normal"))
SOURCE_NAMES = {"correo": "el correo", "registro": "el registro"}
_CASE_SIGNALS = cast(Table, CaseSignal.__table__)


@dataclass(frozen=True)
class Category:
    """A kind of vulnerability: its Spanish name, weight (priority points) and signal words."""

    id: str
    name: str
    weight: int
    words: tuple[str, ...]  # folded (lower case, no accents)
    registry_values: tuple[str, ...] = ()  # folded values of the registry's `vulnerabilidad`
    ages: tuple[int, int] | None = None  # (min, max) age in years from fecha_nacimiento

    def age_matches(self, age: int) -> bool:
        """Whether an applicant of `age` full years falls in this category's age range."""
        return self.ages is not None and self.ages[0] <= age <= self.ages[1]

    @cached_property
    def any_word(self) -> re.Pattern[str] | None:
        """One pattern for all the words (whole words of folded text); None without words."""
        if not self.words:
            return None
        alternatives = "|".join(re.escape(w) for w in self.words)
        return re.compile(rf"(?<![a-z0-9])(?:{alternatives})(?![a-z0-9])")


@dataclass(frozen=True)
class Vocabulary:
    """rules/vulnerabilidad.yaml: categories, who sees details, and the deadline bonus."""

    categories: dict[str, Category] = field(default_factory=dict)
    detail_roles: frozenset[str] = frozenset({"manager", "admin"})
    deadline_days: int = 3
    deadline_weight: int = 2

    def may_see_details(self, role: str) -> bool:
        """Whether an account of `role` may see categories and evidence (not only the level)."""
        return role in self.detail_roles


def load_vocabulary(path: Path) -> Vocabulary:
    """Read rules/vulnerabilidad.yaml (missing: no categories). Raises DefinitionError."""
    if not path.exists():
        return Vocabulary()
    return _build(load_yaml(path))


def parse_vocabulary(text: str, path: Path) -> Vocabulary:
    """Like `load_vocabulary` for text already read (tests)."""
    return _build(parse_yaml(text, path))


def _build(src: YamlSource) -> Vocabulary:
    data = src.data or {}
    if not isinstance(data, dict):
        raise src.error("el archivo debe ser un mapa con ver_detalle, plazo y categorias")
    for key in data:
        if key not in ("ver_detalle", "plazo", "categorias"):
            raise src.error(
                f"sección desconocida {key!r} (use ver_detalle, plazo, categorias)", key
            )
    roles = data.get("ver_detalle", ["manager", "admin"])
    if not isinstance(roles, list) or any(r not in ROLES for r in roles):
        raise src.error(f"ver_detalle: lista de roles entre {', '.join(ROLES)}", "ver_detalle")
    plazo = data.get("plazo") or {}
    if not isinstance(plazo, dict) or not all(
        isinstance(plazo.get(k, 0), int) and plazo.get(k, 0) >= 0 for k in ("dias", "peso")
    ):
        raise src.error("plazo: dias y peso deben ser enteros no negativos", "plazo")
    categories: dict[str, Category] = {}
    raw = data.get("categorias") or {}
    if not isinstance(raw, dict):
        raise src.error("categorias debe ser un mapa id → {nombre, peso, palabras}", "categorias")
    for cid, item in raw.items():
        at = ("categorias", cid)
        if not isinstance(item, dict) or not isinstance(item.get("nombre"), str):
            raise src.error("cada categoría necesita nombre, peso y palabras", *at)
        weight = item.get("peso", 1)
        if not isinstance(weight, int) or weight < 0:
            raise src.error("peso debe ser un entero no negativo", *at, "peso")
        words = item.get("palabras") or []
        if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
            raise src.error("palabras debe ser una lista de textos", *at, "palabras")
        values = item.get("registro") or []
        if not isinstance(values, list):
            raise src.error("registro debe ser una lista de textos", *at, "registro")
        ages = None
        if "edad" in item:
            raw_age = item["edad"]
            ok = isinstance(raw_age, dict) and set(raw_age) <= {"desde", "hasta"} and raw_age
            low, high = (raw_age.get("desde", 0), raw_age.get("hasta", 150)) if ok else (-1, -1)
            if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high):
                raise src.error(
                    "edad: {desde: años, hasta: años} (enteros, desde ≤ hasta)", *at, "edad"
                )
            ages = (low, high)
        categories[str(cid)] = Category(
            str(cid),
            item["nombre"],
            weight,
            tuple(fold(w) for w in words),
            tuple(fold(str(v)) for v in values),
            ages,
        )
    return Vocabulary(
        categories,
        frozenset(roles),
        int(plazo.get("dias", 3)),
        int(plazo.get("peso", 2)),
    )


def find_words(vocabulary: Vocabulary, text: str) -> dict[str, str]:
    """Category id → the first signal word found in `text` (whole words, accents ignored)."""
    folded = f" {fold(text)} "
    found: dict[str, str] = {}
    for category in vocabulary.categories.values():
        if category.any_word is None or not category.any_word.search(folded):
            continue  # no word of it: the common case, one search instead of one per word
        for word in category.words:
            if _word_in(word, folded):
                found[category.id] = word
                break
    return found


@dataclass(frozen=True)
class ScannedText:
    """A message's subject and text already looked through for signal words (`scan_text`).

    `words`: every signal word found in it; `ends`: its folded text cut to the whole words a
    signal word could cross into from the text next to it, "\\x00" marking the cut (the whole
    folded text when it is short). Small: it travels from the reading child.
    """

    words: frozenset[str]
    ends: str


def scan_text(vocabulary: Vocabulary, subject: str, text: str) -> ScannedText:
    """Look through a message's `subject` and `text` for `vocabulary`'s signal words; returns
    the ScannedText that `signal_words` takes in place of the text "subject\\ntext"."""
    folded = fold.__wrapped__(f"{subject}\n{text}")  # not cached: a message is scanned once
    return ScannedText(_all_words(vocabulary, f" {folded} "), _ends(folded, _reach(vocabulary)))


def signal_words(vocabulary: Vocabulary, parts: Sequence[str | ScannedText]) -> dict[str, str]:
    """`find_words` on `parts` joined by newlines, a ScannedText standing for its message's
    "subject\\ntext": the same category id → first signal word found."""
    if all(isinstance(p, str) for p in parts):
        return find_words(vocabulary, "\n".join(str(p) for p in parts))
    # fold() of the joined text is the folded parts joined by one space (empty ones dropped);
    # a word found in the joined ends is found in the joined text, and one that crosses from
    # a part into the next lies within their ends.
    pieces = (p.ends if isinstance(p, ScannedText) else fold(p) for p in parts)
    joined = " ".join(piece for piece in pieces if piece)
    seen = _all_words(vocabulary, f" {joined} ").union(
        *(p.words for p in parts if isinstance(p, ScannedText))
    )
    found: dict[str, str] = {}
    for category in vocabulary.categories.values():
        word = next((w for w in category.words if w in seen), None)
        if word is not None:
            found[category.id] = word
    return found


def _word_in(word: str, padded: str) -> bool:
    """Whether the folded `word` is a whole word (or phrase) of the folded, padded text."""
    return re.search(rf"(?<![a-z0-9]){re.escape(word)}(?![a-z0-9])", padded) is not None


def _all_words(vocabulary: Vocabulary, padded: str) -> frozenset[str]:
    """Every signal word of `vocabulary` in the folded, padded text."""
    found: set[str] = set()
    for category in vocabulary.categories.values():
        if category.any_word is not None and category.any_word.search(padded):
            found.update(w for w in category.words if _word_in(w, padded))
    return frozenset(found)


def _reach(vocabulary: Vocabulary) -> int:
    """The length of the longest signal word: a word found across two joined texts reaches
    fewer characters than that into each."""
    return max((len(w) for c in vocabulary.categories.values() for w in c.words), default=0)


def _ends(folded: str, reach: int) -> str:
    """`folded` without its middle: whole words from the start covering `reach` characters,
    "\\x00", whole words to the end covering `reach` characters; all of it when short."""
    head = folded.find(" ", reach)
    tail = folded.rfind(" ", 0, len(folded) - reach)
    if head < 0 or tail <= head:
        return folded
    return f"{folded[:head]}\x00{folded[tail + 1 :]}"


READ_TEXTS = "mailflow.read_texts"
"""`session.info` key: {inbox message id: "subject\\ntext", or its ScannedText} of messages the
pipeline has already read in this transaction, so signals are not looked for by parsing them
again."""


def remember_text(
    session: Session,
    inbox_message_id: int,
    subject: str,
    text: str,
    scanned: ScannedText | None = None,
) -> None:
    """Note the text of a message read in `session`'s transaction (see READ_TEXTS), or
    `scanned`, its text already scanned (`scan_text`) with this App's vocabulary."""
    texts = session.info.setdefault(READ_TEXTS, {})
    texts[inbox_message_id] = scanned if scanned is not None else f"{subject}\n{text}"


@dataclass(frozen=True)
class _LookedAt:
    """What `detect_signals` reads of the case row itself: its field values as text (in
    order), the keys it looks the registry up by, the birth date, office and receipt time."""

    texts: tuple[str, ...]
    email: str | None
    document: Any
    carne: Any
    birth: Any
    office: str | None
    received_at: dt.datetime


def _looked_at(case: Case) -> _LookedAt:
    """The `_LookedAt` of `case` now."""
    values = {k: v.get("value") if isinstance(v, dict) else v for k, v in case.fields.items()}
    return _LookedAt(
        tuple(str(v) for v in values.values()),
        case.applicant_email,
        values.get("documento_identidad"),
        values.get("carne_extranjeria"),
        values.get("fecha_nacimiento"),
        case.office,
        case.received_at,
    )


def _case_parts(
    session: Session,
    case: Case,
    texts: Sequence[str],
    extra: int | None = None,
    *,
    new_case: bool = False,
) -> list[str | ScannedText]:
    """The case's text for `signal_words`: `texts` (its field values), then its messages'."""
    from mailflow.mail.parse import parse_message

    parts: list[str | ScannedText] = list(texts)
    read: dict[int, str | ScannedText] = session.info.get(READ_TEXTS, {})
    if new_case and extra in read:  # a case just opened has no other message yet
        parts.append(read[extra])
        return parts
    linked = select(CaseMessage.inbox_message_id).where(CaseMessage.case_id == case.id)
    query = select(InboxMessage.id, InboxMessage.raw).where(
        or_(
            InboxMessage.case_id == case.id,
            InboxMessage.id.in_(linked),
            InboxMessage.id == (extra if extra is not None else -1),
        )
    )
    for message_id in session.scalars(query.with_only_columns(InboxMessage.id)):
        if message_id in read:
            parts.append(read[message_id])
            continue
        raw = session.scalar(select(InboxMessage.raw).where(InboxMessage.id == message_id))
        parsed = parse_message(raw or b"")
        parts += [parsed.subject or "", parsed.text or ""]
    return parts


def registry_categories(vocabulary: Vocabulary, data: dict[str, Any]) -> dict[str, str]:
    """Category id → registry value, from the `vulnerabilidad` column of an imported record."""
    raw = str(data.get("vulnerabilidad") or "")
    out: dict[str, str] = {}
    for piece in re.split(r"[;,/]", raw):
        value = fold(piece)
        for category in vocabulary.categories.values():
            if value and (value == category.id or value in category.registry_values):
                out[category.id] = piece.strip()
    return out


def detect_signals(
    session: Session,
    app: App,
    case: Case,
    now: dt.datetime,
    inbox_message_id: int | None = None,
    *,
    new_case: bool = False,
) -> list[CaseSignal]:
    """Record new suggested signals from the case's mail (plus the inbox message
    `inbox_message_id`, not yet linked when the case is being opened) and its registry record;
    recompute
    `case.priority`. Existing signals (and staff decisions on them) are kept. Audited (the
    audit text names no category: it is sensitive data). In the caller's transaction.
    `new_case`: the case was created in this transaction from `inbox_message_id` alone, so it
    has no signals and no other mail yet (nothing is looked up for them).
    Returns the signals added, as objects outside the session (no id): their rows are queued
    (mailflow.store.bulkrows.add_row), inserted before anything reads case_signals."""
    vocabulary = app.vulnerability
    if not vocabulary.categories or case.id is None:
        return []
    looked = _looked_at(case)
    parts = _case_parts(session, case, looked.texts, inbox_message_id, new_case=new_case)
    found = {("correo", c): f"«{w}»" for c, w in signal_words(vocabulary, parts).items()}
    found.update(_registry_signals(session, vocabulary, looked))
    born = _birth_date(looked.birth)
    if born is not None:
        age = age_on(born, app.calendario_de(case.office).local(case.received_at).date())
        for kind in vocabulary.categories.values():
            if kind.age_matches(age):
                found[("correo", kind.id)] = f"fecha de nacimiento {born.isoformat()} ({age} años)"
    if new_case and inbox_message_id is not None:
        _note_opened(session, vocabulary, case, inbox_message_id, looked, frozenset(found))
    existing = [] if new_case else signals_of(session, case)
    have = {(s.source, s.category) for s in existing}
    added = []
    for (source, category), evidence in found.items():
        if (source, category) in have:
            continue
        values = {
            "case_id": case.id, "category": category, "source": source, "evidence": evidence,
            "status": "sugerida", "decided_by": None, "decided_at": None, "created_at": now,
        }  # fmt: skip
        add_row(session, _CASE_SIGNALS, values)  # queued: inserted before the table is read
        added.append(CaseSignal(**values))
    if added:
        record(
            session, "prioridad",
            f"Se detectaron {len(added)} posibles datos de vulnerabilidad (por confirmar).",
            at=now, actor=SYSTEM, case_id=case.id, data={"signals": len(added)},
        )  # fmt: skip
    _set_priority(vocabulary, case, [*existing, *added])
    return added


def _registry_signals(
    session: Session, vocabulary: Vocabulary, looked: _LookedAt
) -> dict[tuple[str, str], str]:
    """("registro", category id) → evidence, from the registry record of the person the case
    names (`looked`: by its applicant's address, document or carné); {} when none."""
    from mailflow.registry.applicants import find_applicant

    applicant = find_applicant(session, looked.email, looked.document, looked.carne)
    if applicant is None:
        return {}
    return {
        ("registro", c): f"registro: {v}"
        for c, v in registry_categories(vocabulary, applicant.data or {}).items()
    }


_OPENED = "priority.opened"
"""`tx_info` key: {case id: _Opened} of the cases opened in this transaction whose signals
`detect_signals` looked for when they were opened (`new_case`)."""


@dataclass(frozen=True)
class _Opened:
    """A case's look when it was opened: its message, what was read of it, the signals found
    ((source, category id) pairs) and the priority their weights give it."""

    case: Case
    inbox_message_id: int
    looked: _LookedAt
    found: frozenset[tuple[str, str]]
    priority: int


def _note_opened(
    session: Session,
    vocabulary: Vocabulary,
    case: Case,
    inbox_message_id: int,
    looked: _LookedAt,
    found: frozenset[tuple[str, str]],
) -> None:
    """Remember for this transaction (`tx_info`) that `case`, opened from `inbox_message_id`,
    was looked through with `looked` and gets the signals `found` (all of them new: a case
    just opened has none), so the priority their weights give (see `recheck_signals`)."""
    weight = max((vocabulary.categories[c].weight for _, c in found), default=0)
    opened = _Opened(case, inbox_message_id, looked, found, weight)
    tx_info(session).setdefault(_OPENED, {})[case.id] = opened


def recheck_signals(
    session: Session, app: App, case: Case, now: dt.datetime, inbox_message_id: int | None
) -> list[CaseSignal]:
    """`detect_signals` again for `case`, to which the event of inbox message
    `inbox_message_id` (None: of no message) may have brought more; returns the signals added.

    A case opened in this transaction by that very message was looked through when it was
    opened (`detect_signals` with `new_case`); while its thread holds no other message and
    nothing read then has changed (its fields, applicant, office, registry record, priority),
    looking again would add nothing and leave its priority as it is: [] without looking."""
    if inbox_message_id is not None and _unchanged_since_opened(
        session, app, case, inbox_message_id
    ):
        flush_as_a_query_would(session)  # as looking the case's mail up again did
        return []
    return detect_signals(session, app, case, now)


def _unchanged_since_opened(session: Session, app: App, case: Case, inbox_message_id: int) -> bool:
    """Whether `case` was opened in this transaction by inbox message `inbox_message_id` and
    a `detect_signals` now would find no signal it has not got and leave its priority as is."""
    opened: _Opened | None = tx_info(session).get(_OPENED, {}).get(case.id)
    if opened is None or opened.case is not case or opened.inbox_message_id != inbox_message_id:
        return False
    looked = _looked_at(case)
    if looked != opened.looked or case.priority != opened.priority:
        return False
    thread = fresh_thread_inbox_ids(session, case)
    if thread is None or not thread <= {inbox_message_id}:
        return False  # other mail may have joined it: its text is looked through
    return _registry_signals(session, app.vulnerability, looked).keys() <= opened.found


def age_on(born: dt.date, day: dt.date) -> int:
    """Full years of age on `day` of someone born on `born`."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def _birth_date(value: object) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def signals_of(session: Session, case: Case) -> list[CaseSignal]:
    """The case's signals, oldest first."""
    return list(
        session.scalars(
            select(CaseSignal).where(CaseSignal.case_id == case.id).order_by(CaseSignal.id)
        )
    )


def refresh(session: Session, vocabulary: Vocabulary, case: Case) -> int:
    """Set `case.priority` to the highest weight among signals not discarded; return it."""
    return _set_priority(vocabulary, case, signals_of(session, case))


def _set_priority(vocabulary: Vocabulary, case: Case, signals: list[CaseSignal]) -> int:
    weights = [
        vocabulary.categories[s.category].weight
        for s in signals
        if s.status != "descartada" and s.category in vocabulary.categories
    ]
    case.priority = max(weights, default=0)
    return case.priority


def decide(
    session: Session,
    vocabulary: Vocabulary,
    case: Case,
    signal_id: int,
    status: str,
    *,
    actor: str,
    now: dt.datetime,
) -> CaseSignal:
    """Confirm or discard a signal (status "confirmada" | "descartada"); audited.

    Raises ValueError for another status or a signal of another case.
    """
    signal = session.get(CaseSignal, signal_id)
    if status not in ("confirmada", "descartada") or signal is None or signal.case_id != case.id:
        raise ValueError("dato de vulnerabilidad desconocido")
    signal.status, signal.decided_by, signal.decided_at = status, actor, now
    name = vocabulary.categories.get(signal.category)
    record(
        session, "prioridad",
        f"Dato de vulnerabilidad {status}: {name.name if name else signal.category}.",
        at=now, actor=actor, case_id=case.id,
        data={"signal": signal.id, "status": status, "category": signal.category},
    )  # fmt: skip
    session.flush()
    refresh(session, vocabulary, case)
    return signal


@dataclass(frozen=True)
class Priority:
    """A case's priority now: score, level ("alta" | "media" | "normal") and Spanish reasons.

    `reasons` never name a vulnerability category unless `detailed` (the viewer may see them).
    """

    score: int
    level: str
    reasons: tuple[str, ...]


def level_of(score: int) -> str:
    """ "alta" from 3 points, "media" from 1, else "normal"."""
    return next(name for floor, name in LEVELS if score >= floor)


def assess(
    vocabulary: Vocabulary,
    case: Case,
    signals: list[CaseSignal],
    days_left: int | None,
    *,
    detailed: bool,
) -> Priority:
    """Priority of a case from its signals and `days_left` (días hábiles to the due date, None
    when the clock does not run). Pure: no database, no clock."""
    reasons: list[str] = []
    live = [s for s in signals if s.status != "descartada" and s.category in vocabulary.categories]
    score = max((vocabulary.categories[s.category].weight for s in live), default=0)
    if live and detailed:
        for s in live:
            state = "confirmado" if s.status == "confirmada" else "por confirmar"
            name = vocabulary.categories[s.category].name
            reasons.append(f"{name} ({state}; según {SOURCE_NAMES.get(s.source, s.source)})")
    elif live:
        pending = any(s.status == "sugerida" for s in live)
        reasons.append(
            "Datos de vulnerabilidad reservados" + (" (por confirmar)" if pending else "")
        )
    if days_left is not None and days_left <= vocabulary.deadline_days:
        score += vocabulary.deadline_weight
        if days_left < 0:
            reasons.append(f"Plazo vencido hace {-days_left} día(s) hábil(es)")
        elif days_left == 0:
            reasons.append("El plazo vence hoy")
        else:
            reasons.append(f"El plazo vence en {days_left} día(s) hábil(es)")
    return Priority(score, level_of(score), tuple(reasons))
