"""Recording a batch with set-based statements (`sender._record`) writes exactly what the
per-row code did (kept here as the reference), and keeps its guarantees: a failing reaction
is rolled back alone, every accepted row is still recorded "sent"."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from mailflow.app import App
from mailflow.cases import delivery_events
from mailflow.cases.delivery_events import on_accepted, on_bounced
from mailflow.config import Settings
from mailflow.runners import sender
from mailflow.runners.sender import (
    ERROR_CHARS,
    SendStats,
    _Outcome,
    _record_batch,
    backoff,
    claim_due,
)
from mailflow.store.audit import record
from mailflow.store.db import Database
from mailflow.store.models import Case, DeliveryAttempt, OutboxMessage
from tests.support.cases_support import DATOS, MONDAY, mail, make_app, process

SIN_TELEFONO = "\n".join(line for line in DATOS.splitlines() if "Teléfono" not in line)
SENT_AT = MONDAY + dt.timedelta(hours=2)
TABLES = {
    "outbox_messages": "id, status, attempts, next_attempt_at, last_error, sent_at",
    "delivery_attempts": "id, outbox_id, at, ok, error, smtp_response",
    "case_events": "id, case_id, inbox_message_id, at, actor, kind, event, reason, data",
    "timers": "id, case_id, kind, due_at, fired_at, fired_by, cancelled_at",
    "cases": "id, state, sla, flags, due_date",
}


def _reference_apply(
    settings: Settings,
    session: Session,
    now: dt.datetime,
    row: OutboxMessage,
    outcome: _Outcome,
    stats: SendStats,
) -> None:
    """The per-row recording as it was before `_record` (one ORM object and flush per row)."""
    error, answer = outcome.error, outcome.answer
    if error is None and row.status == "sent":
        return
    row.attempts += 1
    session.add(
        DeliveryAttempt(
            outbox_id=row.id,
            at=now,
            ok=error is None,
            error=error[:ERROR_CHARS] if error else None,
            smtp_response=answer,
        )
    )
    if error is None:
        row.status, row.sent_at, row.last_error = "sent", now, None
        on_accepted(session, settings, row, now)
        stats.sent += 1
        return
    row.last_error = error[:ERROR_CHARS]
    stats.errors.append(error)
    smtp = settings.smtp
    expired = now - row.created_at >= dt.timedelta(hours=smtp.retry_for_hours)
    if (outcome.permanent and row.attempts >= smtp.max_attempts) or (
        not outcome.permanent and expired
    ):
        row.status = "failed"
        stats.failed += 1
        record(
            session,
            "exception",
            f"No se pudo enviar la respuesta «{row.subject}» a {row.to_addr} "
            f"tras {row.attempts} intentos: {error[:300]}. Puede reenviarse desde la "
            "bandeja o con «mailflow outbox retry».",
            at=now,
            case_id=row.case_id,
            inbox_message_id=row.inbox_message_id,
            data={"outbox_id": row.id, "attempts": row.attempts},
        )
        on_bounced(session, settings, row, now, f"se abandonó tras {row.attempts} intentos")
        return
    row.status = "pending"
    row.next_attempt_at = now + backoff(settings.smtp.retry_base_seconds, row.attempts)
    stats.retried += 1


def _reference_record(
    settings: Settings, db: Database, outcomes: list[_Outcome], stats: SendStats
) -> None:
    with db.session() as session:
        rows = {
            r.id: r
            for r in session.scalars(
                select(OutboxMessage).where(OutboxMessage.id.in_([o.row_id for o in outcomes]))
            )
        }
        for outcome in outcomes:
            row = rows.get(outcome.row_id)
            if row is not None:
                _reference_apply(settings, session, SENT_AT, row, outcome, stats)


def _dump(db: Database) -> dict[str, list[Any]]:
    with db.engine.connect() as conn:
        return {
            table: [tuple(r) for r in conn.execute(text(f"SELECT {cols} FROM {table} ORDER BY id"))]
            for table, cols in TABLES.items()
        }


@pytest.fixture
def twins(tmp_path: Path, sqlite_db: Database) -> tuple[App, Database, Database]:
    """Two copies of one database holding claimed replies: three observations (cases observed,
    their subsanación timers pending), three acknowledgments, and one already sent."""
    settings_updates: dict[str, Any] = {}
    app = make_app(tmp_path, sqlite_db, **settings_updates)
    for i in range(6):
        body = SIN_TELEFONO if i % 2 == 0 else DATOS
        sender_addr = f"persona{i}@example.org"
        process(
            app,
            mail("Actualización de datos", body, sender=sender_addr, message_id=f"m{i}@x.org"),
        )
    ids = claim_due(sqlite_db, SENT_AT, 100, dt.timedelta(minutes=5))
    with sqlite_db.session() as s:
        s.get_one(OutboxMessage, ids[-1]).status = "sent"  # recorded already (by a retry)
    path = Path(str(sqlite_db.engine.url.database))
    sqlite_db.dispose()
    copy = tmp_path / "twin.db"
    shutil.copyfile(path, copy)
    smtp = app.settings.smtp.model_copy(update={"max_attempts": 1})
    settings = app.settings.model_copy(update={"smtp": smtp})
    twin = Database(f"sqlite:///{copy}")
    return App(settings), sqlite_db, twin


def _ids(db: Database) -> list[int]:
    with db.session(readonly=True) as s:
        return list(s.scalars(select(OutboxMessage.id).order_by(OutboxMessage.id)))


def _mixed(ids: list[int]) -> list[_Outcome]:
    """Accepted, temporary and permanent failures, an accepted row sent already, a lost id."""
    return [
        _Outcome(ids[0], "250 ok 1"),
        _Outcome(ids[1], None, "SMTPServerDisconnected: cortada", False),
        _Outcome(ids[2], None, "SMTPRecipientsRefused: 550 no existe", True),
        _Outcome(ids[3], "250 ok 4"),
        _Outcome(ids[4], "250 ok 5"),
        *[_Outcome(i, f"250 ok {i}") for i in ids[5:]],
        _Outcome(10**6, "250 ok perdido"),
    ]


def test_a_mixed_batch_records_exactly_what_the_per_row_code_did(
    twins: tuple[App, Database, Database],
) -> None:
    app, old_db, new_db = twins
    ids = _ids(old_db)
    kinds = _kinds(old_db)
    assert "observacion" in kinds and "acuse_recibo" in kinds
    old, new = SendStats(), SendStats()
    _reference_record(app.settings, old_db, _mixed(ids), old)
    _record_batch(app.settings, new_db, lambda: SENT_AT, _mixed(ids), new)
    assert (new.sent, new.retried, new.failed, new.errors) == (
        old.sent,
        old.retried,
        old.failed,
        old.errors,
    )
    assert (old.sent, old.retried, old.failed) == (len(ids) - 3, 1, 1)
    before, after = _dump(old_db), _dump(new_db)
    assert after == before
    assert any("Observación entregada" in str(e) for e in after["case_events"])
    assert any("No se pudo enviar" in str(e) for e in after["case_events"])


def _kinds(db: Database) -> list[str]:
    with db.session(readonly=True) as s:
        return list(s.scalars(select(OutboxMessage.kind).order_by(OutboxMessage.id)))


def test_a_failing_preparation_changes_nothing_but_the_queries(
    twins: tuple[App, Database, Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, old_db, new_db = twins
    ids = _ids(old_db)
    _record_batch(app.settings, old_db, lambda: SENT_AT, _mixed(ids), SendStats())

    def broken(*_a: Any) -> None:
        raise RuntimeError("preparación rota (prueba)")

    monkeypatch.setattr(delivery_events, "PREPARE", {delivery_events.observation_delivered: broken})
    _record_batch(app.settings, new_db, lambda: SENT_AT, _mixed(ids), SendStats())
    assert _dump(new_db) == _dump(old_db)


def test_a_failing_reaction_is_rolled_back_alone_and_every_row_is_still_sent(
    twins: tuple[App, Database, Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, db, _ = twins
    ids = _ids(db)
    victim = ids[0]  # an observation: its own subsanación reaction still runs

    def exploding(
        session: Session, _s: Settings, row: OutboxMessage, now: dt.datetime, _r: str
    ) -> None:
        if row.case_id is not None:
            case = session.get_one(Case, row.case_id)
            case.flags = [*(case.flags or []), "explosion"]
            record(session, "sla", "no debe quedar", at=now, case_id=row.case_id)
        if row.id == victim:
            session.flush()
            raise RuntimeError("reacción rota (prueba)")

    monkeypatch.setattr(delivery_events, "ACCEPTED", (exploding, *delivery_events.ACCEPTED))
    outcomes = [_Outcome(i, f"250 ok {i}") for i in ids]
    stats = SendStats()
    _record_batch(app.settings, db, lambda: SENT_AT, outcomes, stats)
    assert stats.sent == len(ids) - 1  # the last one was recorded already
    with db.session(readonly=True) as s:
        rows = {r.id: r for r in s.scalars(select(OutboxMessage))}
        assert {r.status for r in rows.values()} == {"sent"}
        victim_case = s.get_one(Case, rows[victim].case_id)
        assert "explosion" not in (victim_case.flags or [])
        assert victim_case.sla["observacion_entregada"] == SENT_AT.isoformat()
        flagged = {c.id for c in s.scalars(select(Case)) if "explosion" in (c.flags or [])}
        others = {r.case_id for r in rows.values() if r.id not in (victim, ids[-1])}
        assert flagged == others - {None}
        notes = s.scalars(text("SELECT case_id FROM case_events WHERE reason = 'no debe quedar'"))
        assert set(notes) == flagged
        attempts = s.scalars(select(DeliveryAttempt.outbox_id).order_by(DeliveryAttempt.id))
        assert list(attempts) == ids[:-1]


def test_a_dropped_record_is_retried_whole(
    twins: tuple[App, Database, Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first try fails after writing part of the batch: nothing of it stays, the second
    writes it all once."""
    from sqlalchemy.exc import OperationalError

    app, db, reference = twins
    ids = _ids(db)
    _record_batch(app.settings, reference, lambda: SENT_AT, _mixed(ids), SendStats())
    real = delivery_events.prepare_accepted
    calls: list[int] = []

    def flaky(*args: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("SELECT", {}, Exception("conexión perdida (prueba)"))
        real(*args)

    monkeypatch.setattr(sender, "prepare_accepted", flaky)
    monkeypatch.setattr(sender, "RECORD_PAUSE_SECONDS", 0.0)
    stats = SendStats()
    _record_batch(app.settings, db, lambda: SENT_AT, _mixed(ids), stats)
    assert len(calls) == 2 and stats.sent == len(ids) - 3
    assert _dump(db) == _dump(reference)
