"""Work moved from the write phase to the read phase (issue 18): the Findings a Reading carries
equal what the write phase would compute from the message, and a Reading without them ends
in exactly the same rows."""

from __future__ import annotations

import random
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from mailflow.app import App
from mailflow.cases.priority import (
    Category,
    Vocabulary,
    find_words,
    parse_vocabulary,
    scan_text,
    signal_words,
)
from mailflow.mail.authentication import from_problem
from mailflow.ops.keys import keys_demo
from mailflow.pipeline.route import process_inbox_message, read_inbox_message
from mailflow.runners.reading import read_message
from mailflow.store.db import Database
from mailflow.triage.automatic import detect_automatic
from tests.corpus.cases import CASES
from tests.corpus.compose import Kit, make_kit
from tests.corpus.specials import SPECIAL_CASES
from tests.support.cases_support import DATOS, MONDAY, mail, make_app, store
from tests.support.table_rows import differences as table_differences
from tests.support.table_rows import table_rows

ROOT = Path(__file__).resolve().parents[2]


# requests that open a case with vulnerability words, then a follow-up naming the first case
SIGNALS = [
    mail("Actualización de datos", DATOS + "Soy adulto mayor y uso silla de ruedas.\n"),
    mail(
        "Actualización de datos",
        DATOS + "Mi hija menor de edad vive conmigo.",
        sender="rosa.diaz@example.org",
        name="Rosa Díaz",
    ),
    mail("RE: Actualización de datos EXP-2026-000001", "Además estoy embarazada.\n" + DATOS),
]


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    return make_kit(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def corpus(kit: Kit) -> list[bytes]:
    return [
        *SIGNALS,
        *(p.read_bytes() for p in sorted((ROOT / "tests" / "fixtures" / "mail").glob("*.eml"))),
        *(p.read_bytes() for p in sorted((ROOT / "samples").glob("*.eml"))),
        *(case.make(kit) for case in [*CASES, *SPECIAL_CASES]),
    ]


def _app(tmp_path: Path, db: Database, kit: Kit, keys: Path | None = None) -> App:
    """An App on `db` trusting `kit`'s CA, its signing keys those of `keys` (else new ones)."""
    base = make_app(tmp_path, db)
    signatures = base.settings.signatures.model_copy(update={"trust_roots": (kit.ca_pem,)})
    replies = base.settings.replies.model_copy(update={"daily_cap_per_address": 1000})
    app = make_app(tmp_path, db, signatures=signatures, replies=replies)
    if keys is None:
        keys_demo(app.settings)
    else:
        shutil.copytree(keys, tmp_path / "keys")
    return app


def test_findings_made_while_reading_equal_what_the_write_phase_computes(
    tmp_path: Path, sqlite_db: Database, kit: Kit, corpus: list[bytes]
) -> None:
    app = _app(tmp_path, sqlite_db, kit)
    intake, vocabulary = app.intake, app.vulnerability
    fields = [[], ["Juan Pérez", "adulto"], ["uso silla de", "ruedas"], ["menor de edad"]]
    automatic = 0
    for number, raw in enumerate(corpus):
        reading = read_message(app, raw)
        assert reading.msg is not None and reading.found is not None, number
        msg, found = reading.msg, reading.found
        hits = detect_automatic(
            msg, own_addresses=intake.own_addresses, own_domain=intake.own_domain
        )
        assert list(found.automatic) == hits, number
        assert found.from_problem == from_problem(msg), number
        text = f"{msg.subject}\n{msg.text}"
        for values in fields:
            want = find_words(vocabulary, "\n".join([*values, text]))
            assert signal_words(vocabulary, [*values, found.signals]) == want, number
        automatic += bool(hits)
    assert automatic >= 10  # the corpus has automatic mail: the rules' reasons were compared


def _vocabulary() -> Vocabulary:
    return parse_vocabulary(
        "categorias:\n"
        "  a: {nombre: A, peso: 3, palabras: [menor de edad, de edad, niño]}\n"
        "  b: {nombre: B, peso: 2, palabras: [silla de ruedas, ruedas, x]}\n"
        "  c: {nombre: C, peso: 1, palabras: [tercera edad avanzada]}\n",
        Path("v.yaml"),
    )


def test_signal_words_on_scanned_parts_equal_find_words_on_the_joined_text() -> None:
    vocabulary = _vocabulary()
    pieces = ["menor", "de", "edad", "Niño", "NIÑOS", "silla", "ruedas", "x", "tercera", "ávanzada"]
    pieces += ["", " ", "\n", "-", "«", "ñ", "é", "1", "lorem", "ipsum", "\u0301", "ﬁ", "Σ"]
    rng = random.Random(18)

    def words() -> str:
        return " ".join(rng.choice(pieces) for _ in range(rng.randrange(0, 30)))

    for _ in range(3000):
        texts = [(words(), words()) for _ in range(rng.randrange(1, 5))]
        want = find_words(vocabulary, "\n".join(f"{s}\n{t}" for s, t in texts))
        parts = [
            scan_text(vocabulary, s, t) if rng.random() < 0.5 else f"{s}\n{t}" for s, t in texts
        ]
        assert signal_words(vocabulary, parts) == want, texts


def _run(app: App, corpus: list[bytes], keep_findings: bool) -> None:
    for raw in corpus:
        with app.database.session() as s:
            row = store(s, raw, MONDAY)
        with app.database.session(readonly=True) as s:
            reading = read_inbox_message(app, row, MONDAY, s)
        if not keep_findings:
            reading = replace(reading, found=None)
        with app.database.session() as s:
            row = s.merge(row)
            process_inbox_message(app, s, row, MONDAY, reading)


def test_a_reading_without_findings_ends_in_the_same_rows(
    tmp_path: Path, sqlite_db: Database, kit: Kit, corpus: list[bytes]
) -> None:
    other = Database(f"sqlite:///{tmp_path / 'other.db'}")
    other.migrate()
    with_findings = _app(tmp_path / "a", sqlite_db, kit)
    without = _app(tmp_path / "b", other, kit, keys=tmp_path / "a" / "keys")
    _run(with_findings, corpus, keep_findings=True)
    _run(without, corpus, keep_findings=False)
    ours, theirs = table_rows(sqlite_db), table_rows(other)
    assert ours["case_events"] and ours["outbox_messages"] and ours["cases"]
    assert len(ours["case_signals"]) >= 2  # the vulnerability words were looked for
    differences = table_differences(ours, theirs)
    assert not differences, "\n".join(differences)
    other.dispose()


def test_a_word_across_two_parts_is_found_in_their_ends() -> None:
    vocabulary = _vocabulary()
    filler = " lorem ipsum" * 20  # long: a ScannedText keeps only its ends
    texts = {
        "first": ("Señora:", f"{filler} tengo una silla"),
        "second": ("de ruedas,", f"{filler} tercera"),
        "third": ("edad", ""),
    }
    scanned = {name: scan_text(vocabulary, *pair) for name, pair in texts.items()}
    assert "\x00" in scanned["first"].ends and not scanned["first"].words
    cases = {  # parts → the word found only across them
        ("uso silla", "second"): "silla de ruedas",
        ("second", "edad avanzada"): "tercera edad avanzada",
        ("first", "second"): "silla de ruedas",
        ("second", "third", "avanzada."): "tercera edad avanzada",
        ("first", "", "¡De Ruedas!"): "silla de ruedas",
    }
    for names, word in cases.items():
        parts = [scanned.get(n, n) for n in names]
        joined = "\n".join("\n".join(texts[n]) if n in texts else n for n in names)
        found = signal_words(vocabulary, parts)
        assert found == find_words(vocabulary, joined), names
        assert word in found.values(), names


def test_a_category_without_words_finds_nothing_either_way() -> None:
    vocabulary = Vocabulary({"z": Category("z", "Z", 1, ())})
    scanned = scan_text(vocabulary, "asunto", "texto")
    assert signal_words(vocabulary, ["a", scanned]) == find_words(vocabulary, "a\nasunto\ntexto")
