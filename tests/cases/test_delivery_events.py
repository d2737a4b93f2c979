"""Notification that holds: the subsanación window runs from SMTP acceptance; a bounce stops the
clock it started and flags the case; Migraciones' mail is never acknowledged."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailflow.app import App
from mailflow.clock.deadlines import SUBSANACION
from mailflow.config import load_settings
from mailflow.runners.sender import drain_outbox
from mailflow.runners.sweep import run_sweep
from mailflow.store.db import Database
from mailflow.store.models import Case, CaseEvent, Document, OutboxMessage, Timer
from mailflow.web.queue import load_rows
from tests.support.cases_support import DATOS, MONDAY, ROOT, mail, make_app, outbox
from tests.support.cases_support import load_case as _case
from tests.support.cases_support import process as _process
from tests.support.smtp_sink import SmtpSink

SIN_TELEFONO = "\n".join(line for line in DATOS.splitlines() if "Teléfono" not in line)
THURSDAY = dt.datetime(2026, 11, 26, 6, 0, tzinfo=dt.UTC)
MIGRACIONES = "oficios@migraciones.example"
DOMAIN = "cepr.mailflow.localhost"


@pytest.fixture
def app(tmp_path: Path, sqlite_db: Database) -> App:
    base = make_app(tmp_path, sqlite_db)
    return make_app(
        tmp_path,
        sqlite_db,
        migraciones=base.settings.migraciones.model_copy(update={"address": MIGRACIONES}),
    )


def _observed_and_sent(app: App, smtp_sink: SmtpSink, at: dt.datetime) -> tuple[Case, str]:
    row = _process(app, mail("Actualización de datos", SIN_TELEFONO))
    settings = app.settings.model_copy(
        update={"smtp": app.settings.smtp.model_copy(update={"url": smtp_sink.url})}
    )
    assert drain_outbox(settings, app.database, lambda: at).sent == 1
    with app.database.session(readonly=True) as s:
        [observation] = outbox(s)
    assert observation.status == "sent"
    return _case(app, row.case_id), observation.message_id


def _open_windows(app: App, case: Case) -> list[dt.datetime]:
    with app.database.session(readonly=True) as s:
        return list(
            s.scalars(
                select(Timer.due_at).where(
                    Timer.case_id == case.id,
                    Timer.kind == SUBSANACION,
                    Timer.cancelled_at.is_(None),
                    Timer.fired_at.is_(None),
                )
            ).all()
        )


def test_real_sender_acceptance_starts_the_subsanacion_window(
    app: App, smtp_sink: SmtpSink
) -> None:
    tuesday = dt.datetime(2026, 11, 24, 16, 0, tzinfo=dt.UTC)  # SMTP took a day to accept
    case, _ = _observed_and_sent(app, smtp_sink, tuesday)
    assert case.sla["subsanacion_deadline"] == "2026-11-26"
    assert case.sla["observacion_entregada"] == tuesday.isoformat()
    assert _open_windows(app, case) == [dt.datetime(2026, 11, 27, 5, 0, tzinfo=dt.UTC)]
    with app.database.session(readonly=True) as s:
        notes = s.scalars(
            select(CaseEvent.reason).where(CaseEvent.case_id == case.id, CaseEvent.kind == "sla")
        ).all()
    assert any("Observación entregada al servidor de correo" in n for n in notes)


def _bounce(our_id: str) -> bytes:
    """A plain-text bounce with no DSN structure that quotes our message back."""
    return (
        "From: Sistema de correo <avisos@mx.proveedor.pe>\r\nTo: refugiados@" + DOMAIN + "\r\n"
        "Subject: Aviso\r\nMessage-ID: <b1@mx.proveedor.pe>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Su mensaje no se pudo entregar: el buzón no existe.\r\n\r\n"
        f"--- Mensaje original ---\r\nMessage-ID: <{our_id}>\r\n"
    ).encode()


def test_bounce_of_an_observation_stops_its_clock_and_flags_the_case(
    app: App, smtp_sink: SmtpSink
) -> None:
    case, our_id = _observed_and_sent(app, smtp_sink, MONDAY)
    row = _process(app, _bounce(our_id), MONDAY + dt.timedelta(hours=1))
    assert (row.disposition, row.case_id) == ("review", None)  # staff see it; nobody is answered
    with app.database.session(readonly=True) as s:
        [item] = load_rows(s)
    assert item.id == row.id and case.number in item.reason and "Rebote" in item.reason
    after = _case(app, case.id)
    assert "notificacion_fallida" in after.flags
    assert after.sla["subsanacion_deadline"] is None
    assert _open_windows(app, case) == []
    with app.database.session(readonly=True) as s:
        [observation] = outbox(s)
        events = s.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)).all()
    assert observation.status == "failed" and "No entregado" in (observation.last_error or "")
    failure = [e for e in events if e.event == "entrega_fallida"]
    assert len(failure) == 1 and "el solicitante no fue notificado" in failure[0].reason
    assert not any("notificado" in e.reason.replace("no fue notificado", "") for e in events)
    run_sweep(app, THURSDAY, "w1")  # the window never started: the case does not expire
    assert _case(app, case.id).state == "observado"


def test_delivery_given_up_counts_as_not_notified(app: App) -> None:
    _process(app, mail("Actualización de datos", DATOS))
    settings = app.settings.model_copy(
        update={
            "smtp": app.settings.smtp.model_copy(
                update={"url": "smtp://127.0.0.1:9", "max_attempts": 1}
            )
        }
    )
    # an unreachable server is retried for smtp.retry_for_hours (issue 14); past that, given up
    later = MONDAY + dt.timedelta(hours=settings.smtp.retry_for_hours + 1)
    assert drain_outbox(settings, app.database, lambda: later).failed == 1
    with app.database.session(readonly=True) as s:
        case = s.scalars(select(Case)).one()
        [row] = outbox(s)
    assert row.status == "failed" and "notificacion_fallida" in case.flags


def test_migraciones_reply_naming_a_case_joins_it_without_an_answer(app: App) -> None:
    first = _process(app, mail("Actualización de datos", DATOS))
    case = _case(app, first.case_id)
    raw = mail(
        f"Respuesta sobre {case.number}", "Se atendió lo solicitado.", sender=MIGRACIONES,
        name="Migraciones",
    )  # fmt: skip
    row = _process(app, raw)
    assert (row.disposition, row.case_id) == ("review", case.id)
    assert "respuesta_migraciones" in _case(app, case.id).flags
    with app.database.session(readonly=True) as s:
        assert [o.kind for o in outbox(s)] == ["acuse_recibo"]  # nothing to Migraciones


def test_migraciones_reply_naming_an_oficio_number_joins_its_case(app: App) -> None:
    first = _process(app, mail("Actualización de datos", DATOS))
    with app.database.session() as s:
        s.add(
            Document(
                case_id=first.case_id, kind="oficio", number="000007-2026-CEPR/MRE",
                verification_code="abc", sha256="0" * 64, path="x.pdf", size=1,
                issued_at=MONDAY, event_key="k",
            )
        )  # fmt: skip
    raw = mail(
        "RE: OFICIO N° 000007-2026-CEPR/MRE", "Recibido.", sender=MIGRACIONES,
        headers={"Auto-Submitted": "auto-replied"},
    )  # fmt: skip
    row = _process(app, raw)
    assert (row.disposition, row.case_id) == ("review", first.case_id)
    with app.database.session(readonly=True) as s:
        assert len(outbox(s)) == 1


def test_migraciones_mail_naming_nothing_goes_to_staff_unanswered(app: App) -> None:
    row = _process(app, mail("Consulta", "Sírvase informar.", sender=MIGRACIONES))
    assert (row.disposition, row.case_id) == ("review", None)
    with app.database.session(readonly=True) as s:
        assert outbox(s) == []
        assert [i.id for i in load_rows(s)] == [row.id]


def test_bounce_of_a_delivery_to_migraciones_marks_it_failed(app: App) -> None:
    first = _process(app, mail("Actualización de datos", DATOS))
    with app.database.session() as s:
        s.add(
            OutboxMessage(
                case_id=first.case_id, kind="oficio_migraciones", dedupe_key="of1",
                message_id=f"mf.oficio.1@{DOMAIN}", from_addr=f"refugiados@{DOMAIN}",
                to_addr=MIGRACIONES, subject="Oficio", raw=b"x", status="sent",
                created_at=MONDAY, next_attempt_at=MONDAY,
            )
        )  # fmt: skip
    _process(app, _bounce(f"mf.oficio.1@{DOMAIN}"))
    with app.database.session(readonly=True) as s:
        row = s.scalars(select(OutboxMessage).where(OutboxMessage.dedupe_key == "of1")).one()
        flagged = s.scalar(
            select(func.count(CaseEvent.id)).where(CaseEvent.event == "entrega_fallida")
        )
    assert row.status == "failed" and flagged == 1
    assert "notificacion_fallida" in _case(app, first.case_id).flags


def test_migraciones_address_from_the_environment() -> None:
    env = {"MAILFLOW_MIGRACIONES_ADDRESS": " Oficios@Migraciones.Example "}
    settings = load_settings(ROOT / "config.yaml", env=env)
    assert settings.migraciones.address == MIGRACIONES
    assert load_settings(ROOT / "config.yaml", env={}).migraciones.address is None


def test_standard_bounce_of_an_answer_flags_its_case(app: App) -> None:
    first = _process(app, mail("Actualización de datos", DATOS))
    with app.database.session() as s:
        [answer] = outbox(s)
        answer.status = "sent"
        our_id = answer.message_id
    dsn = (
        "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n"
        f"To: solicitantesrefugio@{DOMAIN}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn1@mx.example.org>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nThis is the mail system.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Final-Recipient: rfc822; juan.perez@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <{our_id}>\r\nSubject: Acuse\r\n--b--\r\n"
    ).encode()
    assert _process(app, dsn).disposition == "review"
    with app.database.session(readonly=True) as s:
        [row] = outbox(s)
    assert row.status == "failed"
    assert "notificacion_fallida" in _case(app, first.case_id).flags
