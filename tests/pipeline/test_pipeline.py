"""Pipeline: triage, opening cases, threading replies to cases, subsanación, loops and caps."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailflow.app import App
from mailflow.clock.deadlines import SUBSANACION
from mailflow.pipeline.route import process_inbox_message
from mailflow.store.db import Database
from mailflow.store.models import Case, CaseEvent, InboxMessage, Timer
from tests.support.cases_support import (
    APPLICANT,
    DATOS,
    MONDAY,
    mail,
    make_app,
    outbox,
    parse_out,
    store,
)
from tests.support.cases_support import (
    load_case as _case,
)
from tests.support.cases_support import (
    process as _process,
)

SIN_TELEFONO = "\n".join(line for line in DATOS.splitlines() if "Teléfono" not in line)
TUESDAY = MONDAY + dt.timedelta(days=1)


@pytest.fixture
def app(tmp_path: Path, sqlite_db: Database) -> App:
    return make_app(tmp_path, sqlite_db)


def test_accept_opens_case_and_queues_threaded_acknowledgment(app: App) -> None:
    raw = mail("Actualización de datos", "Buenos días\n" + DATOS, message_id="<req-1@example.org>")
    row = _process(app, raw)
    assert (row.status, row.disposition, row.tramite) == ("done", "accept", "actualizacion_datos")
    case = _case(app, row.case_id)
    assert case.number == "EXP-2026-000001"
    assert case.state == "en_tramite"
    assert case.due_date == dt.date(2026, 12, 16)
    with app.database.session(readonly=True) as s:
        [out] = outbox(s)
        kinds = list(s.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == case.id)))
    assert {"intake", "transition", "sla", "reply"} <= set(kinds)
    msg = parse_out(out)
    assert msg["Subject"] == "[EXP-2026-000001] Actualización de datos: Acuse de recibo"
    assert msg["From"].addresses[0].addr_spec == "solicitantesrefugio@cepr.mailflow.localhost"
    assert msg["To"].addresses[0].addr_spec == APPLICANT
    assert msg["In-Reply-To"] == "<req-1@example.org>"
    assert "<req-1@example.org>" in msg["References"]
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["X-Mailflow-Case"] == "EXP-2026-000001"
    assert msg["Message-ID"] == f"<{out.message_id}>"
    assert out.message_id.startswith("mf.exp-2026-000001.")
    assert out.message_id.endswith("@cepr.mailflow.localhost")
    plain = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert plain is not None and html is not None
    assert "16 de diciembre de 2026" in plain.get_content()
    assert "<p>Estimado(a) Juan Pérez Quispe:</p>" in html.get_content()


def test_second_request_takes_next_number(app: App) -> None:
    first = _process(app, mail("Actualización de datos", DATOS))
    second = _process(app, mail("Actualización de datos", DATOS, sender="otra@example.org"))
    assert _case(app, first.case_id).number == "EXP-2026-000001"
    assert _case(app, second.case_id).number == "EXP-2026-000002"


def _observe(app: App) -> tuple[InboxMessage, Case, str]:
    row = _process(app, mail("Actualización de datos", SIN_TELEFONO))
    assert row.disposition == "observe"
    case = _case(app, row.case_id)
    with app.database.session(readonly=True) as s:
        [out] = outbox(s)
    return row, case, out.message_id


def test_observe_lists_missing_labels_and_opens_subsanacion_window(app: App) -> None:
    _, case, _ = _observe(app)
    assert case.state == "observado"
    assert case.sla["paused_on"] == "2026-11-23"
    assert case.sla["subsanacion_deadline"] == "2026-11-25"
    with app.database.session(readonly=True) as s:
        [out] = outbox(s)
        timers = s.scalars(select(Timer).where(Timer.case_id == case.id)).all()
    text = parse_out(out).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "1. Teléfono" in text
    assert "25 de noviembre de 2026" in text
    assert parse_out(out)["Subject"].endswith("Observación: falta información")
    expiry = [t for t in timers if t.kind == SUBSANACION and t.cancelled_at is None]
    assert [t.due_at for t in expiry] == [dt.datetime(2026, 11, 26, 5, 0, tzinfo=dt.UTC)]
    # the deadline reminders do not run while the clock is paused
    assert all(t.cancelled_at is not None for t in timers if t.kind != SUBSANACION)


def test_applicant_reply_completes_data_and_resumes_clock(app: App) -> None:
    _, case, our_id = _observe(app)
    reply = mail(
        f"RE: [{case.number}] Actualización de datos: Observación",
        "Les envío lo que faltaba.\nTeléfono: 987654321\n",
        in_reply_to=f"<{our_id}>",
    )
    row = _process(app, reply, TUESDAY)
    assert (row.disposition, row.case_id) == ("accept", case.id)
    after = _case(app, case.id)
    assert after.state == "en_tramite"
    assert after.fields["telefono"] == "+51987654321"
    # paused Monday with 15 días hábiles left, resumed Tuesday: the due date moves by one
    assert case.due_date == dt.date(2026, 12, 16)
    assert after.due_date == app.calendario.add_business_days(dt.date(2026, 12, 16), 1)
    assert after.sla["pauses"] == [
        {"paused_on": "2026-11-23", "resumed_on": "2026-11-24", "remaining": 15}
    ]
    with app.database.session(readonly=True) as s:
        outs = outbox(s)
        pending = s.scalars(
            select(Timer).where(
                Timer.case_id == case.id, Timer.kind == SUBSANACION, Timer.cancelled_at.is_(None)
            )
        ).all()
    assert [o.kind for o in outs] == ["observacion", "subsanacion_recibida"]
    assert parse_out(outs[1])["In-Reply-To"] == f"<{reply_id(reply)}>"
    assert pending == []


def reply_id(raw: bytes) -> str:
    import email

    return str(email.message_from_bytes(raw)["Message-ID"]).strip("<>")


def test_reply_still_incomplete_lists_remaining_items_once_without_new_window(app: App) -> None:
    _, case, our_id = _observe(app)
    row = _process(app, mail("RE: tu correo", "Aquí estoy", in_reply_to=f"<{our_id}>"), TUESDAY)
    assert (row.disposition, row.case_id) == ("observe", case.id)
    after = _case(app, case.id)
    assert after.state == "observado"
    assert after.sla["subsanacion_deadline"] == case.sla["subsanacion_deadline"] == "2026-11-25"
    with app.database.session(readonly=True) as s:
        outs = outbox(s)
        windows = s.scalars(
            select(Timer.due_at).where(
                Timer.case_id == case.id, Timer.kind == SUBSANACION, Timer.cancelled_at.is_(None)
            )
        ).all()
    assert [o.kind for o in outs] == ["observacion", "subsanacion_incompleta"]
    text = parse_out(outs[1]).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "1. Teléfono" in text and "2." not in text
    assert "25 de noviembre de 2026" in text and "no abre un plazo nuevo" in text
    assert windows == [dt.datetime(2026, 11, 26, 5, 0, tzinfo=dt.UTC)]  # the same window
    # a second incomplete answer: added to the file, the remaining items are not listed again
    again = _process(app, mail("RE: tu correo", "¿Recibieron?", in_reply_to=f"<{our_id}>"), TUESDAY)
    assert (again.disposition, again.case_id) == ("observe", case.id)
    with app.database.session(readonly=True) as s:
        outs = outbox(s)
    assert [o.kind for o in outs] == ["observacion", "subsanacion_incompleta", "mensaje_agregado"]
    text = parse_out(outs[2]).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"añadido a su expediente {case.number}" in text
    assert "25 de noviembre de 2026" in text


def test_reply_from_another_address_goes_to_review_and_leaves_case_alone(app: App) -> None:
    _, case, our_id = _observe(app)
    forged = mail(
        "RE: Observación", "Teléfono: 987654321", sender="intruso@example.net",
        name="Otra Persona", in_reply_to=f"<{our_id}>",
    )  # fmt: skip
    row = _process(app, forged, TUESDAY)
    assert (row.disposition, row.case_id) == ("review", None)
    after = _case(app, case.id)
    assert (after.state, after.fields, after.lock_version) == (
        "observado", case.fields, case.lock_version,
    )  # fmt: skip
    with app.database.session(readonly=True) as s:
        events = s.scalars(select(CaseEvent).where(CaseEvent.inbox_message_id == row.id)).all()
        outs = outbox(s)
    exc = next(e for e in events if e.kind == "exception")
    assert exc.case_id == case.id and exc.event == "mensaje_tercero"
    assert "intruso@example.net" in exc.reason and case.number in exc.reason
    # the sender gets an acknowledgment with a registration number and no case data
    assert [o.kind for o in outs] == ["observacion", "acuse_registro"]
    ack = outs[1]
    assert ack.to_addr == "intruso@example.net" and ack.case_id is None
    text = parse_out(ack).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "REG-2026-000001" in text and case.number not in text + ack.subject
    assert "Actualización" not in text, text
    assert "Juan" not in text and "observado" not in text.lower()


def test_case_number_in_subject_threads_without_headers(app: App) -> None:
    _, case, _ = _observe(app)
    row = _process(app, mail(f"Re: {case.number}", "Teléfono: 987654321"), TUESDAY)
    assert (row.case_id, _case(app, case.id).state) == (case.id, "en_tramite")


def test_same_row_processed_twice_yields_one_case_and_one_reply(app: App) -> None:
    raw = mail("Actualización de datos", DATOS, message_id="<twice@example.org>")
    with app.database.session() as s:
        row = store(s, raw)
        process_inbox_message(app, s, row, MONDAY)
        process_inbox_message(app, s, row, MONDAY)
    again = _process(app, raw)  # the same message stored again (e.g. redelivered)
    assert again.disposition == "ignore" and again.case_id == row.case_id
    with app.database.session(readonly=True) as s:
        assert s.scalar(select(func.count(Case.id))) == 1
        assert len(outbox(s)) == 1


def test_automatic_mail_gets_no_reply(app: App) -> None:
    raw = mail(
        "Respuesta automática: Actualización de datos", DATOS,
        headers={"Auto-Submitted": "auto-replied"},
    )  # fmt: skip
    row = _process(app, raw)
    assert (row.disposition, row.case_id) == ("ignore", None)
    with app.database.session(readonly=True) as s:
        assert outbox(s) == []
        [event] = s.scalars(select(CaseEvent).where(CaseEvent.inbox_message_id == row.id)).all()
    assert event.kind == "rule" and event.reason


def test_unclassified_request_goes_to_exception_queue_with_acknowledgment(app: App) -> None:
    row = _process(app, mail("Consulta", "Quisiera saber algo sobre mi vida"))
    assert (row.disposition, row.tramite, row.case_id) == ("review", None, None)
    with app.database.session(readonly=True) as s:
        events = s.scalars(
            select(CaseEvent).where(CaseEvent.inbox_message_id == row.id).order_by(CaseEvent.id)
        ).all()
        [out] = outbox(s)
    assert [e.kind for e in events] == ["reply", "exception"]  # the reason shown is the last
    assert events[-1].data["registro"] == "REG-2026-000001"
    msg = parse_out(out)
    assert msg["Subject"] == "[REG-2026-000001] Mesa de Partes Virtual: Acuse de recibo"
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "REG-2026-000001" in text
    assert "El personal de la Mesa de Partes lo revisará en 2 días hábiles" in text
    assert "25 de noviembre de 2026" in text  # received Monday 23: two días hábiles


def test_suspended_procedure_gets_one_informative_reply(app: App) -> None:
    row = _process(app, mail("Carné de solicitante", "Quiero mi carné"))
    assert row.disposition == "inform"
    case = _case(app, row.case_id)
    assert case.state == "informado" and case.closed_at is not None
    with app.database.session(readonly=True) as s:
        [out] = outbox(s)
    assert "suspendido" in parse_out(out).get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_daily_cap_holds_back_follow_ups_but_never_a_filing(
    tmp_path: Path, sqlite_db: Database
) -> None:
    base = make_app(tmp_path, sqlite_db)
    app = make_app(
        tmp_path,
        sqlite_db,
        replies=base.settings.replies.model_copy(update={"daily_cap_per_address": 2}),
    )
    first = _process(app, mail("Actualización de datos", DATOS))
    case = _case(app, first.case_id)
    chatter = [_process(app, mail(f"Re: {case.number}", f"Hola {i}")) for i in range(2)]
    filing = _process(app, mail("Cambio de clave y contraseña", DATOS + "Correo: x@example.org\n"))
    with app.database.session(readonly=True) as s:
        kinds = [o.kind for o in outbox(s)]
        suppressed = s.scalars(select(CaseEvent).where(CaseEvent.kind == "reply_suppressed")).all()
        from mailflow.web.queue import load_rows

        queued = [(i.id, i.reason) for i in load_rows(s) if i.kind == "mensaje"]
    # the cap (2) held back the second follow-up, never the new filing's acknowledgment
    assert kinds == ["acuse_recibo", "mensaje_agregado", "acuse_recibo"]
    assert filing.disposition == "accept" and filing.case_id != case.id
    assert [e.inbox_message_id for e in suppressed] == [chatter[1].id]
    assert APPLICANT in suppressed[0].reason
    # the held-back message waits in the staff queue, with the cap as its reason
    assert [q[0] for q in queued] == [chatter[1].id]
    assert "retenida" in queued[0][1] and "10" not in queued[0][1] and APPLICANT in queued[0][1]
