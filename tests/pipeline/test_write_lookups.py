"""The write phase's look-ups asked once (issue 18) end in exactly the same rows as before.

The duplicate check asks one question instead of two (`route._SEEN`); the `assign` effect does
not look through a case opened by the same message again (`priority.recheck_signals`); the
registry is not asked twice per transaction by the same key, nor at all once seen empty
(`find_applicant`); assignment asks for a team's accounts once per transaction and takes
round_robin's turn from the transaction's own audit rows (`assignment.choose`). The code they
replace is kept here as the reference: a varied corpus (new requests,
vulnerability words and birth dates, registry people, duplicates by Message-ID from the same
and from another sender, follow-ups, subsanaciones, round_robin and carga assignment, messages
whose first try fails inside the batch) is written in batches with and without them, and every
table is compared row by row.

The same corpus checks the write phase's batched inserts the same way: a transition's audit
event inserted with the events still queued in one statement, the other tables' queued rows
(thread entries, signals) left queued (`bulkrows.insert_now`); the timers of a new case queued
at the end of its message and inserted with the transaction's others (`deadlines.queue_held_timers`);
the claim released by the inbox row's own last UPDATE (`outcome.finish`). The reference inserts
each message's rows before its savepoint ends, as the code did before.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Table, bindparam, event, insert, select, text, update
from sqlalchemy.orm import Session

from bench.corpus import CachedKit, build, new_kit
from mailflow.app import App
from mailflow.cases import assignment, core, priority
from mailflow.cases.assignment import parse_assignment_rules
from mailflow.cases.effect_registry import EFFECTS
from mailflow.cases.effect_run import EffectRun
from mailflow.cases.machine_terms import Effect
from mailflow.clock import deadlines
from mailflow.mail.authentication import header_sender
from mailflow.mail.message import ParsedMessage
from mailflow.ops.keys import keys_demo
from mailflow.pipeline import outcome, route
from mailflow.pipeline.outcome import Outcome, record_event
from mailflow.registry import applicants
from mailflow.runners.engine import pipeline_handling
from mailflow.runners.inbox import Handling, claim, read_claimed, write_batch
from mailflow.runners.reading import Reading
from mailflow.store import audit, coreflush
from mailflow.store.bulkrows import SEES_PENDING, flush_rows, pending, updated_without_orm
from mailflow.store.db import Database
from mailflow.store.models import (
    Applicant,
    Base,
    Case,
    CaseEvent,
    CaseMessage,
    InboxMessage,
)
from mailflow.web.users import add_user
from tests.support.cases_support import DATOS, MONDAY, ROOT, mail, make_app
from tests.support.table_rows import differences as table_differences
from tests.support.table_rows import table_rows

LAZY = {"case_events", "case_messages", "case_signals", "timers"}
"""Tables whose rows are inserted when the transaction next needs them (queued by
mailflow.store.bulkrows, timers held by mailflow.clock.deadlines): before a later statement."""
JUAN = "juan.perez@example.org"
ROSA = "rosa.diaz@example.org"
INTRUDER = "intruso@example.net"
SIN_TELEFONO = "\n".join(line for line in DATOS.splitlines() if "Teléfono" not in line)
ROSA_DATOS = (
    SIN_TELEFONO.replace("Juan Pérez Quispe", "Rosa Díaz Ramos").replace("123456789", "987654321")
    + "\n"
)
MARTA = (
    "Nombres y apellidos: Marta Gómez Ruiz\nDocumento de identidad: 44332211\n"
    "Teléfono: 987111222\nMotivo: Pido reconsiderar la denegatoria de mi solicitud.\n"
)
MARTA_ADDRESS = "marta.gomez@example.org"
SLOW = "X-Prueba-Lectura"  # a message whose reading is made to run out of time
PRORROGA = (
    "Nombres y apellidos: Elena Torres Vega\nSexo: femenino\nNacionalidad: colombiana\n"
    "Pasaporte: AB1234567\nCarné de extranjería: 001234567\n"
    "Fecha de nacimiento: {born}\nTeléfono: 987123456\n"
)
RULES = """
officers: [ana, pedro, lucia, rita]
teams:
  recursos: [ana, pedro, lucia]
  datos: [lucia, pedro]
  vacio: [rita]
rules:
  - name: recursos
    tramite: [reconsideracion, apelacion]
    team: recursos
    strategy: round_robin
  - name: datos
    tramite: [actualizacion_datos, prorroga_residencia]
    team: datos
    strategy: carga
  - name: nadie
    tramite: [cambio_clave, renuncia]
    team: vacio
"""


@dataclass(frozen=True)
class Stored:
    """One corpus message and how its inbox row holds it (`message_id`: False stores the row
    without its Message-ID, as a row written before the column was kept would be)."""

    raw: bytes
    message_id: bool = True


def _mail(subject: str, body: str, sender: str, message_id: str, **kw: Any) -> bytes:
    name = sender.split("@")[0].replace(".", " ").title()
    return mail(subject, body, sender=sender, name=name, message_id=message_id, **kw)


def _hand_made(kit: CachedKit) -> tuple[list[Stored], list[Stored], list[Stored]]:
    """Batches of requests written for the look-ups: signals, registry people, duplicates,
    follow-ups (cases EXP-2026-000001 Juan, 000002 Rosa, observed: no phone, 000006 Marta,
    observed: no escrito, whose subsanación goes to staff with new words)."""
    escrito = kit.pdf("untrusted", ["Recurso de reconsideración", "Marta Gómez Ruiz"])
    juan = _mail("Actualización de datos", DATOS + "Soy adulto mayor.\n", JUAN, "<j1@example.org>")
    rosa = _mail(
        "Actualización de datos", ROSA_DATOS + "Mi hija menor de edad vive conmigo.\n", ROSA,
        "<r1@example.org>",
    )  # fmt: skip
    status = _mail("Consulta", "¿Cómo va mi trámite?", JUAN, "<j2@example.org>")
    rosa_status = _mail("Consulta", "¿Cómo va mi trámite?", ROSA, "<s1@example.org>")
    slow = {SLOW: "si"}
    first = [
        Stored(juan),
        Stored(rosa),
        Stored(juan),  # the very same bytes again: processed already, same content
        Stored(_mail("Actualización de datos", ROSA_DATOS + "Gracias.\n", ROSA, "<r1@example.org>")),
        Stored(_mail("Actualización de datos", DATOS, INTRUDER, "<r1@example.org>")),  # foreign
        Stored(_mail("Prórroga de residencia", PRORROGA.format(born="1950-02-01"), "elena@example.org", "<e1@example.org>")),
        Stored(_mail("Prórroga de residencia", PRORROGA.format(born="2010-05-05").replace("Elena", "Nina"), "nina@example.org", "<n1@example.org>")),
        Stored(status, message_id=False),  # known only by the case's thread
        Stored(_mail("Consulta", "¿Cómo va mi trámite?", INTRUDER, "<j2@example.org>")),
        Stored(_mail("Consulta", "¿Cómo va mi trámite? Repito.", JUAN, "<j2@example.org>")),
        Stored(_mail("Cambio de clave", "Nombre completo: Luis Ríos\nDocumento de identidad: 44556677\nCelular: 987654000\n", "luis@example.org", "<l1@example.org>")),
        Stored(_mail("Recurso de Reconsideración", MARTA, MARTA_ADDRESS, "<m1@example.org>")),
    ]  # fmt: skip
    middle = [Stored(rosa_status, message_id=False)]
    follow = [
        Stored(_mail("RE: Recurso de Reconsideración EXP-2026-000006", MARTA + "Sufro violencia familiar.\n", MARTA_ADDRESS, "<m2@example.org>", attachments=(("recurso.pdf", escrito),))),
        Stored(_mail("RE: Actualización de datos EXP-2026-000002", ROSA_DATOS + "Teléfono: 987654321\nEstoy embarazada.\n", ROSA, "<r2@example.org>")),
        Stored(_mail("RE: Actualización de datos EXP-2026-000001", "Además estoy embarazada.\n" + DATOS, JUAN, "<j3@example.org>")),
        Stored(_mail("Consulta EXP-2026-000001", "Escribo por mi cliente, tiene violencia familiar.", "abogado@example.net", "<a1@example.org>")),
        Stored(_mail("Actualización de datos", DATOS + "Reenvío mi solicitud.\n", JUAN, "<j4@example.org>")),
        Stored(juan),  # from an earlier transaction
        Stored(rosa_status),  # its thread entry was stored by an earlier transaction
        Stored(_mail("Consulta", "¿Cómo va?", INTRUDER, "<s1@example.org>")),
        # a reply whose reading ran out of time joins the thread and nothing reads it after:
        # its entry is still queued when the next copies are checked
        Stored(_mail("RE: Actualización de datos EXP-2026-000001", "Adjunto lo pedido.", JUAN, "<k1@example.org>", headers=slow), message_id=False),
        Stored(_mail("RE: Actualización de datos EXP-2026-000001", "Adjunto lo pedido otra vez.", JUAN, "<k1@example.org>")),
        Stored(_mail("RE: Actualización de datos EXP-2026-000001", "Adjunto.", JUAN, "<k2@example.org>", headers=slow), message_id=False),
        Stored(_mail("Consulta", "Hola.", INTRUDER, "<k2@example.org>")),
    ]  # fmt: skip
    return first, middle, follow


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[list[Stored]]:
    """Batches of messages: the hand-made ones around a burst of bench requests."""
    kit = new_kit(tmp_path_factory.mktemp("pki"))
    first, middle, follow = _hand_made(kit)
    bench = [Stored(raw) for _, raw in build(kit, 48, {"sin_pdf": 1.0}, seed=18)]
    return [first + bench[:20], bench[20:] + middle, follow]


# --- the reference: the code as it was before the look-ups were merged or remembered ---

_EARLIER = (
    select(InboxMessage.id, InboxMessage.sha256, InboxMessage.tramite, InboxMessage.case_id)
    .where(
        InboxMessage.message_id.in_([bindparam("bare"), bindparam("angled")]),
        InboxMessage.status == "done",
        InboxMessage.id != bindparam("row"),
    )
    .limit(1)
)
_KNOWN_CASE = (
    select(CaseMessage.case_id)
    .where(CaseMessage.message_id == bindparam("message_id"), CaseMessage.direction == "in")
    .order_by(CaseMessage.id)
    .limit(1)
    .execution_options(**{SEES_PENDING: True})
)


def _reference_duplicate(
    session: Session, row: InboxMessage, msg: ParsedMessage, now: dt.datetime
) -> Outcome | None:
    if not msg.message_id:
        return None
    params = {"bare": msg.message_id, "angled": f"<{msg.message_id}>", "row": row.id}
    earlier = session.execute(_EARLIER, params).first()
    if earlier is None:
        known = _reference_known_case_of(session, msg.message_id)
        if known is None:
            return None
        owner = session.scalar(select(Case.applicant_email).where(Case.id == known))
        if (owner or "").lower() != msg.sender.lower():
            return route._foreign_duplicate(session, row, msg, now)
        reason = f"Mensaje repetido (Message-ID {msg.message_id}): ya está en el expediente"
        record_event(session, row, now, "duplicate", reason, case_id=known)
        return Outcome("ignore", None, known)
    if earlier.sha256 != row.sha256:
        raw = session.scalar(select(InboxMessage.raw).where(InboxMessage.id == earlier.id))
        if header_sender(raw or b"") != msg.sender.lower():
            return route._foreign_duplicate(session, row, msg, now)
    reason = f"Mensaje repetido (Message-ID {msg.message_id}): ya procesado (entrada {earlier.id})"
    record_event(session, row, now, "duplicate", reason, case_id=earlier.case_id)
    return Outcome("ignore", earlier.tramite, earlier.case_id)


def _reference_known_case_of(session: Session, message_id: str) -> int | None:
    stored = session.scalar(_KNOWN_CASE, {"message_id": message_id})
    if stored is not None:
        return int(stored)
    queued = (
        r["case_id"]
        for r in pending(session, cast(Table, CaseMessage.__table__))
        if r["message_id"] == message_id and r["direction"] == "in"
    )
    return next(queued, None)


def _reference_recheck(
    session: Session, app: App, case: Case, now: dt.datetime, _inbox_message_id: int | None
) -> list[Any]:
    return priority.detect_signals(session, app, case, now)


def _as_before(patch: pytest.MonkeyPatch) -> None:
    """Put the reference code in place of the look-ups under test."""
    patch.setattr(route, "_duplicate", _reference_duplicate)
    patch.setattr(priority, "recheck_signals", _reference_recheck)
    patch.setattr(applicants, "_known_empty", lambda _session: False)
    patch.setattr(applicants, "lookups", lambda _session, _model: None)
    patch.setattr(assignment, "lookups", lambda _session, _model: None)
    patch.setattr(assignment, "kept_rows", lambda *_args: [])


# --- running the corpus ---


def _app(tmp_path: Path, db: Database, keys: Path | None, machines: Path | None = None) -> App:
    """An App on `db` with assignment rules, its signing keys those of `keys` (else new), its
    state machines those of `machines` (else the shipped ones)."""
    base = make_app(tmp_path, db)
    replies = base.settings.replies.model_copy(update={"daily_cap_per_address": 1000})
    dirs = {"state_machines_dir": machines} if machines is not None else {}
    app = make_app(tmp_path, db, replies=replies, **dirs)
    if keys is None:
        keys_demo(app.settings)
    else:
        shutil.copytree(keys, tmp_path / "keys")
    app.__dict__["assignment_rules"] = parse_assignment_rules(
        RULES, Path("assignment.yaml"), app.catalogue.tramites, app.calendar_rules.offices
    )
    return app


def _seed(app: App) -> None:
    """Desk accounts (rita inactive) and registry people: Juan by document (and his address,
    so he writes from his registered one), Rosa by address alone, Elena by carné."""
    with app.database.session() as s:
        for name in ("ana", "pedro", "lucia", "rita"):
            add_user(s, name, name.title(), "staff", "una-clave-larga-2026")
        s.flush()
        s.execute(text("UPDATE users SET active = :no WHERE username = 'rita'"), {"no": False})
        s.add_all(
            [
                Applicant(
                    full_name="Juan Pérez Quispe", document_number="123456789", email=JUAN,
                    data={"vulnerabilidad": "gestante; salud"},
                ),
                Applicant(full_name="Rosa Díaz Ramos", email=ROSA, data={"vulnerabilidad": "violencia"}),
                Applicant(full_name="Elena Torres Vega", carne_extranjeria="001234567", data={}),
            ]
        )  # fmt: skip


def _store(session: Session, item: Stored) -> None:
    raw = item.raw
    parsed = email.message_from_bytes(raw)["Message-ID"]
    session.add(
        InboxMessage(
            mailbox="INBOX", message_id=parsed if item.message_id else None,
            sha256=hashlib.sha256(raw).hexdigest(), raw=raw, size=len(raw), source="imap",
            arrived_at=MONDAY, status="new", attempts=0,
        )
    )  # fmt: skip


def _failing_first(inner: Callable[[EffectRun, Effect], None]) -> Callable[..., None]:
    """`inner`, failing the first time it runs for each odd inbox message: that message's
    savepoint rolls back (the case it opened with it) and it is written again in the batch."""
    failed: set[int] = set()

    def handler(run: EffectRun, effect: Effect) -> None:
        key = run.given.inbox_message_id
        if key is not None and key % 2 and key not in failed:
            failed.add(key)
            raise RuntimeError("falla de prueba")
        inner(run, effect)

    return handler


def _slow_reading(handling: Handling) -> Handling:
    """`handling` whose reading of a message with the SLOW header ran out of time."""
    read = handling.read
    assert read is not None

    def slow(row: InboxMessage, now: dt.datetime, session: Session | None) -> Reading:
        reading: Reading = read(row, now, session)
        if SLOW.encode() in row.raw:
            return replace(reading, exceeded="La lectura superó el tiempo de prueba")
        return reading

    return Handling(handling.write, slow)


def _run(app: App, corpus: list[list[Stored]], patch: pytest.MonkeyPatch) -> None:
    """Store and write each batch of `corpus` as the engine does: claimed, read outside the
    transaction, then written in one transaction with a savepoint per message."""
    notify = EFFECTS["notify"]
    patch.setitem(EFFECTS, "notify", replace(notify, handler=_failing_first(notify.handler)))
    handling = _slow_reading(pipeline_handling(app))
    db = app.database
    for batch in corpus:
        with db.session() as s:
            for item in batch:
                _store(s, item)
        rows = claim(db, "w", len(batch), MONDAY)
        reads = [(row.id, read_claimed(db, handling, row, MONDAY)) for row in rows]
        statuses = write_batch(db, reads, "w", MONDAY, handling)
        assert set(statuses) == {"done"}, statuses


def _rows(db: Database) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table (tests.support.table_rows); on PostgreSQL the ids of the LAZY
    tables by rank (`_ranked`)."""
    out = table_rows(db)
    return _ranked(out) if db.dialect == "postgresql" else out


def _ranked(rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """`rows` with the ids of the LAZY tables replaced by their rank, and the events' "cause"
    (the id of the event whose effects they record) too. A PostgreSQL sequence is not rolled
    back with a savepoint: the ids a message that failed took are skipped, and how many that
    is depends on how many of its lazy rows a statement had needed before it failed (one
    statement less, one insert later), not on what was written."""
    for name in LAZY:
        rank = {row["id"]: n for n, row in enumerate(rows[name], 1)}
        for row in rows[name]:
            row["id"] = rank[row["id"]]
            data = row.get("data")
            if name == "case_events" and isinstance(data, dict) and "cause" in data:
                data["cause"] = rank.get(data["cause"], data["cause"])
    return rows


@pytest.fixture
def databases(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Database, Callable[[], None]]]:
    """A migrated database (SQLite or PostgreSQL) and a function that empties it."""
    if request.param == "sqlite":
        path = tmp_path / "lookups.db"
        db = Database(f"sqlite:///{path}")
        db.migrate()

        def empty() -> None:
            db.dispose()
            path.unlink()
            for extra in ("-wal", "-shm"):
                Path(f"{path}{extra}").unlink(missing_ok=True)
            db.migrate()

        yield db, empty
        db.dispose()
        return
    db = request.getfixturevalue("pg_db")
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)

    def truncate() -> None:
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))

    yield db, truncate


def _exercised(rows: dict[str, list[dict[str, Any]]]) -> None:
    """The corpus went through every path the look-ups touch."""
    reasons = [e["reason"] for e in rows["case_events"]]

    def count(piece: str) -> int:
        return sum(piece in r for r in reasons)

    assert count("ya procesado (entrada") >= 3  # same bytes, another body, another batch
    assert count("ya está en el expediente") >= 2  # thread entries stored and still queued
    assert count("ya usado por otro remitente") >= 5  # by the earlier copy, by the thread
    assert count("por la regla «recursos»") >= 3 and count("por la regla «datos»") >= 2
    assert count("Sin responsable disponible") >= 1 and count("Ninguna regla") >= 1
    assert count("Subsanación") >= 1 and count("abogado@example.net") >= 1
    sources = {(s["source"], s["category"]) for s in rows["case_signals"]}
    assert {("registro", "embarazo"), ("registro", "trata_violencia")} <= sources
    assert {("correo", "adulto_mayor"), ("correo", "menor_de_edad")} <= sources
    assert ("correo", "trata_violencia") in sources  # a subsanación for staff: looked through
    evidence = [s["evidence"] for s in rows["case_signals"]]
    assert any(e.startswith("fecha de nacimiento") for e in evidence)
    assert any(r["attempts"] for r in rows["inbox_messages"])  # savepoints rolled back


@pytest.mark.parametrize("databases", ["sqlite", "postgresql"], indirect=True)
def test_the_corpus_ends_in_the_same_rows_with_the_lookups_asked_once(
    tmp_path: Path,
    databases: tuple[Database, Callable[[], None]],
    corpus: list[list[Stored]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db, empty = databases
    skipped: list[int] = []
    unchanged, kept = priority._unchanged_since_opened, assignment.kept_rows
    turns: list[str] = []

    def spy(session: Session, app: App, case: Case, inbox_message_id: int) -> bool:
        answer = unchanged(session, app, case, inbox_message_id)
        if answer:
            skipped.append(case.id)
        return answer

    def kept_spy(*args: Any) -> list[dict[str, Any]]:
        rows = kept(*args)
        turns.extend(r["event"] for r in rows if r["kind"] == "assign")
        return rows

    with monkeypatch.context() as patch:
        _as_before(patch)
        before = _app(tmp_path / "before", db, None)
        _seed(before)
        _run(before, corpus, patch)
    theirs = _rows(db)
    empty()
    with monkeypatch.context() as patch:
        patch.setattr(priority, "_unchanged_since_opened", spy)
        patch.setattr(assignment, "kept_rows", kept_spy)
        now = _app(tmp_path / "now", db, tmp_path / "before" / "keys")
        _seed(now)
        _run(now, corpus, patch)
    ours = _rows(db)
    _exercised(ours)
    assert skipped  # a case opened for review was not looked through twice
    assert "regla:recursos" in turns  # round_robin's turn read from the transaction's own
    differences = table_differences(ours, theirs)
    assert not differences, "\n".join(differences)


def test_a_machine_that_changes_a_case_after_assigning_it_ends_in_the_same_rows(
    tmp_path: Path, corpus: list[list[Stored]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A case sent to staff is flagged after `assign`: the flush that looking its mail up
    again made before the flag (a second update, a second version of the case) is made
    still."""
    machines = tmp_path / "machines"
    shutil.copytree(ROOT / "state_machines", machines)
    general = machines / "general.yaml"
    shipped = "{assign: staff}, {notify: staff}]"
    assert shipped in general.read_text()
    general.write_text(
        general.read_text().replace(shipped, "{assign: staff}, {flag: revisar}, {notify: staff}]")
    )
    first = corpus[:1]
    rows = []
    for name, variant in (("before", _as_before), ("now", lambda _patch: None)):
        db = Database(f"sqlite:///{tmp_path / name}.db")
        db.migrate()
        with monkeypatch.context() as patch:
            variant(patch)
            keys = None if name == "before" else tmp_path / "before" / "keys"
            app = _app(tmp_path / name, db, keys, machines)
            _seed(app)
            _run(app, first, patch)
        rows.append(_rows(db))
        db.dispose()
    flagged = [c for c in rows[0]["cases"] if "revisar" in c["flags"]]
    assert flagged and all(c["lock_version"] > 2 for c in flagged)  # updated twice
    differences = table_differences(rows[1], rows[0])
    assert not differences, "\n".join(differences)


# --- the reference of the batched writes: each message's rows inserted before its savepoint
# ends (the transition's event after every queued row, timers one by one, the claim released
# by an UPDATE of its own) ---

_EVENTS = cast(Table, CaseEvent.__table__)
_INBOX = cast(Table, InboxMessage.__table__)


def _reference_record_now(session: Session, kind: str, reason: str, **kw: Any) -> CaseEvent:
    values = audit._values(
        kind, reason, kw["at"], kw.get("actor", audit.SYSTEM), kw.get("case_id"),
        kw.get("inbox_message_id"), kw.get("event"), kw.get("from_state"), kw.get("to_state"),
        kw.get("data"),
    )  # fmt: skip
    flush_rows(session)
    statement = insert(_EVENTS).returning(_EVENTS.c.id)
    new_id = session.connection().execute(statement, values).scalar_one()
    return CaseEvent(id=int(new_id), **values)


def _reference_finish(
    timers: Callable[[Session], None],
) -> Callable[[Session, InboxMessage, Outcome, dt.datetime], None]:
    def finish(session: Session, row: InboxMessage, outcome: Outcome, now: dt.datetime) -> None:
        values = {
            "status": "done", "disposition": outcome.disposition, "tramite": outcome.tramite,
            "case_id": outcome.case_id, "processed_at": now,
        }  # fmt: skip
        session.connection().execute(update(_INBOX).where(_INBOX.c.id == row.id), values)
        updated_without_orm(session, row, values)
        timers(session)
        coreflush.flush(session)

    return finish


def _failing_at_finish(inner: Callable[[Session], None]) -> Callable[[Session], None]:
    """`inner` (what `finish` does with the message's new timers), then failing every seventh
    call: that message's savepoint rolls back after its timers were queued or inserted and
    its events inserted, and it is written again at once (the next call goes through)."""
    calls = [0]

    def timers(session: Session) -> None:
        inner(session)
        calls[0] += 1
        if calls[0] % 7 == 3:
            raise RuntimeError("falla de prueba al terminar")

    return timers


class _Statements:
    """Counts the statements a database runs inside `with`."""

    def __init__(self, db: Database) -> None:
        self.engine = db.engine
        self.count = 0

        def seen(*_args: Any) -> None:
            self.count += 1

        self._seen = seen

    def __enter__(self) -> _Statements:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


@pytest.mark.parametrize("databases", ["sqlite", "postgresql"], indirect=True)
def test_the_corpus_ends_in_the_same_rows_with_its_writes_batched(
    tmp_path: Path,
    databases: tuple[Database, Callable[[], None]],
    corpus: list[list[Stored]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db, empty = databases
    counted = []
    for name in ("before", "now"):
        with monkeypatch.context() as patch:
            if name == "before":
                patch.setattr(core, "record_now", _reference_record_now)
                timers = _failing_at_finish(deadlines.insert_held_timers)
                patch.setattr(route, "finish", _reference_finish(timers))
            else:
                patch.setattr(
                    outcome, "queue_held_timers", _failing_at_finish(deadlines.queue_held_timers)
                )
            keys = None if name == "before" else tmp_path / "before" / "keys"
            app = _app(tmp_path / name, db, keys)
            _seed(app)
            with _Statements(db) as statements:
                _run(app, corpus, patch)
            counted.append(statements.count)
        if name == "before":
            theirs = _rows(db)
            empty()
    ours = _rows(db)
    _exercised(ours)
    failed = [r for r in ours["inbox_messages"] if "al terminar" in (r["last_error"] or "")]
    assert len(failed) >= 3  # rolled back after the message's timers and events were written
    print("statements before, now:", counted)
    assert counted[1] < 0.9 * counted[0], counted  # the same work in fewer statements
    differences = table_differences(ours, theirs)
    assert not differences, "\n".join(differences)
