"""A message's last writes without the unit of work (issue 18): its case's changed columns in
one UPDATE under the optimistic lock (mailflow.store.coreflush), the claim released the same way,
vulnerability signals queued (mailflow.store.bulkrows). Over a mixed corpus run by the engine's
batch writer, with staff actions from the desk in between, every table ends row by row as with
the ORM's flush (kept here as the reference); a case changed by someone else between load and
write still sends the message's savepoint back, and the message is retried."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, event, select
from sqlalchemy.orm import Session

from bench.corpus import MIX, build
from mailflow.app import App
from mailflow.cases import priority
from mailflow.cases.core import staff_actor
from mailflow.cases.effects import add_flags
from mailflow.errors import MailflowError
from mailflow.pipeline.desk import link_to_case
from mailflow.pipeline.outcome import Outcome, finish, record_event
from mailflow.runners.engine import pipeline_handling
from mailflow.runners.inbox import store_raw
from mailflow.runners.inbox_claims import Handling, Read, claim, write_batch
from mailflow.store import coreflush
from mailflow.store.db import Database
from mailflow.store.models import Case, CaseEvent, CaseSignal, InboxMessage
from mailflow.web.engine import fire, process
from tests.corpus.cases import CASES
from tests.corpus.compose import Kit, make_kit
from tests.corpus.specials import SPECIAL_CASES
from tests.pipeline.test_read_phase import SIGNALS, _app
from tests.support.cases_support import DATOS, MONDAY, mail, make_app
from tests.support.table_rows import differences as table_differences
from tests.support.table_rows import table_rows

ROOT = Path(__file__).resolve().parents[2]
SIN_TELEFONO = "\n".join(line for line in DATOS.splitlines() if "Teléfono" not in line)
STAFF_AT = MONDAY + dt.timedelta(hours=3)
TUESDAY = MONDAY + dt.timedelta(days=1)
WORKER = "w-prueba"
ANA = staff_actor("ana")


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    return make_kit(tmp_path_factory.mktemp("pki"))


def _first_wave(kit: Kit) -> list[bytes]:
    """New requests of every kind: accepted, observed, for staff, signed (cargo), automatic
    mail, vulnerability words, a resend of an open request, a status question, a duplicate
    Message-ID, and the bench harness's own mix."""

    def pedro(body: str, message_id: str | None = None) -> bytes:
        subject, name = "Actualización de datos", "Pedro Díaz"
        return mail(subject, body, sender="pedro@example.org", name=name, message_id=message_id)

    return [
        *SIGNALS[:2],
        mail("Actualización de datos", SIN_TELEFONO, sender="maria@example.org", name="María"),
        pedro(DATOS, "<p-1@example.org>"),
        pedro(DATOS + "\n", "<p-1@example.org>"),  # the same Message-ID again
        pedro(DATOS),  # sent again while the first is open
        mail("¿Cuál es el estado de mi trámite?", "Quisiera saber cómo va.", sender="rosa.diaz@example.org"),
        *(p.read_bytes() for p in sorted((ROOT / "tests" / "fixtures" / "mail").glob("*.eml"))),
        *(p.read_bytes() for p in sorted((ROOT / "samples").glob("*.eml"))),
        *(case.make(kit) for case in [*CASES, *SPECIAL_CASES]),
        *(raw for _, raw in build(kit, 40, MIX)),
    ]  # fmt: skip


def _second_wave(db: Database) -> list[bytes]:
    """Answers on the cases of the first wave: María's subsanación, Pedro's new message and
    status question, a vulnerability word in a reply, a stranger writing on a case."""
    with db.session(readonly=True) as s:
        number = {c.applicant_email: c.number for c in s.scalars(select(Case).order_by(Case.id))}
    maria, pedro = number["maria@example.org"], number["pedro@example.org"]
    juan = number["juan.perez@example.org"]
    return [
        mail(f"RE: [{maria}] Observación", "Teléfono: 987654321\n", sender="maria@example.org"),
        mail(f"RE: [{pedro}] Actualización", "Les escribo de nuevo.\n", sender="pedro@example.org"),
        mail(f"RE: [{pedro}] ¿Cuál es el estado de mi trámite?", "¿Cómo va?", sender="pedro@example.org"),
        mail(f"RE: {juan} Actualización de datos", "Además estoy embarazada.\n" + DATOS),
        mail(f"RE: [{juan}] Consulta", "Escribo por mi primo.", sender="tercero@example.org"),
    ]  # fmt: skip


def _store(db: Database, raws: list[bytes], now: dt.datetime) -> None:
    with db.session() as s:
        for raw in raws:
            store_raw(s, raw, mailbox="INBOX", source="imap", now=now)


def _drain(app: App, now: dt.datetime, handling: Handling | None = None) -> list[str]:
    """Claim every waiting message, read it, write it in batches of 16 (a savepoint each), as
    the engine does; returns the statuses."""
    handling = handling or pipeline_handling(app)
    rows = claim(app.database, WORKER, 10_000, now)
    assert handling.read is not None
    reads = [(r.id, Read(handling.read(r, now, None))) for r in rows]
    statuses: list[str] = []
    for start in range(0, len(reads), 16):
        statuses += write_batch(app.database, reads[start : start + 16], WORKER, now, handling)
    return statuses


def _staff(app: App) -> None:
    """What staff do at the desk, each in its own transaction: classify a message the machine
    could not, link a stranger's message to a case, and fire on each case waiting in review
    the first event its machine allows them. Every attempt is deterministic (same rows, same
    order), so both runs do the same."""
    db = app.database
    with db.session(readonly=True) as s:
        queued = list(
            s.scalars(
                select(InboxMessage.id)
                .where(InboxMessage.disposition == "review", InboxMessage.case_id.is_(None))
                .order_by(InboxMessage.id)
            )
        )
        review = list(
            s.scalars(select(Case.id).where(Case.state == "en_revision").order_by(Case.id))
        )
        first_case = s.scalars(select(Case.id).order_by(Case.id)).first()
    assert queued and review and first_case is not None
    done = {"clasificado": 0, "vinculado": 0, "evento": 0}
    for row_id in queued:
        if done["clasificado"] and done["vinculado"]:
            break
        with db.session() as s:
            row = s.get_one(InboxMessage, row_id)
            try:
                if not done["clasificado"]:
                    process(s, app, row, actor=ANA, now=STAFF_AT, tramite="actualizacion_datos")
                    done["clasificado"] += 1
                else:
                    link_to_case(app, s, row, s.get_one(Case, first_case), actor=ANA, now=STAFF_AT)
                    done["vinculado"] += 1
            except MailflowError:  # not readable as that: the next message
                continue
    for case_id in review[:8]:
        with db.session() as s:
            case = s.get_one(Case, case_id)
            for transition in app.machines[case.machine].allowed_events(case.state, "staff"):
                try:
                    with s.begin_nested():
                        fire(
                            s, app, case, transition.event, actor=ANA, now=STAFF_AT, reason="Visto"
                        )
                    done["evento"] += 1
                    break
                except MailflowError:  # a guard said no: the next event
                    continue
    assert all(done.values()), done


def _run(app: App, second: list[bytes] | None) -> list[bytes]:
    """Both waves and the staff between them; returns the second wave (built from this run's
    cases when `second` is None)."""
    assert set(_drain(app, MONDAY)) <= {"done"}
    _staff(app)
    if second is None:
        second = _second_wave(app.database)
    _store(app.database, second, TUESDAY)
    assert set(_drain(app, TUESDAY)) <= {"done"}
    return second


def _as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    """The writes as they were: the unit of work's flush, signals added to the session."""

    def orm_signal(session: Session, table: Table, values: dict[str, Any], **_: Any) -> None:
        assert table.name == "case_signals"
        session.add(CaseSignal(**values))

    monkeypatch.setattr(coreflush, "flush", Session.flush)
    monkeypatch.setattr(priority, "add_row", orm_signal)


def _count_flushes(counter: list[int]) -> Any:
    def listener(*_: Any) -> None:
        counter[0] += 1

    event.listen(Session, "before_flush", listener)
    return listener


def test_the_engine_writes_what_the_unit_of_work_wrote(
    tmp_path: Path, sqlite_db: Database, kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    _store(sqlite_db, _first_wave(kit), MONDAY)
    sqlite_db.dispose()
    shutil.copyfile(str(sqlite_db.url.database), tmp_path / "before.db")
    before_db = Database(f"sqlite:///{tmp_path / 'before.db'}")
    ours = _app(tmp_path / "a", sqlite_db, kit)
    before = _app(tmp_path / "b", before_db, kit, keys=tmp_path / "a" / "keys")
    flushes = [0]
    listener = _count_flushes(flushes)
    try:
        with monkeypatch.context() as patched:
            _as_before(patched)
            second = _run(before, None)
        orm_flushes, flushes[0] = flushes[0], 0
        _run(ours, second)
    finally:
        event.remove(Session, "before_flush", listener)
    assert flushes[0] < orm_flushes / 2  # the new path was taken
    theirs, mine = table_rows(before_db), table_rows(sqlite_db)
    assert len(mine["cases"]) >= 100 and len(mine["case_signals"]) >= 2
    assert any(e["actor"] == ANA for e in mine["case_events"])  # staff acted
    assert {c["lock_version"] for c in mine["cases"]} >= {2, 3}  # cases written again later
    differences = table_differences(mine, theirs)
    assert not differences, "\n".join(differences)
    before_db.dispose()


def _bump(db: Database, case_id: int) -> None:
    """Someone else (the desk, another worker) changes the case and commits."""
    with db.session() as other:
        case = other.get_one(Case, case_id)
        add_flags(case, ["urgente"])


def test_a_case_changed_meanwhile_sends_the_message_back_and_it_is_retried(
    tmp_path: Path, pg_db: Database
) -> None:
    """PostgreSQL: the batch's transaction loads the case without locking it, another session
    commits a change to it, the message's UPDATE matches no row (StaleDataError), its savepoint
    rolls back (nothing of it stays) and it is written again at once, on the new version."""
    app = make_app(tmp_path, pg_db)
    with pg_db.session() as s:
        store_raw(
            s, mail("Actualización de datos", DATOS), mailbox="INBOX", source="imap", now=MONDAY
        )
    assert _drain(app, MONDAY) == ["done"]
    with pg_db.session(readonly=True) as s:
        case = s.scalars(select(Case)).one()
    version = case.lock_version
    _store(pg_db, [mail(f"RE: [{case.number}] Nuevo", "Adjunto lo pedido.")], TUESDAY)
    tries: list[int] = []

    def write(session: Session, row: InboxMessage, now: dt.datetime, _value: Any) -> None:
        loaded = session.get_one(Case, case.id)  # no lock: FOR UPDATE would make others wait
        tries.append(loaded.lock_version)
        if len(tries) == 1:
            _bump(pg_db, case.id)
        add_flags(loaded, ["mensaje_nuevo"])
        record_event(session, row, now, "exception", "Mensaje nuevo", case_id=case.id)
        finish(session, row, Outcome("review", loaded.tramite, loaded.id), now)

    handling = Handling(write, lambda row, now, session: None)
    [status] = _drain(app, TUESDAY, handling)
    assert status == "done" and tries == [version, version + 1]
    with pg_db.session(readonly=True) as s:
        stored = s.get_one(Case, case.id)
        row = s.scalars(select(InboxMessage).order_by(InboxMessage.id.desc())).first()
        assert row is not None
        notes = s.scalars(select(CaseEvent.reason).where(CaseEvent.inbox_message_id == row.id))
        assert list(notes) == ["Mensaje nuevo"]  # the first try left nothing
    assert stored.lock_version == version + 2
    assert {"urgente", "mensaje_nuevo"} <= set(stored.flags)
    assert (row.attempts, row.status) == (1, "done")
    assert "StaleDataError" in (row.last_error or "") and "cases" in (row.last_error or "")
